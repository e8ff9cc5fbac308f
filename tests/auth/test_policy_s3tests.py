"""Every bucket policy ceph/s3-tests sends, compiled and asked what its test expects.

Strategy: the documents of ``s3tests/functional/test_s3.py`` (the
``make_json_policy``/``Policy``/``Statement`` helpers of ``policy.py`` and the
literal ``json.dumps`` documents) are rebuilt here exactly as the suite builds
them, for the suite's bucket names; each is compiled for its bucket and asked
the requests its test makes, with the condition values the request would
carry. The answer expected is what the test asserts (an allowed call, or
``check_access_denied``); the ACL and ownership half of a test's outcome is
the authorization decision's business, not the policy's.
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

B = "s3tests-bucket-1"
B2 = "s3tests-bucket-2"
MAIN = Principal.of("main-user-id", "main", "Writer")
ALT = Principal.of("alt-user-id", "alt", "Writer")
ALLOW, DENY = Effect.ALLOW, Effect.DENY


def arn(path: str) -> str:
    """``_make_arn_resource``."""
    return f"arn:aws:s3:::{path}"


def statement(
    action: Any,
    resource: Any,
    principal: Any = None,
    effect: str = "Allow",
    condition: Any = None,
) -> dict[str, Any]:
    """``policy.Statement.to_dict``."""
    found = {
        "Action": action,
        "Principal": {"AWS": "*"} if principal is None else principal,
        "Effect": effect,
        "Resource": resource,
    }
    if condition is not None:
        found["Condition"] = condition
    return found


def policy_json(*statements: dict[str, Any]) -> str:
    """``policy.Policy.to_json``."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def make_json_policy(action: Any, resource: Any, **kwargs: Any) -> str:
    """``policy.make_json_policy``."""
    if "conditions" in kwargs:
        kwargs["condition"] = kwargs.pop("conditions")
    return policy_json(statement(action, resource, **kwargs))


def list_policy(effect: str = "Allow", **extra: Any) -> str:
    """The literal ListBucket document of test_bucket_policy and its siblings."""
    body = {
        "Effect": effect,
        "Principal": {"AWS": "*"},
        "Action": "s3:ListBucket",
        "Resource": [arn(B), arn(B + "/*")],
    }
    body.update(extra)
    return json.dumps({"Version": "2012-10-17", "Statement": [body]})


