"""Renaming keys and prefixes at the store level.

Strategy: :func:`s4d.features.rename.rename` runs against a real store in a
temporary directory with the inline committer. The central test is a property:
random histories of puts, deletes, key renames and prefix renames (with and
without merge) over keys built from a few components, some of them long enough
to be split into continuation entries (400 bytes and more), are applied both to
the store and to a model (a dict of key -> content). After every step the
store's full listing, read page by page, equals the model's keys in byte order,
every failed rename left the store unchanged, and at the end fsck (which also
checks the directories' length bounds) finds nothing wrong. The unit tests pin
down versions and delete markers, conditions, merge conflicts, the key length
limit, idempotency tokens and uploads in progress.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import rename as fr
from s4d.store import fsck
from s4d.store.listing import list_objects
from s4d.store.schema import ENTRY_DIR
from s4d.store.store import Store, StoreConfig
from s4d.store.views.namespace import entry_bound
from tests.store.helpers import NOW, create_bucket, delete, get, open_store, put


def rename(
    store: Store,
    source: str,
    destination: str,
    bucket: str = "b",
    merge: bool = False,
    conditions: fr.RenameConditions | None = None,
    token: str | None = None,
    source_bucket: str | None = None,
    now: int = NOW,
) -> fr.RenameOutcome:
    """Rename inside ``bucket`` and wait for the commit."""
    request = fr.Rename(
        bucket=bucket,
        destination=destination,
        source_bucket=source_bucket or bucket,
        source=source,
        merge=merge,
        conditions=conditions or fr.RenameConditions(),
        client_token=token,
    )
    outcome: fr.RenameOutcome = store.commit(lambda t: fr.rename(t, request, now))
    return outcome


def all_keys(store: Store, bucket: str = "b", page: int = 1000, prefix: str = "") -> list[str]:
    """Every listed key, read page by page."""
    keys: list[str] = []
    after: bytes | None = None
    while True:
        with store.read() as t:
            result = list_objects(t, t.buckets.require(bucket), prefix.encode(), None, after, page)
        keys.extend(e.key for e in result.entries)
        if not result.is_truncated:
            return keys
        assert result.last is not None
        after = result.last.encode()


def versions_of(store: Store, key: str, bucket: str = "b") -> list[tuple[str, bool]]:
    """(version id, delete marker) of every version of ``key``, newest first."""
    with store.read() as t:
        object_id = t.ns.lookup(t.buckets.require(bucket), key.encode())
        if object_id is None:
            return []
        return [(v.version_id, v.delete_marker) for v in t.versions.all(object_id)]


class RenameCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = open_store(self)
        create_bucket(self.store, "b")

    def assert_clean(self) -> fsck.FsckReport:
        report = fsck.check_store(self.store)
        self.assertEqual(report.problems, [], report.render())
        return report

    def assert_error(self, code: str, f: Any, *args: Any, **kwargs: Any) -> S3Error:
        with self.assertRaises(S3Error) as caught:
            f(*args, **kwargs)
        self.assertEqual(caught.exception.code, code, caught.exception.message)
        return caught.exception


class KeyRenameTests(RenameCase):
    def test_moves_the_object(self) -> None:
        put(self.store, "b", "old/name", b"data")
        put(self.store, "b", "old/other", b"o")
        outcome = rename(self.store, "old/name", "new/deeper/name")
        self.assertEqual(outcome, fr.RenameOutcome(prefix=False))
        self.assertEqual(get(self.store, "b", "new/deeper/name"), b"data")
        self.assertEqual(all_keys(self.store), ["new/deeper/name", "old/other"])
        rename(self.store, "old/other", "x")
        self.assertEqual(all_keys(self.store), ["new/deeper/name", "x"])
        self.assert_clean()  # "old/" is gone, not left empty

    def test_missing_source_and_bad_names(self) -> None:
        put(self.store, "b", "k", b"1")
        self.assert_error("NoSuchKey", rename, self.store, "nope", "x")
        self.assert_error("NoSuchKey", rename, self.store, "k/", "x/")
        self.assert_error("InvalidArgument", rename, self.store, "", "x")
        self.assert_error("InvalidArgument", rename, self.store, "k", "")
        self.assert_error("KeyTooLongError", rename, self.store, "k", "x" * 1025)
        self.assert_error("KeyTooLongError", rename, self.store, "k" * 1025, "x")
        self.assert_error("InvalidRequest", rename, self.store, "k", "k")
        self.assert_error("NoSuchBucket", rename, self.store, "k", "x", bucket="nobucket")
        create_bucket(self.store, "other")
        error = self.assert_error(
            "InvalidRequest", rename, self.store, "k", "x", bucket="other", source_bucket="b"
        )
        self.assertIn("one bucket", error.message)
        rename(self.store, "k", "x" * 1024)
        self.assertEqual(all_keys(self.store), ["x" * 1024])

    def test_overwrite_in_unversioned_bucket_releases_the_old_bytes(self) -> None:
        put(self.store, "b", "a", b"new contents")
        put(self.store, "b", "b", b"old contents")
        rename(self.store, "a", "b")
        self.assertEqual(get(self.store, "b", "b"), b"new contents")
        self.assertEqual(all_keys(self.store), ["b"])
        self.assertEqual(versions_of(self.store, "b"), [("null", False)])
        self.assertEqual(self.assert_clean().stats.chunk_refs, 1)

    def test_versions_and_delete_markers_move_along(self) -> None:
        create_bucket(self.store, "v", versioning="Enabled")
        put(self.store, "v", "k", b"one")
        put(self.store, "v", "k", b"two")
        delete(self.store, "v", "k")
        put(self.store, "v", "k", b"three")
        before = versions_of(self.store, "k", "v")
        self.assertEqual([dm for _, dm in before], [False, True, False, False])
        rename(self.store, "k", "moved", bucket="v")
        self.assertEqual(versions_of(self.store, "moved", "v"), before)
        self.assertEqual(versions_of(self.store, "k", "v"), [])
        self.assertEqual(get(self.store, "v", "moved", before[-1][0]), b"one")
        self.assert_clean()

    def test_deleted_source_is_no_such_key(self) -> None:
        create_bucket(self.store, "v", versioning="Enabled")
        put(self.store, "v", "k", b"one")
        delete(self.store, "v", "k")
        self.assert_error("NoSuchKey", rename, self.store, "k", "x", bucket="v")

    def test_overwrite_in_versioned_bucket_keeps_the_history_below(self) -> None:
        create_bucket(self.store, "v", versioning="Enabled")
        put(self.store, "v", "dst", b"d1")
        delete(self.store, "v", "dst")
        put(self.store, "v", "src", b"s1")
        put(self.store, "v", "src", b"s2")
        src, dst = versions_of(self.store, "src", "v"), versions_of(self.store, "dst", "v")
        rename(self.store, "src", "dst", bucket="v")
        self.assertEqual(versions_of(self.store, "dst", "v"), src + dst)
        self.assertEqual(get(self.store, "v", "dst"), b"s2")
        self.assertEqual(all_keys(self.store, "v"), ["dst"])
        self.assert_clean()

    def test_destination_conditions(self) -> None:
        put(self.store, "b", "src", b"s")
        dst = put(self.store, "b", "dst", b"d")
        cond = fr.RenameConditions
        self.assert_error(
            "PreconditionFailed",
            rename,
            self.store,
            "src",
            "dst",
            conditions=cond(if_none_match="*"),
        )
        self.assert_error(
            "PreconditionFailed",
            rename,
            self.store,
            "src",
            "dst",
            conditions=cond(if_match='"nope"'),
        )
        self.assert_error(
            "PreconditionFailed", rename, self.store, "src", "none", conditions=cond(if_match="*")
        )
        seconds = NOW // 1_000_000_000
        self.assert_error(
            "PreconditionFailed",
            rename,
            self.store,
            "src",
            "dst",
            conditions=cond(if_modified_since=seconds),
        )
        self.assert_error(
            "PreconditionFailed",
            rename,
            self.store,
            "src",
            "dst",
            conditions=cond(if_unmodified_since=seconds - 1),
        )
        self.assert_error(
            "PreconditionFailed",
            rename,
            self.store,
            "src",
            "none",
            conditions=cond(if_modified_since=0),
        )
        rename(self.store, "src", "dst2", conditions=cond(if_none_match="*", if_unmodified_since=0))
        rename(
            self.store,
            "dst2",
            "dst",
            conditions=cond(if_match=f'"{dst.etag}"', if_modified_since=seconds - 1),
        )
        self.assertEqual(get(self.store, "b", "dst"), b"s")

    def test_source_conditions(self) -> None:
        src = put(self.store, "b", "src", b"s")
        cond = fr.RenameConditions
        seconds = NOW // 1_000_000_000
        for failing in (
            cond(source_if_match='"other"'),
            cond(source_if_none_match=f'"{src.etag}"'),
            cond(source_if_none_match="*"),
            cond(source_if_modified_since=seconds),
            cond(source_if_unmodified_since=seconds - 1),
        ):
            self.assert_error(
                "PreconditionFailed", rename, self.store, "src", "dst", conditions=failing
            )
        rename(
            self.store,
            "src",
            "dst",
            conditions=cond(
                source_if_match=src.etag,
                source_if_none_match='"other"',
                source_if_modified_since=seconds - 1,
                source_if_unmodified_since=seconds,
            ),
        )
        self.assertEqual(all_keys(self.store), ["dst"])


class PrefixRenameTests(RenameCase):
    def test_moves_everything_below(self) -> None:
        keys = ["p/", "p/a", "p/a/b", "p/z/y/x", "p-", "p0", "q"]
        for key in keys:
            put(self.store, "b", key, key.encode())
        outcome = rename(self.store, "p/", "new/place/")
        self.assertEqual(outcome, fr.RenameOutcome(prefix=True))
        moved = ["new/place/", "new/place/a", "new/place/a/b", "new/place/z/y/x"]
        self.assertEqual(all_keys(self.store), sorted(moved + ["p-", "p0", "q"]))
        self.assertEqual(get(self.store, "b", "new/place/z/y/x"), b"p/z/y/x")
        self.assertEqual(all_keys(self.store, prefix="new/place/a"), moved[1:3])
        self.assert_clean()

    def test_long_names_on_both_sides(self) -> None:
        long_dir = "d" * 450 + "/"
        exact = "e" * 399 + "/"  # a directory name of exactly 400 bytes stays whole
        keys = [long_dir + "x", long_dir + "y" * 420, long_dir + exact + "z"]
        for key in keys:
            put(self.store, "b", key, b"v")
        rename(self.store, long_dir, exact)
        expected = sorted(exact + k[len(long_dir) :] for k in keys)
        self.assertEqual(all_keys(self.store), expected)
        rename(self.store, exact, "a/" + "f" * 500 + "/")
        self.assertEqual(len(all_keys(self.store, prefix="a/" + "f" * 500 + "/")), 3)
        rename(self.store, "a/", "s/")
        self.assertEqual(
            all_keys(self.store), sorted("s/" + "f" * 500 + "/" + k[len(long_dir) :] for k in keys)
        )
        self.assert_clean()

    def test_all_versions_and_delete_markers_move(self) -> None:
        create_bucket(self.store, "v", versioning="Enabled")
        put(self.store, "v", "p/live", b"1")
        put(self.store, "v", "p/gone", b"2")
        delete(self.store, "v", "p/gone")
        gone, live = versions_of(self.store, "p/gone", "v"), versions_of(self.store, "p/live", "v")
        rename(self.store, "p/", "q/", bucket="v")
        self.assertEqual(all_keys(self.store, "v"), ["q/live"])
        self.assertEqual(versions_of(self.store, "q/gone", "v"), gone)
        self.assertEqual(versions_of(self.store, "q/live", "v"), live)
        self.assert_clean()

    def test_errors(self) -> None:
        put(self.store, "b", "p/a", b"1")
        put(self.store, "b", "p/b/c", b"1")
        self.assert_error("NoSuchKey", rename, self.store, "nothing/", "x/")
        self.assert_error("InvalidRequest", rename, self.store, "p/", "p/")
        self.assert_error("InvalidRequest", rename, self.store, "p/", "p/b/q/")
        self.assert_error("InvalidArgument", rename, self.store, "p/", "x")
        cond = fr.RenameConditions(source_if_match="*")
        self.assert_error("InvalidRequest", rename, self.store, "p/", "x/", conditions=cond)
        rename(self.store, "p/", "x/", conditions=fr.RenameConditions(if_none_match="*"))
        self.assertEqual(all_keys(self.store), ["x/a", "x/b/c"])

    def test_onto_an_ancestor(self) -> None:
        put(self.store, "b", "a/b/c", b"1")
        put(self.store, "b", "a/b/b/d", b"2")
        rename(self.store, "a/b/", "a/")  # "a/" holds nothing but the source
        self.assertEqual(all_keys(self.store), ["a/b/d", "a/c"])
        put(self.store, "b", "a/x", b"3")
        self.assert_error("DestinationAlreadyExists", rename, self.store, "a/b/", "a/")
        rename(self.store, "a/b/", "a/", merge=True)
        self.assertEqual(all_keys(self.store), ["a/c", "a/d", "a/x"])
        self.assert_clean()

    def test_existing_destination_needs_merge(self) -> None:
        for key in ("src/a", "src/d/x", "src/d/y", "src/e/1", "dst/b", "dst/d/z", "dst/f"):
            put(self.store, "b", key, key.encode())
        error = self.assert_error("DestinationAlreadyExists", rename, self.store, "src/", "dst/")
        self.assertEqual(error.extra["Key"], "dst/")
        rename(self.store, "src/", "dst/", merge=True)
        self.assertEqual(
            all_keys(self.store),
            ["dst/a", "dst/b", "dst/d/x", "dst/d/y", "dst/d/z", "dst/e/1", "dst/f"],
        )
        self.assertEqual(get(self.store, "b", "dst/d/x"), b"src/d/x")
        self.assert_clean()

    def test_merge_conflict_changes_nothing(self) -> None:
        for key in ("src/a", "src/d/x", "src/d/y", "dst/d/y", "dst/z"):
            put(self.store, "b", key, key.encode())
        before = all_keys(self.store)
        error = self.assert_error(
            "DestinationAlreadyExists", rename, self.store, "src/", "dst/", merge=True
        )
        self.assertEqual(error.extra["Key"], "dst/d/y")
        self.assertEqual(all_keys(self.store), before)
        self.assertEqual(get(self.store, "b", "dst/d/y"), b"dst/d/y")
        self.assert_clean()

    def test_merge_stacks_onto_deleted_keys(self) -> None:
        create_bucket(self.store, "v", versioning="Enabled")
        put(self.store, "v", "dst/k", b"old")
        delete(self.store, "v", "dst/k")
        put(self.store, "v", "src/k", b"new")
        old, new = versions_of(self.store, "dst/k", "v"), versions_of(self.store, "src/k", "v")
        rename(self.store, "src/", "dst/", bucket="v", merge=True)
        self.assertEqual(versions_of(self.store, "dst/k", "v"), new + old)
        self.assertEqual(get(self.store, "v", "dst/k"), b"new")
        self.assert_clean()

    def test_merge_of_many_entries_in_batches(self) -> None:
        self.patch(fr, "MERGE_BATCH", 7)
        for i in range(40):
            put(self.store, "b", f"src/{i:03d}", b"x")
            put(self.store, "b", f"dst/{i:03d}-kept", b"y")
        rename(self.store, "src/", "dst/", merge=True)
        self.assertEqual(len(all_keys(self.store, prefix="dst/")), 80)
        self.assert_clean()


class KeyLengthTests(RenameCase):
    def test_prefix_rename_keeps_keys_within_1024_bytes(self) -> None:
        put(self.store, "b", "p/" + "k" * 1000, b"1")
        put(self.store, "b", "p/short", b"2")
        error = self.assert_error("KeyTooLongError", rename, self.store, "p/", "p" * 30 + "/")
        self.assertIn("1031", error.message)
        rename(self.store, "p/", "q" * 20 + "/")  # 21 + 1000 bytes: fits
        self.assertEqual(len(all_keys(self.store)), 2)
        self.assert_clean()

    def test_bounds_follow_puts_and_moves(self) -> None:
        put(self.store, "b", "a/b/c", b"1")
        put(self.store, "b", "a/b/" + "x" * 30, b"2")
        rename(self.store, "a/", "z/y/")
        with self.store.read() as t:
            root = t.buckets.require("b").root_dir
            z = t.ns.entry_value(root, b"z/")
            assert z is not None
            self.assertEqual(entry_bound(z), len("y/b/" + "x" * 30))
        self.assert_clean()

    def test_entries_without_a_bound_are_measured(self) -> None:
        """Directories written before bounds existed (9-byte values) still rename safely."""
        put(self.store, "b", "old/" + "k" * 1018, b"1")

        def strip_bounds(t: Any) -> None:
            cursor = t.txn.cursor(db=t.dbs.ns)
            for k, v in list(cursor):
                if v[:1] == ENTRY_DIR:
                    t.txn.put(k, v[:9], db=t.dbs.ns)

        self.store.commit(strip_bounds)
        self.assert_clean()
        self.assert_error("KeyTooLongError", rename, self.store, "old/", "longer/")
        rename(self.store, "old/", "new/")
        with self.store.read() as t:
            value = t.ns.entry_value(t.buckets.require("b").root_dir, b"new/")
            assert value is not None
            self.assertEqual(entry_bound(value), 1018)
        self.assert_clean()

    def test_fsck_notices_a_bound_too_small(self) -> None:
        put(self.store, "b", "a/long-name", b"1")

        def shrink(t: Any) -> None:
            root = t.buckets.require("b").root_dir
            value = t.ns.entry_value(root, b"a/")
            t.ns.put_entry(root, b"a/", value[:9] + b"\x00\x01")

        self.store.commit(shrink)
        report = fsck.check_store(self.store)
        self.assertEqual([p.kind for p in report.problems], [fsck.BAD_BOUND])


class ClientTokenTests(RenameCase):
    def test_a_retry_renames_nothing(self) -> None:
        put(self.store, "b", "a", b"1")
        self.assertFalse(rename(self.store, "a", "b", token="tok-1").replayed)
        put(self.store, "b", "a", b"2")  # a new "a": a replay must not move it
        self.assertTrue(rename(self.store, "a", "b", token="tok-1").replayed)
        self.assertEqual(all_keys(self.store), ["a", "b"])
        self.assertEqual(get(self.store, "b", "b"), b"1")
        self.assert_error(
            "IdempotencyParameterMismatch", rename, self.store, "a", "c", token="tok-1"
        )
        self.assert_error("InvalidArgument", rename, self.store, "a", "c", token="bad token")
        self.assert_error("InvalidArgument", rename, self.store, "a", "c", token="t" * 65)

    def test_failed_renames_are_not_remembered(self) -> None:
        self.assert_error("NoSuchKey", rename, self.store, "a", "b", token="tok")
        put(self.store, "b", "a", b"1")
        self.assertFalse(rename(self.store, "a", "b", token="tok").replayed)

    def test_tokens_expire(self) -> None:
        put(self.store, "b", "a", b"1")
        rename(self.store, "a", "b", token="old")
        later = NOW + fr.TOKEN_TTL_NS + 1
        put(self.store, "b", "a", b"2")
        self.assertFalse(rename(self.store, "a", "c", token="old", now=later).replayed)
        for i in range(3):
            put(self.store, "b", f"k{i}", b"x")
            rename(self.store, f"k{i}", f"m{i}", token=f"t{i}", now=later + fr.TOKEN_TTL_NS + 1)
        with self.store.read() as t:
            self.assertIsNone(t.tokens.get(b"old"))
            self.assertIsNotNone(t.tokens.get(b"t0"))


class UploadInProgressTests(RenameCase):
    def test_uploads_complete_under_their_original_key(self) -> None:
        from tests.store.test_multipart import complete, start, upload_part

        put(self.store, "b", "dir/existing", b"e")
        upload = start(self.store, "dir/big")
        part = upload_part(self.store, upload, 1, b"part one")
        rename(self.store, "dir/", "moved/")
        complete(self.store, upload, [part])
        self.assertEqual(all_keys(self.store), ["dir/big", "moved/existing"])
        self.assertEqual(get(self.store, "b", "dir/big"), b"part one")
        self.assert_clean()


# -- the property ------------------------------------------------------------------------

LONG = "L" * 420
EXACT = "E" * 399
COMPONENTS = ["a", "b", "a-b", "a0", "", LONG, EXACT]
key_st = (
    st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda k: 0 < len(k) <= 1024)
)
prefix_st = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=2).map(
    lambda parts: "/".join(parts) + "/"
)


def model_prefix_rename(
    model: dict[str, bytes], src: str, dst: str, merge: bool
) -> tuple[str | None, dict[str, bytes]]:
    """The error code a prefix rename should raise, or None and the new model."""
    if dst.startswith(src):
        return "InvalidRequest", model
    moving = {k: v for k, v in model.items() if k.startswith(src)}
    if not moving:
        return "NoSuchKey", model
    staying = {k: v for k, v in model.items() if not k.startswith(src)}
    moved = {dst + k[len(src) :]: v for k, v in moving.items()}
    if any(len(k.encode()) > 1024 for k in moved):
        return "KeyTooLongError", model
    if any(k.startswith(dst) for k in staying):
        if not merge or set(moved) & set(staying):
            return "DestinationAlreadyExists", model
    return None, {**staying, **moved}


class RenameMachine(RuleBasedStateMachine):
    """Random puts, deletes and renames; the listing must always equal the model."""

    def __init__(self) -> None:
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="s4d-rename-")
        self.store = Store(
            StoreConfig(self.path, map_size=1 << 28, fsync=False), inline_commit=True
        )
        create_bucket(self.store, "b")
        self.model: dict[str, bytes] = {}
        self.counter = 0

    def teardown(self) -> None:
        try:
            report = fsck.check_store(self.store, quick=True)
            assert report.ok, report.render()
        finally:
            self.store.close()
            shutil.rmtree(self.path, ignore_errors=True)

    def existing(self, pick: int) -> str | None:
        keys = sorted(self.model)
        return keys[pick % len(keys)] if keys else None

    def existing_prefix(self, pick: int) -> str | None:
        prefixes = sorted({k[: i + 1] for k in self.model for i, c in enumerate(k) if c == "/"})
        return prefixes[pick % len(prefixes)] if prefixes else None

    @initialize(keys=st.lists(key_st, min_size=2, max_size=12))
    def fill(self, keys: list[str]) -> None:
        for key in keys:
            self.put(key)

    @rule(key=key_st)
    def put(self, key: str) -> None:
        self.counter += 1
        data = str(self.counter).encode()
        put(self.store, "b", key, data)
        self.model[key] = data

    @rule(pick=st.integers(0, 50))
    def delete(self, pick: int) -> None:
        key = self.existing(pick)
        if key is not None:
            delete(self.store, "b", key)
            del self.model[key]

    @rule(pick=st.integers(0, 50), dst=key_st, careful=st.booleans())
    def rename_key(self, pick: int, dst: str, careful: bool) -> None:
        src = self.existing(pick) or "a"
        if src.endswith("/"):
            return  # that is a prefix rename
        cond = fr.RenameConditions(if_none_match="*" if careful else None)
        expected: str | None = None
        if src == dst:
            expected = "InvalidRequest"
        elif src not in self.model:
            expected = "NoSuchKey"
        elif careful and dst in self.model:
            expected = "PreconditionFailed"
        if self.attempt(expected, lambda: rename(self.store, src, dst, conditions=cond)):
            self.model[dst] = self.model.pop(src)

    @rule(
        pick=st.integers(0, 50),
        other=st.integers(0, 50),
        dst=prefix_st,
        onto_existing=st.booleans(),
        merge=st.booleans(),
    )
    def rename_prefix(
        self, pick: int, other: int, dst: str, onto_existing: bool, merge: bool
    ) -> None:
        src = self.existing_prefix(pick) or "a/"
        if onto_existing:
            dst = self.existing_prefix(other) or dst
        expected, after = model_prefix_rename(self.model, src, dst, merge)
        if self.attempt(expected, lambda: rename(self.store, src, dst, merge=merge)):
            self.model = after

    def attempt(self, expected: str | None, f: Any) -> bool:
        """Run a rename; True if it happened (as the model expected), False if refused."""
        before = all_keys(self.store)
        try:
            f()
        except S3Error as e:
            if e.code == "KeyTooLongError" and expected in (None, "DestinationAlreadyExists"):
                # Length bounds are upper bounds: a refusal where the model sees
                # room must come from them (checked before the destination).
                assert "would make a key" in e.message, e.message
            else:
                assert e.code == expected, (e.code, expected, e.message)
            assert all_keys(self.store) == before, "a failed rename changed the store"
            return False
        assert expected is None, f"expected {expected}"
        return True

    @invariant()
    def listing_matches(self) -> None:
        expected = sorted(self.model, key=lambda k: k.encode())
        assert all_keys(self.store, page=5) == expected
        for key in expected[:3]:
            assert get(self.store, "b", key) == self.model[key]


RenameMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class RenamePropertyTests(RenameMachine.TestCase):  # type: ignore[name-defined,misc]
    """The state machine as a test case (trial collects ``test_*`` methods)."""

    def test_random_histories(self) -> None:
        self.runTest()
