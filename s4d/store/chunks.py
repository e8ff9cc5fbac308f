"""Turning bytes into stored chunks and back: addressing, deduplication, compression."""

from __future__ import annotations

from dataclasses import dataclass

import blake3
import zstandard

from s4d.store.model import ChunkLocation, ChunkRef
from s4d.store.records import FLAG_ZSTD, CorruptRecord
from s4d.store.segments import Location, SegmentSet

#: The largest chunk an object is cut into.
DEFAULT_CHUNK_SIZE = 4 << 20
#: In ``auto`` mode keep the compressed form only when it saves this fraction.
AUTO_MIN_SAVING = 0.10


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

    def put(self, data: bytes) -> WrittenChunk:
        """Address ``data``; append it unless an identical chunk is already stored."""
        digest = digest_of(data)
        ref = ChunkRef(digest, len(data))
        if self.exists(digest):
            return WrittenChunk(ref, None)
        payload, flags = self._encode(data)
        try:
            loc: Location = self.segments.append(payload, len(data), digest, flags)
        except OSError as e:
            raise storage_error(e) from e
        return WrittenChunk(
            ref, ChunkLocation(digest, loc.segment, loc.offset, loc.length, len(data), flags)
        )

    def get(self, loc: ChunkLocation) -> bytes:
        """Read, check and decode one chunk; :class:`CorruptRecord` if damaged."""
        header, payload = self.segments.read(
            Location(loc.segment, loc.offset, loc.length)
        )
        if header.content != loc.digest:
            raise CorruptRecord("record holds another chunk")
        if header.flags & FLAG_ZSTD:
            data = zstandard.ZstdDecompressor().decompress(
                payload, max_output_size=header.raw_length
            )
        else:
            data = payload
        if len(data) != loc.size:
            raise CorruptRecord("decoded chunk has the wrong size")
        return data

    def _encode(self, data: bytes) -> tuple[bytes, int]:
        if self.compression == "off" or len(data) < 512:
            return data, 0
        packed = zstandard.ZstdCompressor(level=self.level).compress(data)
        if self.compression == "zstd" or len(packed) <= len(data) * (1 - AUTO_MIN_SAVING):
            if len(packed) < len(data):
                return packed, FLAG_ZSTD
        return data, 0


def storage_error(error: BaseException) -> BaseException:
    """``StorageFull`` for a full disk (or quota, or LMDB map); other errors unchanged."""
    import errno

    import lmdb

    from s4d.errors import S3Error

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return S3Error("StorageFull")
    if isinstance(error, lmdb.MapFullError):
        return S3Error("StorageFull", "The metadata map is full; raise S4_LMDB_MAP_SIZE.")
    if isinstance(error, lmdb.Error) and "No space left" in str(error):
        return S3Error("StorageFull")
    return error


class ExistsCheck:
    """Protocol-like base: ``__call__(digest) -> bool``."""

    def __call__(self, digest: bytes) -> bool:  # pragma: no cover - interface
        raise NotImplementedError
