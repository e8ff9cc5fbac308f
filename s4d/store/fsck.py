"""Checking a data directory: metadata structure, reference counts, and every stored byte.

:func:`check` opens a data directory's LMDB environment read-only (no committer,
no recovery, nothing written) and walks everything in one read transaction:

* each bucket's namespace tree: entries are well formed, directory entries lead to
  non-empty directories reached exactly once, no key is longer than a length
  bound on its path allows, object entries have at least one version, and
  nothing in ``ns`` or ``versions`` is unreachable;
* each version: it decodes, its chunks add up to its size, and every chunk it
  names is in the chunk index;
* multipart uploads: each record decodes, sits under the index key its bucket,
  key and upload id give, and belongs to a bucket that exists; each part decodes,
  belongs to an upload, and its chunks add up to its size; each completed
  upload's record decodes and has its expiry-order entry, and the reverse;
* reference counts: recounted from every version and every uploaded part, and
  compared with the index;
* every indexed chunk's record: read back and checked (header and payload
  checksums, the content address and the decoded BLAKE3 digest), or with
  ``quick`` only its header;
* every segment file, scanned with :func:`records.scan`: records that the index
  does not point at (at that exact segment and offset) are *orphan bytes*, which
  crashes and failed writes leave behind and compaction reclaims; bytes that do
  not form records are *damaged regions*. Neither is a problem by itself: the
  check of indexed chunks already catches damage to anything an object needs.

Problems are inconsistencies or damage to live data (:attr:`FsckReport.ok` is
False when there is any); warnings are facts worth knowing that lose no data.
Run it offline, or accept that writes made while it runs look like orphans.

:func:`main` is the ``s4d fsck DATA_DIR`` command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import blake3
import lmdb
import zstandard

from s4d.store import codec, records, stats
from s4d.store.model import (
    NULL_VERSION,
    Bucket,
    CompletedUpload,
    MultipartUpload,
    ObjectVersion,
    PartRecord,
)
from s4d.store.schema import (
    CHUNK,
    COMPLETED_EXPIRY,
    COMPLETED_INDEX,
    DATABASES,
    ENTRY_CONT,
    ENTRY_DIR,
    ENTRY_OBJECT,
    NAME_PIECE,
    PART_INDEX,
    SCHEMA_VERSION,
    U16,
    U32,
    U64,
    UPLOAD_ID_LENGTH,
    UPLOAD_INDEX,
    entry_id,
    read_schema_version,
    u64,
    upload_key,
)
from s4d.store.segments import SEGMENT_SUFFIX, segment_name
from s4d.store.stats import format_size
from s4d.store.store import Store
from s4d.store.version_record import decode_version
from s4d.store.views.namespace import path_kind, split_key

#: How many affected keys one problem lists at most.
MAX_KEYS_PER_PROBLEM = 20
#: Longest object key S3 allows, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: Lengths of an object entry's value: the kind and 1 to 8 bytes of id (8 before schema 4).
OBJECT_ENTRY_SIZES = tuple(range(2, 10))

# Problem kinds (damage or inconsistency: the data directory is not clean).
BAD_BUCKET = "bad-bucket"
BAD_ENTRY = "bad-entry"
BAD_BOUND = "bad-length-bound"
BAD_KEY = "bad-key"
EMPTY_DIR = "empty-dir"
SHARED_DIR = "shared-dir"
SHARED_OBJECT = "shared-object"
UNREACHABLE_ENTRY = "unreachable-entry"
NO_VERSIONS = "object-without-versions"
ORPHAN_VERSION = "orphan-version"
BAD_VERSION = "bad-version"
DUPLICATE_VERSION = "duplicate-version-id"
SIZE_MISMATCH = "size-mismatch"
MISSING_CHUNK = "missing-chunk"
BAD_CHUNK_ENTRY = "bad-chunk-entry"
REFCOUNT_MISMATCH = "refcount-mismatch"
MISSING_SEGMENT = "missing-segment"
CORRUPT_CHUNK = "corrupt-chunk"
COUNTER_BEHIND = "counter-behind"
BAD_UPLOAD = "bad-upload"
ORPHAN_UPLOAD = "orphan-upload"
BAD_PART = "bad-part"
ORPHAN_PART = "orphan-part"
BAD_MULTIPART_ENTRY = "bad-multipart-entry"
#: a completed upload's record is unreadable, or it and its expiry entry are not a pair
BAD_COMPLETED = "bad-completed-upload"
NO_METADATA = "no-metadata"
#: the data directory was written by a newer s4d: nothing else is checked
SCHEMA_TOO_NEW = "schema-too-new"
# Warning kinds (nothing live is lost).
DAMAGED_REGION = "damaged-region"
STRAY_FILE = "stray-file"
STALE_SEGMENT_INFO = "stale-segment-info"
#: the data directory predates the current schema; opening it with a store upgrades it
SCHEMA_OLD = "schema-needs-upgrade"
#: the incrementally kept statistics differ from a recount (no data is affected)
STATS_MISMATCH = "stats-mismatch"


@dataclass(frozen=True)
class KeyRef:
    """One object version a problem affects."""

    bucket: str
    key: str
    version_id: str | None = None

    def __str__(self) -> str:
        text = f"{self.bucket}/{self.key}"
        if self.version_id is not None and self.version_id != NULL_VERSION:
            text += f" (version {self.version_id})"
        return text


@dataclass(frozen=True)
class Problem:
    """One finding of a check: what kind, a readable message, and where."""

    kind: str
    message: str
    keys: tuple[KeyRef, ...] = ()
    bucket: str | None = None
    segment: int | None = None
    offset: int | None = None
    digest: str | None = None  # hex

    def __str__(self) -> str:
        text = f"{self.kind}: {self.message}"
        if self.keys:
            shown = ", ".join(str(k) for k in self.keys[:MAX_KEYS_PER_PROBLEM])
            text += f" [keys: {shown}]"
        return text


@dataclass
class SegmentStats:
    """What the scan found in one segment file."""

    segment: int
    size: int = 0
    live_bytes: int = 0
    live_records: int = 0
    orphan_bytes: int = 0
    orphan_records: int = 0
    damaged_bytes: int = 0
    recorded_size: int = 0
    recorded_dead: int = 0


@dataclass
class FsckStats:
    """Totals over the whole data directory."""

    buckets: int = 0
    directories: int = 0
    #: keys: object ids the namespace reaches (a key with all its versions counts once)
    objects: int = 0
    versions: int = 0
    delete_markers: int = 0
    #: multipart uploads in progress and their parts
    uploads: int = 0
    parts: int = 0
    #: completed uploads still answering a repeated Complete
    completed: int = 0
    chunks: int = 0
    chunk_refs: int = 0
    #: sum of the sizes of every version (what clients stored, counting copies)
    logical_bytes: int = 0
    #: sum of the decoded sizes of indexed chunks (after dedup, before compression)
    unique_bytes: int = 0
    #: bytes of indexed records in segments (headers included, as stored)
    live_bytes: int = 0
    #: size of every segment file
    physical_bytes: int = 0
    #: valid records the chunk index does not point at: freed by deletes and
    #: overwrites, or written and never committed (a failed write, a crash)
    orphan_bytes: int = 0
    orphan_records: int = 0
    #: bytes that do not form records (torn writes, holes, garbage)
    damaged_bytes: int = 0
    damaged_regions: int = 0
    segments: int = 0


@dataclass
class FsckReport:
    """The outcome of :func:`check`."""

    data_dir: str
    quick: bool
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    stats: FsckStats = field(default_factory=FsckStats)
    segments: list[SegmentStats] = field(default_factory=list)
    #: the schema version of the metadata (0: written before versions existed;
    #: None: no metadata to read it from)
    schema_version: int | None = None

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings allowed)."""
        return not self.problems

    def kinds(self) -> set[str]:
        """The kinds of every problem found."""
        return {p.kind for p in self.problems}

    def render(self, verbose: bool = False) -> str:
        """A readable, multi-line report."""
        mode = "quick check: headers only" if self.quick else "full check"
        lines = [f"s4d fsck {self.data_dir} ({mode})"]
        st = self.stats
        schema = "unknown" if self.schema_version is None else str(self.schema_version)
        if self.schema_version is not None and self.schema_version != SCHEMA_VERSION:
            schema += f" (this s4d writes {SCHEMA_VERSION})"
        rows = [
            ("schema", schema),
            ("buckets", str(st.buckets)),
            ("directories", str(st.directories)),
            ("keys", str(st.objects)),
            ("versions", f"{st.versions} ({st.delete_markers} delete markers)"),
            ("uploads", f"{st.uploads} in progress ({st.parts} parts), {st.completed} completed"),
            ("chunks", f"{st.chunks} ({st.chunk_refs} references)"),
            ("logical bytes", format_size(st.logical_bytes)),
            ("unique bytes", format_size(st.unique_bytes)),
            ("live bytes", format_size(st.live_bytes)),
            ("physical bytes", format_size(st.physical_bytes)),
            ("orphan bytes", f"{format_size(st.orphan_bytes)} in {st.orphan_records} records"),
            ("damaged bytes", f"{format_size(st.damaged_bytes)} in {st.damaged_regions} regions"),
            ("segments", str(st.segments)),
        ]
        lines += [f"  {name:<15} {value}" for name, value in rows]
        if verbose and self.segments:
            lines.append("Segments:")
            for seg in self.segments:
                lines.append(
                    f"  {segment_name(seg.segment)}  size {format_size(seg.size)}"
                    f"  live {format_size(seg.live_bytes)} ({seg.live_records})"
                    f"  orphan {format_size(seg.orphan_bytes)} ({seg.orphan_records})"
                    f"  damaged {format_size(seg.damaged_bytes)}"
                    f"  recorded dead {format_size(seg.recorded_dead)}"
                )
        for title, found in (("Problems", self.problems), ("Warnings", self.warnings)):
            if found:
                lines.append(f"{title} ({len(found)}):")
                lines += [f"  {p}" for p in found]
        if self.ok:
            lines.append("Result: clean")
        else:
            lines.append(f"Result: {len(self.problems)} problem(s)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form of the report."""
        return {
            "data_dir": self.data_dir,
            "quick": self.quick,
            "ok": self.ok,
            "schema_version": self.schema_version,
            "stats": asdict(self.stats),
            "segments": [asdict(s) for s in self.segments],
            "problems": [_problem_json(p) for p in self.problems],
            "warnings": [_problem_json(p) for p in self.warnings],
        }


def _problem_json(problem: Problem) -> dict[str, Any]:
    value = asdict(problem)
    value["keys"] = [asdict(k) for k in problem.keys]
    return value


# -- entry points ------------------------------------------------------------------------


def check(data_dir: str, quick: bool = False) -> FsckReport:
    """Check the data directory ``data_dir`` and report what was found.

    The environment is opened read-only, so this is safe while a server runs,
    but it must not be called in a process that has the same directory open as
    a :class:`~s4d.store.store.Store` (LMDB forbids opening one environment
    twice in a process); use :func:`check_store` there.
    """
    report = FsckReport(data_dir, quick)
    meta = os.path.join(data_dir, "meta")
    if not os.path.exists(os.path.join(meta, "data.mdb")):
        report.problems.append(Problem(NO_METADATA, f"no LMDB environment in {meta}"))
        return report
    env = lmdb.open(
        meta,
        readonly=True,
        lock=True,
        subdir=True,
        max_dbs=len(DATABASES) + 4,
        max_readers=1024,
        readahead=False,
    )
    try:
        with env.begin() as txn:
            # Handles opened in a read-only transaction are only valid inside it.
            handles: dict[str, lmdb._Database | None] = {}
            for name in DATABASES:
                try:
                    handles[name.decode()] = env.open_db(name, txn=txn, create=False)
                except lmdb.NotFoundError:
                    handles[name.decode()] = None
            _Checker(report, txn, handles, os.path.join(data_dir, "segments")).run()
    finally:
        env.close()
    return report


def check_store(store: Store, quick: bool = False) -> FsckReport:
    """Check an open :class:`~s4d.store.store.Store` through its own environment."""
    report = FsckReport(store.config.data_dir, quick)
    handles = {name.decode(): getattr(store.dbs, name.decode()) for name in DATABASES}
    with store.env.begin() as txn:
        _Checker(report, txn, handles, store.segments.directory).run()
    return report


# -- the checker -------------------------------------------------------------------------


@dataclass
class _Indexed:
    """One chunk index entry."""

    digest: bytes
    segment: int
    offset: int
    length: int
    size: int
    flags: int
    refs: int


class _Checker:
    """One pass over one read transaction and the segment files, filling a report."""

    def __init__(
        self,
        report: FsckReport,
        txn: lmdb.Transaction[bytes],
        dbs: dict[str, lmdb._Database | None],
        segments_dir: str,
    ) -> None:
        self.report = report
        self.stats = report.stats
        self.txn = txn
        self.dbs = dbs
        self.segments_dir = segments_dir
        self.quick = report.quick
        self.refs: dict[bytes, int] = defaultdict(int)
        self.seen_dirs: set[int] = set()
        self.seen_objects: set[int] = set()
        self.max_ids: dict[bytes, int] = defaultdict(int)
        self.index: dict[bytes, _Indexed] = {}
        #: digest -> problem kind and message, for problems that need keys attached
        self.bad_chunks: dict[bytes, tuple[str, str, int | None, int | None]] = {}

    def problem(self, kind: str, message: str, **where: Any) -> None:
        self.report.problems.append(Problem(kind, message, **where))

    def warning(self, kind: str, message: str, **where: Any) -> None:
        self.report.warnings.append(Problem(kind, message, **where))

    def cursor(self, name: str) -> lmdb.Cursor[bytes] | None:
        db = self.dbs.get(name)
        return self.txn.cursor(db=db) if db is not None else None

    def run(self) -> None:
        if not self.check_schema():
            return
        missing = [name for name in ("buckets", "ns", "versions", "chunks") if not self.dbs[name]]
        if missing:
            self.problem(NO_METADATA, f"the metadata lacks databases {', '.join(missing)}")
            return
        buckets = self.check_buckets()
        for bucket in buckets:
            for key, object_id in self.walk(bucket):
                self.check_object(bucket, key, object_id)
        self.check_unreachable()
        self.check_uploads(buckets)
        self.check_chunk_index()
        self.check_chunks()
        self.scan_segments()
        self.check_counters()
        self.check_stats()
        self.attach_keys(buckets)

    def check_schema(self) -> bool:
        """Record the schema version; False (stop) if it is newer than this code knows."""
        config = self.dbs.get("config")
        version = read_schema_version(self.txn, config) if config is not None else 0
        self.report.schema_version = version
        if version > SCHEMA_VERSION:
            self.problem(
                SCHEMA_TOO_NEW,
                f"the metadata has schema version {version}; this s4d knows up to "
                f"{SCHEMA_VERSION} and cannot check it",
            )
            return False
        if version < SCHEMA_VERSION:
            self.warning(
                SCHEMA_OLD,
                f"the metadata has schema version {version}; the server upgrades it "
                f"to {SCHEMA_VERSION} when it opens the data directory",
            )
        return True

    # -- buckets and the namespace --------------------------------------------------------

    def check_buckets(self) -> list[Bucket]:
        found = []
        cursor = self.cursor("buckets")
        for raw_name, raw in cursor or ():
            try:
                name = raw_name.decode("utf-8")
                bucket = Bucket.decode(name, codec.decode(raw))
            except (UnicodeDecodeError, codec.CodecError, KeyError, ValueError) as e:
                self.problem(BAD_BUCKET, f"bucket record {bytes(raw_name)!r} is unreadable: {e}")
                continue
            self.max_ids[b"bucket"] = max(self.max_ids[b"bucket"], bucket.bucket_id)
            self.max_ids[b"dir"] = max(self.max_ids[b"dir"], bucket.root_dir)
            found.append(bucket)
        self.stats.buckets = len(found)
        return found

    def walk(self, bucket: Bucket, record: bool = True) -> Iterator[tuple[bytes, int]]:
        """Yield ``(key, object_id)`` for every object entry of ``bucket``'s tree, in key order.

        With ``record`` (the first pass) structural problems and statistics are
        recorded; a later pass only collects keys.
        """
        report = self.problem if record else _ignore
        if record and bucket.root_dir in self.seen_dirs:
            report(
                SHARED_DIR, f"root directory {bucket.root_dir} is used twice", bucket=bucket.name
            )
            return
        # (directory id, key prefix it stands for, entry names on the way to it,
        # the longest key the length bounds on the way allow)
        stack: list[tuple[int, bytes, list[bytes], int]] = [(bucket.root_dir, b"", [], 1 << 30)]
        visited: set[int] = {bucket.root_dir}
        ns = self.dbs["ns"]
        while stack:
            dir_id, path, names, limit = stack.pop()
            if record:
                self.seen_dirs.add(dir_id)
                if dir_id != bucket.root_dir:
                    self.stats.directories += 1
            count = 0
            children: list[tuple[int, bytes, list[bytes], int]] = []
            for k, v in _prefixed(self.txn.cursor(db=ns), u64(dir_id)):
                count += 1
                name = k[8:]
                key = path + name
                shown = key.decode("utf-8", "replace")
                kind = v[:1]
                sizes = OBJECT_ENTRY_SIZES if kind == ENTRY_OBJECT else (9, 11)
                if kind not in (ENTRY_DIR, ENTRY_CONT, ENTRY_OBJECT) or len(v) not in sizes:
                    report(BAD_ENTRY, f"entry {shown!r} has a malformed value", bucket=bucket.name)
                    continue
                ident = entry_id(v)
                if kind == ENTRY_OBJECT:
                    if len(key) > limit:
                        report(
                            BAD_BOUND,
                            f"key {shown!r} is longer than a directory's length bound allows",
                            bucket=bucket.name,
                        )
                    if split_key(key) != (names, name):
                        report(
                            BAD_ENTRY,
                            f"object entry {shown!r} is not where its key says it is",
                            bucket=bucket.name,
                        )
                    yield key, ident
                    continue
                if (
                    kind != path_kind(name)
                    or (kind == ENTRY_CONT and len(name) != NAME_PIECE)
                    or b"/" in name[:-1]
                    or len(name) > NAME_PIECE
                ):
                    report(BAD_ENTRY, f"directory entry {shown!r} is misnamed", bucket=bucket.name)
                if ident in visited or (record and ident in self.seen_dirs):
                    report(
                        SHARED_DIR,
                        f"directory {shown!r} (id {ident}) is reached more than once",
                        bucket=bucket.name,
                    )
                    continue
                self.max_ids[b"dir"] = max(self.max_ids[b"dir"], ident)
                visited.add(ident)
                bound = U16.unpack_from(v, 9)[0] if len(v) == 11 else None
                below = limit if bound is None else min(limit, len(key) + bound)
                children.append((ident, key, [*names, name], below))
            if count == 0 and dir_id != bucket.root_dir:
                report(
                    EMPTY_DIR,
                    f"directory {path.decode('utf-8', 'replace')!r} (id {dir_id}) has no entries",
                    bucket=bucket.name,
                )
            # Depth first, siblings in order, so keys come out in S3 order.
            stack.extend(reversed(children))

    def check_object(self, bucket: Bucket, raw_key: bytes, object_id: int) -> None:
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError:
            key = raw_key.decode("utf-8", "replace")
            self.problem(BAD_KEY, f"key {key!r} is not valid UTF-8", bucket=bucket.name)
        if len(raw_key) > MAX_KEY_BYTES:
            self.problem(
                BAD_KEY,
                f"key of {len(raw_key)} bytes is too long",
                keys=(KeyRef(bucket.name, key),),
                bucket=bucket.name,
            )
        if object_id in self.seen_objects:
            self.problem(
                SHARED_OBJECT,
                f"object id {object_id} has more than one key",
                keys=(KeyRef(bucket.name, key),),
                bucket=bucket.name,
            )
            return
        self.seen_objects.add(object_id)
        self.stats.objects += 1
        self.max_ids[b"object"] = max(self.max_ids[b"object"], object_id)
        versions = list(self.versions(bucket, key, object_id))
        if not versions:
            self.problem(
                NO_VERSIONS,
                "object entry has no versions",
                keys=(KeyRef(bucket.name, key),),
                bucket=bucket.name,
            )
            return
        version_ids: set[str] = set()
        for version in versions:
            ref = KeyRef(bucket.name, key, version.version_id)
            if version.version_id in version_ids:
                self.problem(
                    DUPLICATE_VERSION,
                    f"version id {version.version_id} appears twice",
                    keys=(ref,),
                    bucket=bucket.name,
                )
            version_ids.add(version.version_id)
            self.max_ids[b"seq"] = max(self.max_ids[b"seq"], version.seq)
            self.stats.versions += 1
            if version.delete_marker:
                self.stats.delete_markers += 1
                continue
            self.stats.logical_bytes += version.size
            total = sum(c.size for c in version.chunks)
            held = "chunks hold"
            if version.inline is not None:
                held = "the record holds inline"
                total = len(version.inline)
                if version.chunks or version.parts is not None:
                    self.problem(
                        BAD_VERSION,
                        "a version with inline bytes also names chunks or parts",
                        keys=(ref,),
                        bucket=bucket.name,
                    )
            if total != version.size:
                self.problem(
                    SIZE_MISMATCH,
                    f"{held} {total} bytes but the version says {version.size}",
                    keys=(ref,),
                    bucket=bucket.name,
                )
            if version.part_checksums is not None and len(version.part_checksums) != len(
                version.parts or ()
            ):
                self.problem(
                    BAD_VERSION,
                    f"{len(version.part_checksums)} part checksums for "
                    f"{len(version.parts or ())} parts",
                    keys=(ref,),
                    bucket=bucket.name,
                )
            for chunk in version.chunks:
                self.refs[chunk.digest] += 1

    def versions(self, bucket: Bucket, key: str, object_id: int) -> Iterator[ObjectVersion]:
        prefix = u64(object_id)
        cursor = self.txn.cursor(db=self.dbs["versions"])
        if not cursor.set_range(prefix):
            return
        for k, v in cursor:
            if not k.startswith(prefix):
                return
            try:
                version = decode_version(v, key)
            except (codec.CodecError, KeyError, ValueError, TypeError) as e:
                self.problem(
                    BAD_VERSION,
                    f"a version record is unreadable: {e}",
                    keys=(KeyRef(bucket.name, key),),
                    bucket=bucket.name,
                )
                continue
            expected_seq = (1 << 64) - 1 - U64.unpack_from(k, 8)[0]
            if len(k) != 16 or version.seq != expected_seq:
                self.problem(
                    BAD_VERSION,
                    f"version {version.version_id} is stored under the wrong sequence number",
                    keys=(KeyRef(bucket.name, key, version.version_id),),
                    bucket=bucket.name,
                )
            yield version

    def check_unreachable(self) -> None:
        """Entries and versions that no bucket's tree leads to."""
        stray_dirs: dict[int, int] = defaultdict(int)
        for k, v in self.cursor("ns") or ():
            dir_id = U64.unpack_from(k, 0)[0]
            if dir_id not in self.seen_dirs:
                stray_dirs[dir_id] += 1
            if len(v) in (9, 11) and v[:1] in (ENTRY_DIR, ENTRY_CONT):
                self.max_ids[b"dir"] = max(self.max_ids[b"dir"], entry_id(v))
            elif v[:1] == ENTRY_OBJECT and len(v) in OBJECT_ENTRY_SIZES:
                self.max_ids[b"object"] = max(self.max_ids[b"object"], entry_id(v))
        for dir_id, n in sorted(stray_dirs.items()):
            self.problem(
                UNREACHABLE_ENTRY,
                f"{n} namespace entries in directory {dir_id}, which no bucket reaches",
            )
        stray_objects: dict[int, int] = defaultdict(int)
        for k, v in self.cursor("versions") or ():
            object_id = U64.unpack_from(k, 0)[0]
            if object_id in self.seen_objects:
                continue
            stray_objects[object_id] += 1
            self.max_ids[b"object"] = max(self.max_ids[b"object"], object_id)
            try:
                version = decode_version(v)
            except (codec.CodecError, KeyError, ValueError, TypeError):
                continue
            self.max_ids[b"seq"] = max(self.max_ids[b"seq"], version.seq)
            # An unreachable version still holds references.
            for chunk in version.chunks:
                self.refs[chunk.digest] += 1
        for object_id, n in sorted(stray_objects.items()):
            self.problem(
                ORPHAN_VERSION, f"{n} versions of object id {object_id}, which no key names"
            )

    # -- multipart uploads ----------------------------------------------------------------

    def check_uploads(self, buckets: list[Bucket]) -> None:
        """Upload records and their parts; part chunks count as references."""
        cursor = self.cursor("multipart")
        if cursor is None:
            return
        bucket_ids = {b.bucket_id: b.name for b in buckets}
        uploads: dict[bytes, str] = {}  # upload id -> bucket name
        parts: list[tuple[bytes, bytes, int, bytes]] = []
        completed: dict[bytes, int | None] = {}  # upload id -> completion time (None: unreadable)
        expiry: set[tuple[int, bytes]] = set()
        for k, v in cursor:
            k = bytes(k)
            if k.startswith(UPLOAD_INDEX):
                self.check_upload(k, v, bucket_ids, uploads)
            elif k.startswith(PART_INDEX) and len(k) == 1 + UPLOAD_ID_LENGTH + 4:
                uid = k[1 : 1 + UPLOAD_ID_LENGTH]
                parts.append((k, uid, U32.unpack_from(k, 1 + UPLOAD_ID_LENGTH)[0], bytes(v)))
            elif k.startswith(COMPLETED_INDEX) and len(k) == 1 + UPLOAD_ID_LENGTH:
                completed[k[1:]] = self.check_completed(k[1:], bytes(v))
            elif k.startswith(COMPLETED_EXPIRY) and len(k) == 9 + UPLOAD_ID_LENGTH:
                expiry.add((U64.unpack_from(k, 1)[0], k[9:]))
            else:
                self.problem(BAD_MULTIPART_ENTRY, f"unexpected multipart entry {k[:40]!r}")
        self.check_completed_pairs(completed, expiry)
        orphans: dict[bytes, int] = defaultdict(int)
        for _k, uid, number, raw in parts:
            bucket = uploads.get(uid)
            try:
                part = PartRecord.decode(number, codec.decode(raw))
            except (codec.CodecError, KeyError, ValueError, TypeError) as e:
                self.problem(
                    BAD_PART,
                    f"part {number} of upload {uid.decode('ascii', 'replace')} is unreadable: {e}",
                    bucket=bucket,
                )
                continue
            # Parts hold references whether or not their upload is intact.
            for chunk in part.chunks:
                self.refs[chunk.digest] += 1
            if bucket is None:
                orphans[uid] += 1
                continue
            self.stats.parts += 1
            total = sum(c.size for c in part.chunks)
            if total != part.size:
                self.problem(
                    BAD_PART,
                    f"part {number} of upload {uid.decode('ascii')}: chunks hold {total} bytes "
                    f"but the part says {part.size}",
                    bucket=bucket,
                )
        for uid, n in sorted(orphans.items()):
            self.problem(
                ORPHAN_PART, f"{n} parts of upload {uid.decode('ascii', 'replace')}, which is gone"
            )

    def check_completed(self, uid: bytes, v: bytes) -> int | None:
        """A completed upload's record; its completion time (None if unreadable)."""
        text = uid.decode("ascii", "replace")
        try:
            record = CompletedUpload.decode(uid.decode("ascii"), codec.decode(v))
            number = int(text[:12], 16)
        except (codec.CodecError, KeyError, ValueError, TypeError, UnicodeError) as e:
            self.problem(BAD_COMPLETED, f"completed upload {text} is unreadable: {e}")
            return None
        self.max_ids[b"upload"] = max(self.max_ids[b"upload"], number)
        self.stats.completed += 1
        return record.completed_ns

    def check_completed_pairs(
        self, completed: dict[bytes, int | None], expiry: set[tuple[int, bytes]]
    ) -> None:
        """Every completed record has its expiry entry and every expiry entry its record."""
        for uid, when in sorted(completed.items()):
            if when is not None and (when, uid) not in expiry:
                self.problem(
                    BAD_COMPLETED,
                    f"completed upload {uid.decode('ascii')} has no expiry entry: "
                    "it would never be forgotten",
                )
        for _when, uid in sorted(expiry):
            if uid not in completed:
                self.problem(
                    BAD_COMPLETED,
                    f"expiry entry of completed upload {uid.decode('ascii', 'replace')}, "
                    "which has no record",
                )

    def check_upload(
        self, k: bytes, v: bytes, bucket_ids: dict[int, str], uploads: dict[bytes, str]
    ) -> None:
        try:
            upload = MultipartUpload.decode(codec.decode(v))
            expected = upload_key(upload.bucket_id, upload.key.encode("utf-8"), upload.upload_id)
        except (codec.CodecError, KeyError, ValueError, TypeError, UnicodeError) as e:
            self.problem(BAD_UPLOAD, f"upload record {k[:40]!r} is unreadable: {e}")
            return
        ref = KeyRef(bucket_ids.get(upload.bucket_id, "?"), upload.key)
        if expected != k or len(upload.upload_id) != UPLOAD_ID_LENGTH:
            self.problem(
                BAD_UPLOAD,
                f"upload {upload.upload_id} is not where its bucket, key and id say it is",
                keys=(ref,),
            )
            return
        if len(upload.key.encode("utf-8")) > MAX_KEY_BYTES:
            self.problem(
                BAD_UPLOAD, f"upload {upload.upload_id} has a key that is too long", keys=(ref,)
            )
        try:
            self.max_ids[b"upload"] = max(self.max_ids[b"upload"], int(upload.upload_id[:12], 16))
        except ValueError:
            self.problem(BAD_UPLOAD, f"upload id {upload.upload_id!r} is malformed", keys=(ref,))
        if upload.bucket_id not in bucket_ids:
            self.problem(
                ORPHAN_UPLOAD,
                f"upload {upload.upload_id} belongs to bucket id {upload.bucket_id}, "
                "which does not exist",
                keys=(ref,),
            )
        uploads[upload.upload_id.encode("ascii")] = ref.bucket
        self.stats.uploads += 1

    # -- chunks ---------------------------------------------------------------------------

    def check_chunk_index(self) -> None:
        """Decode the index and compare stored reference counts with the recount."""
        for digest, raw in self.cursor("chunks") or ():
            digest = bytes(digest)
            try:
                _fmt, seg, off, length, size, flags, refs = CHUNK.unpack_from(raw)
            except Exception as e:  # noqa: BLE001 - any malformed value is a finding
                self.problem(
                    BAD_CHUNK_ENTRY, f"chunk index entry is unreadable: {e}", digest=digest.hex()
                )
                continue
            self.index[digest] = _Indexed(digest, seg, off, length, size, flags, refs)
            self.stats.chunks += 1
            self.stats.unique_bytes += size
            self.stats.live_bytes += records.HEADER_SIZE + length
            self.max_ids[b"segment"] = max(self.max_ids[b"segment"], seg)
            counted = self.refs.get(digest, 0)
            if counted != refs:
                self.bad_chunks.setdefault(
                    digest,
                    (
                        REFCOUNT_MISMATCH,
                        f"chunk {digest.hex()[:16]} has {refs} stored references but "
                        f"{counted} versions and parts use it",
                        None,
                        None,
                    ),
                )
        for digest, n in self.refs.items():
            self.stats.chunk_refs += n
            if digest not in self.index:
                self.bad_chunks[digest] = (
                    MISSING_CHUNK,
                    f"chunk {digest.hex()[:16]} ({n} references) is not in the chunk index",
                    None,
                    None,
                )

    def check_chunks(self) -> None:
        """Read every indexed chunk's record back and check it."""
        by_segment: dict[int, list[_Indexed]] = defaultdict(list)
        for entry in self.index.values():
            by_segment[entry.segment].append(entry)
        for sid in sorted(by_segment):
            path = os.path.join(self.segments_dir, segment_name(sid))
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as e:
                for entry in by_segment[sid]:
                    self.bad_chunks[entry.digest] = (
                        MISSING_SEGMENT,
                        f"chunk {entry.digest.hex()[:16]} lives in segment "
                        f"{sid}, which cannot be opened: {e.strerror}",
                        sid,
                        entry.offset,
                    )
                continue
            try:
                size = os.fstat(fd).st_size
                for entry in sorted(by_segment[sid], key=lambda e: e.offset):
                    error = self.verify_record(fd, size, entry)
                    if error is not None:
                        self.bad_chunks[entry.digest] = (
                            CORRUPT_CHUNK,
                            f"chunk {entry.digest.hex()[:16]} in segment {sid} "
                            f"at offset {entry.offset}: {error}",
                            sid,
                            entry.offset,
                        )
            finally:
                os.close(fd)

    def verify_record(self, fd: int, size: int, entry: _Indexed) -> str | None:
        """Why the record of ``entry`` is bad, or None if it checks out."""
        end = entry.offset + records.HEADER_SIZE + entry.length
        if end > size:
            return f"record ends at {end}, past the end of the file ({size})"
        want = records.HEADER_SIZE if self.quick else records.HEADER_SIZE + entry.length
        data = os.pread(fd, want, entry.offset)
        try:
            header = records.decode_header(data)
        except records.CorruptRecord as e:
            return str(e)
        if header.content != entry.digest:
            return "the record holds another chunk"
        if header.length != entry.length:
            return f"stored length {header.length} differs from the index ({entry.length})"
        if header.raw_length != entry.size:
            return f"decoded length {header.raw_length} differs from the index ({entry.size})"
        if header.flags != entry.flags:
            return f"flags {header.flags:#x} differ from the index ({entry.flags:#x})"
        if self.quick:
            return None
        payload = memoryview(data)[records.HEADER_SIZE :]
        try:
            records.check_payload(header, payload)
        except records.CorruptRecord as e:
            return str(e)
        if header.flags & records.FLAG_ZSTD:
            try:
                plain = zstandard.ZstdDecompressor().decompress(
                    bytes(payload), max_output_size=header.raw_length
                )
            except zstandard.ZstdError as e:
                return f"payload does not decompress: {e}"
        else:
            plain = bytes(payload)
        if len(plain) != entry.size:
            return f"decoded {len(plain)} bytes, expected {entry.size}"
        if blake3.blake3(plain).digest() != entry.digest:
            return "decoded bytes do not match the chunk's BLAKE3 digest"
        return None

    # -- segments -------------------------------------------------------------------------

    def scan_segments(self) -> None:
        """Scan every segment file for orphan records and damaged regions."""
        live: dict[int, dict[int, _Indexed]] = defaultdict(dict)
        for entry in self.index.values():
            live[entry.segment][entry.offset] = entry
        recorded: dict[int, dict[str, int]] = {}
        for k, v in self.cursor("segments") or ():
            try:
                recorded[U64.unpack(k)[0]] = codec.decode(v)
            except Exception:  # noqa: BLE001 - an unreadable record counts as absent
                continue
        ids: list[int] = []
        try:
            names = sorted(os.listdir(self.segments_dir))
        except FileNotFoundError:
            names = []
        for name in names:
            stem = name[: -len(SEGMENT_SUFFIX)]
            if name.endswith(SEGMENT_SUFFIX) and stem.isdigit():
                ids.append(int(stem))
            else:
                self.warning(STRAY_FILE, f"unexpected file {name!r} in the segments directory")
        for sid in sorted(ids):
            self.max_ids[b"segment"] = max(self.max_ids[b"segment"], sid)
            seg = self.scan_segment(sid, live.get(sid, {}))
            info = recorded.get(sid, {})
            seg.recorded_size = int(info.get("size", 0))
            seg.recorded_dead = int(info.get("dead", 0))
            self.report.segments.append(seg)
        for sid in sorted(set(recorded) - set(ids)):
            self.max_ids[b"segment"] = max(self.max_ids[b"segment"], sid)
            if recorded[sid].get("retired"):
                continue  # compacted away; the tombstone refuses stale commits
            if sid not in live:
                self.warning(
                    STALE_SEGMENT_INFO,
                    f"segment {sid} is recorded but its file is gone",
                    segment=sid,
                )
        self.stats.segments = len(ids)

    def scan_segment(self, sid: int, live: dict[int, _Indexed]) -> SegmentStats:
        seg = SegmentStats(sid)
        path = os.path.join(self.segments_dir, segment_name(sid))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            seg.size = os.fstat(fd).st_size
            read_at = records.ReadAt(fd)
            for item in records.scan(read_at, seg.size, verify_payload=not self.quick):
                if isinstance(item, records.DamagedRegion):
                    length = item.end - item.offset
                    seg.damaged_bytes += length
                    self.stats.damaged_regions += 1
                    self.warning(
                        DAMAGED_REGION,
                        f"{length} bytes at offset {item.offset} of segment {sid} are not records",
                        segment=sid,
                        offset=item.offset,
                    )
                    continue
                size = item.end - item.offset
                entry = live.get(item.offset)
                if entry is not None and entry.digest == item.header.content:
                    seg.live_bytes += size
                    seg.live_records += 1
                else:
                    seg.orphan_bytes += size
                    seg.orphan_records += 1
        finally:
            os.close(fd)
        self.stats.physical_bytes += seg.size
        self.stats.orphan_bytes += seg.orphan_bytes
        self.stats.orphan_records += seg.orphan_records
        self.stats.damaged_bytes += seg.damaged_bytes
        return seg

    # -- counters -------------------------------------------------------------------------

    def check_counters(self) -> None:
        """Every id in use must be at or below its counter, or it would be handed out again."""
        cursor = self.cursor("counters")
        stored: dict[bytes, int] = {}
        for k, v in cursor or ():
            if len(v) == 8:
                stored[bytes(k)] = U64.unpack(v)[0]
        for name, used in sorted(self.max_ids.items()):
            if used and stored.get(name, 0) < used:
                self.problem(
                    COUNTER_BEHIND,
                    f"counter {name.decode()} is at {stored.get(name, 0)} but id {used} is in use",
                )

    def check_stats(self) -> None:
        """The incrementally kept statistics (s4d.store.stats) must equal a recount.

        A difference is a warning: it misreports space but loses nothing.
        """
        counters = self.dbs.get("counters")
        if counters is None or self.txn.get(stats.READY, db=counters) is None:
            return  # not counted yet: the next store to open the directory counts them
        stored = stats.stored_counters(self.txn, counters)
        counted = stats.recount(self.txn, self.dbs)
        for name, value in sorted(counted.items()):
            if stored.get(name, 0) != value:
                self.warning(
                    STATS_MISMATCH,
                    f"statistic {name} is {stored.get(name, 0)} but a recount gives {value}",
                )

    # -- keys for chunk problems ----------------------------------------------------------

    def attach_keys(self, buckets: list[Bucket]) -> None:
        """Report chunk problems with the keys whose versions use the chunk."""
        if not self.bad_chunks:
            return
        users: dict[bytes, list[KeyRef]] = defaultdict(list)
        more: dict[bytes, int] = defaultdict(int)
        for bucket in buckets:
            for raw_key, object_id in self.walk(bucket, record=False):
                key = raw_key.decode("utf-8", "replace")
                versions = _prefixed(self.txn.cursor(db=self.dbs["versions"]), u64(object_id))
                for _k, v in versions:
                    try:
                        version = decode_version(v, key)
                    except (codec.CodecError, KeyError, ValueError, TypeError):
                        continue
                    for digest in {c.digest for c in version.chunks}:
                        if digest in self.bad_chunks:
                            if len(users[digest]) < MAX_KEYS_PER_PROBLEM:
                                users[digest].append(KeyRef(bucket.name, key, version.version_id))
                            else:
                                more[digest] += 1
        for digest, (kind, message, segment, offset) in self.bad_chunks.items():
            if more.get(digest):
                message += f" (and {more[digest]} more versions)"
            self.problem(
                kind,
                message,
                keys=tuple(users.get(digest, ())),
                segment=segment,
                offset=offset,
                digest=digest.hex(),
            )


def _ignore(kind: str, message: str, **where: Any) -> None:
    """A problem sink that drops everything (for passes that only collect keys)."""


def _prefixed(cursor: lmdb.Cursor[bytes], prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    if not cursor.set_range(prefix):
        return
    for k, v in cursor:
        if not k.startswith(prefix):
            return
        yield k, v


# -- the command -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fsck`` command's arguments to ``parser``."""
    parser.add_argument("data_dir", metavar="DATA_DIR", help="the data directory to check")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="check record headers only, without reading and hashing every payload",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list every segment's statistics"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the check described by parsed ``args``; 0 if clean, 1 if not."""
    out = out if out is not None else sys.stdout
    if not os.path.isdir(args.data_dir):
        print(f"s4d fsck: {args.data_dir}: not a directory", file=out)
        return 1
    report = check(args.data_dir, quick=args.quick)
    if args.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        print(report.render(verbose=args.verbose), file=out)
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``s4d fsck DATA_DIR [--quick] [--json] [-v]``: print a report; exit status 0 if clean."""
    parser = argparse.ArgumentParser(
        prog="s4d fsck", description="Check an s4d data directory for damage and inconsistency."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv), out)
