"""The engine's maintenance calls and their periodic services.

Strategy: an engine over a real store with the inline committer and an inline
runner (no threads), and the periodic services of :mod:`s4d.service` on a
``task.Clock``: advancing the clock runs a pass, whose effect is visible in the
store at once. Worker processes never get these services (``make_service`` is
only called in the main process), which is not something a unit test can see.
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from s4d import cli
from s4d.config import Config
from s4d.engine import Engine, MaintenanceBusy
from s4d.features import buckets as fb
from s4d.features import lifecycle as fl
from s4d.service import compaction_service, lifecycle_service, scrub_service
from s4d.store import stats
from s4d.store.compaction import EXIT_SERVER_RUNS
from s4d.store.listing import list_objects
from s4d.util.duties import DutyLock, duty_holder
from s4d.util.periodic import PeriodicService
from s4d.util.threads import InlineRunner
from tests.store.helpers import create_bucket, delete, open_store, put


class MaintenanceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = open_store(self, segment_size=32 << 10, chunk_size=8 << 10)
        create_bucket(self.store, "b")
        for i in range(20):
            put(self.store, "b", f"k{i}", bytes([i]) * 20_000)
        for i in range(15):
            delete(self.store, "b", f"k{i}")
        self.engine = Engine(self.store, InlineRunner(), lambda f, *a: f(*a))

    def test_compact_on_demand(self) -> None:
        maintenance = self.engine.maintenance
        dry = self.successResultOf(maintenance.compact(threshold=0.3, dry_run=True, grace=0))
        self.assertTrue(dry.segments)
        self.assertEqual(dry.compacted, [])
        report = self.successResultOf(self.engine.maintenance.compact(threshold=0.3, grace=0))
        self.assertEqual(sorted(report.compacted), sorted(p.segment for p in dry.segments))
        current = self.successResultOf(self.engine.maintenance.storage_stats())
        self.assertEqual(current.objects, 5)
        self.assertEqual(current.logical_bytes, 5 * 20_000)

    def test_one_pass_at_a_time(self) -> None:
        self.engine.maintenance.compaction_lock.acquire()
        self.failureResultOf(self.engine.maintenance.compact(grace=0), MaintenanceBusy)
        self.engine.maintenance.compaction_lock.release()

    def test_scrub_slices(self) -> None:
        report = self.successResultOf(self.engine.maintenance.scrub(1 << 30))
        self.assertTrue(report.wrapped)
        self.assertEqual(report.damaged, [])
        self.assertGreater(report.chunks, 0)

    def test_periodic_compaction(self) -> None:
        clock = Clock()
        config = dataclasses.replace(
            Config(),
            compaction={
                "enabled": True,
                "interval_hours": 1,
                "threshold": 0.3,
                "dry_run": False,
                "grace_secs": 0,
                "rate": 0,
            },
        )
        job = compaction_service(config, self.engine, clock)
        assert job is not None
        before = stats.store_stats(self.store).physical_bytes
        job.startService()
        self.addCleanup(job.stopService)
        clock.advance(3599)
        self.assertEqual(job.runs, 0)
        clock.advance(1)
        self.assertEqual((job.runs, job.failures), (1, 0))
        self.assertLess(stats.store_stats(self.store).physical_bytes, before)

    def test_dry_run_setting(self) -> None:
        clock = Clock()
        config = dataclasses.replace(
            Config(),
            compaction={"enabled": True, "interval_hours": 1, "dry_run": True, "grace_secs": 0},
        )
        job = compaction_service(config, self.engine, clock)
        assert job is not None
        files = self.store.segments.segment_ids()
        job.startService()
        self.addCleanup(job.stopService)
        clock.advance(3600)
        self.assertEqual(self.store.segments.segment_ids(), files)

    def test_disabled(self) -> None:
        config = dataclasses.replace(
            Config(), compaction={"enabled": False}, scrub={"enabled": False}
        )
        self.assertIsNone(compaction_service(config, self.engine, Clock()))
        self.assertIsNone(scrub_service(config, self.engine, Clock()))

    def test_periodic_scrub(self) -> None:
        clock = Clock()
        config = dataclasses.replace(
            Config(), scrub={"enabled": True, "interval_secs": 10, "rate": 1 << 30}
        )
        job = scrub_service(config, self.engine, clock)
        assert job is not None
        job.startService()
        self.addCleanup(job.stopService)
        clock.advance(10)
        self.assertEqual((job.runs, job.failures), (1, 0))


class LifecycleServiceTests(SynchronousTestCase):
    """The lifecycle worker on a ``task.Clock``: due passes, pauses, one log line each."""

    def setUp(self) -> None:
        self.store = open_store(self)
        self.now = 1_800_000_000 * 10**9
        self.clock = Clock()
        self.engine = Engine(self.store, InlineRunner(), lambda f, *a: f(*a), lambda: self.now)
        create_bucket(self.store, "b")
        rules = fl.encode_rules([
            fl.LifecycleRule("r", True, fl.LifecycleFilter(), "empty", expiration_days=1,
                             has_expiration=True)
        ])  # fmt: skip
        self.store.commit(lambda t: fb.put_bucket_config(t, "b", fl.LIFECYCLE, rules))
        for i in range(5):
            put(self.store, "b", f"k{i}", b"x")  # written at helpers.NOW, long ago
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def service(self, **settings: Any) -> PeriodicService:
        config = dataclasses.replace(
            Config(), lifecycle={"enabled": True, "interval_hours": 1, "pause_secs": 0, **settings}
        )
        job = lifecycle_service(config, self.engine, self.clock)
        assert job is not None
        job.startService()
        self.addCleanup(job.stopService)
        return job

    def passes(self) -> list[dict[str, Any]]:
        return [e["lifecycle"] for e in self.events if "lifecycle" in e]

    def keys(self) -> int:
        with self.store.read() as t:
            return len(list_objects(t, t.buckets.require("b")).entries)

    def test_runs_at_start_then_when_due(self) -> None:
        job = self.service()
        self.clock.advance(0)
        self.assertEqual(self.keys(), 0)
        self.assertEqual([p["expired"] for p in self.passes()], [5])
        self.assertEqual(job.failures, 0)
        put(self.store, "b", "later", b"x")
        self.now += 1800 * 10**9
        self.clock.advance(600)
        self.assertEqual(len(self.passes()), 1)  # the last pass began half an hour ago
        self.now += 1800 * 10**9
        self.clock.advance(600)
        self.assertEqual([p["expired"] for p in self.passes()], [5, 1])

    def test_dry_run_and_pauses(self) -> None:
        self.service(dry_run=True, batch=2, pause_secs=5)
        self.clock.advance(0)
        self.assertEqual(self.passes(), [])  # waiting between batches
        self.clock.pump([5, 5])
        self.assertEqual(self.passes(), [])
        self.clock.advance(5)
        self.assertEqual([(p["expired"], p["dry_run"], p["batches"]) for p in self.passes()],
                         [(5, True, 3)])  # fmt: skip
        self.assertEqual(self.keys(), 5)

    def test_disabled(self) -> None:
        config = dataclasses.replace(Config(), lifecycle={"enabled": False})
        self.assertIsNone(lifecycle_service(config, self.engine, self.clock))


def cli_run(*argv: str) -> tuple[int, str]:
    """Run an ``s4d`` subcommand in this process: its status and what it printed."""
    args = cli.build_parser().parse_args(list(argv))
    out = io.StringIO()
    status = args.run(args, out)
    return status, out.getvalue()


class CommandTests(SynchronousTestCase):
    def test_compact_refuses_while_a_server_holds_the_duties(self) -> None:
        """``s4d compact`` takes the duty lock: while another holder has it, nothing changes."""
        path = self.mktemp()
        store = open_store(self, path, segment_size=32 << 10, chunk_size=8 << 10)
        create_bucket(store, "b")
        for i in range(10):
            put(store, "b", f"k{i}", bytes([i]) * 20_000)
        for i in range(8):
            delete(store, "b", f"k{i}")
        store.close()
        segments = os.path.join(path, "segments")
        before = sorted(os.listdir(segments))
        server = DutyLock(path)  # a server's hold (flock conflicts across open files)
        self.assertTrue(server.try_acquire())
        self.addCleanup(server.release)
        errors = io.StringIO()
        self.patch(sys, "stderr", errors)
        status, text = cli_run("compact", path, "--threshold", "0.5")
        self.assertEqual((status, text), (EXIT_SERVER_RUNS, ""))
        self.assertIn(f"a running server (pid {os.getpid()}) holds the background duties",
                      errors.getvalue())  # fmt: skip
        self.assertEqual(sorted(os.listdir(segments)), before)
        # a dry run changes nothing and needs no lock
        status, text = cli_run("compact", path, "--dry-run", "--threshold", "0.5")
        self.assertEqual(status, 0, text)
        self.assertIn("dry run: would compact", text)
        # the server gone (its lock released, its pid still in the file): compaction runs
        server.release()
        status, text = cli_run("compact", path, "--threshold", "0.5")
        self.assertEqual(status, 0, text)
        self.assertIn("compacted", text)
        self.assertNotEqual(sorted(os.listdir(segments)), before)
        self.assertIsNone(duty_holder(path))  # and the command let the lock go

    def test_stats_compact_scrub(self) -> None:
        path = self.mktemp()
        store = open_store(self, path, segment_size=32 << 10, chunk_size=8 << 10)
        create_bucket(store, "b")
        for i in range(10):
            put(store, "b", f"k{i}", bytes([i]) * 20_000)
            put(store, "b", f"copy{i}", bytes([i]) * 20_000)
        for i in range(8):
            delete(store, "b", f"k{i}")
        store.close()

        def run(*argv: str) -> tuple[int, str]:
            args = cli.build_parser().parse_args(list(argv))
            out = io.StringIO()
            status = args.run(args, out)
            return status, out.getvalue()

        status, text = run("stats", path)
        self.assertEqual(status, 0)
        self.assertIn("dedup ratio", text)
        self.assertIn("object versions 12", text)
        status, text = run("compact", path, "--dry-run", "--threshold", "0.5")
        self.assertEqual(status, 0, text)
        self.assertIn("dry run: would compact", text)
        status, text = run("compact", path, "--threshold", "0.5")
        self.assertEqual(status, 0, text)
        self.assertIn("compacted", text)
        status, text = run("scrub", path)
        self.assertEqual((status, "0 damaged" in text), (0, True), text)
        status, text = run("stats", path, "--json")
        self.assertEqual(status, 0)
        self.assertIn('"dedup_ratio"', text)
