"""Turning bytes into stored chunks and back: addressing, deduplication, compression."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import blake3
import lmdb
import zstandard

from s4d.errors import S3Error
from s4d.store.model import ChunkLocation, ChunkRef
from s4d.store.records import FLAG_ZSTD, HEADER_SIZE, CorruptRecord, RecordHeader
from s4d.store.segments import Location, SegmentSet

#: Tells whether a digest is already indexed (and readable): the dedup check.
ExistsCheck = Callable[[bytes], bool]

#: The largest chunk an object is cut into.
DEFAULT_CHUNK_SIZE = 4 << 20
#: In ``auto`` mode keep the compressed form only when it saves this fraction.
AUTO_MIN_SAVING = 0.10
#: In ``auto`` mode a chunk larger than this is first judged by a sample of this size
#: (compressed at level 1): incompressible data then costs one small probe.
AUTO_SAMPLE = 64 << 10
#: ... and the whole chunk is compressed only if the sample shrank below this fraction.
AUTO_SAMPLE_RATIO = 0.85
#: Chunks smaller than this are never compressed (headers would eat the gain).
MIN_COMPRESS = 512

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """A per-thread compressor for ``level`` (contexts are costly to make, not thread-safe)."""
    cache = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    found = cache.get(level)
    if found is None:
        found = cache[level] = zstandard.ZstdCompressor(level=level)
    return found


def _decompressor() -> zstandard.ZstdDecompressor:
    found = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def decode_payload(payload: bytes, flags: int, raw_length: int) -> bytes:
    """The plain bytes of a record's payload (decompressed if its flags say so)."""
    if flags & FLAG_ZSTD:
        try:
            return _decompressor().decompress(payload, max_output_size=raw_length)
        except zstandard.ZstdError as e:
            raise CorruptRecord(f"payload does not decompress: {e}") from e
    return payload


def middle_sample(pieces: Sequence[bytes | memoryview], size: int) -> bytes | memoryview:
    """The :data:`AUTO_SAMPLE` bytes in the middle of ``size`` bytes given as ``pieces``.

    A view when one piece holds them all, else those bytes joined (never the whole).
    """
    start = (size - AUTO_SAMPLE) // 2
    end = start + AUTO_SAMPLE
    parts: list[memoryview] = []
    offset = 0
    for piece in pieces:
        piece_end = offset + len(piece)
        if piece_end > start and offset < end:
            parts.append(memoryview(piece)[max(start - offset, 0) : min(end, piece_end) - offset])
        if piece_end >= end:
            break
        offset = piece_end
    return parts[0] if len(parts) == 1 else b"".join(parts)


def sample_compresses(sample: bytes | memoryview) -> bool:
    """Whether ``sample`` shrinks enough at level 1 for its chunk to be worth compressing."""
    return len(_compressor(1).compress(sample)) <= AUTO_SAMPLE * AUTO_SAMPLE_RATIO


def encode_payload(
    data: bytes, compression: str, level: int, sampled: bool = False
) -> tuple[bytes, int]:
    """The payload to store for ``data`` and its record flags, under a compression mode.

    ``off`` stores as is; ``zstd`` compresses whenever that is smaller; ``auto``
    compresses only when it saves :data:`AUTO_MIN_SAVING`, and for a large chunk
    first compresses a :data:`AUTO_SAMPLE` from its middle at level 1, so that
    incompressible data (media, archives, encrypted files) costs one small probe.
    ``sampled``: the caller's probe already found the sample compressible.
    """
    if compression == "off" or len(data) < MIN_COMPRESS:
        return data, 0
    if compression == "auto" and len(data) > 2 * AUTO_SAMPLE and not sampled:
        if not sample_compresses(middle_sample([data], len(data))):
            return data, 0
    packed = _compressor(level).compress(data)
    if compression == "zstd" or len(packed) <= len(data) * (1 - AUTO_MIN_SAVING):
        if len(packed) < len(data):
            return packed, FLAG_ZSTD
    return data, 0


def digest_of(data: bytes | memoryview) -> bytes:
    """The content address of a chunk (BLAKE3, 32 bytes)."""
    return blake3.blake3(data).digest()


@dataclass(frozen=True)
class WrittenChunk:
    """A chunk after :meth:`ChunkStore.put`: its reference and, if new, where it went."""

    ref: ChunkRef
    location: ChunkLocation | None  # None: an indexed copy already existed


