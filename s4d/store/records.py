"""The on-disk record format of segment files.

A record is a fixed 56-byte header followed by its payload::

    magic      4s   b"S4RC"
    version    B    format version (1)
    rtype      B    record type (1 = chunk)
    flags      H    bit 0: payload is zstd-compressed
    length     I    payload length as stored
    raw_length I    payload length once decoded
    content    32s  BLAKE3 of the decoded payload (the chunk's address)
    body_crc   I    CRC32C of the stored payload
    head_crc   I    CRC32C of the 52 header bytes before it

The payload checksum lives in the header so that a record is read with one
``pread``; a torn write shows up as a payload whose CRC does not match. The magic
and the header CRC let :func:`scan` resynchronise after a damaged region.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from awscrt.checksums import crc32c

MAGIC = b"S4RC"
FORMAT_VERSION = 1
RTYPE_CHUNK = 1
FLAG_ZSTD = 0x1

_HEAD = struct.Struct("<4sBBHII32sI")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + _CRC.size  # 56
#: The largest payload a record may carry (a sanity bound for scans).
MAX_PAYLOAD = 64 << 20


class CorruptRecord(Exception):
    """A record failed its magic, version or checksum test."""


@dataclass(frozen=True)
class RecordHeader:
    """The decoded fixed header of a record."""

    rtype: int
    flags: int
    length: int
    raw_length: int
    content: bytes
    body_crc: int


def encode_header(
    payload: bytes | memoryview, raw_length: int, content: bytes, flags: int = 0
) -> bytes:
    """Return the 56-byte header for ``payload`` (the payload is not copied)."""
    return header_for(len(payload), raw_length, content, flags, crc32c(payload))


def header_for(length: int, raw_length: int, content: bytes, flags: int, body_crc: int) -> bytes:
    """The 56-byte header of a payload of ``length`` bytes whose CRC32C is ``body_crc``.

    For a payload written from several buffers, whose CRC is computed piece by piece.
    """
    head = _HEAD.pack(
        MAGIC, FORMAT_VERSION, RTYPE_CHUNK, flags, length, raw_length, content, body_crc
    )
    return head + _CRC.pack(crc32c(head))


def decode_header(head: bytes | memoryview) -> RecordHeader:
    """Decode and check a header; raise :class:`CorruptRecord` if it is not valid."""
    if len(head) < HEADER_SIZE:
        raise CorruptRecord("short header")
    fixed = bytes(head[: _HEAD.size])
    magic, version, rtype, flags, length, raw_length, content, body_crc = _HEAD.unpack(fixed)
    if magic != MAGIC:
        raise CorruptRecord("bad magic")
    (head_crc,) = _CRC.unpack_from(head, _HEAD.size)
    if crc32c(fixed) != head_crc:
        raise CorruptRecord("header checksum mismatch")
    if version != FORMAT_VERSION:
        raise CorruptRecord(f"unknown record version {version}")
    if length > MAX_PAYLOAD:
        raise CorruptRecord("implausible payload length")
    return RecordHeader(rtype, flags, length, raw_length, content, body_crc)


def check_payload(header: RecordHeader, payload: bytes | memoryview) -> None:
    """Raise :class:`CorruptRecord` unless ``payload`` matches ``header``."""
    if len(payload) != header.length:
        raise CorruptRecord("truncated payload")
    if crc32c(payload) != header.body_crc:
        raise CorruptRecord("payload checksum mismatch")


@dataclass(frozen=True)
class ScannedRecord:
    """A record found by :func:`scan`: where it is and what it holds."""

    offset: int
    header: RecordHeader

    @property
    def end(self) -> int:
        """The offset just past this record."""
        return self.offset + HEADER_SIZE + self.header.length


@dataclass(frozen=True)
class DamagedRegion:
    """A byte range :func:`scan` could not read as records."""

    offset: int
    end: int


def scan(
    data_at: ReadAt, size: int, start: int = 0, verify_payload: bool = True
) -> Iterator[ScannedRecord | DamagedRegion]:
    """Walk the records of a segment from ``start`` to ``size``.

    Valid records are yielded in order. Bytes that do not form a valid record
    are yielded as one :class:`DamagedRegion` each, after which the scan
    resynchronises at the next magic whose header and payload check out.
    """
    offset = start
    bad_from: int | None = None
    while offset + HEADER_SIZE <= size:
        record = _try_record(data_at, offset, size, verify_payload)
        if record is not None:
            if bad_from is not None:
                yield DamagedRegion(bad_from, offset)
                bad_from = None
            yield record
            offset = record.end
            continue
        if bad_from is None:
            bad_from = offset
        offset = _next_magic(data_at, offset + 1, size)
    if bad_from is not None or offset < size:
        yield DamagedRegion(bad_from if bad_from is not None else offset, size)


class ReadAt:
    """Positional reads from a file descriptor (``os.pread``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)


def _try_record(
    data_at: ReadAt, offset: int, size: int, verify_payload: bool
) -> ScannedRecord | None:
    try:
        header = decode_header(data_at(offset, HEADER_SIZE))
    except CorruptRecord:
        return None
    if offset + HEADER_SIZE + header.length > size:
        return None
    if verify_payload:
        try:
            check_payload(header, data_at(offset + HEADER_SIZE, header.length))
        except CorruptRecord:
            return None
    return ScannedRecord(offset, header)


def _next_magic(data_at: ReadAt, offset: int, size: int) -> int:
    window = 1 << 20
    while offset < size:
        block = data_at(offset, min(window + len(MAGIC) - 1, size - offset))
        found = block.find(MAGIC)
        if found >= 0:
            return offset + found
        if len(block) < window:
            return size
        offset += window
    return size
