"""Recovery and damage: what happens to a data directory that was hurt.

Strategy: objects are written through a real store in a temp directory, the
store is closed, and the files are then damaged by hand exactly as a crash, a
disk or a full file system would: bytes appended past the committed end of a
segment, a flipped byte inside a stored chunk, a write that fails with ENOSPC
(by patching ``os.pwritev`` as :mod:`s4d.store.segments` sees it). The store is
reopened and every object is read back; damage must surface as
``CorruptRecord`` and in :func:`fsck.check`, never as wrong bytes. A last group
checks that hostile keys stay names in LMDB and never become paths on disk.
"""

from __future__ import annotations

import errno
import io
import os
import re

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.store import fsck, listing, records, segments
from s4d.store.segments import segment_name
from s4d.store.store import Store
from tests.store.helpers import create_bucket, files_under, get, open_store, put

OBJECTS = {f"dir/key-{i}": bytes([i]) * (1000 + i * 37) for i in range(20)}


class RecoveryTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()
        self.store = self.open()
        create_bucket(self.store, "b")
        for key, data in OBJECTS.items():
            put(self.store, "b", key, data)

    def open(self) -> Store:
        return open_store(self, self.path, fsync=True)

    def reopen(self) -> Store:
        self.store.close()
        self.store = self.open()
        return self.store

    def segment_path(self, segment_id: int = 1) -> str:
        return os.path.join(self.path, "segments", segment_name(segment_id))

    def assertAllRead(self, store: Store | None = None) -> None:
        for key, data in OBJECTS.items():
            self.assertEqual(get(store or self.store, "b", key), data, key)

    def fsck(self) -> fsck.FsckReport:
        """Close the store and check its directory the way ``s4d fsck`` would."""
        self.store.close()
        return fsck.check(self.path)


class OrphanTailTests(RecoveryTestCase):
    def committed_size(self) -> int:
        with self.store.read() as t:
            return t.segments.info(1)["size"]

    def test_garbage_past_committed_end(self) -> None:
        end = self.committed_size()
        self.assertEqual(end, os.path.getsize(self.segment_path()))
        self.store.close()
        garbage = b"\x00garbage from a crash" * 50
        with open(self.segment_path(), "ab") as f:
            f.write(garbage)
        self.store = self.open()
        self.assertEqual(self.store.recovery.orphan_bytes, {1: len(garbage)})
        with self.store.read() as t:
            info = t.segments.info(1)
        self.assertEqual(info["size"], end + len(garbage))
        self.assertEqual(info["dead"], len(garbage))
        self.assertAllRead()
        # Appends continue after the garbage, and everything still reads.
        put(self.store, "b", "after", b"written after recovery")
        self.assertEqual(get(self.store, "b", "after"), b"written after recovery")
        self.reopen()
        self.assertEqual(self.store.recovery.orphan_bytes, {})
        self.assertAllRead()
        report = self.fsck()
        self.assertTrue(report.ok, report.render())
        self.assertEqual(report.stats.damaged_bytes, len(garbage))
        self.assertEqual([w.kind for w in report.warnings], [fsck.DAMAGED_REGION])

    def test_uncommitted_record_past_end(self) -> None:
        # A chunk written but never committed (the crash came before the commit).
        orphan = self.store.put_chunk(b"never committed" * 10)
        assert orphan.location is not None
        self.store.close()
        self.store = self.open()
        size = records.HEADER_SIZE + len(b"never committed" * 10)
        self.assertEqual(self.store.recovery.orphan_bytes, {1: size})
        self.assertAllRead()
        report = self.fsck()
        self.assertTrue(report.ok, report.render())
        self.assertEqual(report.stats.orphan_bytes, size)
        self.assertEqual(report.stats.orphan_records, 1)
        self.assertEqual(report.warnings, [])

    def test_torn_record_past_end(self) -> None:
        self.store.put_chunk(b"x" * 5000)
        self.store.close()
        with open(self.segment_path(), "r+b") as f:
            f.truncate(os.path.getsize(self.segment_path()) - 1000)
        self.store = self.open()
        self.assertAllRead()
        put(self.store, "b", "new", b"new data")
        self.assertEqual(get(self.store, "b", "new"), b"new data")
        report = self.fsck()
        self.assertTrue(report.ok, report.render())
        self.assertEqual(report.stats.damaged_regions, 1)


