"""GETs over plain HTTP sent from the segment files (``sendfile``): exact bytes, any range.

1 MiB chunks, compression ``auto``: an object mixes chunks sent by ``sendfile``
(random bytes, stored as they are) with chunks written through Twisted (text,
stored compressed), so the hand-over between the two paths is exercised too.
Over TLS the same requests go through Twisted only.
"""

from __future__ import annotations

import http.client
import os
import time
from urllib.parse import urlsplit

from tests.clients.harness import ServerTestCase, boto3_client

CHUNK = 1 << 20


def mixed_object() -> bytes:
    text = b"".join(b"line %08d of the compressible part\n" % i for i in range(40_000))
    return os.urandom(CHUNK) + text[:CHUNK] + os.urandom(2 * CHUNK + 777) + text[: CHUNK // 3]


class SendfileRangeTests(ServerTestCase):
    server_env = {"S4_CHUNK_SIZE": "1MB", "S4_COMPRESSION": "auto"}

    def connection(self) -> http.client.HTTPConnection:
        """A connection of our own to the server (HTTPS when it serves TLS)."""
        assert self.server is not None
        if self.server.tls:
            return http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, context=self.server.ssl_context()
            )
        return http.client.HTTPConnection("127.0.0.1", self.server.port)

    def test_ranges_are_exact(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        data = mixed_object()
        s3.put_object(Bucket=bucket, Key="mixed", Body=data)
        size = len(data)
        ranges = [
            (0, size - 1),
            (0, 0),
            (CHUNK - 1, CHUNK),
            (CHUNK // 2, 3 * CHUNK + 5),
            (2 * CHUNK, 3 * CHUNK - 1),
            (2 * CHUNK + 1, 2 * CHUNK + 1),
            (3 * CHUNK + 100, size - 1),
            (size - 10, size - 1),
        ]
        for first, last in ranges:
            got = s3.get_object(Bucket=bucket, Key="mixed", Range=f"bytes={first}-{last}")
            self.assertEqual(got["Body"].read(), data[first : last + 1], (first, last))
        whole = s3.get_object(Bucket=bucket, Key="mixed")["Body"].read()
        self.assertEqual(whole, data)
        suffix = s3.get_object(Bucket=bucket, Key="mixed", Range="bytes=-1500000")
        self.assertEqual(suffix["Body"].read(), data[-1500000:])

    def test_keep_alive_after_a_sent_file(self) -> None:
        """The next response on the connection follows the file's bytes, in order."""
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        data = os.urandom(3 * CHUNK + 3)
        s3.put_object(Bucket=bucket, Key="k", Body=data)
        url = urlsplit(s3.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "k"}))
        conn = self.connection()
        try:
            for first, last in [(0, len(data) - 1), (5, CHUNK + 5), (0, len(data) - 1)]:
                target = f"{url.path}?{url.query}"
                conn.request("GET", target, headers={"Range": f"bytes={first}-{last}"})
                response = conn.getresponse()
                self.assertEqual(response.status, 206)
                self.assertEqual(response.read(), data[first : last + 1])
        finally:
            conn.close()

    def test_multipart_object_parts_and_ranges(self) -> None:
        """A multipart object's parts: whole, by part number and in ranges across parts.

        Each part ends in a short chunk (sent through Twisted) between full
        chunks (sent from the segment file), so every part boundary switches
        between the two paths.
        """
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        parts = [
            os.urandom(5 * CHUNK + 100_000),
            os.urandom(5 * CHUNK + 300_000),
            os.urandom(700_000),
        ]
        upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        etags = [
            s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n, Body=part)[
                "ETag"
            ]
            for n, part in enumerate(parts, 1)
        ]
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]
            },
        )
        data = b"".join(parts)
        self.assertEqual(s3.get_object(Bucket=bucket, Key="mp")["Body"].read(), data)
        for number, part in enumerate(parts, 1):
            got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number)["Body"].read()
            self.assertEqual(got, part, number)
        edge = len(parts[0])
        for first, last in [(edge - 5, edge + 5), (CHUNK - 1, edge + CHUNK), (edge, len(data) - 1)]:
            got = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={first}-{last}")
            self.assertEqual(got["Body"].read(), data[first : last + 1], (first, last))

    def test_a_client_slow_to_read(self) -> None:
        """A client that reads nothing for a while still gets every byte, not a reset.

        Its socket fills with what sendfile sent, and the object's small last
        chunk, written through Twisted, must wait for it to drain: as long as
        the idle timeout allows, not a fixed number of reactor turns.
        """
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        # Sent by sendfile, then a tail too small to pause Twisted's writes: the
        # tail waits for the socket to drain before the response may end.
        data = os.urandom(4 * CHUNK) + os.urandom(5000)
        s3.put_object(Bucket=bucket, Key="slow", Body=data)
        url = urlsplit(s3.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "slow"}))
        conn = self.connection()
        try:
            conn.request("GET", f"{url.path}?{url.query}")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            got = [response.read(1000)]
            time.sleep(1.5)  # the server's socket is full meanwhile
            got.append(response.read())
            self.assertEqual(b"".join(got), data)
        finally:
            conn.close()

    def test_a_client_that_leaves_mid_body(self) -> None:
        """A client gone in the middle of a large body leaves no error in the log."""
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        data = os.urandom(6 * CHUNK) + os.urandom(5000)
        s3.put_object(Bucket=bucket, Key="left", Body=data)
        url = urlsplit(s3.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "left"}))
        for _ in range(3):
            conn = self.connection()
            conn.request("GET", f"{url.path}?{url.query}")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            response.read(1000)
            conn.close()
        got = s3.get_object(Bucket=bucket, Key="left")["Body"].read()
        self.assertEqual(got, data)
        time.sleep(0.5)  # the server has seen the last connection go
        log = self.server.log(self.log_mark)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("unhandled error", log)


class SendfileRangeTlsTests(SendfileRangeTests):
    tls = True
