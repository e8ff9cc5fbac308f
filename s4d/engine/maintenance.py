"""Background maintenance: compaction, scrubbing and storage statistics.

Each runs in a worker thread; only one compaction pass and one scrub slice run
at a time in a process (a second caller gets :class:`MaintenanceBusy`).
"""

from __future__ import annotations

import threading

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.store.compaction import DEFAULT_GRACE, CompactionReport, Compactor
from s4d.store.scrub import Scrubber, ScrubReport
from s4d.store.stats import StorageStats, store_stats


class MaintenanceBusy(Exception):
    """A compaction pass (or scrub slice) is already running in this process."""


class MaintenanceFacade:
    """Compaction, scrubbing and statistics over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core
        self.compaction_lock = threading.Lock()
        self._scrub_lock = threading.Lock()
        self._scrubber: Scrubber | None = None

    def compact(
        self,
        threshold: float = 0.3,
        dry_run: bool = False,
        grace: float = DEFAULT_GRACE,
        rate: float | None = None,
    ) -> Deferred[CompactionReport]:
        """Run one compaction pass in a worker thread (the admin API calls this too).

        Commits of moved chunks go through the group committer in small batches,
        so requests keep flowing while it runs.
        """
        core = self._core

        def run() -> CompactionReport:
            if not self.compaction_lock.acquire(blocking=False):
                raise MaintenanceBusy("a compaction pass is already running")
            try:
                return Compactor(
                    core.store,
                    threshold=threshold,
                    dry_run=dry_run,
                    grace=grace,
                    rate=rate,
                    should_stop=core.stopping.is_set,
                ).run()
            finally:
                self.compaction_lock.release()

        return core.run(run)

    def scrub(self, max_bytes: int, rate: float | None = None) -> Deferred[ScrubReport]:
        """Check the next ``max_bytes`` of stored chunks (continuing where the last slice ended)."""
        core = self._core

        def run() -> ScrubReport:
            if not self._scrub_lock.acquire(blocking=False):
                raise MaintenanceBusy("the scrubber is already running")
            try:
                if self._scrubber is None:
                    self._scrubber = Scrubber(core.store)
                self._scrubber.rate = rate
                return self._scrubber.run_slice(max_bytes, core.stopping.is_set)
            finally:
                self._scrub_lock.release()

        return core.run(run)

    def storage_stats(self) -> Deferred[StorageStats]:
        """Objects, logical and physical bytes, dedup and compression ratios, dead bytes."""
        return self._core.run(store_stats, self._core.store)
