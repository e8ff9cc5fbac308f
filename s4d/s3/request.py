"""The HTTP seam: a Request that streams bodies and a channel that authenticates early.

twisted.web normally buffers a whole request body before any resource runs.
:class:`S3Channel` instead asks the request to :meth:`S3Request.prepare` as soon
as the headers are in: the request is addressed and authenticated there, before
``100 Continue`` goes out, and an upload gets a body sink that receives every
chunk as it arrives (see :mod:`s4d.s3.body`). A request rejected at that point
with a body still to come is answered at once and the connection closed, so the
body is never read, let alone stored.
"""

from __future__ import annotations

import base64
import io
import itertools
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from twisted.logger import Logger
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol
from twisted.web.http_headers import Headers
from twisted.web.server import Request, Site

from s4d.errors import S3Error
from s4d.s3.addressing import Target, resolve

if TYPE_CHECKING:
    from s4d.s3.body import BodySink
    from s4d.s3.front import S3Front

#: Largest body kept in memory for requests that are not uploads (XML documents).
MAX_SMALL_BODY = 4 << 20
#: Query parameters that never select an operation.
NEUTRAL_PARAMS = frozenset({"x-id"})


_ID_PREFIX = secrets.token_hex(4).upper()
_HOST_ID = base64.b64encode(secrets.token_bytes(24)).decode()
_counter = itertools.count(1)


def next_request_id() -> tuple[str, str]:
    """A request id unique within this server (process prefix + counter) and the host id."""
    return f"{_ID_PREFIX}{next(_counter):08X}", _HOST_ID


