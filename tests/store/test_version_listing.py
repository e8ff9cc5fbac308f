"""Property tests: ``list_versions`` against a model of S3 ListObjectVersions.

Strategy: hypothesis draws a history of operations on a small set of keys (the
key alphabet of :mod:`tests.store.test_listing`, which hits the namespace
tree's edge cases): PUTs, DELETEs (delete markers once versioning is on, the
``null`` version's replacement while it is suspended, removal while the bucket
was never versioned), deletes of one version, and switches of the versioning
state. The test keeps its own model of every key's versions, newest first, as
S3 defines them, and applies the same history to a fresh bucket of one store
(``fsync=False``, inline commits). Then:

- a listing with random prefix, delimiter and markers equals the model's;
- paging with a small ``max_keys``, following the page's next markers, yields
  the full listing exactly once, in order;
- resuming at *every* position of the full listing (its key and version id as
  the markers, as a client resumes from a truncated page) yields exactly the
  rest of it.

A second class repeats the properties with names split into continuation
entries every 3 bytes, as :mod:`tests.store.test_listing` does.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.features import rename as fr
from s4d.store import fsck, version_listing
from s4d.store.model import NULL_VERSION, VersionsPage
from s4d.store.store import Store
from s4d.store.views import namespace
from tests.store.helpers import (
    NOW,
    create_bucket,
    delete,
    open_store,
    put,
    rolled_up,
    set_versioning,
)
from tests.store.test_listing import ALPHABET, DELIMITERS, special, text

#: ("version", key, version id, delete marker, latest) or ("prefix", common prefix)
Item = tuple[Any, ...]


@st.composite
def history_strategy(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Operations on a few keys, so that keys gather several versions each."""
    keys = draw(st.lists(st.one_of(text, special), min_size=1, max_size=8, unique=True))
    key = st.sampled_from(keys)
    operation = st.one_of(
        st.tuples(st.just("put"), key),
        st.tuples(st.just("put"), key),
        st.tuples(st.just("delete"), key),
        st.tuples(st.just("delete-version"), st.integers(0, 50)),
        st.tuples(st.just("versioning"), st.sampled_from(["Enabled", "Suspended"])),
    )
    return draw(st.lists(operation, min_size=8, max_size=40))


query_strategy = st.tuples(
    st.one_of(st.just(""), st.text(alphabet=ALPHABET, max_size=3)),  # prefix
    st.sampled_from(DELIMITERS),
    st.one_of(st.none(), st.text(alphabet=ALPHABET, max_size=5)),  # key marker
    st.integers(0, 3),  # which version of the key marker, if it has that many
    st.one_of(st.integers(1, 4), st.just(1000)),  # max_keys
)


class VersionsModel:
    """Every key's versions as S3 keeps them: ``{key: [(version id, delete marker)]}``."""

    def __init__(self) -> None:
        self.versioning: str | None = None
        self.keys: dict[bytes, list[tuple[str, bool]]] = {}

    def add(self, key: bytes, version_id: str, marker: bool) -> None:
        versions = self.keys.setdefault(key, [])
        if version_id == NULL_VERSION:
            versions[:] = [v for v in versions if v[0] != NULL_VERSION]
        versions.insert(0, (version_id, marker))

    def delete_version(self, key: bytes, version_id: str) -> None:
        versions = [v for v in self.keys[key] if v[0] != version_id]
        if versions:
            self.keys[key] = versions
        else:
            del self.keys[key]

    def listing(
        self,
        prefix: bytes,
        delimiter: bytes | None,
        key_marker: bytes | None,
        version_id_marker: str | None,
    ) -> list[Item]:
        """Every entry after the markers; a marker at or inside a common prefix skips it."""
        items: list[Item] = []
        for key in sorted(self.keys):
            if not key.startswith(prefix):
                continue
            common = rolled_up(key, prefix, delimiter)
            if common is not None:
                if (key_marker is None or common > key_marker) and items[-1:] != [
                    ("prefix", common)
                ]:
                    items.append(("prefix", common))
                continue
            versions = self.keys[key]
            listed = [("version", key, vid, dm, i == 0) for i, (vid, dm) in enumerate(versions)]
            if key_marker is not None and key < key_marker:
                continue
            if key_marker is not None and key == key_marker:
                ids = [vid for vid, _ in versions]
                if version_id_marker is None or version_id_marker not in ids:
                    continue
                listed = listed[ids.index(version_id_marker) + 1 :]
            items += listed
        return items


