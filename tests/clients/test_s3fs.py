"""s3fs (fsspec over aiobotocore) against a real s4d process.

The aiobotocore session reads its config files from a temporary home, not the
real one; the instance cache is skipped so each test gets a fresh
filesystem. Files stay below s3fs's 5 MiB block size, so every write is one
PutObject.
"""

from __future__ import annotations

import os
from typing import Any

from tests.clients.harness import ServerTestCase, file_sha256, payload, sha256


class S3fsTests(ServerTestCase):
    """s3fs over plain HTTP."""

    def setUp(self) -> None:
        super().setUp()
        try:
            import s3fs
            from aiobotocore.session import AioSession
        except ImportError as e:  # pragma: no cover - the [test] extra installs it
            from twisted.trial.unittest import SkipTest

            raise SkipTest(f"s3fs is not installed: {e}") from None
        home = os.path.join(self.tmp, "home")
        os.makedirs(home)
        session = AioSession()
        session.set_config_variable("config_file", os.path.join(home, "aws-config"))
        session.set_config_variable("credentials_file", os.path.join(home, "aws-credentials"))
        client_kwargs: dict[str, Any] = {"region_name": self.server.region}
        if self.server.tls:
            client_kwargs["verify"] = self.server.cert_path
        self.fs = s3fs.S3FileSystem(
            endpoint_url=self.server.endpoint,
            key=self.server.access_key,
            secret=self.server.secret_key,
            client_kwargs=client_kwargs,
            session=session,
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def test_put_get_ls_rm(self) -> None:
        """mkdir, pipe/put, cat/get with ranges, ls, info, open, rm, rmdir."""
        bucket = self.bucket_name()
        self.fs.mkdir(bucket)
        self.assertTrue(self.fs.exists(bucket))
        body = payload(3 * 1024 * 1024 + 11, seed=51)
        local = os.path.join(self.tmp, "local file.bin")
        with open(local, "wb") as f:
            f.write(body)
        self.fs.put(local, f"{bucket}/dir/put file+.bin")
        self.fs.pipe(f"{bucket}/dir/piped ü.txt", b"piped\n")
        with self.fs.open(f"{bucket}/written.bin", "wb") as f:
            f.write(body[:100_000])

        self.assertEqual(sha256(self.fs.cat(f"{bucket}/dir/put file+.bin")), sha256(body))
        self.assertEqual(self.fs.cat(f"{bucket}/dir/piped ü.txt"), b"piped\n")
        self.assertEqual(
            sha256(self.fs.cat_file(f"{bucket}/dir/put file+.bin", start=-1000)),
            sha256(body[-1000:]),
        )
        with self.fs.open(f"{bucket}/dir/put file+.bin", "rb", block_size=256 * 1024) as f:
            f.seek(2_000_000)
            self.assertEqual(f.read(300_000), body[2_000_000:2_300_000])
        out = os.path.join(self.tmp, "out.bin")
        self.fs.get(f"{bucket}/written.bin", out)
        self.assertEqual(file_sha256(out), sha256(body[:100_000]))

        self.assertEqual(
            sorted(self.fs.ls(bucket)), sorted([f"{bucket}/dir", f"{bucket}/written.bin"])
        )
        self.assertEqual(
            sorted(self.fs.find(bucket)),
            sorted(
                [
                    f"{bucket}/dir/put file+.bin",
                    f"{bucket}/dir/piped ü.txt",
                    f"{bucket}/written.bin",
                ]
            ),
        )
        info = self.fs.info(f"{bucket}/dir/put file+.bin")
        self.assertEqual(info["size"], len(body))
        self.assertEqual(info["type"], "file")
        self.assertEqual(self.fs.info(f"{bucket}/dir")["type"], "directory")

        self.fs.rm(f"{bucket}/dir/piped ü.txt")
        self.assertFalse(self.fs.exists(f"{bucket}/dir/piped ü.txt"))
        self.fs.rm(bucket, recursive=True)
        self.assertFalse(self.fs.exists(bucket))


class S3fsTLSTests(S3fsTests):
    """s3fs over HTTPS (aws-chunked uploads with trailers, as boto3)."""

    tls = True
