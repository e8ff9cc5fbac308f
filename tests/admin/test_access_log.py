"""The access log: one twisted.logger event per request, emitted in batches off the hot path.

Requests are handed to :class:`~s4d.admin.access_log.AccessLog` on a
``task.Clock``: nothing is emitted until the clock passes the batch delay (or
the batch is full). Events go to a list observer (the server-log mode) or to a
:class:`~s4d.admin.access_log.JsonLinesFile` in a temporary directory.
"""

from __future__ import annotations

import json
import os

from twisted.internet.task import Clock
from twisted.logger import LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from s4d.admin.access_log import AccessLog, JsonLinesFile, open_access_log
from s4d.util.served import ServedRequest


def served(n: int, key: str = "k") -> ServedRequest:
    return ServedRequest(
        request_id=f"R{n}", method="PUT", operation="PutObject", path=b"/bkt/" + key.encode(),
        bucket="bkt", key=key, identity="AKID", peer="10.1.2.3", status=200, bytes_in=n,
        bytes_out=0, started=1_700_000_000.5, seconds=0.0123,
    )  # fmt: skip


class BatchTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[LogEvent] = []
        self.batches = 0
        self.log = AccessLog(
            self.clock, self.events.append,
            self.count_batch, delay=0.25, max_pending=3,
        )  # fmt: skip

    def count_batch(self) -> None:
        self.batches += 1

    def test_events_wait_for_the_batch(self) -> None:
        self.log(served(1))
        self.log(served(2))
        self.assertEqual(self.events, [])
        self.clock.advance(0.25)
        self.assertEqual([e["request_id"] for e in self.events], ["R1", "R2"])
        self.assertEqual(self.batches, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_full_batch_goes_at_once(self) -> None:
        for n in range(3):
            self.log(served(n))
        self.assertEqual(len(self.events), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_one_structured_event_per_request(self) -> None:
        self.log(served(7, "a key\nwith a newline"))
        self.log.stop()
        (event,) = self.events
        for name, value in (
            ("request_id", "R7"), ("identity", "AKID"), ("operation", "PutObject"),
            ("bucket", "bkt"), ("key", "a key\nwith a newline"), ("status", 200),
            ("bytes_in", 7), ("bytes_out", 0), ("duration_ms", 12.3), ("peer", "10.1.2.3"),
        ):  # fmt: skip
            self.assertEqual(event[name], value, name)
        self.assertEqual(
            (event["log_namespace"], event["log_level"]), ("s4d.access", LogLevel.info)
        )
        text = formatEvent(event)
        self.assertEqual(
            text,
            "R7 10.1.2.3 AKID PUT PutObject 'bkt/a key\\nwith a newline' 200 in=7 out=0 12.3ms",
        )


class FileTests(SynchronousTestCase):
    def test_json_lines(self) -> None:
        path = os.path.join(self.mktemp(), "logs", "access.log")
        clock = Clock()
        opened = open_access_log(path, clock)
        assert opened is not None
        log, close = opened
        log(served(1))
        log(served(2, "ké"))
        clock.advance(1)
        log(served(3))
        close()
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual([line["request_id"] for line in lines], ["R1", "R2", "R3"])
        self.assertEqual(lines[1]["key"], "ké")
        self.assertEqual(lines[0]["time"], "2023-11-14T22:13:20.500Z")
        self.assertEqual(
            set(lines[0]),
            {"time", "request_id", "peer", "identity", "method", "operation", "bucket", "key",
             "path", "status", "bytes_in", "bytes_out", "duration_ms"},
        )  # fmt: skip

    def test_reopens_a_rotated_file(self) -> None:
        path = os.path.join(self.mktemp(), "access.log")
        sink = JsonLinesFile(path)
        log = AccessLog(Clock(), sink, sink.flush)
        log(served(1))
        log.flush()
        os.rename(path, path + ".1")
        log(served(2))
        log.flush()
        sink.close()
        with open(path + ".1") as f:
            self.assertEqual([json.loads(x)["request_id"] for x in f], ["R1"])
        with open(path) as f:
            self.assertEqual([json.loads(x)["request_id"] for x in f], ["R2"])

    def test_to_the_server_log(self) -> None:
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        clock = Clock()
        opened = open_access_log("log", clock)
        assert opened is not None
        log, close = opened
        log(served(4))
        clock.advance(1)
        close()
        ours = [e for e in events if e.get("log_namespace") == "s4d.access"]
        self.assertEqual([e["request_id"] for e in ours], ["R4"])

    def test_off(self) -> None:
        for setting in ("off", "OFF", ""):
            self.assertIsNone(open_access_log(setting, Clock()))
