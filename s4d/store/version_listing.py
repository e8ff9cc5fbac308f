"""Listing object versions (ListObjectVersions) by walking the namespace tree.

Keys come from :func:`s4d.store.listing.keys_and_prefixes` (the same walk,
prefix, delimiter roll-up and marker rules as ListObjects); for each key one
cursor over the ``versions`` sub-database yields its version records, which are
stored newest first. A page reads at most ``max_keys + 1`` records, however
many versions the bucket holds, plus, when it resumes inside a key whose
versions were re-filed by a rename, the versions of that key before the marker.

The markers are positions, as in S3: ``key_marker`` alone starts after every
version of that key; with ``version_id_marker`` it starts after that version
of that key (``null`` names the null version). A version id marker the key no
longer has (it was deleted since) continues with the next key. A key marker at
or inside a common prefix skips that prefix.
"""

from __future__ import annotations

from collections.abc import Iterator

import lmdb

from s4d.store.listing import KEY, keys_and_prefixes
from s4d.store.model import Bucket, ObjectVersion, VersionEntry, VersionsPage
from s4d.store.schema import u64, version_key
from s4d.store.txn import MetaTxn
from s4d.store.version_record import decode_version


def _versions_of(cursor: lmdb.Cursor[bytes], object_id: int, key: str) -> Iterator[ObjectVersion]:
    """Each version record of ``object_id``, newest first, read lazily (no chunk lists)."""
    pfx = u64(object_id)
    if not cursor.set_range(pfx):
        return
    for k, v in cursor:
        if not k.startswith(pfx):
            return
        yield decode_version(v, key, chunks=False)


def _embedded_seq(version_id: str) -> int | None:
    """The sequence number a version id was made with (see ``new_version_id``), if any."""
    if len(version_id) != 32:
        return None
    try:
        return int(version_id[:12], 16)
    except ValueError:
        return None


def _versions_after(
    cursor: lmdb.Cursor[bytes], object_id: int, key: str, version_id: str
) -> Iterator[ObjectVersion]:
    """The versions of ``object_id`` older than ``version_id`` (none if it has no such version).

    A version id holds the sequence number it was made with, which is where its
    record sits unless a rename re-filed it: the cursor seeks there first and
    only scans the key's versions from the newest when the record found there
    is another one.
    """
    pfx = u64(object_id)
    seq = _embedded_seq(version_id)
    if seq is not None and cursor.set_key(version_key(object_id, seq)):
        if decode_version(cursor.value(), chunks=False).version_id == version_id:
            while cursor.next() and cursor.key().startswith(pfx):
                yield decode_version(cursor.value(), key, chunks=False)
            return
    found = False
    for version in _versions_of(cursor, object_id, key):
        if found:
            yield version
        elif version.version_id == version_id:
            found = True


def _rolled_up(key: bytes, prefix: bytes, delimiter: bytes | None) -> bool:
    """True if ``key`` lists inside a common prefix."""
    return delimiter is not None and key.find(delimiter, len(prefix)) >= 0


def _items(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes,
    delimiter: bytes | None,
    key_marker: bytes | None,
    version_id_marker: str | None,
) -> Iterator[VersionEntry | str]:
    """Every version entry and common prefix after the markers, in listing order."""
    cursor = t.versions.cursor()
    if (
        key_marker is not None
        and version_id_marker is not None
        and key_marker.startswith(prefix)
        and not _rolled_up(key_marker, prefix, delimiter)
    ):
        object_id = t.ns.lookup(bucket, key_marker)
        if object_id is not None:
            text = key_marker.decode("utf-8")
            for version in _versions_after(cursor, object_id, text, version_id_marker):
                yield VersionEntry(text, version, False)
    for kind, item, ident in keys_and_prefixes(t, bucket, prefix, delimiter, key_marker):
        text = item.decode("utf-8")
        if kind != KEY:
            yield text
            continue
        for index, version in enumerate(_versions_of(cursor, ident, text)):
            yield VersionEntry(text, version, index == 0)


def list_versions(
    t: MetaTxn,
    bucket: Bucket,
    prefix: bytes = b"",
    delimiter: bytes | None = None,
    key_marker: bytes | None = None,
    version_id_marker: str | None = None,
    max_keys: int = 1000,
) -> VersionsPage:
    """One page of ListObjectVersions: versions, delete markers and common prefixes.

    Versions, delete markers and common prefixes each count toward
    ``max_keys``. The page's next markers are its last entry: a key and a
    version id, or a common prefix and None.
    """
    entries: list[VersionEntry] = []
    prefixes: list[str] = []
    if max_keys <= 0:
        return VersionsPage(entries, prefixes, False, None, None)
    next_key: str | None = None
    next_version: str | None = None
    truncated = False
    for item in _items(t, bucket, prefix, delimiter or None, key_marker, version_id_marker):
        if len(entries) + len(prefixes) >= max_keys:
            truncated = True
            break
        if isinstance(item, VersionEntry):
            entries.append(item)
            next_key, next_version = item.key, item.version.version_id
        else:
            prefixes.append(item)
            next_key, next_version = item, None
    return VersionsPage(entries, prefixes, truncated, next_key, next_version)
