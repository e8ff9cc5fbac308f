"""Multipart uploads and copies by real clients against a real s4d process.

Each client uploads a file large enough to go multipart with its own habits
(the AWS CLI: 8 MiB parts, ten at a time; rclone with ``--s3-upload-cutoff 8M
--s3-chunk-size 8M`` and its multipart ETag check switched on; s3cmd: 15 MiB
parts; boto3's managed transfer; minio-py: 5 MiB parts), then server-side
copies where the client does those by UploadPartCopy, and every object is
downloaded again and compared by SHA-256. The boto3 test copies a 100 MiB
object with the managed copy and checks from the server's segment files that
the copy wrote no bytes (8 MiB ranges fall on 4 MiB chunk boundaries, so every
part shares the source's chunks). ``S4D_LONG_TESTS=1`` adds a 1 GiB round trip
through the AWS CLI.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

from twisted.trial.unittest import SkipTest

from tests.clients.harness import (
    ServerTestCase,
    boto3_client,
    client_binary,
    file_sha256,
    isolated_env,
    payload,
    run_client,
    sha256,
)

MIB = 1 << 20


def write_file(path: str, size: int, seed: int) -> str:
    """A file of ``size`` deterministic bytes; returns its SHA-256."""
    data = payload(size, seed=seed)
    with open(path, "wb") as f:
        f.write(data)
    return sha256(data)


class MultipartClientTests(ServerTestCase):
    """Every client's multipart path against one server."""

    def setUp(self) -> None:
        super().setUp()
        assert self.server is not None
        self.home = os.path.join(self.tmp, "home")
        self.env = isolated_env(self.home)
        with open(self.env["AWS_SHARED_CREDENTIALS_FILE"], "w") as f:
            f.write(
                f"[default]\naws_access_key_id = {self.server.access_key}\n"
                f"aws_secret_access_key = {self.server.secret_key}\n"
            )
        with open(self.env["AWS_CONFIG_FILE"], "w") as f:
            f.write(f"[default]\nregion = {self.server.region}\n")
        self.s3 = boto3_client(self.server, self.home)

    def segment_bytes(self) -> int:
        assert self.server is not None
        directory = os.path.join(self.server.data_dir, "segments")
        return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))

    def no_uploads_left(self, bucket: str) -> None:
        self.assertNotIn("Uploads", self.s3.list_multipart_uploads(Bucket=bucket))

    def aws(self, *args: str) -> Any:
        assert self.server is not None
        argv = [client_binary("aws"), "--endpoint-url", self.server.endpoint]
        return run_client(self, [*argv, *args], self.env, timeout=300)

    # -- the AWS CLI ------------------------------------------------------------------

    def test_awscli_cp_and_server_side_copy(self) -> None:
        """``aws s3 cp`` up (8 MiB parts, 10 concurrent), down, and s3-to-s3 (UploadPartCopy)."""
        bucket = self.bucket_name()
        self.aws("s3", "mb", f"s3://{bucket}")
        local = os.path.join(self.tmp, "big.bin")
        digest = write_file(local, 36 * MIB + 12345, seed=51)
        self.aws("s3", "cp", local, f"s3://{bucket}/dir/big.bin")
        head = json.loads(
            self.aws("s3api", "head-object", "--bucket", bucket, "--key", "dir/big.bin").stdout
        )
        self.assertTrue(head["ETag"].endswith('-5"'), head["ETag"])
        out = os.path.join(self.tmp, "down.bin")
        self.aws("s3", "cp", f"s3://{bucket}/dir/big.bin", out)
        self.assertEqual(file_sha256(out), digest)
        before = self.segment_bytes()
        self.aws("s3", "cp", f"s3://{bucket}/dir/big.bin", f"s3://{bucket}/copy.bin")
        self.assertEqual(self.segment_bytes(), before, "a server-side copy wrote bytes")
        self.aws("s3", "cp", f"s3://{bucket}/copy.bin", out)
        self.assertEqual(file_sha256(out), digest)
        self.no_uploads_left(bucket)

    def test_awscli_one_gib(self) -> None:
        """A 1 GiB file up and down (``S4D_LONG_TESTS=1``)."""
        if os.environ.get("S4D_LONG_TESTS") != "1":
            raise SkipTest("set S4D_LONG_TESTS=1 for the 1 GiB round trip")
        bucket = self.bucket_name()
        self.aws("s3", "mb", f"s3://{bucket}")
        local = os.path.join(self.tmp, "huge.bin")
        with open(local, "wb") as f:
            block = payload(MIB, seed=52)
            for n in range(1024):
                f.write(block[n % 7 :] + block[: n % 7])
        digest = file_sha256(local)
        self.aws("s3", "cp", local, f"s3://{bucket}/huge.bin")
        os.remove(local)
        self.aws("s3", "cp", f"s3://{bucket}/huge.bin", local)
        self.assertEqual(file_sha256(local), digest)

    # -- rclone -----------------------------------------------------------------------

    def test_rclone_multipart_with_etag_check(self) -> None:
        """rclone with 8 MiB parts verifies the multipart ETag; copy-cutoff 8M copies by parts."""
        assert self.server is not None
        rclone = client_binary("rclone")
        config = os.path.join(self.home, "rclone.conf")
        with open(config, "w") as f:
            f.write(
                "[s4]\ntype = s3\nprovider = Other\n"
                f"access_key_id = {self.server.access_key}\n"
                f"secret_access_key = {self.server.secret_key}\n"
                f"endpoint = {self.server.endpoint}\n"
                f"region = {self.server.region}\nforce_path_style = true\n"
            )
        argv = [
            rclone, "--config", config, "--retries", "1", "--low-level-retries", "1",
            "--s3-upload-cutoff", "8M", "--s3-chunk-size", "8M", "--s3-copy-cutoff", "8M",
            "--s3-use-multipart-etag", "true",
        ]  # fmt: skip
        bucket = self.bucket_name()
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        digest = write_file(os.path.join(src, "big.bin"), 30 * MIB + 7, seed=53)
        run_client(self, [*argv, "mkdir", f"s4:{bucket}"], self.env)
        done = run_client(self, [*argv, "copy", "-vv", src, f"s4:{bucket}/up"], self.env)
        self.assertIn("multipart upload", done.stderr.lower())
        self.assertNotIn("corrupted", done.stderr.lower())
        head = self.s3.head_object(Bucket=bucket, Key="up/big.bin")
        self.assertTrue(head["ETag"].endswith('-4"'), head["ETag"])
        run_client(self, [*argv, "check", "--download", src, f"s4:{bucket}/up"], self.env)
        run_client(
            self, [*argv, "copyto", f"s4:{bucket}/up/big.bin", f"s4:{bucket}/copied.bin"], self.env
        )
        out = os.path.join(self.tmp, "out")
        run_client(self, [*argv, "copyto", f"s4:{bucket}/copied.bin", out], self.env)
        self.assertEqual(file_sha256(out), digest)
        self.no_uploads_left(bucket)

    # -- s3cmd ------------------------------------------------------------------------

    def test_s3cmd_multipart(self) -> None:
        """s3cmd put (15 MiB parts) and get, SigV4."""
        assert self.server is not None
        s3cmd = client_binary("s3cmd")
        config = os.path.join(self.home, "s3cmd.cfg")
        with open(config, "w") as f:
            f.write(
                "[default]\n"
                f"access_key = {self.server.access_key}\nsecret_key = {self.server.secret_key}\n"
                f"host_base = {self.server.host}\nhost_bucket = {self.server.host}\n"
                "use_https = False\nsignature_v2 = False\n"
                f"bucket_location = {self.server.region}\nprogress_meter = False\n"
                "max_retries = 2\nmultipart_chunk_size_mb = 15\n"
            )
        argv = [s3cmd, "-c", config]
        bucket = self.bucket_name()
        run_client(self, [*argv, "mb", f"s3://{bucket}"], self.env)
        local = os.path.join(self.tmp, "big.bin")
        digest = write_file(local, 33 * MIB + 1, seed=54)
        run_client(self, [*argv, "put", local, f"s3://{bucket}/s3cmd.bin"], self.env)
        head = self.s3.head_object(Bucket=bucket, Key="s3cmd.bin")
        self.assertTrue(head["ETag"].endswith('-3"'), head["ETag"])
        out = os.path.join(self.tmp, "out.bin")
        run_client(self, [*argv, "get", "--force", f"s3://{bucket}/s3cmd.bin", out], self.env)
        self.assertEqual(file_sha256(out), digest)
        self.no_uploads_left(bucket)

    # -- boto3 ------------------------------------------------------------------------

    def test_boto3_upload_fileobj_and_managed_copy(self) -> None:
        """upload_fileobj of 100 MiB (CRC32 by default), managed copy by UploadPartCopy."""
        from boto3.s3.transfer import TransferConfig

        bucket = self.bucket_name()
        self.s3.create_bucket(Bucket=bucket)
        body = payload(100 * MIB + 5, seed=55)
        self.s3.upload_fileobj(io.BytesIO(body), bucket, "source.bin")
        head = self.s3.head_object(Bucket=bucket, Key="source.bin", ChecksumMode="ENABLED")
        self.assertTrue(head["ETag"].endswith('-13"'), head["ETag"])
        self.assertTrue(head.get("ChecksumCRC32", "").endswith("-13"), head)
        before = self.segment_bytes()
        config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
        self.s3.copy({"Bucket": bucket, "Key": "source.bin"}, bucket, "copy.bin", Config=config)
        self.assertEqual(self.segment_bytes(), before, "the managed copy wrote bytes")
        for key in ("source.bin", "copy.bin"):
            out = io.BytesIO()
            self.s3.download_fileobj(bucket, key, out)
            self.assertEqual(sha256(out.getvalue()), sha256(body), key)
        self.no_uploads_left(bucket)

    def test_boto3_abort_and_list(self) -> None:
        """Low-level calls: list uploads and parts, abort, and NoSuchUpload afterwards."""
        from botocore.exceptions import ClientError

        bucket = self.bucket_name()
        self.s3.create_bucket(Bucket=bucket)
        uid = self.s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        self.s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"x" * 100)
        listed = self.s3.list_multipart_uploads(Bucket=bucket)
        self.assertEqual([u["UploadId"] for u in listed["Uploads"]], [uid])
        parts = self.s3.list_parts(Bucket=bucket, Key="k", UploadId=uid)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in parts], [(1, 100)])
        self.s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)
        with self.assertRaises(ClientError) as caught:
            self.s3.list_parts(Bucket=bucket, Key="k", UploadId=uid)
        self.assertEqual(caught.exception.response["Error"]["Code"], "NoSuchUpload")
        self.no_uploads_left(bucket)

    # -- minio-py ---------------------------------------------------------------------

    def test_minio_multipart(self) -> None:
        """minio-py put_object with 5 MiB parts, fget_object back."""
        assert self.server is not None
        try:
            import minio
        except ImportError as e:  # pragma: no cover - the [test] extra installs it
            raise SkipTest(f"minio is not installed: {e}") from None
        client = minio.Minio(
            self.server.host,
            access_key=self.server.access_key,
            secret_key=self.server.secret_key,
            secure=False,
            region=self.server.region,
        )
        bucket = self.bucket_name()
        client.make_bucket(bucket)
        body = payload(12 * MIB + 3, seed=56)
        result = client.put_object(
            bucket, "minio.bin", io.BytesIO(body), len(body), part_size=5 * MIB
        )
        self.assertTrue(result.etag.endswith("-3"), result.etag)
        out = os.path.join(self.tmp, "minio.out")
        client.fget_object(bucket, "minio.bin", out)
        self.assertEqual(file_sha256(out), sha256(body))
        # A stream of unknown length goes multipart too.
        client.put_object(bucket, "stream.bin", io.BytesIO(body), -1, part_size=5 * MIB)
        response = client.get_object(bucket, "stream.bin")
        try:
            self.assertEqual(sha256(response.read()), sha256(body))
        finally:
            response.close()
            response.release_conn()
        self.no_uploads_left(bucket)


class MultipartExpiryTests(ServerTestCase):
    """A server whose uploads expire after 2 seconds (``S4_COMPACTION_MULTIPART_TTL_SECS``)."""

    server_env = {"S4_COMPACTION_MULTIPART_TTL_SECS": "2"}

    def test_abandoned_upload_expires(self) -> None:
        import time

        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        uid = s3.create_multipart_upload(Bucket=bucket, Key="old")["UploadId"]
        s3.upload_part(Bucket=bucket, Key="old", UploadId=uid, PartNumber=1, Body=b"x" * 1000)
        deadline = time.monotonic() + 15
        while "Uploads" in s3.list_multipart_uploads(Bucket=bucket):
            self.assertLess(time.monotonic(), deadline, "the upload did not expire")
            time.sleep(0.25)
        self.assertIn("Expired 1 abandoned multipart uploads", self.server.log())
