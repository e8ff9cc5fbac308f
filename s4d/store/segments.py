"""Append-only segment files: where chunk bytes live.

A :class:`SegmentSet` owns the ``segments/`` directory. One segment at a time is
*active* for appends in this process (guarded by an exclusive ``flock`` so that
another process never appends to it); it rotates when it reaches the configured
size. Appends reserve their range under a lock and write outside it, so
concurrent uploads interleave without waiting on each other's ``write``.
Durability is separate: :meth:`SegmentSet.sync` ``fdatasync``\\ s what was
appended, and the committer calls it before any metadata points at the bytes.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from awscrt.checksums import crc32c

from s4d.store import records
from s4d.util.histogram import SYNC_BOUNDS, Histogram
from s4d.util.writeback import start_writeback

_RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)

SEGMENT_SUFFIX = ".seg"
#: How often (seconds) :meth:`SegmentSet.file` looks for descriptors of deleted files.
SWEEP_INTERVAL = 30.0
#: An append at least this large starts its writeback at once (see :meth:`SegmentSet.append`).
WRITEBACK_MIN = 1 << 20
#: A payload at least this large is read apart from its header (no copy to cut it out).
SPLIT_READ = 64 << 10
#: Most buffers one append hands to ``pwritev`` (the system allows 1,024).
MAX_BUFFERS = 512


def segment_name(segment_id: int) -> str:
    """The file name of segment ``segment_id``."""
    return f"{segment_id:08d}{SEGMENT_SUFFIX}"


@dataclass(frozen=True)
class Location:
    """Where one record lives."""

    segment: int
    offset: int
    length: int  # payload length as stored

    @property
    def end(self) -> int:
        """The offset just past the record."""
        return self.offset + records.HEADER_SIZE + self.length


class SegmentFile:
    """One open segment file."""

    def __init__(self, path: str, segment_id: int, writable: bool) -> None:
        self.path = path
        self.segment_id = segment_id
        flags = os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY
        self.fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.size = os.fstat(self.fd).st_size
        self.synced = self.size
        self.writable = writable
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        #: set by every completed (or failed) write, cleared by :meth:`sync`
        self._dirty = False
        #: writes in progress; :meth:`close` waits for them to end before closing the fd
        self._writers = 0
        self._closed = False
        #: ``fdatasync`` calls made by :meth:`sync` so far
        self.fsyncs = 0

    def lock_exclusive(self) -> bool:
        """Take the append lock of this file; False if another process has it."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        return True

    def unlock(self) -> None:
        """Give up the append lock (this process no longer appends here)."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError:
            pass

    def reserve(self, length: int) -> int:
        """Reserve ``length`` bytes at the end; return their offset."""
        with self._lock:
            offset = self.size
            self.size += length
            return offset

    def write(self, offset: int, buffers: list[bytes | memoryview]) -> int:
        """Write ``buffers`` at ``offset`` (a range from :meth:`reserve`); return bytes written.

        The descriptor stays open until the write ends even if :meth:`close` is
        called meanwhile (compaction forgetting a segment), so a write can never
        land in another file that reused the descriptor number.
        """
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, f"segment {self.segment_id} is closed")
            self._writers += 1
        try:
            return os.pwritev(self.fd, buffers, offset)
        finally:
            # Even a failed write may have changed the file; the next sync must flush it.
            with self._lock:
                self._dirty = True
                self._writers -= 1
                close_now = self._closed and self._writers == 0
            if close_now:
                self._close_fd()

    def sync(self) -> int:
        """Make every byte written before this call durable; return the durable size.

        Whether to ``fdatasync`` is decided by the dirty flag that every completed
        write sets, not by comparing sizes: :meth:`reserve` grows :attr:`size` before
        the bytes are written, so a size-based test would let a sync that raced with
        an in-flight write mark those bytes synced and a later commit skip its
        ``fdatasync``. Syncs are serialised so that one returning early can never
        overtake another one's ``fdatasync`` of the same writes.
        """
        with self._sync_lock:
            with self._lock:
                target = self.size
                dirty = self._dirty
                self._dirty = False
            if dirty:
                try:
                    os.fdatasync(self.fd)
                except BaseException:
                    with self._lock:
                        self._dirty = True
                    raise
                self.fsyncs += 1
            with self._lock:
                self.synced = max(self.synced, target)
            return self.synced

    def close(self) -> None:
        """Close the descriptor (once any write in progress has ended)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            close_now = self._writers == 0
        if close_now:
            self._close_fd()

    def _close_fd(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class SegmentSet:
    """The segment files of one data directory.

    :param directory: the ``segments/`` directory.
    :param rotate_size: start a new segment once the active one reaches this size.
    :param allocate_id: returns a fresh, never reused segment id (kept in LMDB).
    :param monotonic: the monotonic clock (paces the sweep of deleted files' descriptors).
    """

    def __init__(
        self,
        directory: str,
        rotate_size: int,
        allocate_id: Callable[[], int],
        monotonic: Callable[[], float],
    ) -> None:
        self.directory = directory
        self._monotonic = monotonic
        self.rotate_size = rotate_size
        self._allocate_id = allocate_id
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[int, SegmentFile] = {}
        self._active: SegmentFile | None = None
        self._swept = monotonic()
        #: seconds each ``fdatasync`` of :meth:`sync` took (one skipped as clean is not counted)
        self.fsync_seconds = Histogram(SYNC_BOUNDS)
        self._observe_lock = threading.Lock()

    # -- discovery -----------------------------------------------------------------

    def segment_ids(self) -> list[int]:
        """Ids of every segment file present, ascending."""
        ids = []
        for name in os.listdir(self.directory):
            if name.endswith(SEGMENT_SUFFIX) and name[: -len(SEGMENT_SUFFIX)].isdigit():
                ids.append(int(name[: -len(SEGMENT_SUFFIX)]))
        return sorted(ids)

    def path(self, segment_id: int) -> str:
        """The path of segment ``segment_id``."""
        return os.path.join(self.directory, segment_name(segment_id))

    def file(self, segment_id: int) -> SegmentFile:
        """The open file of segment ``segment_id`` (opened read-only on first use)."""
        now = self._monotonic()
        if now - self._swept > SWEEP_INTERVAL:
            self._swept = now
            self.sweep_deleted()
        seg = self._open.get(segment_id)
        if seg is not None:
            return seg
        with self._lock:
            seg = self._open.get(segment_id)
            if seg is None:
                seg = SegmentFile(self.path(segment_id), segment_id, writable=False)
                self._open[segment_id] = seg
            return seg

    # -- appends -------------------------------------------------------------------

    def active(self) -> SegmentFile:
        """The segment appends go to, rotating or creating one as needed."""
        seg = self._active
        if seg is not None and seg.size < self.rotate_size:
            return seg
        with self._lock:
            seg = self._active
            if seg is None or seg.size >= self.rotate_size:
                seg = self._new_active()
            return seg

    def adopt_active(self, segment_id: int) -> bool:
        """Reuse an existing segment for appends if no other process holds it."""
        seg = SegmentFile(self.path(segment_id), segment_id, writable=True)
        if seg.size >= self.rotate_size or not seg.lock_exclusive():
            seg.close()
            return False
        with self._lock:
            old = self._open.pop(segment_id, None)
            if old is not None:
                old.close()
            self._open[segment_id] = seg
            self._active = seg
        return True

    def _new_active(self) -> SegmentFile:
        segment_id = self._allocate_id()
        seg = SegmentFile(self.path(segment_id), segment_id, writable=True)
        seg.lock_exclusive()
        _fsync_directory(self.directory)
        self._open[segment_id] = seg
        old, self._active = self._active, seg
        if old is not None:
            # No new appends go there: compaction may take it (see s4d.store.compaction).
            old.unlock()
        return seg

    def active_id(self) -> int | None:
        """The id of the segment this process appends to, if it has one yet."""
        seg = self._active
        return seg.segment_id if seg is not None else None

    def append(
        self, payload: bytes | memoryview, raw_length: int, content: bytes, flags: int = 0
    ) -> Location:
        """Append one chunk record; return where it went. Not yet durable."""
        header = records.encode_header(payload, raw_length, content, flags)
        return self._append(header, [payload], len(payload))

    def append_pieces(self, pieces: Sequence[bytes | memoryview], content: bytes) -> Location:
        """Append one uncompressed chunk record whose payload is ``pieces`` end to end.

        The pieces are written as they are, in one ``pwritev`` (never joined in
        memory): an upload's chunk goes from the socket's buffers to the file.
        """
        crc = 0
        length = 0
        for piece in pieces:
            crc = crc32c(piece, crc)
            length += len(piece)
        header = records.header_for(length, length, content, 0, crc)
        if len(pieces) >= MAX_BUFFERS:
            pieces = [b"".join(pieces)]
        return self._append(header, pieces, length)

    def _append(
        self, header: bytes, payload: Sequence[bytes | memoryview], length: int
    ) -> Location:
        total = len(header) + length
        seg = self.active()
        offset = seg.reserve(total)
        buffers = [header, *payload]
        written = seg.write(offset, buffers)
        while written < total:
            # A short write (the disk filled up mid-record): writing the rest either
            # completes the record or raises the real error (ENOSPC -> StorageFull).
            rest = memoryview(b"".join(buffers))[written:]
            more = seg.write(offset + written, [rest])
            if more <= 0:
                raise OSError(errno.EIO, f"short write to {seg.path}")
            written += more
        if total >= WRITEBACK_MIN:
            # The commit's fdatasync then waits for the last chunks only, not the
            # whole object: the disk writes while the rest is still arriving.
            start_writeback(seg.fd, offset, total)
        return Location(seg.segment_id, offset, length)

    def sync(self, segment_ids: set[int]) -> dict[int, int]:
        """fdatasync the named segments; return their durable sizes.

        A segment whose file compaction has deleted is skipped (durable size 0):
        a commit that still names it is refused by the metadata, and must not
        fail the other commits of its batch.
        """
        sizes = {}
        for sid in segment_ids:
            try:
                seg = self.file(sid)
                before, started = seg.fsyncs, self._monotonic()
                sizes[sid] = seg.sync()
                if seg.fsyncs != before:
                    elapsed = self._monotonic() - started
                    with self._observe_lock:  # writers' threads and the committer's sync here
                        self.fsync_seconds.observe(elapsed)
            except FileNotFoundError:
                sizes[sid] = 0
        return sizes

    # -- reads ---------------------------------------------------------------------

    def read(self, loc: Location) -> tuple[records.RecordHeader, bytes]:
        """Read and check one record; raise :class:`records.CorruptRecord` if bad."""
        seg = self.file(loc.segment)
        if loc.length < SPLIT_READ:
            data = os.pread(seg.fd, records.HEADER_SIZE + loc.length, loc.offset)
            header = records.decode_header(data)
            records.check_payload(header, memoryview(data)[records.HEADER_SIZE :])
            return header, data[records.HEADER_SIZE :]
        # A large payload is read into a buffer of its own: cutting it from one read
        # of header and payload together would copy it once more.
        header = records.decode_header(os.pread(seg.fd, records.HEADER_SIZE, loc.offset))
        payload = os.pread(seg.fd, loc.length, loc.offset + records.HEADER_SIZE)
        records.check_payload(header, payload)
        return header, payload

    def open_checked(self, loc: Location, content: bytes) -> tuple[int, records.RecordHeader]:
        """A descriptor of its own on ``loc``'s segment, once the record there is checked.

        The payload is checked where it lies (mapped, not copied), for the
        caller to send it from the file (``sendfile``); the caller closes the
        descriptor. Raises :class:`records.CorruptRecord` (or ``OSError``) if the
        record is not the chunk ``content`` or fails its checks.
        """
        fd = os.dup(self.file(loc.segment).fd)
        try:
            header = records.decode_header(os.pread(fd, records.HEADER_SIZE, loc.offset))
            if header.content != content:
                raise records.CorruptRecord("record holds another chunk")
            start = loc.offset + records.HEADER_SIZE
            if header.length == 0 or start + header.length > os.fstat(fd).st_size:
                raise records.CorruptRecord("truncated payload")
            base = start - start % mmap.ALLOCATIONGRANULARITY
            with mmap.mmap(
                fd, start - base + header.length, offset=base, access=mmap.ACCESS_READ
            ) as mapped:
                with memoryview(mapped) as view:
                    payload = view[start - base :]
                    try:
                        records.check_payload(header, payload)
                    finally:
                        payload.release()
        except BaseException:
            os.close(fd)
            raise
        return fd, header

    def read_cached(self, loc: Location) -> tuple[records.RecordHeader, bytes] | None:
        """As :meth:`read`, from the page cache only: None if the read would wait for the disk.

        ``preadv2`` with ``RWF_NOWAIT``; where the kernel or filesystem does not
        offer it, every call answers None (the caller reads on a worker thread).
        """
        if not self._nowait:
            return None
        size = records.HEADER_SIZE + loc.length
        buffer = bytearray(size)
        try:
            got = os.preadv(self.file(loc.segment).fd, [buffer], loc.offset, _RWF_NOWAIT)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            self._nowait = False
            return None
        if got != size:
            return None  # partly cached, or past the end: the blocking read tells which
        data = bytes(buffer)
        header = records.decode_header(data)
        records.check_payload(header, memoryview(data)[records.HEADER_SIZE :])
        return header, data[records.HEADER_SIZE :]

    #: reads from the page cache without waiting work here (cleared on the first refusal)
    _nowait = hasattr(os, "preadv") and hasattr(os, "RWF_NOWAIT")

    def forget(self, segment_id: int) -> None:
        """Close and drop segment ``segment_id`` from the cache."""
        with self._lock:
            seg = self._open.pop(segment_id, None)
            if seg is self._active:
                self._active = None
        if seg is not None:
            seg.close()

    def sweep_deleted(self) -> int:
        """Close cached descriptors of segment files that were deleted; return how many.

        Compaction in another process deletes segments this one may still hold
        open, which would keep their disk space allocated. Readers that still
        hold an old location retry with a fresh one (:meth:`Store.read_chunk`).
        """
        stale = []
        for sid, seg in list(self._open.items()):
            if seg is self._active:
                continue
            try:
                if os.fstat(seg.fd).st_nlink == 0:
                    stale.append(sid)
            except OSError:
                stale.append(sid)
        for sid in stale:
            self.forget(sid)
        return len(stale)

    def close(self) -> None:
        """Close every open segment."""
        with self._lock:
            for seg in self._open.values():
                seg.close()
            self._open.clear()
            self._active = None


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
