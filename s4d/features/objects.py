"""Object operations (put, copy, delete) as transaction functions.

Each function here runs inside one LMDB write transaction handed to it by the
committer, checks everything it needs before it changes anything, and returns a
plain result. The rules shared with multipart completion (keys, conditions,
installing a version) are in :mod:`s4d.features.versions`; bucket-level rules
are in :mod:`s4d.features.buckets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from s4d.errors import S3Error
from s4d.features.buckets import create_bucket, delete_bucket
from s4d.features.lock import check_requested, now_ms
from s4d.features.versions import (
    ACL_EXTRA,
    MAX_KEY_BYTES,
    NewObject,
    WriteConditions,
    check_conditions,
    check_key,
    check_version_id,
    find_version,
    install_version,
    new_version_id,
    reference_chunks,
    remove_version,
    version_from,
)
from s4d.store.chunks import WrittenChunk
from s4d.store.model import NO_LOCK, NULL_VERSION, Bucket, ObjectLock, ObjectVersion
from s4d.store.records import HEADER_SIZE
from s4d.store.txn import MetaTxn

__all__ = [
    # re-exported for callers that import them from here (s4d/s3, s4d/engine.py)
    "MAX_KEY_BYTES",
    "NewObject",
    "WriteConditions",
    "check_key",
    "check_version_id",
    "create_bucket",
    "delete_bucket",
    "find_version",
    "new_version_id",
    # defined here
    "CopySource",
    "DeleteOutcome",
    "SourceCheck",
    "copy_object",
    "delete_object",
    "discard_chunks",
    "put_object",
]

# -- objects ----------------------------------------------------------------------


def put_object(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    new: NewObject,
    chunks: list[WrittenChunk],
    conditions: WriteConditions,
    now_ns: int,
    inline: bytes | None = None,
) -> ObjectVersion:
    """Make a new version of ``key`` from chunks already written to segments.

    A small object's bytes come as ``inline`` instead (and ``chunks`` is empty):
    they are kept in the version record itself.

    A version that gets retention (asked for, or the bucket's default) needs a
    declared digest of its body (``new.integrity_declared``), as S3 demands.
    """
    bucket = t.buckets.require(bucket_name)
    raw_key = check_key(key)
    check_requested(bucket, new.lock, now_ms(t))
    if not new.integrity_declared and (new.lock.mode or bucket.lock_default):
        raise S3Error(
            "InvalidRequest",
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests "
            "with Object Lock parameters",
        )
    object_id = t.ns.lookup(bucket, raw_key)
    current = t.versions.current(object_id) if object_id is not None else None
    check_conditions(current, conditions)
    reference_chunks(t, chunks)
    version = version_from(new, [c.ref for c in chunks], t.counters.next_id(b"seq"), now_ns)
    version.inline = inline
    return install_version(t, bucket, raw_key, object_id, version)


@dataclass(frozen=True)
class DeleteOutcome:
    """What a delete did: which version went, and whether it was a delete marker."""

    key: str
    version_id: str | None
    delete_marker: bool


def delete_object(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    version_id: str | None,
    now_ns: int,
    bypass_governance: bool = False,
) -> DeleteOutcome:
    """Delete ``key`` (or one version of it) under the bucket's versioning rules.

    A version under object lock is not removed (``AccessDenied``);
    ``bypass_governance`` overrides GOVERNANCE retention. A delete marker on
    a locked object is always allowed, as in AWS.
    """
    bucket = t.buckets.require(bucket_name)
    raw_key = check_key(key)
    object_id = t.ns.lookup(bucket, raw_key)
    if version_id is not None:
        if object_id is None:
            return DeleteOutcome(key, version_id, False)
        for version in t.versions.all(object_id):
            if version.version_id == version_id:
                remove_version(t, object_id, version, bypass_governance)
                _drop_if_empty(t, bucket, raw_key, object_id)
                return DeleteOutcome(key, version_id, version.delete_marker)
        return DeleteOutcome(key, version_id, False)
    if bucket.versioning is None:
        if object_id is not None:
            for version in t.versions.all(object_id):
                remove_version(t, object_id, version, bypass_governance)
            t.ns.unlink(bucket, raw_key)
        return DeleteOutcome(key, None, False)
    marker = ObjectVersion(
        version_id=NULL_VERSION,
        seq=t.counters.next_id(b"seq"),
        size=0,
        etag="",
        mtime_ns=now_ns,
        delete_marker=True,
    )
    installed = install_version(t, bucket, raw_key, object_id, marker)
    return DeleteOutcome(key, installed.version_id, True)


def _drop_if_empty(t: MetaTxn, bucket: Bucket, raw_key: bytes, object_id: int) -> None:
    if t.versions.current(object_id) is None:
        t.ns.unlink(bucket, raw_key)


@dataclass(frozen=True)
class CopySource:
    """The source of a copy and its preconditions."""

    bucket: str
    key: str
    version_id: str | None = None


def copy_object(
    t: MetaTxn,
    source: CopySource,
    bucket_name: str,
    key: str,
    replace: NewObject | None,
    conditions: WriteConditions,
    now_ns: int,
    check_source: SourceCheck | None = None,
    tags: dict[str, str] | None = None,
    lock: ObjectLock = NO_LOCK,
    acl: dict[str, Any] | None = None,
) -> tuple[ObjectVersion, ObjectVersion]:
    """Copy by reference: the new version shares the source's chunks.

    ``replace`` carries new metadata (``REPLACE`` directive); with None the
    source's metadata is kept. ``tags`` replace the source's tags (None copies
    them). The source's object lock is never copied: the copy gets ``lock``
    (what the request asked for) or the destination bucket's default retention.
    Returns (source version, new version).
    """
    src_bucket = t.buckets.require(source.bucket)
    _, src = find_version(t, src_bucket, source.key, source.version_id, copy_source=True)
    if check_source is not None:
        check_source(src)
    bucket = t.buckets.require(bucket_name)
    raw_key = check_key(key)
    check_requested(bucket, lock, now_ms(t))
    object_id = t.ns.lookup(bucket, raw_key)
    current = t.versions.current(object_id) if object_id is not None else None
    check_conditions(current, conditions)
    for ref in src.chunks:
        t.chunks.incref(ref.digest)
    if replace is None:
        replace = NewObject(
            size=src.size,
            etag=src.etag,
            content_type=src.content_type,
            metadata=src.metadata,
            headers=src.headers,
            storage_class=src.storage_class,
            checksums=src.checksums,
            parts=src.parts,
            part_checksums=src.part_checksums,
        )
    else:
        replace.size, replace.etag, replace.parts = src.size, src.etag, src.parts
        if not replace.checksums:
            replace.checksums = dict(src.checksums)
            replace.part_checksums = src.part_checksums
    version = version_from(replace, src.chunks, t.counters.next_id(b"seq"), now_ns)
    version.inline = src.inline
    version.tags = dict(src.tags if tags is None else tags)
    version.lock = lock
    version.extra = {ACL_EXTRA: dict(acl)} if acl is not None else {}
    return src, install_version(t, bucket, raw_key, object_id, version)


#: Refuses a copy source by raising (e.g. ``x-amz-copy-source-if-*`` conditions).
SourceCheck = Callable[[ObjectVersion], None]


def discard_chunks(t: MetaTxn, chunks: list[WrittenChunk]) -> None:
    """Count chunks written for a write that failed as dead bytes."""
    for chunk in chunks:
        if chunk.location is not None:
            t.dead[chunk.location.segment] += HEADER_SIZE + chunk.location.length
