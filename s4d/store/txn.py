"""Typed access to one LMDB transaction: buckets, the namespace tree, versions, chunks.

:class:`MetaTxn` is the store interface that :mod:`s4d.features` rules are written
against. It never commits or aborts; whoever opened the transaction does.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import lmdb

from s4d.errors import S3Error
from s4d.store import codec
from s4d.store.model import Bucket, ChunkLocation, MultipartUpload, ObjectVersion, PartRecord
from s4d.store.schema import (
    CHUNK,
    CHUNK_FORMAT,
    ENTRY_CONT,
    ENTRY_DIR,
    ENTRY_OBJECT,
    NAME_PIECE,
    RELEASED,
    U16,
    U32,
    U64,
    UPLOAD_INDEX,
    Databases,
    part_key,
    part_prefix,
    u64,
    upload_bucket_prefix,
    upload_group,
    upload_key,
    upload_seek,
    version_key,
)


def split_name(name: bytes) -> list[bytes]:
    """Split one key component into entry names of at most :data:`NAME_PIECE` bytes.

    Every piece but the last is a continuation (exactly ``NAME_PIECE`` bytes, no
    trailing ``/``); a component that is a directory name of exactly
    ``NAME_PIECE`` bytes (ending in ``/``) stays whole. A leaf of exactly
    ``NAME_PIECE`` bytes becomes a continuation and an empty leaf.
    """
    pieces = []
    while len(name) >= NAME_PIECE and name[NAME_PIECE - 1 : NAME_PIECE] != b"/":
        pieces.append(name[:NAME_PIECE])
        name = name[NAME_PIECE:]
    pieces.append(name)
    return pieces


def split_key(key: bytes) -> tuple[list[bytes], bytes]:
    """Split a key into the names of the entries on its path and its leaf name.

    Path names are directories (ending in ``/``) and continuations (see
    :mod:`s4d.store.schema`); the leaf is the object entry's name. The key is
    their concatenation.
    """
    parts = key.split(b"/")
    path: list[bytes] = []
    for part in parts[:-1]:
        path.extend(split_name(part + b"/"))
    *continued, leaf = split_name(parts[-1])
    path.extend(continued)
    return path, leaf


def path_kind(name: bytes) -> bytes:
    """The entry kind of a path name: a directory if it ends in ``/``, else a continuation."""
    return ENTRY_DIR if name.endswith(b"/") else ENTRY_CONT


def entry_bound(raw: bytes) -> int | None:
    """A directory entry's length bound (see :mod:`s4d.store.schema`), or None if it has none."""
    return U16.unpack_from(raw, 9)[0] if len(raw) >= 11 else None


def dir_entry(kind: bytes, dir_id: int, bound: int | None) -> bytes:
    """The stored value of a directory or continuation entry."""
    value = kind + u64(dir_id)
    return value if bound is None else value + U16.pack(bound)


