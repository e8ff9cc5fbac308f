"""The dispatch table: one lookup, at header time, decides everything about a request.

A :class:`Route` is found by (method, level, sub-resources, copy): ``level`` is
``service`` (no bucket), ``bucket`` or ``object``; sub-resources are the query
parameters that select an operation (anything else in the query, ``x-id``,
``prefix``, ``response-*`` ..., never changes which operation runs); ``copy``
is whether a PUT of an object names an ``x-amz-copy-source`` (CopyObject and
UploadPartCopy are routes of their own). The route says, before any body byte
is read, how the body is taken (:class:`BodyMode`), which S3 action it is (for
authorization) and which handler answers. A request naming a sub-resource the
table lacks gets a route that answers ``NotImplemented``: it never falls through
to a plainer operation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from s4d.errors import S3Error
from s4d.s3.call import Handler, Response, S3Call

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


def subresources(params: Mapping[str, str]) -> frozenset[str]:
    """The sub-resources named by a query."""
    return frozenset(k for k in params if k in SUBRESOURCES)


class BodyMode(enum.Enum):
    """How a route takes its request body."""

    #: kept in memory, up to a cap (XML documents); the default
    SMALL = "small"
    #: streamed through a body sink into the store (PutObject, UploadPart)
    STREAM = "stream"
    #: a multipart/form-data upload parsed as it streams (POST Object)
    FORM = "form"


@dataclass(frozen=True)
class Route:
    """One S3 operation: what it is and everything the seam decides before the body.

    :ivar operation: the S3 operation's name (``PutObject``).
    :ivar action: the permission it needs (``s3:PutObject``); authorization
        decides on this before any body byte is read.
    :ivar handler: the handler that answers it.
    :ivar body: how its body is taken.
    :ivar public: answered without credentials, and without checking any
        (a CORS preflight, which browsers send unsigned).
    """

    operation: str
    action: str
    handler: Handler
    body: BodyMode = BodyMode.SMALL
    public: bool = False


def route(
    operation: str,
    handler: Handler,
    body: BodyMode = BodyMode.SMALL,
    action: str | None = None,
    public: bool = False,
) -> Route:
    """A :class:`Route` whose action is ``s3:<operation>`` unless said otherwise."""
    return Route(operation, action or f"s3:{operation}", handler, body, public)


@dataclass(frozen=True)
class RouteKey:
    """Where a route sits in the table."""

    method: str
    level: str
    subresources: frozenset[str] = frozenset()
    copy: bool = False


def refusal(error: S3Error) -> Route:
    """A route that answers ``error`` (after reading a small body, as S3 does)."""

    async def refuse(call: S3Call) -> Response:
        raise error

    return Route("Refused", "", refuse)


class DispatchTable:
    """Maps requests to routes."""

    def __init__(self, entries: Iterable[tuple[RouteKey, Route]] = ()) -> None:
        #: routes by (method, level, sub-resources, copy): a plain tuple is quicker to hash
        self._routes: dict[tuple[str, str, frozenset[str], bool], Route] = {}
        for key, found in entries:
            self.add(key, found)

    def add(self, key: RouteKey, found: Route) -> None:
        """Register ``found`` at ``key`` (a plain GET of an object also serves ``?partNumber``)."""
        plain = (key.method, key.level, key.subresources, key.copy)
        if plain in self._routes:
            raise ValueError(f"two routes for {key}")
        self._routes[plain] = found
        if key.method == "GET" and key.level == "object" and not key.subresources:
            self._routes.setdefault(("GET", "object", READ_QUALIFIERS, False), found)

    def find(self, method: str, level: str, subs: frozenset[str], copy: bool = False) -> Route:
        """The route for a request (one answering ``NotImplemented`` if there is none)."""
        routes = self._routes
        found = routes.get((method, level, subs, copy))
        if found is None and copy:
            found = routes.get((method, level, subs, False))
        if found is None and method == "HEAD":
            found = routes.get(("HEAD", level, subs - READ_QUALIFIERS, False))
        if found is not None:
            return found
        if subs:
            return refusal(
                S3Error(
                    "NotImplemented", f"{method} with ?{'&'.join(sorted(subs))} is not implemented."
                )
            )
        return refusal(S3Error("MethodNotAllowed"))

    def routes(self) -> dict[RouteKey, Route]:
        """Every registered route (for documentation and tests)."""
        return {RouteKey(*plain): found for plain, found in self._routes.items()}
