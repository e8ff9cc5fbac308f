"""Lifecycle: the background pass, and what the rules tell a client about its object.

A pass (:meth:`LifecycleFacade.run_pass`) is a loop on the reactor: each turn
plans one batch in a read transaction on a worker thread and applies it in one
group commit (:mod:`s4d.features.lifecycle_sweep`), so client requests queue
between batches exactly as between other requests, and an optional ``pause``
spaces batches out. The position is saved with every applied batch: a pass
stopped by a shutdown or a crash resumes where it stopped
(:meth:`LifecycleFacade.run_if_due`). A dry run plans and checks every
verdict in read transactions and changes nothing, not even the position.

The answers to clients (``x-amz-expiration``, ``x-amz-abort-date``) read the
rules through the per-process :class:`~s4d.engine.configs.ConfigCache`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from twisted.internet.defer import Deferred, ensureDeferred

from s4d.engine.configs import ConfigCache
from s4d.engine.core import EngineCore
from s4d.features import lifecycle as fl
from s4d.features import lifecycle_sweep as fs
from s4d.features.lifecycle import LIFECYCLE, DayClock, LifecycleRule
from s4d.store.model import ObjectVersion


@dataclass
class LifecycleReport:
    """What one run of a pass did (or, dry, would do).

    :ivar totals: the figures of :data:`~s4d.features.lifecycle_sweep.COUNTS`
        for the whole pass, including what ran before a restart.
    :ivar complete: the pass reached its end (False: stopped, to be resumed).
    :ivar resumed: this run continued a pass that an earlier run began.
    """

    dry_run: bool
    resumed: bool = False
    complete: bool = False
    seconds: float = 0.0
    batches: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def fields(self) -> dict[str, object]:
        """The structured fields of the pass's log line."""
        figures = fs.totals_line(self.totals)
        return {
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "complete": self.complete,
            "batches": self.batches,
            "duration": round(self.seconds, 3),
            **figures,
        }


class LifecycleFacade:
    """Lifecycle over one :class:`~s4d.engine.core.EngineCore`.

    :param configs: the process's cache of bucket configuration documents.
    :param clock: how long a lifecycle day is.
    """

    def __init__(self, core: EngineCore, configs: ConfigCache, clock: DayClock) -> None:
        self._core = core
        self._configs = configs
        self.clock = clock
        #: object lock's answer to "may this version be removed now" (one call per removal)
        self.removable: fs.RemovalCheck = fs.may_remove
        #: when the last dry pass ended (dry passes leave nothing in the store)
        self._dry_finished_ns: int | None = None
        #: the last run of a pass in this process (for stats and metrics), and the sums of
        #: every run's figures since the process started
        self.last_report: LifecycleReport | None = None
        self.totals: dict[str, int] = dict.fromkeys(fs.COUNTS, 0)

    # -- what clients are told ------------------------------------------------------

    async def rules(self, bucket: str) -> tuple[LifecycleRule, ...]:
        """The bucket's lifecycle rules (cached; empty when it has none)."""
        raw = self._configs.get(bucket, LIFECYCLE)
        if isinstance(raw, Deferred):
            raw = await raw
        return fl.decode_rules(raw) if raw is not None else ()

    def expiration(
        self, bucket: str, version: ObjectVersion
    ) -> tuple[int, str] | None | Deferred[tuple[int, str] | None]:
        """When the current ``version`` will expire and under which rule (``x-amz-expiration``).

        The answer itself when the rules are cached (every request but about one a
        second per bucket), else a Deferred of it: the hot path makes no coroutine.
        """
        raw = self._configs.get(bucket, LIFECYCLE)
        if isinstance(raw, Deferred):
            return raw.addCallback(self._expiration, version)
        return self._expiration(raw, version)

    def _expiration(self, raw: bytes | None, version: ObjectVersion) -> tuple[int, str] | None:
        if raw is None or version.delete_marker:
            return None
        rules = fl.decode_rules(raw)
        return fl.expiration_of(
            rules, version.key, version.tags, version.size, version.mtime_ns, self.clock
        )

    async def abort_date(self, bucket: str, key: str, initiated_ns: int) -> tuple[int, str] | None:
        """When an upload of ``key`` will be aborted and under which rule (``x-amz-abort-date``)."""
        rules = await self.rules(bucket)
        return fl.abort_of(rules, key, initiated_ns, self.clock) if rules else None

    # -- the pass --------------------------------------------------------------------

    def run_if_due(
        self,
        interval_ns: int,
        dry_run: bool = False,
        limits: fs.Limits = fs.Limits(),
        pause: Callable[[], Deferred[None]] | None = None,
    ) -> Deferred[LifecycleReport | None]:
        """Resume the pass in progress, or start one if the last ended ``interval_ns`` ago.

        Fires with None when no pass was due.
        """

        async def maybe() -> LifecycleReport | None:
            core = self._core
            state, finished = await core.read(lambda t: (fs.load_state(t), fs.last_finished(t)))
            if dry_run:
                state, finished = None, self._dry_finished_ns
            now = core.now_ns()
            if state is None and finished is not None and now - finished < interval_ns:
                return None
            return await self.run_pass(dry_run, limits, pause)

        return ensureDeferred(maybe())

    def run_pass(
        self,
        dry_run: bool = False,
        limits: fs.Limits = fs.Limits(),
        pause: Callable[[], Deferred[None]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Deferred[LifecycleReport]:
        """Run (or resume) a pass to its end, or until the service stops.

        :param pause: awaited between batches (spacing the pass out); None goes on at once.
        """
        core = self._core
        clock = self.clock

        async def run() -> LifecycleReport:
            began = monotonic()
            saved = None if dry_run else await core.read(fs.load_state)
            report = LifecycleReport(dry_run, resumed=saved is not None)
            state = saved or fs.SweepState(started_ns=core.now_ns())
            while not core.stopping.is_set():
                now = core.now_ns()
                batch = await core.read(partial(fs.plan_batch, state=state, now_ns=now,
                                                clock=clock, limits=limits))  # fmt: skip
                if batch.finished:
                    if dry_run:
                        self._dry_finished_ns = now
                    else:
                        await core.commit(partial(fs.finish_pass, state=state, now_ns=now))
                    report.complete = True
                    break
                apply = partial(fs.apply_batch, batch=batch, now_ns=now, clock=clock,
                                dry_run=dry_run, removable=self.removable)  # fmt: skip
                applied = await (core.read(apply) if dry_run else core.commit(apply))
                report.batches += 1
                state = applied.state
                if pause is not None:
                    await pause()
            report.totals = fs.totals_line(state.totals)
            report.seconds = monotonic() - began
            if not dry_run:
                before = fs.totals_line(saved.totals) if saved is not None else {}
                for name, value in report.totals.items():
                    self.totals[name] += value - before.get(name, 0)
            self.last_report = report
            return report

        return ensureDeferred(run())
