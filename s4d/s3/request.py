"""The HTTP seam: a Request that streams bodies and a channel that authenticates early.

twisted.web normally buffers a whole request body before any resource runs.
:class:`S3Channel` instead asks the request to :meth:`S3Request.prepare` as soon
as the headers are in: the request is addressed and authenticated there, before
``100 Continue`` goes out, and an upload gets a body sink that receives every
chunk as it arrives (see :mod:`s4d.s3.body`). A request rejected at that point
with a body still to come is answered at once and the connection closed, so the
body is never read, let alone stored.

The channel also keeps connections in check (:class:`ConnectionLimits`): an idle
timeout between requests, a time limit on a request's header block, a minimum
pace for bodies, a cap on the size of the header block, a stalled-send timeout
and a cap on open connections per process. Whatever it refuses is answered with
an S3 error document and ``Connection: close``, never a bare 400 or a reset.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from twisted.internet import tcp
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol
from twisted.web.http_headers import Headers
from twisted.web.server import Request, Site
from twisted.web.server import version as SERVER_VERSION

from s4d.errors import S3Error
from s4d.s3.addressing import resolve
from s4d.s3.body import BodySink
from s4d.s3.call import S3Call
from s4d.s3.dates import http_date
from s4d.s3.errors import error_body
from s4d.s3.front import Prepared, S3Front, WireRequest
from s4d.s3.headers import CallHeaders
from s4d.s3.postform import FormUploadSink
from s4d.util.served import CLIENT_CLOSED, RequestObserver, ServedRequest

#: The most query parameters a request may carry.
MAX_QUERY_PARAMS = 1000
#: Query parameters that never select an operation.
NEUTRAL_PARAMS = frozenset({"x-id"})
#: Most significant digits accepted in a Content-Length (twisted.web would call
#: ``int()`` on any digit string, which raises past 4300 digits).
MAX_LENGTH_DIGITS = 18
#: Largest request body kept for the ops app (admin API documents are small JSON).
MAX_OPS_BODY = 1 << 20
#: The operation recorded for a request refused before its operation was known.
REJECTED = "Rejected"
#: An upload body at least this long is read from the socket in larger pieces ...
LARGE_BODY = 1 << 20
#: ... of up to this many bytes a ``recv`` (twisted's default is 64 KiB): each read
#: costs a trip through the reactor, twisted.web's body decoder and the sink.
LARGE_BODY_READ = 1 << 20


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how much a connection may take (``S4_*`` settings; None turns a timeout off).

    :ivar idle_timeout: seconds a connection may wait for its next request, and
        a response may wait for the client to read on (``S4_IDLE_TIMEOUT``).
    :ivar header_timeout: seconds from a request's first byte to the end of its
        header block (``S4_HEADER_TIMEOUT``).
    :ivar body_timeout: the window, in seconds, in which a request body must
        deliver ``body_min_rate`` bytes a second; time the server itself holds
        the body back (backpressure) does not count (``S4_BODY_TIMEOUT``).
    :ivar body_min_rate: bytes a second a body must average over each window
        (``S4_BODY_MIN_RATE``); at least one byte per window is always needed.
    :ivar max_header_bytes: the largest request line plus header block
        (``S4_MAX_HEADER_BYTES``).
    :ivar max_connections: open connections per process; a connection beyond
        them gets ``503 SlowDown`` for its request and is closed
        (``S4_MAX_CONNECTIONS``).
    """

    idle_timeout: float | None = 60.0
    header_timeout: float | None = 30.0
    body_timeout: float | None = 60.0
    body_min_rate: int = 1024
    max_header_bytes: int = 64 << 10
    max_connections: int = 1024


class BodyFlow:
    """The lever body sinks pause the socket with; it remembers that they did.

    A body held back by the server (the engine is behind) is not a slow client:
    the channel's body timeout skips any window in which the flow was paused.
    """

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.paused = False
        #: pauses and resumes so far (a window that saw one is not judged)
        self.switches = 0

    def pauseProducing(self) -> None:
        """Stop reading from the socket."""
        self.paused = True
        self.switches += 1
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """Read from the socket again."""
        self.paused = False
        self.switches += 1
        self.transport.resumeProducing()


_ID_PREFIX = secrets.token_hex(4).upper()
_HOST_ID = base64.b64encode(secrets.token_bytes(24)).decode()
_counter = itertools.count(1)


