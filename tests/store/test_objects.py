"""Object semantics of the transaction functions in :mod:`s4d.features.objects`.

Strategy: a real store in a temp directory (inline commits, no fsync) driven
through the same transaction functions the S3 layer uses. After every scenario
:func:`fsck.check_store` recounts chunk references from all versions and
compares them with the stored counts, so a leaked or lost reference fails the
test that caused it.
"""

from __future__ import annotations

import hashlib

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.store import fsck, records
from s4d.store.chunks import digest_of
from s4d.store.model import NULL_VERSION
from s4d.store.store import Store
from tests.store.helpers import (
    NOW,
    create_bucket,
    delete,
    get,
    open_store,
    put,
    set_versioning,
)


class StoreTestCase(SynchronousTestCase):
    """A store with bucket ``b``; checked with fsck at the end of each test."""

    versioning: str | None = None

    def setUp(self) -> None:
        self.store: Store = open_store(self)
        create_bucket(self.store, "b", self.versioning)
        self.addCleanup(self.assertConsistent)

    def assertConsistent(self) -> None:
        report = fsck.check_store(self.store)
        self.assertEqual(report.problems, [], report.render())

    def refs(self, data: bytes) -> int | None:
        """The live reference count of the chunk holding ``data``.

        None if it is unindexed or released (kept with zero references until
        compaction reclaims its bytes).
        """
        with self.store.read() as t:
            found = t.chunks.get(digest_of(data))
        return None if found is None or found[1] == 0 else found[1]

    def assertS3Error(self, code: str, f: object, *args: object) -> S3Error:
        error = self.assertRaises(S3Error, f, *args)
        self.assertEqual(error.code, code)
        return error

    def versions(self, key: str) -> list[tuple[str, bool]]:
        """(version id, is delete marker) of every version of ``key``, newest first."""
        with self.store.read() as t:
            object_id = t.ns.lookup(t.buckets.require("b"), key.encode())
            if object_id is None:
                return []
            return [(v.version_id, v.delete_marker) for v in t.versions.all(object_id)]


