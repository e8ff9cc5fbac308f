"""Compaction: reclaiming exactly the dead bytes, dry runs, races, damage, crashes.

Strategy: a real store in a temp directory with tiny segments (so a few dozen
small objects span many files) and the inline committer. Each scenario leaves
garbage the way clients do (deletes, overwrites, versions removed, aborted
multipart uploads), measures it with fsck's segment scan (orphan bytes: records
the index does not point at), runs :class:`Compactor` with ``grace=0`` and
checks that exactly those bytes went, that every object still reads back, and
that fsck stays clean, statistics included. Crashes are simulated by making a
step of the pass raise and reopening the store: the next pass must finish.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from typing import Any
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.store import compaction, fsck, records, stats
from s4d.store.chunks import digest_of
from s4d.store.compaction import Compactor
from s4d.store.model import MultipartUpload, PartRecord
from s4d.store.records import HEADER_SIZE
from s4d.store.store import Store
from tests.store.helpers import (
    NOW,
    create_bucket,
    delete,
    get,
    open_store,
    put,
    segments_of,
    write_chunks,
)

SEGMENT = 64 << 10
CHUNK = 16 << 10


def blob(i: int, size: int = 20_000) -> bytes:
    """Distinct, incompressible-ish bytes for object ``i``."""
    out = bytearray()
    seed = hashlib.sha256(str(i).encode()).digest()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])


def check_clean(case: SynchronousTestCase, store: Store) -> fsck.FsckReport:
    report = fsck.check_store(store)
    case.assertEqual(report.problems, [], report.render())
    case.assertEqual(
        [w for w in report.warnings if w.kind == fsck.STATS_MISMATCH], [], report.render()
    )
    return report


def dead_by_segment(store: Store, report: fsck.FsckReport) -> dict[int, int]:
    """Bytes no object needs, per segment: orphan records, damage, released chunks."""
    dead = {s.segment: s.orphan_bytes + s.damaged_bytes for s in report.segments}
    with store.read() as t:
        for digest, _raw in t.txn.cursor(db=t.dbs.chunks):
            loc, refs = t.chunks.get(bytes(digest))
            if refs == 0:
                dead[loc.segment] += HEADER_SIZE + loc.length
    return dead


def snapshot(store: Store) -> tuple[dict[str, list[tuple[bytes, bytes]]], dict[str, str]]:
    """Every LMDB record and every segment file's hash."""
    dbs: dict[str, list[tuple[bytes, bytes]]] = {}
    with store.env.begin() as txn:
        for name in ("buckets", "ns", "versions", "chunks", "segments", "counters", "multipart"):
            dbs[name] = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=getattr(store.dbs, name))]
    files = {}
    for sid in store.segments.segment_ids():
        with open(store.segments.path(sid), "rb") as f:
            files[str(sid)] = hashlib.sha256(f.read()).hexdigest()
    return dbs, files


class CompactionTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()
        self.store = self.open()
        create_bucket(self.store, "b")
        create_bucket(self.store, "v", "Enabled")

    def open(self, **config: Any) -> Store:
        config.setdefault("segment_size", SEGMENT)
        config.setdefault("chunk_size", CHUNK)
        return open_store(self, self.path, **config)

    def reopen(self) -> None:
        self.store.close()
        self.store = self.open()

    def compact(self, **options: Any) -> compaction.CompactionReport:
        options.setdefault("threshold", 0.0)
        options.setdefault("grace", 0)
        return Compactor(self.store, **options).run()

    def make_garbage(self) -> dict[tuple[str, str], bytes]:
        """Objects that stay (returned) and every kind of garbage around them."""
        keep = {}
        for i in range(12):
            keep[("b", f"keep{i}")] = blob(i)
            put(self.store, "b", f"keep{i}", blob(i))
            put(self.store, "b", f"gone{i}", blob(100 + i))
        for i in range(12):
            delete(self.store, "b", f"gone{i}")  # deleted objects
        for i in range(6):
            put(self.store, "b", f"keep{i}", blob(200 + i))  # overwritten objects
            keep[("b", f"keep{i}")] = blob(200 + i)
        first = put(self.store, "v", "doc", blob(300))
        put(self.store, "v", "doc", blob(301))
        delete(self.store, "v", "doc", first.version_id)  # an expired version
        keep[("v", "doc")] = blob(301)
        template = MultipartUpload("", 0, "mp", 0)
        upload = self.store.commit(lambda t: fm.create_upload(t, "b", "mp", template, NOW))
        for n in (1, 2):
            data = blob(400 + n)
            chunks = write_chunks(self.store, data)
            part = PartRecord(n, len(data), hashlib.md5(data).hexdigest(), NOW)
            self.store.commit(
                lambda t, c=chunks, p=part: fm.upload_part(t, "b", "mp", upload.upload_id, p, c),
                segments_of(chunks),
            )
        self.store.commit(lambda t: fm.abort_upload(t, "b", "mp", upload.upload_id))  # abandoned
        return keep

    def assertReadable(self, keep: dict[tuple[str, str], bytes]) -> None:
        for (bucket, key), data in keep.items():
            self.assertEqual(get(self.store, bucket, key), data, key)


