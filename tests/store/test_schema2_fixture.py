"""A data directory written by the s4d of schema version 2 still works.

Strategy: ``fixtures/schema2.tar.gz`` was written by the s4d of commit 61a1f09
(see ``fixtures/make_schema2.py``): every version record is codec JSON and every
object, however small, is a chunk in a segment. The tests unpack it, serve it
with today's code through :class:`~tests.s3.memory.MemoryS3` (real handlers,
engine and store), and check that the upgrade stamps the current schema without rewriting
a record, that fsck finds nothing wrong, that every object reads back with its
bytes, ETag, metadata, tags, checksum and versions, and that new writes (inline
records, deduplication against old chunks, copies of old objects) mix with the
old records, across a reopen.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile

import lmdb
from twisted.trial.unittest import SynchronousTestCase

from s4d.store import fsck
from s4d.store.chunks import digest_of
from s4d.store.schema import ENTRY_OBJECT, SCHEMA_VERSION
from s4d.store.version_record import FORMAT_BINARY
from tests.s3.memory import MemoryS3
from tests.store.fixtures.make_schema2 import OBJECTS, body

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "schema2.tar.gz")


def record_formats(store_env: lmdb.Environment) -> list[int]:
    """The tag byte of every version record."""
    with store_env.begin() as txn:
        db = store_env.open_db(b"versions", txn=txn, create=False)
        return [bytes(v[:1])[0] for _k, v in txn.cursor(db=db)]


class Schema2FixtureTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()
        os.makedirs(self.path)
        with tarfile.open(FIXTURE) as tar:
            tar.extractall(self.path, filter="data")
        self.s3 = self.open()

    def open(self) -> MemoryS3:
        s3 = MemoryS3(data_dir=self.path)
        self.addCleanup(s3.close)
        return s3

    def reopen(self) -> None:
        self.s3.store.close()
        self.s3.store = type("Closed", (), {"close": lambda _self: None})()  # type: ignore[assignment]
        self.s3 = self.open()

    def assert_clean(self) -> None:
        report = fsck.check_store(self.s3.store)
        self.assertEqual((report.problems, report.warnings), ([], []))

    def assert_objects(self, skip: frozenset[str] = frozenset()) -> None:
        for bucket, key, size, headers in OBJECTS:
            if key in skip:
                continue
            data = body("dup" if key.startswith("dup") else key, size)
            got = self.s3.request(
                "GET", f"/{bucket}/{key}", headers={"x-amz-checksum-mode": "ENABLED"}
            )
            self.assertEqual((got.status, got.body), (200, data), key)
            self.assertEqual(got.header("ETag"), f'"{hashlib.md5(data).hexdigest()}"')
            if "Content-Type" in headers:
                self.assertEqual(got.header("Content-Type"), headers["Content-Type"])
            if "x-amz-meta-colour" in headers:
                self.assertEqual(got.header("x-amz-meta-colour"), "blue")
            if "x-amz-checksum-crc32" in headers:
                self.assertIsNotNone(got.header("x-amz-checksum-crc32"))

    def test_upgrade_stamps_without_rewriting(self) -> None:
        self.assertEqual(
            (self.s3.store.dbs.upgraded_from, self.s3.store.dbs.schema_version),
            (2, SCHEMA_VERSION),
        )
        self.assertEqual(set(record_formats(self.s3.store.env)), {0x01})
        self.assert_clean()

    def test_old_objects_read_back(self) -> None:
        self.assert_objects()
        tags = self.s3.request("GET", "/old/tagged?tagging")
        self.assertEqual(re.findall(rb"<Key>(\w)</Key>", tags.body), [b"a", b"b"])
        ranged = self.s3.request("GET", "/old/mid", headers={"Range": "bytes=10-19"})
        self.assertEqual((ranged.status, ranged.body), (206, body("mid", 3000)[10:20]))
        listing = self.s3.request("GET", "/old?list-type=2")
        self.assertEqual(len(re.findall(rb"<Key>", listing.body)), len(OBJECTS))

    def test_old_versions(self) -> None:
        listing = self.s3.request("GET", "/ver?versions")
        self.assertEqual(listing.status, 200)
        self.assertEqual(len(re.findall(rb"<Version>", listing.body)), 2)
        self.assertEqual(len(re.findall(rb"<DeleteMarker>", listing.body)), 1)
        ids = re.findall(rb"<Version>.*?<VersionId>(\w+)</VersionId>", listing.body)
        got = self.s3.request("GET", f"/ver/k?versionId={ids[-1].decode()}")
        self.assertEqual((got.status, got.body), (200, body("k1", 50)))
        self.assertEqual(self.s3.request("GET", "/ver/k").status, 404)

    def refs(self, name: str, size: int) -> int | None:
        """The reference count of the chunk holding ``body(name, size)`` (None: not indexed)."""
        with self.s3.store.read() as t:
            found = t.chunks.get(digest_of(body(name, size)))
        return None if found is None else found[1]

    def test_new_writes_mix_with_old_records(self) -> None:
        self.assertEqual(
            (self.refs("small/a", 100), self.refs("dup", 2048), self.refs("small/b", 1000)),
            (1, 2, 1),
        )
        # an inline overwrite releases the old small chunk
        fresh = b"x" * 100
        self.assertEqual(self.s3.request("PUT", "/old/small/a", fresh).status, 200)
        # a larger object deduplicates against the old chunk of dup1/dup2
        dup = body("dup", 2048)
        self.assertEqual(self.s3.request("PUT", "/old/dup3", dup).status, 200)
        # copies of an old (chunked) small object and of the new inline one
        for source, target in (("small/b", "copy-b"), ("small/a", "copy-a")):
            got = self.s3.request(
                "PUT", f"/old/{target}", headers={"x-amz-copy-source": f"/old/{source}"}
            )
            self.assertEqual(got.status, 200, got.body)
        self.assertEqual(sorted(set(record_formats(self.s3.store.env))), [0x01, FORMAT_BINARY])
        # object entries: the old ones keep their 8-byte ids, the new keys' are short
        with self.s3.store.read() as t:
            lengths = {len(v) for _k, v in t.ns.cursor() if bytes(v[:1]) == ENTRY_OBJECT}
        self.assertIn(9, lengths)
        self.assertTrue(any(n < 9 for n in lengths), lengths)
        self.assertEqual(
            (self.refs("small/a", 100), self.refs("dup", 2048), self.refs("small/b", 1000)),
            (0, 3, 2),
        )
        self.assert_clean()
        self.reopen()
        self.assert_clean()
        self.assert_objects(skip=frozenset({"small/a"}))
        for key, data in (("small/a", fresh), ("copy-a", fresh), ("dup3", dup)):
            got = self.s3.request("GET", f"/old/{key}")
            self.assertEqual((got.status, got.body), (200, data), key)
        got = self.s3.request("GET", "/old/copy-b")
        self.assertEqual(got.body, body("small/b", 1000))
