"""Background maintenance: compaction, scrubbing and storage statistics.

Each runs in a worker thread; only one compaction pass and one scrub slice run
at a time in a process (a second caller gets :class:`MaintenanceBusy`). The
facade also keeps this process's maintenance totals and the figures of its
group committer and segment syncs (:meth:`MaintenanceFacade.figures`), which
the metrics add up over every process of the server.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.store.compaction import DEFAULT_GRACE, CompactionReport, Compactor
from s4d.store.scrub import Scrubber, ScrubReport
from s4d.store.stats import StorageStats, store_stats
from s4d.util.histogram import HistogramSnapshot


class MaintenanceBusy(Exception):
    """A compaction pass (or scrub slice) is already running in this process."""


@dataclass
class MaintenanceTotals:
    """What this process's maintenance has done since it started (dry runs excepted)."""

    #: compaction passes run
    compaction_passes: int = 0
    #: segment files compaction deleted, and their bytes
    compaction_segments: int = 0
    compaction_bytes_reclaimed: int = 0
    #: live bytes compaction copied out of them first
    compaction_bytes_copied: int = 0
    #: released chunks compaction dropped
    compaction_chunks_purged: int = 0
    #: chunks and bytes the scrubber re-read and checked
    scrub_chunks: int = 0
    scrub_bytes: int = 0
    #: chunks the scrubber found damaged that were not known to be
    scrub_damaged: int = 0
    #: complete passes of the scrubber over every chunk
    scrub_passes: int = 0


class EngineFigures(NamedTuple):
    """This process's engine figures at one moment (for the metrics)."""

    #: operations per group commit
    commit_batches: HistogramSnapshot
    #: seconds per group commit transaction
    commit_seconds: HistogramSnapshot
    #: seconds per segment ``fdatasync``
    fsync_seconds: HistogramSnapshot
    #: seconds from a group commit to its transaction being durable (shared durability)
    durable_seconds: HistogramSnapshot
    #: maintenance totals, and how waits for durable commits were answered
    #: (``durability_synced``, ``durability_covered_here``, ``durability_covered_elsewhere``)
    totals: dict[str, int]
    #: the last compaction pass and scrub here: when (``at``, epoch seconds) and what it did
    last_compaction: dict[str, Any] | None
    last_scrub: dict[str, Any] | None


class MaintenanceFacade:
    """Compaction, scrubbing and statistics over one :class:`~s4d.engine.core.EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self._core = core
        self.compaction_lock = threading.Lock()
        self._scrub_lock = threading.Lock()
        self._scrubber: Scrubber | None = None
        self.totals = MaintenanceTotals()
        self.last_compaction: dict[str, Any] | None = None
        self.last_scrub: dict[str, Any] | None = None

    def compact(
        self,
        threshold: float = 0.3,
        dry_run: bool = False,
        grace: float = DEFAULT_GRACE,
        rate: float | None = None,
        max_segments: int | None = None,
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
                report = Compactor(
                    core.store,
                    threshold=threshold,
                    dry_run=dry_run,
                    grace=grace,
                    rate=rate,
                    should_stop=core.stopping.is_set,
                    max_segments=max_segments,
                ).run()
                self._count_compaction(report)
                return report
            finally:
                self.compaction_lock.release()

        return core.run(run)

    def _count_compaction(self, report: CompactionReport) -> None:
        self.last_compaction = {
            "at": self._core.now_ns() / 1e9,
            "dry_run": report.dry_run,
            "threshold": report.threshold,
            "segments": len(report.segments),
            "segments_compacted": len(report.compacted),
            "bytes_copied": report.copied_bytes,
            "bytes_reclaimed": report.reclaimed_bytes,
            "chunks_purged": report.purged_records,
            "damaged": len(report.damaged),
            "seconds": round(report.seconds, 3),
        }
        if report.dry_run:
            return
        totals = self.totals
        totals.compaction_passes += 1
        totals.compaction_segments += len(report.compacted)
        totals.compaction_bytes_reclaimed += report.reclaimed_bytes
        totals.compaction_bytes_copied += report.copied_bytes
        totals.compaction_chunks_purged += report.purged_records

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
                report = self._scrubber.run_slice(max_bytes, core.stopping.is_set)
                self._count_scrub(report, full_pass=False)
                return report
            finally:
                self._scrub_lock.release()

        return core.run(run)

    def scrub_pass(self) -> Deferred[ScrubReport]:
        """Check every stored chunk once, unpaced, from the start (the admin API's scrub).

        The background scrubber's position is left alone.
        """
        core = self._core

        def run() -> ScrubReport:
            if not self._scrub_lock.acquire(blocking=False):
                raise MaintenanceBusy("the scrubber is already running")
            try:
                report = Scrubber(core.store, rate=None).run_pass()
                self._count_scrub(report, full_pass=True)
                return report
            finally:
                self._scrub_lock.release()

        return core.run(run)

    def _count_scrub(self, report: ScrubReport, full_pass: bool) -> None:
        self.last_scrub = {
            "at": self._core.now_ns() / 1e9,
            "full_pass": full_pass,
            "chunks": report.chunks,
            "bytes": report.bytes,
            "segments": len(report.segments),
            "corrupt": len(report.corrupt),
            "damaged": len(report.damaged),
            "wrapped": report.wrapped,
            "seconds": round(report.seconds, 3),
        }
        totals = self.totals
        totals.scrub_chunks += report.chunks
        totals.scrub_bytes += report.bytes
        totals.scrub_damaged += len(report.damaged)
        totals.scrub_passes += report.wrapped

    def storage_stats(self) -> Deferred[StorageStats]:
        """Objects, logical and physical bytes, dedup and compression ratios, dead bytes."""
        return self._core.run(store_stats, self._core.store)

    def figures(self) -> EngineFigures:
        """This process's commit and sync figures and maintenance totals, now (no I/O)."""
        store = self._core.store
        totals = asdict(self.totals)
        shared = store.durability
        if shared is not None:
            totals["durability_synced"] = shared.syncs
            totals["durability_covered_here"] = shared.covered_here
            totals["durability_covered_elsewhere"] = shared.covered_elsewhere
        return EngineFigures(
            store.committer.batch_sizes.snapshot(),
            store.committer.commit_seconds.snapshot(),
            store.segments.fsync_seconds.snapshot(),
            store.committer.durable_seconds.snapshot(),
            totals,
            self.last_compaction,
            self.last_scrub,
        )
