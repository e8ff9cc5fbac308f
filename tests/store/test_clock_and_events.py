"""The store's injected clocks and event log are the ones it uses.

Strategy: open a real store (inline committer, temp directory) with a fake
:class:`~s4d.store.clock.Clock` whose wall and monotonic readings the test
sets, and whose ``sleep`` only advances the fake monotonic clock and records
the pause; and with a :class:`~s4d.store.eventlog.ListEventLog`. Then check
the traces those leave: the release stamp of a chunk, the pauses of a paced
compaction pass, and the summary of the pass in the event log.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from s4d.store.chunks import digest_of
from s4d.store.clock import Clock
from s4d.store.compaction import Compactor
from s4d.store.eventlog import ListEventLog
from s4d.store.store import Store
from tests.store.helpers import create_bucket, delete, get, open_store, put

SEGMENT = 64 << 10
CHUNK = 4 << 10


class FakeClock:
    """Wall and monotonic time that move only when told to (or when slept)."""

    # Later than any real file's mtime (compaction compares them), yet a u32.
    def __init__(self, wall: float = 4_000_000_000.0) -> None:
        self.wall = wall
        self.monotonic = 500.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.monotonic += seconds

    def clock(self) -> Clock:
        return Clock(wall=lambda: self.wall, monotonic=lambda: self.monotonic, sleep=self.sleep)


class ClockAndEventsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fake = FakeClock()
        self.events = ListEventLog()
        self.store: Store = open_store(
            self,
            clock=self.fake.clock(),
            events=self.events,
            segment_size=SEGMENT,
            chunk_size=CHUNK,
        )
        create_bucket(self.store, "b")

    def test_release_stamp_reads_the_wall_clock(self) -> None:
        """A chunk losing its last reference is stamped with the injected wall clock."""
        put(self.store, "b", "k", b"x" * 1000)
        self.fake.wall = 4_123_456_789.5
        delete(self.store, "b", "k")
        with self.store.read() as t:
            self.assertEqual(t.chunks.released_at(digest_of(b"x" * 1000)), 4_123_456_789)

    def test_compaction_grace_reads_the_wall_clock(self) -> None:
        """Released chunks are purged only once the injected wall clock passes their grace."""
        put(self.store, "b", "k", b"y" * 1000)
        delete(self.store, "b", "k")
        for i in range(40):  # fill segments so the released chunk's is not the active one
            put(self.store, "b", f"fill{i}", bytes([i]) * CHUNK)
        self.fake.wall += 59
        report = Compactor(self.store, threshold=0.0, grace=60, dry_run=True).run()
        self.assertEqual(sum(p.purge_records for p in report.segments), 0)
        self.fake.wall += 1
        report = Compactor(self.store, threshold=0.0, grace=60, dry_run=True).run()
        self.assertEqual(sum(p.purge_records for p in report.segments), 1)
        report = Compactor(self.store, threshold=0.0, grace=60).run()
        self.assertEqual(report.purged_records, 1)
        with self.store.read() as t:
            self.assertIsNone(t.chunks.get(digest_of(b"y" * 1000)))

    def test_compaction_pacing_uses_the_injected_clock(self) -> None:
        """A paced pass sleeps (on the injected clock) as long as its byte rate requires."""
        for i in range(40):
            put(self.store, "b", f"k{i}", bytes([i]) * CHUNK)
        for i in range(0, 40, 2):
            delete(self.store, "b", f"k{i}")
        rate = 1 << 20
        started = self.fake.monotonic
        report = Compactor(self.store, threshold=0.0, grace=0, rate=rate).run()
        self.assertGreater(report.copied_bytes, 0)
        self.assertTrue(self.fake.slept)
        # The fake monotonic clock moves only by sleeping: the pass slept exactly
        # as long as copying its bytes at ``rate`` takes, and measured that long.
        self.assertAlmostEqual(self.fake.monotonic - started, report.copied_bytes / rate)
        self.assertAlmostEqual(report.seconds, report.copied_bytes / rate)
        for i in range(1, 40, 2):
            self.assertEqual(get(self.store, "b", f"k{i}"), bytes([i]) * CHUNK)

    def test_compaction_summary_reaches_the_event_log(self) -> None:
        """The one-line summary of a pass is logged to the store's event log."""
        for i in range(40):
            put(self.store, "b", f"k{i}", bytes([i]) * CHUNK)
        for i in range(40):
            delete(self.store, "b", f"k{i}")
        report = Compactor(self.store, threshold=0.0, grace=0).run()
        self.assertTrue(report.compacted)
        self.assertEqual(self.events.texts("info"), [f"Compaction: {report.summary()}"])
        [event] = self.events.events
        self.assertEqual(event.fields["compacted"], report.compacted)
        self.assertEqual(event.fields["reclaimed_bytes"], report.reclaimed_bytes)

    def test_an_explicit_event_log_wins(self) -> None:
        """A compactor given its own event log logs there, not to the store's."""
        for i in range(40):
            put(self.store, "b", f"k{i}", bytes([i]) * CHUNK)
            delete(self.store, "b", f"k{i}")
        mine = ListEventLog()
        report = Compactor(self.store, threshold=0.0, grace=0, events=mine).run()
        self.assertEqual(mine.texts(), [f"Compaction: {report.summary()}"])
        self.assertEqual(self.events.events, [])
