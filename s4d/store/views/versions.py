"""The ``versions`` sub-database: every version record of every object, newest first."""

from __future__ import annotations

import lmdb

from s4d.store.model import ListedVersion, ObjectVersion
from s4d.store.schema import u64, version_key
from s4d.store.version_record import decode_version, encode_version, listed_version
from s4d.store.views.base import Tally, View
from s4d.store.views.chunks import ChunksView
from s4d.store.views.counters import CountersView

#: What listings showed of recently listed version records, by the records' stored bytes:
#: equal bytes decode to the same row, so a page listed again skips decoding its records.
_listed: dict[bytes, ListedVersion | None] = {}
_UNKNOWN = object()
#: records remembered per process (about 300 bytes each); all are forgotten when full
LISTED_KEPT = 20_000


class VersionsView(View):
    """Version records keyed by object id and inverted sequence number.

    :param chunks: releases the chunks of deleted versions.
    :param counters: allocates sequence numbers for moved versions.
    :param tally: where statistics changes are gathered.
    """

    def __init__(
        self,
        txn: lmdb.Transaction[bytes],
        db: lmdb._Database,
        chunks: ChunksView,
        counters: CountersView,
        tally: Tally,
    ) -> None:
        super().__init__(txn, db)
        self.chunks = chunks
        self.counters = counters
        self.tally = tally

    def all(self, object_id: int, key: str = "") -> list[ObjectVersion]:
        """Every version of an object, newest first."""
        prefix = u64(object_id)
        cursor = self.cursor()
        found = []
        if cursor.set_range(prefix):
            for k, v in cursor:
                if not k.startswith(prefix):
                    break
                found.append(decode_version(v, key))
        return found

    def current(
        self,
        object_id: int,
        key: str = "",
        cursor: lmdb.Cursor[bytes] | None = None,
        chunks: bool = True,
    ) -> ObjectVersion | None:
        """The newest version of an object (possibly a delete marker), or None.

        Listings pass their own ``cursor`` (reused across keys) and ``chunks=False``.
        """
        prefix = u64(object_id)
        if cursor is None:
            cursor = self.cursor()
        if cursor.set_range(prefix) and cursor.key().startswith(prefix):
            return decode_version(cursor.value(), key, chunks)
        return None

    def current_listed(self, object_id: int, cursor: lmdb.Cursor[bytes]) -> ListedVersion | None:
        """What a key listing shows of an object's newest version (None: none, or a delete marker).

        See :meth:`ObjectVersion.listed`; ``cursor`` is the listing's own, reused across keys.
        """
        prefix = u64(object_id)
        if not (cursor.set_range(prefix) and cursor.key()[:8] == prefix):
            return None
        stored = cursor.value()
        listed = _listed.get(stored, _UNKNOWN)
        if listed is _UNKNOWN:
            listed = listed_version(stored)
            if len(_listed) >= LISTED_KEPT:
                _listed.clear()
            _listed[stored] = listed
        return listed  # type: ignore[return-value]

    def put(self, object_id: int, version: ObjectVersion) -> None:
        """Store one version record."""
        old = self.txn.replace(
            version_key(object_id, version.seq), encode_version(version), db=self.db
        )
        if old is not None:
            self.count(decode_version(old, chunks=False), -1)
        self.count(version, 1)

    def delete(self, object_id: int, version: ObjectVersion) -> None:
        """Remove one version record and release its chunks."""
        if self.txn.delete(version_key(object_id, version.seq), db=self.db):
            self.count(version, -1)
        for chunk in version.chunks:
            self.chunks.decref(chunk.digest)

    def move(self, from_id: int, to_id: int, versions: list[ObjectVersion]) -> None:
        """Re-file ``versions`` of object ``from_id`` under ``to_id``, above its own.

        Each gets a fresh sequence number (oldest first, so their order is
        kept); chunk references move with them unchanged.
        """
        for version in sorted(versions, key=lambda v: v.seq):
            if self.txn.delete(version_key(from_id, version.seq), db=self.db):
                self.count(version, -1)
            version.seq = self.counters.next_id(b"seq")
            self.put(to_id, version)

    def count(self, version: ObjectVersion, sign: int) -> None:
        """Adjust the statistics for a version record that appears (1) or goes (-1)."""
        stats = self.tally.stats
        if version.delete_marker:
            stats[b"delete_markers"] += sign
        else:
            stats[b"objects"] += sign
            stats[b"logical_bytes"] += sign * version.size