def next_request_id() -> tuple[str, str]:
    """A request id unique within this server (process prefix + counter) and the host id."""
    return f"{_ID_PREFIX}{next(_counter):08X}", _HOST_ID


#: response header names (as handlers spell them) in twisted.web's canonical form
_response_names: dict[str, bytes] = {}
#: most names remembered (user metadata names are the client's to choose)
_RESPONSE_NAMES_KEPT = 4096


def response_header_name(name: str) -> bytes:
    """``name`` as twisted.web's ``setHeader`` would store it (remembered for next time)."""
    canonical = next(iter(Headers({name.encode("latin-1"): [b""]}).getAllRawHeaders()))[0]
    if len(_response_names) >= _RESPONSE_NAMES_KEPT:
        _response_names.clear()
    _response_names[name] = canonical
    return canonical


def parse_query(raw_query: bytes) -> list[tuple[str, str]]:
    """Query pairs in wire order, blank values kept; ``InvalidArgument`` if undecodable.

    At most :data:`MAX_QUERY_PARAMS` parameters are accepted.
    """
    if not raw_query:
        return []
    if raw_query.count(b"&") >= MAX_QUERY_PARAMS:
        raise S3Error("InvalidArgument", f"A query may have at most {MAX_QUERY_PARAMS} parameters.")
    try:
        text = raw_query.decode("utf-8")
        return parse_qsl(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_PARAMS
        )
    except (UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The query string is not valid.") from None


class S3Request(Request):
    """A request whose body goes to a sink instead of a buffer.

    :meth:`prepare` runs when the headers are in and leaves either
    :attr:`prepared` (the call record and its route), :attr:`early_error` (the
    request is refused), or neither (a request for the ops app: ``/health``,
    ``/metrics``, ``/api/...``; its body, if any, is kept in :attr:`content`
    up to :data:`MAX_OPS_BODY`).

    It also keeps what the site reports of it once answered
    (:meth:`served`): when it started and how many body bytes came in.
    """

    _parsePOSTFormSubmission = False
    log = Logger()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False
        self.request_id, self.host_id = next_request_id()
        self.raw_path = b"/"
        #: the bucket the request names ("" until known): CORS answers need it even for refusals
        self.bucket_name = ""
        self.prepared: Prepared | None = None
        self.early_error: S3Error | None = None
        self.rejected = False
        #: the whole body has arrived (from then on a disconnect no longer aborts an upload)
        self.body_received = False
        #: request body bytes received so far
        self.bytes_in = 0
        #: the ops app answers it; more than MAX_OPS_BODY of body came (the rest is dropped)
        self.ops = False
        self.ops_body_too_large = False
        #: who the ops app's guard found (the S3 identity is in the call record)
        self.identity_label: str | None = None
        #: already reported to the site's observer
        self.observed = False
        site = getattr(self.channel, "site", None)
        self.started = site.seconds() if isinstance(site, S3Site) else 0.0
        raw = self.responseHeaders._rawHeaders  # what setHeader fills, set directly
        raw[b"X-Amz-Request-Id"] = [self.request_id.encode()]
        raw[b"X-Amz-Id-2"] = [self.host_id.encode()]

    def set_headers(self, headers: Mapping[str, str]) -> None:
        """Set response headers given as text, as ``setHeader`` does, at a fraction of its cost.

        Values are encoded as latin-1 (anything else becomes ``?``) and line breaks in
        them become spaces, as twisted.web does; each distinct name is brought to
        twisted.web's canonical form once (:func:`response_header_name`).
        """
        raw = self.responseHeaders._rawHeaders
        for name, value in headers.items():
            key = _response_names.get(name) or response_header_name(name)
            data = value.encode("latin-1", "replace")
            if b"\n" in data or b"\r" in data:
                data = b" ".join(data.splitlines())
            raw[key] = [data]

    def process(self) -> None:
        """twisted.web's ``process``, less what the leaf S3 resource does not need.

        The ``Server`` and ``Date`` headers are set directly (the date formatted once a
        second) and there is no resource traversal: the site's root is the leaf that
        answers every S3 request. The ops app's requests (Klein routes on
        ``postpath``), ``*`` and any other root take twisted.web's own way.
        """
        site = self.channel.site  # type: ignore[attr-defined]
        root = site.resource
        if self.ops or self.path == b"*" or not getattr(root, "isLeaf", False):
            super().process()
            return
        self.site = site
        raw = self.responseHeaders._rawHeaders
        raw[b"Server"] = [SERVER_VERSION]
        raw[b"Date"] = [http_date(time.time_ns()).encode("ascii")]  # cached per second
        self.prepath = []
        self.postpath = []
        try:
            self.render(root)
        except BaseException:
            self.processingFailed(Failure())

    @property
    def front(self) -> S3Front:
        """The S3 front end this request belongs to."""
        site = self.channel.site  # type: ignore[attr-defined]
        assert isinstance(site, S3Site)
        return site.front

    @property
    def call(self) -> S3Call | None:
        """The call record (None until prepared, and for public ops paths)."""
        return self.prepared.call if self.prepared is not None else None

    @property
    def sink(self) -> BodySink | FormUploadSink | None:
        """Where this request's body streams to, if it is an upload."""
        call = self.call
        if call is None:
            return None
        return call.upload if call.upload is not None else call.form

    @property
    def tcp(self) -> Any:
        """The connection's TCP (or TLS) transport: pause, resume, abort."""
        return self.transport

    def _secure(self) -> bool:
        channel = self.channel
        return channel.secure if isinstance(channel, S3Channel) else bool(self.isSecure())

    def _client_ip(self) -> str:
        """The TCP peer's address ("" for a UNIX socket or none)."""
        address = self.getClientAddress()
        host = getattr(address, "host", "")
        return host if isinstance(host, str) else ""

    def unregisterProducer(self) -> None:
        """Forget the body's producer; nothing to tell a connection that is gone.

        twisted.web forgets the channel when the client goes away, and its own
        ``unregisterProducer`` would then fail on the missing channel.
        """
        if self.channel is None:
            self.producer = None
            return
        super().unregisterProducer()

    @property
    def gone(self) -> bool:
        """The response is finished, was aborted, or the client went away."""
        return bool(self.finished or self._disconnected or self._aborted)

    _aborted = False

    def abort(self) -> None:
        """Drop the connection (a streamed body cannot be completed correctly).

        The request is then gone: nothing more is written, not even the end of a
        chunked body, which would make the cut-short body look complete.
        """
        self._aborted = True
        if self.transport is not None:
            self.tcp.abortConnection()

    def header(self, name: str) -> str | None:
        """One request header as text (the first, if repeated)."""
        raw = self.requestHeaders.getRawHeaders(name.encode("ascii"))
        return raw[0].decode("latin-1") if raw else None

    def prepare(self, command: bytes, path: bytes, version: bytes) -> None:
        """Address, authenticate and route the request from its headers alone."""
        self.method = command
        self.uri = path
        self.clientproto = version
        raw_path, _, raw_query = path.partition(b"?")
        self.raw_path = raw_path or b"/"
        try:
            front = self.front
            if front.is_ops_path(self.raw_path) and not front.virtual_host(self.header("host")):
                self.ops = True  # the ops app's, whatever credentials it carries
                return
            params = dict(parse_query(raw_query))
            raw_headers = dict(self.requestHeaders.getAllRawHeaders())
            headers = CallHeaders.from_raw(raw_headers.items())
            target = resolve(self.raw_path, headers.get("host"), front.domain)
            self.bucket_name = target.bucket
            wire = WireRequest(
                method=command.decode("ascii", "replace").upper(),
                uri=path,
                raw_path=self.raw_path,
                params=params,
                headers=headers,
                raw_headers=raw_headers,
                target=target,
                request_id=self.request_id,
                host_id=self.host_id,
                secure=self._secure(),
                client_ip=self._client_ip(),
            )
            self.prepared = front.prepare(wire)
            self.ops = self.prepared is None
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
        self.bytes_in += len(data)
        if self.rejected:
            return
        if self.ops:
            self._keep_ops_body(data)
            return
        sink = self.sink
        if sink is not None:
            sink.feed(data, getattr(self.channel, "body_flow", None) or self.tcp)
            return
        call = self.call
        if call is None or call.content is None:
            return  # a public path or a refused request: its body is not wanted
        if not call.content.add(data):
            reject = getattr(self.channel, "reject", None)
            if reject is not None:
                reject(S3Error("MaxMessageLengthExceeded"), self)

    def _keep_ops_body(self, data: bytes) -> None:
        if self.ops_body_too_large:
            return
        content = self.content
        if content is None:
            content = self.content = io.BytesIO()
        if content.tell() + len(data) > MAX_OPS_BODY:
            self.ops_body_too_large = True
            self.content = io.BytesIO()
            return
        content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Route and render (the body, if any, has been consumed already)."""
        self.body_received = True
        if self.rejected:
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Abandon an upload whose body was still arriving.

        Once the whole body is in, the request runs to its end (as S3 does): its
        chunks may already be on their way into an object.
        """
        sink = self.sink
        if sink is not None and not self.finished and not self.body_received:
            sink.abort()
        if not self.finished and not self.observed:
            site = getattr(self.channel, "site", None)
            if isinstance(site, S3Site):
                site.report(self, CLIENT_CLOSED, self.sentLength)
        super().connectionLost(reason)

    def served(self, now: float, status: int, bytes_out: int) -> ServedRequest:
        """What this request was, answered with ``status`` at ``now`` (see ServedRequest)."""
        self.observed = True
        prepared = self.prepared
        if prepared is not None:
            call = prepared.call
            operation, bucket, key = prepared.route.operation, call.bucket, call.key
            identity = call.identity.access_key if call.identity is not None else None
        else:
            operation = "" if self.ops else REJECTED
            bucket = key = ""
            identity = self.identity_label
        client = self.client
        return ServedRequest(
            self.request_id,
            self.method.decode("latin-1"),
            operation,
            self.raw_path,
            bucket,
            key,
            identity,
            getattr(client, "host", "") or "",
            status,
            self.bytes_in,
            bytes_out,
            self.started,
            max(0.0, now - self.started),
        )


#: first bytes of the header lines :meth:`S3Channel.headerReceived` looks at more closely
#: (``Content-Length``, ``Transfer-Encoding``, and a name after folding whitespace)
_FRAMING_INITIALS = frozenset((b"c", b"C", b"t", b"T", b" ", b"\t"))


class S3Channel(HTTPChannel):
    """An HTTP channel that lets the request authenticate before ``100 Continue``.

    It also enforces the site's :class:`ConnectionLimits`. twisted.web's own
    limits are used where it has them (``timeOut`` is the idle timeout,
    ``totalHeadersSize`` and ``MAX_LENGTH`` cap the header block, ``maxHeaders``
    the number of headers); what it answers with a bare ``400 Bad Request`` is
    answered here with an S3 error document instead.
    """

    site: S3Site
    limits = ConnectionLimits()
    #: this connection came in beyond ``max_connections``: its request gets 503 SlowDown
    over_limit = False
    body_flow: BodyFlow | None = None
    #: why the next bad request is bad (set just before twisted.web refuses it)
    _bad_request: S3Error | None = None
    _header_timer: Any = None
    _body_timer: Any = None
    _send_timer: Any = None
    _body_bytes = 0
    _body_mark = 0
    _body_switches = 0
    #: the server is stopping: every answer from now on closes the connection
    closing = False

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
        self.tcp.writeSequence(sequence)

    _host: Any = None
    _peer: Any = None
    _secure: bool | None = None

    @property
    def secure(self) -> bool:
        """The connection is TLS (cached: asking adapts the transport every time)."""
        if self._secure is None:
            self._secure = bool(self.isSecure())
        return self._secure

    @property
    def tcp(self) -> Any:
        """The TCP (or TLS) transport, with what ITransport does not declare."""
        return self.transport

    def getHost(self) -> Any:
        """The local address (cached: it does not change, and asking costs a syscall)."""
        if self._host is None:
            self._host = self.tcp.getHost()
        return self._host

    def getPeer(self) -> Any:
        """The remote address (cached)."""
        if self._peer is None:
            self._peer = self.tcp.getPeer()
        return self._peer

    def connectionMade(self) -> None:
        """Count the connection on the site; note whether it is one too many."""
        super().connectionMade()
        self.body_flow = BodyFlow(self.transport)
        _no_delay(self.transport)
        channels = self.site.channels
        if len(channels) >= self.limits.max_connections:
            self.over_limit = True
        channels.add(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Forget the connection and its timers."""
        self.site.channels.discard(self)
        _cancel(self._header_timer)
        self._header_timer = None
        _cancel(self._body_timer)
        self._body_timer = None
        _cancel(self._send_timer)
        self._send_timer = None
        super().connectionLost(reason)

    def close_after_response(self) -> None:
        """The server is stopping: answer with ``Connection: close`` and close after the answer.

        Requests whose response has not started yet (in flight, or arriving
        from now on: :meth:`checkPersistence`) carry the header; one already
        being written cannot, but the connection closes after it all the same
        (twisted.web closes a channel that is not ``persistent`` once its
        request is done).
        """
        self.closing = True
        self.persistent = False
        for request in self.requests:
            if not request.startedWriting:
                request.responseHeaders.setRawHeaders(b"connection", [b"close"])

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        """twisted.web's rule, and no keep-alive once the server is stopping."""
        if self.closing:
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False
        return bool(super().checkPersistence(request, version))

    # -- the header block ------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Start the header clock at a request's first byte."""
        if (
            data
            and self._header_timer is None
            and self.line_mode
            and not self._handlingRequest
            and self.limits.header_timeout
        ):
            self._header_timer = self.callLater(self.limits.header_timeout, self._headers_late)
        super().dataReceived(data)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport is None or self.tcp.disconnecting:
            return
        self.reject(
            S3Error("RequestTimeout", "The request headers did not arrive within the time allowed.")
        )

    def headerReceived(self, line: bytes) -> bool:
        """Refuse, with the right S3 error, framing headers twisted.web would refuse bare."""
        if line[:1] not in _FRAMING_INITIALS:
            return super().headerReceived(line)  # type: ignore[no-any-return]
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"content-length", b"transfer-encoding"):
            error = self._framing_error(name, value.strip(b" \t"))
            if error is not None:
                self._bad_request = error
                self._respondToBadRequestAndDisconnect()
                return False
        return super().headerReceived(line)  # type: ignore[no-any-return]

    def _framing_error(self, name: bytes, value: bytes) -> S3Error | None:
        if self._transferDecoder is not None and value.lower() != b"identity":
            return S3Error(
                "InvalidRequest",
                "A request may carry one Content-Length or Transfer-Encoding header, not several.",
            )
        if name == b"content-length":
            if not value.isdigit():
                return S3Error(
                    "InvalidArgument",
                    "Content-Length must be a non-negative integer.",
                    ArgumentName="Content-Length",
                    ArgumentValue=value[:64].decode("latin-1"),
                )
            if len(value.lstrip(b"0")) > MAX_LENGTH_DIGITS:
                return S3Error("EntityTooLarge")
            return None
        if value.lower() not in (b"chunked", b"identity"):
            return S3Error(
                "NotImplemented",
                "A header you provided implies functionality that is not implemented.",
                Header="Transfer-Encoding",
            )
        return None

    def lineLengthExceeded(self, line: bytes) -> None:
        """A header line (or request line) longer than the header block may be."""
        self._bad_request = self._too_large()
        self._respondToBadRequestAndDisconnect()

    def _too_large(self) -> S3Error:
        return S3Error(
            "RequestHeaderSectionTooLarge",
            MaxSizeAllowed=str(self.totalHeadersSize),
        )

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Everything twisted.web finds malformed gets an S3 error document, then close."""
        error, self._bad_request = self._bad_request, None
        if error is None:
            if (
                self._receivedHeaderSize > self.totalHeadersSize
                or self._receivedHeaderCount > self.maxHeaders
            ):
                error = self._too_large()
            else:
                error = S3Error("InvalidRequest", "The request is not valid HTTP/1.1.")
        self.reject(error)

    def allHeadersReceived(self) -> None:
        """Prepare the request; reject it now if it failed and a body is coming."""
        _cancel(self._header_timer)
        self._header_timer = None
        req = self.requests[-1]
        if self.over_limit:
            req.raw_path = self._path.partition(b"?")[0] or b"/"
            self.reject(S3Error("SlowDown", "Too many connections; reduce your request rate."))
            return
        req.prepare(self._command, self._path, self._version)
        if req.early_error is not None and self.length != 0:
            self.reject(req.early_error)
            return
        super().allHeadersReceived()
        if self.length != 0:
            self._watch_body()
            if (self.length is None or self.length >= LARGE_BODY) and req.sink is not None:
                _read_size(self.transport, LARGE_BODY_READ)

    # -- the body --------------------------------------------------------------------------

    def _watch_body(self) -> None:
        """Judge the body's pace every ``body_timeout`` seconds (instead of the idle timeout)."""
        if self.timeOut:
            self._savedTimeOut = self.setTimeout(None)
        window = self.limits.body_timeout
        if not window:
            return
        self._body_bytes = self._body_mark = 0
        self._body_switches = self.body_flow.switches if self.body_flow is not None else 0
        self._body_timer = self.callLater(window, self._judge_body)

    def _judge_body(self) -> None:
        self._body_timer = None
        if self._handlingRequest or not self.requests or self.transport is None:
            return
        flow = self.body_flow
        held_back = flow is not None and (flow.paused or flow.switches != self._body_switches)
        window = self.limits.body_timeout or 0.0
        needed = max(1, int(self.limits.body_min_rate * window))
        if not held_back and self._body_bytes - self._body_mark < needed:
            self.reject(
                S3Error("RequestTimeout", "The request body arrived too slowly; upload abandoned.")
            )
            return
        self._body_mark = self._body_bytes
        self._body_switches = flow.switches if flow is not None else 0
        self._body_timer = self.callLater(window, self._judge_body)

    def rawDataReceived(self, data: bytes) -> None:
        """Count body bytes; drop those of a rejected request."""
        if self.requests and getattr(self.requests[-1], "rejected", False):
            return
        if not self._handlingRequest:
            self._body_bytes += len(data)
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        """The body is in: stop judging its pace, read in ordinary pieces again."""
        _cancel(self._body_timer)
        self._body_timer = None
        _read_size(self.transport, None)
        super().allContentReceived()

    # -- sending ---------------------------------------------------------------------------

    def pauseProducing(self) -> None:
        """The client stopped reading: give it ``idle_timeout`` seconds to start again."""
        super().pauseProducing()
        if self._send_timer is None and self.limits.idle_timeout:
            self._send_timer = self.callLater(self.limits.idle_timeout, self._send_stalled)

    def resumeProducing(self) -> None:
        """The client reads again."""
        _cancel(self._send_timer)
        self._send_timer = None
        super().resumeProducing()

    def _send_stalled(self) -> None:
        self._send_timer = None
        if self.transport is not None:
            self._log.info("Dropping a client that stopped reading: {peer}", peer=self.getPeer())
            self.tcp.abortConnection()

    # -- refusing --------------------------------------------------------------------------

    def reject(self, error: S3Error, req: S3Request | None = None) -> None:
        """Answer ``error`` at once and close; the rest of the request is never read.

        An upload in progress is abandoned (its bytes are discarded).
        """
        if req is None and self.requests:
            req = self.requests[-1]
        if req is not None:
            req.rejected = True
            if req.sink is not None and not req.body_received:
                req.sink.abort()
            req.gotLength(self.length)
        self.persistent = False
        self.setTimeout(None)
        _cancel(self._header_timer)
        self._header_timer = None
        _cancel(self._body_timer)
        self._body_timer = None
        self.front_reject(req, error)

    def front_reject(self, req: S3Request | None, error: S3Error) -> None:
        """Write the error response directly and close the connection."""
        if self.transport is None or self.tcp.disconnecting:
            return
        if req is None:
            request_id, host_id = next_request_id()
            body = error_body(error, b"/", request_id, host_id)
            method = b""
            self.site.report_refused(request_id, error.status, self.getPeer())
        else:
            request_id, host_id = req.request_id, req.host_id
            body = error_body(error, req.raw_path, request_id, host_id)
            method = getattr(self, "_command", None) or req.method
        head = [
            f"HTTP/1.1 {error.status} {_reason(error.status)}",
            "Content-Type: application/xml",
            f"Content-Length: {len(body)}",
            f"x-amz-request-id: {request_id}",
            f"x-amz-id-2: {host_id}",
            *self._cors_lines(req, method),
            "Connection: close",
            "",
            "",
        ]
        data = "\r\n".join(head).encode("latin-1")
        self.tcp.write(data if method == b"HEAD" else data + body)
        if req is not None and not req.observed:
            if method:
                req.method = method
            self.site.report(req, error.status, 0 if method == b"HEAD" else len(body))
        self.loseConnection()
        if self.abortTimeout is not None and self._abortingCall is None:
            # a client that never reads its answer must not hold the connection open
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)

    def _cors_lines(self, req: S3Request | None, method: bytes) -> list[str]:
        """The CORS headers a refusal carries (from the rules cached now: nothing waits here)."""
        origin = req.header("origin") if req is not None else None
        answer = self.site.cors_now
        if req is None or not origin or not req.bucket_name or answer is None:
            return []
        found = answer(req.bucket_name, origin, method.decode("latin-1"))
        return [f"{name}: {value}" for name, value in (found or {}).items()]


