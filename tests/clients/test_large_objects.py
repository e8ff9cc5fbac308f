"""A 200 MiB object through a real server: PUT and GET stream it, the ETag is its MD5.

Over plain HTTP and over TLS, with boto3's defaults (an aws-chunked body with a
CRC trailer), so the upload pipeline (pieces, parallel digests, writeback) and
the download path both carry many chunks.
"""

from __future__ import annotations

import hashlib
import os

from tests.clients.harness import ServerTestCase, boto3_client

SIZE = 200 << 20
CHUNK = 4 << 20  # the server's default chunk size


class LargeObjectTests(ServerTestCase):
    def test_200_mib_round_trip(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        block = os.urandom(1 << 20)
        # every MiB differs, so no chunk is deduplicated against another
        data = b"".join(i.to_bytes(8, "big") + block[8:] for i in range(SIZE >> 20))
        md5 = hashlib.md5(data).hexdigest()
        put = s3.put_object(Bucket=bucket, Key="big", Body=data)
        self.assertEqual(put["ETag"], f'"{md5}"')
        got = s3.get_object(Bucket=bucket, Key="big")
        self.assertEqual(got["ContentLength"], SIZE)
        self.assertEqual(got["ETag"], f'"{md5}"')
        hasher = hashlib.md5()
        for piece in got["Body"].iter_chunks(1 << 20):
            hasher.update(piece)
        self.assertEqual(hasher.hexdigest(), md5)
        # a range across a chunk boundary
        first, last = 3 * CHUNK - 1000, 4 * CHUNK + 1000
        ranged = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={first}-{last}")
        self.assertEqual(ranged["Body"].read(), data[first : last + 1])
        s3.delete_object(Bucket=bucket, Key="big")


class LargeObjectTlsTests(LargeObjectTests):
    tls = True
