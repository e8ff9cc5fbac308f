"""The scrubber: finds damage, reports keys, never lets bad bytes out, keeps its pace.

Strategy: a real store with small chunks; bytes of segment files are flipped
behind its back (payload and header), then the scrubber runs. It must name the
damaged chunks and the keys that use them, mark them so that reads fail with an
S3 error, leave good chunks alone, walk the index in slices that together cover
every chunk exactly once per pass, and pace itself to its byte rate (checked
with an injected clock and sleep, no real waiting).
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.store import records, stats
from s4d.store.clock import Clock
from s4d.store.model import ChunkLocation
from s4d.store.scrub import Scrubber
from s4d.store.store import Store
from tests.store.helpers import create_bucket, get, open_store, put

CHUNK = 8 << 10


class ScrubTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Store = open_store(self, chunk_size=CHUNK)
        create_bucket(self.store, "b")
        self.data = {f"k{i}": os.urandom(3 * CHUNK + i) for i in range(10)}
        for key, data in self.data.items():
            put(self.store, "b", key, data)
        put(self.store, "b", "copy-of-k3", self.data["k3"])

    def location(self, key: str, index: int = 0) -> ChunkLocation:
        with self.store.read() as t:
            _, version = fo.find_version(t, t.buckets.require("b"), key, None)
            return self.store.locate(t, version.chunks)[index]

    def flip(self, loc: ChunkLocation, where: int) -> None:
        with open(self.store.segments.path(loc.segment), "r+b") as f:
            f.seek(loc.offset + where)
            byte = f.read(1)
            f.seek(loc.offset + where)
            f.write(bytes([byte[0] ^ 0x01]))

    def test_clean_store(self) -> None:
        report = Scrubber(self.store, rate=None).run_pass()
        current = stats.store_stats(self.store)
        self.assertEqual(report.damaged, [])
        self.assertEqual(report.chunks, current.chunks + current.released_chunks)
        self.assertTrue(report.wrapped)

    def test_finds_damage_and_reports_keys(self) -> None:
        payload = self.location("k3", 1)
        header = self.location("k5", 0)
        self.flip(payload, records.HEADER_SIZE + 100)
        self.flip(header, 20)
        report = Scrubber(self.store, rate=None).run_pass()
        found = {d.digest: d for d in report.damaged}
        self.assertEqual(set(found), {payload.digest.hex(), header.digest.hex()})
        self.assertEqual(sorted(found[payload.digest.hex()].keys), ["b/copy-of-k3", "b/k3"])
        self.assertEqual(found[header.digest.hex()].keys, ["b/k5"])
        self.assertIn("checksum", found[payload.digest.hex()].reason)
        # Damaged objects are refused; the others read back.
        for key in ("k3", "copy-of-k3", "k5"):
            error = self.assertRaises(S3Error, get, self.store, "b", key)
            self.assertEqual(error.code, "InternalError")
        for key in set(self.data) - {"k3", "k5"}:
            self.assertEqual(get(self.store, "b", key), self.data[key])
        # A second pass reports nothing new (they are marked already).
        self.assertEqual(len(Scrubber(self.store, rate=None).run_pass().damaged), 0)
        # Writing the same bytes again replaces the damaged copy.
        put(self.store, "b", "fresh", self.data["k3"])
        self.assertEqual(get(self.store, "b", "k3"), self.data["k3"])
        with self.store.read() as t:
            self.assertFalse(t.damaged.contains(payload.digest))

    def test_a_read_that_fails_marks_the_chunk(self) -> None:
        loc = self.location("k1")
        self.flip(loc, records.HEADER_SIZE + 1)
        self.assertRaises(records.CorruptRecord, self.store.read_chunk, loc)
        with self.store.read() as t:
            self.assertTrue(t.damaged.contains(loc.digest))
        self.assertRaises(S3Error, get, self.store, "b", "k1")

    def test_slices_cover_everything_once(self) -> None:
        scrubber = Scrubber(self.store, rate=None)
        seen = 0
        for _ in range(100):
            report = scrubber.run_slice(5 * CHUNK)
            seen += report.chunks
            if report.wrapped:
                break
        current = stats.store_stats(self.store)
        self.assertEqual(seen, current.chunks + current.released_chunks)
        self.assertEqual(scrubber.passes, 1)

    def test_rate_is_bounded(self) -> None:
        now = [0.0]
        slept = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        rate = 100_000.0
        scrubber = Scrubber(
            self.store, rate=rate, clock=Clock(monotonic=lambda: now[0], sleep=sleep)
        )
        report = scrubber.run_slice(1 << 30)
        self.assertTrue(report.wrapped)
        self.assertAlmostEqual(now[0], report.bytes / rate, delta=(CHUNK * 2) / rate)
