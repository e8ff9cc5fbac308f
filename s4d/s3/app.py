"""The S3 API resource.

S3 requests do not fit URL patterns (keys hold ``//``, ``%2F`` and trailing
slashes; the bucket may come from the Host header), and by the time a request
is rendered its route is already chosen (:mod:`s4d.s3.front`, at header time).
So :class:`S3Resource` is a leaf that runs the chosen route's handler on the
request's call record and writes the response value it returns. Routing S3
traffic through a Klein catch-all route instead measurably costs reactor time
per request for no routing benefit (figures in ``docs/architecture.rst``).
Every other surface is the Klein app :class:`s4d.admin.app.OpsApp`, handed in
by the composition root as ``ops`` and reached for the paths it owns
(``/metrics``, ``/api/...``, whatever the request carries) and for anonymous
GETs of the health probes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from s4d.errors import S3Error
from s4d.s3.call import Response
from s4d.s3.errors import error_body
from s4d.s3.handlers.cors import CorsHandlers
from s4d.s3.request import S3Request

log = Logger()


#: Errors that tell a key is missing: a caller who may not list the bucket gets
#: ``AccessDenied`` instead, as from AWS.
HIDDEN_WHEN_UNLISTED = frozenset({"NoSuchKey", "NoSuchVersion"})


class S3Resource(Resource):
    """The root resource: the prepared S3 call's handler, or the ops app for public paths."""

    isLeaf = True

    def __init__(self, ops: IResource, cors: CorsHandlers | None = None) -> None:
        """``cors`` adds the bucket's CORS headers to answers of requests with ``Origin``."""
        super().__init__()
        self.ops = ops
        self.cors = cors

    def render(self, request: S3Request) -> Any:
        """Answer one request (asynchronously)."""
        if request.prepared is None and request.early_error is None:
            if request.ops_body_too_large:
                request.setResponseCode(413)
                request.setHeader(b"Content-Type", b"application/json")
                return b'{"error": "The request body is too large."}'
            return self.ops.render(request)
        # Run the handler until it first waits: a small GET or HEAD (everything read on
        # this thread) is answered there, without a Deferred around it or a disconnect
        # watch; one that waits is handed, started, to Twisted's coroutine driver.
        handling = self.handle(request)
        try:
            waiting = handling.send(None)
        except StopIteration as done:
            self._answer(done.value, request)
            return NOT_DONE_YET
        except BaseException:  # noqa: BLE001 - answered as a Deferred's errback would be
            self._answer(self._failed(Failure(), request), request)
            return NOT_DONE_YET
        del waiting  # the Deferred it awaits: the driver's first send finds it again
        d = Deferred.fromCoroutine(handling)
        d.addErrback(self._failed, request)
        d.addCallback(self._finish, request)
        if not d.called:
            request.notifyFinish().addErrback(lambda _: d.cancel())
        return NOT_DONE_YET

    def _answer(self, body: bytes, request: S3Request) -> None:
        """:meth:`_finish` for an answer made at once; a failure there is logged, as a
        Deferred's unhandled error would be."""
        try:
            self._finish(body, request)
        except Exception:  # noqa: BLE001 - never out into twisted.web's render
            log.failure("finishing the answer to {uri}", uri=request.uri)

    async def handle(self, request: S3Request) -> bytes:
        """Run the route's handler; set status and headers; return the body still to write."""
        if self.cors is not None and request.bucket_name and request.method != b"OPTIONS":
            origin = request.requestHeaders.getRawHeaders(b"origin")
            if origin:
                await self._cors(request, origin[0].decode("latin-1"))
        prepared = request.prepared
        if request.early_error is not None or prepared is None:
            raise request.early_error or S3Error("InternalError")
        try:
            response = await prepared.route.handler(prepared.call)
        except S3Error as e:
            gate = prepared.call.gate
            if e.code in HIDDEN_WHEN_UNLISTED and gate is not None and not gate.may_list():
                # AWS tells a missing key only to callers who may list the bucket
                raise S3Error("AccessDenied") from None
            raise
        apply_response(request, response)
        if response.stream is not None:
            await response.stream(request)
            return b""
        return response.body

    async def _cors(self, request: S3Request, origin: str) -> None:
        """Set the CORS headers the bucket's rules give (they stay on an error answer too)."""
        assert self.cors is not None
        method = request.method.decode("latin-1")
        headers = await self.cors.actual(request.bucket_name, origin, method)
        for name, value in (headers or {}).items():
            request.setHeader(name.encode("latin-1"), value.encode("latin-1", "replace"))

    @staticmethod
    def _failed(failure: Failure, request: S3Request) -> bytes:
        sink = request.sink
        if sink is not None:
            sink.abort()  # a body the handler never used is discarded, not left behind
        if failure.check(CancelledError):
            return b""
        if isinstance(failure.value, S3Error):
            return render_error(request, failure.value)
        log.failure("unhandled error for {uri}", failure, uri=request.uri)
        if request.startedWriting:
            request.abort()
            return b""
        return render_error(request, S3Error("InternalError"))

    @staticmethod
    def _finish(body: bytes, request: S3Request) -> None:
        if request.gone:
            return
        if body:
            request.write(body)
        request.finish()


def apply_response(request: Request, response: Response) -> None:
    """Set a handler response's status and headers on the request."""
    request.setResponseCode(response.status)
    if isinstance(request, S3Request):
        request.set_headers(response.headers)
    else:
        for name, value in response.headers.items():
            request.setHeader(name.encode("latin-1"), value.encode("latin-1", "replace"))
    if (
        response.stream is None
        and response.status not in (204, 304)
        and "Content-Length" not in response.headers
    ):
        request.setHeader(b"Content-Length", str(len(response.body)).encode())


def render_error(request: S3Request, error: S3Error) -> bytes:
    """Set the status and headers of an error response; return its body."""
    request.setResponseCode(error.status)
    for name, value in error.headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1", "replace"))
    if error.status == 304:
        etag = error.extra.get("ETag")
        if etag:
            request.setHeader(b"ETag", str(etag).encode())
        return b""
    body = error_body(error, request.raw_path, request.request_id, request.host_id)
    request.setHeader(b"Content-Type", b"application/xml")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    if request.method == b"HEAD":
        return b""
    return body
