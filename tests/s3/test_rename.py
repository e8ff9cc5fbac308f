"""RenameObject over the wire: boto3's ``rename_object``, the AWS CLI, raw requests.

Strategy: the real stack runs in this process (:mod:`tests.s3.server`); boto3
and the ``aws`` program (from the CLI's own virtualenv when present, else
skipped) call it from threads. Raw signed requests cover what the SDKs cannot
send (s4d's ``x-amz-rename-merge`` header, a missing source header). The
concurrency test fills a 5,000-key prefix straight through the store, then one
thread renames it back and forth with boto3 while another keeps reading: a
delimiter listing over S3 must show exactly one of the two prefixes, a
1000-key page must hold keys of one prefix only, and a whole listing taken in
one read transaction must hold all 5,000 keys under one name. The renamer waits
for a read between renames, so both names are seen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

from twisted.trial.unittest import SkipTest

from s4d.features import objects as fo
from s4d.store.listing import list_objects
from s4d.store.store import Store
from tests.s3.server import ACCESS_KEY, SECRET_KEY, boto3_client
from tests.s3.test_api import S3TestCase, error_code, read_object

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def fill(store: Store, bucket: str, prefix: str, count: int) -> None:
    """Create ``count`` empty objects under ``prefix`` in one commit (fast)."""
    new = fo.NewObject(size=0, etag=EMPTY_MD5)

    def create(t: Any) -> None:
        for i in range(count):
            fo.put_object(t, bucket, f"{prefix}{i:05d}", new, [], fo.WriteConditions(), 0)

    store.commit(create)


def aws_cli() -> str:
    """The ``aws`` program to test with, or SkipTest."""
    for candidate in (
        os.environ.get("S4D_AWS_CLI"),
        os.path.join(os.path.dirname(sys.executable), "aws"),
        shutil.which("aws"),
        "/tmp/cvenv/bin/aws",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SkipTest("the AWS CLI is not installed")


class RenameObjectTests(S3TestCase):
    def setUp(self) -> None:
        super().setUp()
        return self.call(self.s3.create_bucket, Bucket="bkt")

    async def put(self, key: str, body: bytes = b"x") -> dict[str, Any]:
        return await self.call(self.s3.put_object, Bucket="bkt", Key=key, Body=body)  # type: ignore[no-any-return]

    async def keys(self, bucket: str = "bkt") -> list[str]:
        listed = await self.call(self.s3.list_objects_v2, Bucket=bucket)
        return [o["Key"] for o in listed.get("Contents", [])]

    async def test_boto3_renames_a_key(self) -> None:
        key = "dir one/ü k+1%"
        put = await self.put(key, b"payload")
        result = await self.call(
            self.s3.rename_object, Bucket="bkt", Key="renamed/ü", RenameSource=quote(f"bkt/{key}")
        )
        self.assertEqual(result["ResponseMetadata"]["HTTPStatusCode"], 200)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="renamed/ü")
        self.assertEqual((got["Data"], got["ETag"]), (b"payload", put["ETag"]))
        self.assertEqual(await self.keys(), ["renamed/ü"])
        # A leading slash on the source is accepted too.
        await self.call(
            self.s3.rename_object, Bucket="bkt", Key="back", RenameSource="/bkt/renamed/%C3%BC"
        )
        self.assertEqual(await self.keys(), ["back"])

    async def test_boto3_renames_a_prefix(self) -> None:
        for key in ("logs/", "logs/a", "logs/2024/b", "logs-other", "logsx"):
            await self.put(key)
        await self.call(
            self.s3.rename_object, Bucket="bkt", Key="archive/logs/", RenameSource="bkt/logs/"
        )
        self.assertEqual(
            await self.keys(),
            ["archive/logs/", "archive/logs/2024/b", "archive/logs/a", "logs-other", "logsx"],
        )

    async def test_versions_move_with_the_key(self) -> None:
        await self.call(
            self.s3.put_bucket_versioning,
            Bucket="bkt",
            VersioningConfiguration={"Status": "Enabled"},
        )
        first = await self.put("k", b"one")
        await self.put("k", b"two")
        await self.call(self.s3.rename_object, Bucket="bkt", Key="m", RenameSource="bkt/k")
        got = await self.call(
            read_object, self.s3, Bucket="bkt", Key="m", VersionId=first["VersionId"]
        )
        self.assertEqual(got["Data"], b"one")
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="m")
        self.assertEqual(got["Data"], b"two")

    async def test_conditions(self) -> None:
        await self.put("src", b"s")
        dst = await self.put("dst", b"d")
        e = await self.client_error(
            self.s3.rename_object,
            Bucket="bkt",
            Key="dst",
            RenameSource="bkt/src",
            DestinationIfNoneMatch="*",
        )
        self.assertEqual(
            (error_code(e), e.response["ResponseMetadata"]["HTTPStatusCode"]),
            ("PreconditionFailed", 412),
        )
        e = await self.client_error(
            self.s3.rename_object,
            Bucket="bkt",
            Key="dst",
            RenameSource="bkt/src",
            SourceIfMatch='"0123"',
        )
        self.assertEqual(error_code(e), "PreconditionFailed")
        await self.call(
            self.s3.rename_object,
            Bucket="bkt",
            Key="dst",
            RenameSource="bkt/src",
            DestinationIfMatch=dst["ETag"],
            SourceIfNoneMatch='"0123"',
        )
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="dst")
        self.assertEqual(got["Data"], b"s")

    async def test_client_token_makes_retries_idempotent(self) -> None:
        await self.put("a")
        await self.call(
            self.s3.rename_object,
            Bucket="bkt",
            Key="b",
            RenameSource="bkt/a",
            ClientToken="retry-1",
        )
        await self.call(
            self.s3.rename_object,
            Bucket="bkt",
            Key="b",
            RenameSource="bkt/a",
            ClientToken="retry-1",
        )
        self.assertEqual(await self.keys(), ["b"])
        e = await self.client_error(
            self.s3.rename_object,
            Bucket="bkt",
            Key="c",
            RenameSource="bkt/a",
            ClientToken="retry-1",
        )
        self.assertEqual(
            (error_code(e), e.response["ResponseMetadata"]["HTTPStatusCode"]),
            ("IdempotencyParameterMismatch", 400),
        )

    async def test_errors(self) -> None:
        await self.put("dir/k")
        await self.put("other/k")
        await self.call(self.s3.create_bucket, Bucket="bkt2")
        cases = [
            ("bkt", "x", "bkt/missing", "NoSuchKey", 404),
            ("bkt", "x/", "bkt/missing/", "NoSuchKey", 404),
            ("bkt2", "x", "bkt/dir/k", "InvalidRequest", 400),
            ("nobucket", "x", "nobucket/k", "NoSuchBucket", 404),
            ("bkt", "dir/sub/", "bkt/dir/", "InvalidRequest", 400),
            ("bkt", "other/", "bkt/dir/", "DestinationAlreadyExists", 409),
            ("bkt", "x" * 1025, "bkt/dir/k", "KeyTooLongError", 400),
            ("bkt", "x", "bkt/" + "k" * 1025, "KeyTooLongError", 400),
            ("bkt", "x", "bkt/", "InvalidArgument", 400),
            ("bkt", "x", "bkt", "InvalidArgument", 400),
            ("bkt", "file", "bkt/dir/", "InvalidArgument", 400),
        ]
        for bucket, key, source, code, status in cases:
            e = await self.client_error(
                self.s3.rename_object, Bucket=bucket, Key=key, RenameSource=source
            )
            self.assertEqual(
                (error_code(e), e.response["ResponseMetadata"]["HTTPStatusCode"]),
                (code, status),
                (key, source),
            )
        self.assertEqual(await self.keys(), ["dir/k", "other/k"])

    async def test_merge_header_and_missing_source(self) -> None:
        for key in ("src/a", "src/b", "dst/c"):
            await self.put(key)
        query = [("renameObject", "")]
        status, headers, body = await self.raw(
            "PUT",
            "/bkt/dst/",
            query=query,
            headers={"x-amz-rename-source": "bkt/src/", "x-amz-rename-merge": "true"},
        )
        self.assertEqual((status, body), (200, b""), body)
        self.assertEqual(headers["content-length"], "0")
        self.assertEqual(await self.keys(), ["dst/a", "dst/b", "dst/c"])
        status, _, body = await self.raw("PUT", "/bkt/x", query=query)
        self.assertEqual(status, 400)
        self.assertIn(b"x-amz-rename-source", body)
        status, _, body = await self.raw(
            "PUT",
            "/bkt/x",
            query=query,
            headers={"x-amz-rename-source": "bkt/dst/a", "x-amz-rename-merge": "maybe"},
        )
        self.assertIn(b"<Code>InvalidArgument</Code>", body)

    async def test_multipart_upload_under_the_source_completes_at_its_key(self) -> None:
        await self.put("dir/existing")
        upload = await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="dir/big")
        uid = upload["UploadId"]
        part = await self.call(
            self.s3.upload_part, Bucket="bkt", Key="dir/big", UploadId=uid, PartNumber=1, Body=b"p1"
        )
        await self.call(self.s3.rename_object, Bucket="bkt", Key="moved/", RenameSource="bkt/dir/")
        await self.call(
            self.s3.complete_multipart_upload,
            Bucket="bkt",
            Key="dir/big",
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        self.assertEqual(await self.keys(), ["dir/big", "moved/existing"])

    async def test_aws_cli_rename_object(self) -> None:
        aws = aws_cli()
        await self.put("cli/old name", b"via cli")
        home = tempfile.mkdtemp(prefix="s4d-aws-")
        self.addCleanup(shutil.rmtree, home, True)
        config = os.path.join(home, "config")
        with open(config, "w") as f:
            f.write("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "AWS_CONFIG_FILE": config,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [aws, "--endpoint-url", self.url, "s3api", "rename-object", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        done = await self.call(
            run,
            "--bucket",
            "bkt",
            "--key",
            "cli/new name",
            "--rename-source",
            quote("bkt/cli/old name"),
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="cli/new name")
        self.assertEqual(got["Data"], b"via cli")
        done = await self.call(
            run, "--bucket", "bkt", "--key", "tree/", "--rename-source", "bkt/cli/"
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(await self.keys(), ["tree/new name"])
        done = await self.call(
            run, "--bucket", "bkt", "--key", "x", "--rename-source", "bkt/cli/gone"
        )
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("NoSuchKey", done.stderr)


class ConcurrentReaderTests(S3TestCase):
    COUNT = 5000
    RENAMES = 24

    async def test_readers_see_the_old_names_or_the_new_never_a_mix(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="bkt")
        await self.call(fill, self.server.store, "bkt", "old/", self.COUNT)
        reads = Counter[str]()
        problems: list[str] = []
        stop = threading.Event()
        read_done = threading.Condition()

        def reader() -> None:
            s3 = boto3_client(self.url)
            store = self.server.store
            while not stop.is_set():
                listed = s3.list_objects_v2(Bucket="bkt", Delimiter="/")
                tops = [p["Prefix"] for p in listed.get("CommonPrefixes", [])]
                if tops not in (["old/"], ["new/"]):
                    problems.append(f"delimiter listing shows {tops}")
                page = s3.list_objects_v2(Bucket="bkt", MaxKeys=1000)
                names = {o["Key"].split("/")[0] for o in page.get("Contents", [])}
                if len(names) != 1 or page["KeyCount"] != 1000:
                    problems.append(f"a page holds {page['KeyCount']} keys under {names}")
                with store.read() as t:
                    whole = list_objects(
                        t, t.buckets.require("bkt"), b"", None, None, 10 * self.COUNT
                    )
                names = {e.key.split("/")[0] for e in whole.entries}
                if len(names) != 1 or len(whole.entries) != self.COUNT:
                    problems.append(f"a snapshot holds {len(whole.entries)} keys under {names}")
                with read_done:
                    reads[next(iter(names))] += 1
                    read_done.notify_all()

        def renamer() -> float:
            s3 = boto3_client(self.url)
            names = ["old/", "new/"]
            slowest = 0.0
            try:
                for i in range(self.RENAMES):
                    with read_done:
                        before = sum(reads.values())
                    start = time.perf_counter()
                    s3.rename_object(
                        Bucket="bkt", Key=names[(i + 1) % 2], RenameSource="bkt/" + names[i % 2]
                    )
                    slowest = max(slowest, time.perf_counter() - start)
                    with read_done:
                        read_done.wait_for(
                            lambda seen=before + 2: sum(reads.values()) >= seen, timeout=10
                        )
            finally:
                stop.set()
            return slowest

        reading = self.call(reader)
        slowest = await self.call(renamer)
        await reading
        self.assertEqual(problems, [])
        self.assertGreater(reads["old"], 0)
        self.assertGreater(reads["new"], 0)
        self.assertLess(slowest, 5.0)
        final = await self.call(self.s3.list_objects_v2, Bucket="bkt", Prefix="old/", MaxKeys=1)
        self.assertEqual(final["KeyCount"], 1)  # an even number of renames: back at "old/"
