"""Object lock's rules: when a version may be removed, how retention may change, defaults.

Pure functions over records (no transaction, no clock of their own): every
caller passes the time, read from the store's injected clock inside the
transaction that acts on the answer (:func:`now_ms`), so a check and the change
it allows commit together and tests can move time.

A version is *locked* while it is under a legal hold, or while its retention
(``GOVERNANCE`` or ``COMPLIANCE``) runs, that is until its retain-until instant.
A locked version may not be removed by any path: DeleteObject with a version
id, DeleteObjects, RenameObject (which would take it away from its name), the
replacement of a ``null`` version, lifecycle expiry. The one exception is
``GOVERNANCE`` retention, which a request with
``x-amz-bypass-governance-retention: true`` overrides (the permission that AWS
also demands for it, ``s3:BypassGovernanceRetention``, is for the authorization
issue; the single user s4d has today is the root, who holds every permission).
:func:`may_remove` is the one predicate every such path asks.

Retention changes (PutObjectRetention): while ``COMPLIANCE`` retention runs it
can only be extended, never shortened, removed or turned into ``GOVERNANCE``
(not even with the bypass); while ``GOVERNANCE`` runs it can be extended
without the bypass and changed in any other way (shortened, removed, turned
into ``COMPLIANCE``) only with it. Retention that has run out can be changed
freely. A legal hold can always be set and lifted.
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import UTC, datetime

from s4d.errors import S3Error
from s4d.store.model import Bucket, DefaultRetention, ObjectLock, ObjectVersion
from s4d.store.txn import MetaTxn

GOVERNANCE = "GOVERNANCE"
COMPLIANCE = "COMPLIANCE"
#: The retention modes, exactly as S3 spells them.
MODES = (GOVERNANCE, COMPLIANCE)
#: The longest default retention AWS accepts (100 years, or as many days).
MAX_DEFAULT_DAYS = 36500
MAX_DEFAULT_YEARS = 100
DAY_MS = 86_400_000


def now_ms(t: MetaTxn) -> int:
    """The store's wall clock in milliseconds: the "now" every lock decision uses."""
    return int(t.clock.wall() * 1000)


def retention_runs(lock: ObjectLock, now: int) -> bool:
    """The version's retention has not yet run out at ``now`` (ms)."""
    return lock.mode is not None and lock.until_ms is not None and lock.until_ms > now


def is_locked(lock: ObjectLock, now: int) -> bool:
    """Under a legal hold, or under retention that still runs."""
    return bool(lock.legal_hold) or retention_runs(lock, now)


def removal_refusal(version: ObjectVersion, now: int, bypass_governance: bool) -> str | None:
    """Why ``version`` may not be removed at ``now`` (ms), or None when it may.

    A delete marker carries no lock. ``bypass_governance`` overrides running
    ``GOVERNANCE`` retention, nothing else.
    """
    lock = version.lock
    if lock.legal_hold:
        return "the object version is under a legal hold"
    if retention_runs(lock, now):
        if lock.mode == COMPLIANCE:
            return "the object version is under COMPLIANCE retention"
        if not bypass_governance:
            return "the object version is under GOVERNANCE retention"
    return None


def may_remove(version: ObjectVersion, now: int, bypass_governance: bool = False) -> bool:
    """May ``version`` be removed at ``now`` (ms)? The one predicate of every removal path.

    DeleteObject and DeleteObjects with a version id, RenameObject, the
    replacement of a ``null`` version and the lifecycle worker all ask it
    (the lifecycle worker never bypasses).
    """
    return removal_refusal(version, now, bypass_governance) is None


def check_removable(version: ObjectVersion, now: int, bypass_governance: bool = False) -> None:
    """``AccessDenied`` (403) unless :func:`may_remove`, as AWS answers."""
    reason = removal_refusal(version, now, bypass_governance)
    if reason is not None:
        raise S3Error(
            "AccessDenied", f"Access Denied because object protected by object lock ({reason})."
        )


