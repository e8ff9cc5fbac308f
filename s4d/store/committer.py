"""Group commit: many writers share one fdatasync and one LMDB transaction.

Writers append their chunk records to segments first, then hand the committer an
*operation*: a function that applies their metadata change to a
:class:`~s4d.store.txn.MetaTxn`. The committer thread takes every operation that
is waiting, ``fdatasync``\\ s each segment they touched, applies them all in one
write transaction (each in a nested transaction, so one failing operation does
not undo the others), commits with sync, and only then reports results. Metadata
therefore never points at bytes that are not on disk.

With a :class:`~s4d.store.durability.SharedDurability` (the store's, whenever it
fsyncs), the environment commits with ``MDB_NOMETASYNC``: the write
transaction is held only to apply the batch and sync its pages, and the
batch's results wait until its meta page is on disk. The applying thread
reports them after its next commit (whose page sync covers them) when another
batch is already waiting, and otherwise after an ``fdatasync`` shared with every
other process (:meth:`SharedDurability.wait`). A 200 still means data, then
metadata, on disk.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from s4d.store.chunks import storage_error
from s4d.store.clock import SYSTEM_CLOCK, Clock
from s4d.store.durability import SharedDurability
from s4d.store.schema import U64, Databases
from s4d.store.segments import SegmentSet
from s4d.store.txn import MetaTxn
from s4d.util.histogram import BATCH_BOUNDS, SYNC_BOUNDS, Histogram

Operation = Callable[[MetaTxn], Any]


@dataclass
class _Request:
    operation: Operation
    segments: frozenset[int]
    presynced: bool = False
    #: runs in the sync stage before the fdatasync; returns the segments it wrote to
    prepare: Callable[[], frozenset[int]] | None = None
    future: Future[Any] = field(default_factory=Future)


_STOP = object()
#: ``counters`` key written by every group commit (the transaction's own id), so that
#: no batch's transaction is empty: an empty one commits nothing and syncs nothing,
#: and its id would later name someone else's transaction.
BATCH_TXN_KEY = b"batch-txn"

_Results = list[tuple[_Request, Any, BaseException | None]]


class Committer:
    """The single writer of the metadata environment.

    :param inline: run each operation at once in the caller's thread (tests).
    :param max_batch: the most operations one transaction takes.
    :param durability: when given, the environment commits without syncing its
        meta page (``MDB_NOMETASYNC``) and results wait for this shared record to
        cover their transaction; without it every commit is synced (or, with
        ``fsync`` off, nothing is).
    """

    def __init__(
        self,
        dbs: Databases,
        segments: SegmentSet,
        inline: bool = False,
        max_batch: int = 1024,
        clock: Clock = SYSTEM_CLOCK,
        durability: SharedDurability | None = None,
    ) -> None:
        self.dbs = dbs
        self.durability = durability
        self.clock = clock
        self.segments = segments
        self.inline = inline
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._apply_thread: threading.Thread | None = None
        #: batches whose segment bytes are durable, waiting for their transaction
        self._synced: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: committed batches whose transaction is not yet known durable (applying thread only)
        self._pending: list[tuple[_Results, int, float]] = []
        #: whether the sync stage holds a batch it has not yet handed on (set after it
        #: takes one, cleared just before it hands it on, even a failed one, empty)
        self._sync_busy = False
        self.batches = 0
        self.operations = 0
        #: operations per committed transaction (written by the applying thread only)
        self.batch_sizes = Histogram(BATCH_BOUNDS)
        #: seconds from opening a batch's write transaction to its (synced) commit
        self.commit_seconds = Histogram(SYNC_BOUNDS)
        #: seconds from a batch's commit to its transaction being durable
        self.durable_seconds = Histogram(SYNC_BOUNDS)
        if not inline:
            self._thread = threading.Thread(target=self._run, name="s4d-sync", daemon=True)
            self._apply_thread = threading.Thread(
                target=self._apply_loop, name="s4d-committer", daemon=True
            )
            self._thread.start()
            self._apply_thread.start()

    def submit(
        self,
        operation: Operation,
        segments: frozenset[int] = frozenset(),
        presynced: bool = False,
        prepare: Callable[[], frozenset[int]] | None = None,
    ) -> Future[Any]:
        r"""Queue ``operation``; the future resolves once its effect is durable.

        ``segments`` are those holding bytes the operation references; the
        committer ``fdatasync``\ s them first unless ``presynced`` says the
        caller already did (writers sync their own appends in parallel, which
        keeps the fsync of segment data off the committer's critical path).
        ``prepare``, if given, runs in the committer's sync stage first: small
        writes append their bytes there, in the thread that syncs them, instead
        of paying a trip through a worker thread each.
        """
        request = _Request(operation, segments, presynced, prepare)
        if self.inline:
            self._commit([request])
        else:
            self._queue.put(request)
        return request.future

    def call(self, operation: Operation, segments: frozenset[int] = frozenset()) -> Any:
        """Submit and wait: for callers already in a worker thread."""
        return self.submit(operation, segments).result()

    def stop(self) -> None:
        """Finish what is queued, then stop the threads."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._apply_thread is not None:
            self._apply_thread.join()
            self._apply_thread = None

    def _run(self) -> None:
        """Stage one: gather waiting requests and make their segment bytes durable."""
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._synced.put(_STOP)
                return
            self._sync_busy = True
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                durable = self._sync(batch)
            except BaseException as e:  # noqa: BLE001 - the batch fails, the thread goes on
                self._fail(batch, e)
                batch, durable = [], {}
            # handed on even when empty: the applying thread may be waiting for it. The
            # flag drops first, so that a True it reads always has a batch to follow.
            self._sync_busy = False
            self._synced.put((batch, durable))
            if stop:
                self._synced.put(_STOP)
                return

    def _apply_loop(self) -> None:
        """Stage two: one LMDB transaction per synced batch (merging any that wait).

        Results of committed batches stay pending while another batch waits to
        be applied or is in the sync stage: its commit syncs its pages after
        their meta page was written, so it makes them durable without an
        ``fdatasync`` of their own. Once neither stage holds a batch, the
        pending ones are made durable at once.
        """
        while True:
            if self._pending:
                try:
                    item = (self._synced.get if self._sync_busy else self._synced.get_nowait)()
                except queue.Empty:
                    self._flush_pending()
                    continue
            else:
                item = self._synced.get()
            if item is _STOP:
                self._flush_pending()
                return
            batch, durable = item
            stop = False
            while True:
                try:
                    more = self._synced.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch = batch + more[0]
                for sid, size in more[1].items():
                    durable[sid] = max(durable.get(sid, 0), size)
            self._apply(batch, durable)
            if stop:
                self._flush_pending()
                return

    def _sync(self, batch: list[_Request]) -> dict[int, int]:
        for request in batch:
            if request.prepare is not None:
                try:
                    request.segments = request.segments | request.prepare()
                except BaseException as e:  # noqa: BLE001 - reported to that caller
                    request.future.set_exception(e)
        batch[:] = [r for r in batch if not r.future.done()]
        touched: set[int] = set()
        known: set[int] = set()
        for request in batch:
            (known if request.presynced else touched).update(request.segments)
        durable = self.segments.sync(touched) if touched else {}
        for sid in known - touched:
            durable[sid] = self.segments.file(sid).synced
        return durable

    @staticmethod
    def _fail(batch: list[_Request], error: BaseException) -> None:
        error = storage_error(error)
        for request in batch:
            if not request.future.done():
                request.future.set_exception(error)

    def _commit(self, batch: list[_Request]) -> None:
        """Sync and apply one batch in the calling thread (inline mode)."""
        try:
            durable = self._sync(batch)
        except BaseException as e:  # noqa: BLE001 - reported to every caller
            self._fail(batch, e)
            return
        self._apply(batch, durable)

    def _apply(self, batch: list[_Request], durable: dict[int, int]) -> None:
        """Apply ``batch`` in one write transaction, then report (once durable)."""
        if not batch and not durable:
            return
        results: _Results = []
        started = self.clock.monotonic()
        try:
            with self.dbs.env.begin(write=True) as txn:
                txnid = txn.id()
                # Statistics of every operation that succeeds are written once, below.
                batch_stats: defaultdict[bytes, int] = defaultdict(int)
                for request in batch:
                    child = self.dbs.env.begin(write=True, parent=txn)
                    meta = MetaTxn(self.dbs, child, self.clock)
                    meta.stats_sink = batch_stats
                    try:
                        value = request.operation(meta)
                        meta.flush()
                    except BaseException as e:  # noqa: BLE001 - reported to the caller
                        child.abort()
                        results.append((request, None, e))
                    else:
                        child.commit()
                        results.append((request, value, None))
                outer = MetaTxn(self.dbs, txn, self.clock)
                outer.stats.update(batch_stats)
                outer.flush(durable)
                if self.durability is not None:
                    txn.put(BATCH_TXN_KEY, U64.pack(txnid), db=self.dbs.counters)
        except BaseException as e:  # noqa: BLE001 - the whole batch failed
            error = storage_error(e, self.dbs.env.path())
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        committed = self.clock.monotonic()
        self.commit_seconds.observe(committed - started)
        self.batch_sizes.observe(len(batch))
        self.batches += 1
        self.operations += len(batch)
        if self.durability is None:
            self._report(results)
            return
        self.durability.committed(txnid)
        entry = (results, txnid, committed)
        if self.inline:
            self._make_durable([entry])
            return
        # this commit synced its pages after every pending batch's meta page
        covered: list[tuple[_Results, int, float]] = []
        waiting: list[tuple[_Results, int, float]] = []
        for pending in self._pending:
            (covered if self.durability.covered(pending[1]) else waiting).append(pending)
        waiting.append(entry)
        self._pending = waiting
        if covered:
            self._report_durable(covered)

    def _flush_pending(self) -> None:
        """Make every pending batch durable now and report it (nothing else will cover it)."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._make_durable(pending)

    def _make_durable(self, waiting: list[tuple[_Results, int, float]]) -> None:
        assert self.durability is not None
        try:
            self.durability.wait(max(txnid for _, txnid, _ in waiting))
        except BaseException as e:  # noqa: BLE001 - reported to every caller
            error = storage_error(e, self.dbs.env.path())
            for results, _, _ in waiting:
                for request, _, _ in results:
                    if not request.future.done():
                        request.future.set_exception(error)
            return
        self._report_durable(waiting)

    def _report_durable(self, waiting: list[tuple[_Results, int, float]]) -> None:
        now = self.clock.monotonic()
        for results, _, committed in waiting:
            self.durable_seconds.observe(now - committed)
            self._report(results)

    @staticmethod
    def _report(results: _Results) -> None:
        for request, value, failure in results:
            if failure is not None:
                request.future.set_exception(failure)
            else:
                request.future.set_result(value)
