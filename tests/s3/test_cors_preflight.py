"""CORS preflight (``OPTIONS``) answered as S3 answers it for a bucket without CORS rules.

Strategy: unsigned ``OPTIONS`` requests on the in-memory site check each answer
S3 gives (AWS-validated: 400 without ``Origin``, 403 ``AccessForbidden``
otherwise, "Bucket not found" for a missing bucket); then, on a loopback
server, a presigned URL made by boto3 is sent as a preflight (answered 400,
its signature never checked) and as the GET it was signed for (200), as
s3-tests ``test_object_raw_get_x_amz_expires_not_expired`` does.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

from tests.s3.memory import MemoryResponse, MemoryS3
from tests.s3.server import boto3_client
from tests.s3.test_api import S3TestCase, read_object


class PreflightTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/k", b"x").status, 200)

    def options(self, target: str, headers: dict[str, str] | None = None) -> MemoryResponse:
        return self.s3.request("OPTIONS", target, headers=headers, sign=False)

    def test_without_origin_bad_request(self) -> None:
        for target in ("/bkt/k", "/bkt", "/nobkt/k", "/bkt/k?tagging"):
            got = self.options(target)
            self.assertEqual((got.status, got.code()), (400, "BadRequest"), target)
            self.assertIn(
                b"<Message>Insufficient information. Origin request header needed.</Message>",
                got.body,
            )

    def test_with_origin_cors_is_not_enabled(self) -> None:
        headers = {"origin": "https://example.com", "access-control-request-method": "PUT"}
        for target in ("/bkt/k", "/bkt"):
            got = self.options(target, headers)
            self.assertEqual((got.status, got.code()), (403, "AccessForbidden"), target)
            self.assertIn(b"CORS is not enabled for this bucket.", got.body)
            self.assertIn(b"<Method>PUT</Method>", got.body)
            self.assertIn(b"<ResourceType>BUCKET</ResourceType>", got.body)
            self.assertIsNone(got.header("access-control-allow-origin"))
        got = self.options("/bkt/k", {"origin": "https://example.com"})
        self.assertIn(b"<Method>OPTIONS</Method>", got.body)

    def test_a_missing_bucket(self) -> None:
        got = self.options("/nobkt/k", {"origin": "https://example.com"})
        self.assertEqual((got.status, got.code()), (403, "AccessForbidden"))
        self.assertIn(b"CORSResponse: Bucket not found", got.body)

    def test_a_signed_preflight_is_the_same_and_changes_nothing(self) -> None:
        got = self.s3.request("OPTIONS", "/bkt/k")
        self.assertEqual((got.status, got.code()), (400, "BadRequest"))
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"x")

    def test_other_methods_still_need_credentials(self) -> None:
        for method in ("GET", "PUT", "DELETE"):
            got = self.s3.request(method, "/bkt/k", sign=False)
            self.assertEqual((got.status, got.code()), (403, "AccessDenied"), method)
        self.assertEqual(self.options("/").status, 403)  # no preflight of the service


class PresignedPreflightTests(S3TestCase):
    async def test_presigned_url_preflight_then_get(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="bkt")
        await self.call(self.s3.put_object, Bucket="bkt", Key="foo", Body=b"bar")
        v4 = boto3_client(self.url, signature_version="s3v4")
        url = v4.generate_presigned_url(
            "get_object", Params={"Bucket": "bkt", "Key": "foo"}, ExpiresIn=100000
        )

        def fetch(method: str) -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, method=method)) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        status, body = await self.call(fetch, "OPTIONS")
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>BadRequest</Code>", body)
        self.assertEqual(await self.call(fetch, "GET"), (200, b"bar"))
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="foo")
        self.assertEqual(got["Data"], b"bar")
