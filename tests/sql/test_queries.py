"""The query service's bounds and switches: the queue, stopping, S4_SELECT_ENABLED.

The service is given a runner whose jobs never start (their Deferreds are
held by the test), so "a query is running" is a state the test controls.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.sql.control import QueryCancelled
from s4d.sql.queries import Limits, QueryService
from s4d.sql.request import CsvInput, JsonOutput, SelectRequest
from tests.s3.memory import MemoryS3
from tests.sql._support import select_document


class _HeldRunner:
    """Jobs wait here; the test finishes them."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, tuple[Any, ...], Deferred[Any]]] = []

    def run(self, f: Any, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.jobs.append((f, args, d))
        return d


REQUEST = SelectRequest("SELECT * FROM S3Object", CsvInput(), JsonOutput())


class QueueTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.runner = _HeldRunner()
        self.service = QueryService(
            None,  # type: ignore[arg-type]
            self.runner,
            lambda f, *a: f(*a),
            Limits(concurrency=2, queued=1, buffered=None),
        )

    def test_slow_down_beyond_the_queue(self) -> None:
        """concurrency + queued queries may be started; the next one is SlowDown."""
        for _ in range(3):
            self.service.select("bkt", "k", REQUEST)
        with self.assertRaises(S3Error) as caught:
            self.service.select("bkt", "k", REQUEST)
        self.assertEqual((caught.exception.code, caught.exception.status), ("SlowDown", 503))
        self.runner.jobs[0][2].callback(None)  # one ends: room again
        self.service.select("bkt", "k", REQUEST)
        self.assertEqual(self.service.running, 3)

    def test_stop_cancels_and_refuses(self) -> None:
        """Stopping cancels every running query and refuses new ones."""
        queries = [self.service.select("bkt", "k", REQUEST) for _ in range(2)]
        stopped = self.service.stop()
        for query in queries:
            self.assertIsInstance(query._job.control.stopped, QueryCancelled)
        self.assertNoResult(stopped)
        for _, _, d in self.runner.jobs:
            d.callback(None)
        self.successResultOf(stopped)
        with self.assertRaises(S3Error) as caught:
            self.service.select("bkt", "k", REQUEST)
        self.assertEqual(caught.exception.code, "ServiceUnavailable")


class DisabledTests(SynchronousTestCase):
    """Without a query service (S4_SELECT_ENABLED=false) both routes are NotImplemented."""

    def test_not_implemented(self) -> None:
        s3 = MemoryS3()
        self.addCleanup(s3.close)
        s3.request("PUT", "/bkt")
        s3.request("PUT", "/bkt/k", b"a\n1\n")
        answer = s3.request("POST", "/bkt/k?select&select-type=2", select_document("SELECT 1"))
        self.assertEqual((answer.status, answer.code()), (501, "NotImplemented"))
        self.assertIn(b"S4_SELECT_ENABLED", answer.body)
        answer = s3.request("POST", "/bkt?sql", b'{"sql": "SELECT 1"}')
        self.assertEqual((answer.status, answer.code()), (501, "NotImplemented"))
