"""The twisted.logger adapter of the store's event log.

Strategy: a ``Logger`` whose observer is a plain list (no global log), fed
through :class:`TwistedEventLog` both directly and by a compaction pass over
a real store in a temp directory; the events arrive with level, format and
fields intact and render with ``formatEvent``.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger, LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from s4d.store.compaction import Compactor
from s4d.store.eventlog import EventLog
from s4d.util.eventlog import TwistedEventLog
from tests.store.helpers import create_bucket, delete, open_store, put


class TwistedEventLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.events: EventLog = TwistedEventLog(Logger(observer=self.seen.append))

    def test_levels_and_fields(self) -> None:
        self.events.info("stored {key} ({size} bytes)", key="a/b", size=3)
        self.events.warn("w {n}", n=1)
        self.events.error("e {n}", n=2)
        self.assertEqual(
            [e["log_level"] for e in self.seen], [LogLevel.info, LogLevel.warn, LogLevel.error]
        )
        self.assertEqual(formatEvent(self.seen[0]), "stored a/b (3 bytes)")
        self.assertEqual(self.seen[0]["size"], 3)

    def test_compaction_summary_reaches_twisted_logger(self) -> None:
        store = open_store(self, events=self.events, segment_size=16 << 10, chunk_size=4 << 10)
        create_bucket(store, "b")
        for i in range(20):
            put(store, "b", f"k{i}", bytes([i]) * (4 << 10))
            delete(store, "b", f"k{i}")
        report = Compactor(store, threshold=0.0, grace=0).run()
        self.assertTrue(report.compacted)
        [event] = self.seen
        self.assertEqual(formatEvent(event), f"Compaction: {report.summary()}")
