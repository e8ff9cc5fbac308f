"""Object lock on the wire: the ``x-amz-object-lock-*`` headers and retain-until dates.

Three operations take a lock in headers: PutObject, CopyObject and
CreateMultipartUpload (``x-amz-object-lock-mode`` with
``x-amz-object-lock-retain-until-date``, and ``x-amz-object-lock-legal-hold``);
CreateBucket takes ``x-amz-bucket-object-lock-enabled``. The front end
screens these headers when a request's headers are in
(:func:`screen_lock_headers`), so a malformed lock, or a lock on an operation
that cannot take one, is refused before any body byte is read; handlers then
read the value (:func:`requested_lock`). GET and HEAD return a version's lock in
the same three headers (:func:`lock_headers`).

Retain-until instants are kept in milliseconds (S3 shows them as
``2030-01-01T00:00:00.000Z``); a finer instant is rounded up, so a lock is
never kept shorter than asked.
"""

from __future__ import annotations

from datetime import UTC, datetime

from s4d.engine import LOCK_MODES, NO_LOCK, ObjectLock
from s4d.errors import S3Error
from s4d.s3.headers import CallHeaders
from s4d.util import checksums as ck

MODE = "x-amz-object-lock-mode"
RETAIN_UNTIL = "x-amz-object-lock-retain-until-date"
LEGAL_HOLD = "x-amz-object-lock-legal-hold"
BUCKET_LOCK_ENABLED = "x-amz-bucket-object-lock-enabled"
BYPASS_GOVERNANCE = "x-amz-bypass-governance-retention"
#: Names (and name prefixes) of the headers :func:`screen_lock_headers` looks at.
LOCK_HEADER_PREFIXES = ("x-amz-object-lock-", BUCKET_LOCK_ENABLED)
#: The operations that take a lock in headers.
LOCKING_OPERATIONS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})


def parse_retain_until(text: str) -> int | None:
    """An ISO-8601 instant (``2030-01-01T00:00:00Z``, with or without fraction or
    offset; UTC when it names none) in milliseconds since the epoch, rounded up;
    None if it does not parse."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def render_retain_until(until_ms: int) -> str:
    """``2030-01-01T00:00:00.000Z``."""
    seconds, millis = divmod(until_ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def requested_lock(headers: CallHeaders) -> ObjectLock:
    """The lock a write asks for in its headers (:data:`NO_LOCK` if none), as AWS checks it.

    ``InvalidArgument`` for an unknown mode, a date that does not parse, a legal
    hold other than ``ON``/``OFF``, or a mode without a date (or the reverse).
    """
    mode = headers.get(MODE)
    until_text = headers.get(RETAIN_UNTIL)
    hold_text = headers.get(LEGAL_HOLD)
    if mode is None and until_text is None and hold_text is None:
        return NO_LOCK
    if (mode is None) != (until_text is None):
        raise S3Error(
            "InvalidArgument",
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
        )
    if mode is not None and mode not in LOCK_MODES:
        raise S3Error(
            "InvalidArgument", "Unknown wormMode directive.", ArgumentName=MODE, ArgumentValue=mode
        )
    until_ms = None
    if until_text is not None:
        until_ms = parse_retain_until(until_text)
        if until_ms is None:
            raise S3Error(
                "InvalidArgument",
                "The retain until date must be provided in ISO 8601 format.",
                ArgumentName=RETAIN_UNTIL,
                ArgumentValue=until_text,
            )
    hold = None
    if hold_text is not None:
        if hold_text not in ("ON", "OFF"):
            raise S3Error(
                "InvalidArgument",
                "Legal Hold must be either of 'ON' or 'OFF'",
                ArgumentName=LEGAL_HOLD,
                ArgumentValue=hold_text,
            )
        hold = hold_text == "ON"
    return ObjectLock(mode, until_ms, hold)


def declares_integrity(headers: CallHeaders) -> bool:
    """The request declares a digest of its body: Content-MD5 or a flexible checksum.

    (A checksum may come as a header, or be announced as a trailer or by
    ``x-amz-sdk-checksum-algorithm``.)
    """
    if headers.get("content-md5") is not None or headers.get("x-amz-trailer"):
        return True
    if headers.get("x-amz-sdk-checksum-algorithm"):
        return True
    return any(headers.get(ck.header_name(alg)) is not None for alg in ck.ALGORITHMS)


def _boolean_header(headers: CallHeaders, name: str) -> bool:
    """Header ``name`` as a boolean: absent is false; ``InvalidArgument`` unless true or false."""
    raw = headers.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise S3Error(
            "InvalidArgument",
            f"{name} must be true or false.",
            ArgumentName=name,
            ArgumentValue=raw,
        )
    return value == "true"


def bucket_lock_requested(headers: CallHeaders) -> bool:
    """``x-amz-bucket-object-lock-enabled: true`` (``InvalidArgument`` unless true or false)."""
    return _boolean_header(headers, BUCKET_LOCK_ENABLED)


def bypass_governance(headers: CallHeaders) -> bool:
    """``x-amz-bypass-governance-retention: true`` (``InvalidArgument`` unless true or false).

    TODO(authorization issue): AWS honours it only for callers allowed
    ``s3:BypassGovernanceRetention``; today's single user, the root, is.
    """
    return _boolean_header(headers, BYPASS_GOVERNANCE)


def screen_lock_headers(operation: str, headers: CallHeaders) -> None:
    """Refuse object lock headers that are malformed or that ``operation`` cannot take.

    Called at header time for a request carrying any of them. A PutObject
    asking for a lock must declare a digest of its body (Content-MD5 or a
    flexible checksum), as S3 demands (``InvalidRequest``).
    """
    if operation == "CreateBucket":
        if any(name.startswith("x-amz-object-lock-") for name in headers.names()):
            raise _not_taken(operation)
        bucket_lock_requested(headers)
        return
    if BUCKET_LOCK_ENABLED in headers or operation not in LOCKING_OPERATIONS:
        raise _not_taken(operation)
    lock = requested_lock(headers)
    if operation == "PutObject" and not lock.is_empty() and not declares_integrity(headers):
        raise S3Error(
            "InvalidRequest",
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests "
            "with Object Lock parameters",
        )


def _not_taken(operation: str) -> S3Error:
    return S3Error(
        "InvalidRequest",
        f"{operation} takes no object lock headers: x-amz-object-lock-* go with PutObject, "
        "CopyObject and CreateMultipartUpload, x-amz-bucket-object-lock-enabled with "
        "CreateBucket.",
    )


def lock_headers(lock: ObjectLock) -> dict[str, str]:
    """A version's lock as GET and HEAD return it."""
    headers: dict[str, str] = {}
    if lock.mode is not None and lock.until_ms is not None:
        headers[MODE] = lock.mode
        headers[RETAIN_UNTIL] = render_retain_until(lock.until_ms)
    if lock.legal_hold is not None:
        headers[LEGAL_HOLD] = "ON" if lock.legal_hold else "OFF"
    return headers
