"""Schema versions of the metadata environment: stamping, upgrading, refusing.

Strategy: build data directories the way older (or newer) code left them by
writing the LMDB environment directly with py-lmdb (the store's own code
would stamp the current version), then open them with :class:`Store` and
check with fsck. The previous format is the current layout without the
``schema`` key in ``config``; a too-new one carries a version above
:data:`~s4d.store.schema.SCHEMA_VERSION`.
"""

from __future__ import annotations

import io
import os

import lmdb
from twisted.trial.unittest import SynchronousTestCase

from s4d.store import codec, fsck, listing
from s4d.store.model import NULL_VERSION, Bucket, ObjectVersion
from s4d.store.schema import (
    DATABASES,
    ENTRY_OBJECT,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    U64,
    SchemaTooNew,
    entry_id,
    object_entry,
    u64,
    version_key,
)
from s4d.store.store import Store, StoreConfig
from tests.store.helpers import NOW, create_bucket, get, put


def write_environment(data_dir: str, schema: bytes | None) -> None:
    """A data directory holding bucket ``old`` with an empty object ``k`` (no segments).

    With ``schema`` None it is in the previous format: no schema version at all.
    """
    meta = os.path.join(data_dir, "meta")
    os.makedirs(meta)
    env = lmdb.open(meta, map_size=1 << 24, max_dbs=len(DATABASES) + 4, subdir=True)
    try:
        with env.begin(write=True) as txn:
            dbs = {name: env.open_db(name, txn=txn) for name in DATABASES}
            bucket = Bucket(name="old", bucket_id=1, root_dir=1, created_ns=NOW)
            txn.put(b"old", codec.encode(bucket.encode()), db=dbs[b"buckets"])
            txn.put(u64(1) + b"k", ENTRY_OBJECT + u64(1), db=dbs[b"ns"])
            version = ObjectVersion(
                version_id=NULL_VERSION,
                seq=1,
                size=0,
                etag='"d41d8cd98f00b204e9800998ecf8427e"',
                mtime_ns=NOW,
            )
            txn.put(version_key(1, 1), codec.encode(version.encode()), db=dbs[b"versions"])
            for counter in (b"bucket", b"dir", b"object", b"seq"):
                txn.put(counter, U64.pack(1), db=dbs[b"counters"])
            if schema is not None:
                txn.put(SCHEMA_KEY, schema, db=dbs[b"config"])
    finally:
        env.close()


def ns_values(data_dir: str) -> dict[bytes, bytes]:
    """Every ``ns`` entry: key (dir id + name) -> stored value."""
    env = lmdb.open(os.path.join(data_dir, "meta"), max_dbs=len(DATABASES) + 4, readonly=True)
    try:
        with env.begin() as txn:
            db = env.open_db(b"ns", txn=txn, create=False)
            return {bytes(k): bytes(v) for k, v in txn.cursor(db=db)}
    finally:
        env.close()


def stored_schema(data_dir: str) -> bytes | None:
    env = lmdb.open(os.path.join(data_dir, "meta"), max_dbs=len(DATABASES) + 4, readonly=True)
    try:
        with env.begin() as txn:
            raw = txn.get(SCHEMA_KEY, db=env.open_db(b"config", txn=txn, create=False))
            return bytes(raw) if raw is not None else None
    finally:
        env.close()


class SchemaTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())

    def open(self) -> Store:
        store = Store(StoreConfig(self.path, map_size=1 << 24, fsync=False), inline_commit=True)
        self.addCleanup(store.close)
        return store

    def test_new_directory_is_stamped(self) -> None:
        store = self.open()
        self.assertEqual(
            (store.dbs.upgraded_from, store.dbs.schema_version), (SCHEMA_VERSION, SCHEMA_VERSION)
        )
        with store.read() as t:
            self.assertEqual(t.config.schema_version(), SCHEMA_VERSION)
        create_bucket(store, "b")
        put(store, "b", "k", b"data")
        store.close()
        report = fsck.check(self.path)
        self.assertEqual(
            (report.schema_version, report.problems, report.warnings), (SCHEMA_VERSION, [], [])
        )

    def test_previous_format_is_upgraded(self) -> None:
        """A directory without a schema version is upgraded to version 1 on open."""
        write_environment(self.path, schema=None)
        before = fsck.check(self.path)
        self.assertEqual(before.schema_version, 0)
        self.assertEqual([w.kind for w in before.warnings], [fsck.SCHEMA_OLD])
        self.assertEqual(before.problems, [])
        store = self.open()
        self.assertEqual((store.dbs.upgraded_from, store.dbs.schema_version), (0, SCHEMA_VERSION))
        self.assertEqual(get(store, "old", "k"), b"")
        create_bucket(store, "new")
        put(store, "new", "k", b"more")
        store.close()
        self.assertEqual(stored_schema(self.path), str(SCHEMA_VERSION).encode())
        after = fsck.check(self.path)
        self.assertEqual(
            (after.schema_version, after.problems, after.warnings), (SCHEMA_VERSION, [], [])
        )
        # Opening it again finds nothing to upgrade.
        self.assertEqual(self.open().dbs.upgraded_from, SCHEMA_VERSION)

    def test_version_1_buckets_go_to_the_root_user(self) -> None:
        """Version 1 had no owners: the upgrade names a root id and gives it every bucket."""
        write_environment(self.path, schema=b"1")
        store = self.open()
        self.assertEqual((store.dbs.upgraded_from, store.dbs.schema_version), (1, SCHEMA_VERSION))
        with store.read() as t:
            root = t.iam.root_id()
            self.assertIsNotNone(root)
            self.assertEqual(t.buckets.require("old").owner, root)
            self.assertIsNone(t.iam.user(root or ""))  # the record comes from the configuration
        create_bucket(store, "new")
        with store.read() as t:
            self.assertEqual(t.buckets.require("new").owner, root)
        store.close()
        self.assertEqual(fsck.check(self.path).problems, [])
        again = self.open()
        with again.read() as t:
            self.assertEqual(t.iam.root_id(), root)  # assigned once

    def test_version_3_object_entries_still_read(self) -> None:
        """Version 3 wrote 8-byte object ids in ``ns``; version 4 writes short ones. An old
        entry reads, renames and lists as before and is not rewritten; new ones are short."""
        write_environment(self.path, schema=b"3")
        store = self.open()
        self.assertEqual((store.dbs.upgraded_from, store.dbs.schema_version), (3, SCHEMA_VERSION))
        self.assertEqual(get(store, "old", "k"), b"")
        put(store, "old", "k2", b"new")
        with store.read() as t:
            page = listing.list_objects(t, t.buckets.require("old"))
        self.assertEqual([e.key for e in page.entries], ["k", "k2"])
        self.assertEqual((get(store, "old", "k"), get(store, "old", "k2")), (b"", b"new"))
        store.close()
        values = ns_values(self.path)
        self.assertEqual(values[u64(1) + b"k"], ENTRY_OBJECT + u64(1))  # untouched: 9 bytes
        self.assertEqual(values[u64(1) + b"k2"], ENTRY_OBJECT + b"\x02")  # object id 2: 2 bytes
        report = fsck.check(self.path)
        self.assertEqual((report.problems, report.warnings), ([], []))

    def test_object_entries(self) -> None:
        """Short big-endian ids; an id that needs eight bytes is the pre-4 form itself."""
        for object_id, length in ((0, 2), (1, 2), (255, 2), (256, 3), (1 << 24, 5),
                                  ((1 << 64) - 1, 9)):  # fmt: skip
            value = object_entry(object_id)
            self.assertEqual((len(value), value[:1], entry_id(value)),
                             (length, ENTRY_OBJECT, object_id))  # fmt: skip
        self.assertEqual(object_entry((1 << 64) - 1), ENTRY_OBJECT + u64((1 << 64) - 1))
        self.assertEqual(entry_id(ENTRY_OBJECT + u64(1234567)), 1234567)  # the old form
        # a directory entry: its 8-byte id, then maybe a length bound that is not part of it
        self.assertEqual(entry_id(b"D" + u64(77) + b"\x01\x00"), 77)

    def test_newer_version_is_refused(self) -> None:
        """A directory from a newer s4d is refused with a clear error and left untouched."""
        write_environment(self.path, schema=str(SCHEMA_VERSION + 1).encode())
        error = self.assertRaises(SchemaTooNew, self.open)
        self.assertEqual(error.found, SCHEMA_VERSION + 1)
        self.assertIn(f"schema version {SCHEMA_VERSION + 1}", str(error))
        self.assertIn("newer s4d", str(error))
        self.assertEqual(stored_schema(self.path), str(SCHEMA_VERSION + 1).encode())
        report = fsck.check(self.path)
        self.assertEqual(report.schema_version, SCHEMA_VERSION + 1)
        self.assertEqual(report.kinds(), {fsck.SCHEMA_TOO_NEW})

    def test_fsck_command_reports_the_version(self) -> None:
        self.open().close()
        out = io.StringIO()
        self.assertEqual(fsck.main([self.path], out), 0)
        self.assertIn(f"schema          {SCHEMA_VERSION}\n", out.getvalue())
