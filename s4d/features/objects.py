"""Object and bucket operations as transaction functions.

Each function here runs inside one LMDB write transaction handed to it by the
committer, checks everything it needs before it changes anything, and returns a
plain result. Versioning rules (the ``null`` version, delete markers) live here
so that every writer applies them the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from s4d.errors import S3Error
from s4d.store.chunks import WrittenChunk
from s4d.store.model import NULL_VERSION, Bucket, ChunkRef, ObjectVersion
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
    """An opaque, unique version id."""
    return f"{seq:012x}{secrets.token_hex(10)}"


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


# -- buckets ----------------------------------------------------------------------


def create_bucket(t: MetaTxn, name: str, region: str, now_ns: int) -> Bucket:
    """Create a bucket; ``BucketAlreadyOwnedByYou`` if it exists."""
    if t.bucket(name) is not None:
        raise S3Error("BucketAlreadyOwnedByYou", BucketName=name)
    bucket = Bucket(
        name=name,
        bucket_id=t.next_id(b"bucket"),
        root_dir=t.next_id(b"dir"),
        created_ns=now_ns,
        region=region,
    )
    t.put_bucket(bucket)
    return bucket


def delete_bucket(t: MetaTxn, name: str) -> None:
    """Delete an empty bucket."""
    bucket = t.require_bucket(name)
    if not t.bucket_is_empty(bucket):
        raise S3Error("BucketNotEmpty", BucketName=name)
    from s4d.features.multipart import abort_bucket_uploads

    abort_bucket_uploads(t, bucket)  # uploads in progress go with their bucket
    t.delete_bucket(bucket)


# -- objects ----------------------------------------------------------------------


def _check_conditions(current: ObjectVersion | None, cond: WriteConditions) -> None:
    live = current is not None and not current.delete_marker
    if cond.if_none_match is not None:
        if cond.if_none_match.strip() == "*":
            if live:
                raise S3Error("PreconditionFailed", Condition="If-None-Match")
        elif live and current is not None and _etag_matches(cond.if_none_match, current.etag):
            raise S3Error("PreconditionFailed", Condition="If-None-Match")
    if cond.if_match is not None:
        if not live:
            raise S3Error("NoSuchKey")
        assert current is not None
        if not _etag_matches(cond.if_match, current.etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {v.strip().strip('"') for v in header.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


def _reference(t: MetaTxn, chunks: list[WrittenChunk]) -> None:
    for chunk in chunks:
        if chunk.location is not None:
            t.add_chunk(chunk.location)
        else:
            t.incref(chunk.ref.digest)


def _install(
    t: MetaTxn, bucket: Bucket, key: bytes, object_id: int | None, version: ObjectVersion
) -> ObjectVersion:
    """Add ``version`` as the newest version of ``key`` under the bucket's versioning."""
    if object_id is None:
        object_id = t.next_id(b"object")
        t.link(bucket, key, object_id)
    if bucket.versioning == "Enabled":
        version.version_id = new_version_id(version.seq)
    else:
        version.version_id = NULL_VERSION
        for old in t.versions(object_id):
            if old.version_id == NULL_VERSION:
                t.delete_version(object_id, old)
    t.put_version(object_id, version)
    version.key = key.decode("utf-8")
    return version


def put_object(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    new: NewObject,
    chunks: list[WrittenChunk],
    conditions: WriteConditions,
    now_ns: int,
) -> ObjectVersion:
    """Make a new version of ``key`` from chunks already written to segments."""
    bucket = t.require_bucket(bucket_name)
    raw_key = check_key(key)
    object_id = t.lookup(bucket, raw_key)
    current = t.current(object_id) if object_id is not None else None
    _check_conditions(current, conditions)
    _reference(t, chunks)
    version = _version_from(new, [c.ref for c in chunks], t.next_id(b"seq"), now_ns)
    return _install(t, bucket, raw_key, object_id, version)


def _version_from(new: NewObject, refs: list[ChunkRef], seq: int, now_ns: int) -> ObjectVersion:
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
    )


