"""Whole-bucket work for operators: counting a bucket's contents and emptying it.

The rules (:mod:`s4d.features.bucket_contents`) run on a real store in a
temporary directory with the inline committer; pages are made small so that
a few keys exercise the page boundaries. The engine facade
(:class:`s4d.engine.AdminFacade`) runs them with an inline runner.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from s4d.engine import Engine
from s4d.errors import S3Error
from s4d.features import bucket_contents as bc
from s4d.util.threads import InlineRunner
from tests.store.helpers import NOW, create_bucket, delete, open_store, put


class UsageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = open_store(self)
        create_bucket(self.store, "plain")
        create_bucket(self.store, "versioned", "Enabled")
        self.engine = Engine(self.store, InlineRunner(), lambda f, *a: f(*a))

    def usage_in_pages(self, name: str, limit: int) -> tuple[bc.BucketUsage, int]:
        total, after, pages = bc.BucketUsage(), None, 0
        while True:
            with self.store.read() as t:
                page, after = bc.usage_page(t, name, after, limit)
            total.add(page)
            pages += 1
            if after is None:
                return total, pages

    def test_keys_versions_markers_and_bytes(self) -> None:
        for i in range(7):
            put(self.store, "plain", f"d{i % 3}/k{i}", b"x" * (i + 1))
        put(self.store, "versioned", "a", b"1" * 10)
        put(self.store, "versioned", "a", b"2" * 20)
        put(self.store, "versioned", "b", b"3" * 30)
        delete(self.store, "versioned", "b")  # b's current version is a delete marker
        for limit in (1, 2, 3, 100):
            usage, pages = self.usage_in_pages("plain", limit)
            self.assertEqual(usage, bc.BucketUsage(7, 7, 0, 28), limit)
            self.assertEqual(pages, -(-7 // limit), limit)  # a page looks one key ahead
            usage, _ = self.usage_in_pages("versioned", limit)
            self.assertEqual(usage, bc.BucketUsage(1, 3, 1, 60), limit)

    def test_facade(self) -> None:
        put(self.store, "plain", "k", b"abc")
        usage = self.successResultOf(self.engine.admin.bucket_usage("plain"))
        self.assertEqual(usage, bc.BucketUsage(1, 1, 0, 3))
        every = self.successResultOf(self.engine.admin.all_usage())
        self.assertEqual([(b.name, u.bytes) for b, u in every], [("plain", 3), ("versioned", 0)])
        failure = self.failureResultOf(self.engine.admin.bucket_usage("nobucket"), S3Error)
        self.assertEqual(failure.value.code, "NoSuchBucket")

    def test_overview_counts_without_scanning(self) -> None:
        put(self.store, "plain", "k", b"abc")
        overview = self.successResultOf(self.engine.admin.overview())
        self.assertEqual((overview.buckets, overview.damaged_chunks), (2, 0))
        self.assertEqual((overview.stats.objects, overview.stats.logical_bytes), (1, 3))


class PurgeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = open_store(self)
        create_bucket(self.store, "versioned", "Enabled")
        self.engine = Engine(self.store, InlineRunner(), lambda f, *a: f(*a))

    def test_pages_until_empty(self) -> None:
        for i in range(5):
            put(self.store, "versioned", f"p/k{i}", b"v1")
            put(self.store, "versioned", f"p/k{i}", b"v2")
        delete(self.store, "versioned", "p/k0")
        removed = []
        while True:
            n = self.store.commit(lambda t: bc.purge_page(t, "versioned", NOW, limit=2))
            removed.append(n)
            if not n:
                break
        self.assertEqual(removed, [2, 2, 1, 0])
        with self.store.read() as t:
            self.assertTrue(t.ns.bucket_is_empty(t.buckets.require("versioned")))
        stats = self.successResultOf(self.engine.maintenance.storage_stats())
        self.assertEqual((stats.objects, stats.delete_markers, stats.refs), (0, 0, 0))

    def test_empty_and_delete(self) -> None:
        for i in range(3):
            put(self.store, "versioned", f"k{i}", b"data")
        removed = self.successResultOf(self.engine.admin.empty_and_delete("versioned"))
        self.assertEqual(removed, 3)
        with self.store.read() as t:
            self.assertIsNone(t.buckets.get("versioned"))
        failure = self.failureResultOf(self.engine.admin.empty_and_delete("versioned"), S3Error)
        self.assertEqual(failure.value.code, "NoSuchBucket")
