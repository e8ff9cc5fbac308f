"""Rules every writer of object versions shares: keys, conditions, installing a version.

Objects (:mod:`s4d.features.objects`) and multipart completion
(:mod:`s4d.features.multipart`) both make new versions; the versioning rules
(the ``null`` version, version ids) and conditional-write checks live here so
that every writer applies them the same way.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from s4d.errors import S3Error
from s4d.features.lock import check_removable, now_ms, settle_new_version
from s4d.store.chunks import WrittenChunk
from s4d.store.model import NO_LOCK, NULL_VERSION, Bucket, ChunkRef, ObjectLock, ObjectVersion
from s4d.store.txn import MetaTxn

MAX_KEY_BYTES = 1024


def check_key(key: str) -> bytes:
    """The key as UTF-8 bytes; S3 errors for empty or over-long keys and NULs."""
    if not key:
        raise S3Error("InvalidArgument", "Object key must not be empty.")
    if "\0" in key:
        raise S3Error("InvalidArgument", "Object key must not hold a NUL character.")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise S3Error("InvalidArgument", "Object key is not valid UTF-8.") from None
    if len(raw) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")
    return raw


def new_version_id(seq: int) -> str:
    """An opaque, unique version id: 32 lower-case hex digits (see :func:`check_version_id`)."""
    return f"{seq:012x}{secrets.token_hex(10)}"


_VERSION_ID = re.compile(r"[0-9a-f]{32}\Z")


def check_version_id(version_id: str) -> None:
    """``InvalidArgument`` unless ``version_id`` is ``null`` or one :func:`new_version_id` makes.

    AWS answers a malformed version id so, before looking anything up; a
    well-formed id no version has is ``NoSuchVersion``.
    """
    if version_id != NULL_VERSION and not _VERSION_ID.match(version_id):
        raise S3Error(
            "InvalidArgument",
            "Invalid version id specified",
            ArgumentName="versionId",
            ArgumentValue=version_id,
        )


@dataclass(frozen=True)
class WriteConditions:
    """Conditional-write headers of a PUT (or the destination of a copy)."""

    if_match: str | None = None
    if_none_match: str | None = None


@dataclass
class NewObject:
    """Everything that describes a new object version except its chunks."""

    size: int
    etag: str
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksums: dict[str, str] = field(default_factory=dict)
    parts: list[int] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: the object lock asked for (``x-amz-object-lock-*``); the bucket's default
    #: retention applies when it names no mode
    lock: ObjectLock = NO_LOCK
    #: the body's integrity was declared (Content-MD5 or a flexible checksum), which
    #: S3 demands of a PutObject whose version gets retention
    integrity_declared: bool = True
    #: a multipart object's part checksums, one per part (in its checksum's algorithm)
    part_checksums: list[str] | None = None
    #: the version's access control list and owner, in the authorization layer's
    #: stored form (kept in the version's ``extra`` as :data:`ACL_EXTRA`); None: none
    #: recorded (the bucket owner's, private)
    acl: dict[str, Any] | None = None


#: The ``extra`` field of a version record holding its ACL and owner.
ACL_EXTRA = "acl"


def check_conditions(current: ObjectVersion | None, cond: WriteConditions) -> None:
    """``PreconditionFailed`` (or ``NoSuchKey``) unless ``current`` meets ``cond``."""
    live = current is not None and not current.delete_marker
    if cond.if_none_match is not None:
        if cond.if_none_match.strip() == "*":
            if live:
                raise S3Error("PreconditionFailed", Condition="If-None-Match")
        elif live and current is not None and etag_matches(cond.if_none_match, current.etag):
            raise S3Error("PreconditionFailed", Condition="If-None-Match")
    if cond.if_match is not None:
        if not live:
            raise S3Error("NoSuchKey")
        assert current is not None
        if not etag_matches(cond.if_match, current.etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")


def etag_matches(header: str, etag: str) -> bool:
    """True if an If-Match style header (a list of ETags, or ``*``) names ``etag``."""
    wanted = {v.strip().strip('"') for v in header.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


def reference_chunks(t: MetaTxn, chunks: list[WrittenChunk]) -> None:
    """Take one reference on each chunk: index new records, count existing ones."""
    for chunk in chunks:
        if chunk.location is not None:
            t.chunks.add(chunk.location)
        else:
            t.chunks.incref(chunk.ref.digest)


def remove_version(
    t: MetaTxn, object_id: int, version: ObjectVersion, bypass_governance: bool = False
) -> None:
    """Remove one version record (releasing its chunks) unless object lock forbids it.

    Every path that removes a version goes through here, so none can remove a
    locked one (``AccessDenied``; see :func:`s4d.features.lock.may_remove`).
    """
    check_removable(version, now_ms(t), bypass_governance)
    t.versions.delete(object_id, version)


def install_version(
    t: MetaTxn, bucket: Bucket, key: bytes, object_id: int | None, version: ObjectVersion
) -> ObjectVersion:
    """Add ``version`` as the newest version of ``key`` under the bucket's versioning.

    Its object lock is settled here (:func:`s4d.features.lock.settle_new_version`:
    the bucket's default retention unless the writer asked for a mode).
    """
    settle_new_version(bucket, version, now_ms(t))
    if object_id is None:
        object_id = t.counters.next_id(b"object")
        t.ns.link(bucket, key, object_id)
    if bucket.versioning == "Enabled":
        version.version_id = new_version_id(version.seq)
    else:
        version.version_id = NULL_VERSION
        for old in t.versions.all(object_id):
            if old.version_id == NULL_VERSION:
                remove_version(t, object_id, old)
    t.versions.put(object_id, version)
    version.key = key.decode("utf-8")
    return version


def version_from(new: NewObject, refs: list[ChunkRef], seq: int, now_ns: int) -> ObjectVersion:
    """A version record (still the ``null`` version) describing ``new`` with chunks ``refs``."""
    return ObjectVersion(
        version_id=NULL_VERSION,
        seq=seq,
        size=new.size,
        etag=new.etag,
        mtime_ns=now_ns,
        content_type=new.content_type,
        metadata=dict(new.metadata),
        headers=dict(new.headers),
        storage_class=new.storage_class,
        checksums=dict(new.checksums),
        chunks=list(refs),
        parts=new.parts,
        tags=dict(new.tags),
        lock=new.lock,
        part_checksums=new.part_checksums,
        extra={ACL_EXTRA: dict(new.acl)} if new.acl is not None else {},
    )


def find_version(
    t: MetaTxn, bucket: Bucket, key: str, version_id: str | None, copy_source: bool = False
) -> tuple[int, ObjectVersion]:
    """The object id and the requested (or current) version of ``key``.

    As in AWS: the current version being a delete marker is ``NoSuchKey``, and
    asking for a delete marker by id is ``MethodNotAllowed``, both with the
    marker's ``x-amz-delete-marker`` and ``x-amz-version-id`` headers (the
    second also with ``Allow: DELETE`` and ``Last-Modified``). As the source of
    a copy (``copy_source``) a delete marker named by id is ``InvalidRequest``.
    A key with no version at all is ``NoSuchKey`` with ``x-amz-delete-marker:
    false``, as AWS answers.
    """
    raw_key = check_key(key)
    object_id = t.ns.lookup(bucket, raw_key)
    if object_id is None:
        raise S3Error("NoSuchVersion", Key=key) if version_id else _no_such_key(key)
    if version_id is None:
        version = t.versions.current(object_id, key)
        if version is None:
            raise _no_such_key(key)
        if version.delete_marker:
            error = S3Error("NoSuchKey", Key=key)
            error.headers.update(marker_headers(version))
            raise error
        return object_id, version
    for version in t.versions.all(object_id, key):
        if version.version_id == version_id:
            if version.delete_marker:
                if copy_source:
                    raise S3Error(
                        "InvalidRequest",
                        "The source of a copy request may not specifically refer to a delete "
                        "marker by version id.",
                    )
                error = S3Error(
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                    Method="GET",
                    ResourceType="DeleteMarker",
                )
                error.headers.update(marker_headers(version))
                error.headers["Allow"] = "DELETE"
                error.headers["Last-Modified"] = format_datetime(
                    datetime.fromtimestamp(version.mtime_ns // 1_000_000_000, UTC), usegmt=True
                )
                raise error
            return object_id, version
    raise S3Error("NoSuchVersion", Key=key, VersionId=version_id)


def _no_such_key(key: str) -> S3Error:
    """``NoSuchKey`` for a key with no version at all: ``x-amz-delete-marker: false``."""
    error = S3Error("NoSuchKey", Key=key)
    error.headers["x-amz-delete-marker"] = "false"
    return error


def marker_headers(marker: ObjectVersion) -> dict[str, str]:
    """The headers that name a delete marker in an answer."""
    return {"x-amz-delete-marker": "true", "x-amz-version-id": marker.version_id}
