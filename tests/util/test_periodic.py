"""The periodic service and the multipart expiry job built on it.

Strategy: everything runs on a ``task.Clock``, so time only moves when the test
advances it; jobs are plain functions or Deferreds the test fires by hand.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from s4d.config import Config, build
from s4d.service import COMPLETED_KEPT_HOURS, multipart_expiry
from s4d.util.periodic import PeriodicService


class PeriodicServiceTests(SynchronousTestCase):
    def test_runs_every_interval_after_the_previous_run(self) -> None:
        clock = Clock()
        calls: list[float] = []
        service = PeriodicService(clock, 10, lambda: calls.append(clock.seconds()), "job")
        service.startService()
        clock.advance(9)
        self.assertEqual(calls, [])
        clock.advance(1)
        clock.advance(10)
        self.assertEqual(calls, [10, 20])
        service.stopService()
        clock.advance(100)
        self.assertEqual(calls, [10, 20])

    def test_no_overlap_and_interval_measured_from_the_end(self) -> None:
        clock = Clock()
        pending: list[Deferred[None]] = []

        def job() -> Deferred[None]:
            pending.append(Deferred())
            return pending[-1]

        service = PeriodicService(clock, 5, job, "slow", run_at_start=True)
        service.startService()
        clock.advance(0)
        self.assertEqual(len(pending), 1)
        clock.advance(60)
        service.call_soon()
        clock.advance(0)
        self.assertEqual(len(pending), 1)  # still running: nothing new starts
        pending[0].callback(None)
        clock.advance(4)
        self.assertEqual(len(pending), 1)
        clock.advance(1)
        self.assertEqual(len(pending), 2)

    def test_failure_is_logged_and_the_schedule_goes_on(self) -> None:
        clock = Clock()
        runs: list[int] = []

        def job() -> None:
            runs.append(1)
            raise RuntimeError("boom")

        service = PeriodicService(clock, 1, job, "failing")
        service.startService()
        clock.advance(1)
        clock.advance(1)
        self.assertEqual((len(runs), service.failures), (2, 2))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_stop_waits_for_the_run_in_flight(self) -> None:
        clock = Clock()
        running: Deferred[None] = Deferred()
        service = PeriodicService(clock, 1, lambda: running, "job")
        service.startService()
        clock.advance(1)
        stopped = service.stopService()
        self.assertNoResult(stopped)
        running.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(clock.getDelayedCalls(), [])


class AskedMultipart:
    """Stands for the multipart facade: notes what the expiry job asks of it."""

    def __init__(self, asked: list[tuple[str, int]]) -> None:
        self.asked = asked

    def expire(self, max_age_ns: int) -> Deferred[int]:
        self.asked.append(("expire", max_age_ns))
        return succeed(0)

    def forget_completed(self, max_age_ns: int) -> Deferred[int]:
        self.asked.append(("forget", max_age_ns))
        return succeed(0)


class ExpiryConfigTests(SynchronousTestCase):
    def test_ttl_settings(self) -> None:
        env = {"S4_ACCESS_KEY_ID": "a", "S4_SECRET_ACCESS_KEY": "b"}
        self.assertEqual(build({}, env).multipart_ttl_hours, 24)
        self.assertEqual(
            build({}, {**env, "S4_MULTIPART_UPLOAD_TTL_HOURS": "2"}).multipart_ttl_hours, 2
        )
        secs = build({}, {**env, "S4_COMPACTION_MULTIPART_TTL_SECS": "36"})
        self.assertAlmostEqual(secs.multipart_ttl_hours, 0.01)

    def test_expiry_job_asks_the_engine(self) -> None:
        clock = Clock()
        asked: list[tuple[str, int]] = []
        engine: Any = AskedMultipart(asked)
        service = multipart_expiry(Config(multipart_ttl_hours=2 / 3600), engine, clock)
        self.assertEqual(service.interval, 0.5)
        service.startService()
        clock.advance(0)
        clock.advance(0.5)
        both = [("expire", 2 * 10**9), ("forget", 2 * 10**9)]
        self.assertEqual(asked, both * 2)
        service.stopService()
        self.assertEqual(multipart_expiry(Config(), engine, clock).interval, 3600)

    def test_without_a_ttl_only_completed_uploads_are_forgotten(self) -> None:
        """TTL 0 keeps uploads forever, but completed ones still go after a day."""
        clock = Clock()
        asked: list[tuple[str, int]] = []
        engine: Any = AskedMultipart(asked)
        service = multipart_expiry(Config(multipart_ttl_hours=0), engine, clock)
        self.assertEqual(service.interval, 3600)
        service.startService()
        clock.advance(0)
        self.assertEqual(asked, [("forget", int(COMPLETED_KEPT_HOURS * 3600 * 10**9))])
        service.stopService()