class PutGetDeleteTests(StoreTestCase):
    def test_put_get(self) -> None:
        version = put(self.store, "b", "k", b"hello")
        self.assertEqual(version.version_id, NULL_VERSION)
        self.assertEqual(version.etag, hashlib.md5(b"hello").hexdigest())
        self.assertEqual(version.size, 5)
        self.assertEqual(version.key, "k")
        self.assertEqual(get(self.store, "b", "k"), b"hello")

    def test_multi_chunk(self) -> None:
        data = bytes(range(256)) * 1000
        version = put(self.store, "b", "big", data, chunk_size=10_000)
        self.assertEqual(len(version.chunks), 26)
        self.assertEqual(get(self.store, "b", "big"), data)

    def test_empty_object(self) -> None:
        version = put(self.store, "b", "empty", b"")
        self.assertEqual(version.chunks, [])
        self.assertEqual(get(self.store, "b", "empty"), b"")

    def test_missing(self) -> None:
        self.assertS3Error("NoSuchKey", get, self.store, "b", "nope")
        self.assertS3Error("NoSuchBucket", put, self.store, "nobucket", "k", b"x")

    def test_overwrite(self) -> None:
        put(self.store, "b", "k", b"one")
        put(self.store, "b", "k", b"two")
        self.assertEqual(get(self.store, "b", "k"), b"two")
        self.assertEqual(self.versions("k"), [(NULL_VERSION, False)])
        # The overwritten content lost its only reference in the same transaction.
        self.assertIsNone(self.refs(b"one"))
        self.assertEqual(self.refs(b"two"), 1)

    def test_overwrite_with_same_bytes(self) -> None:
        put(self.store, "b", "k", b"same")
        put(self.store, "b", "k", b"same")
        self.assertEqual(self.refs(b"same"), 1)
        self.assertEqual(get(self.store, "b", "k"), b"same")

    def test_delete(self) -> None:
        put(self.store, "b", "dir/k", b"data")
        outcome = delete(self.store, "b", "dir/k")
        self.assertEqual(outcome, fo.DeleteOutcome("dir/k", None, False))
        self.assertS3Error("NoSuchKey", get, self.store, "b", "dir/k")
        self.assertIsNone(self.refs(b"data"))
        with self.store.read() as t:
            self.assertTrue(t.ns.bucket_is_empty(t.buckets.require("b")))

    def test_delete_missing_is_quiet(self) -> None:
        self.assertEqual(delete(self.store, "b", "nope"), fo.DeleteOutcome("nope", None, False))

    def test_delete_bucket(self) -> None:
        put(self.store, "b", "k", b"x")
        self.assertS3Error("BucketNotEmpty", self.store.commit, lambda t: fo.delete_bucket(t, "b"))
        delete(self.store, "b", "k")
        self.store.commit(lambda t: fo.delete_bucket(t, "b"))
        with self.store.read() as t:
            self.assertIsNone(t.buckets.get("b"))
        create_bucket(self.store, "b")

    def test_bucket_exists(self) -> None:
        self.assertS3Error("BucketAlreadyOwnedByYou", create_bucket, self.store, "b")

    def test_bad_keys(self) -> None:
        self.assertS3Error("InvalidArgument", put, self.store, "b", "", b"x")
        self.assertS3Error("KeyTooLongError", put, self.store, "b", "k" * 1025, b"x")
        put(self.store, "b", "k" * 1024, b"x")
        self.assertS3Error("KeyTooLongError", put, self.store, "b", "é" * 513, b"x")

    def test_failed_put_leaves_no_reference(self) -> None:
        put(self.store, "b", "k", b"old")
        self.assertS3Error(
            "PreconditionFailed",
            put,
            self.store,
            "b",
            "k",
            b"new",
            fo.WriteConditions(if_none_match="*"),
        )
        # The new chunk was written but never indexed: it is an orphan, not a leak.
        self.assertIsNone(self.refs(b"new"))
        self.assertEqual(get(self.store, "b", "k"), b"old")


class ConditionalWriteTests(StoreTestCase):
    def test_if_none_match_star(self) -> None:
        cond = fo.WriteConditions(if_none_match="*")
        put(self.store, "b", "k", b"first", cond)
        self.assertS3Error("PreconditionFailed", put, self.store, "b", "k", b"second", cond)
        self.assertEqual(get(self.store, "b", "k"), b"first")

    def test_if_none_match_after_delete(self) -> None:
        put(self.store, "b", "k", b"first")
        delete(self.store, "b", "k")
        put(self.store, "b", "k", b"again", fo.WriteConditions(if_none_match="*"))

    def test_if_match(self) -> None:
        v = put(self.store, "b", "k", b"first")
        put(self.store, "b", "k", b"second", fo.WriteConditions(if_match=f'"{v.etag}"'))
        self.assertEqual(get(self.store, "b", "k"), b"second")

    def test_if_match_mismatch(self) -> None:
        put(self.store, "b", "k", b"first")
        self.assertS3Error(
            "PreconditionFailed",
            put,
            self.store,
            "b",
            "k",
            b"x",
            fo.WriteConditions(if_match='"0123456789abcdef0123456789abcdef"'),
        )
        self.assertEqual(get(self.store, "b", "k"), b"first")

    def test_if_match_missing(self) -> None:
        self.assertS3Error(
            "NoSuchKey", put, self.store, "b", "k", b"x", fo.WriteConditions(if_match="*")
        )
        self.assertS3Error("NoSuchKey", get, self.store, "b", "k")

    def test_if_match_list(self) -> None:
        v = put(self.store, "b", "k", b"first")
        put(self.store, "b", "k", b"x", fo.WriteConditions(if_match=f'"aaa", "{v.etag}"'))


