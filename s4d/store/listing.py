"""Listing keys in S3 order by walking the namespace tree.

Sibling entries sit in LMDB in byte order of their names and a directory's name
ends in ``/``, so a depth-first walk yields keys in exactly the byte order S3
lists them in. A prefix selects one directory and a name prefix inside it; a
start-after bound seeks straight to its position at each level; with the ``/``
delimiter a directory *is* a common prefix and is never entered. Other
delimiters walk keys and roll them up as they pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from s4d.store.model import Bucket, KeysPage, ListEntry, ListResult, ObjectVersion
from s4d.store.schema import ENTRY_DIR, ENTRY_OBJECT, entry_id, u64
from s4d.store.txn import MetaTxn
from s4d.store.views.namespace import split_key, split_name

#: a key, yielded with its object id
KEY = 0
#: a common prefix
PREFIX = 1
_DESCEND = 2

Event = tuple[int, bytes, int, bytes | None]

#: Whether an object id's current version is a live object (not a delete marker).
Live = Callable[[int], bool]

#: what a page reads of each key's current version
_Row = TypeVar("_Row")


def walk(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes,
    after: bytes | None,
    rollup_dirs: bool,
    live: Live | None = None,
) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(kind, key_or_prefix, object_id)`` for keys > ``after`` under ``prefix``.

    With ``rollup_dirs`` every directory just below the prefix is yielded once as
    a common prefix (kind 1) instead of being entered; with ``live`` only a
    directory holding at least one live key (at any depth) is. Continuation
    entries (the pieces of over-long names) are always entered: they are part
    of one name.
    """
    dirs, name_prefix = split_key(prefix)
    chain = t.ns.resolve_dirs(bucket.root_dir, dirs)
    if chain is None:
        return
    base = b"".join(dirs)
    bound: bytes | None = None
    if after is not None and after >= prefix:
        if not after.startswith(prefix):
            return
        bound = after[len(base) :]
    stack = [_frame(t, chain[-1], base, bound, name_prefix, rollup_dirs)]
    while stack:
        # one for loop per frame (not next() per entry): a page's keys cost one resume each
        for kind, name, ident, sub_bound in stack[-1]:
            if kind == _DESCEND:
                # In roll-up mode only continuations are entered, and they roll up too.
                stack.append(_frame(t, ident, name, sub_bound, b"", rollup_dirs))
                break
            if kind == PREFIX and live is not None and not _holds_live(t, ident, live):
                continue
            yield kind, name, ident
        else:
            stack.pop()


def _holds_live(t: MetaTxn, dir_id: int, live: Live) -> bool:
    """True if some key at any depth under directory ``dir_id`` is live."""
    stack = [_frame(t, dir_id, b"", None, b"", False)]
    while stack:
        try:
            kind, _, ident, _ = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if kind == _DESCEND:
            stack.append(_frame(t, ident, b"", None, b"", False))
        elif live(ident):
            return True
    return False


def _first_name(path: bytes) -> bytes:
    """The name of the first entry on the way to ``path`` (a key relative to a directory)."""
    slash = path.find(b"/")
    return split_name(path[: slash + 1] if slash >= 0 else path)[0]


def _frame(
    t: MetaTxn,
    dir_id: int,
    path: bytes,
    bound: bytes | None,
    name_prefix: bytes,
    rollup: bool,
) -> Iterator[Event]:
    pfx = u64(dir_id)
    comp = _first_name(bound) if bound is not None else None
    seek = comp if comp is not None else name_prefix
    cursor = t.ns.cursor()
    if not cursor.set_range(pfx + seek):
        return
    for k, v in cursor:
        if not k.startswith(pfx):
            return
        name = k[8:]
        if name_prefix and not name.startswith(name_prefix):
            return
        ident = entry_id(v)
        kind = v[:1]
        if kind == ENTRY_OBJECT:
            if bound is None or name != bound:
                yield KEY, path + name, ident, None
        elif comp is not None and name == comp:
            # The bound lies at or inside this directory or continuation.
            if not (rollup and kind == ENTRY_DIR):
                assert bound is not None
                yield _DESCEND, path + name, ident, bound[len(comp) :]
        elif rollup and kind == ENTRY_DIR:
            yield PREFIX, path + name, ident, None
        else:
            yield _DESCEND, path + name, ident, None