def require_lock(bucket: Bucket) -> None:
    """``InvalidRequest`` unless object lock is enabled on ``bucket`` (as AWS answers)."""
    if not bucket.object_lock:
        raise S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")


def check_future(until_ms: int, now: int) -> None:
    """``InvalidArgument`` unless the retain-until instant lies in the future."""
    if until_ms <= now:
        raise S3Error("InvalidArgument", "The retain until date must be in the future!")


def check_requested(bucket: Bucket, requested: ObjectLock, now: int) -> None:
    """A write's ``x-amz-object-lock-*`` request: a lock bucket, a future retain-until.

    (The headers' form, such as mode and date coming together, is the S3
    layer's to check.)
    """
    if requested.is_empty():
        return
    if not bucket.object_lock:
        raise S3Error("InvalidRequest", "Bucket is missing ObjectLockConfiguration")
    if requested.until_ms is not None:
        check_future(requested.until_ms, now)


def default_until(rule: DefaultRetention, now: int) -> int:
    """The retain-until instant (ms) of a version made at ``now`` under ``rule``.

    Days are 24 hours; years are calendar years (29 February becomes 28 February).
    """
    if rule.days is not None:
        return now + rule.days * DAY_MS
    made = datetime.fromtimestamp(now / 1000, UTC)
    year = made.year + (rule.years or 0)
    day = min(made.day, calendar.monthrange(year, made.month)[1])
    return int(made.replace(year=year, day=day).timestamp() * 1000)


def settle_new_version(bucket: Bucket, version: ObjectVersion, now: int) -> None:
    """The lock of a version being made: the bucket's default retention unless one was asked.

    Every writer of a version (PutObject, CopyObject, CompleteMultipartUpload,
    POST Object) goes through here (from
    :func:`s4d.features.versions.install_version`). A lock on a bucket without
    object lock is ``InvalidRequest``; delete markers carry no lock.
    """
    if version.delete_marker:
        return
    lock = version.lock
    if not lock.is_empty() and not bucket.object_lock:
        raise S3Error("InvalidRequest", "Bucket is missing ObjectLockConfiguration")
    rule = bucket.lock_default
    if lock.mode is None and rule is not None:
        version.lock = replace(lock, mode=rule.mode, until_ms=default_until(rule, now))


def check_retention_change(
    old: ObjectLock, mode: str | None, until_ms: int | None, now: int, bypass_governance: bool
) -> None:
    """``AccessDenied`` unless retention ``old`` may become (``mode``, ``until_ms``) at ``now``.

    ``mode`` None removes the retention. See the module docstring for the rules.
    """
    if not retention_runs(old, now):
        return
    assert old.until_ms is not None
    extends = mode == old.mode and until_ms is not None and until_ms >= old.until_ms
    if extends:
        return
    if old.mode == COMPLIANCE:
        raise S3Error(
            "AccessDenied",
            "Access Denied: COMPLIANCE retention can only be extended, never shortened, "
            "removed or changed to GOVERNANCE.",
        )
    if not bypass_governance:
        raise S3Error(
            "AccessDenied",
            "Access Denied: shortening, removing or changing GOVERNANCE retention needs "
            "x-amz-bypass-governance-retention: true.",
        )


def check_default_retention(rule: DefaultRetention) -> None:
    """AWS's limits on a default retention: a known mode, one positive period."""
    if rule.mode not in MODES or (rule.days is None) == (rule.years is None):
        raise S3Error("MalformedXML")
    period = rule.days if rule.days is not None else rule.years
    assert period is not None
    if period <= 0:
        raise S3Error(
            "InvalidRetentionPeriod", "Default retention period must be a positive integer value."
        )
    limit = MAX_DEFAULT_DAYS if rule.days is not None else MAX_DEFAULT_YEARS
    if period > limit:
        raise S3Error("InvalidRetentionPeriod", "Default retention period is too large.")