def page_items(page: VersionsPage) -> list[Item]:
    """The entries and common prefixes of a page, merged in listing order."""
    entries: list[tuple[bytes, int, Item]] = [
        (
            e.key.encode(),
            i,
            ("version", e.key.encode(), e.version.version_id, e.version.delete_marker, e.is_latest),
        )
        for i, e in enumerate(page.entries)
    ]
    entries += [(p.encode(), -1, ("prefix", p.encode())) for p in page.common_prefixes]
    return [item for _, _, item in sorted(entries, key=lambda e: (e[0], e[1]))]


def markers_of(item: Item) -> tuple[bytes, str | None]:
    """The key and version id markers that resume after ``item``."""
    if item[0] == "prefix":
        return item[1], None
    return item[1], item[2]


class VersionListingChecks(SynchronousTestCase):
    """Helpers of the property tests; :func:`with_properties` adds the tests themselves."""

    piece: int | None = None

    def setUp(self) -> None:
        if self.piece is not None:
            self.patch(namespace, "NAME_PIECE", self.piece)
            self.patch(fsck, "NAME_PIECE", self.piece)
        self.store: Store = open_store(self)
        self.counter = itertools.count()

    def replay(self, history: list[tuple[str, Any]]) -> tuple[str, VersionsModel]:
        """A fresh bucket with ``history`` applied, and the model of it."""
        name = f"b{next(self.counter)}"
        create_bucket(self.store, name)
        model = VersionsModel()
        for op, arg in history:
            if op == "put":
                version = put(self.store, name, arg, arg.encode())
                model.add(arg.encode(), version.version_id, False)
            elif op == "delete":
                outcome = delete(self.store, name, arg)
                if model.versioning is None:
                    model.keys.pop(arg.encode(), None)
                else:
                    assert outcome.version_id is not None
                    model.add(arg.encode(), outcome.version_id, True)
            elif op == "delete-version":
                every = [(k, vid) for k, vs in sorted(model.keys.items()) for vid, _ in vs]
                if every:
                    key, vid = every[arg % len(every)]
                    delete(self.store, name, key.decode(), vid)
                    model.delete_version(key, vid)
            else:
                set_versioning(self.store, name, arg)
                model.versioning = arg
        return name, model

    def list_page(self, bucket: str, *args: Any) -> VersionsPage:
        with self.store.read() as t:
            return version_listing.list_versions(t, t.buckets.require(bucket), *args)

    def check_query(
        self,
        bucket: str,
        model: VersionsModel,
        prefix: bytes,
        delimiter: bytes | None,
        key_marker: bytes | None,
        version_id_marker: str | None,
        max_keys: int,
    ) -> None:
        where = (
            f"prefix={prefix!r} delimiter={delimiter!r} key_marker={key_marker!r} "
            f"version_id_marker={version_id_marker!r} max_keys={max_keys}"
        )
        expected = model.listing(prefix, delimiter, key_marker, version_id_marker)
        page = self.list_page(bucket, prefix, delimiter, key_marker, version_id_marker, max_keys)
        self.assertEqual(page_items(page), expected[:max_keys], where)
        self.assertEqual(page.is_truncated, len(expected) > max_keys, where)
        if expected[:max_keys]:
            last = markers_of(expected[:max_keys][-1])
            self.assertEqual(
                (page.next_key_marker.encode(), page.next_version_id_marker),  # type: ignore[union-attr]
                last,
                where,
            )
        # Every page, following the next markers.
        collected: list[Item] = []
        markers = (key_marker, version_id_marker)
        for _ in range(len(expected) + 2):
            page = self.list_page(bucket, prefix, delimiter, *markers, max_keys)
            items = page_items(page)
            self.assertLessEqual(len(items), max_keys, where)
            collected += items
            if not page.is_truncated:
                break
            self.assertTrue(items, where)
            assert page.next_key_marker is not None
            markers = (page.next_key_marker.encode(), page.next_version_id_marker)
        else:
            self.fail(f"pagination did not end: {where}")
        self.assertEqual(collected, expected, where)

    def check_every_split(
        self, bucket: str, model: VersionsModel, prefix: bytes, delimiter: bytes | None
    ) -> None:
        """Resuming after each entry of the full listing lists exactly the rest."""
        full = model.listing(prefix, delimiter, None, None)
        self.assertEqual(page_items(self.list_page(bucket, prefix, delimiter)), full)
        for i, item in enumerate(full):
            key_marker, vid_marker = markers_of(item)
            page = self.list_page(bucket, prefix, delimiter, key_marker, vid_marker, 2)
            where = f"prefix={prefix!r} delimiter={delimiter!r} after {item!r}"
            self.assertEqual(page_items(page), full[i + 1 : i + 3], where)
            self.assertEqual(page.is_truncated, len(full) > i + 3, where)


