"""AWS Signature Version 4 for S3: verify header and query (presigned) authentication.

The canonical request is built the way S3 builds it: the path is the raw path
the client sent, with its percent-encoding canonicalised but neither decoded
twice nor normalised (``//``, ``.`` and ``..`` segments are significant in S3
keys); every query parameter, known or not, is signed. A small signer
(:func:`sign_request`, :func:`presign_url`) shares the same code and serves
tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from s4d.auth.request import CredentialSource, SignedRequest, wire_bytes, wire_text
from s4d.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
#: The ``x-amz-content-sha256`` values that announce an aws-chunked body we can decode.
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)

#: Largest difference allowed between the request's time and ours.
MAX_SKEW = timedelta(minutes=15)
#: Longest validity of a presigned URL, in seconds (seven days).
MAX_PRESIGN_EXPIRES = 604800

#: ``x-amz-*`` headers that may be present without being signed: they are
#: bound to the signature by other means or carry nothing of consequence.
_UNSIGNED_AMZ_ALLOWED = frozenset({"x-amz-content-sha256", "x-amz-date", "x-amz-user-agent"})
_HEX = frozenset("0123456789abcdef")
_ASCII_SPACE = " \t\r\n\x0b\x0c"
_WHITESPACE_RUN = re.compile("[ \t\r\n\x0b\x0c]+")
#: finds whitespace that :data:`_WHITESPACE_RUN` would change (anything but a lone space)
_NOT_ONE_SPACE = re.compile("[\t\r\n\x0b\x0c]|  ").search
#: a raw path of unreserved characters and slashes only (its canonical URI is itself)
_PLAIN_PATH = re.compile(rb"[A-Za-z0-9\-._~/]*").fullmatch


@dataclass(frozen=True)
class AuthResult:
    """Who signed a request, and what the body handling needs to know.

    :ivar access_key: the access key id that signed.
    :ivar method: ``'v4-header'``, ``'v4-presigned'``, ``'v2-header'`` or
        ``'v2-presigned'``.
    :ivar payload_hash: the claimed payload hash: a hex SHA-256,
        ``UNSIGNED-PAYLOAD`` or one of :data:`STREAMING_MODES`.
    :ivar seed_signature: the request signature (the seed of chunk signatures).
    :ivar signing_key: the derived SigV4 signing key, for chunk signatures.
    :ivar scope: the credential scope ``date/region/s3/aws4_request``.
    :ivar amz_date: the request timestamp in ISO 8601 basic format.
    """

    access_key: str
    method: str
    payload_hash: str
    seed_signature: str | None = None
    signing_key: bytes | None = None
    scope: str | None = None
    amz_date: str | None = None


def is_streaming(payload_hash: str) -> bool:
    """Whether ``payload_hash`` announces an aws-chunked (``STREAMING-*``) body."""
    return payload_hash.startswith("STREAMING-")


def is_sha256_hex(value: str) -> bool:
    """Whether ``value`` is a lower-case hex SHA-256 digest."""
    return len(value) == 64 and _HEX.issuperset(value)


def valid_payload_hash(value: str) -> bool:
    """Whether ``value`` is an ``x-amz-content-sha256`` value we accept."""
    return value == UNSIGNED_PAYLOAD or value in STREAMING_MODES or is_sha256_hex(value)


# -- keys and encodings -------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    # wire bytes: a scope field may hold bytes that are not UTF-8 (it then just fails to match)
    return hmac.new(key, wire_bytes(msg), hashlib.sha256).digest()


#: Derived signing keys kept: one per (secret, day, region) in use. Sized for tens of
#: thousands of active keys (an entry is about 300 bytes); a miss costs four HMACs.
SIGNING_KEY_CACHE = 32768


@lru_cache(maxsize=SIGNING_KEY_CACHE)
def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key for ``secret`` on ``date`` (``YYYYMMDD``) in ``region``.

    Derived keys are cached (LRU), keyed by secret, date and region.
    """
    k_date = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, TERMINATOR)


def hmac_hex(key: bytes, msg: str) -> str:
    """Hex HMAC-SHA256 of ``msg`` (UTF-8, surrogates escaped) under ``key``."""
    return hmac.new(key, wire_bytes(msg), hashlib.sha256).hexdigest()


