"""The store: one data directory's segments, metadata and committer, composed.

Every method blocks; :mod:`s4d.engine` calls them from worker threads.

Layout of a data directory::

    meta/        the LMDB environment
    segments/    NNNNNNNN.seg append-only segment files
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lmdb

from s4d.errors import S3Error
from s4d.store import stats
from s4d.store.chunks import DEFAULT_CHUNK_SIZE, ChunkStore, WrittenChunk, storage_error
from s4d.store.clock import SYSTEM_CLOCK, Clock
from s4d.store.committer import Committer, Operation
from s4d.store.durability import SharedDurability
from s4d.store.eventlog import NULL_EVENT_LOG, EventLog
from s4d.store.model import ChunkLocation, ChunkRef, InlineLocation
from s4d.store.records import CorruptRecord
from s4d.store.schema import CHUNK, Databases, open_environment
from s4d.store.segments import SegmentSet
from s4d.store.snapshot import ReadSnapshot
from s4d.store.txn import MetaTxn


@dataclass(frozen=True)
class StoreConfig:
    """What the store needs to know about its data directory."""

    data_dir: str
    segment_size: int = 1 << 30
    chunk_size: int = DEFAULT_CHUNK_SIZE
    map_size: int = 64 << 30
    compression: str = "off"
    compression_level: int = 3
    fsync: bool = True


@dataclass(frozen=True)
class RecoveryReport:
    """What opening the store found beyond the committed end of each segment."""

    orphan_bytes: dict[int, int]


class Store:
    """A data directory, open for reading and writing.

    :param config: the data directory and its settings.
    :param inline_commit: run commits in the caller's thread (tests).
    :param clock: the wall and monotonic clocks every part of the store reads.
    :param events: where the store and its maintenance (compaction, scrub) log.
    """

    def __init__(
        self,
        config: StoreConfig,
        inline_commit: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        events: EventLog = NULL_EVENT_LOG,
    ) -> None:
        self.config = config
        self.clock = clock
        self.events = events
        os.makedirs(config.data_dir, exist_ok=True)
        meta_dir = os.path.join(config.data_dir, "meta")
        os.makedirs(meta_dir, exist_ok=True)
        self.env = open_environment(meta_dir, config.map_size, sync=config.fsync)
        try:
            self.dbs = Databases(self.env)  # upgrades the schema, or refuses a newer one
        except BaseException:
            self.env.close()
            raise
        self.segments = SegmentSet(
            os.path.join(config.data_dir, "segments"),
            config.segment_size,
            self._new_segment_id,
            clock.monotonic,
        )
        if not config.fsync:
            self.segments.sync = self._sizes_unsynced  # type: ignore[method-assign]
        self.recovery = self._recover()
        stats.ensure(self.env, self.dbs)
        self.chunks = ChunkStore(
            self.segments, self._chunk_exists, config.compression, config.compression_level
        )
        self.durability: SharedDurability | None = None
        if config.fsync:
            # The set-up writes above (schema, recovery, statistics) were not synced.
            self.env.sync(True)
            self.durability = SharedDurability(
                meta_dir, lambda: self.env.sync(True), lambda: int(self.env.info()["last_txnid"])
            )
        self.committer = Committer(
            self.dbs,
            self.segments,
            inline=inline_commit,
            clock=clock,
            durability=self.durability,
        )
        #: the read transaction shared by the small reads of the thread that opened the
        #: store (the reactor's); see :mod:`s4d.store.snapshot`
        self.snapshots = ReadSnapshot(self.env, self.meta)

    # -- transactions ----------------------------------------------------------

    def meta(self, txn: lmdb.Transaction[bytes]) -> MetaTxn:
        """The views of ``txn``, an LMDB transaction on this store's environment."""
        return MetaTxn(self.dbs, txn, self.clock)

    @contextmanager
    def read(self) -> Iterator[MetaTxn]:
        """A short read-only transaction. Never hold it across a yield."""
        with self.env.begin() as txn:
            yield self.meta(txn)

    def snapshot(self) -> MetaTxn | None:
        """The shared read transaction, as fresh as a new one (None off the store's thread).

        For short reads on the thread that opened the store; valid until the caller
        returns to the event loop (see :class:`~s4d.store.snapshot.ReadSnapshot`).
        """
        return self.snapshots.current()

    def submit(
        self,
        operation: Operation,
        segments: frozenset[int] = frozenset(),
        presynced: bool = False,
        prepare: Callable[[], frozenset[int]] | None = None,
    ) -> Future[Any]:
        """Queue a metadata change for the next group commit (see :class:`Committer`)."""
        return self.committer.submit(operation, segments, presynced, prepare)

    def sync_chunks(self, chunks: list[WrittenChunk]) -> None:
        """Make the records of ``chunks`` durable (from a writer's own thread)."""
        touched = {c.location.segment for c in chunks if c.location is not None}
        if touched:
            self.segments.sync(touched)

    def commit(self, operation: Operation, segments: frozenset[int] = frozenset()) -> Any:
        """Queue a metadata change and wait for it to be durable."""
        return self.committer.call(operation, segments)

    # -- chunks ------------------------------------------------------------------

    def put_chunk(self, data: bytes) -> WrittenChunk:
        """Store one chunk (deduplicated); durable only once a commit names it."""
        return self.chunks.put(data)

    def put_chunk_pieces(self, pieces: Sequence[bytes | memoryview]) -> WrittenChunk:
        """Store one chunk given as buffers end to end (written without joining them)."""
        return self.chunks.put_pieces(pieces)

    def open_chunk(self, loc: ChunkLocation) -> tuple[int, int] | None:
        """A checked descriptor to send an uncompressed chunk from, and its bytes' offset.

        For ``sendfile``; the caller closes the descriptor. None when the chunk
        is compressed or anything is amiss: :meth:`read_chunk` then reads it,
        with its retries and its record of damage (and for inline bytes, which
        have no file).
        """
        if isinstance(loc, InlineLocation):
            return None
        try:
            return self.chunks.open_plain(loc)
        except (OSError, CorruptRecord):
            return None

    def read_chunk(self, loc: ChunkLocation) -> bytes:
        """Read one chunk, checked; raises ``CorruptRecord`` if damaged.

        A location looked up before compaction moved the chunk may point into a
        file that is gone (or a descriptor that was closed): on such a failure
        the chunk is looked up again and, if it moved, read from its new place.
        A chunk that fails its checks where the index still puts it is recorded
        as damaged (reads of its objects then fail early) and never returned; the
        record is committed before this raises. Never call it from the committer's
        own threads.
        """
        if isinstance(loc, InlineLocation):
            return loc.data
        try:
            return self.chunks.get(loc)
        except (OSError, CorruptRecord) as first:
            with self.read() as t:
                found = t.chunks.get(loc.digest)
            if found is not None and (found[0].segment, found[0].offset) != (
                loc.segment,
                loc.offset,
            ):
                return self.chunks.get(found[0])
            if isinstance(first, CorruptRecord) and found is not None:
                # Recorded before the failure is reported, so that the client's next
                # read of the object is refused up front, whatever the load.
                marked = self.report_damaged(found[0], str(first))
                with contextlib.suppress(Exception):
                    marked.result()
            raise

    def read_chunk_cached(self, loc: ChunkLocation) -> bytes | None:
        """One chunk, checked, if it is in the page cache; None if reading it would wait.

        Raises as :meth:`ChunkStore.get` does; callers that get an error retry
        with :meth:`read_chunk`, which finds a moved chunk and reports a damaged one.
        Inline bytes are in the version record already.
        """
        if isinstance(loc, InlineLocation):
            return loc.data
        return self.chunks.get_cached(loc)

    def report_damaged(self, loc: ChunkLocation, reason: str) -> Future[Any]:
        """Record that the chunk at ``loc`` is corrupt (if the index still points there)."""
        info = {"seg": loc.segment, "off": loc.offset, "why": reason, "t": int(self.clock.wall())}

        def mark(t: MetaTxn) -> bool:
            found = t.chunks.get(loc.digest)
            if found is None or (found[0].segment, found[0].offset) != (loc.segment, loc.offset):
                return False
            return t.damaged.mark(loc.digest, info)

        return self.submit(mark)

    def locate(
        self, t: MetaTxn, refs: list[ChunkRef], inline: bytes | None = None
    ) -> list[ChunkLocation]:
        """Where each chunk of ``refs`` lives (``InternalError`` if one is missing).

        A version's ``inline`` bytes (then ``refs`` is empty) are one :class:`InlineLocation`.
        """
        if inline is not None:
            return [InlineLocation.of(inline)]
        found = []
        for ref in refs:
            entry = t.chunks.get(ref.digest)
            if entry is None:
                raise S3Error("InternalError", "Object data is missing from the chunk index.")
            if t.damaged.contains(ref.digest):
                raise S3Error(
                    "InternalError",
                    "The object's data is damaged (a chunk failed its checksum); it is not served.",
                )
            found.append(entry[0])
        return found

    def _chunk_exists(self, digest: bytes) -> bool:
        # A damaged chunk is written again: the new copy replaces it (MetaTxn.add_chunk).
        # So is a released one (no references): compaction may purge its entry before
        # this upload commits, and the commit would then find nothing to reference.
        with self.env.begin() as txn:
            raw = txn.get(digest, db=self.dbs.chunks)
            return (
                raw is not None
                and CHUNK.unpack_from(raw)[-1] > 0
                and txn.get(digest, db=self.dbs.damaged) is None
            )

    # -- lifecycle -----------------------------------------------------------------

    def _sizes_unsynced(self, segment_ids: set[int]) -> dict[int, int]:
        """``SegmentSet.sync`` without fsync (``fsync=False``): sizes only."""
        sizes = {}
        for sid in segment_ids:
            try:
                sizes[sid] = self.segments.file(sid).size
            except FileNotFoundError:
                sizes[sid] = 0  # compacted away; the commit naming it is refused
        return sizes

    def _new_segment_id(self) -> int:
        try:
            with self.env.begin(write=True) as txn:
                sid = self.meta(txn).counters.next_id(b"segment")
            if self.config.fsync:
                self.env.sync(True)  # never hand out an id a crash could hand out again
            return sid
        except lmdb.Error as e:
            # A rotation on a full disk: StorageFull, like the append that needed it.
            raise storage_error(e, self.env.path()) from e

    def _recover(self) -> RecoveryReport:
        """Count bytes past each segment's committed end as garbage; pick the active one.

        Nothing is rebuilt: LMDB is the source of truth. Bytes written after the
        last commit that covered them belong to no object and are left for
        compaction.
        """
        orphans: dict[int, int] = {}
        ids = self.segments.segment_ids()
        with self.env.begin(write=True) as txn:
            t = self.meta(txn)
            for sid in ids:
                info = t.segments.info(sid)
                size = os.path.getsize(self.segments.path(sid))
                extra = size - info.get("size", 0)
                if extra > 0:
                    orphans[sid] = extra
                    info["dead"] = info.get("dead", 0) + extra
                    info["size"] = size
                    t.segments.put_info(sid, info)
            last = t.segments.info(ids[-1]) if ids else {}
        if ids and not last.get("retiring"):
            self.segments.adopt_active(ids[-1])
        return RecoveryReport(orphans)

    def close(self) -> None:
        """Finish pending commits and close everything."""
        self.committer.stop()
        self.snapshots.release()
        self.segments.close()
        if self.durability is not None:
            self.durability.close()
        self.env.close()