class CorruptionTests(RecoveryTestCase):
    def location_of(self, key: str) -> tuple[int, int, int]:
        from s4d.features import objects as fo

        with self.store.read() as t:
            _, version = fo.find_version(t, t.buckets.require("b"), key, None)
            loc = self.store.locate(t, version.chunks)[0]
        return loc.segment, loc.offset, loc.length

    def flip(self, segment_id: int, offset: int) -> None:
        with open(self.segment_path(segment_id), "r+b") as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x04]))

    def test_flipped_payload_byte(self) -> None:
        victim = "dir/key-7"
        segment_id, offset, length = self.location_of(victim)
        self.store.close()
        self.flip(segment_id, offset + records.HEADER_SIZE + length // 2)
        self.store = self.open()
        self.assertRaises(records.CorruptRecord, get, self.store, "b", victim)
        for key, data in OBJECTS.items():
            if key != victim:
                self.assertEqual(get(self.store, "b", key), data)
        report = self.fsck()
        self.assertFalse(report.ok)
        [problem] = report.problems
        self.assertEqual(problem.kind, fsck.CORRUPT_CHUNK)
        self.assertEqual(problem.keys, (fsck.KeyRef("b", victim, "null"),))
        self.assertEqual((problem.segment, problem.offset), (segment_id, offset))
        self.assertIn("payload checksum mismatch", problem.message)
        # The quick check reads headers only and does not see payload damage.
        self.assertTrue(fsck.check(self.path, quick=True).ok)
        out = io.StringIO()
        self.assertEqual(fsck.main([self.path], out=out), 1)
        self.assertIn("corrupt-chunk", out.getvalue())
        self.assertIn(f"b/{victim}", out.getvalue())

    def test_flipped_header_byte(self) -> None:
        victim = "dir/key-3"
        segment_id, offset, _ = self.location_of(victim)
        self.store.close()
        self.flip(segment_id, offset + 20)  # inside the content digest
        self.store = self.open()
        self.assertRaises(records.CorruptRecord, get, self.store, "b", victim)
        report = self.fsck()
        self.assertEqual([p.kind for p in report.problems], [fsck.CORRUPT_CHUNK])
        self.assertEqual(report.problems[0].keys[0].key, victim)
        quick = fsck.check(self.path, quick=True)
        self.assertEqual([p.kind for p in quick.problems], [fsck.CORRUPT_CHUNK])

    def test_shared_chunk_reports_every_key(self) -> None:
        from s4d.features import objects as fo

        now = 1
        self.store.commit(
            lambda t: fo.copy_object(
                t, fo.CopySource("b", "dir/key-5"), "b", "copy", None, fo.WriteConditions(), now
            )
        )
        segment_id, offset, length = self.location_of("dir/key-5")
        self.store.close()
        self.flip(segment_id, offset + records.HEADER_SIZE)
        self.store = self.open()
        self.assertRaises(records.CorruptRecord, get, self.store, "b", "copy")
        report = self.fsck()
        [problem] = report.problems
        self.assertEqual(sorted(k.key for k in problem.keys), ["copy", "dir/key-5"])

    def test_truncated_segment(self) -> None:
        last = list(OBJECTS)[-1]  # the last one written
        segment_id, offset, _ = self.location_of(last)
        self.store.close()
        with open(self.segment_path(segment_id), "r+b") as f:
            f.truncate(offset + 10)
        self.store = self.open()
        self.assertRaises(records.CorruptRecord, get, self.store, "b", last)
        report = self.fsck()
        self.assertEqual([p.kind for p in report.problems], [fsck.CORRUPT_CHUNK])
        self.assertIn("past the end of the file", report.problems[0].message)


class DiskFullTests(RecoveryTestCase):
    def test_enospc_fails_one_put(self) -> None:
        real = os.pwritev
        failures = []

        def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
            if not failures:
                failures.append(offset)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, buffers, offset)

        self.patch(segments.os, "pwritev", pwritev)
        error = self.assertRaises(S3Error, put, self.store, "b", "full", b"no room" * 100)
        self.assertEqual((error.code, error.status), ("StorageFull", 507))
        self.assertS3Error_NoSuchKey("full")
        self.assertAllRead()
        # The disk has room again: writes work and everything still reads.
        put(self.store, "b", "later", b"room again")
        self.assertEqual(get(self.store, "b", "later"), b"room again")
        self.assertAllRead(self.reopen())
        self.assertEqual(get(self.store, "b", "later"), b"room again")
        report = self.fsck()
        self.assertTrue(report.ok, report.render())

    def test_enospc_on_every_write(self) -> None:
        def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(segments.os, "pwritev", pwritev)
        for i in range(3):
            self.assertRaises(S3Error, put, self.store, "b", f"full-{i}", b"data")
        self.assertAllRead()
        self.assertTrue(self.fsck().ok)

    def test_short_write(self) -> None:
        """A short write is continued (it is not an error by itself) until it completes."""
        real = os.pwritev

        def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
            return real(fd, [bytes(buffers[0])[:10]], offset)

        self.patch(segments.os, "pwritev", pwritev)
        put(self.store, "b", "short", b"data" * 100)
        self.assertEqual(get(self.store, "b", "short"), b"data" * 100)
        self.assertAllRead()

    def test_write_making_no_progress(self) -> None:
        def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
            return 0

        self.patch(segments.os, "pwritev", pwritev)
        error = self.assertRaises(OSError, put, self.store, "b", "short", b"data" * 100)
        self.assertEqual(error.errno, errno.EIO)
        self.assertAllRead()

    def assertS3Error_NoSuchKey(self, key: str) -> None:
        error = self.assertRaises(S3Error, get, self.store, "b", key)
        self.assertEqual(error.code, "NoSuchKey")