def uri_encode(data: bytes, keep_slash: bool) -> str:
    """AWS URI encoding: ``A-Za-z0-9-._~`` kept, ``/`` kept if asked, others ``%XX``."""
    return quote(data, safe="/" if keep_slash else "")


def canonical_uri(raw_path: bytes) -> str:
    """The canonical URI of ``raw_path`` as S3 computes it.

    Each segment is percent-decoded once and encoded again with
    :func:`uri_encode`; ``/`` separators and empty segments are kept as sent,
    and an encoded slash (``%2F``) stays encoded.
    """
    if not raw_path:
        return "/"
    if _PLAIN_PATH(raw_path):
        return raw_path.decode("ascii")  # nothing to decode or encode: it is its own form
    return "/".join(
        uri_encode(unquote_to_bytes(segment), keep_slash=False) for segment in raw_path.split(b"/")
    )


def canonical_query(pairs: Iterable[tuple[str, str]], exclude: str | None = None) -> str:
    """The canonical query string of decoded ``pairs``, without parameter ``exclude``."""
    encoded = sorted(
        (uri_encode(wire_bytes(key), False), uri_encode(wire_bytes(value), False))
        for key, value in pairs
        if key != exclude
    )
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_header_value(values: Sequence[str]) -> str:
    """Values trimmed, runs of whitespace collapsed to one space, joined with ``,``."""
    if len(values) == 1:
        value = values[0].strip(_ASCII_SPACE)
        return _WHITESPACE_RUN.sub(" ", value) if _NOT_ONE_SPACE(value) else value
    return ",".join(_WHITESPACE_RUN.sub(" ", value.strip(_ASCII_SPACE)) for value in values)


def canonical_request(
    req: SignedRequest,
    signed_headers: Sequence[str],
    payload_hash: str,
    exclude_query: str | None = None,
) -> str:
    """The SigV4 canonical request of ``req`` over ``signed_headers``."""
    lines = [
        req.method,
        canonical_uri(req.raw_path),
        canonical_query(req.query, exclude_query),
    ]
    for name in signed_headers:
        lines.append(f"{name}:{canonical_header_value(req.headers.get(name, []))}")
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The SigV4 string to sign for ``canonical`` (a canonical request)."""
    digest = hashlib.sha256(wire_bytes(canonical)).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


# -- parsing helpers ------------------------------------------------------------------------


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def parse_amz_date(value: str) -> datetime | None:
    """Parse an ISO 8601 basic timestamp (``20130524T000000Z``); ``None`` if malformed."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not digits.isdigit() or not digits.isascii():
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return _utc(parsed)


def _format_time(when: datetime) -> str:
    if when.year < 1000:
        return when.strftime(AMZ_DATE_FORMAT)  # as strftime pads such years (not at all)
    return "%04d%02d%02dT%02d%02d%02dZ" % (  # noqa: UP031 - several times faster than strftime
        when.year, when.month, when.day, when.hour, when.minute, when.second,
    )  # fmt: skip


@dataclass(frozen=True)
class Credential:
    """The parsed ``Credential`` of an Authorization header or ``X-Amz-Credential``."""

    access_key: str
    date: str
    region: str
    service: str
    terminator: str

    @property
    def scope(self) -> str:
        """``date/region/service/aws4_request``."""
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def _parse_credential(value: str, error: str) -> Credential:
    parts = value.split("/")
    if len(parts) < 5 or not parts[0]:
        raise S3Error(
            error,
            f"Error parsing the Credential parameter; expecting "
            f"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request, got '{value}'.",
        )
    credential = Credential("/".join(parts[:-4]), *parts[-4:])
    if len(credential.date) != 8 or not credential.date.isdigit():
        raise S3Error(error, f'Invalid credential date "{credential.date}"; expecting YYYYMMDD.')
    if credential.service != SERVICE:
        raise S3Error(
            error,
            f"Error parsing the Credential/X-Amz-Credential parameter; incorrect service "
            f'"{credential.service}". This endpoint belongs to "{SERVICE}".',
        )
    if credential.terminator != TERMINATOR:
        raise S3Error(
            error,
            f"Error parsing the Credential/X-Amz-Credential parameter; incorrect terminal "
            f'"{credential.terminator}". This endpoint uses "{TERMINATOR}".',
        )
    if not credential.region:
        raise S3Error(error, "Error parsing the Credential parameter; the region is empty.")
    return credential


