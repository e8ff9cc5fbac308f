"""Helpers every handler uses: XML responses, the owner, header reading."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from s4d.errors import S3Error
from s4d.s3.dispatch import Response
from s4d.s3.xml import Node, render


def xml_response(root: str, children: list[Node], status: int = 200, **headers: str) -> Response:
    """A Response carrying an S3 XML document."""
    hdrs = {"Content-Type": "application/xml"}
    hdrs.update(headers)
    return Response(status=status, headers=hdrs, body=render(root, children))


def owner(req: Any) -> list[Node]:
    """The Owner element's children: one owner per server (the root credentials)."""
    key = getattr(req.auth, "access_key", None) or "anonymous"
    return [("ID", hashlib.sha256(key.encode()).hexdigest()), ("DisplayName", "s4d")]


def body_of(req: Any) -> bytes:
    """The small, in-memory request body (``MaxMessageLengthExceeded`` if it was too big)."""
    if getattr(req, "body_too_large", False):
        raise S3Error("MaxMessageLengthExceeded")
    return req.content.getvalue()  # type: ignore[no-any-return]


def int_param(req: Any, name: str, default: int, low: int = 0, high: int | None = None) -> int:
    """An integer query parameter; ``InvalidArgument`` if it is not one."""
    raw = req.params.get(name)
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


def url_encoder(req: Any) -> Any:
    """The encoder for keys in listings: identity, or URL encoding when asked."""
    encoding = req.params.get("encoding-type")
    if encoding is None:
        return lambda s: s
    if encoding.lower() != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request",
                      ArgumentName="encoding-type")
    return lambda s: quote(s, safe="/") if s is not None else None


def require_bucket_only(req: Any) -> str:
    """The bucket of a bucket-level request."""
    return req.target.bucket  # type: ignore[no-any-return]
