"""Storage statistics, kept incrementally in the same transactions as the changes.

Every :class:`~s4d.store.txn.MetaTxn` gathers deltas in ``t.stats`` while it
changes versions and chunk references, and :meth:`~s4d.store.txn.MetaTxn.flush`
adds them to signed 8-byte counters in the ``counters`` database (keys
``stats/<name>``) before the transaction commits. The numbers are therefore
exact at every commit and cost nothing to read: no scan of objects or chunks.

============== =========================================================
name           what it counts
============== =========================================================
objects        version records holding data (not delete markers)
delete_markers delete markers
logical_bytes  sum of those versions' sizes (what clients stored, copies counted)
chunks         indexed chunks with at least one reference
refs           references held on them (versions and uploaded parts)
unique_bytes   decoded size of those chunks (after dedup, before compression)
stored_bytes   their payload bytes as stored (after compression)
released_*     chunks without references awaiting compaction: count, stored bytes
============== =========================================================

Per-segment sizes and dead bytes live in the ``segments`` database (one record
per segment file); :func:`read_stats` sums them. A data directory written before
statistics existed is counted once when a store opens it (:func:`ensure`);
``s4d fsck`` compares every number with a recount.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import lmdb

from s4d.store import codec
from s4d.store.records import HEADER_SIZE
from s4d.store.schema import CHUNK, DATABASES, STATS_PREFIX, U64, Databases
from s4d.store.version_record import decode_version

if TYPE_CHECKING:  # the store imports this module
    from s4d.store.store import Store

I64 = struct.Struct(">q")
#: the names kept in ``counters``
NAMES = (
    b"objects",
    b"delete_markers",
    b"logical_bytes",
    b"chunks",
    b"refs",
    b"unique_bytes",
    b"stored_bytes",
    b"released_chunks",
    b"released_bytes",
)
#: present once the statistics of a data directory are complete
READY = STATS_PREFIX + b"!ready"


def apply_deltas(txn: lmdb.Transaction[bytes], dbs: Databases, deltas: Mapping[bytes, int]) -> None:
    """Add ``deltas`` to the stored counters (inside the caller's write transaction)."""
    for name, delta in deltas.items():
        if not delta:
            continue
        key = STATS_PREFIX + name
        raw = txn.get(key, db=dbs.counters)
        value = (I64.unpack(raw)[0] if raw is not None and len(raw) == 8 else 0) + delta
        txn.put(key, I64.pack(value), db=dbs.counters)


def stored_counters(txn: lmdb.Transaction[bytes], counters_db: lmdb._Database) -> dict[str, int]:
    """The counters as stored (missing ones are 0)."""
    found = {name.decode(): 0 for name in NAMES}
    for name in NAMES:
        raw = txn.get(STATS_PREFIX + name, db=counters_db)
        if raw is not None and len(raw) == 8:
            found[name.decode()] = I64.unpack(raw)[0]
    return found


def recount(txn: lmdb.Transaction[bytes], dbs: Mapping[str, Any]) -> dict[str, int]:
    """Count every statistic from scratch (versions and the chunk index).

    Only for :func:`ensure` and fsck: it reads every version and chunk record.
    """
    counts: dict[str, int] = defaultdict(int)
    for name in NAMES:
        counts[name.decode()] = 0
    if dbs.get("versions") is not None:
        for _k, v in txn.cursor(db=dbs["versions"]):
            try:
                version = decode_version(v, chunks=False)
            except Exception:  # noqa: BLE001 - fsck reports unreadable versions itself
                continue
            if version.delete_marker:
                counts["delete_markers"] += 1
            else:
                counts["objects"] += 1
                counts["logical_bytes"] += version.size
    if dbs.get("chunks") is not None:
        for _k, raw in txn.cursor(db=dbs["chunks"]):
            try:
                _fmt, _seg, _off, length, size, _flags, refs = CHUNK.unpack_from(raw)
            except struct.error:
                continue
            if refs > 0:
                counts["chunks"] += 1
                counts["refs"] += refs
                counts["unique_bytes"] += size
                counts["stored_bytes"] += length
            else:
                counts["released_chunks"] += 1
                counts["released_bytes"] += length
    return dict(counts)


def ensure(env: lmdb.Environment, dbs: Databases) -> None:
    """Count the statistics of a data directory that has none yet (once)."""
    with env.begin() as txn:
        if txn.get(READY, db=dbs.counters) is not None:
            return
    with env.begin(write=True) as txn:
        if txn.get(READY, db=dbs.counters) is not None:
            return
        handles = {"versions": dbs.versions, "chunks": dbs.chunks}
        for name, value in recount(txn, handles).items():
            txn.put(STATS_PREFIX + name.encode(), I64.pack(value), db=dbs.counters)
        txn.put(READY, b"1", db=dbs.counters)


@dataclass
class SegmentUsage:
    """One segment's recorded size and dead bytes."""

    segment: int
    size: int
    dead: int
    retiring: bool = False


@dataclass
class StorageStats:
    """Everything :func:`read_stats` reports."""

    objects: int = 0
    delete_markers: int = 0
    logical_bytes: int = 0
    chunks: int = 0
    refs: int = 0
    unique_bytes: int = 0
    stored_bytes: int = 0
    released_chunks: int = 0
    released_bytes: int = 0
    #: sum of the segment files' recorded sizes
    physical_bytes: int = 0
    dead_bytes: int = 0
    segments: list[SegmentUsage] = field(default_factory=list)

    @property
    def dedup_ratio(self) -> float:
        """Logical bytes per unique (deduplicated, decoded) byte."""
        return self.logical_bytes / self.unique_bytes if self.unique_bytes else 1.0

    @property
    def compression_ratio(self) -> float:
        """Unique bytes per stored payload byte."""
        return self.unique_bytes / self.stored_bytes if self.stored_bytes else 1.0

    @property
    def live_bytes(self) -> int:
        """Bytes of live records in segments (headers included)."""
        return self.stored_bytes + self.chunks * HEADER_SIZE

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (with the ratios)."""
        value = asdict(self)
        value["dedup_ratio"] = round(self.dedup_ratio, 4)
        value["compression_ratio"] = round(self.compression_ratio, 4)
        return value


def read_stats(
    txn: lmdb.Transaction[bytes], counters_db: lmdb._Database, segments_db: lmdb._Database | None
) -> StorageStats:
    """The current statistics (counters and the per-segment records)."""
    stats = StorageStats()
    for name, value in stored_counters(txn, counters_db).items():
        setattr(stats, name, value)
    if segments_db is not None:
        for k, v in txn.cursor(db=segments_db):
            try:
                info = codec.decode(v)
            except codec.CodecError:
                continue
            if info.get("retired"):
                continue
            usage = SegmentUsage(
                U64.unpack(k)[0],
                int(info.get("size", 0)),
                int(info.get("dead", 0)),
                bool(info.get("retiring")),
            )
            stats.segments.append(usage)
            stats.physical_bytes += usage.size
            stats.dead_bytes += usage.dead
    return stats


def store_stats(store: Store) -> StorageStats:
    """The statistics of an open :class:`~s4d.store.store.Store`."""
    with store.env.begin() as txn:
        return read_stats(txn, store.dbs.counters, store.dbs.segments)


def render(stats: StorageStats, verbose: bool = False) -> str:
    """A readable report."""
    rows = [
        ("object versions", f"{stats.objects} ({stats.delete_markers} delete markers)"),
        ("logical bytes", format_size(stats.logical_bytes)),
        ("unique bytes", format_size(stats.unique_bytes)),
        ("stored bytes", format_size(stats.stored_bytes)),
        ("physical bytes", format_size(stats.physical_bytes)),
        ("dead bytes", format_size(stats.dead_bytes)),
        ("chunks", f"{stats.chunks} ({stats.refs} references)"),
        ("released", f"{stats.released_chunks} chunks, {format_size(stats.released_bytes)}"),
        ("dedup ratio", f"{stats.dedup_ratio:.2f}"),
        ("compression", f"{stats.compression_ratio:.2f}"),
        ("segments", str(len(stats.segments))),
    ]
    lines = [f"  {name:<15} {value}" for name, value in rows]
    if verbose:
        for seg in stats.segments:
            frac = seg.dead / seg.size if seg.size else 0.0
            lines.append(
                f"  segment {seg.segment:08d}  size {seg.size}  dead {seg.dead} ({frac:.0%})"
                + ("  retiring" if seg.retiring else "")
            )
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``stats`` command's arguments to ``parser``."""
    parser.add_argument("data_dir", metavar="DATA_DIR", help="the data directory")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every segment")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print a data directory's statistics (read-only; safe while a server runs)."""
    out = out if out is not None else sys.stdout
    meta = os.path.join(args.data_dir, "meta")
    if not os.path.exists(os.path.join(meta, "data.mdb")):
        print(f"s4d stats: {args.data_dir}: no data directory", file=out)
        return 1
    env = lmdb.open(meta, readonly=True, lock=True, subdir=True, max_dbs=len(DATABASES) + 4)
    try:
        with env.begin() as txn:
            counters = env.open_db(b"counters", txn=txn, create=False)
            try:
                segments = env.open_db(b"segments", txn=txn, create=False)
            except lmdb.NotFoundError:
                segments = None
            stats = read_stats(txn, counters, segments)
            ready = txn.get(READY, db=counters) is not None
    finally:
        env.close()
    if args.json:
        json.dump(stats.to_json(), out, indent=2)
        out.write("\n")
    else:
        print(f"s4d stats {args.data_dir}", file=out)
        if not ready:
            print("  (not counted yet: the store has not been opened by this version)", file=out)
        print(render(stats, args.verbose), file=out)
    return 0


def format_size(n: int) -> str:
    """A byte count for people: ``1.5 MiB (1572864 B)``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit} ({n} B)"