class SharingTests(StoreTestCase):
    def test_copy_shares_chunks(self) -> None:
        put(self.store, "b", "src", b"shared bytes")
        src, new = self.store.commit(
            lambda t: fo.copy_object(
                t, fo.CopySource("b", "src"), "b", "dst", None, fo.WriteConditions(), NOW
            )
        )
        self.assertEqual(src.chunks, new.chunks)
        self.assertEqual(new.etag, src.etag)
        self.assertEqual(self.refs(b"shared bytes"), 2)
        self.assertEqual(get(self.store, "b", "dst"), b"shared bytes")
        delete(self.store, "b", "src")
        self.assertEqual(self.refs(b"shared bytes"), 1)
        self.assertEqual(get(self.store, "b", "dst"), b"shared bytes")

    def test_copy_onto_itself(self) -> None:
        put(self.store, "b", "k", b"self")
        self.store.commit(
            lambda t: fo.copy_object(
                t,
                fo.CopySource("b", "k"),
                "b",
                "k",
                fo.NewObject(size=0, etag="", metadata={"a": "b"}),
                fo.WriteConditions(),
                NOW,
            )
        )
        self.assertEqual(self.refs(b"self"), 1)
        with self.store.read() as t:
            _, v = fo.find_version(t, t.buckets.require("b"), "k", None)
        self.assertEqual(v.metadata, {"a": "b"})
        self.assertEqual(v.size, 4)

    def test_copy_missing_source(self) -> None:
        self.assertS3Error(
            "NoSuchKey",
            self.store.commit,
            lambda t: fo.copy_object(
                t, fo.CopySource("b", "nope"), "b", "dst", None, fo.WriteConditions(), NOW
            ),
        )

    def test_dedup(self) -> None:
        first = self.store.put_chunk(b"same content")
        put(self.store, "b", "one", b"same content")
        second = self.store.put_chunk(b"same content")
        self.assertIsNotNone(first.location)
        self.assertIsNone(second.location)  # already indexed: not written again
        put(self.store, "b", "two", b"same content")
        self.assertEqual(self.refs(b"same content"), 2)
        with self.store.read() as t:
            digests = [bytes(k) for k, _ in t.txn.cursor(db=t.dbs.chunks)]
        self.assertEqual(digests, [digest_of(b"same content")])
        report = fsck.check_store(self.store)
        # One record is live; the unused first write is an orphan.
        self.assertEqual(report.stats.chunks, 1)
        self.assertEqual(report.stats.chunk_refs, 2)

    def test_concurrent_duplicate_writes(self) -> None:
        # Two writers both write the same new chunk before either commits.
        a = self.store.put_chunk(b"race")
        b = self.store.put_chunk(b"race")
        self.assertIsNotNone(a.location)
        self.assertIsNotNone(b.location)
        for key, chunk in (("a", a), ("b", b)):
            self.store.commit(
                lambda t, key=key, chunk=chunk: fo.put_object(
                    t, "b", key, fo.NewObject(size=4, etag="e"), [chunk], fo.WriteConditions(), NOW
                )
            )
        self.assertEqual(self.refs(b"race"), 2)
        with self.store.read() as t:
            dead = t.segments.info(b.location.segment)["dead"]  # type: ignore[union-attr]
        self.assertEqual(dead, records.HEADER_SIZE + 4)

    def test_deduplicated_chunk_freed_before_commit(self) -> None:
        # A writer finds its chunk already stored, so it writes nothing; before it
        # commits, a delete drops the chunk's last reference. The released chunk
        # keeps its record (and bytes) until compaction, so the commit revives it.
        put(self.store, "b", "first", b"shared")
        chunk = self.store.put_chunk(b"shared")
        self.assertIsNone(chunk.location)
        delete(self.store, "b", "first")
        self.assertIsNone(self.refs(b"shared"))
        new = fo.NewObject(size=6, etag="e")
        self.store.commit(
            lambda t: fo.put_object(t, "b", "second", new, [chunk], fo.WriteConditions(), NOW)
        )
        self.assertEqual(get(self.store, "b", "second"), b"shared")
        self.assertEqual(self.refs(b"shared"), 1)
        with self.store.read() as t:
            loc = self.store.locate(t, [chunk.ref])[0]
            self.assertEqual(t.segments.info(loc.segment)["dead"], 0)

    def test_same_chunk_twice_in_one_object(self) -> None:
        data = b"abcd" * 4
        put(self.store, "b", "k", data, chunk_size=4)
        self.assertEqual(self.refs(b"abcd"), 4)
        self.assertEqual(get(self.store, "b", "k"), data)
        delete(self.store, "b", "k")
        self.assertIsNone(self.refs(b"abcd"))

    def test_last_reference_frees_chunk(self) -> None:
        version = put(self.store, "b", "k", b"doomed bytes")
        with self.store.read() as t:
            loc = self.store.locate(t, version.chunks)[0]
            self.assertEqual(t.segments.info(loc.segment)["dead"], 0)
        delete(self.store, "b", "k")
        self.assertIsNone(self.refs(b"doomed bytes"))
        with self.store.read() as t:
            info = t.segments.info(loc.segment)
        self.assertEqual(info["dead"], records.HEADER_SIZE + len(b"doomed bytes"))

    def test_discard_chunks_counts_dead_bytes(self) -> None:
        chunks = [self.store.put_chunk(b"abandoned upload")]
        self.store.commit(lambda t: fo.discard_chunks(t, chunks))
        with self.store.read() as t:
            info = t.segments.info(chunks[0].location.segment)  # type: ignore[union-attr]
        self.assertEqual(info["dead"], records.HEADER_SIZE + 16)


