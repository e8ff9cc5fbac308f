"""A full disk: writes fail with an S3 error, reads go on, and freeing space is enough.

Strategy: the test mounts a small filesystem of its own (a 48 MiB tmpfs, and a
48 MiB ext4 image on a loop device, whose ``fdatasync`` is real) and puts a
real server's data directory on it (fsync on, 4 MiB segments) next to an 8 MiB
filler file. It then fills the disk in three stages, each until a write is
refused: 1 MiB objects (segment appends hit ``ENOSPC``), 4 KiB objects, and
empty objects, which write no segment bytes at all, so the refusal comes from
LMDB failing to grow its file at commit. Every refusal must be ``507
StorageFull`` with an S3 error document, and the server must stay up. While the
disk is full every acknowledged object must read back byte-exact and the bucket
must list. Then the filler file is deleted (no restart): new writes must
succeed, deletes and overwrites too, and after a clean stop ``s4d fsck`` must
find nothing wrong and a restarted server must serve exactly the acknowledged
objects. Environments that do not allow mounting skip with the reason.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import ServerGroup, sha256
from tests.reliability._support import ROOT, mount_small_fs

BUCKET = "full"
FS_MB = 48
FILLER_MB = 8
SERVER_ENV = {
    "S4_FSYNC": "true",
    "S4_SEGMENT_SIZE": "4MB",
    "S4_CHUNK_SIZE": "1MB",
    "S4_LMDB_MAP_SIZE": "1GB",
    "S4_COMPACTION_ENABLED": "false",
    "S4_SCRUB_ENABLED": "false",
}


class DiskFullMixin:
    """The test, for one kind of filesystem (``fs_kind``)."""

    fs_kind = ""

    def test_disk_full(self) -> None:
        self: SynchronousTestCase = self  # type: ignore[no-redef]
        work = os.path.abspath(self.mktemp())
        mount_point = os.path.join(work, "mnt")
        unmount = mount_small_fs(self.fs_kind, mount_point, FS_MB)
        self.addCleanup(unmount)
        filler = os.path.join(mount_point, "filler")
        with open(filler, "wb") as f:
            f.write(os.urandom(FILLER_MB << 20))
            os.fsync(f.fileno())
        data_dir = os.path.join(mount_point, "data")
        server = ServerGroup(data_dir, os.path.join(work, "server.log"), SERVER_ENV)
        server.start()
        self.addCleanup(server.kill)
        log = lambda: "\n--- server log ---\n" + server.log_tail(6000)  # noqa: E731
        pid = server.process.pid if server.process else 0
        client = server.client()
        self.assertEqual(client.request("PUT", BUCKET).status, 200)
        rng = random.Random(7)
        stored: dict[str, str] = {}
        refusals: Counter[str] = Counter()

        def fill(prefix: str, size: int, limit: int) -> int:
            """PUT objects of ``size`` until one is refused; return how many were stored."""
            for i in range(limit):
                key = f"{prefix}/{i:05d}"
                data = rng.randbytes(size)
                r = client.put(BUCKET, key, data)
                if r.status == 200:
                    stored[key] = sha256(data)
                    continue
                refusals[f"{r.status} {r.error_code()}"] += 1
                self.assertEqual(
                    (r.status, r.error_code()), (507, "StorageFull"), f"PUT {key}{log()}"
                )
                self.assertIsNone(server.process.poll(), "the server died")
                return i
            self.fail(f"{limit} objects of {size} bytes fit on a {FS_MB} MiB disk")

        big = fill("big", 1 << 20, 200)
        self.assertGreater(big, 10, log())
        small = fill("small", 4096, 5000)
        empty = fill("empty", 0, 20000)
        # Still full: writes keep failing cleanly, small ones and streamed multi-chunk ones.
        for size in (1 << 20, 3 << 20, 1 << 20, 5 << 20):
            r = client.put(BUCKET, f"again/{size}", rng.randbytes(size))
            self.assertEqual((r.status, r.error_code()), (507, "StorageFull"), log())
        r, upload_id = client.create_multipart(BUCKET, "mpu")
        if r.status == 200:
            r = client.upload_part(BUCKET, "mpu", upload_id, 1, rng.randbytes(2 << 20))
        self.assertEqual((r.status, r.error_code()), (507, "StorageFull"), log())
        # Reads, listings and HEADs work while the disk is full.
        self.check_all(server, stored, log)
        # Freeing space is enough: no restart.
        os.unlink(filler)
        self.assertIsNone(server.process.poll())
        self.assertEqual(server.process.pid, pid)
        for i in range(4):
            data = rng.randbytes(1 << 20)
            r = client.put(BUCKET, f"after/{i}", data)
            self.assertEqual(r.status, 200, f"PUT after freeing space: {r.body[:300]!r}{log()}")
            stored[f"after/{i}"] = sha256(data)
        victims = sorted(stored)[::2]
        for key in victims:
            r = client.delete(BUCKET, key)
            self.assertEqual(r.status, 204, f"DELETE {key}: {r.body[:300]!r}{log()}")
            del stored[key]
        for key in sorted(stored)[:5]:
            data = rng.randbytes(rng.randrange(1, 300_000))
            r = client.put(BUCKET, key, data)
            self.assertEqual(r.status, 200, f"overwrite {key}{log()}")
            stored[key] = sha256(data)
        self.check_all(server, stored, log)
        client.close()
        self.assertIn(server.stop(), (0, -signal.SIGTERM), log())
        check = subprocess.run(
            [sys.executable, "-m", "s4d.cli", "fsck", data_dir],
            env=dict(os.environ, PYTHONPATH=ROOT),
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        server.start()
        self.check_all(server, stored, log)
        sys.stderr.write(
            f"\n{self.fs_kind}: {big} x 1 MiB, {small} x 4 KiB, {empty} empty objects stored "
            f"before the disk was full; refusals {dict(refusals)}\n"
        )

    def check_all(self, server: ServerGroup, stored: dict[str, str], log: object) -> None:
        """Every acknowledged object reads back; the listing holds exactly them."""
        self: SynchronousTestCase = self  # type: ignore[no-redef]
        client = server.client()
        try:
            self.assertEqual(sorted(client.list_keys(BUCKET)), sorted(stored))
            for key, digest in sorted(stored.items()):
                r = client.get(BUCKET, key)
                self.assertEqual(r.status, 200, f"GET {key}: {r.body[:300]!r}{log()}")  # type: ignore[operator]
                self.assertEqual(sha256(r.body), digest, f"GET {key}")
            self.assertEqual(client.request("HEAD", BUCKET, sorted(stored)[0]).status, 200)
        finally:
            client.close()


class TmpfsDiskFullTests(DiskFullMixin, SynchronousTestCase):
    fs_kind = "tmpfs"


class Ext4DiskFullTests(DiskFullMixin, SynchronousTestCase):
    fs_kind = "ext4"
