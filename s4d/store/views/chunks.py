"""The ``chunks`` sub-database: the content-addressed chunk index and its reference counts."""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from s4d.errors import S3Error
from s4d.store.model import ChunkLocation
from s4d.store.records import HEADER_SIZE
from s4d.store.schema import CHUNK, CHUNK_FORMAT, RELEASED
from s4d.store.views.base import Tally, View
from s4d.store.views.damaged import DamagedView
from s4d.store.views.segments import SegmentsView


def record_size(length: int) -> int:
    """The bytes a record with a ``length``-byte payload takes in its segment."""
    return HEADER_SIZE + length


class ChunksView(View):
    """Chunk locations and reference counts, keyed by BLAKE3 digest.

    :param damaged: the damaged-chunk view (a damaged copy is replaced by a new one).
    :param segments: refuses chunks written to segments being retired.
    :param tally: where dead bytes and statistics changes are gathered.
    :param wall: the wall clock (Unix seconds), for the release stamp of chunks.
    """

    def __init__(
        self,
        txn: lmdb.Transaction[bytes],
        db: lmdb._Database,
        damaged: DamagedView,
        segments: SegmentsView,
        tally: Tally,
        wall: Callable[[], float],
    ) -> None:
        super().__init__(txn, db)
        self.damaged = damaged
        self.segments = segments
        self.tally = tally
        self.wall = wall

    def get(self, digest: bytes) -> tuple[ChunkLocation, int] | None:
        """A chunk's location and reference count, or None."""
        raw = self.txn.get(digest, db=self.db)
        if raw is None:
            return None
        _fmt, seg, off, length, size, flags, refs = CHUNK.unpack_from(raw)
        return ChunkLocation(digest, seg, off, length, size, flags), int(refs)

    def released_at(self, digest: bytes) -> int | None:
        """When a released chunk (no references) lost its last one (Unix seconds)."""
        raw = self.txn.get(digest, db=self.db)
        if raw is None or len(raw) < CHUNK.size + RELEASED.size:
            return None
        return int(RELEASED.unpack_from(raw, CHUNK.size)[0])

    def add(self, loc: ChunkLocation) -> bool:
        """Reference a chunk written at ``loc``.

        If the digest is already indexed the existing copy gains the reference,
        the bytes at ``loc`` become dead, and False is returned (unless the
        indexed copy is known to be damaged: then ``loc`` replaces it).
        A location in a segment that compaction is retiring is refused
        (``InternalError``): its file is about to go.
        """
        stats = self.tally.stats
        found = self.get(loc.digest)
        if found is not None:
            old, refs = found
            if (old.segment, old.offset) != (loc.segment, loc.offset) and self.damaged.contains(
                loc.digest
            ):
                self.segments.check_open(loc.segment)
                self._gain(old, refs)
                self.relocate(loc.digest, loc)
                self.damaged.clear(loc.digest)
                return True
            self._gain(old, refs)
            if (old.segment, old.offset) != (loc.segment, loc.offset):
                self.tally.dead[loc.segment] += record_size(loc.length)
            return False
        self.segments.check_open(loc.segment)
        self._put(loc, 1)
        stats[b"chunks"] += 1
        stats[b"refs"] += 1
        stats[b"unique_bytes"] += loc.size
        stats[b"stored_bytes"] += loc.length
        return True

    def relocate(self, digest: bytes, new: ChunkLocation) -> None:
        """Point an indexed chunk at a new copy of its record, keeping its references.

        The old record's bytes become dead (if they were live); a released chunk's
        new copy is dead from the start.
        """
        found = self.get(digest)
        if found is None:
            return
        old, refs = found
        released = self.released_at(digest) if refs == 0 else None
        if refs > 0:
            self.tally.dead[old.segment] += record_size(old.length)
            self.tally.stats[b"stored_bytes"] += new.length - old.length
        else:
            self.tally.dead[new.segment] += record_size(new.length)
            self.tally.stats[b"released_bytes"] += new.length - old.length
        self._put(new, refs, released)

    def purge(self, digest: bytes) -> bool:
        """Forget a released chunk (no references) whose bytes compaction reclaims."""
        found = self.get(digest)
        if found is None or found[1] != 0:
            return False
        self.txn.delete(digest, db=self.db)
        self.tally.stats[b"released_chunks"] -= 1
        self.tally.stats[b"released_bytes"] -= found[0].length
        return True

    def incref(self, digest: bytes) -> None:
        """Add a reference to an indexed chunk (``InternalError`` if it is gone)."""
        found = self.get(digest)
        if found is None:
            raise S3Error("InternalError", "A chunk this object needs is missing; retry.")
        self._gain(*found)

    def decref(self, digest: bytes) -> None:
        """Drop a reference; the last one leaves the chunk for compaction.

        A chunk without references keeps its index record (with zero references)
        until compaction reclaims its bytes, so that a concurrent upload of the
        same content, which skipped writing it, can still take a reference.
        """
        found = self.get(digest)
        if found is None:
            return
        loc, refs = found
        if refs <= 0:
            return
        stats = self.tally.stats
        stats[b"refs"] -= 1
        if refs == 1:
            self.tally.dead[loc.segment] += record_size(loc.length)
            stats[b"chunks"] -= 1
            stats[b"unique_bytes"] -= loc.size
            stats[b"stored_bytes"] -= loc.length
            stats[b"released_chunks"] += 1
            stats[b"released_bytes"] += loc.length
        self._put(loc, refs - 1)

    def _gain(self, loc: ChunkLocation, refs: int) -> None:
        stats = self.tally.stats
        if refs == 0:
            # A released chunk whose bytes compaction has not reclaimed yet: revive it.
            self.tally.dead[loc.segment] -= record_size(loc.length)
            stats[b"released_chunks"] -= 1
            stats[b"released_bytes"] -= loc.length
            stats[b"chunks"] += 1
            stats[b"unique_bytes"] += loc.size
            stats[b"stored_bytes"] += loc.length
        stats[b"refs"] += 1
        self._put(loc, refs + 1)

    def _put(self, loc: ChunkLocation, refs: int, released_at: int | None = None) -> None:
        """Write a chunk's index record as it is (tests use this to forge states)."""
        value = CHUNK.pack(
            CHUNK_FORMAT, loc.segment, loc.offset, loc.length, loc.size, loc.flags, refs
        )
        if refs == 0:
            # Compaction purges a released chunk only some time after its release
            # (an upload that deduplicated against it may still be on its way).
            stamp = int(self.wall()) if released_at is None else released_at
            value += RELEASED.pack(max(0, min(stamp, 0xFFFFFFFF)))
        self.txn.put(loc.digest, value, db=self.db)
