"""minio-py against a real s4d process, over HTTP and over TLS.

minio signs uploads with ``UNSIGNED-PAYLOAD`` over TLS and with a real
payload SHA-256 over HTTP, lists with V2 and deletes in bulk with
DeleteObjects carrying Content-MD5. Objects stay below minio's 5 MiB part
size so every upload is a single PutObject.
"""

from __future__ import annotations

import io

from tests.clients.harness import ServerTestCase, md5_hex, payload, sha256


class MinioTests(ServerTestCase):
    """minio-py over plain HTTP."""

    def setUp(self) -> None:
        super().setUp()
        try:
            import minio
            import urllib3
        except ImportError as e:  # pragma: no cover - the [test] extra installs it
            from twisted.trial.unittest import SkipTest

            raise SkipTest(f"minio is not installed: {e}") from None
        http_client = None
        if self.server.tls:
            http_client = urllib3.PoolManager(ca_certs=self.server.cert_path, retries=False)
        self.client = minio.Minio(
            self.server.host,
            access_key=self.server.access_key,
            secret_key=self.server.secret_key,
            secure=self.server.tls,
            region=self.server.region,
            http_client=http_client,
        )

    def test_object_life_cycle(self) -> None:
        """make_bucket, put_object, get_object, stat_object, list_objects, presigned, remove."""
        from minio.deleteobjects import DeleteObject
        from minio.error import S3Error as MinioS3Error

        bucket = self.bucket_name()
        self.client.make_bucket(bucket)
        self.assertTrue(self.client.bucket_exists(bucket))
        bodies = {
            "plain.bin": payload(1_000_000, seed=41),
            "dir/with space+plus ü.txt": "hello ✓\n".encode(),
            "dir/sub/empty": b"",
            "a//b/": payload(10, seed=42),
        }
        for key, body in bodies.items():
            result = self.client.put_object(
                bucket,
                key,
                io.BytesIO(body),
                len(body),
                content_type="application/x-s4d",
                metadata={"x-amz-meta-color": "blue", "Origin": "minio test"},
            )
            self.assertEqual(result.etag, md5_hex(body))
        for key, body in bodies.items():
            response = self.client.get_object(bucket, key)
            try:
                self.assertEqual(sha256(response.read()), sha256(body), key)
            finally:
                response.close()
                response.release_conn()
        response = self.client.get_object(bucket, "plain.bin", offset=1000, length=5000)
        try:
            self.assertEqual(sha256(response.read()), sha256(bodies["plain.bin"][1000:6000]))
        finally:
            response.close()
            response.release_conn()

        stat = self.client.stat_object(bucket, "dir/with space+plus ü.txt")
        self.assertEqual(stat.size, len(bodies["dir/with space+plus ü.txt"]))
        self.assertEqual(stat.content_type, "application/x-s4d")
        self.assertEqual(stat.metadata.get("x-amz-meta-color"), "blue")
        self.assertEqual(stat.metadata.get("x-amz-meta-origin"), "minio test")

        recursive = [o.object_name for o in self.client.list_objects(bucket, recursive=True)]
        self.assertEqual(recursive, sorted(bodies, key=lambda k: k.encode()))
        top = sorted(o.object_name for o in self.client.list_objects(bucket))
        self.assertEqual(top, ["a/", "dir/", "plain.bin"])
        v1 = sorted(
            o.object_name for o in self.client.list_objects(bucket, prefix="dir/", use_api_v1=True)
        )
        self.assertEqual(v1, ["dir/sub/", "dir/with space+plus ü.txt"])

        url = self.client.presigned_get_object(bucket, "dir/with space+plus ü.txt")
        status, data = self.urlopen(url)
        self.assertEqual(status, 200, data[:300])
        self.assertEqual(data, bodies["dir/with space+plus ü.txt"])

        self.client.remove_object(bucket, "plain.bin")
        with self.assertRaises(MinioS3Error) as caught:
            self.client.stat_object(bucket, "plain.bin")
        self.assertEqual(caught.exception.code, "NoSuchKey")
        errors = list(self.client.remove_objects(bucket, [DeleteObject(k) for k in bodies]))
        self.assertEqual(errors, [])
        self.assertEqual(list(self.client.list_objects(bucket, recursive=True)), [])
        self.client.remove_bucket(bucket)
        self.assertFalse(self.client.bucket_exists(bucket))


class MinioTLSTests(MinioTests):
    """minio-py over HTTPS (UNSIGNED-PAYLOAD uploads)."""

    tls = True
