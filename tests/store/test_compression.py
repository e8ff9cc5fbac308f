"""Transparent compression: round trips, random ranges, what is stored, statistics.

Strategy: the same objects (compressible text, incompressible random bytes, a
mix whose chunks differ, and sizes around chunk boundaries) are stored under
each ``S4_COMPRESSION`` mode in a real store, then read back whole and through
random ranges cut from the chunk list exactly as the S3 GET path does
(:func:`s4d.s3.producer.spans`). The checks: the bytes are identical; sizes,
ETags and checksums describe the plain object; records are compressed exactly
when the mode says so; a range read decodes only the chunks it touches; fsck
(which decompresses and hashes every chunk) and the statistics agree.
"""

from __future__ import annotations

import hashlib
import os
import random
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from s4d.features import objects as fo
from s4d.s3.producer import spans
from s4d.store import chunks as chunks_module
from s4d.store import fsck, stats
from s4d.store.chunks import AUTO_SAMPLE, ChunkStore, encode_payload, middle_sample
from s4d.store.records import FLAG_ZSTD
from tests.store.helpers import create_bucket, get, open_store, put

CHUNK = 64 << 10


def text(size: int, seed: int = 0) -> bytes:
    """Compressible, text-like bytes."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(400)
    ]
    out = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(12)) + ".\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def corpus() -> dict[str, bytes]:
    return {
        "text": text(5 * CHUNK + 123),
        "random": os.urandom(3 * CHUNK + 7),
        "mixed": text(CHUNK, 1) + os.urandom(CHUNK) + text(CHUNK // 2, 2),
        "small": b"hello " * 50,
        "tiny": b"x",
        "empty": b"",
        "exact": text(2 * CHUNK, 3),
    }


class RoundTripTests(SynchronousTestCase):
    def roundtrip(self, mode: str) -> None:
        store = open_store(self, chunk_size=CHUNK, compression=mode, compression_level=3)
        create_bucket(store, "b")
        objects = corpus()
        for key, data in objects.items():
            version = put(store, "b", key, data)
            self.assertEqual(version.size, len(data))
            self.assertEqual(version.etag, hashlib.md5(data).hexdigest())
        rng = random.Random(7)
        for key, data in objects.items():
            self.assertEqual(get(store, "b", key), data)
            with store.read() as t:
                _, version = fo.find_version(t, t.buckets.require("b"), key, None)
                locations = store.locate(t, version.chunks)
            self.assertEqual(sum(loc.size for loc in locations), len(data))
            for loc in locations:
                compressed = bool(loc.flags & FLAG_ZSTD)
                if mode == "off" or loc.size < 512:
                    self.assertFalse(compressed)
                if compressed:
                    self.assertLess(loc.length, loc.size)
            for _ in range(25 if data else 0):
                first = rng.randrange(len(data))
                last = rng.randrange(first, len(data))
                pieces = spans(locations, first, last)
                with mock.patch.object(
                    chunks_module, "decode_payload", wraps=chunks_module.decode_payload
                ) as decode:
                    got = b"".join(store.read_chunk(loc)[lo:hi] for loc, lo, hi in pieces)
                self.assertEqual(got, data[first : last + 1], (key, first, last))
                # Only the chunks the range touches were decoded.
                self.assertEqual(decode.call_count, len(pieces))
        report = fsck.check_store(store)
        self.assertEqual(report.problems, [], report.render())
        self.assertEqual([w for w in report.warnings if w.kind == fsck.STATS_MISMATCH], [])
        return store

    def test_off(self) -> None:
        store = self.roundtrip("off")
        current = stats.store_stats(store)
        self.assertEqual(current.stored_bytes, current.unique_bytes)

    def test_zstd(self) -> None:
        store = self.roundtrip("zstd")
        self.assertGreater(stats.store_stats(store).compression_ratio, 1.5)

    def test_auto(self) -> None:
        store = self.roundtrip("auto")
        current = stats.store_stats(store)
        self.assertGreater(current.compression_ratio, 1.5)
        with store.read() as t:
            _, version = fo.find_version(t, t.buckets.require("b"), "random", None)
            locations = store.locate(t, version.chunks)
            _, mixed = fo.find_version(t, t.buckets.require("b"), "mixed", None)
            mixed_flags = [loc.flags & FLAG_ZSTD for loc in store.locate(t, mixed.chunks)]
        # Incompressible chunks are stored as they came; a mixed object's chunks are
        # judged one by one.
        self.assertTrue(all(not loc.flags & FLAG_ZSTD for loc in locations))
        self.assertEqual(mixed_flags, [FLAG_ZSTD, 0, FLAG_ZSTD])


class EncodeTests(SynchronousTestCase):
    def test_auto_probes_a_sample_of_large_chunks(self) -> None:
        data = os.urandom(4 << 20)
        calls = []
        real = chunks_module._compressor

        def spy(level: int):  # type: ignore[no-untyped-def]
            compressor = real(level)
            calls.append(level)
            return compressor

        with mock.patch.object(chunks_module, "_compressor", spy):
            payload, flags = encode_payload(data, "auto", 3)
        self.assertEqual((payload, flags), (data, 0))
        self.assertEqual(calls, [1])  # only the level-1 probe ran, not a full compression

    def test_modes(self) -> None:
        plain = text(1 << 20)
        self.assertEqual(encode_payload(plain, "off", 3), (plain, 0))
        packed, flags = encode_payload(plain, "auto", 3)
        self.assertEqual(flags, FLAG_ZSTD)
        self.assertLess(len(packed), len(plain) // 2)
        noise = os.urandom(1000)
        self.assertEqual(encode_payload(noise, "zstd", 3), (noise, 0))  # never larger
        self.assertEqual(encode_payload(b"ab" * 100, "zstd", 3)[1], 0)  # too small to bother

    def test_middle_sample_across_pieces(self) -> None:
        """The probe's sample taken from pieces is the one taken from the joined bytes."""
        data = os.urandom(300_000)
        start = (len(data) - AUTO_SAMPLE) // 2
        expected = data[start : start + AUTO_SAMPLE]
        rng = random.Random(3)
        for _ in range(50):
            cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 12)))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
            self.assertEqual(bytes(middle_sample(pieces, len(data))), expected, cuts)
        self.assertEqual(bytes(middle_sample([data], len(data))), expected)

    def test_auto_pieces_incompressible_are_never_joined(self) -> None:
        """In ``auto`` mode an incompressible chunk goes from its pieces to the file as is."""
        store = open_store(self, compression="auto")
        data = os.urandom(1 << 20)
        pieces = [memoryview(data)[i : i + 100_000] for i in range(0, len(data), 100_000)]
        with mock.patch.object(ChunkStore, "put", side_effect=AssertionError("joined")):
            written = store.put_chunk_pieces(pieces)
        assert written.location is not None
        self.assertEqual(written.location.flags, 0)
        self.assertEqual(written.location.length, len(data))
        self.assertEqual(store.read_chunk(written.location), data)

    def test_auto_pieces_compressible_are_compressed_once(self) -> None:
        store = open_store(self, compression="auto")
        data = text(1 << 20, 9)
        pieces = [data[i : i + 70_000] for i in range(0, len(data), 70_000)]
        calls: list[int] = []
        real = chunks_module._compressor

        def spy(level: int):  # type: ignore[no-untyped-def]
            calls.append(level)
            return real(level)

        with mock.patch.object(chunks_module, "_compressor", spy):
            written = store.put_chunk_pieces(pieces)
        assert written.location is not None
        self.assertEqual(written.location.flags, FLAG_ZSTD)
        self.assertEqual(calls, [1, 3])  # one probe, one compression
        self.assertEqual(store.read_chunk(written.location), data)
        same = open_store(self, compression="auto").put_chunk(data).location
        assert same is not None
        self.assertEqual((same.length, same.flags), (written.location.length, FLAG_ZSTD))

    def test_level_reaches_the_store(self) -> None:
        plain = text(1 << 20, 5)
        low = open_store(self, compression="zstd", compression_level=1)
        high = open_store(self, compression="zstd", compression_level=19)
        a = low.put_chunk(plain).location
        b = high.put_chunk(plain).location
        self.assertLess(b.length, a.length)
