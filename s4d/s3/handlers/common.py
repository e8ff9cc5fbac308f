"""Helpers every handler uses: XML responses, the owner, query parameters."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from urllib.parse import quote

from s4d.engine import check_version_id
from s4d.errors import S3Error
from s4d.s3.call import Response, S3Call
from s4d.s3.xml import Node, render

_TOKEN_PREFIX = b"s4d1:"

#: Turns a key (or None) into how a listing shows it.
KeyEncoder = Callable[[str], str]


def xml_response(
    root: str, children: list[Node], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A Response carrying an S3 XML document (and any ``headers`` besides its type)."""
    hdrs = {"Content-Type": "application/xml"}
    hdrs.update(headers or {})
    return Response(status=status, headers=hdrs, body=render(root, children))


def owner(call: S3Call) -> list[Node]:
    """The Owner element's children: the bucket's owner (else the caller).

    ``ID`` is the user's canonical id, ``DisplayName`` its user name.
    """
    who = call.bucket_owner or call.principal
    if who is None:
        return [("ID", hashlib.sha256(b"anonymous").hexdigest()), ("DisplayName", "anonymous")]
    return [("ID", who.canonical_id), ("DisplayName", who.username)]


def owner_xml(call: S3Call) -> str:
    """The Owner element, rendered."""
    oid, name = (str(v) for _, v in owner(call))
    return f"<Owner><ID>{oid}</ID><DisplayName>{name}</DisplayName></Owner>"


def int_param(call: S3Call, name: str, default: int, low: int = 0, high: int | None = None) -> int:
    """An integer query parameter; ``InvalidArgument`` if it is not one."""
    raw = call.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", f"{name} must be an integer.", ArgumentName=name) from None
    if value < low:
        raise S3Error("InvalidArgument", f"{name} must be at least {low}.", ArgumentName=name)
    if high is not None:
        value = min(value, high)
    return value


def encode_token(last: str) -> str:
    """An opaque continuation token for a page that ended at ``last`` (a key, a bucket name)."""
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + last.encode("utf-8")).decode()


def decode_token(token: str) -> str:
    """The position a continuation token stands for; ``InvalidArgument`` if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
        if not raw.startswith(_TOKEN_PREFIX):
            raise ValueError
        return raw[len(_TOKEN_PREFIX) :].decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
        ) from None


def url_encoder(call: S3Call) -> KeyEncoder:
    """The encoder for keys in listings: identity, or URL encoding when asked."""
    encoding = call.params.get("encoding-type")
    if encoding is None:
        return lambda s: s
    if encoding.lower() != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
        )
    return lambda s: quote(s, safe="/")


def requested_version(call: S3Call) -> str | None:
    """The ``versionId`` a request names, if any; ``InvalidArgument`` if it is malformed."""
    version_id = call.params.get("versionId")
    if not version_id:
        return None
    check_version_id(version_id)
    return version_id
