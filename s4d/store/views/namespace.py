"""The ``ns`` sub-database: each bucket's key tree, and how keys map onto it.

See :mod:`s4d.store.schema` for the layout of entries, continuations and
length bounds.
"""

from __future__ import annotations

from collections.abc import Iterator

import lmdb

from s4d.store.model import Bucket
from s4d.store.schema import (
    ENTRY_CONT,
    ENTRY_DIR,
    ENTRY_OBJECT,
    NAME_PIECE,
    U16,
    entry_id,
    object_entry,
    u64,
)
from s4d.store.views.base import View
from s4d.store.views.counters import CountersView


def split_name(name: bytes) -> list[bytes]:
    """Split one key component into entry names of at most :data:`NAME_PIECE` bytes.

    Every piece but the last is a continuation (exactly ``NAME_PIECE`` bytes, no
    trailing ``/``); a component that is a directory name of exactly
    ``NAME_PIECE`` bytes (ending in ``/``) stays whole. A leaf of exactly
    ``NAME_PIECE`` bytes becomes a continuation and an empty leaf.
    """
    pieces = []
    while len(name) >= NAME_PIECE and name[NAME_PIECE - 1 : NAME_PIECE] != b"/":
        pieces.append(name[:NAME_PIECE])
        name = name[NAME_PIECE:]
    pieces.append(name)
    return pieces


def split_key(key: bytes) -> tuple[list[bytes], bytes]:
    """Split a key into the names of the entries on its path and its leaf name.

    Path names are directories (ending in ``/``) and continuations (see
    :mod:`s4d.store.schema`); the leaf is the object entry's name. The key is
    their concatenation.
    """
    parts = key.split(b"/")
    path: list[bytes] = []
    for part in parts[:-1]:
        path.extend(split_name(part + b"/"))
    *continued, leaf = split_name(parts[-1])
    path.extend(continued)
    return path, leaf


def path_kind(name: bytes) -> bytes:
    """The entry kind of a path name: a directory if it ends in ``/``, else a continuation."""
    return ENTRY_DIR if name.endswith(b"/") else ENTRY_CONT


def entry_bound(raw: bytes) -> int | None:
    """A directory entry's length bound (see :mod:`s4d.store.schema`), or None if it has none."""
    return int(U16.unpack_from(raw, 9)[0]) if len(raw) >= 11 else None


def dir_entry(kind: bytes, dir_id: int, bound: int | None) -> bytes:
    """The stored value of a directory or continuation entry."""
    value = kind + u64(dir_id)
    return value if bound is None else value + U16.pack(bound)


