"""Object lock's operations as transaction functions: configuration, retention, legal hold.

Each function runs inside one LMDB transaction handed to it (a write
transaction from the committer for the changes, a read transaction for the
getters), checks everything before it changes anything and returns the record
it acted on. A bucket's object lock configuration lives in its bucket record
(:attr:`~s4d.store.model.Bucket.object_lock`, :attr:`~s4d.store.model.Bucket.lock_default`);
a version's retention and legal hold live in its version record
(:attr:`~s4d.store.model.ObjectVersion.lock`), so each change commits in one
transaction with nothing else to keep in step. The rules are in
:mod:`s4d.features.lock`.
"""

from __future__ import annotations

from dataclasses import replace

from s4d.errors import S3Error
from s4d.features.lock import (
    MODES,
    check_default_retention,
    check_future,
    check_retention_change,
    now_ms,
    require_lock,
)
from s4d.features.versions import find_version
from s4d.store.model import Bucket, DefaultRetention, ObjectVersion
from s4d.store.txn import MetaTxn


def put_lock_configuration(t: MetaTxn, name: str, rule: DefaultRetention | None) -> Bucket:
    """PutObjectLockConfiguration: enable object lock, set (or clear) the default retention.

    Object lock can be enabled on an existing bucket only while its versioning is
    ``Enabled`` (``InvalidBucketState`` otherwise, as AWS answers); once
    enabled it stays.
    """
    if rule is not None:
        check_default_retention(rule)
    bucket = t.buckets.require(name)
    if not bucket.object_lock and bucket.versioning != "Enabled":
        raise S3Error(
            "InvalidBucketState",
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
            BucketName=name,
        )
    bucket.object_lock = True
    bucket.lock_default = rule
    t.buckets.put(bucket)
    return bucket


def get_lock_configuration(t: MetaTxn, name: str) -> Bucket:
    """The bucket, if it has object lock (``ObjectLockConfigurationNotFoundError`` if not)."""
    bucket = t.buckets.require(name)
    if not bucket.object_lock:
        raise S3Error("ObjectLockConfigurationNotFoundError", BucketName=name)
    return bucket


def locked_version(
    t: MetaTxn, bucket_name: str, key: str, version_id: str | None
) -> tuple[int, ObjectVersion]:
    """The object id and version whose lock a request reads or changes.

    ``InvalidRequest`` if the bucket has no object lock (AWS answers so for
    every retention and legal hold request there).
    """
    bucket = t.buckets.require(bucket_name)
    require_lock(bucket)
    return find_version(t, bucket, key, version_id)


def put_retention(
    t: MetaTxn,
    bucket_name: str,
    key: str,
    version_id: str | None,
    mode: str | None,
    until_ms: int | None,
    bypass_governance: bool,
) -> ObjectVersion:
    """PutObjectRetention: set (or with ``mode`` None, remove) one version's retention.

    ``MalformedXML`` for an unknown mode or a mode without a date (or the
    reverse); ``InvalidArgument`` for a date not in the future; ``AccessDenied``
    for a change the running retention forbids
    (:func:`s4d.features.lock.check_retention_change`).
    """
    if (mode is None) != (until_ms is None) or (mode is not None and mode not in MODES):
        raise S3Error("MalformedXML")
    object_id, version = locked_version(t, bucket_name, key, version_id)
    now = now_ms(t)
    if until_ms is not None:
        check_future(until_ms, now)
    check_retention_change(version.lock, mode, until_ms, now, bypass_governance)
    version.lock = replace(version.lock, mode=mode, until_ms=until_ms)
    t.versions.put(object_id, version)
    return version


def put_legal_hold(
    t: MetaTxn, bucket_name: str, key: str, version_id: str | None, on: bool
) -> ObjectVersion:
    """PutObjectLegalHold: put one version under a legal hold (``on``) or lift it."""
    object_id, version = locked_version(t, bucket_name, key, version_id)
    version.lock = replace(version.lock, legal_hold=on)
    t.versions.put(object_id, version)
    return version
