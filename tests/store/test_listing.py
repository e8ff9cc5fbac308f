"""Property tests: ``list_objects`` against a model of S3 ListObjects.

Strategy: hypothesis draws a set of keys over a small alphabet chosen to hit the
namespace tree's edge cases (``/`` splits directories; ``-``, ``.``, ``%`` and
space sort below ``/``; ``0`` sorts just above it; a multi-byte ``é``; keys with
``//``, a leading ``/`` and a trailing ``/``). They are put into a fresh bucket
of one store per test (``fsync=False``, inline commits, for speed). Then random
queries (prefix, delimiter ``None``/``/``/``-``/``ab``, start-after marker,
``max_keys``) are compared with :func:`model`, computed on the sorted list of
keys as UTF-8 bytes: first one page, then a full pagination that follows
``last`` as the next marker, which must concatenate to the unpaginated result
with no duplicates. A second property deletes a random subset and checks that
listing still matches and that no empty directory entry is left in ``ns``. A
third deletes a random subset in a versioned bucket, where the keys stay under
delete markers: the listing must match the model of the keys left, common
prefixes included.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.store import fsck, listing
from s4d.store.schema import ENTRY_CONT, ENTRY_DIR, U64
from s4d.store.store import Store
from s4d.store.views import namespace
from tests.store.helpers import create_bucket, delete, open_store, put, rolled_up

ALPHABET = ["a", "b", "/", "-", "0", ".", "%", " ", "é"]
DELIMITERS = [None, b"/", b"-", b"ab"]

Item = tuple[str, bytes]  # ("key" | "prefix", value)

text = st.text(alphabet=ALPHABET, min_size=1, max_size=10)
special = st.sampled_from(
    ["a//b", "/a", "a/", "//", "/", "a/b/", "a//", "é/é", "a-b/c", "a/-", "aaa", "aa/", "aaaa/b"]
)
keys_strategy = st.sets(st.one_of(text, special), max_size=30)


def model(
    keys: list[bytes], prefix: bytes, delimiter: bytes | None, after: bytes | None
) -> list[Item]:
    """Every key and common prefix a listing yields after ``after``, in order.

    Keys starting with ``prefix`` whose remainder contains the delimiter roll up
    into ``prefix + remainder[: first delimiter + len(delimiter)]``. A common
    prefix is listed if it sorts after the marker; a marker at or inside a
    common prefix therefore skips the whole prefix (the store's continuation
    rule). Keys are listed if they sort after the marker.
    """
    items: list[Item] = []
    for key in sorted(keys):
        if not key.startswith(prefix):
            continue
        common = rolled_up(key, prefix, delimiter)
        if common is not None:
            if (after is None or common > after) and items[-1:] != [("prefix", common)]:
                items.append(("prefix", common))
            continue
        if after is None or key > after:
            items.append(("key", key))
    return items


def page_items(result: Any) -> list[Item]:
    """The keys and common prefixes of a page, merged in byte order."""
    items = [("key", e.key.encode()) for e in result.entries]
    items += [("prefix", p.encode()) for p in result.common_prefixes]
    return sorted(items, key=lambda item: item[1])


query_strategy = st.tuples(
    st.one_of(st.just(""), st.text(alphabet=ALPHABET, max_size=4)),  # prefix
    st.sampled_from(DELIMITERS),
    st.one_of(st.none(), st.text(alphabet=ALPHABET, max_size=6)),  # start-after
    st.one_of(st.integers(1, 5), st.just(1000)),  # max_keys
)


class ListingChecks(SynchronousTestCase):
    """Helpers of the property tests; :func:`with_properties` adds the tests themselves."""

    #: split entry names into pieces of this size (None: the real size)
    piece: int | None = None

    def setUp(self) -> None:
        if self.piece is not None:
            self.patch(namespace, "NAME_PIECE", self.piece)
            self.patch(fsck, "NAME_PIECE", self.piece)
        self.store: Store = open_store(self)
        self.counter = itertools.count()

    def fresh_bucket(self, keys: set[str], versioning: str | None = None) -> str:
        name = f"b{next(self.counter)}"
        create_bucket(self.store, name, versioning)
        for key in sorted(keys):
            put(self.store, name, key, key.encode())
        return name

    def list_page(
        self,
        bucket: str,
        prefix: bytes,
        delimiter: bytes | None,
        after: bytes | None,
        max_keys: int,
    ) -> Any:
        with self.store.read() as t:
            found = listing.list_objects(
                t,
                t.buckets.require(bucket),
                prefix=prefix,
                delimiter=delimiter,
                after=after,
                max_keys=max_keys,
            )
            bucket_record = t.buckets.require(bucket)
            rows = listing.list_keys(t, bucket_record, prefix, delimiter, after, max_keys)
        # the rows S3's ListObjects renders are the same page, field for field
        self.assertEqual(
            rows.rows,
            [
                (
                    e.key,
                    e.version.etag,
                    e.version.size,
                    e.version.mtime_ns,
                    e.version.storage_class,
                    next(iter(e.version.checksums), ""),
                )
                for e in found.entries
            ],
        )
        self.assertEqual(
            (rows.common_prefixes, rows.is_truncated, rows.last),
            (found.common_prefixes, found.is_truncated, found.last),
        )
        return found

    def check_query(
        self,
        bucket: str,
        keys: list[bytes],
        prefix: bytes,
        delimiter: bytes | None,
        after: bytes | None,
        max_keys: int,
    ) -> None:
        where = f"prefix={prefix!r} delimiter={delimiter!r} after={after!r} max_keys={max_keys}"
        expected = model(keys, prefix, delimiter, after)
        # One page.
        page = self.list_page(bucket, prefix, delimiter, after, max_keys)
        self.assertEqual(page_items(page), expected[:max_keys], where)
        self.assertEqual(page.is_truncated, len(expected) > max_keys, where)
        if expected[:max_keys]:
            self.assertEqual(page.last.encode(), expected[:max_keys][-1][1], where)
        # Every page, following ``last``.
        collected: list[Item] = []
        marker = after
        for _ in range(len(expected) + 2):
            page = self.list_page(bucket, prefix, delimiter, marker, max_keys)
            items = page_items(page)
            self.assertLessEqual(len(items), max_keys, where)
            self.assertEqual(items, model(keys, prefix, delimiter, marker)[:max_keys], where)
            collected += items
            if not page.is_truncated:
                break
            self.assertTrue(items, where)
            marker = page.last.encode()
        else:
            self.fail(f"pagination did not end: {where}")
        self.assertEqual(collected, expected, where)
        self.assertEqual(len(set(collected)), len(collected), where)

    def check_all(self, bucket: str, keys: set[str], queries: list[Any]) -> None:
        raw = [k.encode() for k in keys]
        for prefix, delimiter, after, max_keys in queries:
            self.check_query(
                bucket,
                raw,
                prefix.encode(),
                delimiter,
                None if after is None else after.encode(),
                max_keys,
            )
        # Queries built from the keys themselves hit exact boundaries.
        for key in sorted(raw)[:6]:
            for delimiter in DELIMITERS:
                self.check_query(bucket, raw, b"", delimiter, key, 2)
                self.check_query(bucket, raw, key[:2], delimiter, key, 1)
                self.check_query(bucket, raw, key, delimiter, None, 1000)

    def assertNoEmptyDirectories(self) -> None:
        with self.store.read() as t:
            parents: set[int] = set()
            dirs: list[tuple[bytes, int]] = []
            for k, v in t.txn.cursor(db=t.dbs.ns):
                parents.add(U64.unpack_from(k, 0)[0])
                if v[:1] in (ENTRY_DIR, ENTRY_CONT):
                    dirs.append((bytes(k), U64.unpack_from(v, 1)[0]))
            for k, dir_id in dirs:
                self.assertIn(dir_id, parents, f"empty directory {k[8:]!r}")
                self.assertFalse(t.ns.dir_is_empty(dir_id))


def with_properties(cls: type[ListingChecks]) -> type[ListingChecks]:
    """Add the property tests to ``cls``.

    Each class gets its own test functions: hypothesis refuses to run one
    function from several test classes.
    """

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(keys=keys_strategy, queries=st.lists(query_strategy, min_size=1, max_size=6))
    def test_matches_model(self: ListingChecks, keys: set[str], queries: list[Any]) -> None:
        bucket = self.fresh_bucket(keys)
        self.check_all(bucket, keys, queries)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        keys=keys_strategy,
        data=st.data(),
        queries=st.lists(query_strategy, min_size=1, max_size=4),
    )
    def test_matches_model_after_deletes(
        self: ListingChecks, keys: set[str], data: st.DataObject, queries: list[Any]
    ) -> None:
        bucket = self.fresh_bucket(keys)
        doomed = data.draw(st.sets(st.sampled_from(sorted(keys))) if keys else st.just(set()))
        # Deleting a key that does not exist is a no-op.
        doomed |= data.draw(st.sets(text, max_size=2))
        for key in sorted(doomed):
            delete(self.store, bucket, key)
        left = keys - doomed
        self.check_all(bucket, left, queries)
        self.assertNoEmptyDirectories()
        report = fsck.check_store(self.store, quick=True)
        self.assertEqual(report.problems, [], report.render())
        if not left:
            with self.store.read() as t:
                self.assertTrue(t.ns.bucket_is_empty(t.buckets.require(bucket)))

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        keys=keys_strategy,
        data=st.data(),
        queries=st.lists(query_strategy, min_size=1, max_size=4),
    )
    def test_delete_markers_hide_keys_and_prefixes(
        self: ListingChecks, keys: set[str], data: st.DataObject, queries: list[Any]
    ) -> None:
        # In a versioned bucket a delete leaves the key (under a delete marker)
        # in the namespace: the listing must still match the model of the live
        # keys, common prefixes included.
        bucket = self.fresh_bucket(keys, "Enabled")
        doomed = data.draw(st.sets(st.sampled_from(sorted(keys))) if keys else st.just(set()))
        for key in sorted(doomed):
            delete(self.store, bucket, key)
        self.check_all(bucket, keys - doomed, queries)

    cls.test_matches_model = test_matches_model  # type: ignore[attr-defined]
    cls.test_delete_markers_hide_keys_and_prefixes = (  # type: ignore[attr-defined]
        test_delete_markers_hide_keys_and_prefixes
    )
    cls.test_matches_model_after_deletes = test_matches_model_after_deletes  # type: ignore[attr-defined]
    return cls


@with_properties
class ListingModelTests(ListingChecks):
    """``list_objects`` agrees with :func:`model` for every query."""


@with_properties
class ShortNameListingModelTests(ListingChecks):
    """The same properties with names split into continuation entries every 3 bytes.

    Real keys only need continuations past 400 bytes per component; shrinking the
    piece size lets the small alphabet above hit every split case (a leaf of
    exactly the piece size, a directory name of exactly that size ending in
    ``/``, pieces that cut a multi-byte character, bounds inside a piece).
    """

    piece = 3


class ListingExamples(SynchronousTestCase):
    """Hand-written cases that document the expected order and roll-ups."""

    def setUp(self) -> None:
        self.store = open_store(self)
        create_bucket(self.store, "b")
        self.keys = ["a", "a-b", "a/", "a/b", "a//c", "a0", "/x", "b/c/d", "é"]
        for key in self.keys:
            put(self.store, "b", key, b"x")

    def names(self, **kw: Any) -> tuple[list[str], list[str]]:
        with self.store.read() as t:
            r = listing.list_objects(t, t.buckets.require("b"), **kw)
        return [e.key for e in r.entries], r.common_prefixes

    def test_order(self) -> None:
        keys, prefixes = self.names()
        self.assertEqual(keys, sorted(self.keys, key=lambda k: k.encode()))
        self.assertEqual(prefixes, [])
        self.assertEqual(keys[:5], ["/x", "a", "a-b", "a/", "a//c"])

    def test_slash(self) -> None:
        self.assertEqual(self.names(delimiter=b"/"), (["a", "a-b", "a0", "é"], ["/", "a/", "b/"]))
        self.assertEqual(self.names(prefix=b"a/", delimiter=b"/"), (["a/", "a/b"], ["a//"]))

    def test_marker_inside_common_prefix_skips_it(self) -> None:
        self.assertEqual(self.names(delimiter=b"/", after=b"a/b"), (["a0", "é"], ["b/"]))

    def test_dash(self) -> None:
        self.assertEqual(
            self.names(delimiter=b"-"),
            (["/x", "a", "a/", "a//c", "a/b", "a0", "b/c/d", "é"], ["a-"]),
        )

    def test_zero_max_keys(self) -> None:
        with self.store.read() as t:
            r = listing.list_objects(t, t.buckets.require("b"), max_keys=0)
        self.assertEqual((r.entries, r.common_prefixes, r.is_truncated), ([], [], False))