class NamespaceView(View):
    """Directory entries: ``(dir id, name) -> kind + id [+ bound]``.

    :param counters: allocates the ids of new directories.
    """

    def __init__(
        self, txn: lmdb.Transaction[bytes], db: lmdb._Database, counters: CountersView
    ) -> None:
        super().__init__(txn, db)
        self.counters = counters

    def entry(self, dir_id: int, name: bytes) -> tuple[bytes, int] | None:
        """The entry ``name`` in directory ``dir_id`` as (kind, id), or None."""
        raw = self.txn.get(u64(dir_id) + name, db=self.db)
        if raw is None:
            return None
        return raw[:1], entry_id(raw)

    def resolve_dirs(self, root: int, dirs: list[bytes]) -> list[int] | None:
        """Ids of the directory chain ``root/dirs...``; None if any is missing.

        ``dirs`` are path names from :func:`split_key` (directories and continuations).
        """
        chain = [root]
        for name in dirs:
            found = self.entry(chain[-1], name)
            if found is None or found[0] != path_kind(name):
                return None
            chain.append(found[1])
        return chain

    def lookup(self, bucket: Bucket, key: bytes) -> int | None:
        """The object id stored under ``key``, or None."""
        dirs, leaf = split_key(key)
        chain = self.resolve_dirs(bucket.root_dir, dirs)
        if chain is None:
            return None
        found = self.entry(chain[-1], leaf)
        if found is None or found[0] != ENTRY_OBJECT:
            return None
        return found[1]

    def link(self, bucket: Bucket, key: bytes, object_id: int) -> None:
        """Point ``key`` at ``object_id``, creating directories as needed."""
        dirs, leaf = split_key(key)
        dir_id = self.make_dirs(bucket.root_dir, dirs, len(key))
        self.txn.put(u64(dir_id) + leaf, object_entry(object_id), db=self.db)

    def make_dirs(self, root: int, dirs: list[bytes], length: int) -> int:
        """The id of directory ``root/dirs...``, creating what is missing.

        ``length`` is the length of the longest key about to be placed below
        it: every length bound on the way is raised to cover it, and new
        entries get exact ones.
        """
        dir_id = root
        rest = length
        for name in dirs:
            rest -= len(name)
            k = u64(dir_id) + name
            raw = self.txn.get(k, db=self.db)
            if raw is None:
                new_id = self.counters.next_id(b"dir")
                self.txn.put(k, dir_entry(path_kind(name), new_id, rest), db=self.db)
                dir_id = new_id
                continue
            dir_id = entry_id(raw)
            bound = entry_bound(raw)
            if bound is not None and bound < rest:
                self.txn.put(k, raw[:9] + U16.pack(rest), db=self.db)
        return dir_id

    def unlink(self, bucket: Bucket, key: bytes) -> None:
        """Remove ``key``'s entry and every directory it leaves empty."""
        dirs, leaf = split_key(key)
        chain = self.resolve_dirs(bucket.root_dir, dirs)
        if chain is None:
            return
        self.txn.delete(u64(chain[-1]) + leaf, db=self.db)
        for depth in range(len(dirs), 0, -1):
            if not self.dir_is_empty(chain[depth]):
                break
            self.txn.delete(u64(chain[depth - 1]) + dirs[depth - 1], db=self.db)

    def dir_is_empty(self, dir_id: int) -> bool:
        """True when directory ``dir_id`` has no entries."""
        prefix = u64(dir_id)
        cursor = self.cursor()
        return not (cursor.set_range(prefix) and cursor.key().startswith(prefix))

    def bucket_is_empty(self, bucket: Bucket) -> bool:
        """True when the bucket holds no key (not even a delete marker)."""
        return self.dir_is_empty(bucket.root_dir)

    # -- moving entries (renames) ----------------------------------------------------

    def entry_value(self, dir_id: int, name: bytes) -> bytes | None:
        """The raw stored value of entry ``name`` in directory ``dir_id``."""
        raw = self.txn.get(u64(dir_id) + name, db=self.db)
        return bytes(raw) if raw is not None else None

    def put_entry(self, dir_id: int, name: bytes, value: bytes) -> None:
        """Store entry ``name`` in directory ``dir_id`` with a raw value."""
        self.txn.put(u64(dir_id) + name, value, db=self.db)

    def remove_entry(self, dir_id: int, name: bytes) -> None:
        """Delete entry ``name`` of directory ``dir_id`` (nothing else)."""
        self.txn.delete(u64(dir_id) + name, db=self.db)

    def entries(self, dir_id: int, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` of a directory's first entries as (name, raw value)."""
        prefix = u64(dir_id)
        cursor = self.cursor()
        found: list[tuple[bytes, bytes]] = []
        if not cursor.set_range(prefix):
            return found
        for k, v in cursor:
            if not k.startswith(prefix) or len(found) >= limit:
                break
            found.append((bytes(k[8:]), bytes(v)))
        return found

    def detach(self, root: int, path: list[bytes]) -> bytes | None:
        """Remove the entry at the end of ``path`` (entry names from :func:`split_key`).

        Directories left empty on the way are removed, as :meth:`unlink` does.
        Returns the removed entry's raw value (its subtree stays intact, reachable
        through nothing until :meth:`attach` puts it somewhere), or None if the
        path does not exist.
        """
        chain = self.resolve_dirs(root, path[:-1])
        if chain is None:
            return None
        value = self.entry_value(chain[-1], path[-1])
        if value is None or value[:1] != path_kind(path[-1]):
            return None
        self.remove_entry(chain[-1], path[-1])
        dirs = path[:-1]
        for depth in range(len(dirs), 0, -1):
            if not self.dir_is_empty(chain[depth]):
                break
            self.remove_entry(chain[depth - 1], dirs[depth - 1])
        return value

    def attach(self, root: int, path: list[bytes], value: bytes, length: int) -> None:
        """Insert an entry (a raw value from :meth:`detach`) at the end of ``path``.

        ``length`` is the longest key the entry brings, measured from ``root``;
        directories on the way are created and their length bounds raised.
        """
        parent = self.make_dirs(root, path[:-1], length)
        self.put_entry(parent, path[-1], value)

    def objects_below(self, dir_id: int) -> Iterator[int]:
        """The object id of every key below ``dir_id`` (the whole subtree, in no set order)."""
        stack = [dir_id]
        while stack:
            prefix = u64(stack.pop())
            cursor = self.cursor()
            if not cursor.set_range(prefix):
                continue
            for k, v in cursor:
                if not k.startswith(prefix):
                    break
                if v[:1] == ENTRY_OBJECT:
                    yield entry_id(v)
                else:
                    stack.append(entry_id(v))

    def longest_below(self, dir_id: int) -> int:
        """The length of the longest key below ``dir_id``, relative to it (0 if none).

        Visits every entry of the subtree (names only, no version record): for
        entries that have no length bound yet.
        """
        longest = 0
        stack = [(dir_id, 0)]
        while stack:
            current, base = stack.pop()
            prefix = u64(current)
            cursor = self.cursor()
            if not cursor.set_range(prefix):
                continue
            for k, v in cursor:
                if not k.startswith(prefix):
                    break
                length = base + len(k) - 8
                if v[:1] == ENTRY_OBJECT:
                    longest = max(longest, length)
                else:
                    stack.append((entry_id(v), length))
        return longest