def _parse_signed_headers(value: str, error: str) -> list[str]:
    names = value.split(";")
    if not value or any(not name or name != name.lower().strip() for name in names):
        raise S3Error(error, f"Invalid SignedHeaders: '{value}'.")
    if "host" not in names:
        raise S3Error(error, "The host header must be signed.")
    return names


def _check_unsigned_amz_headers(req: SignedRequest, signed: Sequence[str]) -> None:
    missing = sorted(
        name
        for name in req.headers
        if name.startswith("x-amz-") and name not in signed and name not in _UNSIGNED_AMZ_ALLOWED
    )
    if missing:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(missing),
        )


def _check_region(credential: Credential, region_check: str | None, error: str) -> None:
    if region_check is not None and credential.region != region_check:
        raise S3Error(
            error,
            f"The authorization header is malformed; the region '{credential.region}' is "
            f"wrong; expecting '{region_check}'",
            Region=region_check,
        )


def _secret(creds: CredentialSource, access_key: str) -> str:
    secret = creds.secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    return secret


def _compare(
    provided: str,
    key: bytes,
    amz_date: str,
    scope: str,
    canonical: str,
    access_key: str,
) -> None:
    to_sign = string_to_sign(amz_date, scope, canonical)
    expected = hmac_hex(key, to_sign)
    if not hmac.compare_digest(expected.encode("ascii"), wire_bytes(provided)):
        raise S3Error(
            "SignatureDoesNotMatch",
            StringToSign=to_sign,
            CanonicalRequest=canonical,
            SignatureProvided=provided,
            AWSAccessKeyId=access_key,
        )


# -- verification ---------------------------------------------------------------------------


def parse_authorization(value: str) -> tuple[Credential, list[str], str]:
    """Split a SigV4 ``Authorization`` header into credential, signed headers, signature.

    :raises S3Error: ``AuthorizationHeaderMalformed``, or ``NotImplemented`` for SigV4a.
    """
    value = value.strip()
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        if algorithm.startswith("AWS4-ECDSA"):
            raise S3Error("NotImplemented", "Signature Version 4A is not supported.")
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"The authorization header is malformed; the algorithm '{algorithm}' is not "
            f"supported; expecting '{ALGORITHM}'.",
        )
    fields: dict[str, str] = {}
    for component in rest.split(","):
        component = component.strip()
        if not component:
            continue
        name, eq, field_value = component.partition("=")
        if not eq or name.strip() in fields:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"The authorization header is malformed; unexpected '{component}'.",
            )
        fields[name.strip()] = field_value.strip()
    try:
        credential_value = fields["Credential"]
        signed_value = fields["SignedHeaders"]
        signature = fields["Signature"]
    except KeyError as missing:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"The authorization header is malformed; missing {missing.args[0]}.",
        ) from None
    credential = _parse_credential(credential_value, "AuthorizationHeaderMalformed")
    signed = _parse_signed_headers(signed_value, "AuthorizationHeaderMalformed")
    return credential, signed, signature


