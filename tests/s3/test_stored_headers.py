"""Stored headers come back exactly as sent: the text of Content-Encoding, the bytes of metadata.

Strategy: raw HTTP requests on the in-memory site (:mod:`tests.s3.memory`),
comparing the response's header bytes with the request's.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.request import wire_text
from tests.s3.memory import MemoryS3


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
