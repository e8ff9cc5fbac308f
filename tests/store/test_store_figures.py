"""The figures the store keeps for the metrics: group commits, fsyncs, compaction and scrub reports.

Real stores in temporary directories. The committer runs in its threads
(not inline) where batching is the point; fsync is on where fsync times are.
"""

from __future__ import annotations

import os
import threading

from twisted.trial.unittest import SynchronousTestCase

from s4d.store.compaction import Compactor
from s4d.store.scrub import Scrubber
from tests.store.helpers import create_bucket, delete, open_store, put


class CommitFiguresTests(SynchronousTestCase):
    def test_every_batch_is_counted_with_its_size(self) -> None:
        store = open_store(self, inline=False)
        create_bucket(store, "b")
        go = threading.Event()
        # Hold the committer on a first operation so that the next ones queue up together.
        held = store.submit(lambda t: go.wait(10))
        futures = [store.submit(lambda t, i=i: i) for i in range(20)]
        go.set()
        held.result(10)
        self.assertEqual([f.result(10) for f in futures], list(range(20)))
        committer = store.committer
        batches = committer.batch_sizes.snapshot()
        self.assertEqual(batches.samples, committer.batches)
        self.assertEqual(batches.total, committer.operations)
        self.assertEqual(committer.operations, 22)  # the bucket, the held one, the twenty
        self.assertLess(committer.batches, 22)  # some went together
        self.assertEqual(committer.commit_seconds.snapshot().samples, committer.batches)

    def test_fsyncs_are_timed_and_clean_syncs_are_not(self) -> None:
        store = open_store(self, fsync=True)
        create_bucket(store, "b")
        put(store, "b", "k", b"x" * 1000)
        synced = store.segments.fsync_seconds.snapshot()
        self.assertEqual(synced.samples, 1)
        self.assertGreater(synced.total, 0)
        store.segments.sync({store.segments.active_id() or 0})  # nothing new: no fdatasync
        self.assertEqual(store.segments.fsync_seconds.snapshot().samples, 1)


class CompactionFiguresTests(SynchronousTestCase):
    def test_considered_and_scanned(self) -> None:
        store = open_store(self, segment_size=64 << 10)
        create_bucket(store, "b")
        for i in range(12):
            put(store, "b", f"k{i}", os.urandom(20_000))
        for i in range(9):
            delete(store, "b", f"k{i}")
        files = len(store.segments.segment_ids())
        dry = Compactor(store, threshold=0.0, grace=0, dry_run=True).run()
        self.assertEqual(dry.considered, files - 1)  # the active one is never considered
        for plan in dry.segments:
            self.assertGreaterEqual(plan.scanned_records, plan.live_records + plan.purge_records)
            self.assertGreater(plan.scanned_records, 0)
        limited = Compactor(store, threshold=0.0, grace=0, max_segments=1).run()
        self.assertEqual(len(limited.segments), 1)


class ScrubFiguresTests(SynchronousTestCase):
    def test_corrupt_is_every_failure_damaged_only_the_new(self) -> None:
        store = open_store(self)
        create_bucket(store, "b")
        put(store, "b", "good", b"g" * 1000)
        put(store, "b", "bad", b"b" * 1000)
        with store.read() as t:
            version = t.versions.current(t.ns.lookup(t.buckets.require("b"), b"bad") or 0)
            assert version is not None
            (location,) = store.locate(t, version.chunks)
        with open(store.segments.path(location.segment), "r+b") as f:
            f.seek(location.offset + location.length)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        first = Scrubber(store, rate=None).run_pass()
        self.assertEqual((len(first.damaged), len(first.corrupt)), (1, 1))
        self.assertEqual(first.corrupt[0].keys, ["b/bad"])
        self.assertEqual(first.segments, {location.segment})
        again = Scrubber(store, rate=None).run_pass()
        self.assertEqual((len(again.damaged), len(again.corrupt)), (0, 1))
        self.assertEqual(again.corrupt[0].digest, location.digest.hex())
        self.assertEqual(again.corrupt[0].keys, [])
