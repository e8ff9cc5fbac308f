"""Chunks written from the pieces they arrived in: same record, same address, no join."""

from __future__ import annotations

import os
import random

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import segments as segmod
from s4d.store.chunks import digest_of
from s4d.store.records import CorruptRecord
from s4d.util.writeback import start_writeback
from tests.store.helpers import open_store


def split(data: bytes, rng: random.Random, most: int) -> list[bytes | memoryview]:
    """``data`` cut at random places, as a mix of bytes and memoryviews."""
    cuts = sorted(rng.sample(range(1, len(data)), min(most, len(data) - 1)))
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        pieces.append(view[start:end] if rng.random() < 0.5 else data[start:end])
    return pieces


class PutPiecesTests(SynchronousTestCase):
    def test_random_splits_store_what_put_stores(self) -> None:
        rng = random.Random(7)
        store = open_store(self)
        for _ in range(20):
            data = os.urandom(rng.randint(2, 300_000))
            pieces = split(data, rng, rng.randint(1, 40))
            written = store.put_chunk_pieces(pieces)
            self.assertEqual(written.ref.digest, digest_of(data))
            self.assertEqual(written.ref.size, len(data))
            assert written.location is not None
            self.assertEqual(written.location.flags, 0)
            self.assertEqual(store.chunks.get(written.location), data)

    def test_more_pieces_than_one_write_takes(self) -> None:
        store = open_store(self)
        data = os.urandom(segmod.MAX_BUFFERS * 3)
        pieces: list[bytes | memoryview] = [data[i : i + 3] for i in range(0, len(data), 3)]
        written = store.put_chunk_pieces(pieces)
        assert written.location is not None
        self.assertEqual(store.chunks.get(written.location), data)

    def test_compressed_store_joins_the_pieces(self) -> None:
        store = open_store(self, compression="zstd")
        data = b"compressible " * 20_000
        written = store.put_chunk_pieces(split(data, random.Random(3), 10))
        assert written.location is not None
        self.assertNotEqual(written.location.flags, 0)
        self.assertEqual(written.ref.digest, digest_of(data))
        self.assertEqual(store.chunks.get(written.location), data)

    def test_large_read_matches_and_is_checked(self) -> None:
        store = open_store(self)
        data = os.urandom(segmod.SPLIT_READ * 3 + 5)
        written = store.put_chunk_pieces([data])
        loc = written.location
        assert loc is not None
        self.assertEqual(store.chunks.get(loc), data)
        seg = store.segments.file(loc.segment)
        # flip one payload byte: the large-read path still checks the CRC
        middle = loc.offset + 56 + len(data) // 2
        byte = os.pread(seg.fd, 1, middle)
        path = store.segments.path(loc.segment)
        with open(path, "r+b") as f:
            f.seek(middle)
            f.write(bytes([byte[0] ^ 1]))
        self.assertRaises(CorruptRecord, store.chunks.get, loc)


class WritebackTests(SynchronousTestCase):
    def test_start_writeback_leaves_the_bytes(self) -> None:
        path = self.mktemp()
        data = os.urandom(1 << 20)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            started = start_writeback(fd, 0, len(data))
            if not started and os.uname().sysname == "Linux":
                self.fail("sync_file_range should be available on Linux")
            self.assertEqual(os.pread(fd, len(data), 0), data)
        finally:
            os.close(fd)


class OpenChunkTests(SynchronousTestCase):
    """The checked descriptor a GET sends a chunk from (``sendfile``)."""

    def test_descriptor_reads_the_payload(self) -> None:
        store = open_store(self)
        data = os.urandom(300_000)
        loc = store.put_chunk(data).location
        assert loc is not None
        opened = store.open_chunk(loc)
        assert opened is not None
        fd, start = opened
        try:
            self.assertEqual(os.pread(fd, len(data), start), data)
        finally:
            os.close(fd)

    def test_damaged_or_compressed_chunk_is_not_opened(self) -> None:
        store = open_store(self, compression="zstd")
        packed = store.put_chunk(b"text " * 100_000).location
        assert packed is not None
        self.assertIsNone(store.open_chunk(packed))
        store = open_store(self)
        data = os.urandom(300_000)
        loc = store.put_chunk(data).location
        assert loc is not None
        with open(store.segments.path(loc.segment), "r+b") as f:
            f.seek(loc.offset + 56 + 1000)
            f.write(bytes([data[1000] ^ 0x80]))
        self.assertIsNone(store.open_chunk(loc))
        self.assertRaises(CorruptRecord, store.chunks.get, loc)
