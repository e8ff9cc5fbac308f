"""Reference counts, statistics and compaction as a property.

Strategy: a hypothesis state machine drives a real store (inline committer,
tiny chunks and segments) with random sequences of puts, overwrites, copies,
deletes, version deletes in a versioned bucket, multipart uploads (parts
replaced, completed with a subset, aborted) and compaction passes with random
thresholds, over contents built from a handful of blocks so that chunks are
shared between objects, versions and parts all the time. After every step:

* fsck is clean: its recount of chunk references from every version and part
  equals the stored counts, every indexed chunk reads back and hashes right;
* the statistics kept incrementally equal a recount (no ``stats-mismatch``);
* each segment's dead-byte tally equals what a scan finds (orphan records plus
  released chunks);
* every key reads back as a model of S3's rules predicts.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.store import fsck
from s4d.store.compaction import Compactor
from s4d.store.model import MultipartUpload, PartRecord
from s4d.store.records import HEADER_SIZE
from s4d.store.store import Store, StoreConfig
from tests.store.helpers import NOW, create_bucket, delete, get, put, segments_of, write_chunks

CHUNK = 64
BLOCKS = [bytes([65 + i]) * CHUNK for i in range(16)] + [bytes(range(CHUNK))]
#: shared blocks, a short tail now and then (a chunk of its own)
CONTENTS = st.tuples(
    st.lists(st.sampled_from(range(len(BLOCKS))), min_size=0, max_size=4),
    st.sampled_from([b"", b"", b"tail", b"end!"]),
).map(lambda c: b"".join(BLOCKS[i] for i in c[0]) + c[1])
KEYS = st.sampled_from(["a", "b", "dir/c", "dir/d"])
BUCKETS = st.sampled_from(["plain", "versioned"])


class RefcountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="s4d-prop-")
        self.store = Store(
            StoreConfig(
                self.dir, segment_size=300, chunk_size=CHUNK, map_size=1 << 28, fsync=False
            ),
            inline_commit=True,
        )
        create_bucket(self.store, "plain")
        create_bucket(self.store, "versioned", "Enabled")
        #: (bucket, key) -> versions, oldest first: (version id, content or None for a marker)
        self.model: dict[tuple[str, str], list[tuple[str, bytes | None]]] = {}
        self.uploads: dict[str, tuple[str, dict[int, bytes]]] = {}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- operations --------------------------------------------------------------------

    def _install(self, bucket: str, key: str, vid: str, content: bytes | None) -> None:
        versions = self.model.setdefault((bucket, key), [])
        if bucket == "plain":
            versions.clear()
        versions.append((vid, content))

    @rule(bucket=BUCKETS, key=KEYS, content=CONTENTS)
    def put(self, bucket: str, key: str, content: bytes) -> None:
        version = put(self.store, bucket, key, content)
        self._install(bucket, key, version.version_id, content)

    @rule(bucket=BUCKETS, key=KEYS, dest=KEYS)
    def copy(self, bucket: str, key: str, dest: str) -> None:
        source = fo.CopySource(bucket, key)
        try:
            _, version = self.store.commit(
                lambda t: fo.copy_object(t, source, bucket, dest, None, fo.WriteConditions(), NOW)
            )
        except S3Error as e:
            self.assert_code(e, "NoSuchKey")
            return
        self._install(bucket, dest, version.version_id, self.current(bucket, key))

    @rule(bucket=BUCKETS, key=KEYS)
    def delete(self, bucket: str, key: str) -> None:
        outcome = delete(self.store, bucket, key)
        if bucket == "plain":
            self.model.pop((bucket, key), None)
        else:
            self._install(bucket, key, outcome.version_id or "", None)

    @rule(key=KEYS, which=st.integers(min_value=0, max_value=5))
    def delete_version(self, key: str, which: int) -> None:
        versions = self.model.get(("versioned", key), [])
        if not versions:
            return
        vid, _ = versions[which % len(versions)]
        delete(self.store, "versioned", key, vid)
        versions[:] = [v for v in versions if v[0] != vid]
        if not versions:
            del self.model[("versioned", key)]

    @rule(key=KEYS)
    def create_upload(self, key: str) -> None:
        template = MultipartUpload("", 0, key, 0)
        upload = self.store.commit(lambda t: fm.create_upload(t, "plain", key, template, NOW))
        self.uploads[upload.upload_id] = (key, {})

    @precondition(lambda self: self.uploads)
    @rule(which=st.integers(min_value=0), number=st.integers(1, 3), content=CONTENTS)
    def upload_part(self, which: int, number: int, content: bytes) -> None:
        upload_id = sorted(self.uploads)[which % len(self.uploads)]
        key, parts = self.uploads[upload_id]
        chunks = write_chunks(self.store, content)
        part = PartRecord(number, len(content), hashlib.md5(content).hexdigest(), NOW)
        self.store.commit(
            lambda t: fm.upload_part(t, "plain", key, upload_id, part, chunks),
            segments_of(chunks),
        )
        parts[number] = content

    @precondition(lambda self: self.uploads)
    @rule(which=st.integers(min_value=0), keep=st.sets(st.integers(1, 3)))
    def complete(self, which: int, keep: set[int]) -> None:
        upload_id = sorted(self.uploads)[which % len(self.uploads)]
        key, parts = self.uploads[upload_id]
        chosen = sorted(n for n in keep if n in parts)
        if not chosen:
            return
        requested = [fm.RequestedPart(n, hashlib.md5(parts[n]).hexdigest()) for n in chosen]
        done = self.store.commit(
            lambda t: fm.complete_upload(
                t,
                "plain",
                key,
                upload_id,
                requested,
                fo.WriteConditions(),
                NOW,
                min_part_size=0,
            )
        )
        del self.uploads[upload_id]
        self._install("plain", key, done.version.version_id, b"".join(parts[n] for n in chosen))

    @precondition(lambda self: self.uploads)
    @rule(which=st.integers(min_value=0))
    def abort(self, which: int) -> None:
        upload_id = sorted(self.uploads)[which % len(self.uploads)]
        key, _ = self.uploads.pop(upload_id)
        self.store.commit(lambda t: fm.abort_upload(t, "plain", key, upload_id))

    @rule(threshold=st.sampled_from([0.0, 0.3, 0.9]))
    def compact(self, threshold: float) -> None:
        report = Compactor(self.store, threshold=threshold, grace=0).run()
        assert report.damaged == []

    # -- checks ------------------------------------------------------------------------

    def current(self, bucket: str, key: str) -> bytes | None:
        versions = self.model.get((bucket, key))
        return versions[-1][1] if versions else None

    @staticmethod
    def assert_code(error: S3Error, code: str) -> None:
        assert error.code == code, error

    @invariant()
    def consistent(self) -> None:
        report = fsck.check_store(self.store)
        assert report.problems == [], report.render()
        mismatched = [w for w in report.warnings if w.kind == fsck.STATS_MISMATCH]
        assert mismatched == [], report.render()
        released: dict[int, int] = {}
        with self.store.read() as t:
            for digest, _raw in t.txn.cursor(db=t.dbs.chunks):
                loc, refs = t.chunks.get(bytes(digest))
                if refs == 0:
                    released[loc.segment] = released.get(loc.segment, 0) + HEADER_SIZE + loc.length
            for seg in report.segments:
                recorded = t.segments.info(seg.segment)["dead"]
                found = seg.orphan_bytes + seg.damaged_bytes + released.get(seg.segment, 0)
                assert recorded == found, (seg.segment, recorded, found)

    @invariant()
    def readable(self) -> None:
        for bucket in ("plain", "versioned"):
            for key in ("a", "b", "dir/c", "dir/d"):
                expected = self.current(bucket, key)
                try:
                    got = get(self.store, bucket, key)
                except S3Error as e:
                    self.assert_code(e, "NoSuchKey")
                    got = None
                assert got == expected, (bucket, key, got, expected)


class RefcountPropertyTests(SynchronousTestCase):
    def test_refcounts_match_a_recount(self) -> None:
        run = RefcountMachine.TestCase
        run.settings = settings(
            max_examples=60,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        run().runTest()