def find_version(
    t: MetaTxn, bucket: Bucket, key: str, version_id: str | None
) -> tuple[int, ObjectVersion]:
    """The object id and the requested (or current) version of ``key``.

    The current version being a delete marker is ``NoSuchKey``; asking for a
    delete marker by id is ``MethodNotAllowed`` as in AWS.
    """
    raw_key = check_key(key)
    object_id = t.lookup(bucket, raw_key)
    if object_id is None:
        raise S3Error("NoSuchVersion" if version_id else "NoSuchKey", Key=key)
    if version_id is None:
        version = t.current(object_id, key)
        if version is None or version.delete_marker:
            raise S3Error("NoSuchKey", Key=key)
        return object_id, version
    for version in t.versions(object_id, key):
        if version.version_id == version_id:
            if version.delete_marker:
                raise S3Error(
                    "MethodNotAllowed",
                    "The specified method is not allowed against a delete marker.",
                )
            return object_id, version
    raise S3Error("NoSuchVersion", Key=key, VersionId=version_id)


@dataclass(frozen=True)
class DeleteOutcome:
    """What a delete did: which version went, and whether it was a delete marker."""

    key: str
    version_id: str | None
    delete_marker: bool


def delete_object(
    t: MetaTxn, bucket_name: str, key: str, version_id: str | None, now_ns: int
) -> DeleteOutcome:
    """Delete ``key`` (or one version of it) under the bucket's versioning rules."""
    bucket = t.require_bucket(bucket_name)
    raw_key = check_key(key)
    object_id = t.lookup(bucket, raw_key)
    if version_id is not None:
        if object_id is None:
            return DeleteOutcome(key, version_id, False)
        for version in t.versions(object_id):
            if version.version_id == version_id:
                t.delete_version(object_id, version)
                _drop_if_empty(t, bucket, raw_key, object_id)
                return DeleteOutcome(key, version_id, version.delete_marker)
        return DeleteOutcome(key, version_id, False)
    if bucket.versioning is None:
        if object_id is not None:
            for version in t.versions(object_id):
                t.delete_version(object_id, version)
            t.unlink(bucket, raw_key)
        return DeleteOutcome(key, None, False)
    marker = ObjectVersion(
        version_id=NULL_VERSION,
        seq=t.next_id(b"seq"),
        size=0,
        etag="",
        mtime_ns=now_ns,
        delete_marker=True,
    )
    installed = _install(t, bucket, raw_key, object_id, marker)
    return DeleteOutcome(key, installed.version_id, True)


def _drop_if_empty(t: MetaTxn, bucket: Bucket, raw_key: bytes, object_id: int) -> None:
    if t.current(object_id) is None:
        t.unlink(bucket, raw_key)


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
) -> tuple[ObjectVersion, ObjectVersion]:
    """Copy by reference: the new version shares the source's chunks.

    ``replace`` carries new metadata (``REPLACE`` directive); with None the
    source's metadata is kept. Returns (source version, new version).
    """
    src_bucket = t.require_bucket(source.bucket)
    _, src = find_version(t, src_bucket, source.key, source.version_id)
    if check_source is not None:
        check_source(src)
    bucket = t.require_bucket(bucket_name)
    raw_key = check_key(key)
    object_id = t.lookup(bucket, raw_key)
    current = t.current(object_id) if object_id is not None else None
    _check_conditions(current, conditions)
    for ref in src.chunks:
        t.incref(ref.digest)
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
        )
    else:
        replace.size, replace.etag, replace.parts = src.size, src.etag, src.parts
        if not replace.checksums:
            replace.checksums = dict(src.checksums)
    version = _version_from(replace, src.chunks, t.next_id(b"seq"), now_ns)
    return src, _install(t, bucket, raw_key, object_id, version)


class SourceCheck:
    """Protocol-like base: ``__call__(version)`` raises to refuse a copy source."""

    def __call__(self, version: ObjectVersion) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def discard_chunks(t: MetaTxn, chunks: list[WrittenChunk]) -> None:
    """Count chunks written for a write that failed as dead bytes."""
    from s4d.store.records import HEADER_SIZE

    for chunk in chunks:
        if chunk.location is not None:
            t.dead[chunk.location.segment] += HEADER_SIZE + chunk.location.length
