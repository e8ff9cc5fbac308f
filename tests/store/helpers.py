"""Small helpers shared by the store tests: a store in a temp dir, put, get, delete."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.features import buckets as fb
from s4d.features import objects as fo
from s4d.store.chunks import WrittenChunk
from s4d.store.clock import SYSTEM_CLOCK, Clock
from s4d.store.eventlog import NULL_EVENT_LOG, EventLog
from s4d.store.model import ObjectVersion
from s4d.store.store import Store, StoreConfig

NOW = 1_700_000_000_000_000_000


def open_store(
    case: SynchronousTestCase,
    path: str | None = None,
    inline: bool = True,
    fsync: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    events: EventLog = NULL_EVENT_LOG,
    **config: Any,
) -> Store:
    """A store in a fresh (or the given) directory, closed when the test ends."""
    store = Store(
        StoreConfig(
            path or case.mktemp(), map_size=config.pop("map_size", 1 << 30), fsync=fsync, **config
        ),
        inline_commit=inline,
        clock=clock,
        events=events,
    )
    case.addCleanup(close_quietly, store)
    return store


def close_quietly(store: Store) -> None:
    """Close ``store`` unless it is closed already."""
    try:
        store.close()
    except Exception:  # noqa: BLE001 - already closed
        pass


def write_chunks(store: Store, data: bytes, chunk_size: int | None = None) -> list[WrittenChunk]:
    """Cut ``data`` into chunks and write each (an empty object has no chunks)."""
    size = chunk_size or store.config.chunk_size
    return [store.put_chunk(data[i : i + size]) for i in range(0, len(data), size)]


def segments_of(chunks: list[WrittenChunk]) -> frozenset[int]:
    """The segments the new chunks went to."""
    return frozenset(c.location.segment for c in chunks if c.location is not None)


def put(
    store: Store,
    bucket: str,
    key: str,
    data: bytes,
    conditions: fo.WriteConditions | None = None,
    chunk_size: int | None = None,
) -> ObjectVersion:
    """Store ``data`` under ``key`` and wait for the commit."""
    chunks = write_chunks(store, data, chunk_size)
    new = fo.NewObject(size=len(data), etag=hashlib.md5(data).hexdigest())
    cond = conditions or fo.WriteConditions()
    version: ObjectVersion = store.commit(
        lambda t: fo.put_object(t, bucket, key, new, chunks, cond, NOW), segments_of(chunks)
    )
    return version


def get(store: Store, bucket: str, key: str, version_id: str | None = None) -> bytes:
    """Read ``key`` (or one version of it) back, chunk by chunk."""
    with store.read() as t:
        _, version = fo.find_version(t, t.buckets.require(bucket), key, version_id)
        locations = store.locate(t, version.chunks)
    return b"".join(store.read_chunk(loc) for loc in locations)


def delete(store: Store, bucket: str, key: str, version_id: str | None = None) -> fo.DeleteOutcome:
    """Delete ``key`` (or one version of it)."""
    outcome: fo.DeleteOutcome = store.commit(
        lambda t: fo.delete_object(t, bucket, key, version_id, NOW)
    )
    return outcome


def create_bucket(store: Store, name: str, versioning: str | None = None) -> None:
    """Create a bucket, optionally with versioning set."""
    store.commit(lambda t: fo.create_bucket(t, name, "us-east-1", NOW))
    if versioning is not None:
        set_versioning(store, name, versioning)


def set_versioning(store: Store, name: str, state: str) -> None:
    """Set a bucket's versioning state ("Enabled" or "Suspended")."""

    store.commit(lambda t: fb.set_versioning(t, name, state))


def files_under(path: str) -> list[str]:
    """Every file below ``path``, relative to it, sorted."""
    found = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            found.append(os.path.relpath(os.path.join(root, name), path))
    return sorted(found)


def rolled_up(key: bytes, prefix: bytes, delimiter: bytes | None) -> bytes | None:
    """The common prefix ``key`` rolls up into in a listing of ``prefix``, or None.

    Keys starting with ``prefix`` whose remainder contains the delimiter roll up
    into ``prefix + remainder[: first delimiter + len(delimiter)]``.
    """
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return key[: cut + len(delimiter)] if cut >= 0 else None