def _no_delay(transport: Any) -> None:
    """Turn Nagle's algorithm off: a response's last segment goes out without waiting.

    A TLS transport is a protocol over the TCP one; the socket option is set on that.
    """
    while transport is not None:
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            with contextlib.suppress(OSError):
                set_no_delay(True)
            return
        transport = getattr(transport, "transport", None)


def _read_size(transport: Any, size: int | None) -> None:
    """Set how much one ``recv`` of a plain TCP ``transport`` asks for (None: twisted's default).

    Only a plain TCP connection is changed: under TLS the records are 16 KiB anyway.
    """
    if not isinstance(transport, tcp.Connection):
        return
    if size is None:
        transport.__dict__.pop("bufferSize", None)
    else:
        transport.bufferSize = size


def _cancel(call: IDelayedCall | None) -> None:
    """Cancel a pending delayed call (if any); returns None to clear the attribute."""
    if call is not None and call.active():
        call.cancel()
    return None


def _reason(status: int) -> str:
    from twisted.web.http import RESPONSES

    return RESPONSES.get(status, b"Error").decode("latin-1")


class S3Site(Site):
    """A Site whose channels stream request bodies into s4d.

    :ivar cors_now: the CORS headers for (bucket, origin, method) from cached
        rules, for answers written before a request is rendered (None: none).
    """

    cors_now: Callable[[str, str, str], dict[str, str] | None] | None = None

    def __init__(
        self,
        resource: Any,
        front: S3Front,
        limits: ConnectionLimits | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs`` go to twisted.web's ``Site`` (``reactor``: the clock for every timeout)."""
        self.limits = limits or ConnectionLimits()
        kwargs.setdefault("timeout", self.limits.idle_timeout)
        super().__init__(
            resource, requestFactory=S3Request, parsePOSTFormSubmission=False, **kwargs
        )
        self.front = front
        #: open connections (for shutdown and connection limits)
        self.channels: set[S3Channel] = set()

    #: told about every request once answered (metrics, access log); None: nobody
    observer: RequestObserver | None = None

    def seconds(self) -> float:
        """The time now, on the site's clock (the reactor's; a task.Clock in tests)."""
        return float(self.reactor.seconds())

    def log(self, request: Any) -> None:
        """Report a finished request to the observer (twisted.web calls this from finish())."""
        if self.observer is not None and isinstance(request, S3Request) and not request.observed:
            self._tell(request.served(self.seconds(), request.code, request.sentLength))

    def report(self, request: S3Request, status: int, bytes_out: int) -> None:
        """Report a request answered otherwise than by finishing it (refused, abandoned)."""
        request.observed = True
        if self.observer is not None:
            self._tell(request.served(self.seconds(), status, bytes_out))

    def report_refused(self, request_id: str, status: int, peer: Any) -> None:
        """Report a request refused before twisted.web made a request object for it."""
        if self.observer is None:
            return
        now = self.seconds()
        self._tell(
            ServedRequest(
                request_id, "", REJECTED, b"", "", "", None, getattr(peer, "host", "") or "",
                status, 0, 0, now, 0.0,
            )
        )  # fmt: skip

    def _tell(self, record: ServedRequest) -> None:
        """Hand ``record`` to the observer; its failure never fails the request."""
        try:
            assert self.observer is not None
            self.observer.served(record)
        except Exception:  # noqa: BLE001 - counting must not break serving
            S3Request.log.failure("reporting a served request")

    def close_connections(self) -> None:
        """Drop every open connection at once."""
        for channel in list(self.channels):
            if channel.transport is not None:
                channel.tcp.abortConnection()

    def protocol(self) -> _GenericHTTPChannelProtocol:
        """Build the channel (twisted calls this as a factory)."""
        channel = S3Channel()
        channel.limits = self.limits
        channel.totalHeadersSize = channel.MAX_LENGTH = self.limits.max_header_bytes
        return _GenericHTTPChannelProtocol(channel)
