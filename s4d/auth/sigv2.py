"""AWS Signature Version 2 for S3: verify ``Authorization: AWS`` headers and query auth.

The string to sign is S3's: method, ``Content-MD5``, ``Content-Type``, the date
(empty when ``x-amz-date`` is present; ``Expires`` for query auth), the
canonical ``x-amz-*`` headers and the canonical resource. The caller passes the
resource path (``/bucket/key`` as sent, for path and virtual-host style alike);
this module appends the sub-resources S3 signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from s4d.auth.request import CredentialSource, SignedRequest, wire_bytes, wire_text
from s4d.auth.sigv4 import (
    MAX_SKEW,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthResult,
    is_sha256_hex,
    is_streaming,
)
from s4d.errors import S3Error

#: Query parameters that are part of the canonical resource when present.
SUB_RESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
    }
)

_ASCII_SPACE = " \t\r\n\x0b\x0c"


def canonical_resource(resource_path: str | bytes, raw_query: bytes) -> str:
    """``resource_path`` followed by the signed sub-resources of ``raw_query``.

    Sub-resources are sorted by name; values are percent-decoded; a parameter
    sent without ``=`` appears without ``=`` (``?uploads``).
    """
    path = wire_text(resource_path) if isinstance(resource_path, bytes) else resource_path
    subs: list[tuple[str, str | None]] = []
    for part in raw_query.split(b"&") if raw_query else ():
        raw_name, eq, raw_value = part.partition(b"=")
        name = wire_text(unquote_to_bytes(raw_name))
        if name in SUB_RESOURCES:
            subs.append((name, wire_text(unquote_to_bytes(raw_value)) if eq else None))
    if not subs:
        return path
    subs.sort(key=lambda item: item[0])
    return path + "?" + "&".join(name if v is None else f"{name}={v}" for name, v in subs)


def _amz_headers(items: Iterable[tuple[str, list[str]]]) -> str:
    merged: dict[str, list[str]] = {}
    for name, values in items:
        if name.startswith("x-amz-"):
            merged.setdefault(name, []).extend(v.strip(_ASCII_SPACE) for v in values)
    return "".join(f"{name}:{','.join(merged[name])}\n" for name in sorted(merged))


def string_to_sign(
    req: SignedRequest,
    resource_path: str | bytes,
    date_line: str,
    query_headers: bool = False,
) -> str:
    """The SigV2 string to sign of ``req`` with ``date_line`` as its date.

    :param query_headers: also take ``x-amz-*``, ``Content-MD5`` and
        ``Content-Type`` from query parameters (query auth, where clients may
        move headers into the URL).
    """
    items = list(req.headers.items())
    content_md5 = req.header("content-md5")
    content_type = req.header("content-type")
    if query_headers:
        query_items: list[tuple[str, list[str]]] = []
        for key, value in req.query:
            lower = key.lower()
            if lower.startswith("x-amz-"):
                query_items.append((lower, [value]))
            elif lower == "content-md5" and content_md5 is None:
                content_md5 = value
            elif lower == "content-type" and content_type is None:
                content_type = value
        items.extend(query_items)
    return (
        f"{req.method}\n"
        f"{(content_md5 or '').strip(_ASCII_SPACE)}\n"
        f"{(content_type or '').strip(_ASCII_SPACE)}\n"
        f"{date_line}\n"
        f"{_amz_headers(items)}"
        f"{canonical_resource(resource_path, req.raw_query)}"
    )


def sign(secret: str, to_sign: str) -> str:
    """Base64 HMAC-SHA1 of ``to_sign`` under ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), wire_bytes(to_sign), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _matches(provided: str, expected: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), wire_bytes(provided))


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _payload_hash(req: SignedRequest) -> str:
    value = (req.header("x-amz-content-sha256") or "").strip()
    if is_sha256_hex(value) or value == STREAMING_UNSIGNED_TRAILER:
        return value
    if is_streaming(value):
        raise S3Error("InvalidRequest", f"{value} requires Signature Version 4.")
    return UNSIGNED_PAYLOAD


def _resource_candidates(resource_path: str | bytes) -> list[str]:
    """The resource as given and, for a bucket given as ``/bucket``, ``/bucket/``.

    S3 and its clients sign ``/bucket/`` for bucket requests even when the
    path sent is ``/bucket``.
    """
    path = wire_text(resource_path) if isinstance(resource_path, bytes) else resource_path
    if len(path) > 1 and path.count("/") == 1 and path.startswith("/"):
        return [path + "/", path]
    return [path]


