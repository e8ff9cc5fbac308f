"""The private parts of twisted.web that s4d/s3/request.py (and s3/app.py) lean on.

Strategy: s4d streams request bodies by subclassing ``HTTPChannel`` and
``Request`` (DESIGN 2.1), which reaches into attributes Twisted does not
promise to keep. setup.cfg pins Twisted to the tested release; this module
checks each attribute and method still exists with the shape s4d expects, so a
Twisted upgrade fails here, naming the attribute and the Twisted version,
instead of somewhere deep in a request. The channel is driven with a real
request over a ``StringTransport`` and inspected when its headers are in, the
moment s4d's channel reads them.
"""

from __future__ import annotations

import inspect
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http, server
from twisted.web.resource import Resource

import twisted

VERSION = twisted.__version__


def where(owner: Any, name: str) -> str:
    """``twisted.web.http.HTTPChannel._command`` for messages (``owner``: a class or module)."""
    if inspect.ismodule(owner):
        return f"{owner.__name__}.{name}"
    return f"{owner.__module__}.{owner.__qualname__}.{name}"


class InternalsTestCase(SynchronousTestCase):
    def need(self, ok: bool, owner: Any, name: str, shape: str) -> None:
        """Fail with a message naming the attribute, its expected shape and Twisted's version."""
        if not ok:
            self.fail(
                f"{where(owner, name)} ({shape}) is missing or changed in Twisted {VERSION}; "
                "s4d/s3/request.py relies on it: adapt it, then the pin in setup.cfg"
            )

    def need_method(self, owner: Any, name: str, params: list[str]) -> None:
        """``owner.name`` is a method taking exactly ``params`` (after self)."""
        method = getattr(owner, name, None)
        ok = callable(method)
        if ok:
            found = [p for p in inspect.signature(method).parameters if p != "self"]
            ok = found == params
        self.need(ok, owner, name, f"method({', '.join(params)})")


class _Recorder(http.HTTPChannel):
    """A channel that records its private state when all headers are in."""

    seen: dict[str, Any]

    def allHeadersReceived(self) -> None:
        self.seen = {
            name: getattr(self, name, AttributeError)
            for name in (
                "_command", "_path", "_version", "_handlingRequest", "_transferDecoder",
                "_receivedHeaderCount", "_receivedHeaderSize",
            )
        }  # fmt: skip
        super().allHeadersReceived()


