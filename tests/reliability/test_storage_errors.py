"""Unit tests of the ways a full disk shows up below the S3 layer.

The disk-full test (``test_disk_full``) meets them on real filesystems; these
pin them down without mounting anything: a segment append whose ``pwritev``
writes only part of a record (what Linux does when the disk fills mid-write)
must finish the record or raise the real ``OSError`` (``ENOSPC``), never a
made-up ``EIO``; an LMDB commit failing with ``EIO`` (LMDB's word for a short
write of its pages) is ``StorageFull`` when the filesystem is nearly full; and
so is the small commit that allocates a new segment's id when an append rotates.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

import lmdb
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.store import chunks
from s4d.store.chunks import storage_error
from s4d.store.segments import SegmentSet


class _StatVfs:
    def __init__(self, free: int) -> None:
        self.f_bavail = free // 4096
        self.f_frsize = 4096


class ShortWriteTests(SynchronousTestCase):
    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        counter = iter(range(1, 1000))
        self.segments = SegmentSet(directory, 1 << 30, lambda: next(counter), time.monotonic)
        self.addCleanup(self.segments.close)

    def _limit_writes(self, sizes: list[int | BaseException]) -> None:
        """Make the next pwritev calls write at most ``sizes[i]`` bytes (or raise)."""
        real = os.pwritev

        def pwritev(fd: int, buffers: list[Any], offset: int) -> int:
            step = sizes.pop(0) if sizes else None
            if isinstance(step, BaseException):
                raise step
            data = b"".join(bytes(b) for b in buffers)
            if step is not None:
                data = data[:step]
            return real(fd, [data], offset)

        self.patch(os, "pwritev", pwritev)

    def test_short_write_is_completed(self) -> None:
        payload = b"x" * 5000
        self._limit_writes([100, 1000])
        loc = self.segments.append(payload, len(payload), b"\1" * 32)
        header, data = self.segments.read(loc)
        self.assertEqual(data, payload)
        self.assertEqual(header.length, len(payload))

    def test_short_write_then_disk_full_is_enospc(self) -> None:
        self._limit_writes([100, OSError(errno.ENOSPC, "No space left on device")])
        with self.assertRaises(OSError) as caught:
            self.segments.append(b"y" * 5000, 5000, b"\2" * 32)
        self.assertEqual(caught.exception.errno, errno.ENOSPC)
        self.assertEqual(storage_error(caught.exception).code, "StorageFull")  # type: ignore[attr-defined]


class LmdbErrorTests(SynchronousTestCase):
    def test_eio_on_a_nearly_full_disk_is_storage_full(self) -> None:
        self.patch(os, "statvfs", lambda path: _StatVfs(1 << 20))
        error = storage_error(lmdb.Error("mdb_txn_commit: Input/output error"), "/meta")
        self.assertIsInstance(error, S3Error)
        self.assertEqual(error.code, "StorageFull")  # type: ignore[attr-defined]

    def test_eio_with_room_left_stays_an_io_error(self) -> None:
        self.patch(os, "statvfs", lambda path: _StatVfs(chunks.LOW_SPACE * 4))
        original = lmdb.Error("mdb_txn_commit: Input/output error")
        self.assertIs(storage_error(original, "/meta"), original)

    def test_eio_without_a_path_is_unchanged(self) -> None:
        original = lmdb.Error("mdb_txn_commit: Input/output error")
        self.assertIs(storage_error(original), original)

    def test_map_full_and_enospc(self) -> None:
        self.assertEqual(storage_error(lmdb.MapFullError("full")).code, "StorageFull")  # type: ignore[attr-defined]
        self.assertEqual(storage_error(OSError(errno.ENOSPC, "full")).code, "StorageFull")  # type: ignore[attr-defined]
        self.assertEqual(storage_error(OSError(errno.EDQUOT, "quota")).code, "StorageFull")  # type: ignore[attr-defined]
        other = OSError(errno.EIO, "bad disk")
        self.assertIs(storage_error(other), other)


class RotationOnFullDiskTests(SynchronousTestCase):
    def test_segment_id_commit_failing_is_storage_full(self) -> None:
        """Rotating to a new segment commits its id to LMDB, which fails on a full disk."""
        from s4d.store.views.counters import CountersView
        from tests.store.helpers import open_store

        store = open_store(self, segment_size=1)  # every append starts a new segment
        store.put_chunk(b"first")

        def next_id(self: CountersView, name: bytes) -> int:
            raise lmdb.Error("mdb_txn_commit: Input/output error")

        failing = self.patch(CountersView, "next_id", next_id)
        full = self.patch(os, "statvfs", lambda path: _StatVfs(1 << 20))
        error = self.assertRaises(S3Error, store.put_chunk, b"second")
        self.assertEqual(error.code, "StorageFull")
        failing.restore()
        full.restore()
        self.assertIsNotNone(store.put_chunk(b"third").location)
