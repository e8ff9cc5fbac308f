"""JSON in and out for the admin API: bodies, query parameters, and one error mapping.

Every admin route answers JSON (or 204), and every error ``{"error": "..."}``
with its status, never an S3 XML document or an HTML page: :func:`json_error`
is the one error handler each admin Klein app installs
(``app.handle_errors(Exception)(json_error)``). It maps

* :class:`ApiError` (bad input found by a route) to its status;
* :class:`~s4d.admin.guard.AdminDenied` (the guard's 401 and 403) to its status;
* :class:`~s4d.errors.S3Error` from the engine to its S3 status and message
  (``BucketNotEmpty`` to 400, as S4 answers it);
* :class:`~s4d.engine.MaintenanceBusy` to 409;
* Klein's own routing errors (no such route 404, wrong method 405);
* anything else to 500, logged with its traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException

from s4d.admin.guard import AdminCaller, AdminDenied
from s4d.engine import MaintenanceBusy
from s4d.errors import S3Error

log = Logger()

#: S3 errors the admin API answers with another status than S3's (S4's choices).
STATUS_OVERRIDES = {"BucketNotEmpty": 400}


class ApiError(Exception):
    """Bad input to an admin route: answered ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(request: IRequest, value: Any, status: int = 200) -> bytes:
    """``value`` as the JSON body of the response, with ``status``."""
    body = json.dumps(value, separators=(",", ":")).encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    request.setHeader(b"Cache-Control", b"no-store")
    return body


def no_content(request: IRequest) -> bytes:
    """An empty 204 response."""
    request.setResponseCode(204)
    return b""


def json_error(self: Any, request: IRequest, failure: Failure) -> bytes:  # noqa: N805
    """The admin API's one error handler (see the module docstring).

    Installed on a class-scoped Klein app, it is called with the app's instance as ``self``.
    """
    error = failure.value
    if isinstance(error, ApiError | AdminDenied):
        status, message = error.status, error.message
        if status == 401:
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="s4d"')
    elif isinstance(error, S3Error):
        status = STATUS_OVERRIDES.get(error.code, error.status)
        message = error.message
    elif isinstance(error, MaintenanceBusy):
        status, message = 409, str(error)
    elif isinstance(error, HTTPException):
        status = error.code or 500
        message = "no such route" if status == 404 else (error.name or "error").lower()
    else:
        log.failure("admin API error on {uri}", failure, uri=request.uri)
        status, message = 500, "internal error"
    return json_response(request, {"error": message}, status)


def note_caller(request: IRequest, caller: AdminCaller) -> AdminCaller:
    """Tell the access log who called (the site reads ``identity_label``); returns ``caller``."""
    if hasattr(request, "identity_label"):
        request.identity_label = caller.username
    return caller


def read_json(request: IRequest, limit: int = 64 << 10) -> dict[str, Any]:
    """The request body as a JSON object; :class:`ApiError` 400 if it is not one."""
    content = request.content
    raw = content.read(limit + 1) if content is not None else b""
    if len(raw) > limit:
        raise ApiError(413, "the request body is too large")
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return value


class Query:
    """A request's query parameters, each read at most once; the unread ones are refused.

    :param aliases: groups of names meaning the same parameter (``max-keys``,
        ``max_keys``); the first of each group is the name routes ask for.
    """

    def __init__(self, request: IRequest, aliases: Iterable[tuple[str, ...]] = ()) -> None:
        self._values: dict[str, str] = {}
        canonical = {name: group[0] for group in aliases for name in group}
        args: dict[bytes, list[bytes]] = getattr(request, "args", None) or {}
        for raw_name, raw_values in args.items():
            try:
                name = raw_name.decode("utf-8")
                value = raw_values[-1].decode("utf-8") if raw_values else ""
            except UnicodeDecodeError:
                raise ApiError(400, "the query is not valid UTF-8") from None
            name = canonical.get(name, name)
            if name in self._values:
                raise ApiError(400, f"query parameter {name} is given twice")
            self._values[name] = value

    def text(self, name: str, default: str = "") -> str:
        """A parameter as text."""
        return self._values.pop(name, default)

    def optional(self, name: str) -> str | None:
        """A parameter as text, None when absent or empty."""
        value = self._values.pop(name, "")
        return value or None

    def flag(self, name: str, default: bool = False) -> bool:
        """``true``/``false`` (also ``1``/``0``); absent or empty: ``default``."""
        value = self._values.pop(name, "").strip().lower()
        if not value:
            return default
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        raise ApiError(400, f"{name} must be true or false")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        """A number from ``low`` to ``high``; absent or empty: ``default``."""
        value = self._values.pop(name, "").strip()
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ApiError(400, f"{name} must be a number") from None
        if not low <= number <= high:
            raise ApiError(400, f"{name} must be from {low:g} to {high:g}")
        return number

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        """A whole number from ``low`` to ``high``; absent or empty: ``default``."""
        value = self._values.pop(name, "").strip()
        if not value:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
        return int(value)

    def done(self) -> None:
        """Refuse the parameters no route asked for (they would be silently ignored)."""
        if self._values:
            names = ", ".join(sorted(self._values))
            raise ApiError(400, f"unknown query parameter: {names}")