class ChannelTests(InternalsTestCase):
    def channel(self) -> _Recorder:
        site = server.Site(Resource())
        channel = _Recorder()
        channel.factory = site
        channel.requestFactory = site.requestFactory
        channel.site = site  # type: ignore[attr-defined]
        channel.makeConnection(StringTransport())
        return channel

    def test_request_line_and_framing_state_when_headers_are_in(self) -> None:
        channel = self.channel()
        channel.dataReceived(
            b"PUT /bucket/key?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        seen = channel.seen
        H = http.HTTPChannel
        self.need(seen["_command"] == b"PUT", H, "_command", "bytes: the method")
        self.need(seen["_path"] == b"/bucket/key?x=1", H, "_path", "bytes: the raw target")
        self.need(seen["_version"] == b"HTTP/1.1", H, "_version", "bytes")
        self.need(seen["_handlingRequest"] is False, H, "_handlingRequest", "bool")
        self.need(
            isinstance(seen["_transferDecoder"], http._ChunkedTransferDecoder),
            H, "_transferDecoder", "the chunked decoder once Transfer-Encoding is read",
        )  # fmt: skip
        for name in ("_receivedHeaderCount", "_receivedHeaderSize"):
            self.need(isinstance(seen[name], int) and seen[name] > 0, H, name, "int")

    def test_class_attributes(self) -> None:
        H = http.HTTPChannel
        channel = self.channel()
        self.need(hasattr(H, "_savedTimeOut"), H, "_savedTimeOut", "class attribute")
        self.need(H._abortingCall is None, H, "_abortingCall", "None until an abort is armed")
        self.need(callable(getattr(H._log, "info", None)), H, "_log", "a twisted.logger.Logger")
        for name in ("totalHeadersSize", "maxHeaders", "abortTimeout"):
            self.need(isinstance(getattr(channel, name, None), int), H, name, "int")
        self.need(isinstance(channel.requests, list), H, "requests", "list of requests")

    def test_methods(self) -> None:
        H = http.HTTPChannel
        self.need_method(H, "_respondToBadRequestAndDisconnect", [])
        self.need_method(H, "headerReceived", ["line"])
        self.need_method(H, "allHeadersReceived", [])
        self.need_method(H, "allContentReceived", [])
        self.need_method(H, "lineLengthExceeded", ["line"])
        self.need_method(H, "rawDataReceived", ["data"])
        self.need_method(H, "writeHeaders", ["version", "code", "reason", "headers"])
        self.need_method(H, "forceAbortClient", [])
        self.need_method(H, "setTimeout", ["period"])
        self.need_method(H, "callLater", ["period", "func"])
        self.need_method(H, "pauseProducing", [])
        self.need_method(H, "resumeProducing", [])

    def test_bad_request_answer(self) -> None:
        channel = self.channel()
        transport = channel.transport
        assert isinstance(transport, StringTransport)
        channel._respondToBadRequestAndDisconnect()
        self.need(
            transport.value().startswith(b"HTTP/1.1 400 Bad Request"),
            http.HTTPChannel, "_respondToBadRequestAndDisconnect", "writes a 400 and disconnects",
        )  # fmt: skip

    def test_generic_channel_protocol(self) -> None:
        G = http._GenericHTTPChannelProtocol
        self.need(inspect.isclass(G), http, "_GenericHTTPChannelProtocol", "class")
        wrapper = G(http.HTTPChannel())
        self.need(
            isinstance(wrapper._channel, http.HTTPChannel),
            G, "_channel", "the wrapped channel, taken by the constructor",
        )  # fmt: skip


def site_channel() -> http.HTTPChannel:
    """A channel of a real :class:`~twisted.web.server.Site` (requests read ``channel.site``)."""
    channel = http.HTTPChannel()
    channel.site = server.Site(Resource())  # type: ignore[attr-defined]
    channel.makeConnection(StringTransport())
    return channel


class RequestTests(InternalsTestCase):
    def test_post_form_parsing_switch(self) -> None:
        S = server.Site
        self.need(
            isinstance(getattr(S(Resource()), "_parsePOSTFormSubmission", None), bool),
            S, "_parsePOSTFormSubmission", "bool the Request constructor reads",
        )  # fmt: skip
        R = server.Request
        request = R(site_channel())
        self.need(
            getattr(request, "_parsePOSTFormSubmission", None) is True,
            R, "_parsePOSTFormSubmission", "bool attribute, True by default",
        )  # fmt: skip

    def test_disconnected_flag(self) -> None:
        R = server.Request
        self.need(getattr(R, "_disconnected", None) is False, R, "_disconnected", "bool")
        request = R(site_channel())
        request.connectionLost(Exception("gone"))
        self.need(request._disconnected is True, R, "_disconnected", "True after connectionLost")

    def test_methods(self) -> None:
        R = server.Request
        self.need_method(R, "gotLength", ["length"])
        self.need_method(R, "handleContentChunk", ["data"])
        self.need_method(R, "requestReceived", ["command", "path", "version"])
        self.need_method(R, "connectionLost", ["reason"])

    def test_content_is_seeked_after_the_body(self) -> None:
        # requestReceived still calls content.seek(0): a streaming request keeps a BytesIO
        source = inspect.getsource(http.Request.requestReceived)
        self.need("self.content.seek(0" in source, http.Request, "requestReceived",
                  "calls self.content.seek(0)")  # fmt: skip


class ResponseHeaderTests(InternalsTestCase):
    """S3Request sets response headers in ``Headers._rawHeaders`` and replaces ``process``."""

    def test_raw_headers_hold_what_set_header_sets(self) -> None:
        from twisted.web.http_headers import Headers

        headers = Headers()
        headers.setRawHeaders(b"x-amz-request-id", [b"abc"])
        raw = getattr(headers, "_rawHeaders", None)
        self.need(
            raw == {b"X-Amz-Request-Id": [b"abc"]},
            Headers, "_rawHeaders", "dict of canonical bytes names to lists of values",
        )  # fmt: skip

    def test_process_sets_server_and_date_then_renders(self) -> None:
        R = server.Request
        source = inspect.getsource(R.process)
        for needed in ('setHeader(b"Server", version)', 'setHeader(b"Date"', "self.render("):
            self.need(needed in source, R, "process", f"calls {needed}")
        self.need(isinstance(server.version, bytes), server, "version", "bytes (Server header)")
