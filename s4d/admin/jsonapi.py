"""JSON in and out for the admin API: one error type, one renderer, the body parser.

Every admin answer is JSON (or 204 with no body): a success is the route's
value rendered with :func:`json_body`, a failure an :class:`ApiError` (or the
guard's :class:`~s4d.admin.guard.AdminDenied`) rendered as ``{"error": "..."}``
with its status. Error messages never carry a secret, a password or a token.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.server import Request

#: The largest admin request body read (bytes); see ``S3Request.handleContentChunk``.
MAX_BODY = 64 << 10


class ApiError(Exception):
    """A failed admin call: answered ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_body(request: Request, value: Any, status: int = 200) -> bytes:
    """Set the status and type of a JSON answer; its bytes."""
    body = json.dumps(value, separators=(",", ":")).encode()
    request.setResponseCode(status)
    headers = request.responseHeaders
    headers.setRawHeaders(b"Content-Type", [b"application/json"])
    headers.setRawHeaders(b"Content-Length", [str(len(body)).encode()])
    headers.setRawHeaders(b"Cache-Control", [b"no-store"])
    return body


def no_content(request: Request) -> bytes:
    """A 204 answer."""
    request.setResponseCode(204)
    return b""


def error_body(request: IRequest | Request, status: int, message: str) -> bytes:
    """An error answer: ``{"error": message}`` (error handlers get an ``IRequest``)."""
    assert isinstance(request, Request)
    return json_body(request, {"error": message}, status)


def read_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; :class:`ApiError` (400 or 413) otherwise."""
    if getattr(request, "ops_body_too_large", False):
        raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes")
    content = request.content
    raw = content.getvalue() if content is not None else b""
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes")
    try:
        value = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return value
