"""Compaction: copy the live chunks out of mostly-dead segments, then delete them.

A pass (:meth:`Compactor.run`) picks segment files whose recorded dead bytes
are at least ``threshold`` of their size, skipping the segment this process
appends to, segments modified within the last ``grace`` seconds, and any file
another process holds the append lock (``flock``) of. For each one it:

1. commits a *retiring* mark on the segment: from then on the metadata refuses
   to index any new record in it (:meth:`~s4d.store.views.chunks.ChunksView.add`), so
   every record the index will ever point at in that file is already there;
2. scans the file's records (checking their CRCs) and looks each up in the chunk
   index: a record is *live* iff the index maps its digest to exactly this
   segment and offset; a live record with references is copied, a released one
   (no references) is *purged* once it was released ``grace`` seconds ago and
   copied (still released) before that, everything else is dead already;
3. copies live records in bounded batches, in the calling (worker) thread:
   each record is read and checked completely (CRCs, content address, BLAKE3 of
   the decoded bytes), appended unchanged (still compressed) to the active
   segment, the batch is ``fdatasync``\\ ed, and only then one committer
   operation moves the index entries: it re-checks that each chunk still points
   at the old place (a concurrent purge or heal may have changed it) and counts
   the copy as dead if not. Copies are paced to a byte rate;
4. once nothing in the index points into the file (checked inside a committer
   operation, which also turns the segment's record into a *retired* tombstone),
   unlinks the file and forgets its descriptor.

A record that fails its checks is not copied: it is recorded as damaged (reads
of its objects then fail with an S3 error) and reported with its keys, and its
segment stays until the damage is dealt with.

Crash safety: copies are durable before any index entry points at them; a crash
before the move commits leaves them as orphan bytes (counted dead by recovery);
a crash after it leaves the old file with no live record and its retiring mark,
and the next pass (which always takes retiring segments) finishes the job; a
crash between the tombstone and the unlink is the same. Readers that looked a
location up before a move retry with a fresh one (:meth:`Store.read_chunk`).
Configuration and IAM records live in LMDB, not in segments: compaction never
touches them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from s4d.store import records
from s4d.store.clock import Clock
from s4d.store.eventlog import EventLog
from s4d.store.model import ChunkLocation
from s4d.store.scrub import DamagedChunk, mark_damaged, seg_read, verify_record
from s4d.store.segments import SegmentFile
from s4d.store.stats import render, store_stats
from s4d.store.store import Store, StoreConfig
from s4d.store.txn import MetaTxn
from s4d.util.duties import DutyLock, duty_holder, duty_lock_path

#: Default: released chunks are kept, and segments left alone, this long (seconds).
DEFAULT_GRACE = 3600.0
#: Bytes copied between two commits of new locations.
BATCH_BYTES = 32 << 20
#: Records copied between two commits of new locations.
BATCH_RECORDS = 1024
#: Index look-ups per read transaction while classifying.
LOOKUP_BATCH = 2048
#: Rounds of classify-and-copy per segment (chunks revived meanwhile need another).
MAX_ROUNDS = 4


@dataclass
class SegmentPlan:
    """One segment a pass works on: what it holds and what became of it."""

    segment: int
    size: int
    dead: int
    retiring: bool = False
    live_records: int = 0
    live_bytes: int = 0
    purge_records: int = 0
    purge_bytes: int = 0
    damaged_regions: int = 0
    #: records found in the file (live, to purge, and dead)
    scanned_records: int = 0
    #: done: the file is gone; skipped: locked by another process
    outcome: str = "planned"

    @property
    def dead_fraction(self) -> float:
        """The recorded dead bytes over the file size."""
        return self.dead / self.size if self.size else 1.0


@dataclass
class CompactionReport:
    """What a pass did (or, dry, would do)."""

    dry_run: bool
    threshold: float
    segments: list[SegmentPlan] = field(default_factory=list)
    copied_records: int = 0
    copied_bytes: int = 0
    purged_records: int = 0
    #: sizes of the segment files deleted
    reclaimed_bytes: int = 0
    damaged: list[DamagedChunk] = field(default_factory=list)
    seconds: float = 0.0
    #: segment files looked at to choose the candidates (the active one excepted)
    considered: int = 0

    @property
    def compacted(self) -> list[int]:
        """Ids of the segments whose files were deleted."""
        return [p.segment for p in self.segments if p.outcome == "done"]

    @property
    def freed_bytes(self) -> int:
        """Net bytes given back: deleted files minus the copies made."""
        return self.reclaimed_bytes - self.copied_bytes

    @property
    def copy_rate(self) -> float:
        """Bytes copied per second of the pass."""
        return self.copied_bytes / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for logs and the command."""
        mode = "dry run: would compact" if self.dry_run else "compacted"
        chosen = [p for p in self.segments if p.outcome != "skipped"]
        if self.dry_run:
            copy = sum(p.live_bytes for p in chosen)
            size = sum(p.size for p in chosen)
            return (
                f"{mode} {len(chosen)} segments: copy {copy} bytes, "
                f"purge {sum(p.purge_records for p in chosen)} released chunks, "
                f"free {size - copy} of {size} bytes"
            )
        return (
            f"{mode} {len(self.compacted)} of {len(chosen)} segments in {self.seconds:.2f} s: "
            f"copied {self.copied_records} chunks ({self.copied_bytes} bytes), "
            f"purged {self.purged_records}, deleted {self.reclaimed_bytes} bytes of files, "
            f"{len(self.damaged)} damaged"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        value = asdict(self)
        value["compacted"] = self.compacted
        value["freed_bytes"] = self.freed_bytes
        return value


@dataclass
class _Live:
    """A record of the victim segment that the index points at."""

    digest: bytes
    offset: int
    length: int  # stored payload length
    size: int
    flags: int
    refs: int
    purge: bool


class Compactor:
    """One compaction pass over a store.

    :param threshold: the dead fraction from which a segment is compacted.
    :param grace: seconds a released chunk is kept (an upload that deduplicated
        against it may still commit), and a segment must have been left alone
        before it is compacted (a slow upload may still commit chunks written
        there). 0 for offline use and tests.
    :param rate: most bytes copied per second (None: unpaced).
    :param should_stop: polled between records; a pass stops early when it says so.
    :param max_segments: compact at most this many of the candidates (None: all).
    :param clock: the clocks to read and pace with (default: the store's).
    :param events: where the pass's summary and damage are logged (default: the store's).
    """

    def __init__(
        self,
        store: Store,
        threshold: float = 0.3,
        dry_run: bool = False,
        grace: float = DEFAULT_GRACE,
        rate: float | None = None,
        batch_bytes: int = BATCH_BYTES,
        batch_records: int = BATCH_RECORDS,
        should_stop: Callable[[], bool] = lambda: False,
        segments: list[int] | None = None,
        clock: Clock | None = None,
        events: EventLog | None = None,
        max_segments: int | None = None,
    ) -> None:
        self.store = store
        self.max_segments = max_segments
        #: segment files the last :meth:`candidates` looked at
        self.considered = 0
        self.threshold = threshold
        self.dry_run = dry_run
        self.grace = grace
        self.rate = rate
        self.batch_bytes = batch_bytes
        self.batch_records = batch_records
        self.clock = clock if clock is not None else store.clock
        self.events = events if events is not None else store.events
        self.should_stop = should_stop
        self.only = set(segments) if segments is not None else None
        self._copied_since = 0
        self._paced_from = self.clock.monotonic()

    # -- choosing ------------------------------------------------------------------

    def candidates(self) -> list[SegmentPlan]:
        """Segments over the threshold (and any left retiring by an earlier pass)."""
        infos: dict[int, dict[str, Any]] = {}
        ids = self.store.segments.segment_ids()
        with self.store.read() as t:
            for sid in ids:
                infos[sid] = t.segments.info(sid)
        active = self.store.segments.active_id()
        now = self.clock.wall()
        plans = []
        self.considered = 0
        for sid in ids:
            if sid == active or (self.only is not None and sid not in self.only):
                continue
            try:
                st = os.stat(self.store.segments.path(sid))
            except FileNotFoundError:
                continue
            self.considered += 1
            info = infos.get(sid, {})
            retiring = bool(info.get("retiring"))
            # An empty file may have just been created by a process about to lock it.
            if st.st_size == 0:
                continue
            plan = SegmentPlan(sid, st.st_size, int(info.get("dead", 0)), retiring)
            if not retiring:
                if now - st.st_mtime < self.grace:
                    continue
                if plan.dead <= 0 or plan.dead_fraction < self.threshold:
                    continue
            plans.append(plan)
        return plans

    # -- the pass ------------------------------------------------------------------

    def run(self) -> CompactionReport:
        """Compact every candidate (or, dry, report what would be done)."""
        report = CompactionReport(self.dry_run, self.threshold)
        started = self.clock.monotonic()
        self._paced_from = started
        self._copied_since = 0
        chosen = self.candidates()
        report.considered = self.considered
        for plan in chosen[: self.max_segments]:
            if self.should_stop():
                break
            report.segments.append(plan)
            lock = self._lock(plan.segment)
            if lock is None:
                plan.outcome = "skipped"
                continue
            try:
                self._compact(plan, lock, report)
            finally:
                lock.close()
        report.seconds = self.clock.monotonic() - started
        if report.segments:
            self.events.info(
                "Compaction: {summary}",
                summary=report.summary(),
                compacted=report.compacted,
                copied_bytes=report.copied_bytes,
                reclaimed_bytes=report.reclaimed_bytes,
                damaged=len(report.damaged),
            )
        return report

    def _lock(self, sid: int) -> SegmentFile | None:
        try:
            seg = SegmentFile(self.store.segments.path(sid), sid, writable=False)
        except FileNotFoundError:
            return None
        if not seg.lock_exclusive():
            seg.close()
            return None
        return seg

    def _compact(self, plan: SegmentPlan, lock: SegmentFile, report: CompactionReport) -> None:
        sid = plan.segment
        if not self.dry_run and not plan.retiring:
            self.store.commit(lambda t: _mark_retiring(t, sid))
            plan.retiring = True
        size = os.fstat(lock.fd).st_size
        scanned: list[records.ScannedRecord] = []
        # Payloads are checked too: a torn record (its header written, its payload
        # not, a crash in between) must not be taken at its word, or its extent
        # would hide the records appended after it when the file was reopened.
        for item in records.scan(records.ReadAt(lock.fd), size, verify_payload=True):
            if isinstance(item, records.ScannedRecord):
                scanned.append(item)
            else:
                plan.damaged_regions += 1
        plan.scanned_records = len(scanned)
        live = self._classify(sid, scanned)
        plan.live_records = sum(1 for r in live if not r.purge)
        plan.live_bytes = sum(records.HEADER_SIZE + r.length for r in live if not r.purge)
        plan.purge_records = sum(1 for r in live if r.purge)
        plan.purge_bytes = sum(records.HEADER_SIZE + r.length for r in live if r.purge)
        if self.dry_run:
            return
        damaged: list[tuple[ChunkLocation, str]] = []
        for _round in range(MAX_ROUNDS):
            if not live or self.should_stop():
                break
            damaged += self._copy(sid, lock.fd, live, report)
            bad = {loc.digest for loc, _ in damaged}
            live = [r for r in self._classify(sid, scanned) if r.digest not in bad]
        if damaged:
            report.damaged += mark_damaged(self.store, damaged, self.events)
        if live or damaged or self.should_stop():
            plan.outcome = "unfinished"
            return
        if plan.damaged_regions and self._hidden_live(sid, scanned, report):
            plan.outcome = "unfinished"
            return
        offsets = {(r.header.content, r.offset) for r in scanned}
        if not self.store.commit(lambda t: _retire(t, sid, offsets)):
            plan.outcome = "unfinished"
            return
        path = self.store.segments.path(sid)
        os.unlink(path)
        _fsync_directory(os.path.dirname(path))
        self.store.segments.forget(sid)
        report.reclaimed_bytes += size
        plan.outcome = "done"

    def _classify(self, sid: int, scanned: list[records.ScannedRecord]) -> list[_Live]:
        """The records of segment ``sid`` that the index points at, with what to do."""
        live: list[_Live] = []
        now = self.clock.wall()
        for start in range(0, len(scanned), LOOKUP_BATCH):
            with self.store.read() as t:
                for rec in scanned[start : start + LOOKUP_BATCH]:
                    digest = rec.header.content
                    found = t.chunks.get(digest)
                    if found is None:
                        continue
                    loc, refs = found
                    if (loc.segment, loc.offset) != (sid, rec.offset):
                        continue
                    purge = False
                    if refs == 0:
                        released = t.chunks.released_at(digest)
                        purge = released is None or now - released >= self.grace
                    live.append(
                        _Live(digest, rec.offset, loc.length, loc.size, loc.flags, refs, purge)
                    )
        return live

    def _copy(
        self, sid: int, fd: int, live: list[_Live], report: CompactionReport
    ) -> list[tuple[ChunkLocation, str]]:
        """Copy and move the live records in batches; return the damaged ones."""
        damaged: list[tuple[ChunkLocation, str]] = []
        batch: list[tuple[bytes, int, ChunkLocation]] = []
        purges = [(r.digest, r.offset) for r in live if r.purge]
        pending = 0
        for rec in live:
            if rec.purge:
                continue
            if self.should_stop():
                break
            old = ChunkLocation(rec.digest, sid, rec.offset, rec.length, rec.size, rec.flags)
            try:
                header, payload, _plain = verify_record(seg_read(fd, old), old)
            except records.CorruptRecord as e:
                damaged.append((old, str(e)))
                continue
            new = self.store.segments.append(payload, header.raw_length, rec.digest, header.flags)
            batch.append(
                (
                    rec.digest,
                    rec.offset,
                    ChunkLocation(
                        rec.digest, new.segment, new.offset, new.length, rec.size, header.flags
                    ),
                )
            )
            pending += records.HEADER_SIZE + new.length
            self._pace(records.HEADER_SIZE + new.length)
            if pending >= self.batch_bytes or len(batch) >= self.batch_records:
                self._commit_moves(sid, batch, purges, report)
                batch, purges, pending = [], [], 0
        if batch or purges:
            self._commit_moves(sid, batch, purges, report)
        return damaged

    def _commit_moves(
        self,
        sid: int,
        batch: list[tuple[bytes, int, ChunkLocation]],
        purges: list[tuple[bytes, int]],
        report: CompactionReport,
    ) -> None:
        # The committer fdatasyncs the copies before the transaction that points at them.
        touched = frozenset(loc.segment for _d, _o, loc in batch)
        grace, now = self.grace, self.clock.wall()

        def move(t: MetaTxn) -> tuple[int, int, int]:
            moved = purged = 0
            for digest, offset, new in batch:
                found = t.chunks.get(digest)
                if found is not None and (found[0].segment, found[0].offset) == (sid, offset):
                    t.chunks.relocate(digest, new)
                    t.damaged.clear(digest)
                    moved += 1
                else:
                    t.dead[new.segment] += records.HEADER_SIZE + new.length
            for digest, offset in purges:
                found = t.chunks.get(digest)
                if found is None or (found[0].segment, found[0].offset) != (sid, offset):
                    continue
                released = t.chunks.released_at(digest)
                if found[1] == 0 and (released is None or now - released >= grace):
                    purged += t.chunks.purge(digest)
            return moved, purged, sum(records.HEADER_SIZE + new.length for _d, _o, new in batch)

        moved, purged, copied = self.store.submit(move, touched).result()
        report.copied_records += moved
        report.copied_bytes += copied
        report.purged_records += purged

    def _hidden_live(
        self, sid: int, scanned: list[records.ScannedRecord], report: CompactionReport
    ) -> bool:
        """True if the index points into ``sid`` at a record the scan could not read.

        Only asked when the scan met damaged regions: a whole-index walk, so that
        a live record that is damaged (header or payload) is reported, never deleted.
        """
        known = {r.offset for r in scanned}
        hidden: list[tuple[ChunkLocation, str]] = []
        with self.store.read() as t:
            cursor = t.chunks.cursor()
            for k, _raw in cursor:
                found = t.chunks.get(bytes(k))
                if found is not None and found[0].segment == sid and found[0].offset not in known:
                    hidden.append((found[0], "the record does not read back as a record"))
        if hidden:
            report.damaged += mark_damaged(self.store, hidden, self.events)
        return bool(hidden)

    def _pace(self, copied: int) -> None:
        if not self.rate:
            return
        self._copied_since += copied
        ahead = self._copied_since / self.rate - (self.clock.monotonic() - self._paced_from)
        if ahead > 0:
            self.clock.sleep(ahead)


def _mark_retiring(t: MetaTxn, sid: int) -> None:
    info = t.segments.info(sid)
    info["retiring"] = 1
    t.segments.put_info(sid, info)


def _retire(t: MetaTxn, sid: int, offsets: set[tuple[bytes, int]]) -> bool:
    """Turn a segment's record into a tombstone if nothing points into it any more."""
    for digest, offset in offsets:
        found = t.chunks.get(digest)
        if found is not None and (found[0].segment, found[0].offset) == (sid, offset):
            return False
    # The tombstone keeps refusing stale commits that name the segment (add_chunk).
    t.segments.put_info(sid, {"size": 0, "dead": 0, "retiring": 1, "retired": 1})
    t.dead.pop(sid, None)
    return True


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the command -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``compact`` command's arguments to ``parser``."""
    parser.add_argument("data_dir", metavar="DATA_DIR", help="the data directory")
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.3,
        help="dead fraction from which a segment is compacted",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=0.0,
        help="seconds released chunks and quiet segments are left alone "
        "(0 when no server runs; use the server's S4_COMPACTION_GRACE_SECS if one does)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


#: the exit status when a running server holds the background duties (sysexits' EX_TEMPFAIL)
EXIT_SERVER_RUNS = 75


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one pass over ``args.data_dir``; 0 on success, 1 if damage was found.

    A pass that changes anything first takes the duty lock
    (:class:`s4d.util.duties.DutyLock`) without waiting, so it never runs beside
    a server's own compaction: while a server holds the lock (whenever one
    runs on the directory) the command changes nothing and exits with
    :data:`EXIT_SERVER_RUNS`. The lock is a ``flock``, released when its
    holder ends however it ends, so a server that is not running never stands
    in the way. A dry run changes nothing and needs no lock.
    """
    out = out if out is not None else sys.stdout
    if not os.path.isdir(os.path.join(args.data_dir, "meta")):
        print(f"s4d compact: {args.data_dir}: no data directory", file=out)
        return 1
    duties = DutyLock(args.data_dir)
    if not args.dry_run and not duties.try_acquire():
        holder = duty_holder(args.data_dir)
        print(
            f"s4d compact: {args.data_dir}: a running server (pid {holder or 'unknown'}) holds "
            f"the background duties ({duty_lock_path(args.data_dir)}) and compacts this data "
            "directory itself; nothing was changed. Stop the server first, or ask it for a "
            "pass: POST /api/admin/compaction/run",
            file=sys.stderr,
        )
        return EXIT_SERVER_RUNS
    try:
        store = Store(StoreConfig(args.data_dir))
        try:
            report = Compactor(
                store, threshold=args.threshold, dry_run=args.dry_run, grace=args.grace
            ).run()
            stats = store_stats(store)
        finally:
            store.close()
    finally:
        duties.release()
    if args.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        print(report.summary(), file=out)
        for plan in report.segments:
            print(
                f"  segment {plan.segment:08d}: {plan.size} bytes, "
                f"{plan.dead_fraction:.0%} dead, {plan.live_records} live chunks "
                f"({plan.live_bytes} bytes), {plan.purge_records} to purge: {plan.outcome}",
                file=out,
            )
        for item in report.damaged:
            print(f"  damaged chunk {item.digest[:16]}: {item.reason}; keys: {item.keys}", file=out)
        print(render(stats), file=out)
    return 1 if report.damaged else 0