def verify_header(
    req: SignedRequest,
    creds: CredentialSource,
    now: datetime,
    region_check: str | None = None,
) -> AuthResult:
    """Verify a request signed with a SigV4 ``Authorization`` header.

    :param now: the server's current time (aware, or naive UTC).
    :param region_check: if given, the only region accepted in the scope.
    :raises S3Error: ``AuthorizationHeaderMalformed``, ``AccessDenied``,
        ``RequestTimeTooSkewed``, ``InvalidRequest``, ``InvalidArgument``,
        ``InvalidAccessKeyId`` or ``SignatureDoesNotMatch``.
    """
    authorization = req.header("authorization")
    if authorization is None:
        raise S3Error("AccessDenied", "Missing Authorization header.")
    credential, signed, signature = parse_authorization(authorization)

    amz_date_value = req.header("x-amz-date")
    if amz_date_value is not None:
        when = parse_amz_date(amz_date_value.strip())
    else:
        date_value = req.header("date")
        when = _parse_http_date(date_value) if date_value is not None else None
    if when is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    amz_date = _format_time(when)
    if credential.date != amz_date[:8]:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"The authorization header is malformed; Invalid credential date. Date is not "
            f'the same as X-Amz-Date: "{credential.date}".',
        )
    _check_region(credential, region_check, "AuthorizationHeaderMalformed")

    now = _utc(now)
    if abs(now - when) > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            RequestTime=amz_date,
            ServerTime=_format_time(now),
            MaxAllowedSkewMilliseconds=str(int(MAX_SKEW.total_seconds() * 1000)),
        )

    payload_hash = req.header("x-amz-content-sha256")
    if payload_hash is None:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    payload_hash = payload_hash.strip()
    if not valid_payload_hash(payload_hash):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
            "or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=payload_hash,
        )
    _check_unsigned_amz_headers(req, signed)

    secret = _secret(creds, credential.access_key)
    key = signing_key(secret, credential.date, credential.region)
    canonical = canonical_request(req, signed, payload_hash)
    _compare(signature, key, amz_date, credential.scope, canonical, credential.access_key)
    return AuthResult(
        access_key=credential.access_key,
        method="v4-header",
        payload_hash=payload_hash,
        seed_signature=signature,
        signing_key=key,
        scope=credential.scope,
        amz_date=amz_date,
    )


_PRESIGN_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


