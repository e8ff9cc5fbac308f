"""What a compiled bucket policy says about requests: a table of cases.

Strategy: one policy per group, written as people write them (a public
website, a partner who may write under ``incoming/``, a Deny on plain HTTP,
conditions on IPs, prefixes, tags and dates); each row is (caller, action,
key, condition values) -> expected Effect or ``None``. The evaluator is pure,
so every row runs the real compiled policy.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.policy import (
    CompiledPolicy,
    Effect,
    MappingContext,
    PolicyRequest,
    compile_policy,
)
from s4d.auth.principal import Principal
from s4d.errors import S3Error

BUCKET = "photos"
ALICE = Principal.of("u-alice", "alice", "Writer")
BOB = Principal.of("u-bob", "bob", "Reader")
CAROL = Principal.of("u-carol", "carol", "SuperUser")
ALLOW, DENY = Effect.ALLOW, Effect.DENY
ARN = f"arn:aws:s3:::{BUCKET}"


def policy(*statements: dict[str, Any], version: str = "2012-10-17") -> CompiledPolicy:
    document = json.dumps({"Version": version, "Statement": list(statements)}).encode()
    return compile_policy(document, BUCKET)


def request(
    action: str,
    key: str | None = None,
    principal: Principal | None = None,
    **context: str | list[str],
) -> PolicyRequest:
    values = {
        name.replace("__", ":").replace("_", "-"): [v] if isinstance(v, str) else v
        for name, v in context.items()
    }
    return PolicyRequest(action, BUCKET, key, principal, MappingContext(values))


Row = tuple[str, str | None, Principal | None, dict[str, Any], Effect | None]


def assert_rows(case: SynchronousTestCase, compiled: CompiledPolicy, rows: list[Row]) -> None:
    """Each row's request evaluates to the row's expected answer."""
    for action, key, who, ctx, expected in rows:
        values = {k: [v] if isinstance(v, str) else v for k, v in ctx.items()}
        got = compiled.evaluate(PolicyRequest(action, BUCKET, key, who, MappingContext(values)))
        case.assertEqual(got, expected, (action, key, who and who.username, ctx))


class EvaluateTableTests(SynchronousTestCase):
    def check(self, compiled: CompiledPolicy, rows: list[Row]) -> None:
        assert_rows(self, compiled, rows)

    def test_public_read_website(self) -> None:
        compiled = policy(
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"{ARN}/*",
            }
        )
        self.check(
            compiled,
            [
                ("s3:GetObject", "index.html", None, {}, ALLOW),
                ("s3:GetObject", "a/b/c", BOB, {}, ALLOW),
                ("S3:GETOBJECT", "x", None, {}, ALLOW),
                ("s3:GetObjectVersion", "x", None, {}, ALLOW),
                ("s3:PutObject", "x", None, {}, None),
                ("s3:ListBucket", None, None, {}, None),
                ("s3:GetObjectAcl", "x", None, {}, None),
                ("s3:GetObject", None, None, {}, None),  # the bucket is not an object
            ],
        )
        self.assertTrue(compiled.is_public)

    def test_partner_writes_under_incoming_only(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::000000000000:user/alice"]},
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": f"{ARN}/incoming/*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
                "Action": "s3:ListBucket",
                "Resource": ARN,
                "Condition": {"StringLike": {"s3:prefix": ["incoming/*", "incoming/"]}},
            },
        )
        self.check(
            compiled,
            [
                ("s3:PutObject", "incoming/report.csv", ALICE, {}, ALLOW),
                ("s3:PutObject", "incoming/", ALICE, {}, ALLOW),
                ("s3:PutObject", "incomingX", ALICE, {}, None),
                ("s3:PutObject", "outgoing/report.csv", ALICE, {}, None),
                ("s3:PutObject", "incoming/report.csv", BOB, {}, None),
                ("s3:PutObject", "incoming/report.csv", None, {}, None),
                ("s3:AbortMultipartUpload", "incoming/x", ALICE, {}, ALLOW),
                ("s3:DeleteObject", "incoming/x", ALICE, {}, None),
                ("s3:ListBucket", None, ALICE, {"s3:prefix": "incoming/a"}, ALLOW),
                ("s3:ListBucket", None, ALICE, {"s3:prefix": "secret/"}, None),
                ("s3:ListBucket", None, ALICE, {}, None),
            ],
        )
        self.assertFalse(compiled.is_public)

    def test_deny_plain_http(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:Get*",
                "Resource": [ARN, f"{ARN}/*"],
            },
            {
                "Sid": "TLSOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [ARN, f"{ARN}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        )
        tls, plain = {"aws:SecureTransport": "true"}, {"aws:SecureTransport": "false"}
        self.check(
            compiled,
            [
                ("s3:GetObject", "k", None, tls, ALLOW),
                ("s3:GetObject", "k", None, plain, DENY),
                ("s3:GetObject", "k", ALICE, plain, DENY),
                ("s3:PutObject", "k", ALICE, plain, DENY),
                ("s3:PutObject", "k", ALICE, tls, None),
                ("s3:GetBucketAcl", None, ALICE, tls, ALLOW),
                ("s3:GetObject", "k", None, {"aws:SecureTransport": "FALSE"}, DENY),
                # the key absent: Bool is a positive operator, so the Deny does not apply
                ("s3:GetObject", "k", None, {}, ALLOW),
            ],
        )

    def test_deny_delete_to_one_user_by_every_name(self) -> None:
        for name in ("arn:aws:iam::123456789012:user/alice", "u-alice",
                     "arn:aws:iam::u-alice:root", "arn:aws:iam::x:user/team/alice"):  # fmt: skip
            compiled = policy(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": name},
                    "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    "Resource": f"{ARN}/*",
                }
            )
            self.check(
                compiled,
                [
                    ("s3:DeleteObject", "k", ALICE, {}, DENY),
                    ("s3:DeleteObjectVersion", "k", ALICE, {}, DENY),
                    ("s3:DeleteObject", "k", BOB, {}, None),
                    ("s3:DeleteObject", "k", None, {}, None),
                    ("s3:PutObject", "k", ALICE, {}, None),
                ],
            )

    def test_canonical_user_principal(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": {"CanonicalUser": BOB.canonical_id},
                "Action": "s3:GetObject",
                "Resource": f"{ARN}/*",
            }
        )
        self.check(
            compiled,
            [("s3:GetObject", "k", BOB, {}, ALLOW), ("s3:GetObject", "k", ALICE, {}, None)],
        )

    def test_not_principal_deny_everyone_else(self) -> None:
        compiled = policy(
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": ["arn:aws:iam::1:user/carol", "u-alice"]},
                "Action": "s3:*",
                "Resource": [ARN, f"{ARN}/*"],
            }
        )
        self.check(
            compiled,
            [
                ("s3:GetObject", "k", CAROL, {}, None),
                ("s3:GetObject", "k", ALICE, {}, None),
                ("s3:GetObject", "k", BOB, {}, DENY),
                ("s3:GetObject", "k", None, {}, DENY),
                ("s3:ListBucket", None, None, {}, DENY),
            ],
        )

    def test_not_action_and_not_resource(self) -> None:
        compiled = policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "NotAction": ["s3:GetObject", "s3:List*"],
                "Resource": f"{ARN}/*",
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "NotResource": f"{ARN}/private/*",
            },
        )
        self.check(
            compiled,
            [
                ("s3:GetObject", "public/a", None, {}, ALLOW),
                ("s3:GetObject", "private/a", None, {}, None),
                ("s3:PutObject", "public/a", ALICE, {}, DENY),
                ("s3:ListBucketVersions", None, ALICE, {}, None),
                ("s3:DeleteObject", "x", ALICE, {}, DENY),
                # an action outside AWS's list: NotAction covers it
                ("s3:RenameObject", "x", ALICE, {}, DENY),
            ],
        )

    def test_wildcards_in_resources(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": [f"{ARN}/img/??.png", f"{ARN}/docs/*/readme*", "arn:aws:s3:::ph*/x"],
            }
        )
        self.check(
            compiled,
            [
                ("s3:GetObject", "img/ab.png", None, {}, ALLOW),
                ("s3:GetObject", "img/abc.png", None, {}, None),
                ("s3:GetObject", "docs/a/b/readme.md", None, {}, ALLOW),
                ("s3:GetObject", "docs/readme.md", None, {}, None),
                ("s3:GetObject", "x", None, {}, ALLOW),
                ("s3:GetObject", "img/a\n.png", None, {}, ALLOW),
            ],
        )

    def test_ip_conditions(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{ARN}/*",
                "Condition": {
                    "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
                    "NotIpAddress": {"aws:SourceIp": "192.0.2.128/25"},
                },
            }
        )
        self.check(
            compiled,
            [
                ("s3:GetObject", "k", None, {"aws:SourceIp": "192.0.2.7"}, ALLOW),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "192.0.2.200"}, None),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "198.51.100.1"}, None),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "2001:db8::1"}, ALLOW),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "2001:db9::1"}, None),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "not an ip"}, None),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "::ffff:192.0.2.7"}, ALLOW),
                ("s3:GetObject", "k", None, {"aws:SourceIp": "::ffff:192.0.2.200"}, None),
                ("s3:GetObject", "k", None, {}, None),
            ],
        )
        self.assertFalse(compiled.is_public)

    def test_string_operators_and_if_exists(self) -> None:
        compiled = policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{ARN}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{ARN}/*",
                "Condition": {
                    "StringEqualsIgnoreCase": {"s3:x-amz-acl": ["private", "bucket-owner-read"]},
                    "StringLikeIfExists": {"aws:Referer": "https://*.example.com/*"},
                },
            },
        )
        sse = {"s3:x-amz-server-side-encryption": "AES256"}
        self.check(
            compiled,
            [
                ("s3:PutObject", "k", None, {}, DENY),  # negated operator, key absent: true
                ("s3:PutObject", "k", None, {**sse, "s3:x-amz-acl": "PRIVATE"}, ALLOW),
                ("s3:PutObject", "k", None, {**sse, "s3:x-amz-acl": "public-read"}, None),
                (
                    "s3:PutObject",
                    "k",
                    None,
                    {**sse, "s3:x-amz-acl": "private", "aws:Referer": "https://www.example.com/a"},
                    ALLOW,
                ),
                (
                    "s3:PutObject",
                    "k",
                    None,
                    {**sse, "s3:x-amz-acl": "private", "aws:Referer": "https://evil.test/"},
                    None,
                ),
                ("s3:PutObject", "k", None, {"s3:x-amz-server-side-encryption": "aws:kms"}, DENY),
            ],
        )

    def test_numeric_date_and_null(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:ListBucket",
                "Resource": ARN,
                "Condition": {
                    "NumericLessThanEquals": {"s3:max-keys": "100"},
                    "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
                    "DateGreaterThanEquals": {"aws:EpochTime": 1767225600},
                    "Null": {"s3:delimiter": "false"},
                },
            }
        )
        no_delimiter = {
            "s3:max-keys": "100",
            "aws:CurrentTime": "2026-11-30T10:00:00Z",
            "aws:EpochTime": "1780000000",
        }
        ok = {
            "s3:max-keys": "100",
            "aws:CurrentTime": "2026-11-30T10:00:00Z",
            "aws:EpochTime": "1780000000",
            "s3:delimiter": "/",
        }
        self.check(
            compiled,
            [
                ("s3:ListBucket", None, None, ok, ALLOW),
                ("s3:ListBucket", None, None, {**ok, "s3:max-keys": "1000"}, None),
                ("s3:ListBucket", None, None, {**ok, "s3:max-keys": "ten"}, None),
                ("s3:ListBucket", None, None, {**ok, "aws:CurrentTime": "2027-06-01"}, None),
                ("s3:ListBucket", None, None, {**ok, "aws:EpochTime": "1700000000"}, None),
                ("s3:ListBucket", None, None, no_delimiter, None),
            ],
        )  # fmt: skip

    def test_set_qualifiers_on_tag_keys(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{ARN}/*",
                "Condition": {
                    "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "env"]},
                    "ForAnyValue:StringLike": {"s3:RequestObjectTag/env": ["prod", "stag*"]},
                },
            }
        )
        self.check(
            compiled,
            [
                ("s3:PutObject", "k", None, {"s3:RequestObjectTagKeys": ["team", "env"],
                                            "s3:RequestObjectTag/env": "staging"}, ALLOW),
                ("s3:PutObject", "k", None, {"s3:RequestObjectTagKeys": ["team", "cost"],
                                            "s3:RequestObjectTag/env": "prod"}, None),
                ("s3:PutObject", "k", None, {"s3:RequestObjectTag/env": "prod"}, ALLOW),
                ("s3:PutObject", "k", None, {"s3:RequestObjectTag/env": "dev"}, None),
                ("s3:PutObject", "k", None, {"s3:RequestObjectTag/ENV": "prod"}, None),
            ],
        )  # fmt: skip

    def test_existing_object_tag(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:GetObject",
                "Resource": f"{ARN}/*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}},
            }
        )
        self.check(
            compiled,
            [
                ("s3:GetObject", "k", None, {"s3:existingobjecttag/security": "public"}, ALLOW),
                ("s3:GetObject", "k", None, {"s3:ExistingObjectTag/security": "private"}, None),
                ("s3:GetObject", "k", None, {"s3:ExistingObjectTag/security1": "public"}, None),
            ],
        )

    def test_explicit_deny_wins_whatever_the_order(self) -> None:
        allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": f"{ARN}/*"}
        deny = {**allow, "Effect": "Deny", "Action": "s3:DeleteObject"}
        for statements in ((allow, deny), (deny, allow)):
            compiled = policy(*statements)
            self.check(
                compiled,
                [
                    ("s3:DeleteObject", "k", ALICE, {}, DENY),
                    ("s3:GetObject", "k", ALICE, {}, ALLOW),
                ],
            )

    def test_action_names_outside_the_list(self) -> None:
        compiled = policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:Get*", "Resource": f"{ARN}/*"}
        )
        self.check(
            compiled,
            [
                ("s3:GetSomethingNew", "k", None, {}, ALLOW),
                ("s3:PutSomethingNew", "k", None, {}, None),
                ("iam:GetUser", "k", None, {}, None),
            ],
        )

    def test_service_principal_matches_no_caller(self) -> None:
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{ARN}/logs/*",
                "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::src*"}},
            }
        )
        self.check(compiled, [("s3:PutObject", "logs/x", ALICE, {}, None)])
        self.assertFalse(compiled.is_public)


class PathologicalPatternTests(SynchronousTestCase):
    """Patterns that make a backtracking matcher take exponential time still answer.

    Nothing here measures time: with the plain translation of ``*`` to ``.*``
    these cases would not finish (``(a*){40}c`` against 4,000 ``a``), so the
    test would hang; with the linear translation they answer at once.
    """

    def test_many_stars_in_a_resource_and_a_condition(self) -> None:
        many = "a*" * 40 + "c"
        compiled = policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"{ARN}/{many}", f"arn:aws:s3:::{'*' * 5000}"],
                "Condition": {"StringLike": {"s3:prefix": many}},
            }
        )
        long_key = "a" * 4000
        self.assertEqual(
            compiled.evaluate(request("s3:GetObject", long_key, s3__prefix=long_key + "c")), ALLOW
        )
        self.assertIsNone(compiled.evaluate(request("s3:ListBucket", s3__prefix=long_key)))
        self.assertEqual(
            compiled.evaluate(request("s3:ListBucket", s3__prefix=long_key + "c")), ALLOW
        )
        stars = policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{ARN}/{'*?' * 2000}x",
            }
        )
        self.assertIsNone(stars.evaluate(request("s3:GetObject", "b" * 4000)))
        self.assertEqual(stars.evaluate(request("s3:GetObject", "b" * 4000 + "x")), ALLOW)


class PolicyVariableTests(SynchronousTestCase):
    """``${aws:username}`` and kin, in Resource and in condition values (2012-10-17 only)."""

    def check(self, compiled: CompiledPolicy, rows: list[Row]) -> None:
        assert_rows(self, compiled, rows)

    def home_policy(self, version: str) -> CompiledPolicy:
        return policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{ARN}/home/${{aws:username}}/*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:ListBucket",
                "Resource": ARN,
                "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "${*}"]}},
            },
            version=version,
        )

    def test_home_directories(self) -> None:
        compiled = self.home_policy("2012-10-17")
        alice = {"aws:username": "alice"}
        self.check(
            compiled,
            [
                ("s3:PutObject", "home/alice/a.txt", ALICE, alice, ALLOW),
                ("s3:PutObject", "home/bob/a.txt", ALICE, alice, None),
                ("s3:PutObject", "home/alice/a.txt", None, {}, None),  # no username: no match
                ("s3:ListBucket", None, ALICE, {**alice, "s3:prefix": "home/alice/x"}, ALLOW),
                ("s3:ListBucket", None, ALICE, {**alice, "s3:prefix": "home/bob/x"}, None),
                ("s3:ListBucket", None, ALICE, {**alice, "s3:prefix": "*"}, ALLOW),
                ("s3:ListBucket", None, ALICE, {**alice, "s3:prefix": "anything"}, None),
            ],
        )
        # a username is literal text, never a wildcard
        star = {"aws:username": "*"}
        self.check(
            compiled,
            [
                ("s3:PutObject", "home/*/a", ALICE, star, ALLOW),
                ("s3:PutObject", "home/bob/a", ALICE, star, None),
            ],
        )

    def test_version_2008_has_no_variables(self) -> None:
        compiled = self.home_policy("2008-10-17")
        self.check(
            compiled,
            [
                ("s3:PutObject", "home/alice/a", ALICE, {"aws:username": "alice"}, None),
                ("s3:PutObject", "home/${aws:username}/a", ALICE, {}, ALLOW),
            ],
        )

    def test_defaults_and_string_equals(self) -> None:
        compiled = policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{ARN}/*",
                "Condition": {
                    "StringNotEqualsIgnoreCase": {
                        "s3:x-amz-grant-full-control": "id=${aws:userid, 'nobody'}"
                    }
                },
            }
        )
        self.check(
            compiled,
            [
                ("s3:PutObject", "k", ALICE, {"aws:userid": "u-alice",
                                             "s3:x-amz-grant-full-control": "ID=U-ALICE"}, None),
                ("s3:PutObject", "k", ALICE, {"aws:userid": "u-alice",
                                             "s3:x-amz-grant-full-control": "id=u-bob"}, DENY),
                ("s3:PutObject", "k", None, {"s3:x-amz-grant-full-control": "id=nobody"}, None),
            ],
        )  # fmt: skip

    def test_unknown_variable_refused(self) -> None:
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"{ARN}/${{aws:nonsense}}/*",
        }
        error = self.assertRaises(S3Error, policy, statement)
        self.assertEqual(error.message, "Policy has an invalid condition key")
        statement["Resource"] = "arn:aws:s3:::${aws:username}/*"
        policy(statement)  # the variable could be this bucket


class PublicityTests(SynchronousTestCase):
    """AWS's definition of a public policy, statement by statement."""

    def public(self, **extra: Any) -> bool:
        statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
        statement["Resource"] = f"{ARN}/*"
        statement.update(extra)
        return policy(statement).is_public

    def test_cases(self) -> None:
        self.assertTrue(self.public())
        self.assertTrue(self.public(Principal={"AWS": ["*"]}))
        self.assertTrue(self.public(Principal={"AWS": ["u-alice", "*"]}))
        self.assertFalse(self.public(Principal={"AWS": "u-alice"}))
        self.assertFalse(self.public(Effect="Deny"))
        self.assertFalse(self.public(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}}))
        self.assertTrue(self.public(Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}))
        self.assertTrue(self.public(Condition={"IpAddress": {"aws:SourceIp": "::/16"}}))
        self.assertTrue(self.public(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
        self.assertFalse(self.public(Condition={"StringEquals": {"aws:SourceAccount": "1"}}))
        self.assertTrue(self.public(Condition={"StringLike": {"aws:SourceAccount": "1*"}}))
        self.assertTrue(self.public(Condition={"StringEqualsIfExists": {"aws:userid": "a"}}))
        self.assertFalse(self.public(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::x"}}))
        self.assertTrue(self.public(Condition={"StringEquals": {"s3:prefix": "a"}}))
        self.assertTrue(self.public(Condition={"Bool": {"aws:SecureTransport": "true"}}))


class ContextTests(SynchronousTestCase):
    def test_mapping_context_key_names_ignore_case_but_tag_keys_do_not(self) -> None:
        ctx = MappingContext({"AWS:SourceIp": ["1.2.3.4"], "s3:ExistingObjectTag/Color": ["red"]})
        self.assertEqual(ctx.get("aws:sourceip"), ["1.2.3.4"])
        self.assertEqual(ctx.get("S3:EXISTINGOBJECTTAG/Color"), ["red"])
        self.assertIsNone(ctx.get("s3:ExistingObjectTag/color"))
        self.assertIsNone(ctx.get("s3:prefix"))
        self.assertIn("aws:SOURCEIP", ctx)

    def test_request_helper(self) -> None:
        req = request("s3:ListBucket", None, None, s3__prefix="a/")
        self.assertEqual(req.context.get("s3:prefix"), ["a/"])