def with_properties(cls: type[VersionListingChecks]) -> type[VersionListingChecks]:
    """Add the property tests to ``cls`` (hypothesis wants one function per class)."""

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=history_strategy(), queries=st.lists(query_strategy, min_size=1, max_size=5))
    def test_matches_model(
        self: VersionListingChecks, history: list[tuple[str, Any]], queries: list[Any]
    ) -> None:
        bucket, model = self.replay(history)
        for prefix, delimiter, key_marker, which, max_keys in queries:
            raw_marker = None if key_marker is None else key_marker.encode()
            vid_marker = None
            if raw_marker is not None and which and raw_marker in model.keys:
                versions = model.keys[raw_marker]
                vid_marker = versions[(which - 1) % len(versions)][0]
            self.check_query(
                bucket, model, prefix.encode(), delimiter, raw_marker, vid_marker, max_keys
            )
        # Markers taken from the keys themselves hit exact boundaries.
        for key in sorted(model.keys)[:4]:
            for vid, _ in model.keys[key][:2]:
                self.check_query(bucket, model, b"", None, key, vid, 1)
                self.check_query(bucket, model, b"", b"/", key, vid, 2)
            self.check_query(bucket, model, key[:1], b"-", key, None, 1)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=history_strategy(), prefix=st.sampled_from(["", "a", "a/"]))
    def test_every_split(
        self: VersionListingChecks, history: list[tuple[str, Any]], prefix: str
    ) -> None:
        bucket, model = self.replay(history)
        for delimiter in DELIMITERS:
            self.check_every_split(bucket, model, prefix.encode(), delimiter)

    cls.test_matches_model = test_matches_model  # type: ignore[attr-defined]
    cls.test_every_split = test_every_split  # type: ignore[attr-defined]
    return cls


@with_properties
class VersionListingModelTests(VersionListingChecks):
    """``list_versions`` agrees with :class:`VersionsModel` for every query."""


@with_properties
class ShortNameVersionListingModelTests(VersionListingChecks):
    """The same properties with names split into continuation entries every 3 bytes."""

    piece = 3