class MetaTxn:
    """Helpers over one open LMDB transaction."""

    def __init__(self, dbs: Databases, txn: lmdb.Transaction) -> None:
        self.dbs = dbs
        self.txn = txn
        #: dead bytes per segment released in this transaction, flushed by :meth:`flush`
        self.dead: dict[int, int] = defaultdict(int)
        #: changes to the statistics (s4d.store.stats) made here, flushed by :meth:`flush`
        self.stats: dict[bytes, int] = defaultdict(int)
        #: where :meth:`flush` adds the statistics instead of writing them (or None)
        self.stats_sink: dict[bytes, int] | None = None
        self._retiring: dict[int, bool] = {}

    # -- counters ------------------------------------------------------------------

    def next_id(self, counter: bytes) -> int:
        """Allocate the next value of a named counter (starting at 1)."""
        raw = self.txn.get(counter, db=self.dbs.counters)
        value = (U64.unpack(raw)[0] if raw else 0) + 1
        self.txn.put(counter, u64(value), db=self.dbs.counters)
        return value

    # -- buckets -------------------------------------------------------------------

    def bucket(self, name: str) -> Bucket | None:
        """The bucket called ``name``, or None."""
        raw = self.txn.get(name.encode(), db=self.dbs.buckets)
        return Bucket.decode(name, codec.decode(raw)) if raw is not None else None

    def require_bucket(self, name: str) -> Bucket:
        """The bucket called ``name``; ``NoSuchBucket`` if there is none."""
        bucket = self.bucket(name)
        if bucket is None:
            raise S3Error("NoSuchBucket", BucketName=name)
        return bucket

    def put_bucket(self, bucket: Bucket) -> None:
        """Store a bucket record."""
        self.txn.put(bucket.name.encode(), codec.encode(bucket.encode()), db=self.dbs.buckets)

    def delete_bucket(self, bucket: Bucket) -> None:
        """Remove a bucket record and its configuration."""
        self.txn.delete(bucket.name.encode(), db=self.dbs.buckets)
        prefix = u64(bucket.bucket_id)
        cursor = self.txn.cursor(db=self.dbs.bconf)
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break

    def buckets(self) -> list[Bucket]:
        """Every bucket, by name."""
        cursor = self.txn.cursor(db=self.dbs.buckets)
        return [Bucket.decode(k.decode(), codec.decode(v)) for k, v in cursor]

    def bucket_is_empty(self, bucket: Bucket) -> bool:
        """True when the bucket holds no key (not even a delete marker)."""
        prefix = u64(bucket.root_dir)
        cursor = self.txn.cursor(db=self.dbs.ns)
        return not (cursor.set_range(prefix) and cursor.key().startswith(prefix))

    def get_bucket_config(self, bucket: Bucket, name: bytes) -> bytes | None:
        """A bucket's stored configuration document ``name``."""
        return self.txn.get(u64(bucket.bucket_id) + name, db=self.dbs.bconf)

    def put_bucket_config(self, bucket: Bucket, name: bytes, value: bytes | None) -> None:
        """Store (or with None, delete) a bucket configuration document."""
        key = u64(bucket.bucket_id) + name
        if value is None:
            self.txn.delete(key, db=self.dbs.bconf)
        else:
            self.txn.put(key, value, db=self.dbs.bconf)

    # -- namespace -----------------------------------------------------------------

    def entry(self, dir_id: int, name: bytes) -> tuple[bytes, int] | None:
        """The entry ``name`` in directory ``dir_id`` as (kind, id), or None."""
        raw = self.txn.get(u64(dir_id) + name, db=self.dbs.ns)
        if raw is None:
            return None
        return raw[:1], U64.unpack_from(raw, 1)[0]

    def resolve_dirs(self, root: int, dirs: list[bytes]) -> list[int] | None:
        """Ids of the directory chain ``root/dirs...``; None if any is missing.

        ``dirs`` are path names from :func:`split_key` (directories and continuations).
        """
        chain = [root]
        for name in dirs:
            found = self.entry(chain[-1], name)
            if found is None or found[0] != path_kind(name):
                return None
            chain.append(found[1])
        return chain

    def lookup(self, bucket: Bucket, key: bytes) -> int | None:
        """The object id stored under ``key``, or None."""
        dirs, leaf = split_key(key)
        chain = self.resolve_dirs(bucket.root_dir, dirs)
        if chain is None:
            return None
        found = self.entry(chain[-1], leaf)
        if found is None or found[0] != ENTRY_OBJECT:
            return None
        return found[1]

    def link(self, bucket: Bucket, key: bytes, object_id: int) -> None:
        """Point ``key`` at ``object_id``, creating directories as needed."""
        dirs, leaf = split_key(key)
        dir_id = self.make_dirs(bucket.root_dir, dirs, len(key))
        self.txn.put(u64(dir_id) + leaf, ENTRY_OBJECT + u64(object_id), db=self.dbs.ns)

    def make_dirs(self, root: int, dirs: list[bytes], length: int) -> int:
        """The id of directory ``root/dirs...``, creating what is missing.

        ``length`` is the length of the longest key about to be placed below
        it: every length bound on the way is raised to cover it, and new
        entries get exact ones.
        """
        dir_id = root
        rest = length
        for name in dirs:
            rest -= len(name)
            k = u64(dir_id) + name
            raw = self.txn.get(k, db=self.dbs.ns)
            if raw is None:
                new_id = self.next_id(b"dir")
                self.txn.put(k, dir_entry(path_kind(name), new_id, rest), db=self.dbs.ns)
                dir_id = new_id
                continue
            dir_id = U64.unpack_from(raw, 1)[0]
            bound = entry_bound(raw)
            if bound is not None and bound < rest:
                self.txn.put(k, raw[:9] + U16.pack(rest), db=self.dbs.ns)
        return dir_id

    def unlink(self, bucket: Bucket, key: bytes) -> None:
        """Remove ``key``'s entry and every directory it leaves empty."""
        dirs, leaf = split_key(key)
        chain = self.resolve_dirs(bucket.root_dir, dirs)
        if chain is None:
            return
        self.txn.delete(u64(chain[-1]) + leaf, db=self.dbs.ns)
        for depth in range(len(dirs), 0, -1):
            if not self.dir_is_empty(chain[depth]):
                break
            self.txn.delete(u64(chain[depth - 1]) + dirs[depth - 1], db=self.dbs.ns)

    def dir_is_empty(self, dir_id: int) -> bool:
        """True when directory ``dir_id`` has no entries."""
        prefix = u64(dir_id)
        cursor = self.txn.cursor(db=self.dbs.ns)
        return not (cursor.set_range(prefix) and cursor.key().startswith(prefix))

    # -- moving entries (renames) ----------------------------------------------------

    def entry_value(self, dir_id: int, name: bytes) -> bytes | None:
        """The raw stored value of entry ``name`` in directory ``dir_id``."""
        raw = self.txn.get(u64(dir_id) + name, db=self.dbs.ns)
        return bytes(raw) if raw is not None else None

    def put_entry(self, dir_id: int, name: bytes, value: bytes) -> None:
        """Store entry ``name`` in directory ``dir_id`` with a raw value."""
        self.txn.put(u64(dir_id) + name, value, db=self.dbs.ns)

    def remove_entry(self, dir_id: int, name: bytes) -> None:
        """Delete entry ``name`` of directory ``dir_id`` (nothing else)."""
        self.txn.delete(u64(dir_id) + name, db=self.dbs.ns)

    def entries(self, dir_id: int, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` of a directory's first entries as (name, raw value)."""
        prefix = u64(dir_id)
        cursor = self.txn.cursor(db=self.dbs.ns)
        found: list[tuple[bytes, bytes]] = []
        if not cursor.set_range(prefix):
            return found
        for k, v in cursor:
            if not k.startswith(prefix) or len(found) >= limit:
                break
            found.append((bytes(k[8:]), bytes(v)))
        return found

    def detach(self, root: int, path: list[bytes]) -> bytes | None:
        """Remove the entry at the end of ``path`` (entry names from :func:`split_key`).

        Directories left empty on the way are removed, as :meth:`unlink` does.
        Returns the removed entry's raw value (its subtree stays intact, reachable
        through nothing until :meth:`attach` puts it somewhere), or None if the
        path does not exist.
        """
        chain = self.resolve_dirs(root, path[:-1])
        if chain is None:
            return None
        value = self.entry_value(chain[-1], path[-1])
        if value is None or value[:1] != path_kind(path[-1]):
            return None
        self.remove_entry(chain[-1], path[-1])
        dirs = path[:-1]
        for depth in range(len(dirs), 0, -1):
            if not self.dir_is_empty(chain[depth]):
                break
            self.remove_entry(chain[depth - 1], dirs[depth - 1])
        return value

    def attach(self, root: int, path: list[bytes], value: bytes, length: int) -> None:
        """Insert an entry (a raw value from :meth:`detach`) at the end of ``path``.

        ``length`` is the longest key the entry brings, measured from ``root``;
        directories on the way are created and their length bounds raised.
        """
        parent = self.make_dirs(root, path[:-1], length)
        self.put_entry(parent, path[-1], value)

    def longest_below(self, dir_id: int) -> int:
        """The length of the longest key below ``dir_id``, relative to it (0 if none).

        Visits every entry of the subtree (names only, no version record): for
        entries that have no length bound yet.
        """
        longest = 0
        stack = [(dir_id, 0)]
        while stack:
            current, base = stack.pop()
            prefix = u64(current)
            cursor = self.txn.cursor(db=self.dbs.ns)
            if not cursor.set_range(prefix):
                continue
            for k, v in cursor:
                if not k.startswith(prefix):
                    break
                length = base + len(k) - 8
                if v[:1] == ENTRY_OBJECT:
                    longest = max(longest, length)
                else:
                    stack.append((U64.unpack_from(v, 1)[0], length))
        return longest

    def move_versions(self, from_id: int, to_id: int, versions: list[ObjectVersion]) -> None:
        """Re-file ``versions`` of object ``from_id`` under ``to_id``, above its own.

        Each gets a fresh sequence number (oldest first, so their order is
        kept); chunk references move with them unchanged.
        """
        for version in sorted(versions, key=lambda v: v.seq):
            if self.txn.delete(version_key(from_id, version.seq), db=self.dbs.versions):
                self.count_version(version, -1)
            version.seq = self.next_id(b"seq")
            self.put_version(to_id, version)

    # -- client tokens (idempotent requests) -----------------------------------------

    def client_token(self, token: bytes) -> dict[str, Any] | None:
        """The record kept for an idempotency token, or None."""
        raw = self.txn.get(b"K" + token, db=self.dbs.tokens)
        return codec.decode(raw) if raw is not None else None  # type: ignore[no-any-return]

    def put_client_token(self, token: bytes, record: dict[str, Any], now_ns: int) -> None:
        """Remember ``token`` (with ``record``) as used at ``now_ns``."""
        old = self.client_token(token)
        if old is not None:
            self.txn.delete(b"T" + u64(old["t"]) + token, db=self.dbs.tokens)
        self.txn.put(b"K" + token, codec.encode({**record, "t": now_ns}), db=self.dbs.tokens)
        self.txn.put(b"T" + u64(now_ns) + token, b"", db=self.dbs.tokens)

    def expire_client_tokens(self, before_ns: int, limit: int) -> int:
        """Forget up to ``limit`` tokens used before ``before_ns``; return how many went."""
        cursor = self.txn.cursor(db=self.dbs.tokens)
        doomed: list[bytes] = []
        if cursor.set_range(b"T"):
            for k in cursor.iternext(values=False):
                if not k.startswith(b"T") or len(doomed) >= limit:
                    break
                if U64.unpack_from(k, 1)[0] >= before_ns:
                    break
                doomed.append(bytes(k))
        for k in doomed:
            self.txn.delete(k, db=self.dbs.tokens)
            self.txn.delete(b"K" + k[9:], db=self.dbs.tokens)
        return len(doomed)

    # -- versions ------------------------------------------------------------------

    def versions(self, object_id: int, key: str = "") -> list[ObjectVersion]:
        """Every version of an object, newest first."""
        prefix = u64(object_id)
        cursor = self.txn.cursor(db=self.dbs.versions)
        found = []
        if cursor.set_range(prefix):
            for k, v in cursor:
                if not k.startswith(prefix):
                    break
                found.append(ObjectVersion.decode(codec.decode(v), key))
        return found

    def current(
        self, object_id: int, key: str = "", cursor: lmdb.Cursor | None = None, chunks: bool = True
    ) -> ObjectVersion | None:
        """The newest version of an object (possibly a delete marker), or None.

        Listings pass their own ``cursor`` (reused across keys) and ``chunks=False``.
        """
        prefix = u64(object_id)
        if cursor is None:
            cursor = self.txn.cursor(db=self.dbs.versions)
        if cursor.set_range(prefix) and cursor.key().startswith(prefix):
            return ObjectVersion.decode(codec.decode(cursor.value()), key, chunks)
        return None

    def put_version(self, object_id: int, version: ObjectVersion) -> None:
        """Store one version record."""
        old = self.txn.replace(
            version_key(object_id, version.seq),
            codec.encode(version.encode()),
            db=self.dbs.versions,
        )
        if old is not None:
            self.count_version(ObjectVersion.decode(codec.decode(old), chunks=False), -1)
        self.count_version(version, 1)

    def delete_version(self, object_id: int, version: ObjectVersion) -> None:
        """Remove one version record and release its chunks."""
        if self.txn.delete(version_key(object_id, version.seq), db=self.dbs.versions):
            self.count_version(version, -1)
        for chunk in version.chunks:
            self.decref(chunk.digest)

    def count_version(self, version: ObjectVersion, sign: int) -> None:
        """Adjust the statistics for a version record that appears (1) or goes (-1)."""
        if version.delete_marker:
            self.stats[b"delete_markers"] += sign
        else:
            self.stats[b"objects"] += sign
            self.stats[b"logical_bytes"] += sign * version.size

    # -- chunks --------------------------------------------------------------------

    def chunk(self, digest: bytes) -> tuple[ChunkLocation, int] | None:
        """A chunk's location and reference count, or None."""
        raw = self.txn.get(digest, db=self.dbs.chunks)
        if raw is None:
            return None
        _fmt, seg, off, length, size, flags, refs = CHUNK.unpack_from(raw)
        return ChunkLocation(digest, seg, off, length, size, flags), refs

    def released_at(self, digest: bytes) -> int | None:
        """When a released chunk (no references) lost its last one (Unix seconds)."""
        raw = self.txn.get(digest, db=self.dbs.chunks)
        if raw is None or len(raw) < CHUNK.size + RELEASED.size:
            return None
        return int(RELEASED.unpack_from(raw, CHUNK.size)[0])

    def add_chunk(self, loc: ChunkLocation) -> bool:
        """Reference a chunk written at ``loc``.

        If the digest is already indexed the existing copy gains the reference,
        the bytes at ``loc`` become dead, and False is returned (unless the
        indexed copy is known to be damaged: then ``loc`` replaces it).
        A location in a segment that compaction is retiring is refused
        (``InternalError``): its file is about to go.
        """
        found = self.chunk(loc.digest)
        if found is not None:
            old, refs = found
            if (old.segment, old.offset) != (loc.segment, loc.offset) and self.is_damaged(
                loc.digest
            ):
                self.check_segment_open(loc.segment)
                self._gain(old, refs)
                self.relocate_chunk(loc.digest, loc)
                self.clear_damaged(loc.digest)
                return True
            self._gain(old, refs)
            if (old.segment, old.offset) != (loc.segment, loc.offset):
                self.dead[loc.segment] += _record_size(loc.length)
            return False
        self.check_segment_open(loc.segment)
        self._put_chunk(loc, 1)
        self.stats[b"chunks"] += 1
        self.stats[b"refs"] += 1
        self.stats[b"unique_bytes"] += loc.size
        self.stats[b"stored_bytes"] += loc.length
        return True

    def check_segment_open(self, segment: int) -> None:
        """``InternalError`` if compaction is retiring ``segment`` (its file is going)."""
        retiring = self._retiring.get(segment)
        if retiring is None:
            raw = self.txn.get(u64(segment), db=self.dbs.segments)
            retiring = raw is not None and bool(codec.decode(raw).get("retiring"))
            self._retiring[segment] = retiring
        if retiring:
            raise S3Error(
                "InternalError", "The data was written to a segment being compacted; retry."
            )

    def relocate_chunk(self, digest: bytes, new: ChunkLocation) -> None:
        """Point an indexed chunk at a new copy of its record, keeping its references.

        The old record's bytes become dead (if they were live); a released chunk's
        new copy is dead from the start.
        """
        found = self.chunk(digest)
        if found is None:
            return
        old, refs = found
        released = self.released_at(digest) if refs == 0 else None
        if refs > 0:
            self.dead[old.segment] += _record_size(old.length)
            self.stats[b"stored_bytes"] += new.length - old.length
        else:
            self.dead[new.segment] += _record_size(new.length)
            self.stats[b"released_bytes"] += new.length - old.length
        self._put_chunk(new, refs, released)

    def purge_chunk(self, digest: bytes) -> bool:
        """Forget a released chunk (no references) whose bytes compaction reclaims."""
        found = self.chunk(digest)
        if found is None or found[1] != 0:
            return False
        self.txn.delete(digest, db=self.dbs.chunks)
        self.stats[b"released_chunks"] -= 1
        self.stats[b"released_bytes"] -= found[0].length
        return True

    # -- damaged chunks ---------------------------------------------------------------

    def is_damaged(self, digest: bytes) -> bool:
        """True when a chunk's record was found corrupt (by a read, the scrubber, compaction)."""
        return self.txn.get(digest, db=self.dbs.damaged) is not None

    def damaged_info(self, digest: bytes) -> dict[str, Any] | None:
        """Where and why a damaged chunk failed, or None."""
        raw = self.txn.get(digest, db=self.dbs.damaged)
        return codec.decode(raw) if raw is not None else None

    def mark_damaged(self, digest: bytes, info: dict[str, Any]) -> bool:
        """Record a chunk as damaged; False if it already was."""
        return bool(
            self.txn.put(digest, codec.encode(info), db=self.dbs.damaged, overwrite=False)
        )

    def clear_damaged(self, digest: bytes) -> None:
        """Forget that a chunk was damaged (a good copy replaced it)."""
        self.txn.delete(digest, db=self.dbs.damaged)

    def incref(self, digest: bytes) -> None:
        """Add a reference to an indexed chunk (``InternalError`` if it is gone)."""
        found = self.chunk(digest)
        if found is None:
            raise S3Error("InternalError", "A chunk this object needs is missing; retry.")
        self._gain(*found)

    def _gain(self, loc: ChunkLocation, refs: int) -> None:
        if refs == 0:
            # A released chunk whose bytes compaction has not reclaimed yet: revive it.
            self.dead[loc.segment] -= _record_size(loc.length)
            self.stats[b"released_chunks"] -= 1
            self.stats[b"released_bytes"] -= loc.length
            self.stats[b"chunks"] += 1
            self.stats[b"unique_bytes"] += loc.size
            self.stats[b"stored_bytes"] += loc.length
        self.stats[b"refs"] += 1
        self._put_chunk(loc, refs + 1)

    def decref(self, digest: bytes) -> None:
        """Drop a reference; the last one leaves the chunk for compaction.

        A chunk without references keeps its index record (with zero references)
        until compaction reclaims its bytes, so that a concurrent upload of the
        same content, which skipped writing it, can still take a reference.
        """
        found = self.chunk(digest)
        if found is None:
            return
        loc, refs = found
        if refs <= 0:
            return
        self.stats[b"refs"] -= 1
        if refs == 1:
            self.dead[loc.segment] += _record_size(loc.length)
            self.stats[b"chunks"] -= 1
            self.stats[b"unique_bytes"] -= loc.size
            self.stats[b"stored_bytes"] -= loc.length
            self.stats[b"released_chunks"] += 1
            self.stats[b"released_bytes"] += loc.length
        self._put_chunk(loc, refs - 1)

    def _put_chunk(self, loc: ChunkLocation, refs: int, released_at: int | None = None) -> None:
        value = CHUNK.pack(
            CHUNK_FORMAT, loc.segment, loc.offset, loc.length, loc.size, loc.flags, refs
        )
        if refs == 0:
            # Compaction purges a released chunk only some time after its release
            # (an upload that deduplicated against it may still be on its way).
            stamp = int(time.time()) if released_at is None else released_at
            value += RELEASED.pack(max(0, min(stamp, 0xFFFFFFFF)))
        self.txn.put(loc.digest, value, db=self.dbs.chunks)

    # -- multipart uploads ---------------------------------------------------------

    def upload(self, bucket_id: int, key: bytes, upload_id: str) -> MultipartUpload | None:
        """The upload ``upload_id`` of ``key`` in bucket ``bucket_id``, or None."""
        raw = self.txn.get(upload_key(bucket_id, key, upload_id), db=self.dbs.multipart)
        return MultipartUpload.decode(codec.decode(raw)) if raw is not None else None

    def put_upload(self, upload: MultipartUpload) -> None:
        """Store an upload record."""
        self.txn.put(
            upload_key(upload.bucket_id, upload.key.encode("utf-8"), upload.upload_id),
            codec.encode(upload.encode()),
            db=self.dbs.multipart,
        )

    def delete_upload(self, upload: MultipartUpload) -> None:
        """Remove an upload record (its parts are the caller's business)."""
        self.txn.delete(
            upload_key(upload.bucket_id, upload.key.encode("utf-8"), upload.upload_id),
            db=self.dbs.multipart,
        )

    def uploads(self, bucket_id: int, start: bytes = b"") -> Iterator[MultipartUpload]:
        """One bucket's uploads of keys >= ``start``, in (key, upload id) order.

        Uploads of long keys that share an index group come out of LMDB in hash
        order; each group is read whole and sorted here.
        """
        prefix = upload_bucket_prefix(bucket_id)
        cursor = self.txn.cursor(db=self.dbs.multipart)
        if not cursor.set_range(upload_seek(bucket_id, start)):
            return
        group: bytes | None = None
        pending: list[tuple[bytes, MultipartUpload]] = []
        for k, v in cursor:
            if not k.startswith(prefix):
                break
            upload = MultipartUpload.decode(codec.decode(v))
            raw_key = upload.key.encode("utf-8")
            this_group = upload_group(k)
            if pending and this_group != group:
                yield from _sorted_group(pending, start)
                pending = []
            group = this_group
            if this_group is not None:
                pending.append((raw_key, upload))
            elif raw_key >= start:
                yield upload
        yield from _sorted_group(pending, start)

    def all_uploads(self) -> Iterator[MultipartUpload]:
        """Every upload of every bucket (in no useful order)."""
        cursor = self.txn.cursor(db=self.dbs.multipart)
        if not cursor.set_range(UPLOAD_INDEX):
            return
        for k, v in cursor:
            if not k.startswith(UPLOAD_INDEX):
                break
            yield MultipartUpload.decode(codec.decode(v))

    def part(self, upload_id: str, number: int) -> PartRecord | None:
        """One part of an upload, or None."""
        raw = self.txn.get(part_key(upload_id, number), db=self.dbs.multipart)
        return PartRecord.decode(number, codec.decode(raw)) if raw is not None else None

    def parts(self, upload_id: str, after: int = 0) -> Iterator[PartRecord]:
        """An upload's parts numbered above ``after``, in order."""
        prefix = part_prefix(upload_id)
        cursor = self.txn.cursor(db=self.dbs.multipart)
        if not cursor.set_range(prefix + U32.pack(after + 1)):
            return
        for k, v in cursor:
            if not k.startswith(prefix):
                break
            yield PartRecord.decode(U32.unpack_from(k, len(prefix))[0], codec.decode(v))

    def put_part(self, upload_id: str, part: PartRecord) -> None:
        """Store a part record (replacing one of the same number)."""
        self.txn.put(
            part_key(upload_id, part.number), codec.encode(part.encode()), db=self.dbs.multipart
        )

    def delete_part(self, upload_id: str, number: int) -> None:
        """Remove a part record (its chunk references are the caller's business)."""
        self.txn.delete(part_key(upload_id, number), db=self.dbs.multipart)

    # -- segments ------------------------------------------------------------------

    def segment_info(self, segment_id: int) -> dict[str, int]:
        """A segment's recorded committed size and dead bytes."""
        raw = self.txn.get(u64(segment_id), db=self.dbs.segments)
        return codec.decode(raw) if raw is not None else {"size": 0, "dead": 0}

    def put_segment_info(self, segment_id: int, info: dict[str, int]) -> None:
        """Store a segment's statistics."""
        self.txn.put(u64(segment_id), codec.encode(info), db=self.dbs.segments)

    def flush(self, durable_sizes: dict[int, int] | None = None) -> None:
        """Write the dead-byte tallies, statistics and durable sizes gathered here.

        With a :attr:`stats_sink` (the committer's, for one batch) the statistics
        go there instead, to be written once for the whole batch.
        """
        touched = set(self.dead) | set(durable_sizes or {})
        for sid in touched:
            info = self.segment_info(sid)
            info["dead"] = info.get("dead", 0) + self.dead.get(sid, 0)
            if durable_sizes and sid in durable_sizes:
                info["size"] = max(info.get("size", 0), durable_sizes[sid])
            self.put_segment_info(sid, info)
        self.dead.clear()
        if self.stats:
            if self.stats_sink is not None:
                for name, delta in self.stats.items():
                    self.stats_sink[name] += delta
            else:
                from s4d.store.stats import apply_deltas

                apply_deltas(self.txn, self.dbs, self.stats)
            self.stats.clear()


def _sorted_group(
    pending: list[tuple[bytes, MultipartUpload]], start: bytes
) -> Iterator[MultipartUpload]:
    pending.sort(key=lambda item: (item[0], item[1].upload_id))
    for raw_key, upload in pending:
        if raw_key >= start:
            yield upload


def _record_size(length: int) -> int:
    from s4d.store.records import HEADER_SIZE

    return HEADER_SIZE + length
