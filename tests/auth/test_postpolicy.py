"""POST Object policies: which signature fields a form must carry, and the expiration's form.

Strategy: :func:`s4d.auth.postpolicy.verify` is pure, so each case builds the
form fields a browser would send (a policy signed with SigV2 as the s3-tests
suite does, or SigV4 as boto3's ``generate_presigned_post`` does), changes one
thing and checks the S3 error AWS answers: a form with some of the fields of a
signature but not all is a bad argument (400 ``InvalidArgument`` naming the
missing field), one with none of them an unsigned policy (403); an expiration
that is not ISO 8601 in UTC with ``Z`` is a bad policy (400).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import postpolicy, sigv2, sigv4
from s4d.errors import S3Error
from tests.auth._support import ACCESS_KEY, SECRET_KEY, Credentials

NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
FUTURE = "2026-11-01T13:00:00Z"


def policy_text(expiration: object = FUTURE) -> str:
    signed = ("x-amz-algorithm", "x-amz-credential", "x-amz-date")
    conditions = [{"bucket": "bkt"}, {"key": "k"}] + [["starts-with", f"${n}", ""] for n in signed]
    document = {"expiration": expiration, "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


def v2_fields(policy: str) -> dict[str, str]:
    return {
        "key": "k",
        "policy": policy,
        "awsaccesskeyid": ACCESS_KEY,
        "signature": sigv2.sign(SECRET_KEY, policy),
    }


def v4_fields(policy: str) -> dict[str, str]:
    key = sigv4.signing_key(SECRET_KEY, "20261101", "us-east-1")
    return {
        "key": "k",
        "policy": policy,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{ACCESS_KEY}/20261101/us-east-1/s3/aws4_request",
        "x-amz-date": "20261101T120000Z",
        "x-amz-signature": sigv4.hmac_hex(key, policy),
    }


class SignatureFieldsTests(SynchronousTestCase):
    def refused(self, fields: dict[str, str]) -> S3Error:
        return self.assertRaises(S3Error, postpolicy.verify, fields, "bkt", Credentials(), NOW)

    def test_complete_forms_verify(self) -> None:
        for fields in (v2_fields(policy_text()), v4_fields(policy_text())):
            policy = postpolicy.verify(fields, "bkt", Credentials(), NOW)
            self.assertEqual(policy.auth.access_key, ACCESS_KEY)

    def test_a_v2_form_without_its_signature_is_a_bad_argument(self) -> None:
        fields = v2_fields(policy_text())
        del fields["signature"]
        error = self.refused(fields)
        self.assertEqual((error.status, error.code), (400, "InvalidArgument"))
        self.assertEqual(
            error.message,
            "Bucket POST must contain a field named 'Signature'.  "
            "If it is specified, please check the order of the fields.",
        )
        self.assertEqual(error.extra, {"ArgumentName": "Signature", "ArgumentValue": ""})

    def test_a_v2_signature_without_its_access_key(self) -> None:
        fields = v2_fields(policy_text())
        del fields["awsaccesskeyid"]
        error = self.refused(fields)
        self.assertEqual((error.status, error.extra["ArgumentName"]), (400, "AWSAccessKeyId"))

    def test_each_missing_v4_field_is_named(self) -> None:
        for name in postpolicy.V4_FIELDS:
            fields = v4_fields(policy_text())
            del fields[name.lower()]
            error = self.refused(fields)
            self.assertEqual((error.status, error.code), (400, "InvalidArgument"), name)
            self.assertEqual(error.extra["ArgumentName"], name)

    def test_a_policy_without_any_signature_is_denied(self) -> None:
        error = self.refused({"key": "k", "policy": policy_text()})
        self.assertEqual((error.status, error.code), (403, "AccessDenied"))

    def test_a_wrong_signature_is_still_a_mismatch(self) -> None:
        fields = v2_fields(policy_text())
        fields["signature"] = sigv2.sign("another secret", fields["policy"])
        self.assertEqual(self.refused(fields).code, "SignatureDoesNotMatch")


class ExpirationTests(SynchronousTestCase):
    def verify(self, expiration: object) -> postpolicy.Policy:
        fields = v2_fields(policy_text(expiration))
        return postpolicy.verify(fields, "bkt", Credentials(), NOW)

    def test_iso_8601_in_utc_with_or_without_a_fraction(self) -> None:
        for text in (FUTURE, "2026-11-01T12:00:00.001Z", "2026-11-01T12:00:00.123456789Z"):
            self.verify(text)

    def test_other_forms_are_a_bad_policy(self) -> None:
        for text in (
            "2026-11-01 13:00:00.123456+00:00",  # str(datetime), as s3-tests sends it
            "2026-11-01T13:00:00+00:00",
            "2026-11-01T13:00:00",
            "2026-11-01",
            "2026-02-30T00:00:00Z",
            "2026-11-01T25:00:00Z",
            "tomorrow",
            "",
            "\uff12026-11-01T13:00:00Z",
        ):
            error = self.assertRaises(S3Error, self.verify, text)
            self.assertEqual((error.status, error.code), (400, "InvalidPolicyDocument"), text)
            self.assertEqual(error.message, f"Invalid Policy: Invalid 'expiration' value: '{text}'")

    def test_an_expiration_that_is_not_text(self) -> None:
        error = self.assertRaises(S3Error, self.verify, 1893456000)
        self.assertEqual(error.code, "InvalidPolicyDocument")

    def test_expired_is_denied_to_the_instant(self) -> None:
        error = self.assertRaises(S3Error, self.verify, "2026-11-01T12:00:00Z")
        self.assertEqual((error.status, error.code), (403, "AccessDenied"))
        error = self.assertRaises(S3Error, self.verify, "2026-11-01T11:59:59.999Z")
        self.assertEqual(error.code, "AccessDenied")