class VersioningTests(StoreTestCase):
    versioning = "Enabled"

    def test_versions_accumulate(self) -> None:
        v1 = put(self.store, "b", "k", b"one")
        v2 = put(self.store, "b", "k", b"two")
        self.assertNotEqual(v1.version_id, v2.version_id)
        self.assertNotEqual(v1.version_id, NULL_VERSION)
        self.assertEqual(get(self.store, "b", "k"), b"two")
        self.assertEqual(get(self.store, "b", "k", v1.version_id), b"one")
        self.assertEqual(self.versions("k"), [(v2.version_id, False), (v1.version_id, False)])
        self.assertEqual(self.refs(b"one"), 1)

    def test_delete_marker(self) -> None:
        v1 = put(self.store, "b", "k", b"one")
        outcome = delete(self.store, "b", "k")
        self.assertTrue(outcome.delete_marker)
        self.assertNotEqual(outcome.version_id, NULL_VERSION)
        self.assertS3Error("NoSuchKey", get, self.store, "b", "k")
        self.assertEqual(get(self.store, "b", "k", v1.version_id), b"one")
        self.assertS3Error("MethodNotAllowed", get, self.store, "b", "k", outcome.version_id)
        self.assertEqual(self.versions("k"), [(outcome.version_id, True), (v1.version_id, False)])
        # Removing the marker brings the object back.
        removed = delete(self.store, "b", "k", outcome.version_id)
        self.assertTrue(removed.delete_marker)
        self.assertEqual(get(self.store, "b", "k"), b"one")

    def test_delete_marker_hidden_from_listing(self) -> None:
        from s4d.store import listing

        put(self.store, "b", "k", b"one")
        put(self.store, "b", "other", b"two")
        delete(self.store, "b", "k")
        with self.store.read() as t:
            result = listing.list_objects(t, t.buckets.require("b"))
        self.assertEqual([e.key for e in result.entries], ["other"])

    def test_delete_version_releases_chunks(self) -> None:
        v1 = put(self.store, "b", "k", b"one")
        put(self.store, "b", "k", b"two")
        delete(self.store, "b", "k", v1.version_id)
        self.assertIsNone(self.refs(b"one"))
        self.assertEqual(get(self.store, "b", "k"), b"two")

    def test_delete_every_version_removes_key(self) -> None:
        v1 = put(self.store, "b", "d/k", b"one")
        marker = delete(self.store, "b", "d/k")
        delete(self.store, "b", "d/k", v1.version_id)
        delete(self.store, "b", "d/k", marker.version_id)
        self.assertEqual(self.versions("d/k"), [])
        with self.store.read() as t:
            self.assertTrue(t.ns.bucket_is_empty(t.buckets.require("b")))

    def test_missing_version(self) -> None:
        put(self.store, "b", "k", b"one")
        self.assertS3Error("NoSuchVersion", get, self.store, "b", "k", "nope")
        self.assertS3Error("NoSuchVersion", get, self.store, "b", "other", "nope")
        self.assertEqual(delete(self.store, "b", "k", "nope"), fo.DeleteOutcome("k", "nope", False))

    def test_copy_of_old_version(self) -> None:
        v1 = put(self.store, "b", "k", b"one")
        put(self.store, "b", "k", b"two")
        self.store.commit(
            lambda t: fo.copy_object(
                t,
                fo.CopySource("b", "k", v1.version_id),
                "b",
                "k2",
                None,
                fo.WriteConditions(),
                NOW,
            )
        )
        self.assertEqual(get(self.store, "b", "k2"), b"one")
        self.assertEqual(self.refs(b"one"), 2)


