"""Which policies are refused, and with which of AWS's messages.

Strategy: a valid statement is changed one element at a time; each change is
checked for the error code (``MalformedPolicy``, 400, or ``PolicyTooLarge``)
and AWS's exact message. Policies that must be accepted (both versions, a
single statement object, every operator form) are compiled too.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.policy import MAX_POLICY_BYTES, compile_policy
from s4d.auth.policy.conditions import OPERATORS
from s4d.errors import S3Error

BUCKET = "bkt"
GOOD: dict[str, Any] = {
    "Sid": "One",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
}


def document(statement: dict[str, Any] | None = None, **top: Any) -> bytes:
    body: dict[str, Any] = {"Version": "2012-10-17", "Statement": [statement or GOOD]}
    body.update(top)
    return json.dumps(body).encode()


def changed(**fields: Any) -> bytes:
    statement = {**GOOD, **fields}
    return document({k: v for k, v in statement.items() if v is not REMOVE})


REMOVE = object()


class RefusedTests(SynchronousTestCase):
    def refused(self, text: bytes, message: str, code: str = "MalformedPolicy") -> None:
        error = self.assertRaises(S3Error, compile_policy, text, BUCKET)
        self.assertEqual((error.code, error.message), (code, message), text)
        self.assertEqual(error.status, 400)

    def test_not_json(self) -> None:
        first = "Policies must be valid JSON and the first byte must be '{'"
        for text in (b"", b" {}", b"[]", b'"x"', b"\xef\xbb\xbf{}", b"null"):
            self.refused(text, first)
        invalid = "This policy contains invalid Json"
        for text in (b"{", b"{}x", b'{"Statement": NaN}', b"{\xff}", b"{" + b"[" * 5000):
            self.refused(text, invalid)
        nested = b'{"Id": ' + b"[" * 9000 + b"]" * 9000 + b"}"
        self.refused(nested, invalid)
        twice = document()[:-1] + b', "Statement": []}'
        self.refused(twice, invalid)
        effect_twice = json.dumps(GOOD)[:-1] + ', "Effect": "Deny"}'
        self.refused(('{"Statement": ' + effect_twice + "}").encode(), invalid)

    def test_too_large(self) -> None:
        padding = "x" * MAX_POLICY_BYTES
        text = changed(Sid=padding)
        self.refused(text, "Policy exceeds the maximum allowed document size.", "PolicyTooLarge")
        exactly = document(GOOD, Id="")
        exactly = document(GOOD, Id="y" * (MAX_POLICY_BYTES - len(exactly)))
        self.assertEqual(len(exactly), MAX_POLICY_BYTES)
        compile_policy(exactly, BUCKET)

    def test_top_level(self) -> None:
        self.refused(b"{}", "Missing required field Statement")
        self.refused(document(Extra=1), "Unknown field Extra")
        self.refused(
            document(Version="2012-10-18"), "The policy must contain a valid version string"
        )
        self.refused(document(Version=None), "The policy must contain a valid version string")
        self.refused(
            json.dumps({"Statement": []}).encode(),
            "Could not parse the policy: Statement is empty!",
        )
        self.refused(json.dumps({"Statement": "x"}).encode(), "Invalid policy syntax.")
        self.refused(json.dumps({"Statement": ["x"]}).encode(), "Invalid policy syntax.")
        self.refused(document(Id=3), "Invalid policy syntax.")

    def test_statement_elements(self) -> None:
        self.refused(changed(Effect=REMOVE), "Missing required field Effect")
        self.refused(changed(Effect="allow"), "Invalid effect: allow")
        self.refused(changed(Principal=REMOVE), "Missing required field Principal")
        self.refused(changed(Action=REMOVE), "Missing required field Action")
        self.refused(changed(Resource=REMOVE), "Missing required field Resource")
        self.refused(changed(Conditions={}), "Unknown field Conditions")
        self.refused(changed(Sid=1), "Invalid policy syntax.")
        self.refused(changed(NotAction="s3:PutObject"), "Invalid policy syntax.")
        self.refused(changed(NotResource="arn:aws:s3:::bkt"), "Invalid policy syntax.")

    def test_principals(self) -> None:
        message = "Invalid principal in policy"
        for principal in ("alice", "", [], {}, {"AWS": []}, {"AWS": ""}, {"AWS": 3},
                          {"Federated": "x"}, {"AWS": "arn:aws:iam::1:role/r"},
                          {"AWS": "arn:aws:iam::1:user/"}, {"AWS": "arn:aws:iam:::root"},
                          {"AWS": "arn:aws:iam::*:root"}, {"AWS": "u-*"},
                          {"AWS": "arn:aws:sts::1:assumed-role/r/s"}):  # fmt: skip
            self.refused(changed(Principal=principal), message)
        self.refused(
            changed(Principal=REMOVE, NotPrincipal={"AWS": "arn:aws:iam::1:root"}), message
        )

    def test_actions(self) -> None:
        message = "Policy has invalid action"
        for action in ("GetObject", "s3:GetObjects", "iam:GetUser", "s3:", "s3:Nothing*",
                       [], "", ["s3:GetObject", 3], "ec2:*"):  # fmt: skip
            self.refused(changed(Action=action), message)

    def test_resources(self) -> None:
        message = "Policy has invalid resource"
        for resource in ("*", "bkt/*", "arn:aws:s3:::", "arn:aws:s3:::other/*",
                         "arn:aws:s3:::bk", "arn:aws:s3:::bkt2/*", "arn:aws:s3:::/bkt",
                         "ARN:AWS:S3:::bkt", "arn:aws:s3:::?kt2", [], 7,
                         ["arn:aws:s3:::bkt", "arn:aws:s3:::other"]):  # fmt: skip
            self.refused(changed(Resource=resource), message)

    def test_conditions(self) -> None:
        self.refused(
            changed(Condition={"StringEqualz": {"s3:prefix": "a"}}),
            "Invalid Condition type : StringEqualz",
        )
        self.refused(
            changed(Condition={"ForSomeValues:StringEquals": {"s3:prefix": "a"}}),
            "Invalid Condition type : ForSomeValues:StringEquals",
        )
        self.refused(
            changed(Condition={"NullIfExists": {"s3:prefix": "true"}}),
            "Invalid Condition type : NullIfExists",
        )
        self.refused(
            changed(Condition={"IfExists": {"s3:prefix": "true"}}),
            "Invalid Condition type : IfExists",
        )
        self.refused(
            changed(Condition={"StringEquals": {"s3:prefixes": "a"}}),
            "Policy has an invalid condition key",
        )
        self.refused(
            changed(Condition={"StringEquals": {"s3:ExistingObjectTag/": "a"}}),
            "Policy has an invalid condition key",
        )
        self.refused(
            changed(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}}),
            "Invalid IP address in Conditions",
        )
        for bad in ({"StringEquals": "x"}, {"StringEquals": {}}, [],
                    {"StringEquals": {"s3:prefix": []}}, {"StringEquals": {"s3:prefix": {}}},
                    {"StringEquals": {"s3:prefix": None}},
                    {"NumericLessThan": {"s3:max-keys": "ten"}},
                    {"DateLessThan": {"aws:CurrentTime": "tomorrow"}},
                    {"Bool": {"aws:SecureTransport": "yes"}},
                    {"Null": {"s3:prefix": "maybe"}}):  # fmt: skip
            self.refused(changed(Condition=bad), "Invalid policy syntax.")


class AcceptedTests(SynchronousTestCase):
    def test_forms(self) -> None:
        compile_policy(json.dumps({"Statement": GOOD}).encode(), BUCKET)  # 2008-10-17, one object
        compile_policy(document(Version="2008-10-17", Id="an id"), BUCKET)
        for principal in ("*", {"AWS": ["*"]}, {"AWS": "123456789012"},
                          {"AWS": ["arn:aws:iam::123456789012:user/path/to/alice", "u-1"]},
                          {"AWS": "arn:aws:iam::s3tenant1:root"},
                          {"CanonicalUser": "ab" * 32},
                          {"Service": "logging.s3.amazonaws.com"}):  # fmt: skip
            compile_policy(changed(Principal=principal), BUCKET)
        for action in ("*", "s3:*", "S3:GETOBJECT", "s3:Get*", "s3:*Object", "s3:?etObject",
                       ["s3:ListBucket", "s3:ListBucketVersions"]):  # fmt: skip
            compile_policy(changed(Action=action), BUCKET)
        for resource in ("arn:aws:s3:::bkt", "arn:aws:s3:::bkt/a/b/*", "arn:aws:s3:::*",
                         "arn:aws:s3:::*/*", "arn:aws:s3:::b*", "arn:aws:s3:::bk?/x",
                         "arn:aws:s3:::bkt*", "arn:aws:s3:::*t/x"):  # fmt: skip
            compile_policy(changed(Resource=resource), BUCKET)
        compile_policy(changed(Resource=REMOVE, NotResource="arn:aws:s3:::other/*"), BUCKET)
        compile_policy(
            changed(Effect="Deny", Principal=REMOVE, NotPrincipal={"AWS": "u-1"}), BUCKET
        )

    def test_every_operator_in_every_form(self) -> None:
        values = {"string": "a", "string_ignore_case": "a", "string_like": "a*",
                  "numeric": "1", "date": "2026-01-01T00:00:00Z", "bool": "true",
                  "ip": "10.0.0.0/8", "arn": "arn:aws:s3:::x", "null": "true"}  # fmt: skip
        for op in OPERATORS.values():
            forms = [op.name] if op.kind == "null" else [
                op.name, op.name + "IfExists", "ForAnyValue:" + op.name,
                "ForAllValues:" + op.name + "IfExists", op.name.upper()]  # fmt: skip
            for form in forms:
                condition = {form: {"aws:username": [values[op.kind], values[op.kind]]}}
                compile_policy(changed(Condition=condition), BUCKET)

    def test_condition_values_of_json_types(self) -> None:
        compile_policy(changed(Condition={"Bool": {"aws:SecureTransport": False}}), BUCKET)
        compile_policy(changed(Condition={"NumericLessThan": {"s3:max-keys": 10}}), BUCKET)
        compile_policy(changed(Condition={"NumericLessThan": {"s3:max-keys": 1.5}}), BUCKET)
        compile_policy(changed(Condition={"DateLessThan": {"aws:EpochTime": 1700000000}}), BUCKET)

    def test_document_kept_verbatim(self) -> None:
        text = b'{ "Statement" : ' + json.dumps(GOOD).encode() + b"\n}\n"
        self.assertEqual(compile_policy(text, BUCKET).document, text)
