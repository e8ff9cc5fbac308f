"""Tests for the segment record format and the resynchronising scan.

Strategy: records are built in memory with :func:`records.encode_header` and
read through a tiny in-memory ``ReadAt`` stand-in, so every damage pattern
(each single-bit flip, garbage, a torn record, a zeroed hole) is applied
exactly and checked exhaustively without touching the disk.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import records
from s4d.store.chunks import digest_of


class BytesAt:
    """``ReadAt`` over a bytes object."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __call__(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


def record(payload: bytes, flags: int = 0) -> bytes:
    """One whole encoded record holding ``payload``."""
    return records.encode_header(payload, len(payload), digest_of(payload), flags) + payload


def decode(data: bytes) -> tuple[records.RecordHeader, bytes]:
    """Decode and check one whole record."""
    header = records.decode_header(data)
    payload = data[records.HEADER_SIZE :]
    records.check_payload(header, payload)
    return header, payload


def scan_all(data: bytes) -> list[records.ScannedRecord | records.DamagedRegion]:
    return list(records.scan(BytesAt(data), len(data)))  # type: ignore[arg-type]


class RoundTripTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        for payload in [b"", b"x", b"hello world" * 100, os.urandom(70_000)]:
            data = record(payload, flags=records.FLAG_ZSTD)
            self.assertEqual(len(data), records.HEADER_SIZE + len(payload))
            header, body = decode(data)
            self.assertEqual(body, payload)
            self.assertEqual(header.length, len(payload))
            self.assertEqual(header.raw_length, len(payload))
            self.assertEqual(header.content, digest_of(payload))
            self.assertEqual(header.flags, records.FLAG_ZSTD)
            self.assertEqual(header.rtype, records.RTYPE_CHUNK)

    def test_header_size(self) -> None:
        self.assertEqual(records.HEADER_SIZE, 56)
        self.assertEqual(len(records.encode_header(b"abc", 3, b"\0" * 32)), 56)

    def test_short_header(self) -> None:
        self.assertRaises(records.CorruptRecord, records.decode_header, record(b"abc")[:55])

    def test_truncated_payload(self) -> None:
        data = record(b"abcdef")
        header = records.decode_header(data)
        self.assertRaises(records.CorruptRecord, records.check_payload, header, data[56:-1])

    def test_implausible_length(self) -> None:
        head = records.encode_header(b"", records.MAX_PAYLOAD + 1, b"\0" * 32)
        # Forge a header whose checksum is right but whose length is absurd.
        import struct

        from awscrt.checksums import crc32c

        fixed = bytearray(head[:52])
        struct.pack_into("<I", fixed, 8, records.MAX_PAYLOAD + 1)
        forged = bytes(fixed) + struct.pack("<I", crc32c(bytes(fixed)))
        self.assertRaises(records.CorruptRecord, records.decode_header, forged)


class BitFlipTests(SynchronousTestCase):
    """Every single-bit flip anywhere in a record is detected."""

    def assertAllFlipsDetected(self, payload: bytes) -> None:
        data = record(payload)
        for byte in range(len(data)):
            for bit in range(8):
                damaged = bytearray(data)
                damaged[byte] ^= 1 << bit
                try:
                    decode(bytes(damaged))
                except records.CorruptRecord:
                    continue
                self.fail(f"flip of bit {bit} in byte {byte} went unnoticed")

    def test_flips_small(self) -> None:
        self.assertAllFlipsDetected(b"some payload bytes")

    def test_flips_empty_payload(self) -> None:
        self.assertAllFlipsDetected(b"")

    def test_flips_larger(self) -> None:
        self.assertAllFlipsDetected(os.urandom(1500))


