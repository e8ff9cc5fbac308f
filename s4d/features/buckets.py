"""Bucket-level rules as transaction functions: create, delete, versioning, configuration.

Each function runs inside one LMDB transaction handed to it (a write
transaction from the committer, or a read transaction for the getters) and
returns a plain result. Deleting a bucket aborts its multipart uploads in the
same transaction, so no upload outlives its bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from s4d.errors import S3Error
from s4d.features.multipart import abort_bucket_uploads
from s4d.store.model import Bucket
from s4d.store.txn import MetaTxn

#: The versioning states a bucket can be put into (a new bucket has none).
VERSIONING_STATES = ("Enabled", "Suspended")


def require_bucket(t: MetaTxn, name: str) -> Bucket:
    """The bucket called ``name``; ``NoSuchBucket`` if there is none."""
    return t.buckets.require(name)


def list_buckets(t: MetaTxn) -> list[Bucket]:
    """Every bucket, by name."""
    return t.buckets.all()


def owner_of(t: MetaTxn, bucket: Bucket) -> str:
    """The id of the user who owns ``bucket`` (the root user's when none is recorded)."""
    return bucket.owner or t.iam.root_id() or ""


def list_buckets_page(
    t: MetaTxn,
    prefix: str,
    after: str | None,
    region: str | None,
    max_buckets: int,
    owner: str | None = None,
) -> tuple[list[Bucket], bool]:
    """One page of ListBuckets: the buckets and whether more follow.

    ``owner``: only that user's buckets (None: every bucket, as a SuperUser sees them).
    """
    default = t.iam.root_id() or ""
    found = t.buckets.page(prefix, after, region, max_buckets + 1, owner, default)
    return found[:max_buckets], len(found) > max_buckets


def create_bucket(
    t: MetaTxn,
    name: str,
    region: str,
    now_ns: int,
    object_lock: bool = False,
    *,
    owner: str = "",
    documents: Mapping[bytes, bytes] | None = None,
) -> Bucket:
    """Create a bucket owned by ``owner`` (a user id; "": the root user).

    ``documents``: configuration documents it starts with (its ACL, its object
    ownership), stored in the same transaction.

    ``BucketAlreadyOwnedByYou`` if it exists and is ``owner``'s,
    ``BucketAlreadyExists`` if it is someone else's. With ``object_lock`` the
    bucket has object lock enabled, and so versioning too (for good: neither can
    be turned off).
    """
    owner = owner or t.iam.root_id() or ""
    existing = t.buckets.get(name)
    if existing is not None:
        if owner_of(t, existing) != owner:
            raise S3Error("BucketAlreadyExists", BucketName=name)
        raise S3Error("BucketAlreadyOwnedByYou", BucketName=name)
    bucket = Bucket(
        name=name,
        bucket_id=t.counters.next_id(b"bucket"),
        root_dir=t.counters.next_id(b"dir"),
        created_ns=now_ns,
        region=region,
        owner=owner,
        versioning="Enabled" if object_lock else None,
        object_lock=object_lock,
    )
    t.buckets.put(bucket)
    for kind, value in (documents or {}).items():
        t.bucket_config.put(bucket, kind, value)
    t.iam.bump_buckets()  # processes that cached "no such bucket" look again
    return bucket


def delete_bucket(t: MetaTxn, name: str) -> None:
    """Delete an empty bucket (``BucketNotEmpty`` otherwise) with its uploads and settings."""
    bucket = t.buckets.require(name)
    if not t.ns.bucket_is_empty(bucket):
        raise S3Error("BucketNotEmpty", BucketName=name)
    abort_bucket_uploads(t, bucket)  # uploads in progress go with their bucket
    t.bucket_config.delete_all(bucket)
    t.buckets.delete(bucket)
    t.iam.bump_buckets()  # processes that cached its owner forget it


def set_versioning(t: MetaTxn, name: str, status: str) -> Bucket:
    """Put a bucket's versioning in ``status`` (``Enabled`` or ``Suspended``); returns it.

    ``MalformedXML`` for any other status (a bucket's versioning, once enabled,
    can only be suspended, never removed). A bucket with object lock cannot
    have its versioning suspended (``InvalidBucketState``, as AWS answers).
    """
    if status not in VERSIONING_STATES:
        raise S3Error("MalformedXML")
    bucket = t.buckets.require(name)
    if bucket.object_lock and status != "Enabled":
        raise S3Error(
            "InvalidBucketState",
            "An Object Lock configuration is present on this bucket, so the versioning state "
            "cannot be changed.",
            BucketName=name,
        )
    bucket.versioning = status
    t.buckets.put(bucket)
    return bucket


def get_bucket_config(t: MetaTxn, name: str, kind: bytes) -> bytes | None:
    """The bucket's stored configuration document ``kind`` (``NoSuchBucket`` if absent)."""
    return t.bucket_config.get(t.buckets.require(name), kind)


def put_bucket_config(t: MetaTxn, name: str, kind: bytes, value: bytes | None) -> None:
    """Store (or with None, delete) the bucket's configuration document ``kind``."""
    t.bucket_config.put(t.buckets.require(name), kind, value)


#: Checks a change of access documents against the bucket's current ones
#: (by kind) inside the change's transaction, raising to refuse it.
AccessCheck = Callable[[Mapping[bytes, bytes]], None]


def access_documents(t: MetaTxn, bucket: Bucket, kinds: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """The bucket's stored documents of ``kinds``, by kind."""
    found = {}
    for kind in kinds:
        value = t.bucket_config.get(bucket, kind)
        if value is not None:
            found[kind] = bytes(value)
    return found


def put_access_document(
    t: MetaTxn,
    name: str,
    kind: bytes,
    value: bytes | None,
    kinds: tuple[bytes, ...],
    check: AccessCheck | None = None,
) -> None:
    """Store (or with None, delete) an access document of a bucket, raising the bucket
    generation in the same transaction so that every process sees the change at once.

    ``check`` sees the bucket's current documents of ``kinds`` first.
    """
    bucket = t.buckets.require(name)
    if check is not None:
        check(access_documents(t, bucket, kinds))
    t.bucket_config.put(bucket, kind, value)
    t.iam.bump_buckets()
