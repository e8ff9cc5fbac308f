"""The scrubber: re-reads stored chunks at a bounded rate and checks them.

:class:`Scrubber` walks the chunk index in digest order, a slice at a time,
reading each chunk's record and checking everything a reader would and more:
the header and payload CRC32C, the content address in the header, and the
BLAKE3 digest of the decoded bytes. A chunk that fails is recorded in the
``damaged`` database (with where and why), which makes every read of an object
that needs it fail with an S3 error instead of serving bad bytes; the keys that
use it are reported. A later upload of the same bytes writes a good copy that
replaces the damaged one (:meth:`~s4d.store.views.chunks.ChunksView.add`).

The position survives between slices (in memory), so a periodic job scrubs
everything over time; reads are paced to a byte rate so that the scrubber never
competes with clients for the disk. Everything here blocks: the engine runs it
in a worker thread.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from s4d.store import records
from s4d.store.chunks import decode_payload, digest_of
from s4d.store.clock import Clock
from s4d.store.eventlog import EventLog
from s4d.store.model import ChunkLocation, ChunkRef
from s4d.store.schema import CHUNK, ENTRY_OBJECT, entry_id, u64
from s4d.store.segments import Location
from s4d.store.store import Store, StoreConfig
from s4d.store.txn import MetaTxn
from s4d.store.version_record import decode_version

#: Index entries read per (short) read transaction.
BATCH = 256
#: At most this many keys are reported per damaged chunk.
MAX_KEYS = 20


@dataclass
class DamagedChunk:
    """A chunk found corrupt, where it is, why, and the keys that use it."""

    digest: str  # hex
    segment: int
    offset: int
    reason: str
    keys: list[str] = field(default_factory=list)


@dataclass
class ScrubReport:
    """What one slice of scrubbing did."""

    chunks: int = 0
    bytes: int = 0
    #: chunks found damaged that were not known to be (recorded now, with their keys)
    damaged: list[DamagedChunk] = field(default_factory=list)
    #: every chunk that failed its checks: those of :attr:`damaged`, and those already
    #: recorded as damaged before (their keys are not looked up again)
    corrupt: list[DamagedChunk] = field(default_factory=list)
    #: the segments whose records were read
    segments: set[int] = field(default_factory=set)
    #: the walk reached the end of the index (and starts over next time)
    wrapped: bool = False
    seconds: float = 0.0


def verify_record(data: bytes, loc: ChunkLocation) -> tuple[records.RecordHeader, bytes, bytes]:
    """Check a record read at ``loc`` completely; return (header, payload, plain bytes).

    Raises :class:`records.CorruptRecord` naming what failed.
    """
    header = records.decode_header(data)
    payload = data[records.HEADER_SIZE :]
    records.check_payload(header, payload)
    if header.content != loc.digest:
        raise records.CorruptRecord("the record holds another chunk")
    plain = decode_payload(payload, header.flags, header.raw_length)
    if len(plain) != header.raw_length:
        raise records.CorruptRecord("decoded length differs from the header")
    if digest_of(plain) != loc.digest:
        raise records.CorruptRecord("decoded bytes do not match the chunk's BLAKE3 digest")
    return header, payload, plain


def keys_using(
    t: MetaTxn, digests: Iterable[bytes], limit: int = MAX_KEYS
) -> dict[bytes, list[str]]:
    """The ``bucket/key`` (and version) of every version or part using each digest.

    Walks every bucket's namespace tree: only for reporting damage, which is rare.
    """
    wanted = set(digests)
    found: dict[bytes, list[str]] = {d: [] for d in wanted}
    if not wanted:
        return found

    def note(version_chunks: list[ChunkRef], label: str) -> None:
        for ref in {c.digest for c in version_chunks} & wanted:
            if len(found[ref]) < limit:
                found[ref].append(label)

    versions = t.versions.cursor()
    for bucket in t.buckets.all():
        stack: list[tuple[int, bytes]] = [(bucket.root_dir, b"")]
        while stack:
            dir_id, prefix = stack.pop()
            for name, value in t.ns.entries(dir_id, 1 << 30):
                if value[:1] == ENTRY_OBJECT:
                    object_id = entry_id(value)
                    key = (prefix + name).decode("utf-8", "replace")
                    if not versions.set_range(u64(object_id)):
                        continue
                    for k, v in versions:
                        if not k.startswith(u64(object_id)):
                            break
                        version = decode_version(v, key)
                        label = f"{bucket.name}/{key}"
                        if version.version_id != "null":
                            label += f" (version {version.version_id})"
                        note(version.chunks, label)
                else:
                    stack.append((entry_id(value), prefix + name))
    for upload in t.multipart.all_uploads():
        for part in t.multipart.parts(upload.upload_id):
            note(part.chunks, f"upload {upload.upload_id} part {part.number}")
    return found


def mark_damaged(
    store: Store, damaged: list[tuple[ChunkLocation, str]], events: EventLog | None = None
) -> list[DamagedChunk]:
    """Record chunks as damaged (where the index still points at them); report their keys.

    Returns (and logs, to ``events`` or else the store's event log) the chunks
    that were not known to be damaged before.
    """
    if not damaged:
        return []
    events = events if events is not None else store.events
    now = int(store.clock.wall())

    def mark(t: MetaTxn) -> list[ChunkLocation]:
        marked = []
        for loc, reason in damaged:
            found = t.chunks.get(loc.digest)
            if found is None or (found[0].segment, found[0].offset) != (loc.segment, loc.offset):
                continue
            info = {"seg": loc.segment, "off": loc.offset, "why": reason, "t": now}
            if t.damaged.mark(loc.digest, info):
                marked.append(loc)  # newly found (known damage is not reported again)
        return marked

    marked: list[ChunkLocation] = store.commit(mark)
    reasons = {loc.digest: reason for loc, reason in damaged}
    with store.read() as t:
        users = keys_using(t, [loc.digest for loc in marked])
    report = []
    for loc in marked:
        item = DamagedChunk(
            loc.digest.hex(), loc.segment, loc.offset, reasons[loc.digest], users[loc.digest]
        )
        events.error(
            "Damaged chunk {digest} in segment {segment} at offset {offset} ({reason}); "
            "used by: {keys}",
            digest=item.digest[:16],
            segment=item.segment,
            offset=item.offset,
            reason=item.reason,
            keys=", ".join(item.keys) or "nothing",
        )
        report.append(item)
    return report


class Scrubber:
    """Re-reads chunks in digest order, a slice at a time, at a bounded rate.

    :param rate: most bytes read per second (None: as fast as the disk goes).
    :param clock: the clocks to pace with (default: the store's).
    :param events: where damage is logged (default: the store's event log).
    """

    def __init__(
        self,
        store: Store,
        rate: float | None = 32 << 20,
        clock: Clock | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.store = store
        self.rate = rate
        self.clock = clock if clock is not None else store.clock
        self.events = events if events is not None else store.events
        self.position = b""
        self.passes = 0

    def run_slice(
        self, max_bytes: int, should_stop: Callable[[], bool] = lambda: False
    ) -> ScrubReport:
        """Check chunks from the current position until ``max_bytes`` were read."""
        report = ScrubReport()
        start = self.clock.monotonic()
        bad: list[tuple[ChunkLocation, str]] = []
        while report.bytes < max_bytes and not should_stop():
            batch = self._next_batch()
            if not batch:
                self.position = b""
                self.passes += 1
                report.wrapped = True
                break
            for loc in batch:
                error = self._check(loc)
                self.position = loc.digest + b"\0"
                report.chunks += 1
                report.bytes += records.HEADER_SIZE + loc.length
                report.segments.add(loc.segment)
                if error is not None:
                    bad.append((loc, error))
                self._pace(start, report.bytes)
                if report.bytes >= max_bytes or should_stop():
                    break
        report.damaged = mark_damaged(self.store, bad, self.events)
        new = {item.digest for item in report.damaged}
        report.corrupt = report.damaged + [
            DamagedChunk(loc.digest.hex(), loc.segment, loc.offset, reason)
            for loc, reason in bad
            if loc.digest.hex() not in new
        ]
        report.seconds = self.clock.monotonic() - start
        return report

    def run_pass(self) -> ScrubReport:
        """Check every chunk once from the start (tests, the ``scrub`` command)."""
        self.position = b""
        total = ScrubReport()
        while True:
            part = self.run_slice(1 << 62)
            total.chunks += part.chunks
            total.bytes += part.bytes
            total.damaged += part.damaged
            total.corrupt += part.corrupt
            total.segments |= part.segments
            total.seconds += part.seconds
            if part.wrapped:
                total.wrapped = True
                return total

    def _next_batch(self) -> list[ChunkLocation]:
        found: list[ChunkLocation] = []
        with self.store.read() as t:
            cursor = t.chunks.cursor()
            if not cursor.set_range(self.position):
                return found
            for k, raw in cursor:
                _fmt, seg, off, length, size, flags, _refs = CHUNK.unpack_from(raw)
                found.append(ChunkLocation(bytes(k), seg, off, length, size, flags))
                if len(found) >= BATCH:
                    break
        return found

    def _check(self, loc: ChunkLocation) -> str | None:
        """Why the chunk at ``loc`` is bad, or None (also None if it moved meanwhile)."""
        try:
            seg = self.store.segments.file(loc.segment)
            data = seg_read(seg.fd, loc)
            verify_record(data, loc)
            return None
        except (OSError, records.CorruptRecord) as e:
            with self.store.read() as t:
                found = t.chunks.get(loc.digest)
            if found is None or (found[0].segment, found[0].offset) != (loc.segment, loc.offset):
                return None  # moved or purged by compaction while we looked
            return str(e) if isinstance(e, records.CorruptRecord) else f"unreadable: {e}"

    def _pace(self, start: float, done: int) -> None:
        if not self.rate:
            return
        ahead = done / self.rate - (self.clock.monotonic() - start)
        if ahead > 0:
            self.clock.sleep(ahead)


def seg_read(fd: int, loc: ChunkLocation | Location) -> bytes:
    """The bytes of the record at ``loc`` (header and payload)."""
    data = os.pread(fd, records.HEADER_SIZE + loc.length, loc.offset)
    if len(data) != records.HEADER_SIZE + loc.length:
        raise records.CorruptRecord("record extends past the end of the file")
    return data


# -- the command -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scrub`` command's arguments to ``parser``."""
    parser.add_argument("data_dir", metavar="DATA_DIR", help="the data directory")
    parser.add_argument(
        "--rate", type=float, default=0, help="most MB/s to read (default: unpaced)"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Check every stored chunk once; mark and report damaged ones; 1 if any."""
    out = out if out is not None else sys.stdout
    if not os.path.isdir(os.path.join(args.data_dir, "meta")):
        print(f"s4d scrub: {args.data_dir}: no data directory", file=out)
        return 1
    store = Store(StoreConfig(args.data_dir))
    try:
        report = Scrubber(store, rate=args.rate * 1e6 or None).run_pass()
    finally:
        store.close()
    print(
        f"scrubbed {report.chunks} chunks ({report.bytes} bytes) in {report.seconds:.2f} s; "
        f"{len(report.damaged)} damaged",
        file=out,
    )
    for item in report.damaged:
        print(
            f"  chunk {item.digest[:16]} segment {item.segment} offset {item.offset}: "
            f"{item.reason}; keys: {', '.join(item.keys) or 'none'}",
            file=out,
        )
    return 1 if report.damaged else 0