class ChunkStore:
    """Writes and reads chunks in a :class:`SegmentSet`.

    :param exists: tells whether a digest is already indexed (dedup check).
    :param compression: ``off``, ``auto`` or ``zstd``.
    """

    def __init__(
        self,
        segments: SegmentSet,
        exists: ExistsCheck,
        compression: str = "off",
        level: int = 3,
    ) -> None:
        self.segments = segments
        self.exists = exists
        self.compression = compression
        self.level = level

    def put(self, data: bytes, sampled: bool = False) -> WrittenChunk:
        """Address ``data``; append it unless an identical chunk is already stored.

        ``sampled``: ``auto`` compression's probe already ran and found it compressible.
        """
        digest = digest_of(data)
        ref = ChunkRef(digest, len(data))
        if self.exists(digest):
            return WrittenChunk(ref, None)
        payload, flags = encode_payload(data, self.compression, self.level, sampled)
        try:
            loc: Location = self.segments.append(payload, len(data), digest, flags)
        except OSError as e:
            raise storage_error(e) from e
        return WrittenChunk(
            ref, ChunkLocation(digest, loc.segment, loc.offset, loc.length, len(data), flags)
        )

    def put_pieces(self, pieces: Sequence[bytes | memoryview]) -> WrittenChunk:
        """Like :meth:`put` for a chunk given as buffers end to end, without joining them.

        Only an uncompressed chunk is written from its pieces; a chunk to be
        compressed is joined first (the compressor needs one buffer). In
        ``auto`` mode the probe reads its sample from the pieces, so an
        incompressible chunk is never joined.
        """
        if self.compression == "auto":
            size = sum(len(piece) for piece in pieces)
            if size > 2 * AUTO_SAMPLE:
                if sample_compresses(middle_sample(pieces, size)):
                    return self.put(b"".join(pieces), sampled=True)
                return self._put_plain(pieces)
        if self.compression != "off":
            return self.put(b"".join(pieces))
        return self._put_plain(pieces)

    def _put_plain(self, pieces: Sequence[bytes | memoryview]) -> WrittenChunk:
        """Address and append a chunk as it is, from its pieces."""
        hasher = blake3.blake3()
        size = 0
        for piece in pieces:
            hasher.update(piece)
            size += len(piece)
        digest = hasher.digest()
        ref = ChunkRef(digest, size)
        if self.exists(digest):
            return WrittenChunk(ref, None)
        try:
            loc = self.segments.append_pieces(pieces, digest)
        except OSError as e:
            raise storage_error(e) from e
        return WrittenChunk(ref, ChunkLocation(digest, loc.segment, loc.offset, size, size, 0))

    def get(self, loc: ChunkLocation) -> bytes:
        """Read, check and decode one chunk; :class:`CorruptRecord` if damaged."""
        return self._checked(
            loc, *self.segments.read(Location(loc.segment, loc.offset, loc.length))
        )

    def get_cached(self, loc: ChunkLocation) -> bytes | None:
        """As :meth:`get` if the chunk is in the page cache; None if reading it would wait."""
        found = self.segments.read_cached(Location(loc.segment, loc.offset, loc.length))
        return None if found is None else self._checked(loc, *found)

    def _checked(self, loc: ChunkLocation, header: RecordHeader, payload: bytes) -> bytes:
        if header.content != loc.digest:
            raise CorruptRecord("record holds another chunk")
        data = decode_payload(payload, header.flags, header.raw_length)
        if len(data) != loc.size:
            raise CorruptRecord("decoded chunk has the wrong size")
        return data

    def open_plain(self, loc: ChunkLocation) -> tuple[int, int] | None:
        """A checked descriptor to send an uncompressed chunk from, and where its bytes start.

        None if the chunk is compressed. The caller closes the descriptor.
        Raises :class:`CorruptRecord` (or ``OSError``) as :meth:`get`.
        """
        if loc.flags & FLAG_ZSTD:
            return None
        fd, header = self.segments.open_checked(
            Location(loc.segment, loc.offset, loc.length), loc.digest
        )
        if header.flags & FLAG_ZSTD or header.raw_length != loc.size or header.length != loc.size:
            os.close(fd)
            raise CorruptRecord("record does not match its location")
        return fd, loc.offset + HEADER_SIZE


#: Below this many free bytes, an I/O error of an LMDB commit is taken for a full disk.
LOW_SPACE = 16 << 20


def storage_error(error: BaseException, meta_path: str | None = None) -> BaseException:
    """``StorageFull`` for a full disk (or quota, or LMDB map); other errors unchanged.

    LMDB reports a short write of its pages as ``EIO``, which is what a commit
    gets when the disk fills up mid-write; with ``meta_path`` (the environment's
    directory) such an error is ``StorageFull`` when that filesystem is nearly full.
    """
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return S3Error("StorageFull")
    if isinstance(error, lmdb.MapFullError):
        return S3Error("StorageFull", "The metadata map is full; raise S4_LMDB_MAP_SIZE.")
    if isinstance(error, lmdb.Error) and "No space left" in str(error):
        return S3Error("StorageFull")
    if meta_path and isinstance(error, lmdb.Error) and "Input/output error" in str(error):
        try:
            fs = os.statvfs(meta_path)
        except OSError:
            return error
        if fs.f_bavail * fs.f_frsize < LOW_SPACE:
            return S3Error("StorageFull")
    return error
