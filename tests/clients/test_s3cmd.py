"""s3cmd 2.4 against a real s4d process, signing with SigV4 and with SigV2.

s3cmd runs from this virtualenv with a generated ``-c`` config file (path
style: ``host_bucket`` has no ``%(bucket)s``) and a temporary home. Its habits
worth covering: GetBucketLocation before work, ListObjects V1 with markers,
``info`` reading ``?acl``/``?policy``/``?cors``/``?lifecycle``, the
``x-amz-meta-s3cmd-attrs`` header, and ``signurl`` (always SigV2 query auth).
"""

from __future__ import annotations

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
    "one.txt": b"one\n",
    "sub dir/two+2.bin": payload(40_000, seed=21),
    "sub dir/deeper/ü three.txt": "drei ✓\n".encode(),
    "sub dir/empty": b"",
    "four%.bin": payload(2 * 1024 * 1024 + 1, seed=22),
}


class S3cmdTests(ServerTestCase):
    """s3cmd with ``signature_v2 = False`` (SigV4)."""

    signature_v2 = False

    def setUp(self) -> None:
        super().setUp()
        self.s3cmd_bin = client_binary("s3cmd")
        self.env = isolated_env(os.path.join(self.tmp, "home"))
        self.config = os.path.join(self.env["HOME"], "s3cmd.cfg")
        lines = [
            "[default]",
            f"access_key = {self.server.access_key}",
            f"secret_key = {self.server.secret_key}",
            f"host_base = {self.server.host}",
            f"host_bucket = {self.server.host}",
            f"use_https = {self.server.tls}",
            f"signurl_use_https = {self.server.tls}",
            f"signature_v2 = {self.signature_v2}",
            f"bucket_location = {self.server.region}",
            "check_ssl_certificate = True",
            f"ca_certs_file = {self.server.cert_path or ''}",
            "progress_meter = False",
            "max_retries = 2",
        ]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def s3cmd(self, *args: str, check: bool = True) -> Any:
        return run_client(self, [self.s3cmd_bin, "-c", self.config, *args], self.env, check=check)

    def test_put_get_ls_info_signurl_del(self) -> None:
        """mb, put, get, ls, info, signurl (fetched with urllib), del, rb."""
        bucket = self.bucket_name()
        self.s3cmd("mb", f"s3://{bucket}")
        local = os.path.join(self.tmp, "file.bin")
        body = payload(300_000, seed=23)
        with open(local, "wb") as f:
            f.write(body)
        key = "dir/with space+plus ü.bin"
        self.s3cmd("put", "--mime-type=application/x-s4d", local, f"s3://{bucket}/{key}")
        out = os.path.join(self.tmp, "out.bin")
        self.s3cmd("get", "--force", f"s3://{bucket}/{key}", out)
        self.assertEqual(file_sha256(out), sha256(body))

        listing = self.s3cmd("ls", f"s3://{bucket}").stdout
        self.assertIn(f"DIR  s3://{bucket}/dir/", listing)
        listing = self.s3cmd("ls", "--recursive", f"s3://{bucket}").stdout
        self.assertIn(f"s3://{bucket}/{key}", listing)
        self.assertIn(str(len(body)), listing)
        self.assertIn(f"s3://{bucket}", self.s3cmd("ls").stdout)

        info = self.s3cmd("info", f"s3://{bucket}/{key}").stdout
        self.assertIn(f"File size: {len(body)}", info)
        self.assertIn("application/x-s4d", info)
        self.assertIn(md5_hex(body), info)
        info = self.s3cmd("info", f"s3://{bucket}").stdout
        self.assertIn("Location:", info)

        url = self.s3cmd("signurl", f"s3://{bucket}/{key}", "+300").stdout.strip()
        status, data = self.urlopen(url)
        self.assertEqual(status, 200, data[:300])
        self.assertEqual(sha256(data), sha256(body))

        self.s3cmd("cp", f"s3://{bucket}/{key}", f"s3://{bucket}/copy")
        self.s3cmd("get", "--force", f"s3://{bucket}/copy", out)
        self.assertEqual(file_sha256(out), sha256(body))

        # modify: a copy onto itself with REPLACE; mv: copy then delete.
        self.s3cmd("modify", "--add-header=x-amz-meta-colour:Blue Green", f"s3://{bucket}/copy")
        info = self.s3cmd("info", f"s3://{bucket}/copy").stdout
        self.assertIn("x-amz-meta-colour: Blue Green", info)
        self.assertIn(f"File size: {len(body)}", info)
        self.s3cmd("mv", f"s3://{bucket}/copy", f"s3://{bucket}/moved")
        self.s3cmd("get", "--force", f"s3://{bucket}/moved", out)
        self.assertEqual(file_sha256(out), sha256(body))
        self.s3cmd("mv", f"s3://{bucket}/moved", f"s3://{bucket}/copy")

        self.s3cmd("del", f"s3://{bucket}/{key}", f"s3://{bucket}/copy")
        self.assertEqual(self.s3cmd("ls", "--recursive", f"s3://{bucket}").stdout.strip(), "")
        missing = self.s3cmd(
            "get", f"s3://{bucket}/nope", os.path.join(self.tmp, "nope"), check=False
        )
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("does not exist", missing.stderr)
        self.s3cmd("rb", f"s3://{bucket}")
        self.assertNotIn(f"s3://{bucket}", self.s3cmd("ls").stdout)

    def test_sync_twice(self) -> None:
        """sync up, a second sync uploads nothing; sync down gives identical files."""
        bucket = self.bucket_name()
        self.s3cmd("mb", f"s3://{bucket}")
        src = os.path.join(self.tmp, "src")
        self.write_tree(src, TREE)
        first = self.s3cmd("sync", src + "/", f"s3://{bucket}/tree/").stdout
        self.assertEqual(first.count("upload:"), len(TREE), first)
        second = self.s3cmd("sync", src + "/", f"s3://{bucket}/tree/").stdout
        self.assertNotIn("upload:", second)
        dst = os.path.join(self.tmp, "dst")
        os.makedirs(dst)
        first = self.s3cmd("sync", f"s3://{bucket}/tree/", dst + "/").stdout
        self.assertEqual(first.count("download:"), len(TREE), first)
        self.assertEqual(self.tree_digests(dst), self.tree_digests(src))
        second = self.s3cmd("sync", f"s3://{bucket}/tree/", dst + "/").stdout
        self.assertNotIn("download:", second)
        with open(os.path.join(src, "one.txt"), "wb") as f:
            f.write(b"ONE\n")  # same size, different MD5
        third = self.s3cmd("sync", "--delete-removed", src + "/", f"s3://{bucket}/tree/").stdout
        self.assertEqual(third.count("upload:"), 1, third)
        self.s3cmd("sync", f"s3://{bucket}/tree/", dst + "/")
        self.assertEqual(self.tree_digests(dst), self.tree_digests(src))
        self.s3cmd("del", "--recursive", "--force", f"s3://{bucket}/tree/")
        self.s3cmd("rb", f"s3://{bucket}")


class S3cmdSigV2Tests(S3cmdTests):
    """s3cmd with ``signature_v2 = True`` (SigV2 headers)."""

    signature_v2 = True


class S3cmdTLSTests(S3cmdTests):
    """s3cmd over HTTPS (``use_https``, the test certificate as ``ca_certs_file``)."""

    tls = True
