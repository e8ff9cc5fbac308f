"""Segment files: appends, reads, rotation, the append lock and when fdatasync runs.

Strategy: a :class:`SegmentSet` on a temp directory with a counter for segment
ids. Durability cannot be observed without pulling the power, so the sync tests
count calls to ``os.fdatasync`` (patched as :mod:`s4d.store.segments` sees it)
and check that every write that completed before a ``sync`` call is covered by
an ``fdatasync`` that ran after it, including writes that finish out of order.
"""

from __future__ import annotations

import itertools
import os
import time

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import records, segments
from s4d.store.chunks import digest_of
from s4d.store.segments import SegmentSet


class SegmentTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.ids = itertools.count(1)
        self.segments = self.make()
        self.syncs: list[int] = []
        real = os.fdatasync

        def fdatasync(fd: int) -> None:
            self.syncs.append(fd)
            real(fd)

        self.patch(segments.os, "fdatasync", fdatasync)

    def make(self, rotate_size: int = 1 << 20) -> SegmentSet:
        found = SegmentSet(self.directory, rotate_size, lambda: next(self.ids), time.monotonic)
        self.addCleanup(found.close)
        return found

    def append(self, data: bytes, to: SegmentSet | None = None) -> segments.Location:
        return (to or self.segments).append(data, len(data), digest_of(data))


class AppendTests(SegmentTestCase):
    def test_append_and_read(self) -> None:
        locs = [self.append(bytes([i]) * (i * 100)) for i in range(10)]
        for i, loc in enumerate(locs):
            header, payload = self.segments.read(loc)
            self.assertEqual(payload, bytes([i]) * (i * 100))
            self.assertEqual(header.content, digest_of(payload))
        self.assertEqual(locs[0].offset, 0)
        self.assertEqual(locs[1].offset, locs[0].end)

    def test_rotation(self) -> None:
        small = self.make(rotate_size=1000)
        locs = [self.append(b"x" * 400, small) for _ in range(5)]
        self.assertEqual([loc.segment for loc in locs], [1, 1, 1, 2, 2])
        self.assertEqual(small.segment_ids(), [1, 2])
        for loc in locs:
            self.assertEqual(small.read(loc)[1], b"x" * 400)

    def test_read_corrupt(self) -> None:
        loc = self.append(b"payload")
        with open(self.segments.path(loc.segment), "r+b") as f:
            f.seek(loc.offset + records.HEADER_SIZE)
            f.write(b"P")
        self.assertRaises(records.CorruptRecord, self.segments.read, loc)

    def test_append_lock(self) -> None:
        self.append(b"x")
        other = self.make()
        # The first set holds the active segment's lock; the second must not append to it.
        self.assertFalse(other.adopt_active(1))
        self.segments.close()
        self.assertTrue(other.adopt_active(1))
        loc = self.append(b"y", other)
        self.assertEqual((loc.segment, loc.offset), (1, records.HEADER_SIZE + 1))


class SyncTests(SegmentTestCase):
    def test_sync_covers_writes(self) -> None:
        loc = self.append(b"data")
        seg = self.segments.file(loc.segment)
        self.assertEqual(seg.sync(), loc.end)
        self.assertEqual(len(self.syncs), 1)
        # Nothing new: no fdatasync.
        seg.sync()
        self.assertEqual(len(self.syncs), 1)
        self.append(b"more")
        seg.sync()
        self.assertEqual(len(self.syncs), 2)

    def test_write_finishing_after_a_sync(self) -> None:
        # Two writers reserve ranges; the second finishes its write first and a
        # commit syncs. The first writer's bytes land afterwards: the next sync
        # must still fdatasync, although the reserved size has not grown.
        seg = self.segments.active()
        first = seg.reserve(100)
        second = seg.reserve(100)
        seg.write(second, [b"b" * 100])
        seg.sync()
        self.assertEqual(len(self.syncs), 1)
        seg.write(first, [b"a" * 100])
        seg.sync()
        self.assertEqual(len(self.syncs), 2)

    def test_failed_write_is_synced(self) -> None:
        seg = self.segments.active()
        offset = seg.reserve(10)

        def partial(fd: int, buffers: list[bytes], at: int) -> int:
            os.pwrite(fd, b"x" * 5, at)
            raise OSError(28, "ENOSPC after a partial write")

        self.patch(segments.os, "pwritev", partial)
        self.assertRaises(OSError, seg.write, offset, [b"x" * 10])
        seg.sync()
        self.assertEqual(len(self.syncs), 1)

    def test_failed_fdatasync_is_retried(self) -> None:
        self.append(b"data")
        seg = self.segments.active()

        def broken(fd: int) -> None:
            raise OSError(5, "EIO")

        self.patch(segments.os, "fdatasync", broken)
        self.assertRaises(OSError, seg.sync)
        calls: list[int] = []
        self.patch(segments.os, "fdatasync", calls.append)
        seg.sync()
        self.assertEqual(len(calls), 1)