class ReclaimTests(CompactionTestCase):
    def test_reclaims_exactly_the_dead_bytes(self) -> None:
        keep = self.make_garbage()
        before = check_clean(self, self.store)
        active = self.store.segments.active_id()
        dead = dead_by_segment(self.store, before)
        with self.store.read() as t:
            # The tallies kept incrementally are exactly what a scan finds.
            self.assertEqual({sid: t.segments.info(sid)["dead"] for sid in dead}, dead)
        victims = {sid for sid, n in dead.items() if sid != active and n > 0}
        self.assertGreater(len(victims), 3)
        physical = before.stats.physical_bytes
        self.assertGreater(stats.store_stats(self.store).released_chunks, 0)

        report = self.compact()

        self.assertEqual(set(report.compacted), victims)
        expected = sum(dead[sid] for sid in victims)
        self.assertEqual(report.freed_bytes, expected)
        after = check_clean(self, self.store)
        self.assertEqual(after.stats.physical_bytes, physical - expected)
        # What is left as garbage is what was in the active segment, nothing more.
        self.assertEqual(sum(dead_by_segment(self.store, after).values()), dead.get(active, 0))
        for sid in victims:
            self.assertFalse(os.path.exists(self.store.segments.path(sid)))
        self.assertReadable(keep)
        # The statistics agree: nothing released is left, physical bytes shrank.
        current = stats.store_stats(self.store)
        self.assertEqual(current.dead_bytes, dead.get(active, 0))
        self.assertEqual(current.physical_bytes, after.stats.physical_bytes)
        # Survives a restart, and a second pass has nothing to do.
        self.reopen()
        self.assertReadable(keep)
        # (only the segment that was active then may still hold dead bytes)
        self.assertLessEqual(set(self.compact(threshold=0.5).compacted), {active})
        self.assertEqual(self.compact(threshold=0.5).compacted, [])
        check_clean(self, self.store)

    def test_threshold_picks_only_segments_dead_enough(self) -> None:
        self.make_garbage()
        with self.store.read() as t:
            fractions = {}
            for sid in self.store.segments.segment_ids():
                info = t.segments.info(sid)
                fractions[sid] = info["dead"] / os.path.getsize(self.store.segments.path(sid))
        active = self.store.segments.active_id()
        report = self.compact(threshold=0.5)
        expected = {sid for sid, f in fractions.items() if f >= 0.5 and sid != active}
        self.assertEqual(set(report.compacted), expected)
        check_clean(self, self.store)

    def test_dry_run_changes_nothing(self) -> None:
        self.make_garbage()
        before = snapshot(self.store)
        report = self.compact(dry_run=True)
        self.assertTrue(report.dry_run)
        self.assertGreater(len(report.segments), 3)
        self.assertEqual(report.compacted, [])
        self.assertGreater(sum(p.live_bytes for p in report.segments), 0)
        self.assertIn("dry run", report.summary())
        self.assertEqual(snapshot(self.store), before)

    def test_config_lives_in_lmdb_and_survives(self) -> None:
        self.make_garbage()
        bucket = "b"
        with self.store.read() as t:
            b = t.buckets.require(bucket)
        self.store.commit(lambda t: t.bucket_config.put(b, b"policy", b'{"p": 1}'))
        self.store.commit(lambda t: t.txn.put(b"user/alice", b"secret", db=t.dbs.iam))
        self.compact()
        with self.store.read() as t:
            self.assertEqual(t.bucket_config.get(b, b"policy"), b'{"p": 1}')
            self.assertEqual(bytes(t.txn.get(b"user/alice", db=t.dbs.iam)), b"secret")

    def test_locked_and_active_segments_are_skipped(self) -> None:
        self.make_garbage()
        ids = self.store.segments.segment_ids()
        victim = ids[0]
        fd = os.open(self.store.segments.path(victim), os.O_RDONLY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process appending to it
        report = self.compact()
        outcome = {p.segment: p.outcome for p in report.segments}
        self.assertEqual(outcome[victim], "skipped")
        self.assertNotIn(self.store.segments.active_id(), outcome)
        self.assertTrue(os.path.exists(self.store.segments.path(victim)))
        fcntl.flock(fd, fcntl.LOCK_UN)
        self.assertIn(victim, self.compact().compacted)
        check_clean(self, self.store)

    def test_quiet_period(self) -> None:
        self.make_garbage()
        # Every segment was just written: a grace period leaves them all alone.
        self.assertEqual(self.compact(grace=3600).segments, [])


class RaceTests(CompactionTestCase):
    def test_reader_with_an_old_location_retries(self) -> None:
        put(self.store, "b", "k", blob(1, 50_000))
        for i in range(10):
            put(self.store, "b", f"x{i}", blob(10 + i))
            delete(self.store, "b", f"x{i}")
        with self.store.read() as t:
            _, version = fo.find_version(t, t.buckets.require("b"), "k", None)
            old = self.store.locate(t, version.chunks)
        self.assertTrue(self.compact().compacted)
        self.assertFalse(os.path.exists(self.store.segments.path(old[0].segment)))
        # The location is stale (its file is gone): the read looks the chunk up again.
        self.assertEqual(b"".join(self.store.read_chunk(loc) for loc in old), blob(1, 50_000))

    def test_released_chunks_wait_for_the_grace_period(self) -> None:
        put(self.store, "b", "k", blob(1))
        for i in range(8):
            put(self.store, "b", f"f{i}", blob(10 + i))
        delete(self.store, "b", "k")
        digest = digest_of(blob(1)[:CHUNK])
        report = self.compact(grace=0, threshold=0.0)
        self.assertTrue(report.compacted)
        with self.store.read() as t:
            self.assertIsNone(t.chunks.get(digest))  # purged
        # Within the grace period a released chunk is copied, not purged.
        put(self.store, "b", "k", blob(1))
        delete(self.store, "b", "k")
        with mock.patch.object(compaction.Compactor, "candidates", _all_but_active):
            report = Compactor(self.store, threshold=0.0, grace=3600).run()
        self.assertTrue(report.compacted)
        with self.store.read() as t:
            loc, refs = t.chunks.get(digest)
        self.assertEqual(refs, 0)
        # ... so an upload can still take it back. (Released content is written
        # again, so that a purge between the dedup check and the commit cannot
        # fail the upload; the commit revives the released entry.)
        chunks = write_chunks(self.store, blob(1))
        self.assertIsNotNone(chunks[0].location)
        self.store.commit(
            lambda t: fo.put_object(
                t, "b", "k", fo.NewObject(len(blob(1)), "e"), chunks, fo.WriteConditions(), NOW
            )
        )
        self.assertEqual(get(self.store, "b", "k"), blob(1))
        check_clean(self, self.store)

    def test_commit_into_a_compacted_segment_is_refused(self) -> None:
        for i in range(6):
            put(self.store, "b", f"f{i}", blob(10 + i))
            delete(self.store, "b", f"f{i}")
        # An upload writes a chunk, then its segment is rotated away and compacted
        # before the upload commits.
        chunks = write_chunks(self.store, blob(99))
        target = chunks[0].location.segment
        self.store.segments.rotate_size = 0  # the next append starts a new segment
        put(self.store, "b", "other", b"x" * 100)
        self.store.segments.rotate_size = SEGMENT
        self.assertIn(target, self.compact().compacted)
        error = self.assertRaises(
            S3Error,
            self.store.commit,
            lambda t: fo.put_object(
                t, "b", "late", fo.NewObject(len(blob(99)), "e"), chunks, fo.WriteConditions(), NOW
            ),
            segments_of(chunks),
        )
        self.assertEqual(error.code, "InternalError")
        check_clean(self, self.store)


def _all_but_active(self: Compactor) -> list[compaction.SegmentPlan]:
    """Candidates ignoring the quiet period (for a pass with a long grace)."""
    active = self.store.segments.active_id()
    return [
        compaction.SegmentPlan(sid, os.path.getsize(self.store.segments.path(sid)), 0)
        for sid in self.store.segments.segment_ids()
        if sid != active
    ]


class DamageTests(CompactionTestCase):
    def corrupt(self, key: str, bucket: str = "b") -> int:
        """Flip a payload byte of ``key``'s first chunk; return its segment."""
        with self.store.read() as t:
            _, version = fo.find_version(t, t.buckets.require(bucket), key, None)
            loc = self.store.locate(t, version.chunks)[0]
        with open(self.store.segments.path(loc.segment), "r+b") as f:
            f.seek(loc.offset + HEADER_SIZE + 10)
            byte = f.read(1)
            f.seek(loc.offset + HEADER_SIZE + 10)
            f.write(bytes([byte[0] ^ 0xFF]))
        self.store.segments.forget(loc.segment)
        return loc.segment

    def test_corrupt_chunk_is_reported_not_copied(self) -> None:
        keep = self.make_garbage()
        segment = self.corrupt("keep8")
        report = self.compact()
        self.assertEqual(len(report.damaged), 1)
        self.assertEqual(report.damaged[0].keys, ["b/keep8"])
        self.assertNotIn(segment, report.compacted)
        self.assertTrue(os.path.exists(self.store.segments.path(segment)))
        # Reads of the damaged object fail with an S3 error; the others are fine.
        error = self.assertRaises(S3Error, get, self.store, "b", "keep8")
        self.assertEqual(error.code, "InternalError")
        del keep[("b", "keep8")]
        self.assertReadable(keep)
        # fsck sees the damage too (with the key).
        found = fsck.check_store(self.store)
        self.assertEqual(found.kinds(), {fsck.CORRUPT_CHUNK})
        # Uploading the same bytes again writes a good copy that replaces it.
        put(self.store, "b", "again", blob(8))
        self.assertEqual(get(self.store, "b", "keep8"), blob(8))
        report = self.compact()
        self.assertIn(segment, report.compacted)
        check_clean(self, self.store)


class CrashTests(CompactionTestCase):
    """A pass that dies at each step leaves a store the next pass finishes."""

    def crash_at(self, target: str) -> None:
        keep = self.make_garbage()
        with mock.patch(target, side_effect=_Crash):
            self.assertRaises(_Crash, self.compact)
        self.reopen()
        self.assertReadable(keep)
        check_clean(self, self.store)
        report = self.compact()
        self.assertTrue(report.compacted)
        with self.store.read() as t:
            for sid in self.store.segments.segment_ids():
                self.assertFalse(t.segments.info(sid).get("retiring"), sid)
        self.assertReadable(keep)
        after = check_clean(self, self.store)
        active = self.store.segments.active_id()
        self.assertEqual(
            [s.segment for s in after.segments if s.orphan_bytes and s.segment != active], []
        )

    def test_crash_after_marking(self) -> None:
        self.crash_at("s4d.store.compaction.records.scan")

    def test_crash_before_moving(self) -> None:
        self.crash_at("s4d.store.compaction.Compactor._commit_moves")

    def test_crash_before_retiring(self) -> None:
        self.crash_at("s4d.store.compaction._retire")

    def test_crash_before_unlink(self) -> None:
        self.crash_at("s4d.store.compaction.os.unlink")


class _Crash(Exception):
    pass


class DedupTests(SynchronousTestCase):
    def test_whole_and_multipart_uploads_share_storage(self) -> None:
        """The same bytes PUT whole and uploaded in 8 MiB parts cost one copy."""
        store = open_store(self, fsync=False)
        create_bucket(store, "b")
        data = os.urandom(20 << 20) + b"tail"
        put(store, "b", "whole", data)
        before = stats.store_stats(store)
        template = MultipartUpload("", 0, "parts", 0)
        upload = store.commit(lambda t: fm.create_upload(t, "b", "parts", template, NOW))
        part_size = 8 << 20
        for n, start in enumerate(range(0, len(data), part_size), 1):
            piece = data[start : start + part_size]
            chunks = write_chunks(store, piece)
            self.assertTrue(all(c.location is None for c in chunks))  # nothing written
            part = PartRecord(n, len(piece), hashlib.md5(piece).hexdigest(), NOW)
            store.commit(
                lambda t, c=chunks, p=part: fm.upload_part(t, "b", "parts", upload.upload_id, p, c)
            )
        with store.read() as t:
            parts = [fm.RequestedPart(p.number, p.md5) for p in t.multipart.parts(upload.upload_id)]
        store.commit(
            lambda t: fm.complete_upload(
                t, "b", "parts", upload.upload_id, parts, fo.WriteConditions(), NOW
            )
        )
        after = stats.store_stats(store)
        self.assertEqual(get(store, "b", "parts"), data)
        self.assertEqual(after.unique_bytes, before.unique_bytes)
        self.assertEqual(after.stored_bytes, before.stored_bytes)
        self.assertEqual(after.physical_bytes, before.physical_bytes)
        self.assertEqual(after.logical_bytes, 2 * len(data))
        self.assertAlmostEqual(after.dedup_ratio, 2.0, places=3)
        check_clean(self, store)


class TornRecordTests(CompactionTestCase):
    def test_records_after_a_torn_one_are_found(self) -> None:
        """A crash tore a big record; the reopened store appended small ones after it.

        The torn record's header claims a length that covers the new records: a
        scan that believed it would miss them and delete live data.
        """
        self.store.close()
        self.store = self.open(segment_size=1 << 20)
        put(self.store, "b", "before", blob(1))
        active = self.store.segments.active_id()
        self.store.close()
        payload = blob(2, 200_000)
        with open(os.path.join(self.path, "segments", f"{active:08d}.seg"), "ab") as f:
            f.write(records.encode_header(payload, len(payload), digest_of(payload)))
            f.write(payload[:5_000])  # the crash came here
        self.store = self.open(segment_size=1 << 20)
        self.assertEqual(self.store.segments.active_id(), active)  # adopted again
        small = {f"s{i}": blob(50 + i, 3_000) for i in range(20)}
        for key, data in small.items():
            put(self.store, "b", key, data)
        for i in range(0, 20, 2):
            delete(self.store, "b", f"s{i}")
            del small[f"s{i}"]
        self.store.segments.rotate_size = 0
        put(self.store, "b", "after", b"x")
        self.store.segments.rotate_size = 1 << 20
        report = self.compact()
        self.assertIn(active, report.compacted)
        self.assertEqual(report.damaged, [])
        self.assertEqual(get(self.store, "b", "before"), blob(1))
        for key, data in small.items():
            self.assertEqual(get(self.store, "b", key), data)
        check_clean(self, self.store)