def parse_query(raw_query: bytes) -> list[tuple[str, str]]:
    """Query pairs in wire order, blank values kept; ``InvalidArgument`` if undecodable."""
    if not raw_query:
        return []
    try:
        text = raw_query.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=1000)
    except (UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The query string is not valid.") from None


class S3Request(Request):
    """A request whose body goes to a sink instead of a buffer."""

    _parsePOSTFormSubmission = False
    log = Logger()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False
        self.request_id, self.host_id = next_request_id()
        self.target: Target | None = None
        self.query: list[tuple[str, str]] = []
        self.params: dict[str, str] = {}
        self.raw_path = b"/"
        self.raw_query = b""
        self.auth: Any = None
        self.early_error: S3Error | None = None
        self.sink: BodySink | None = None
        self.body_too_large = False
        self.rejected = False
        self.setHeader(b"x-amz-request-id", self.request_id.encode())
        self.setHeader(b"x-amz-id-2", self.host_id.encode())

    @property
    def front(self) -> S3Front:
        """The S3 front end this request belongs to."""
        return self.channel.site.front  # type: ignore[no-any-return]

    def header(self, name: str) -> str | None:
        """One request header as text (the first, if repeated)."""
        raw = self.requestHeaders.getRawHeaders(name.encode("ascii"))
        return raw[0].decode("latin-1") if raw else None

    def prepare(self, command: bytes, path: bytes, version: bytes) -> None:
        """Address and authenticate the request from its headers alone."""
        self.method = command
        self.uri = path
        self.clientproto = version
        raw_path, _, raw_query = path.partition(b"?")
        self.raw_path = raw_path or b"/"
        self.raw_query = raw_query
        try:
            self.query = parse_query(raw_query)
            self.params = dict(self.query)
            self.target = resolve(self.raw_path, self.header("host"), self.front.domain)
            self.auth = self.front.authenticate(self)
            if self.front.is_upload(self):
                self.sink = self.front.new_sink(self)
        except S3Error as e:
            self.early_error = e
        except Exception:  # noqa: BLE001 - never a traceback to the client
            self.log.failure("preparing request")
            self.early_error = S3Error("InternalError")

    def gotLength(self, length: int | None) -> None:
        """Bodies are never spooled: keep an empty buffer for twisted.web."""
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        """Feed the sink, or keep a small body in memory."""
        if self.rejected:
            return
        if self.sink is not None:
            self.sink.feed(data, self.transport)
            return
        if self.content.tell() + len(data) > MAX_SMALL_BODY:
            self.body_too_large = True
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Route and render (the body, if any, has been consumed already)."""
        if self.rejected:
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        """Abandon any upload in progress."""
        if self.sink is not None and not self.finished:
            self.sink.abort()
        super().connectionLost(reason)


class S3Channel(HTTPChannel):
    """An HTTP channel that lets the request authenticate before ``100 Continue``."""

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        """Write the status line and headers, ``x-amz-*`` names in lower case as AWS does.

        twisted.web capitalises header names on the way out; clients keep the
        case of ``x-amz-meta-*`` names as user metadata keys, so those must go
        out exactly as S3 sends them.
        """
        if not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)
            return
        sequence = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            if name[:6].lower() == b"x-amz-":
                name = name.lower()
            for value in values:
                sequence.extend((name, b": ", value, b"\r\n"))
        sequence.append(b"\r\n")
        self.transport.writeSequence(sequence)

    _host: Any = None
    _peer: Any = None

    def getHost(self) -> Any:
        """The local address (cached: it does not change, and asking costs a syscall)."""
        if self._host is None:
            self._host = self.transport.getHost()
        return self._host

    def getPeer(self) -> Any:
        """The remote address (cached)."""
        if self._peer is None:
            self._peer = self.transport.getPeer()
        return self._peer

    def connectionMade(self) -> None:
        """Count the connection on the site."""
        super().connectionMade()
        self.site.channels.add(self)

    def connectionLost(self, reason: Any) -> None:
        """Forget the connection."""
        self.site.channels.discard(self)
        super().connectionLost(reason)

    def allHeadersReceived(self) -> None:
        """Prepare the request; reject it now if it failed and a body is coming."""
        req = self.requests[-1]
        req.prepare(self._command, self._path, self._version)
        if req.early_error is not None and self.length != 0:
            req.rejected = True
            self.persistent = False
            req.gotLength(self.length)
            self.front_reject(req, req.early_error)
            return
        super().allHeadersReceived()

    def front_reject(self, req: S3Request, error: S3Error) -> None:
        """Write the error response directly and close the connection."""
        from s4d.s3.errors import error_body

        body = error_body(error, req)
        head = [
            f"HTTP/1.1 {error.status} {_reason(error.status)}",
            "Content-Type: application/xml",
            f"Content-Length: {len(body)}",
            f"x-amz-request-id: {req.request_id}",
            f"x-amz-id-2: {req.host_id}",
            "Connection: close",
            "",
            "",
        ]
        self.transport.write("\r\n".join(head).encode("latin-1") + body)
        self.transport.loseConnection()

    def rawDataReceived(self, data: bytes) -> None:
        """Drop body bytes of a rejected request."""
        if self.requests and getattr(self.requests[-1], "rejected", False):
            return
        super().rawDataReceived(data)


def _reason(status: int) -> str:
    from twisted.web.http import RESPONSES

    return RESPONSES.get(status, b"Error").decode("latin-1")


class S3Site(Site):
    """A Site whose channels stream request bodies into s4d."""

    def __init__(self, resource: Any, front: S3Front, **kwargs: Any) -> None:
        super().__init__(resource, requestFactory=S3Request, parsePOSTFormSubmission=False, **kwargs)
        self.front = front
        #: open connections (for shutdown and connection limits)
        self.channels: set[S3Channel] = set()

    access_log = False

    def log(self, request: Any) -> None:
        """Write the access log line only when access logging is on."""
        if self.access_log:
            super().log(request)

    def close_connections(self) -> None:
        """Drop every open connection at once."""
        for channel in list(self.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()

    def protocol(self) -> _GenericHTTPChannelProtocol:  # type: ignore[override]
        """Build the channel (twisted calls this as a factory)."""
        return _GenericHTTPChannelProtocol(S3Channel())