class VersionListingExamples(SynchronousTestCase):
    """Hand-written cases that document the order, the flags and the markers."""

    def setUp(self) -> None:
        self.store = open_store(self)
        create_bucket(self.store, "b")
        self.v0 = put(self.store, "b", "a", b"unversioned").version_id  # the null version
        set_versioning(self.store, "b", "Enabled")
        self.v1 = put(self.store, "b", "a", b"one").version_id
        self.v2 = put(self.store, "b", "a", b"two").version_id
        self.marker = delete(self.store, "b", "a").version_id
        self.d1 = put(self.store, "b", "d/x", b"x").version_id
        self.c1 = put(self.store, "b", "c", b"c").version_id

    def listed(self, **kw: Any) -> list[tuple[str, str, bool, bool]]:
        with self.store.read() as t:
            page = version_listing.list_versions(t, t.buckets.require("b"), **kw)
        return [
            (e.key, e.version.version_id, e.version.delete_marker, e.is_latest)
            for e in page.entries
        ]

    def test_key_order_then_newest_first(self) -> None:
        self.assertEqual(
            self.listed(),
            [
                ("a", self.marker, True, True),
                ("a", self.v2, False, False),
                ("a", self.v1, False, False),
                ("a", NULL_VERSION, False, False),
                ("c", self.c1, False, True),
                ("d/x", self.d1, False, True),
            ],
        )
        self.assertEqual(self.v0, NULL_VERSION)

    def test_version_id_marker_continues_inside_a_key(self) -> None:
        self.assertEqual(
            [vid for _, vid, _, _ in self.listed(key_marker=b"a", version_id_marker=self.v2)],
            [self.v1, NULL_VERSION, self.c1, self.d1],
        )
        after_null = self.listed(key_marker=b"a", version_id_marker=NULL_VERSION)
        self.assertEqual([vid for _, vid, _, _ in after_null], [self.c1, self.d1])

    def test_key_marker_alone_skips_the_key(self) -> None:
        self.assertEqual([k for k, _, _, _ in self.listed(key_marker=b"a")], ["c", "d/x"])

    def test_unknown_version_id_marker_goes_on_with_the_next_key(self) -> None:
        self.assertEqual(
            [k for k, _, _, _ in self.listed(key_marker=b"a", version_id_marker="nope")],
            ["c", "d/x"],
        )

    def test_delimiter_and_truncation(self) -> None:
        with self.store.read() as t:
            page = version_listing.list_versions(
                t, t.buckets.require("b"), delimiter=b"/", max_keys=5
            )
        self.assertEqual(len(page.entries), 5)
        self.assertEqual(page.common_prefixes, [])
        self.assertTrue(page.is_truncated)
        self.assertEqual((page.next_key_marker, page.next_version_id_marker), ("c", self.c1))
        with self.store.read() as t:
            page = version_listing.list_versions(
                t, t.buckets.require("b"), delimiter=b"/", key_marker=b"c", max_keys=5
            )
        self.assertEqual((page.entries, page.common_prefixes), ([], ["d/"]))
        self.assertEqual((page.is_truncated, page.next_key_marker), (False, "d/"))
        self.assertIsNone(page.next_version_id_marker)

    def test_unversioned_bucket_lists_null_versions(self) -> None:
        create_bucket(self.store, "plain")
        put(self.store, "plain", "k", b"1")
        put(self.store, "plain", "k", b"2")
        with self.store.read() as t:
            page = version_listing.list_versions(t, t.buckets.require("plain"))
        self.assertEqual(
            [(e.key, e.version.version_id, e.is_latest, e.version.size) for e in page.entries],
            [("k", NULL_VERSION, True, 1)],
        )

    def test_zero_max_keys(self) -> None:
        with self.store.read() as t:
            page = version_listing.list_versions(t, t.buckets.require("b"), max_keys=0)
        self.assertEqual((page.entries, page.is_truncated), ([], False))

    def test_markers_of_renamed_versions(self) -> None:
        """A rename re-files versions under new sequence numbers; their ids still resume."""
        set_versioning(self.store, "b", "Enabled")
        moved = [put(self.store, "b", "src", data).version_id for data in (b"1", b"2", b"3")]
        kept = put(self.store, "b", "dst", b"d").version_id
        request = fr.Rename(bucket="b", destination="dst", source_bucket="b", source="src")
        self.store.commit(lambda t: fr.rename(t, request, NOW))
        full = [vid for key, vid, _, _ in self.listed(prefix=b"dst")]
        self.assertEqual(full, [*reversed(moved), kept])
        for i, vid in enumerate(full):
            after = self.listed(prefix=b"dst", key_marker=b"dst", version_id_marker=vid)
            self.assertEqual([v for _, v, _, _ in after], full[i + 1 :], vid)
