"""No silent encryption: every server-side encryption header is refused at header time.

Strategy: s4d does not implement server-side encryption, so a request asking
for it (SSE-S3, SSE-KMS, SSE-C, or an SSE-C copy source) must fail loudly
rather than store the object in clear. :class:`~tests.s3.memory.MemoryS3` runs
the real seam in memory; each test sends one operation's header block with
one of the encryption headers and checks that the answer is ``501
NotImplemented``, given before any body byte is read (the request is refused
while being prepared and the connection is closed), and that nothing was
stored or changed.
"""

from __future__ import annotations

import base64
import hashlib
import re

from twisted.trial.unittest import SynchronousTestCase

from tests.s3.memory import MemoryResponse, MemoryS3

_KEY = base64.b64encode(b"k" * 32).decode()
_KEY_MD5 = base64.b64encode(hashlib.md5(b"k" * 32).digest()).decode()

#: One header set per kind of server-side encryption a client can ask for.
ENCRYPTION_HEADERS: dict[str, dict[str, str]] = {
    "sse-s3": {"x-amz-server-side-encryption": "AES256"},
    "sse-kms": {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:1:key/k",
    },
    "sse-kms-key-only": {"x-amz-server-side-encryption-aws-kms-key-id": "k"},
    "sse-kms-context": {"x-amz-server-side-encryption-context": "e30="},
    "sse-kms-bucket-key": {"x-amz-server-side-encryption-bucket-key-enabled": "true"},
    "sse-c": {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": _KEY,
        "x-amz-server-side-encryption-customer-key-MD5": _KEY_MD5,
    },
    "sse-c-md5-only": {"X-Amz-Server-Side-Encryption-Customer-Key-MD5": _KEY_MD5},
}

#: The SSE-C headers naming the key of an encrypted copy source.
COPY_SOURCE_HEADERS: dict[str, str] = {
    "x-amz-copy-source-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-copy-source-server-side-encryption-customer-key": _KEY,
    "x-amz-copy-source-server-side-encryption-customer-key-MD5": _KEY_MD5,
}


class EncryptionRefusedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/src", b"source").status, 200)

    def refused_before_body(
        self, method: str, target: str, headers: dict[str, str], length: int = 0
    ) -> MemoryResponse:
        """Send only the header block; the answer must already be a refusal."""
        conn = self.s3.connect()
        if length:
            headers = {**headers, "content-length": str(length)}
        conn.send(self.s3.head_block(method, target, headers))
        response = conn.response(head=method == "HEAD")
        assert response is not None, f"no answer before the body: {conn.written[:300]!r}"
        self.assertEqual(response.status, 501, (method, target, headers, response.body))
        if method != "HEAD":
            self.assertEqual(response.code(), "NotImplemented")
        self.assertTrue(conn.transport.disconnecting or not length)
        request = conn.request
        if request is not None:
            self.assertIsNone(request.prepared)
        return response

    def assert_each_kind_refused(
        self, method: str, target: str, extra: dict[str, str] | None = None, length: int = 0
    ) -> None:
        for headers in ENCRYPTION_HEADERS.values():
            self.refused_before_body(method, target, {**(extra or {}), **headers}, length)

    def test_put_object(self) -> None:
        self.assert_each_kind_refused("PUT", "/bkt/new", length=5)
        self.assertEqual(self.s3.request("HEAD", "/bkt/new").status, 404)

    def test_put_object_over_an_existing_one_changes_nothing(self) -> None:
        self.assert_each_kind_refused("PUT", "/bkt/src", length=5)
        self.assertEqual(self.s3.request("GET", "/bkt/src").body, b"source")

    def test_get_object(self) -> None:
        self.assert_each_kind_refused("GET", "/bkt/src")

    def test_head_object(self) -> None:
        self.assert_each_kind_refused("HEAD", "/bkt/src")

    def test_copy_object(self) -> None:
        self.assert_each_kind_refused("PUT", "/bkt/copy", {"x-amz-copy-source": "/bkt/src"})
        self.refused_before_body(
            "PUT", "/bkt/copy", {"x-amz-copy-source": "/bkt/src", **COPY_SOURCE_HEADERS}
        )
        self.assertEqual(self.s3.request("HEAD", "/bkt/copy").status, 404)

    def test_create_multipart_upload(self) -> None:
        self.assert_each_kind_refused("POST", "/bkt/mp?uploads")
        listing = self.s3.request("GET", "/bkt?uploads")
        self.assertEqual(listing.status, 200)
        self.assertNotIn(b"<Upload>", listing.body)

    def test_upload_part_and_part_copy(self) -> None:
        created = self.s3.request("POST", "/bkt/mp?uploads")
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert found is not None
        target = f"/bkt/mp?partNumber=1&uploadId={found.group(1).decode()}"
        self.assert_each_kind_refused("PUT", target, length=5)
        self.assert_each_kind_refused("PUT", target, {"x-amz-copy-source": "/bkt/src"})
        self.refused_before_body(
            "PUT", target, {"x-amz-copy-source": "/bkt/src", **COPY_SOURCE_HEADERS}
        )
        parts = self.s3.request("GET", target.replace("partNumber=1&", ""))
        self.assertEqual(parts.status, 200)
        self.assertNotIn(b"<Part>", parts.body)

    def test_bucket_operations(self) -> None:
        self.assert_each_kind_refused("GET", "/bkt?list-type=2")
        self.assert_each_kind_refused("PUT", "/other")
        self.assertEqual(self.s3.request("HEAD", "/other").status, 404)

    def test_put_and_delete_bucket_encryption_are_not_implemented(self) -> None:
        document = (
            b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>"
            b"<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
            b"</ServerSideEncryptionConfiguration>"
        )
        put = self.s3.request("PUT", "/bkt?encryption", document)
        self.assertEqual((put.status, put.code()), (501, "NotImplemented"))
        delete = self.s3.request("DELETE", "/bkt?encryption")
        self.assertEqual((delete.status, delete.code()), (501, "NotImplemented"))
        got = self.s3.request("GET", "/bkt?encryption")
        self.assertEqual(
            (got.status, got.code()), (404, "ServerSideEncryptionConfigurationNotFoundError")
        )

    def test_requests_without_encryption_headers_still_work(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt/plain", b"plain").status, 200)
        got = self.s3.request("GET", "/bkt/plain", headers={"x-amz-meta-encryption": "no"})
        self.assertEqual((got.status, got.body), (200, b"plain"))
