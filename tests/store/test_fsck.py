"""fsck finds what it promises to find.

Strategy: build a small, healthy data directory through the store, check that
fsck calls it clean with the right statistics, then damage the metadata one way
at a time by writing to LMDB directly (a wrong reference count, a missing chunk
entry, an empty directory, an unreachable version, a counter behind the ids in
use, a deleted segment file) and assert that exactly the expected kind of
problem is reported, with the affected keys where there are any. The command
line (``s4d fsck`` through :func:`s4d.cli.main`) is run in process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator

from twisted.trial.unittest import SynchronousTestCase

from s4d import cli
from s4d.features import objects as fo
from s4d.store import codec, fsck, records
from s4d.store.chunks import digest_of
from s4d.store.schema import CHUNK, ENTRY_DIR, U64, u64
from s4d.store.store import Store
from s4d.store.txn import MetaTxn
from tests.store.helpers import create_bucket, delete, open_store, put


class FsckTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()
        self.store: Store = open_store(self, self.path)
        create_bucket(self.store, "b")
        create_bucket(self.store, "v", "Enabled")
        put(self.store, "b", "a/b/c", b"abc" * 100)
        put(self.store, "b", "a/d", b"ad")
        put(self.store, "b", "top", b"top")
        put(self.store, "b", "copy-of-top", b"top")
        put(self.store, "v", "k", b"one")
        put(self.store, "v", "k", b"two")
        delete(self.store, "v", "k")

    @contextlib.contextmanager
    def tamper(self) -> Iterator[MetaTxn]:
        with self.store.env.begin(write=True) as txn:
            yield self.store.meta(txn)

    def kinds(self, report: fsck.FsckReport) -> list[str]:
        return sorted(p.kind for p in report.problems)


class CleanTests(FsckTestCase):
    def test_clean(self) -> None:
        report = fsck.check_store(self.store)
        self.assertTrue(report.ok, report.render())
        st = report.stats
        self.assertEqual(st.buckets, 2)
        self.assertEqual(st.objects, 5)
        self.assertEqual(st.directories, 2)
        self.assertEqual(st.versions, 7)
        self.assertEqual(st.delete_markers, 1)
        self.assertEqual(st.chunks, 5)  # "top" is shared
        self.assertEqual(st.chunk_refs, 6)
        self.assertEqual(st.logical_bytes, 300 + 2 + 3 + 3 + 3 + 3)
        self.assertEqual(st.unique_bytes, 300 + 2 + 3 + 3 + 3)
        self.assertEqual(st.live_bytes, 5 * records.HEADER_SIZE + 311)
        self.assertEqual(st.physical_bytes, os.path.getsize(self.store.segments.path(1)))
        self.assertEqual(st.orphan_bytes, 0)  # the second "top" was never written
        self.assertEqual(st.segments, 1)

    def test_check_from_disk_matches(self) -> None:
        live = fsck.check_store(self.store)
        self.store.close()
        offline = fsck.check(self.path)
        self.assertEqual(offline.stats, live.stats)
        self.assertTrue(offline.ok)

    def test_missing_directory(self) -> None:
        report = fsck.check(self.mktemp())
        self.assertEqual(self.kinds(report), [fsck.NO_METADATA])

    def test_empty_store(self) -> None:
        path = self.mktemp()
        open_store(self, path).close()
        report = fsck.check(path)
        self.assertTrue(report.ok)
        self.assertEqual(report.stats.segments, 0)


class DamageTests(FsckTestCase):
    def test_refcount_too_high(self) -> None:
        digest = digest_of(b"ad")
        with self.tamper() as t:
            loc, refs = t.chunks.get(digest)  # type: ignore[misc]
            t.chunks._put(loc, refs + 1)
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.REFCOUNT_MISMATCH])
        self.assertEqual(report.problems[0].keys, (fsck.KeyRef("b", "a/d", "null"),))
        self.assertEqual(report.problems[0].digest, digest.hex())

    def test_refcount_too_low(self) -> None:
        with self.tamper() as t:
            loc, _ = t.chunks.get(digest_of(b"top"))  # type: ignore[misc]
            t.chunks._put(loc, 1)
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.REFCOUNT_MISMATCH])
        self.assertEqual(sorted(k.key for k in report.problems[0].keys), ["copy-of-top", "top"])

    def test_missing_chunk(self) -> None:
        with self.tamper() as t:
            t.txn.delete(digest_of(b"abc" * 100), db=t.dbs.chunks)
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.MISSING_CHUNK])
        self.assertEqual(report.problems[0].keys[0].key, "a/b/c")
        # The record is still in the segment, now unreferenced.
        self.assertEqual(report.stats.orphan_records, 1)

    def test_chunk_index_points_elsewhere(self) -> None:
        with self.tamper() as t:
            loc, refs = t.chunks.get(digest_of(b"ad"))  # type: ignore[misc]
            other, _ = t.chunks.get(digest_of(b"top"))  # type: ignore[misc]
            t.txn.put(
                loc.digest,
                CHUNK.pack(1, other.segment, other.offset, other.length, 2, 0, refs),
                db=t.dbs.chunks,
            )
        report = fsck.check_store(self.store, quick=True)
        self.assertEqual(self.kinds(report), [fsck.CORRUPT_CHUNK])
        self.assertIn("another chunk", report.problems[0].message)

    def test_empty_directory(self) -> None:
        with self.tamper() as t:
            b = t.buckets.require("b")
            t.txn.put(u64(b.root_dir) + b"empty/", ENTRY_DIR + u64(9999), db=t.dbs.ns)
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.COUNTER_BEHIND, fsck.EMPTY_DIR])

    def test_object_without_versions(self) -> None:
        with self.tamper() as t:
            object_id = t.ns.lookup(t.buckets.require("b"), b"a/d")
            assert object_id is not None
            for version in t.versions.all(object_id):
                t.versions.delete(object_id, version)
            t.flush()
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.NO_VERSIONS])
        self.assertEqual(report.problems[0].keys, (fsck.KeyRef("b", "a/d"),))

    def test_unreachable_entries_and_versions(self) -> None:
        with self.tamper() as t:
            t.ns.unlink(t.buckets.require("b"), b"a/b/c")
        report = fsck.check_store(self.store)
        # The version is unreachable but still counted, so references match.
        self.assertEqual(self.kinds(report), [fsck.ORPHAN_VERSION])
        with self.tamper() as t:
            t.txn.put(u64(4242) + b"lost", b"O" + u64(1), db=t.dbs.ns)
        report = fsck.check_store(self.store)
        self.assertIn(fsck.UNREACHABLE_ENTRY, self.kinds(report))

    def test_misplaced_entry(self) -> None:
        with self.tamper() as t:
            b = t.buckets.require("b")
            object_id = t.ns.lookup(b, b"top")
            t.txn.delete(u64(b.root_dir) + b"top", db=t.dbs.ns)
            t.txn.put(u64(b.root_dir) + b"x/y", b"O" + u64(object_id), db=t.dbs.ns)  # type: ignore[arg-type]
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.BAD_ENTRY])

    def test_counter_behind(self) -> None:
        with self.tamper() as t:
            t.txn.put(b"seq", U64.pack(1), db=t.dbs.counters)
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.COUNTER_BEHIND])
        self.assertIn("seq", report.problems[0].message)

    def test_bad_version_record(self) -> None:
        with self.tamper() as t:
            object_id = t.ns.lookup(t.buckets.require("b"), b"top")
            [version] = t.versions.all(object_id)  # type: ignore[arg-type]
            value = version.encode()
            value["sz"] = 999
            from s4d.store.schema import version_key

            t.txn.put(version_key(object_id, version.seq), codec.encode(value), db=t.dbs.versions)  # type: ignore[arg-type]
        report = fsck.check_store(self.store)
        self.assertEqual(self.kinds(report), [fsck.SIZE_MISMATCH])

    def test_missing_segment(self) -> None:
        self.store.close()
        os.unlink(os.path.join(self.path, "segments", "00000001.seg"))
        report = fsck.check(self.path)
        self.assertEqual(set(self.kinds(report)), {fsck.MISSING_SEGMENT})
        self.assertEqual(len(report.problems), 5)

    def test_stray_file(self) -> None:
        self.store.close()
        with open(os.path.join(self.path, "segments", "notes.txt"), "w") as f:
            f.write("hi")
        report = fsck.check(self.path)
        self.assertTrue(report.ok)
        self.assertEqual([w.kind for w in report.warnings], [fsck.STRAY_FILE])


class CommandTests(FsckTestCase):
    def run_cli(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = cli.main(list(argv))
        return status, out.getvalue()

    def test_clean(self) -> None:
        self.store.close()
        status, out = self.run_cli("fsck", self.path)
        self.assertEqual(status, 0)
        self.assertIn("Result: clean", out)
        self.assertIn("keys            5", out)

    def test_verbose_and_quick(self) -> None:
        self.store.close()
        status, out = self.run_cli("fsck", "--quick", "-v", self.path)
        self.assertEqual(status, 0)
        self.assertIn("quick check", out)
        self.assertIn("00000001.seg", out)

    def test_json(self) -> None:
        with self.tamper() as t:
            t.txn.put(b"object", U64.pack(0), db=t.dbs.counters)
        self.store.close()
        status, out = self.run_cli("fsck", "--json", self.path)
        self.assertEqual(status, 1)
        value = json.loads(out)
        self.assertFalse(value["ok"])
        self.assertEqual([p["kind"] for p in value["problems"]], [fsck.COUNTER_BEHIND])
        self.assertEqual(value["stats"]["objects"], 5)

    def test_not_a_directory(self) -> None:
        status, out = self.run_cli("fsck", os.path.join(self.path, "nope"))
        self.assertEqual(status, 1)
        self.assertIn("not a directory", out)

    def test_usage(self) -> None:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertRaises(SystemExit, cli.main, [])
        self.assertIn("COMMAND", err.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stdout(err):
            self.assertRaises(SystemExit, cli.main, ["--help"])
        self.assertIn("fsck", err.getvalue())

    def test_corrupt_reports_key(self) -> None:
        with self.store.read() as t:
            _, version = fo.find_version(t, t.buckets.require("b"), "a/b/c", None)
            loc = self.store.locate(t, version.chunks)[0]
        self.store.close()
        with open(os.path.join(self.path, "segments", "00000001.seg"), "r+b") as f:
            f.seek(loc.offset + records.HEADER_SIZE + 1)
            f.write(b"X")
        status, out = self.run_cli("fsck", self.path)
        self.assertEqual(status, 1)
        self.assertIn("corrupt-chunk", out)
        self.assertIn("b/a/b/c", out)
        self.assertIn("Result: 1 problem(s)", out)