def verify_presigned(
    req: SignedRequest,
    creds: CredentialSource,
    now: datetime,
    region_check: str | None = None,
) -> AuthResult:
    """Verify a request authenticated by SigV4 query parameters (a presigned URL).

    The payload hash is ``UNSIGNED-PAYLOAD`` unless ``X-Amz-Content-Sha256`` is
    given in the query or ``x-amz-content-sha256`` as a header.

    :raises S3Error: ``AuthorizationQueryParametersError``, ``AccessDenied``
        (expired or not yet valid), ``InvalidAccessKeyId`` or
        ``SignatureDoesNotMatch``.
    """
    error = "AuthorizationQueryParametersError"
    params: dict[str, str] = {}
    for name, value in req.query:
        params.setdefault(name, value)
    if any(name not in params for name in _PRESIGN_REQUIRED):
        raise S3Error(
            error,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters.",
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Error(error, f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    credential = _parse_credential(params["X-Amz-Credential"], error)
    when = parse_amz_date(params["X-Amz-Date"])
    if when is None:
        raise S3Error(
            error, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        )
    amz_date = params["X-Amz-Date"]
    expires_value = params["X-Amz-Expires"]
    digits = expires_value.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise S3Error(error, "X-Amz-Expires should be a number")
    if expires_value.startswith("-") or not digits.strip("0"):
        # valid for no time at all: expired the moment it was signed
        raise S3Error("AccessDenied", "Request has expired", **{"X-Amz-Expires": expires_value})
    # (a digit string too long for int() is far beyond the limit anyway)
    expires = int(digits) if len(digits) < 20 else MAX_PRESIGN_EXPIRES + 1
    if expires > MAX_PRESIGN_EXPIRES:
        # AWS's answer: 400 AuthorizationQueryParametersError, with this text
        raise S3Error(
            error,
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            f"X-Amz-Expires must be less than {MAX_PRESIGN_EXPIRES} seconds",
        )
    if credential.date != amz_date[:8]:
        raise S3Error(
            error,
            f'Invalid credential date "{credential.date}". This date is not the same as '
            "X-Amz-Date.",
        )
    _check_region(credential, region_check, error)
    signed = _parse_signed_headers(params["X-Amz-SignedHeaders"], error)

    now = _utc(now)
    if when - now > MAX_SKEW:
        raise S3Error("AccessDenied", "Request is not valid yet")
    if now > when + timedelta(seconds=expires):
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            **{
                "X-Amz-Expires": str(expires),
                "Expires": (when + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )

    payload_hash = params.get("X-Amz-Content-Sha256")
    if payload_hash is None:
        payload_hash = req.header("x-amz-content-sha256")
    payload_hash = UNSIGNED_PAYLOAD if payload_hash is None else payload_hash.strip()
    if not valid_payload_hash(payload_hash):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=payload_hash,
        )
    _check_unsigned_amz_headers(req, signed)

    secret = _secret(creds, credential.access_key)
    key = signing_key(secret, credential.date, credential.region)
    canonical = canonical_request(req, signed, payload_hash, exclude_query="X-Amz-Signature")
    signature = params["X-Amz-Signature"]
    _compare(signature, key, amz_date, credential.scope, canonical, credential.access_key)
    return AuthResult(
        access_key=credential.access_key,
        method="v4-presigned",
        payload_hash=payload_hash,
        seed_signature=signature,
        signing_key=key,
        scope=credential.scope,
        amz_date=amz_date,
    )


# -- signing (tests, benchmarks) ------------------------------------------------------------


def _raw(path: str | bytes) -> bytes:
    return path if isinstance(path, bytes) else wire_bytes(path)


def sign_request(
    method: str,
    url_path_raw: str | bytes,
    query_pairs: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    access_key: str,
    secret: str,
    *,
    region: str = "us-east-1",
    now: datetime,
    payload_hash: str = EMPTY_SHA256,
) -> dict[str, str]:
    """Sign a request with a SigV4 ``Authorization`` header.

    :param url_path_raw: the path as it will be sent (already percent-encoded).
    :param query_pairs: decoded query parameters.
    :param headers: headers to sign; must include ``host`` (with its port).
    :returns: the headers to add: ``authorization``, ``x-amz-date`` and
        ``x-amz-content-sha256``.
    """
    amz_date = _format_time(_utc(now))
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    merged: dict[str, list[str]] = {}
    for name, value in headers.items():
        merged.setdefault(name.lower(), []).append(value)
    for name, value in added.items():
        merged[name] = [value]
    if "host" not in merged:
        raise ValueError("the host header is required")
    req = SignedRequest(method.upper(), _raw(url_path_raw), list(query_pairs), b"", merged)
    signed = sorted(merged)
    scope = f"{amz_date[:8]}/{region}/{SERVICE}/{TERMINATOR}"
    key = signing_key(secret, amz_date[:8], region)
    canonical = canonical_request(req, signed, payload_hash)
    signature = hmac_hex(key, string_to_sign(amz_date, scope, canonical))
    added["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature}"
    )
    return added


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Encode decoded query pairs for the wire, in the given order."""
    return "&".join(
        f"{uri_encode(wire_bytes(k), False)}={uri_encode(wire_bytes(v), False)}" for k, v in pairs
    )


def presign_url(
    method: str,
    url_path_raw: str | bytes,
    query_pairs: Sequence[tuple[str, str]],
    host: str,
    access_key: str,
    secret: str,
    *,
    region: str = "us-east-1",
    now: datetime,
    expires: int = 3600,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Presign a request with SigV4 query parameters.

    :param host: the ``host`` header the request will carry (with its port).
    :param headers: further headers to sign besides ``host``.
    :returns: the request target, ``path?query``, with ``X-Amz-Signature`` last.
    """
    amz_date = _format_time(_utc(now))
    scope = f"{amz_date[:8]}/{region}/{SERVICE}/{TERMINATOR}"
    merged: dict[str, list[str]] = {"host": [host]}
    for name, value in (headers or {}).items():
        merged.setdefault(name.lower(), []).append(value)
    signed = sorted(merged)
    pairs = list(query_pairs) + [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", ";".join(signed)),
    ]
    raw_path = _raw(url_path_raw)
    req = SignedRequest(method.upper(), raw_path, pairs, b"", merged)
    key = signing_key(secret, amz_date[:8], region)
    canonical = canonical_request(req, signed, UNSIGNED_PAYLOAD)
    signature = hmac_hex(key, string_to_sign(amz_date, scope, canonical))
    pairs.append(("X-Amz-Signature", signature))
    return wire_text(raw_path) + "?" + encode_query(pairs)