HOSTILE_KEYS = [
    "a//b",
    "//leading",
    "trailing//",
    "./dot",
    "a/./b",
    "../escape",
    "a/../../b",
    "..",
    ".",
    "#hash#",
    "100%",
    "%2F%2e%2e",
    "with space/and more  spaces ",
    "ünïcödé/キー/🔑",
    "back\\slash",
    "new\nline",
    "meta/data.mdb",
    "segments/00000001.seg",
    "x" * 1024,
    "/".join(["y" * 99] * 10) + "/yyyy",
    "é" * 512,
    "z" * 600 + "/" + "w" * 423,
]


class KeyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()
        self.store = open_store(self, self.path)
        create_bucket(self.store, "b")

    def test_hostile_keys_never_make_files(self) -> None:
        for i, key in enumerate(HOSTILE_KEYS):
            self.assertLessEqual(len(key.encode()), 1024, key)
            put(self.store, "b", key, f"value {i}".encode())
        for i, key in enumerate(HOSTILE_KEYS):
            self.assertEqual(get(self.store, "b", key), f"value {i}".encode(), key)
        with self.store.read() as t:
            found = listing.list_objects(t, t.buckets.require("b"))
        self.assertEqual(
            [e.key for e in found.entries], sorted(HOSTILE_KEYS, key=lambda k: k.encode())
        )
        allowed = re.compile(r"^(meta/(data|lock)\.mdb|segments/\d{8}\.seg)$")
        for name in files_under(self.path):
            self.assertRegex(name, allowed)
        self.assertEqual(sorted(os.listdir(self.path)), ["meta", "segments"])
        self.store.close()
        report = fsck.check(self.path)
        self.assertTrue(report.ok, report.render())
        self.assertEqual(report.stats.objects, len(HOSTILE_KEYS))

    def test_key_too_long(self) -> None:
        for key in ["k" * 1025, "é" * 513, "a/" * 512 + "b"]:
            error = self.assertRaises(S3Error, put, self.store, "b", key, b"x")
            self.assertEqual(error.code, "KeyTooLongError")

    def test_long_keys_sharing_a_prefix(self) -> None:
        # Keys long enough to be split into continuation entries, in S3 order.
        keys = ["p" * 400, "p" * 399, "p" * 401, "p" * 400 + "/", "p" * 399 + "/x", "p" * 800 + "q"]
        keys += ["p" * 400 + "/" + "r" * 500, "p" * 1024, "p" * 1023 + "/"]
        for key in keys:
            put(self.store, "b", key, key[-5:].encode())
        with self.store.read() as t:
            b = t.buckets.require("b")
            every = listing.list_objects(t, b)
            rolled = listing.list_objects(t, b, delimiter=b"/")
            paged = listing.list_objects(t, b, after=("p" * 400).encode(), max_keys=2)
        self.assertEqual([e.key for e in every.entries], sorted(keys))
        self.assertEqual(
            rolled.common_prefixes, ["p" * 399 + "/", "p" * 400 + "/", "p" * 1023 + "/"]
        )
        self.assertEqual(
            [e.key for e in paged.entries], ["p" * 400 + "/", "p" * 400 + "/" + "r" * 500]
        )
        for key in keys:
            self.assertEqual(get(self.store, "b", key), key[-5:].encode())
        self.store.close()
        self.assertTrue(fsck.check(self.path).ok)
