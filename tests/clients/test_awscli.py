"""The AWS CLI (v1, from PyPI) against a real s4d process.

The ``aws`` program of this virtualenv runs with its config and credentials
files in a temporary home. ``aws s3 sync`` compares sizes and LastModified, so
running it twice is a check that the server's timestamps and sizes agree
between PUT, listings and GET: the second run must transfer nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.clients.harness import (
    ServerTestCase,
    client_binary,
    file_sha256,
    isolated_env,
    md5_hex,
    payload,
    run_client,
    sha256,
)

TREE = {
    "a.txt": b"alpha\n",
    "empty": b"",
    "dir one/b c+d.bin": payload(70_000, seed=1),
    "dir one/nested/ü 日本.txt": "unicode ✓\n".encode(),
    "big/one-mib.bin": payload(1024 * 1024, seed=2),
    "big/odd%name&x=1.bin": payload(3333, seed=3),
}


class AwsCliTests(ServerTestCase):
    """``aws s3`` and ``aws s3api`` over plain HTTP."""

    def setUp(self) -> None:
        super().setUp()
        self.aws_bin = client_binary("aws")
        home = os.path.join(self.tmp, "home")
        self.env = isolated_env(home)
        with open(self.env["AWS_SHARED_CREDENTIALS_FILE"], "w") as f:
            f.write(
                f"[default]\naws_access_key_id = {self.server.access_key}\n"
                f"aws_secret_access_key = {self.server.secret_key}\n"
            )
        with open(self.env["AWS_CONFIG_FILE"], "w") as f:
            f.write(f"[default]\nregion = {self.server.region}\n")

    def aws(self, *args: str, check: bool = True, input: bytes | None = None) -> Any:
        argv = [self.aws_bin, "--endpoint-url", self.server.endpoint]
        if self.server.tls:
            argv += ["--ca-bundle", str(self.server.cert_path)]
        return run_client(self, [*argv, *args], self.env, check=check, input=input)

    def test_mb_cp_ls_presign_rm_rb(self) -> None:
        """mb, cp up/down/server-side, ls, presign, rm and rb --force."""
        bucket = self.bucket_name()
        self.aws("s3", "mb", f"s3://{bucket}")
        local = os.path.join(self.tmp, "up load+1.bin")
        body = payload(2 * 1024 * 1024 + 5, seed=4)
        with open(local, "wb") as f:
            f.write(body)
        key = "some dir/up load+1 ü.bin"
        self.aws("s3", "cp", "--no-progress", local, f"s3://{bucket}/{key}")
        down = os.path.join(self.tmp, "down.bin")
        self.aws("s3", "cp", "--no-progress", f"s3://{bucket}/{key}", down)
        self.assertEqual(file_sha256(down), sha256(body))
        self.aws("s3", "cp", "--no-progress", f"s3://{bucket}/{key}", f"s3://{bucket}/copied/{key}")
        self.aws("s3", "cp", "--no-progress", f"s3://{bucket}/copied/{key}", down)
        self.assertEqual(file_sha256(down), sha256(body))

        streamed = payload(1_500_000, seed=5)
        self.aws("s3", "cp", "--no-progress", "-", f"s3://{bucket}/from stdin", input=streamed)
        self.aws("s3", "cp", "--no-progress", f"s3://{bucket}/from stdin", down)
        self.assertEqual(file_sha256(down), sha256(streamed))
        self.aws("s3", "rm", f"s3://{bucket}/from stdin")

        listing = self.aws("s3", "ls", f"s3://{bucket}/").stdout
        self.assertIn("PRE some dir/", listing)
        self.assertIn("PRE copied/", listing)
        listing = self.aws("s3", "ls", "--recursive", f"s3://{bucket}").stdout
        lines = sorted(line.split(None, 3)[3] for line in listing.splitlines())
        self.assertEqual(lines, sorted([key, f"copied/{key}"]))
        self.assertIn(str(len(body)), listing)
        self.assertIn(bucket, self.aws("s3", "ls").stdout)

        url = self.aws(
            "s3", "presign", f"s3://{bucket}/{key}", "--expires-in", "300"
        ).stdout.strip()
        status, data = self.urlopen(url)
        self.assertEqual(status, 200, data[:300])
        self.assertEqual(sha256(data), sha256(body))

        self.aws("s3", "rm", f"s3://{bucket}/{key}")
        listing = self.aws("s3", "ls", "--recursive", f"s3://{bucket}").stdout
        self.assertEqual(
            [line.split(None, 3)[3] for line in listing.splitlines()], [f"copied/{key}"]
        )
        done = self.aws("s3", "rb", f"s3://{bucket}", check=False)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("BucketNotEmpty", done.stderr)
        self.aws("s3", "rb", "--force", f"s3://{bucket}")
        self.assertNotIn(bucket, self.aws("s3", "ls").stdout)

    def test_sync_twice(self) -> None:
        """sync up and down; a second sync in either direction transfers nothing."""
        bucket = self.bucket_name()
        self.aws("s3", "mb", f"s3://{bucket}")
        src = os.path.join(self.tmp, "src")
        self.write_tree(src, TREE)
        # LastModified has whole seconds (as on AWS): a file written in the same second as
        # its upload would look newer than the object, so the tree is a minute old.
        self.age_tree(src, 60)
        target = f"s3://{bucket}/tree/"
        first = self.aws("s3", "sync", "--no-progress", src, target).stdout
        self.assertEqual(first.count("upload:"), len(TREE), first)
        second = self.aws("s3", "sync", "--no-progress", src, target)
        self.assertEqual(second.stdout, "", "second upload sync transferred something")

        dst = os.path.join(self.tmp, "dst")
        first = self.aws("s3", "sync", "--no-progress", target, dst).stdout
        self.assertEqual(first.count("download:"), len(TREE), first)
        self.assertEqual(self.tree_digests(dst), self.tree_digests(src))
        second = self.aws("s3", "sync", "--no-progress", target, dst)
        self.assertEqual(second.stdout, "", "second download sync transferred something")
        # --exact-timestamps: the downloaded files' mtimes (whole seconds, from the listing)
        # must equal the listing's LastModified exactly.
        exact = self.aws("s3", "sync", "--no-progress", "--exact-timestamps", target, dst)
        self.assertEqual(exact.stdout, "", "sync --exact-timestamps downloaded again")

        # A change of size is found; a deleted file is deleted with --delete.
        with open(os.path.join(src, "a.txt"), "ab") as f:
            f.write(b"more\n")
        self.age_tree(src, 60)
        os.remove(os.path.join(src, "empty"))
        third = self.aws("s3", "sync", "--no-progress", "--delete", src, target).stdout
        self.assertEqual(
            sorted(line.split(":")[0] for line in third.splitlines()), ["delete", "upload"], third
        )
        self.assertEqual(
            self.aws("s3", "sync", "--no-progress", "--delete", src, target).stdout, ""
        )
        self.aws("s3", "sync", "--no-progress", "--delete", target, dst)
        self.assertEqual(self.tree_digests(dst), self.tree_digests(src))

    def test_s3api(self) -> None:
        """s3api put-object, head-object, list-objects-v2, get-object, copy-object."""
        bucket = self.bucket_name()
        self.aws("s3api", "create-bucket", "--bucket", bucket)
        local = os.path.join(self.tmp, "body.bin")
        body = payload(123_456, seed=6)
        with open(local, "wb") as f:
            f.write(body)
        put = json.loads(
            self.aws(
                "s3api",
                "put-object",
                "--bucket",
                bucket,
                "--key",
                "api/k ü+.bin",
                "--body",
                local,
                "--metadata",
                "color=blue,Mixed-Case=Value",
                "--content-type",
                "application/x-test",
            ).stdout
        )
        self.assertEqual(put["ETag"], f'"{md5_hex(body)}"')
        head = json.loads(
            self.aws("s3api", "head-object", "--bucket", bucket, "--key", "api/k ü+.bin").stdout
        )
        self.assertEqual(head["ContentLength"], len(body))
        self.assertEqual(head["ContentType"], "application/x-test")
        self.assertEqual(head["Metadata"], {"color": "blue", "mixed-case": "Value"})
        self.assertEqual(head["ETag"], put["ETag"])
        listed = json.loads(
            self.aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "api/").stdout
        )
        self.assertEqual([o["Key"] for o in listed["Contents"]], ["api/k ü+.bin"])
        self.assertEqual(listed["Contents"][0]["Size"], len(body))
        out = os.path.join(self.tmp, "out.bin")
        self.aws(
            "s3api",
            "get-object",
            "--bucket",
            bucket,
            "--key",
            "api/k ü+.bin",
            "--range",
            "bytes=-1000",
            out,
        )
        self.assertEqual(file_sha256(out), sha256(body[-1000:]))
        self.aws(
            "s3api",
            "copy-object",
            "--bucket",
            bucket,
            "--key",
            "api/copy",
            "--copy-source",
            f"{bucket}/api/k ü+.bin",
        )
        self.aws("s3api", "get-object", "--bucket", bucket, "--key", "api/copy", out)
        self.assertEqual(file_sha256(out), sha256(body))
        missing = self.aws("s3api", "head-object", "--bucket", bucket, "--key", "nope", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("404", missing.stderr)

    def test_s3api_list_object_versions(self) -> None:
        """s3api list-object-versions, paging one entry at a time (``--page-size 1``)."""
        bucket = self.bucket_name()
        self.aws("s3api", "create-bucket", "--bucket", bucket)
        self.aws(
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            bucket,
            "--versioning-configuration",
            "Status=Enabled",
        )
        local = os.path.join(self.tmp, "v.bin")
        ids = []
        for i in range(2):
            with open(local, "wb") as f:
                f.write(payload(100 + i, seed=i))
            put = self.aws(
                "s3api", "put-object", "--bucket", bucket, "--key", "ver/k ü", "--body", local
            )
            ids.append(json.loads(put.stdout)["VersionId"])
        deleted = json.loads(
            self.aws("s3api", "delete-object", "--bucket", bucket, "--key", "ver/k ü").stdout
        )
        listed = json.loads(
            self.aws("s3api", "list-object-versions", "--bucket", bucket, "--page-size", "1").stdout
        )
        self.assertEqual(
            [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in listed["Versions"]],
            [("ver/k ü", ids[1], False, 101), ("ver/k ü", ids[0], False, 100)],
        )
        self.assertEqual(
            [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]],
            [(deleted["VersionId"], True)],
        )

    def test_s4_readme_versioning_walkthrough(self) -> None:
        """S4's README versioning section, step by step (bodies from files, not ``--body -``)."""
        bucket = self.bucket_name()
        self.aws("s3", "mb", f"s3://{bucket}")
        self.aws(
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            bucket,
            "--versioning-configuration",
            "Status=Enabled",
        )
        ids = []
        for n in (1, 2):
            body = os.path.join(self.tmp, f"v{n}.txt")
            with open(body, "w") as f:
                f.write(f"version {n}\n")
            put = self.aws(
                "s3api", "put-object", "--bucket", bucket, "--key", "file.txt", "--body", body
            )
            ids.append(json.loads(put.stdout)["VersionId"])
        self.assertNotEqual(ids[0], ids[1])
        listed = json.loads(
            self.aws(
                "s3api", "list-object-versions", "--bucket", bucket, "--prefix", "file.txt"
            ).stdout
        )
        self.assertEqual(
            [(v["VersionId"], v["IsLatest"], v["Size"]) for v in listed["Versions"]],
            [(ids[1], True, 10), (ids[0], False, 10)],
        )
        first = os.path.join(self.tmp, "first_version.txt")
        self.aws(
            "s3api",
            "get-object",
            "--bucket",
            bucket,
            "--key",
            "file.txt",
            "--version-id",
            ids[0],
            first,
        )
        with open(first) as f:
            self.assertEqual(f.read(), "version 1\n")
        deleted = json.loads(
            self.aws("s3api", "delete-object", "--bucket", bucket, "--key", "file.txt").stdout
        )
        self.assertTrue(deleted["DeleteMarker"])
        gone = self.aws(
            "s3api", "get-object", "--bucket", bucket, "--key", "file.txt", first, check=False
        )
        self.assertNotEqual(gone.returncode, 0)
        self.assertIn("NoSuchKey", gone.stderr)
        listed = json.loads(
            self.aws(
                "s3api", "list-object-versions", "--bucket", bucket, "--prefix", "file.txt"
            ).stdout
        )
        self.assertEqual(
            [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]],
            [(deleted["VersionId"], True)],
        )
        self.assertEqual([v["IsLatest"] for v in listed["Versions"]], [False, False])
        # removing the marker by id restores version 2
        self.aws(
            "s3api",
            "delete-object",
            "--bucket",
            bucket,
            "--key",
            "file.txt",
            "--version-id",
            deleted["VersionId"],
        )
        self.aws("s3api", "get-object", "--bucket", bucket, "--key", "file.txt", first)
        with open(first) as f:
            self.assertEqual(f.read(), "version 2\n")


class AwsCliTLSTests(AwsCliTests):
    """The same over HTTPS (``--ca-bundle`` with the test certificate)."""

    tls = True
