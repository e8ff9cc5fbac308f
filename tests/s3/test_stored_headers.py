"""Stored headers come back exactly as sent: the text of Content-Encoding, the bytes of metadata.

Strategy: raw HTTP requests on the in-memory site (:mod:`tests.s3.memory`),
comparing the response's header bytes with the request's.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.request import wire_text
from tests.s3.memory import MemoryS3
from tests.s3.test_api import S3TestCase


def header_bytes(raw: bytes, name: bytes) -> bytes | None:
    """The raw value of response header ``name`` (any case) in a response's header block."""
    block = raw.partition(b"\r\n\r\n")[0]
    for line in block.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class StoredHeaderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def raw(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
        """One request (``wire_text`` header values go out as raw bytes); the raw answer."""
        headers = dict(headers)
        if method == "PUT":
            headers["content-length"] = str(len(body))
        head = self.s3.head_block(method, target, headers)
        conn = self.s3.connect()
        conn.send(head + body)
        self.assertIsNotNone(conn.response(head=method == "HEAD"), conn.written[:300])
        return conn.written

    def test_content_encoding_list_kept_as_sent(self) -> None:
        for sent in ("deflate, gzip", "gzip,deflate", "br"):
            got = self.s3.request("PUT", "/bkt/k", b"x", {"content-encoding": sent})
            self.assertEqual(got.status, 200)
            for method in ("GET", "HEAD"):
                read = self.s3.request(method, "/bkt/k")
                self.assertEqual(read.header("content-encoding"), sent, method)

    def test_only_aws_chunked_is_dropped(self) -> None:
        from s4d.s3.handlers.objects import _without_aws_chunked

        self.assertEqual(_without_aws_chunked("aws-chunked, gzip"), "gzip")
        self.assertEqual(_without_aws_chunked("deflate, aws-chunked, gzip"), "deflate, gzip")
        self.assertEqual(_without_aws_chunked("gzip,aws-chunked"), "gzip")
        self.assertEqual(_without_aws_chunked("AWS-Chunked"), "")
        self.assertEqual(_without_aws_chunked("deflate,  gzip"), "deflate,  gzip")

    def test_non_ascii_metadata_bytes_come_back(self) -> None:
        sent = {
            "x-amz-meta-a": wire_text(b"\xe9t\xe9"),
            "x-amz-meta-b": "plain",
            "x-amz-meta-c": wire_text("caf\u00e9 \u2603".encode()),
        }
        put = self.raw("PUT", "/bkt/k", sent, b"x")
        self.assertIn(b" 200 ", put.partition(b"\r\n")[0])
        for method in ("GET", "HEAD"):
            got = self.raw(method, "/bkt/k", {})
            self.assertEqual(header_bytes(got, b"x-amz-meta-a"), b"\xe9t\xe9", method)
            self.assertEqual(header_bytes(got, b"x-amz-meta-b"), b"plain", method)
            self.assertEqual(
                header_bytes(got, b"x-amz-meta-c"), "caf\u00e9 \u2603".encode(), method
            )


class Boto3MetadataBytesTests(S3TestCase):
    """What boto3 does with non-ASCII metadata, and that the server keeps its bytes.

    botocore sends a header's text as UTF-8 but reads response headers as
    ISO-8859-1 (``http.client``), so ``"Hello World\\xe9"`` goes out as
    ``...\\xc3\\xa9`` and, returned byte for byte, reads back as
    ``"Hello World\\xc3\\xa9"`` decoded as Latin-1. s3-tests
    test_object_set_get_unicode_metadata expects the text itself back, which
    only a server that re-encodes stored bytes (breaking "come back as sent")
    could give; S3 itself answers such values RFC 2047-encoded.
    """

    async def test_metadata_bytes_round_trip_through_boto3(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="bkt")
        text = "Hello World\xe9 \u2603"

        def set_header(params: dict[str, Any], **_: Any) -> None:
            params["headers"]["x-amz-meta-m"] = text  # as s3-tests does: Metadata= is ASCII-only

        self.s3.meta.events.register("before-call.s3.PutObject", set_header)
        await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"x")
        got = await self.call(self.s3.head_object, Bucket="bkt", Key="k")
        self.assertEqual(got["Metadata"]["m"].encode("latin-1"), text.encode("utf-8"))
        status, headers, _ = await self.raw("HEAD", "/bkt/k")
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-amz-meta-m"].encode("latin-1"), text.encode("utf-8"))
