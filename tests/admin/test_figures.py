"""A process's running figures, and how the figures of several processes add up.

:class:`~s4d.admin.figures.RequestFigures` is fed :class:`ServedRequest`
records directly. :class:`~s4d.admin.figures.FiguresBoard` publishes into a
temporary directory; "other processes" are boards with other process ids over
the same directory, and whether a process still runs is a table the test
controls. Real worker processes are ``tests/clients/test_ops.py``'s.
"""

from __future__ import annotations

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from s4d.admin.figures import (
    FiguresBoard,
    ProcessFigures,
    RequestFigures,
    ops_operation,
    reset_directory,
)
from s4d.engine import EngineFigures
from s4d.util.histogram import BATCH_BOUNDS, SYNC_BOUNDS, Histogram, HistogramSnapshot
from s4d.util.served import ServedRequest


def served(
    operation: str, status: int = 200, seconds: float = 0.01, **more: object
) -> ServedRequest:
    fields: dict[str, object] = dict(
        request_id="R", method="GET", operation=operation, path=b"/b/k", bucket="b", key="k",
        identity="AK", peer="127.0.0.1", status=status, bytes_in=0, bytes_out=0, started=0.0,
        seconds=seconds,
    )  # fmt: skip
    fields.update(more)
    return ServedRequest(**fields)  # type: ignore[arg-type]


def engine_figures(batches: int = 0, compaction_at: float | None = None) -> EngineFigures:
    commits = Histogram(BATCH_BOUNDS)
    for _ in range(batches):
        commits.observe(2)
    last = None if compaction_at is None else {"at": compaction_at, "segments_compacted": 1}
    return EngineFigures(
        commits.snapshot(),
        HistogramSnapshot.empty(SYNC_BOUNDS),
        HistogramSnapshot.empty(SYNC_BOUNDS),
        HistogramSnapshot.empty(SYNC_BOUNDS),
        {"compaction_passes": 1 if compaction_at else 0},
        last,
        None,
    )


class RequestFiguresTests(SynchronousTestCase):
    def test_counts(self) -> None:
        seen: list[ServedRequest] = []
        figures = RequestFigures([seen.append])
        figures.served(served("GetObject", bytes_out=100))
        figures.served(served("GetObject", 404, bytes_out=300))
        figures.served(served("PutObject", bytes_in=50, seconds=2.0))
        figures.served(served("", path=b"/metrics"))
        self.assertEqual(
            figures.requests,
            {("GetObject", 200): 1, ("GetObject", 404): 1, ("PutObject", 200): 1,
             ("Metrics", 200): 1},
        )  # fmt: skip
        self.assertEqual(figures.sent, {"GetObject": 400})
        self.assertEqual(figures.received, {"PutObject": 50})
        self.assertEqual(figures.latency["PutObject"].snapshot().total, 2.0)
        self.assertEqual(len(seen), 4)

    def test_ops_labels(self) -> None:
        self.assertEqual(
            [ops_operation(p) for p in (b"/metrics", b"/api/stats", b"/api/admin/x", b"/health",
                                        b"/minio/health/ready", b"/api/other")],
            ["Metrics", "Stats", "Admin", "Health", "Health", "Ops"],
        )  # fmt: skip


class BoardTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.running = {1: True, 2: True, 3: True}

    def board(self, pid: int, requests: RequestFigures, engine: EngineFigures, connections: int,
              started: float) -> FiguresBoard:  # fmt: skip
        return FiguresBoard(
            requests, lambda: engine, lambda: connections, started, self.directory, pid,
            alive=lambda p: self.running.get(p, False),
        )  # fmt: skip

    def test_alone(self) -> None:
        figures = RequestFigures()
        figures.served(served("GetObject"))
        board = FiguresBoard(figures, lambda: engine_figures(), lambda: 3, 100.0)
        self.assertFalse(board.publish())  # nowhere to publish: one process
        total = board.server()
        self.assertEqual((total.pids, total.connections, total.started), ([os.getpid()], 3, 100.0))
        self.assertEqual(total.requests, {("GetObject", 200): 1})

    def test_three_processes_add_up(self) -> None:
        boards = []
        for pid in (1, 2, 3):
            figures = RequestFigures()
            for _ in range(pid):
                figures.served(served("GetObject", bytes_out=10))
            figures.served(served("PutObject", 500 + pid))
            boards.append(
                self.board(
                    pid,
                    figures,
                    engine_figures(pid, compaction_at=1000.0 + pid if pid < 3 else None),
                    pid * 10,
                    50.0 + pid,
                )
            )
        for board in boards[1:]:
            self.assertTrue(board.publish())
            self.assertFalse(board.publish())  # nothing changed: not written again
        total = boards[0].server()
        self.assertEqual(sorted(total.pids), [1, 2, 3])
        self.assertEqual(total.requests[("GetObject", 200)], 6)
        self.assertEqual(
            {k: v for k, v in total.requests.items() if k[0] == "PutObject"},
            {("PutObject", 501): 1, ("PutObject", 502): 1, ("PutObject", 503): 1},
        )
        self.assertEqual(total.sent, {"GetObject": 60})
        self.assertEqual(total.latency["GetObject"].samples, 6)
        self.assertEqual(total.connections, 60)
        self.assertEqual(total.started, 51.0)
        self.assertEqual(total.commit_batches.samples, 6)
        self.assertEqual(total.commit_batches.total, 12)
        self.assertEqual(total.totals["compaction_passes"], 2)
        self.assertEqual(total.last_compaction, {"at": 1002.0, "segments_compacted": 1})

    def test_an_ended_process_keeps_its_counts_not_its_gauges(self) -> None:
        first = RequestFigures()
        second = RequestFigures()
        second.served(served("GetObject"))
        self.board(2, second, engine_figures(), 7, 1.0).publish()
        self.running[2] = False
        total = self.board(1, first, engine_figures(), 1, 1.0).server()
        self.assertEqual(total.requests, {("GetObject", 200): 1})
        self.assertEqual((total.connections, sorted(total.pids), total.live_pids), (1, [1, 2], [1]))

    def test_unreadable_files_are_skipped(self) -> None:
        board = self.board(1, RequestFigures(), engine_figures(), 0, 1.0)
        os.makedirs(self.directory)
        with open(os.path.join(self.directory, "2.json"), "w") as f:
            f.write("{not json")
        with open(os.path.join(self.directory, "3.json"), "w") as f:
            json.dump({"format": 99}, f)
        with open(os.path.join(self.directory, "notes.txt"), "w") as f:
            f.write("ignored")
        self.assertEqual(board.server().pids, [1])

    def test_json_round_trip(self) -> None:
        figures = RequestFigures()
        figures.served(served("GetObject", bytes_out=5))
        board = self.board(1, figures, engine_figures(2, compaction_at=5.0), 4, 9.0)
        local = board.local()
        again = ProcessFigures.from_json(json.loads(json.dumps(local.to_json())), alive=True)
        self.assertEqual(again, local)

    def test_reset(self) -> None:
        self.board(2, RequestFigures(), engine_figures(), 0, 1.0).publish()
        reset_directory(self.directory)
        self.assertEqual(os.listdir(self.directory), [])
