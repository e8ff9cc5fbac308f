"""The dispatch table: (method, level, sub-resources) -> handler.

``level`` is ``service`` (no bucket), ``bucket`` or ``object``. Sub-resources are
the query parameters that select an operation; anything else in the query
(``x-id``, ``prefix``, ``response-*`` ...) never changes which operation runs. A
request naming a sub-resource the table lacks is ``NotImplemented``: it never
falls through to a plainer operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from s4d.errors import S3Error

#: Query parameters that name an S3 sub-resource or operation.
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
        "metrics", "notification", "object-lock", "ownershipControls", "partNumber", "policy",
        "policyStatus", "publicAccessBlock", "renameObject", "replication", "requestPayment",
        "restore", "retention", "select", "session", "sql", "tagging", "torrent", "uploadId",
        "uploads", "versioning", "versions", "website",
    }
)  # fmt: skip
#: Sub-resources that only qualify a read (GET/HEAD) of an object.
READ_QUALIFIERS = frozenset({"partNumber"})


def subresources(params: dict[str, str]) -> frozenset[str]:
    """The sub-resources named by a query."""
    return frozenset(k for k in params if k in SUBRESOURCES)


@dataclass
class Response:
    """A handler's answer, rendered by the app."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Writes the body itself (large objects); called with the request.
    stream: Callable[[Any], Awaitable[None]] | None = None


Handler = Callable[[Any], Awaitable[Response]]


class DispatchTable:
    """Maps requests to handlers."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, frozenset[str]], Handler] = {}

    def add(
        self, method: str, level: str, subs: str | tuple[str, ...] = ()
    ) -> Callable[[Handler], Handler]:
        """Register a handler (usable as a decorator)."""
        key_subs = frozenset((subs,) if isinstance(subs, str) else subs)

        def register(handler: Handler) -> Handler:
            self._routes[(method, level, key_subs)] = handler
            if method == "GET" and level == "object" and not key_subs:
                self._routes.setdefault(("GET", level, frozenset({"partNumber"})), handler)
            return handler

        return register

    def find(self, method: str, level: str, subs: frozenset[str]) -> Handler:
        """The handler for a request; ``NotImplemented``/``MethodNotAllowed`` otherwise."""
        handler = self._routes.get((method, level, subs))
        if handler is not None:
            return handler
        if method == "HEAD":
            handler = self._routes.get(("HEAD", level, subs - READ_QUALIFIERS))
            if handler is not None:
                return handler
        if subs:
            raise S3Error(
                "NotImplemented", f"{method} with ?{'&'.join(sorted(subs))} is not implemented."
            )
        raise S3Error("MethodNotAllowed")