class ScanTests(SynchronousTestCase):
    """The scan yields every intact record and resynchronises after damage."""

    def setUp(self) -> None:
        self.payloads = [b"first", b"second" * 50, b"", b"fourth" * 1000, b"fifth"]
        self.recs = [record(p) for p in self.payloads]

    def offsets(self, parts: list[bytes]) -> list[int]:
        found, at = [], 0
        for part in parts:
            found.append(at)
            at += len(part)
        return found

    def test_clean(self) -> None:
        data = b"".join(self.recs)
        items = scan_all(data)
        self.assertEqual(
            [(i.offset, i.header.content) for i in items],  # type: ignore[union-attr]
            [
                (o, digest_of(p))
                for o, p in zip(self.offsets(self.recs), self.payloads, strict=True)
            ],
        )
        self.assertEqual(items[-1].end, len(data))

    def test_empty(self) -> None:
        self.assertEqual(scan_all(b""), [])

    def test_start_offset(self) -> None:
        data = b"".join(self.recs)
        items = list(records.scan(BytesAt(data), len(data), start=len(self.recs[0])))  # type: ignore[arg-type]
        self.assertEqual(len(items), len(self.recs) - 1)

    def test_garbage_between_records(self) -> None:
        garbage = b"\x07garbage S4R not a magic" + os.urandom(300).replace(b"S4RC", b"xxxx")
        parts = [self.recs[0], self.recs[1], garbage, self.recs[2], self.recs[3], self.recs[4]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        items = scan_all(data)
        self.assertIsInstance(items[0], records.ScannedRecord)
        self.assertIsInstance(items[1], records.ScannedRecord)
        self.assertEqual(items[2], records.DamagedRegion(offs[2], offs[3]))
        self.assertEqual([i.offset for i in items[3:]], offs[3:])
        self.assertTrue(all(isinstance(i, records.ScannedRecord) for i in items[3:]))

    def test_garbage_containing_magic(self) -> None:
        garbage = b"junk" + records.MAGIC + b"\0" * 80 + records.MAGIC + b"more junk"
        parts = [self.recs[0], garbage, self.recs[1]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        items = scan_all(data)
        self.assertEqual(
            items,
            [
                records.ScannedRecord(0, records.decode_header(self.recs[0])),
                records.DamagedRegion(offs[1], offs[2]),
                records.ScannedRecord(offs[2], records.decode_header(self.recs[1])),
            ],
        )

    def test_torn_record_in_the_middle(self) -> None:
        # The fourth record was cut short (a torn write) and the fifth follows it.
        torn = self.recs[3][: records.HEADER_SIZE + 100]
        parts = [self.recs[0], self.recs[1], self.recs[2], torn, self.recs[4]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        items = scan_all(data)
        self.assertEqual([i.offset for i in items[:3]], offs[:3])
        self.assertEqual(items[3], records.DamagedRegion(offs[3], offs[4]))
        self.assertIsInstance(items[4], records.ScannedRecord)
        self.assertEqual(items[4].offset, offs[4])
        self.assertEqual(len(items), 5)

    def test_torn_header(self) -> None:
        parts = [self.recs[0], self.recs[1][:20], self.recs[2]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        self.assertEqual(
            [type(i).__name__ for i in scan_all(data)],
            ["ScannedRecord", "DamagedRegion", "ScannedRecord"],
        )
        self.assertEqual(scan_all(data)[1], records.DamagedRegion(offs[1], offs[2]))

    def test_torn_record_at_the_end(self) -> None:
        for cut in (1, 10, records.HEADER_SIZE, records.HEADER_SIZE + 5, len(self.recs[3]) - 1):
            parts = [self.recs[0], self.recs[3][:cut]]
            data = b"".join(parts)
            items = scan_all(data)
            self.assertEqual(
                items,
                [
                    records.ScannedRecord(0, records.decode_header(self.recs[0])),
                    records.DamagedRegion(len(self.recs[0]), len(data)),
                ],
                f"cut at {cut}",
            )

    def test_zeroed_hole(self) -> None:
        # A reserved range that was never written reads back as zeros.
        hole = b"\0" * 4096
        parts = [self.recs[0], hole, self.recs[1], self.recs[2]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        items = scan_all(data)
        self.assertEqual(items[1], records.DamagedRegion(offs[1], offs[2]))
        self.assertEqual([i.offset for i in items[2:]], offs[2:])

    def test_zeroed_record(self) -> None:
        # A record whose bytes were zeroed in place, between two intact ones.
        parts = [self.recs[0], b"\0" * len(self.recs[1]), self.recs[2]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        self.assertEqual(scan_all(data)[1], records.DamagedRegion(offs[1], offs[2]))

    def test_flipped_payload_bit(self) -> None:
        damaged = bytearray(self.recs[1])
        damaged[records.HEADER_SIZE + 7] ^= 0x10
        parts = [self.recs[0], bytes(damaged), self.recs[2]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        items = scan_all(data)
        self.assertEqual(items[1], records.DamagedRegion(offs[1], offs[2]))
        self.assertEqual(items[2].offset, offs[2])

    def test_header_only_scan_skips_payload_check(self) -> None:
        damaged = bytearray(self.recs[1])
        damaged[records.HEADER_SIZE + 7] ^= 0x10
        data = self.recs[0] + bytes(damaged)
        items = list(records.scan(BytesAt(data), len(data), verify_payload=False))  # type: ignore[arg-type]
        self.assertEqual([type(i) for i in items], [records.ScannedRecord] * 2)

    def test_large_garbage_window(self) -> None:
        # Garbage longer than the scan's 1 MiB search window.
        garbage = b"\xaa" * ((1 << 20) + 12345)
        parts = [self.recs[0], garbage, self.recs[1]]
        data = b"".join(parts)
        offs = self.offsets(parts)
        items = scan_all(data)
        self.assertEqual(items[1], records.DamagedRegion(offs[1], offs[2]))
        self.assertEqual(items[2].offset, offs[2])

    def test_magic_straddles_window(self) -> None:
        # A record starting just across the 1 MiB boundary of the search window.
        for shift in (-3, -2, -1, 0, 1):
            garbage = b"\x55" * ((1 << 20) + shift)
            data = b"\x00" + garbage + self.recs[1]
            items = scan_all(data)
            self.assertEqual(
                items,
                [
                    records.DamagedRegion(0, 1 + len(garbage)),
                    records.ScannedRecord(1 + len(garbage), records.decode_header(self.recs[1])),
                ],
                f"shift {shift}",
            )

    def test_scan_of_a_file(self) -> None:
        path = self.mktemp()
        parts = [self.recs[0], b"\xff" * 33, self.recs[1]]
        with open(path, "wb") as f:
            f.write(b"".join(parts))
        fd = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        size = os.fstat(fd).st_size
        items = list(records.scan(records.ReadAt(fd), size))
        self.assertEqual(
            [type(i).__name__ for i in items], ["ScannedRecord", "DamagedRegion", "ScannedRecord"]
        )