class S3TestsPolicies(SynchronousTestCase):
    def compiled(self, document: str, bucket: str = B) -> CompiledPolicy:
        return compile_policy(document.encode(), bucket)

    def ask(
        self,
        policy: CompiledPolicy,
        action: str,
        key: str | None,
        who: Principal | None,
        expected: Effect | None,
        bucket: str = B,
        **context: str,
    ) -> None:
        values = MappingContext({name: [value] for name, value in context.items()})
        got = policy.evaluate(PolicyRequest(action, bucket, key, who, values))
        self.assertEqual(got, expected, (action, key, who and who.username, context))

    def test_bucket_policy_and_list_v2_and_status(self) -> None:
        """test_bucket_policy, test_bucketv2_policy, test_set_get_del_bucket_policy,
        test_get_publicpolicy_acl_bucket_policy_status."""
        document = list_policy()
        policy = self.compiled(document)
        self.assertEqual(policy.document, document.encode())
        self.ask(policy, "s3:ListBucket", None, ALT, ALLOW)
        self.ask(policy, "s3:GetObject", "asdf", ALT, None)
        self.assertTrue(policy.is_public)

    def test_bucket_policy_acl(self) -> None:
        """test_bucket_policy_acl, test_bucketv2_policy_acl: the Deny wins over the ACL."""
        policy = self.compiled(list_policy("Deny"))
        self.ask(policy, "s3:ListBucket", None, ALT, DENY)
        self.assertFalse(policy.is_public)

    def test_bucket_policy_deny_self_denied_policy(self) -> None:
        document = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": [
                            "s3:PutBucketPolicy",
                            "s3:GetBucketPolicy",
                            "s3:DeleteBucketPolicy",
                        ],
                        "Resource": [arn(B), arn(B + "/*")],
                    }
                ],
            }
        )
        policy = self.compiled(document)
        for action in ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"):
            self.ask(policy, action, None, ALT, DENY)
            self.ask(policy, action, None, MAIN, DENY)
        self.ask(policy, "s3:GetObject", "k", ALT, None)

    def test_bucket_policy_multipart(self) -> None:
        on_bucket = self.compiled(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": "s3:PutObject",
                            "Resource": f"arn:aws:s3:::{B}",
                        }
                    ],
                }
            )
        )
        self.ask(on_bucket, "s3:PutObject", "mpobj", ALT, None)
        on_object = self.compiled(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": "s3:PutObject",
                            "Resource": f"arn:aws:s3:::{B}/mpobj",
                        }
                    ],
                }
            )
        )
        self.ask(on_object, "s3:PutObject", "mpobj", ALT, ALLOW)
        self.ask(on_object, "s3:PutObject", "mpobj2", ALT, None)

    def test_bucket_policy_another_bucket(self) -> None:
        """test_bucket_policy_another_bucket, v2: the same document stored on two buckets."""
        document = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "s3:ListBucket",
                        "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
                    }
                ],
            }
        )
        first = self.compiled(document)
        second = self.compiled(first.document.decode(), B2)
        self.ask(first, "s3:ListBucket", None, ALT, ALLOW)
        self.ask(second, "s3:ListBucket", None, ALT, ALLOW, bucket=B2)

    def test_bucket_policy_set_condition_operator_end_with_IfExists(self) -> None:
        document = """{
      "Version":"2012-10-17",
      "Statement": [{
        "Sid": "Allow Public Access to All Objects",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Condition": {
                    "StringLikeIfExists": {
                        "aws:Referer": "http://www.example.com/*"
                    }
                },
        "Resource": "arn:aws:s3:::%s/*"
      }
     ]
    }""".replace("%s", B)
        policy = self.compiled(document)
        self.ask(
            policy, "s3:GetObject", "foo", MAIN, ALLOW, **{"aws:Referer": "http://www.example.com/"}
        )
        self.ask(
            policy,
            "s3:GetObject",
            "foo",
            MAIN,
            ALLOW,
            **{"aws:Referer": "http://www.example.com/index.html"},
        )
        self.ask(policy, "s3:GetObject", "foo", MAIN, ALLOW)
        self.ask(policy, "s3:GetObject", "foo", MAIN, None, **{"aws:Referer": "http://example.com"})

    # fmt: skip

    def test_existing_object_tag_policies(self) -> None:
        """test_bucket_policy_get_obj_existing_tag, ..._get_obj_tagging_existing_tag,
        ..._put_obj_tagging_existing_tag, ..._get_obj_acl_existing_tag."""
        tag_conditional = {"StringEquals": {"s3:ExistingObjectTag/security": "public"}}
        for action in ("s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging",
                       "s3:GetObjectAcl"):  # fmt: skip
            policy = self.compiled(
                make_json_policy(action, arn(f"{B}/*"), conditions=tag_conditional)
            )
            public = {"s3:ExistingObjectTag/security": "public", "s3:ExistingObjectTag/foo": "bar"}
            self.ask(policy, action, "publictag", ALT, ALLOW, **public)
            private = {"s3:ExistingObjectTag/security": "private"}
            self.ask(policy, action, "privatetag", ALT, None, **private)
            invalid = {"s3:ExistingObjectTag/security1": "public"}
            self.ask(policy, action, "invalidtag", ALT, None, **invalid)
            if action == "s3:GetObjectTagging":
                self.ask(policy, "s3:GetObject", "publictag", ALT, None, **public)

    def test_copy_policies(self) -> None:
        """test_bucket_policy_upload_part_copy, ..._put_obj_copy_source, ..._copy_source_meta."""
        source = self.compiled(make_json_policy("s3:GetObject", arn(f"{B}/public/*")))
        self.ask(source, "s3:GetObject", "public/foo", ALT, ALLOW)
        self.ask(source, "s3:GetObject", "private/foo", ALT, None)
        copy_source = {"StringLike": {"s3:x-amz-copy-source": B + "/public/*"}}
        target = self.compiled(
            make_json_policy("s3:PutObject", arn(f"{B2}/*"), conditions=copy_source), B2
        )
        for key, expected in (("public/foo", ALLOW), ("public/bar", ALLOW), ("private/foo", None)):
            ctx = {"s3:x-amz-copy-source": f"{B}/{key}"}
            self.ask(target, "s3:PutObject", "new_foo", ALT, expected, bucket=B2, **ctx)
        directive = {"StringEquals": {"s3:x-amz-metadata-directive": "COPY"}}
        meta = self.compiled(
            make_json_policy("s3:PutObject", arn(f"{B2}/*"), conditions=directive), B2
        )
        ctx = {"s3:x-amz-metadata-directive": "COPY"}
        self.ask(meta, "s3:PutObject", "new_foo", ALT, ALLOW, bucket=B2, **ctx)
        self.ask(meta, "s3:PutObject", "new_foo2", ALT, None, bucket=B2)

    def test_bucket_policy_put_obj_acl(self) -> None:
        resource = arn(f"{B}/*")
        conditional = {"StringLike": {"s3:x-amz-acl": "public*"}}
        policy = self.compiled(
            policy_json(
                statement("s3:PutObject", resource),
                statement("s3:PutObject", resource, effect="Deny", condition=conditional),
            )
        )
        self.ask(policy, "s3:PutObject", "private-key", ALT, ALLOW)
        self.ask(policy, "s3:PutObject", "public-key", ALT, DENY, **{"s3:x-amz-acl": "public-read"})

    def test_bucket_policy_put_obj_grant(self) -> None:
        owner_id_str = "id=" + MAIN.canonical_id
        grant = {"StringEquals": {"s3:x-amz-grant-full-control": owner_id_str}}
        policy = self.compiled(make_json_policy("s3:PutObject", arn(f"{B}/*"), conditions=grant))
        ctx = {"s3:x-amz-grant-full-control": owner_id_str}
        self.ask(policy, "s3:PutObject", "key1", ALT, ALLOW, **ctx)
        self.ask(policy, "s3:PutObject", "key1", ALT, None)
        plain = self.compiled(make_json_policy("s3:PutObject", arn(f"{B2}/*")), B2)
        self.ask(plain, "s3:PutObject", "key2", ALT, ALLOW, bucket=B2)

    def test_encryption_policies(self) -> None:
        """test_bucket_policy_put_obj_s3_noenc, ..._incorrect_algo_sse_s3, ..._s3_kms,
        ..._kms_noenc, ..._kms_s3, test_encryption_sse_c_*_with_bucket_policy."""
        resource = arn(f"{B}/*")
        sse = "s3:x-amz-server-side-encryption"
        noenc = {"Null": {sse: "true"}}

        def deny(condition: dict[str, Any]) -> dict[str, Any]:
            return statement("s3:PutObject", resource, effect="Deny", condition=condition)

        only_noenc = self.compiled(policy_json(deny(noenc)))
        self.ask(only_noenc, "s3:PutObject", "testobj", MAIN, DENY)
        self.ask(only_noenc, "s3:PutObject", "testobj", MAIN, None, **{sse: "AES256"})
        algo = self.compiled(policy_json(deny({"StringNotEquals": {sse: "AES256"}})))
        self.ask(algo, "s3:PutObject", "testobj", MAIN, DENY, **{sse: "AES192"})
        self.ask(algo, "s3:PutObject", "testobj", MAIN, None, **{sse: "AES256"})
        s3_only = self.compiled(
            policy_json(deny({"StringNotEquals": {sse: "AES256"}}), deny(noenc))
        )
        self.ask(s3_only, "s3:PutObject", "testobj", MAIN, DENY, **{sse: "aws:kms"})
        kms_only = self.compiled(
            policy_json(deny({"StringNotEquals": {sse: "aws:kms"}}), deny(noenc))
        )
        self.ask(kms_only, "s3:PutObject", "testobj", MAIN, None, **{sse: "aws:kms"})
        self.ask(kms_only, "s3:PutObject", "unicorn", MAIN, DENY)
        self.ask(kms_only, "s3:PutObject", "testobj", MAIN, DENY, **{sse: "AES256"})
        customer = "s3:x-amz-server-side-encryption-customer-algorithm"
        sse_c = self.compiled(policy_json(deny({"Null": {customer: "true"}})))
        self.ask(sse_c, "s3:PutObject", "foo", MAIN, DENY)
        self.ask(sse_c, "s3:PutObject", "foo", MAIN, None, **{customer: "AES256"})
        sse_c_algo = self.compiled(policy_json(deny({"StringNotEquals": {customer: "AES256"}})))
        self.ask(sse_c_algo, "s3:PutObject", "foo", MAIN, DENY, **{customer: "AES192"})
        self.ask(sse_c_algo, "s3:PutObject", "foo", MAIN, None, **{customer: "AES256"})

    # fmt: skip

    def test_bucket_policy_put_obj_request_obj_tag(self) -> None:
        tag = {"StringEquals": {"s3:RequestObjectTag/security": "public"}}
        policy = self.compiled(policy_json(statement("s3:PutObject", arn(f"{B}/*"), condition=tag)))
        self.ask(policy, "s3:PutObject", "testobj", ALT, None)
        ctx = {"s3:RequestObjectTag/security": "public"}
        self.ask(policy, "s3:PutObject", "testobj", ALT, ALLOW, **ctx)

    def test_object_tagging_public(self) -> None:
        """test_get_tags_acl_public, test_put_tags_acl_public, test_delete_tags_obj_public."""
        key = "testputtagsacl"
        for action in ("s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObjectTagging"):
            policy = self.compiled(make_json_policy(action, arn(f"{B}/{key}")))
            self.ask(policy, action, key, ALT, ALLOW)
            self.ask(policy, action, key + "2", ALT, None)

    def test_policy_status(self) -> None:
        """test_get_nonpublicpolicy_acl_bucket_policy_status,
        test_get_nonpublicpolicy_principal_bucket_policy_status."""
        ip = self.compiled(list_policy(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}}))
        self.assertFalse(ip.is_public)
        self.ask(ip, "s3:ListBucket", None, ALT, ALLOW, **{"aws:SourceIp": "10.0.0.0"})
        self.ask(ip, "s3:ListBucket", None, ALT, None, **{"aws:SourceIp": "10.0.0.1"})
        tenant = self.compiled(list_policy(Principal={"AWS": "arn:aws:iam::s3tenant1:root"}))
        self.assertFalse(tenant.is_public)
        self.ask(tenant, "s3:ListBucket", None, ALT, None)
        self.ask(tenant, "s3:ListBucket", None, Principal.of("s3tenant1", "t", "Reader"), ALLOW)

    def test_bucket_policy_allow_notprincipal(self) -> None:
        document = list_policy()
        body = json.loads(document)
        body["Statement"][0]["NotPrincipal"] = {"AWS": "arn:aws:iam::s3tenant1:root"}
        del body["Statement"][0]["Principal"]
        error = self.assertRaises(S3Error, compile_policy, json.dumps(body).encode(), B)
        self.assertEqual((error.code, error.status), ("MalformedPolicy", 400))

    def test_get_public_block_deny_bucket_policy(self) -> None:
        policy = self.compiled(
            make_json_policy("s3:GetBucketPublicAccessBlock", arn(B), effect="Deny")
        )
        self.ask(policy, "s3:GetBucketPublicAccessBlock", None, MAIN, DENY)
        self.assertFalse(policy.is_public)

    def test_block_public_policy(self) -> None:
        """test_block_public_policy, ..._with_principal,
        test_block_public_restrict_public_buckets."""
        public = self.compiled(make_json_policy("s3:GetObject", arn(f"{B}/*")))
        self.assertTrue(public.is_public)
        self.ask(public, "s3:GetObject", "foo", None, ALLOW)
        principal = {"AWS": "arn:aws:iam::s3tenant1:root"}
        named = self.compiled(make_json_policy("s3:GetObject", arn(f"{B}/*"), principal=principal))
        self.assertFalse(named.is_public)

    def test_every_action_on_a_bucket(self) -> None:
        """test_multipart_upload_on_a_bucket_with_policy, and public_bucket_policy()."""
        for principal in ("*", {"AWS": "*"}):
            policy = self.compiled(
                json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": principal,
                                "Action": "*",
                                "Resource": [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"],
                            }
                        ],
                    }
                )
            )
            for action, key in (("s3:PutObject", "foo"), ("s3:ListBucketMultipartUploads", None),
                                ("s3:AbortMultipartUpload", "foo"),
                                ("s3:CompleteAnything", "foo")):  # fmt: skip
                self.ask(policy, action, key, ALT, ALLOW)
                self.ask(policy, action, key, None, ALLOW)

    def test_head_object_404_with_policy_prefix(self) -> None:
        policy = self.compiled(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": "s3:ListBucket",
                            "Resource": f"arn:aws:s3:::{B}",
                            "Condition": {"StringLike": {"s3:prefix": "public/*"}},
                        }
                    ],
                }
            )
        )
        self.ask(policy, "s3:ListBucket", None, ALT, ALLOW, **{"s3:prefix": "public/object"})
        self.ask(policy, "s3:ListBucket", None, ALT, None, **{"s3:prefix": "private/object"})

    def test_bucket_logging_policies(self) -> None:
        """_set_log_bucket_policy_tenant, test_put_bucket_logging_permissions,
        _put_bucket_logging_policy_wildcard: a service principal, an ARN condition."""
        log_bucket, prefix = B2, "log/"

        def logging_statement(resource_key: str, source: str, account_op: str) -> dict[str, Any]:
            return {
                "Sid": "S3ServerAccessLogsPolicy",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["s3:PutObject"],
                "Resource": f"arn:aws:s3:::{log_bucket}/{resource_key}",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                    account_op: {"aws:SourceAccount": "main-user-id"},
                },
            }

        documents = [
            policy_json(logging_statement(prefix, B, "StringEquals")),
            policy_json(logging_statement("kaboom", B, "StringEquals")),
            policy_json(logging_statement(prefix, "kaboom", "StringEquals")),
            policy_json(logging_statement(prefix, B, "StringLike"),
                        logging_statement(prefix, "*", "StringLike")),
        ]  # fmt: skip
        for document in documents:
            policy = self.compiled(document, log_bucket)
            self.assertFalse(policy.is_public)
            # a service principal is never an s4d caller
            self.ask(policy, "s3:PutObject", prefix + "x", ALT, None, bucket=log_bucket)
        widened = json.loads(documents[0])
        widened["Statement"][0]["Principal"] = {"AWS": "*"}
        policy = self.compiled(json.dumps(widened), log_bucket)
        self.assertFalse(policy.is_public)  # restricted to a source ARN and account
        ctx = {"aws:SourceArn": f"arn:aws:s3:::{B}", "aws:SourceAccount": "main-user-id"}
        self.ask(policy, "s3:PutObject", prefix, ALT, ALLOW, bucket=log_bucket, **ctx)
        self.ask(policy, "s3:PutObject", prefix, ALT, None, bucket=log_bucket)

    def test_logging_policy_without_resource_is_refused(self) -> None:
        """test_bucket_logging_owner stores a statement with no Resource and expects 204;
        AWS refuses it, and so does s4d (AWS's answer is the default)."""
        document = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": ["s3:PutBucketLogging"]}
                ],
            }
        )
        error = self.assertRaises(S3Error, compile_policy, document.encode(), B)
        self.assertEqual(error.message, "Missing required field Resource")