def _mismatch(to_sign: str, provided: str, access_key: str) -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        StringToSign=to_sign,
        SignatureProvided=provided,
        AWSAccessKeyId=access_key,
    )


def verify_header(
    req: SignedRequest,
    creds: CredentialSource,
    now: datetime,
    resource_path: str | bytes,
) -> AuthResult:
    """Verify ``Authorization: AWS <access key>:<signature>``.

    :param resource_path: the canonical resource path, ``/bucket/key`` as sent
        (``/`` for the service, ``/bucket/`` for a bucket; ``/bucket`` is
        accepted too).
    :raises S3Error: ``AccessDenied``, ``RequestTimeTooSkewed``,
        ``InvalidAccessKeyId`` or ``SignatureDoesNotMatch``.
    """
    authorization = (req.header("authorization") or "").strip()
    scheme, _, credentials = authorization.partition(" ")
    access_key, colon, signature = credentials.strip().rpartition(":")
    if scheme != "AWS" or not colon or not access_key or not signature:
        raise S3Error("AccessDenied", "Malformed Signature Version 2 Authorization header.")

    amz_date = req.header("x-amz-date")
    http_date = req.header("date")
    when_text = amz_date if amz_date is not None else http_date
    try:
        when = parsedate_to_datetime(when_text) if when_text is not None else None
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    when = _utc(when)
    now = _utc(now)
    if abs(now - when) > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            RequestTime=formatdate(when.timestamp(), usegmt=True),
            ServerTime=formatdate(now.timestamp(), usegmt=True),
            MaxAllowedSkewMilliseconds=str(int(MAX_SKEW.total_seconds() * 1000)),
        )

    secret = creds.secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    payload_hash = _payload_hash(req)
    # S3 signs an empty date line when x-amz-date is present; some clients sign
    # the Date header anyway, so that is accepted too.
    date_lines = [""] if amz_date is not None else []
    if http_date is not None:
        date_lines.append(http_date.strip(_ASCII_SPACE))
    first = None
    for resource in _resource_candidates(resource_path):
        for date_line in date_lines:
            to_sign = string_to_sign(req, resource, date_line)
            first = first or to_sign
            if _matches(signature, sign(secret, to_sign)):
                return AuthResult(
                    access_key=access_key, method="v2-header", payload_hash=payload_hash
                )
    raise _mismatch(first or "", signature, access_key)


def verify_presigned(
    req: SignedRequest,
    creds: CredentialSource,
    now: datetime,
    resource_path: str | bytes,
) -> AuthResult:
    """Verify query authentication (``AWSAccessKeyId``, ``Expires``, ``Signature``).

    :raises S3Error: ``AccessDenied`` (missing parameters or expired),
        ``InvalidAccessKeyId`` or ``SignatureDoesNotMatch``.
    """
    params: dict[str, str] = {}
    for key, value in req.query:
        params.setdefault(key, value)
    try:
        access_key = params["AWSAccessKeyId"]
        expires_text = params["Expires"]
        signature = params["Signature"]
    except KeyError:
        raise S3Error(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters",
        ) from None
    if not (expires_text.isascii() and expires_text.isdigit()) or len(expires_text) > 18:
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch)")
    expires = int(expires_text)
    now = _utc(now)
    if now.timestamp() > expires:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            Expires=datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    secret = creds.secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    payload_hash = _payload_hash(req)
    first = None
    for resource in _resource_candidates(resource_path):
        to_sign = string_to_sign(req, resource, expires_text, query_headers=True)
        first = first or to_sign
        if _matches(signature, sign(secret, to_sign)):
            return AuthResult(
                access_key=access_key, method="v2-presigned", payload_hash=payload_hash
            )
    raise _mismatch(first or "", signature, access_key)


def sign_header(
    req: SignedRequest, access_key: str, secret: str, resource_path: str | bytes
) -> str:
    """The ``Authorization`` header value for ``req`` (tests and tools)."""
    date_line = "" if req.header("x-amz-date") is not None else (req.header("date") or "")
    return f"AWS {access_key}:{sign(secret, string_to_sign(req, resource_path, date_line))}"