def keys_and_prefixes(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes,
    delimiter: bytes | None,
    after: bytes | None,
    live: Live | None = None,
) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(kind, key_or_prefix, object_id)`` after ``after``, rolled up at ``delimiter``.

    Kind :data:`KEY` is a key with its object id, kind :data:`PREFIX` a common
    prefix (its id means nothing), each once. A marker that falls at or
    inside a common prefix skips that whole prefix. With ``live``, a common
    prefix is yielded only if it holds a live key (keys themselves are yielded
    either way; the caller decides about them).
    """
    delimiter = delimiter or None
    slash = delimiter == b"/"
    if not delimiter or slash:
        yield from walk(t, bucket, prefix, after, rollup_dirs=slash, live=live)
        return
    skip_prefix: bytes | None = None
    if after is not None and after.startswith(prefix):
        cut = after.find(delimiter, len(prefix))
        if cut >= 0:
            skip_prefix = after[: cut + len(delimiter)]
    last: bytes | None = None
    for kind, item, ident in walk(t, bucket, prefix, after, rollup_dirs=False):
        cut = item.find(delimiter, len(prefix))
        if cut >= 0:
            common = item[: cut + len(delimiter)]
            if common == skip_prefix or common == last:
                continue
            if live is not None and not live(ident):
                continue
            last = common
            yield PREFIX, common, 0
        else:
            yield kind, item, ident


def list_objects(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes = b"",
    delimiter: bytes | None = None,
    after: bytes | None = None,
    max_keys: int = 1000,
) -> ListResult:
    """One page of ListObjects: keys and common prefixes after ``after``.

    Delete markers are skipped, and so is a common prefix whose keys are all
    deleted (their current versions delete markers). A marker that falls at or
    inside a common prefix skips that whole prefix, which is how pagination
    continues after a page that ended on a common prefix.
    """
    versions = t.versions.cursor()

    def current(object_id: int) -> ObjectVersion | None:
        version = t.versions.current(object_id, cursor=versions, chunks=False)
        return None if version is None or version.delete_marker else version

    found, prefixes, truncated, last = _page(t, bucket, prefix, delimiter, after, max_keys, current)
    entries = []
    for text, version in found:
        version.key = text
        entries.append(ListEntry(text, version))
    return ListResult(entries, prefixes, truncated, last)


def list_keys(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes = b"",
    delimiter: bytes | None = None,
    after: bytes | None = None,
    max_keys: int = 1000,
) -> KeysPage:
    """The page :func:`list_objects` finds, as the rows S3's ListObjects renders.

    One cursor pass over the namespace and one over the versions; per key only
    its text and a tuple of what the XML shows (no version objects).
    """
    versions = t.versions.cursor()
    listed = t.versions.current_listed
    found, prefixes, truncated, last = _page(
        t, bucket, prefix, delimiter, after, max_keys, lambda ident: listed(ident, versions)
    )
    return KeysPage([(text, *row) for text, row in found], prefixes, truncated, last)


def _page(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes,
    delimiter: bytes | None,
    after: bytes | None,
    max_keys: int,
    current: Callable[[int], _Row | None],
) -> tuple[list[tuple[str, _Row]], list[str], bool, str | None]:
    """Up to ``max_keys`` keys (each with what ``current`` reads of it) and common prefixes.

    ``current`` gives None for a key to leave out (its current version is a
    delete marker). Returns the keys, the prefixes, whether more follow, and
    the last key or prefix.
    """
    found: list[tuple[str, _Row]] = []
    prefixes: list[str] = []
    if max_keys <= 0:
        return found, prefixes, False, None
    last: bytes | None = None
    truncated = False
    live: Live | None = None
    if bucket.versioning is not None:
        # Delete markers exist only in a bucket that has had versioning on.
        probe = t.versions.cursor()

        def live(object_id: int) -> bool:
            version = t.versions.current(object_id, cursor=probe, chunks=False)
            return version is not None and not version.delete_marker

    count = 0
    for kind, item, ident in keys_and_prefixes(t, bucket, prefix, delimiter, after, live):
        if kind == KEY:
            row = current(ident)
            if row is None:
                continue
            if count >= max_keys:
                truncated = True
                break
            found.append((item.decode("utf-8"), row))
        else:
            if count >= max_keys:
                truncated = True
                break
            prefixes.append(item.decode("utf-8"))
        count += 1
        last = item
    return found, prefixes, truncated, last.decode("utf-8") if last else None
