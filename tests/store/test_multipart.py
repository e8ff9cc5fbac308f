"""Multipart uploads at the store level: records, listing order, reference counts.

Strategy: the transaction functions of :mod:`s4d.features.multipart` run against
a real store in a temporary directory with the inline committer (no threads).
The central test is a property: after any random sequence of creates, part
uploads (with replacements), completes of random subsets (and repeats of them),
aborts, expiries, forgetting of completed uploads, plain puts and deletes, over
data drawn from a handful of blocks so that chunks are shared between parts and
objects all the time, fsck's recount of chunk references (from versions *and*
parts) equals the stored counts, every object reads back as a model predicts,
the uploads listed are the model's, and a repeated Complete answers what the
completion made until it is forgotten. The other tests pin down the listing
order of long keys, markers and delimiters, completed-upload records, and that
fsck notices multipart damage.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from twisted.trial.unittest import SynchronousTestCase

from s4d.engine.multipart import completed_checksums
from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.features.objects import WriteConditions
from s4d.store import codec, fsck
from s4d.store.chunks import digest_of
from s4d.store.model import MultipartUpload, PartRecord
from s4d.store.schema import completed_expiry_key, completed_key, part_key
from s4d.store.store import Store, StoreConfig
from s4d.util import checksums as ck
from tests.store.helpers import (
    NOW,
    create_bucket,
    delete,
    get,
    open_store,
    put,
    segments_of,
    set_versioning,
    write_chunks,
)

CHUNK = 64
BLOCKS = [bytes([65 + i]) * CHUNK for i in range(4)] + [b"tail", b"x" * 100]


def start(store: Store, key: str, now: int = NOW) -> MultipartUpload:
    template = MultipartUpload("", 0, key, 0, content_type="t/x", metadata={"a": "1"})
    upload: MultipartUpload = store.commit(lambda t: fm.create_upload(t, "b", key, template, now))
    return upload


def upload_part(store: Store, upload: MultipartUpload, number: int, data: bytes) -> PartRecord:
    chunks = write_chunks(store, data)
    part = PartRecord(number, len(data), hashlib.md5(data).hexdigest(), NOW)
    done: PartRecord = store.commit(
        lambda t: fm.upload_part(t, "b", upload.key, upload.upload_id, part, chunks),
        segments_of(chunks),
    )
    return done


def complete(
    store: Store,
    upload: MultipartUpload,
    parts: list[PartRecord],
    now: int = NOW,
    key: str | None = None,
    **kw: Any,
) -> Any:
    requested = [fm.RequestedPart(p.number, f'"{p.md5}"') for p in parts]
    kw.setdefault("min_part_size", 0)
    return store.commit(
        lambda t: fm.complete_upload(
            t, "b", key or upload.key, upload.upload_id, requested, WriteConditions(), now, **kw
        )
    )


def listed(store: Store, **kw: Any) -> fm.UploadsPage:
    with store.read() as t:
        return fm.list_uploads(t, "b", **kw)


class MultipartStoreCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = open_store(self, chunk_size=CHUNK)
        create_bucket(self.store, "b")

    def assert_clean(self) -> fsck.FsckReport:
        report = fsck.check_store(self.store)
        self.assertEqual(report.problems, [], report.render())
        return report


class CompleteTests(MultipartStoreCase):
    def test_complete_hands_references_over(self) -> None:
        upload = start(self.store, "k")
        one = upload_part(self.store, upload, 1, BLOCKS[0] * 2 + BLOCKS[1])
        two = upload_part(self.store, upload, 2, BLOCKS[2])
        upload_part(self.store, upload, 3, BLOCKS[3])  # not named: released
        refs_before = self.assert_clean().stats.chunk_refs
        self.assertEqual(refs_before, 5)
        done = complete(self.store, upload, [one, two])
        version = done.version
        self.assertEqual(version.parts, [3 * CHUNK, CHUNK])
        self.assertEqual(version.etag, fm.multipart_etag([one.md5, two.md5]))
        self.assertEqual((version.content_type, version.metadata), ("t/x", {"a": "1"}))
        self.assertEqual(get(self.store, "b", "k"), BLOCKS[0] * 2 + BLOCKS[1] + BLOCKS[2])
        report = self.assert_clean()
        self.assertEqual(report.stats.chunk_refs, 4)
        self.assertEqual((report.stats.uploads, report.stats.parts), (0, 0))
        with self.store.read() as t:
            chunk = t.chunks.get(digest_of(BLOCKS[3]))
        assert chunk is not None
        self.assertEqual(chunk[1], 0)

    def test_completion_writes_no_bytes(self) -> None:
        upload = start(self.store, "k")
        parts = [upload_part(self.store, upload, n, bytes([n]) * 1000) for n in (1, 2, 3)]
        size = self.store.segments.file(1).size
        complete(self.store, upload, parts)
        self.assertEqual(self.store.segments.file(1).size, size)

    def test_validation(self) -> None:
        upload = start(self.store, "k")
        one = upload_part(self.store, upload, 1, b"a" * 10)
        two = upload_part(self.store, upload, 2, b"b" * 10)

        def code(parts: list[PartRecord], **kw: Any) -> str:
            try:
                complete(self.store, upload, parts, **kw)
            except S3Error as e:
                return e.code
            return "ok"

        self.assertEqual(code([two, one]), "InvalidPartOrder")
        self.assertEqual(code([one, two, one]), "InvalidPartOrder")
        self.assertEqual(code([one, PartRecord(3, 1, one.md5, NOW)]), "InvalidPart")
        self.assertEqual(code([one, PartRecord(2, 1, one.md5, NOW)]), "InvalidPart")
        # a number twice in a row: the later entry counts (here naming an ETag not stored)
        self.assertEqual(code([one, two, PartRecord(2, 1, one.md5, NOW)]), "InvalidPart")
        self.assertEqual(code([one, two], min_part_size=11), "EntityTooSmall")
        self.assertEqual(code([one, two], object_size=19), "InvalidRequest")
        self.assertEqual(code([]), "MalformedXML")
        self.assertEqual(code([one, two], min_part_size=10), "ok")
        # completed: only a repeat of the same part list is answered
        self.assertEqual(code([one, two], object_size=20), "ok")
        self.assertEqual(code([one, two], object_size=19), "InvalidRequest")
        self.assertEqual(code([one]), "NoSuchUpload")
        self.assertEqual(code([two, one]), "NoSuchUpload")
        self.assertEqual(code([]), "NoSuchUpload")
        self.assert_clean()

    def test_a_part_number_named_twice_counts_once(self) -> None:
        """The s3-tests "resend first finishes last" case: both answers of part 1 are named."""
        upload = start(self.store, "k")
        first = upload_part(self.store, upload, 1, b"B" * 8)
        last = upload_part(self.store, upload, 1, b"A" * 8)  # finished last: stored
        self.assertEqual(complete_code(self.store, upload, [last, first]), "InvalidPart")
        done = complete(self.store, upload, [first, last])
        self.assertEqual(done.version.parts, [8])
        self.assertEqual(done.version.etag, fm.multipart_etag([last.md5]))
        self.assertEqual(get(self.store, "b", "k"), b"A" * 8)
        # a repeat with the same list, or with the entry that counted alone, is the same list
        self.assertEqual(complete(self.store, upload, [first, last]).result, done.result)
        self.assertEqual(complete(self.store, upload, [last]).result, done.result)
        self.assert_clean()

    def test_replacing_a_part_releases_the_old_one(self) -> None:
        upload = start(self.store, "k")
        upload_part(self.store, upload, 1, BLOCKS[0])
        upload_part(self.store, upload, 1, BLOCKS[1])
        upload_part(self.store, upload, 1, BLOCKS[1])
        report = self.assert_clean()
        self.assertEqual((report.stats.parts, report.stats.chunk_refs), (1, 1))

    def test_abort_and_expiry_release_everything(self) -> None:
        old = start(self.store, "old", now=NOW - 10)
        upload_part(self.store, old, 1, BLOCKS[0] + BLOCKS[1])
        young = start(self.store, "young", now=NOW + 10)
        upload_part(self.store, young, 1, BLOCKS[0])
        expired = self.store.commit(lambda t: fm.expire_uploads(t, NOW))
        self.assertEqual([u.upload_id for u in expired], [old.upload_id])
        report = self.assert_clean()
        self.assertEqual((report.stats.uploads, report.stats.chunk_refs), (1, 1))
        self.store.commit(lambda t: fm.abort_upload(t, "b", "young", young.upload_id))
        report = self.assert_clean()
        self.assertEqual((report.stats.uploads, report.stats.chunk_refs), (0, 0))


class CompletedRecordTests(MultipartStoreCase):
    """A completion leaves a record that answers a repeat until it is forgotten."""

    def test_repeat_answers_what_the_completion_made(self) -> None:
        upload = start(self.store, "k")
        parts = [upload_part(self.store, upload, n, BLOCKS[n]) for n in (1, 2)]
        done = complete(self.store, upload, parts, now=NOW + 5)
        self.assertFalse(done.repeated)
        self.assertEqual(
            (done.result.upload_id, done.result.key, done.result.etag, done.result.size),
            (upload.upload_id, "k", done.version.etag, 2 * CHUNK),
        )
        self.assertEqual(done.result.completed_ns, NOW + 5)
        report = self.assert_clean()
        self.assertEqual((report.stats.uploads, report.stats.completed), (0, 1))
        # overwritten since: the repeat still reports what the completion made, and writes nothing
        put(self.store, "b", "k", b"newer")
        again = complete(self.store, upload, parts, now=NOW + 50)
        self.assertTrue(again.repeated)
        self.assertEqual((again.result, again.version, again.upload), (done.result, None, None))
        self.assertEqual(get(self.store, "b", "k"), b"newer")
        # another key, another bucket, another list: not this upload
        self.assertEqual(complete_code(self.store, upload, parts, key="other"), "NoSuchUpload")
        create_bucket(self.store, "c")
        requested = [fm.RequestedPart(p.number, p.md5) for p in parts]
        with self.assertRaises(S3Error) as e:
            self.store.commit(
                lambda t: fm.complete_upload(
                    t, "c", "k", upload.upload_id, requested, WriteConditions(), NOW
                )
            )
        self.assertEqual(e.exception.code, "NoSuchUpload")
        self.assertEqual(complete_code(self.store, upload, parts[:1]), "NoSuchUpload")
        self.assert_clean()

    def test_versioned_repeat_names_the_version_made(self) -> None:
        set_versioning(self.store, "b", "Enabled")
        upload = start(self.store, "k")
        part = upload_part(self.store, upload, 1, BLOCKS[0])
        done = complete(self.store, upload, [part])
        self.assertNotEqual(done.result.version_id, "null")
        self.assertEqual(done.result.version_id, done.version.version_id)
        put(self.store, "b", "k", b"newer")
        self.assertEqual(
            complete(self.store, upload, [part]).result.version_id, done.version.version_id
        )

    def test_forgotten_oldest_first_in_batches(self) -> None:
        uploads = []
        for n in range(5):
            upload = start(self.store, f"k{n}")
            part = upload_part(self.store, upload, 1, BLOCKS[n % 4])
            complete(self.store, upload, [part], now=NOW + 10 * n)
            uploads.append((upload, part))
        forget = fm.forget_completed
        self.assertEqual(self.store.commit(lambda t: forget(t, NOW)), 0)
        self.assertEqual(self.store.commit(lambda t: forget(t, NOW + 25, limit=2)), 2)
        self.assertEqual(self.store.commit(lambda t: forget(t, NOW + 25, limit=2)), 1)
        self.assertEqual(self.assert_clean().stats.completed, 2)
        for n, (upload, part) in enumerate(uploads):
            code = complete_code(self.store, upload, [part])
            self.assertEqual(code, "NoSuchUpload" if n < 3 else "ok", n)
        self.assertEqual(self.store.commit(lambda t: forget(t, NOW + 1000)), 2)
        self.assertEqual(self.assert_clean().stats.completed, 0)

    def test_part_checksums_follow_the_object(self) -> None:
        template = MultipartUpload("", 0, "k", 0, checksum_algorithm="SHA256")
        upload = self.store.commit(lambda t: fm.create_upload(t, "b", "k", template, NOW))
        sums = []
        for n in (1, 2):
            chunks = write_chunks(self.store, BLOCKS[n])
            value = ck.checksum_of("SHA256", BLOCKS[n])
            sums.append(value)
            part = PartRecord(n, CHUNK, hashlib.md5(BLOCKS[n]).hexdigest(), NOW, {"SHA256": value})
            self.store.commit(
                lambda t, part=part, chunks=chunks: fm.upload_part(
                    t, "b", "k", upload.upload_id, part, chunks
                ),
                segments_of(chunks),
            )
        done = self.store.commit(
            lambda t: fm.complete_upload(
                t,
                "b",
                "k",
                upload.upload_id,
                [fm.RequestedPart(n, hashlib.md5(BLOCKS[n]).hexdigest()) for n in (1, 2)],
                WriteConditions(),
                NOW,
                completed_checksums({}),
                min_part_size=0,
            )
        )
        self.assertEqual(done.version.part_checksums, sums)
        self.assertEqual(done.result.checksums, {"SHA256": ck.composite("SHA256", sums)})
        with self.store.read() as t:
            stored = fo.find_version(t, t.buckets.require("b"), "k", None)[1]
        self.assertEqual((stored.parts, stored.part_checksums), ([CHUNK, CHUNK], sums))
        # a copy shares the parts, and their checksums with them
        self.store.commit(
            lambda t: fo.copy_object(
                t, fo.CopySource("b", "k"), "b", "copy", None, WriteConditions(), NOW
            )
        )
        with self.store.read() as t:
            copied = fo.find_version(t, t.buckets.require("b"), "copy", None)[1]
        self.assertEqual(copied.part_checksums, sums)
        self.assert_clean()


def complete_code(store: Store, upload: MultipartUpload, parts: list[PartRecord], **kw: Any) -> str:
    """The S3 error code of completing ``upload`` with ``parts`` ("ok" if it succeeds)."""
    try:
        complete(store, upload, parts, **kw)
    except S3Error as e:
        return e.code
    return "ok"


class ListingOrderTests(MultipartStoreCase):
    def test_long_keys_keep_key_order(self) -> None:
        base = "k" * 400
        keys = [base + "z", base, base + "a", base[:399], "k" * 399 + "l", base + "a/b", "a", "l"]
        made = [start(self.store, key) for key in keys] + [start(self.store, base + "a")]
        expected = sorted((u.key.encode(), u.upload_id) for u in made)
        page = listed(self.store)
        self.assertEqual([(u.key.encode(), u.upload_id) for u in page.uploads], expected)
        # Every position, as a key marker and as key + upload-id markers.
        for i, (key, uid) in enumerate(expected):
            after_key = [e for e in expected if e[0] > key]
            page = listed(self.store, key_marker=key.decode())
            self.assertEqual([(u.key.encode(), u.upload_id) for u in page.uploads], after_key)
            page = listed(self.store, key_marker=key.decode(), upload_id_marker=uid)
            self.assertEqual(
                [(u.key.encode(), u.upload_id) for u in page.uploads], expected[i + 1 :]
            )
        page = listed(self.store, prefix=base + "a")
        self.assertEqual([u.key for u in page.uploads], [base + "a", base + "a", base + "a/b"])
        page = listed(self.store, prefix=base, delimiter="/")
        self.assertEqual(page.common_prefixes, [base + "a/"])
        self.assertEqual(len(page.uploads), 4)

    def test_pages_and_markers(self) -> None:
        made = [start(self.store, key) for key in ("x/1", "x/2", "y", "z/1/2")]
        page = listed(self.store, delimiter="/", max_uploads=2)
        self.assertEqual((page.common_prefixes, [u.key for u in page.uploads]), (["x/"], ["y"]))
        self.assertTrue(page.is_truncated)
        self.assertEqual(
            (page.next_key_marker, page.next_upload_id_marker), ("y", made[2].upload_id)
        )
        page = listed(self.store, delimiter="/", key_marker="y")
        self.assertEqual(
            (page.common_prefixes, page.uploads, page.is_truncated), (["z/"], [], False)
        )
        page = listed(self.store, delimiter="/", key_marker="x/")
        self.assertEqual((page.common_prefixes, [u.key for u in page.uploads]), (["z/"], ["y"]))
        page = listed(self.store, max_uploads=0)
        self.assertEqual((page.uploads, page.is_truncated), ([], True))


class FsckTests(MultipartStoreCase):
    def test_detects_orphan_parts_and_bad_refcounts(self) -> None:
        upload = start(self.store, "k")
        upload_part(self.store, upload, 1, BLOCKS[0])
        self.assert_clean()
        with self.store.env.begin(write=True) as txn:
            part = PartRecord(7, 4, "0" * 32, NOW, chunks=[])
            txn.put(part_key("f" * 32, 7), codec.encode(part.encode()), db=self.store.dbs.multipart)
        # A part of no upload; its 4 bytes are not in its (empty) chunk list either.
        self.assertEqual(fsck.check_store(self.store).kinds(), {fsck.ORPHAN_PART})
        with self.store.env.begin(write=True) as txn:
            self.store.meta(txn).chunks.decref(digest_of(BLOCKS[0]))
        self.assertEqual(
            fsck.check_store(self.store).kinds(), {fsck.ORPHAN_PART, fsck.REFCOUNT_MISMATCH}
        )

    def test_detects_unpaired_completed_records(self) -> None:
        upload = start(self.store, "k")
        complete(self.store, upload, [upload_part(self.store, upload, 1, BLOCKS[0])])
        self.assertEqual(self.assert_clean().stats.completed, 1)
        multipart = self.store.dbs.multipart
        with self.store.env.begin(write=True) as txn:
            txn.delete(completed_expiry_key(NOW, upload.upload_id), db=multipart)
        self.assertEqual(fsck.check_store(self.store).kinds(), {fsck.BAD_COMPLETED})
        with self.store.env.begin(write=True) as txn:
            txn.put(completed_expiry_key(NOW, upload.upload_id), b"", db=multipart)
            txn.put(completed_expiry_key(NOW, "e" * 32), b"", db=multipart)
        self.assertEqual(fsck.check_store(self.store).kinds(), {fsck.BAD_COMPLETED})
        with self.store.env.begin(write=True) as txn:
            txn.delete(completed_expiry_key(NOW, "e" * 32), db=multipart)
            txn.put(completed_key(upload.upload_id), codec.encode({"b": 1}), db=multipart)
        self.assertEqual(fsck.check_store(self.store).kinds(), {fsck.BAD_COMPLETED})

    def test_detects_a_lost_upload_record(self) -> None:
        upload = start(self.store, "k")
        upload_part(self.store, upload, 1, BLOCKS[0])
        with self.store.env.begin(write=True) as txn:
            self.store.meta(txn).multipart.delete_upload(upload)
        self.assertEqual(fsck.check_store(self.store).kinds(), {fsck.ORPHAN_PART})


# -- the property ------------------------------------------------------------------------

KEYS = ["k0", "dir/k1", "k" * 450]
data_st = st.lists(st.sampled_from(BLOCKS), max_size=4).map(b"".join)


class MultipartMachine(RuleBasedStateMachine):
    """Random multipart histories over shared data; fsck must stay clean at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="s4d-mp-")
        self.store = Store(
            StoreConfig(self.path, chunk_size=CHUNK, map_size=1 << 28, fsync=False),
            inline_commit=True,
        )
        create_bucket(self.store, "b")
        self.uploads: list[tuple[MultipartUpload, dict[int, tuple[PartRecord, bytes]]]] = []
        self.objects: dict[str, bytes] = {}
        # completed uploads still answering a repeat: upload, parts named, result
        self.completed: list[tuple[MultipartUpload, list[PartRecord], Any]] = []
        self.clock = NOW

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    @rule(key=st.sampled_from(KEYS))
    def create(self, key: str) -> None:
        self.uploads.append((start(self.store, key, now=self.tick()), {}))

    @rule(
        key=st.sampled_from(KEYS),
        parts=st.lists(st.tuples(st.integers(1, 4), data_st), min_size=1, max_size=5),
    )
    def create_with_parts(self, key: str, parts: list[tuple[int, bytes]]) -> None:
        self.create(key)
        for number, data in parts:
            self.part(-1, number, data)

    @precondition(lambda self: self.uploads)
    @rule(which=st.integers(-1, 9), number=st.integers(1, 4), data=data_st)
    def part(self, which: int, number: int, data: bytes) -> None:
        upload, parts = self.uploads[which % len(self.uploads)]
        parts[number] = (upload_part(self.store, upload, number, data), data)

    @precondition(lambda self: any(parts for _, parts in self.uploads))
    @rule(which=st.integers(0, 9), mask=st.lists(st.booleans(), min_size=4, max_size=4))
    def complete(self, which: int, mask: list[bool]) -> None:
        candidates = [i for i, (_, parts) in enumerate(self.uploads) if parts]
        index = candidates[which % len(candidates)]
        upload, parts = self.uploads[index]
        chosen = [n for n in sorted(parts) if mask[n - 1]] or sorted(parts)[:1]
        named = [parts[n][0] for n in chosen]
        done = complete(self.store, upload, named, now=self.tick())
        self.objects[upload.key] = b"".join(parts[n][1] for n in chosen)
        self.completed.append((upload, named, done.result))
        del self.uploads[index]

    @precondition(lambda self: self.completed)
    @rule(which=st.integers(0, 9))
    def repeat_complete(self, which: int) -> None:
        upload, named, result = self.completed[which % len(self.completed)]
        again = complete(self.store, upload, named, now=self.tick())
        assert again.repeated and again.result == result, (again, result)

    @rule(age=st.integers(0, 100))
    def forget(self, age: int) -> None:
        cutoff = self.tick() - age
        self.store.commit(lambda t: fm.forget_completed(t, cutoff))
        self.completed = [c for c in self.completed if c[2].completed_ns >= cutoff]

    @precondition(lambda self: self.uploads)
    @rule(which=st.integers(0, 9))
    def abort(self, which: int) -> None:
        upload, _ = self.uploads.pop(which % len(self.uploads))
        self.store.commit(lambda t: fm.abort_upload(t, "b", upload.key, upload.upload_id))

    @rule(key=st.sampled_from(KEYS), data=data_st)
    def put(self, key: str, data: bytes) -> None:
        put(self.store, "b", key, data)
        self.objects[key] = data

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        delete(self.store, "b", key)
        self.objects.pop(key, None)

    @rule(age=st.integers(0, 100))
    def expire(self, age: int) -> None:
        cutoff = self.tick() - age
        self.store.commit(lambda t: fm.expire_uploads(t, cutoff))
        self.uploads = [(u, p) for u, p in self.uploads if u.initiated_ns >= cutoff]

    @invariant()
    def consistent(self) -> None:
        report = fsck.check_store(self.store)
        assert report.ok, report.render()
        assert report.stats.parts == sum(len(p) for _, p in self.uploads)
        assert report.stats.completed == len(self.completed)
        expected = sorted((u.key.encode(), u.upload_id) for u, _ in self.uploads)
        assert [(u.key.encode(), u.upload_id) for u in listed(self.store).uploads] == expected
        for key, data in self.objects.items():
            assert get(self.store, "b", key) == data, key


MultipartMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None
)


class RefcountPropertyTests(MultipartMachine.TestCase):  # type: ignore[name-defined,misc]
    """The state machine as a test case (trial collects ``test_*`` methods)."""

    def test_random_histories(self) -> None:
        self.runTest()
