"""The typed seam between HTTP and the S3 handlers: one call record, one response value.

When a request's headers are in, the HTTP seam (:mod:`s4d.s3.request`) turns it
into one immutable :class:`S3Call`: the bucket and key, the sub-resources and
parameters, the headers a handler may read, the authenticated identity, and
the body (a small in-memory document, a streaming upload, or a form upload).
A handler takes the call and returns a :class:`Response`; it never sees the
Twisted request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from twisted.internet.interfaces import IPushProducer

from s4d.auth.access import AccessGate, BucketAccess
from s4d.auth.credentials import IdentitySource
from s4d.auth.principal import Principal
from s4d.auth.sigv4 import AuthResult
from s4d.errors import S3Error
from s4d.s3.body import BodySink
from s4d.s3.headers import CallHeaders
from s4d.s3.postform import FormUploadSink

#: Largest body kept in memory for requests that are not uploads (XML documents).
MAX_SMALL_BODY = 4 << 20


class SmallBody:
    """A request body kept in memory (XML documents), capped at :data:`MAX_SMALL_BODY`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        #: more than :data:`MAX_SMALL_BODY` arrived (and was dropped)
        self.too_large = False

    def add(self, data: bytes) -> bool:
        """Keep ``data``; False (and nothing kept) once the body is over the cap."""
        if self.too_large or self._size + len(data) > MAX_SMALL_BODY:
            self.too_large = True
            self._parts.clear()
            return False
        self._parts.append(data)
        self._size += len(data)
        return True

    def read(self) -> bytes:
        """The whole body (``MaxMessageLengthExceeded`` if it was too big)."""
        if self.too_large:
            raise S3Error("MaxMessageLengthExceeded")
        return b"".join(self._parts)


class S3Call(NamedTuple):
    """One S3 request as handlers see it, built once when its headers are in.

    Immutable (a named tuple: the cheapest immutable record to build, once per request).

    :ivar method: the HTTP method, upper case.
    :ivar bucket: the bucket named (empty for service-level requests).
    :ivar key: the object key (empty for bucket-level requests).
    :ivar virtual_host: the bucket came from the Host header.
    :ivar params: the query parameters (the last value of a repeated name).
    :ivar subresources: the parameters that select the operation.
    :ivar headers: the request headers.
    :ivar identity: who signed the request; None for an anonymous one.
    :ivar request_id: this request's id (``x-amz-request-id``).
    :ivar host_id: this server's id (``x-amz-id-2``).
    :ivar raw_path: the path as on the wire (error documents name it).
    :ivar secure: the request came over TLS.
    :ivar content: the in-memory body of a request that is not an upload (None: no
        body is taken).
    :ivar upload: the streaming body of PutObject and UploadPart.
    :ivar form: the streaming body of a browser form upload (POST Object).
    :ivar principal: the user who signed (None: anonymous, or a form upload whose
        policy names its signer).
    :ivar bucket_owner: the user who owns the bucket named (None: no bucket, no
        such bucket, or an owner unknown to this server).
    :ivar gate: the request's authorization decision, for what the handler checks
        once it has read a version (its ACL; whether a missing key may be told).
    :ivar identities: users by id (to resolve and show ACL grantees).
    :ivar access: the bucket's access configuration (owner, ACL, policy, public-access
        block, ownership) as the decision saw it; None: no bucket, or none such.
    """

    method: str
    bucket: str
    key: str
    params: Mapping[str, str]
    subresources: frozenset[str]
    headers: CallHeaders
    identity: AuthResult | None
    request_id: str = ""
    host_id: str = ""
    raw_path: bytes = b"/"
    virtual_host: bool = False
    secure: bool = False
    content: SmallBody | None = None
    upload: BodySink | None = None
    form: FormUploadSink | None = None
    principal: Principal | None = None
    bucket_owner: Principal | None = None
    gate: AccessGate | None = None
    access: BucketAccess | None = None
    identities: IdentitySource | None = None

    def header(self, name: str) -> str | None:
        """The first value of request header ``name``, or None."""
        return self.headers.get(name)

    def check_object(self, stored_acl: object) -> None:
        """Authorize a read of a version whose ``extra`` ACL is ``stored_acl`` (see
        :meth:`~s4d.auth.access.AccessGate.check_object`)."""
        if self.gate is not None:
            self.gate.check_object(stored_acl)

    def document(self) -> bytes:
        """The small request body (``MaxMessageLengthExceeded`` if it was too big)."""
        return self.content.read() if self.content is not None else b""

    @property
    def level(self) -> str:
        """``service``, ``bucket`` or ``object``: what the request addresses."""
        return "object" if self.key else "bucket" if self.bucket else "service"


class ResponseWriter(Protocol):
    """Where a streamed response body goes (the Twisted request, seen narrowly)."""

    def write(self, data: bytes) -> None:
        """Send bytes of the body."""

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        """Let ``producer`` be paused while the client is slow to read."""

    def unregisterProducer(self) -> None:
        """Stop telling the producer about the client's pace."""

    @property
    def gone(self) -> bool:
        """The response is finished or the client went away."""

    def abort(self) -> None:
        """Drop the connection: the body cannot be completed correctly."""


@dataclass
class Response:
    """A handler's answer: status, headers and a body, or a function that streams it."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: writes the body itself (large objects, kept-alive completions)
    stream: Callable[[ResponseWriter], Awaitable[None]] | None = None


#: What every S3 handler is: an async function of a call.
Handler = Callable[[S3Call], Awaitable[Response]]