class NullVersionTests(StoreTestCase):
    """The ``null`` version across never-versioned, Enabled and Suspended states."""

    def test_unversioned_put_is_null(self) -> None:
        self.assertEqual(put(self.store, "b", "k", b"zero").version_id, NULL_VERSION)

    def test_null_version_survives_enabling(self) -> None:
        put(self.store, "b", "k", b"zero")
        set_versioning(self.store, "b", "Enabled")
        v1 = put(self.store, "b", "k", b"one")
        self.assertEqual(self.versions("k"), [(v1.version_id, False), (NULL_VERSION, False)])
        self.assertEqual(get(self.store, "b", "k", NULL_VERSION), b"zero")
        self.assertEqual(get(self.store, "b", "k"), b"one")

    def test_suspended_put_replaces_null(self) -> None:
        put(self.store, "b", "k", b"zero")
        set_versioning(self.store, "b", "Enabled")
        v1 = put(self.store, "b", "k", b"one")
        set_versioning(self.store, "b", "Suspended")
        v2 = put(self.store, "b", "k", b"two")
        self.assertEqual(v2.version_id, NULL_VERSION)
        # The old null version is gone (its chunk released); the Enabled-era one stays.
        self.assertEqual(self.versions("k"), [(NULL_VERSION, False), (v1.version_id, False)])
        self.assertIsNone(self.refs(b"zero"))
        self.assertEqual(get(self.store, "b", "k", NULL_VERSION), b"two")
        v3 = put(self.store, "b", "k", b"three")
        self.assertEqual(v3.version_id, NULL_VERSION)
        self.assertEqual(self.versions("k"), [(NULL_VERSION, False), (v1.version_id, False)])
        self.assertIsNone(self.refs(b"two"))
        self.assertEqual(get(self.store, "b", "k"), b"three")
        self.assertEqual(get(self.store, "b", "k", v1.version_id), b"one")

    def test_suspended_delete_makes_null_marker(self) -> None:
        set_versioning(self.store, "b", "Enabled")
        v1 = put(self.store, "b", "k", b"one")
        set_versioning(self.store, "b", "Suspended")
        put(self.store, "b", "k", b"null data")
        outcome = delete(self.store, "b", "k")
        self.assertEqual(outcome, fo.DeleteOutcome("k", NULL_VERSION, True))
        # The null version was replaced by a null delete marker.
        self.assertEqual(self.versions("k"), [(NULL_VERSION, True), (v1.version_id, False)])
        self.assertIsNone(self.refs(b"null data"))
        self.assertS3Error("NoSuchKey", get, self.store, "b", "k")
        self.assertEqual(get(self.store, "b", "k", v1.version_id), b"one")

    def test_suspended_put_after_enabled_versions(self) -> None:
        set_versioning(self.store, "b", "Enabled")
        v1 = put(self.store, "b", "k", b"one")
        set_versioning(self.store, "b", "Suspended")
        v2 = put(self.store, "b", "k", b"two")
        self.assertEqual(v2.version_id, NULL_VERSION)
        self.assertEqual(self.versions("k"), [(NULL_VERSION, False), (v1.version_id, False)])
