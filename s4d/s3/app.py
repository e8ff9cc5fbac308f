"""The S3 API resource, and the Klein app for everything that is not S3.

S3 requests do not fit URL patterns (keys hold ``//``, ``%2F`` and trailing
slashes; the bucket may come from the Host header), so :class:`S3Resource`
hands each one straight to the dispatch table, taking bucket and key from the
raw path. Measured on this project's benchmark, routing S3 traffic through a
Klein catch-all route instead cost about 100 µs of reactor time per request
(a third of the total), for no routing benefit. The operational endpoints
(health checks now; admin API, stats and metrics later) are a Klein app,
:class:`OpsApp`, reached for requests that carry no S3 credentials.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from s4d.errors import S3Error
from s4d.s3.dispatch import DispatchTable, Response, subresources
from s4d.s3.errors import error_body
from s4d.s3.front import PUBLIC_PATHS
from s4d.s3.handlers import bucket, multipart, objects, rename

log = Logger()


def default_table() -> DispatchTable:
    """The dispatch table with every S3 operation s4d implements."""
    table = DispatchTable()
    bucket.register(table)
    objects.register(table)
    multipart.register(table)
    rename.register(table)
    return table


class OpsApp:
    """Klein routes that answer without S3 credentials (health checks)."""

    app = Klein()

    @app.route("/health", methods=["GET", "HEAD"])
    def health(self, request: Any) -> bytes:
        """200 with an empty body while the server runs."""
        return b""

    @app.route("/minio/health/live", methods=["GET", "HEAD"])
    def live(self, request: Any) -> bytes:
        """MinIO-compatible liveness probe."""
        return b""

    @app.route("/minio/health/ready", methods=["GET", "HEAD"])
    def ready(self, request: Any) -> bytes:
        """MinIO-compatible readiness probe."""
        return b""


class S3Resource(Resource):
    """The root resource: S3 dispatch, with the ops app for public paths."""

    isLeaf = True

    def __init__(self, table: DispatchTable | None = None, ops: OpsApp | None = None) -> None:
        super().__init__()
        self.table = table or default_table()
        self.ops = (ops or OpsApp()).app.resource()

    def render(self, request: Any) -> Any:
        """Answer one request (asynchronously)."""
        public = request.raw_path in PUBLIC_PATHS
        if request.auth is None and request.early_error is None and public:
            return self.ops.render(request)
        d = ensureDeferred(self.handle(request))
        d.addErrback(self._failed, request)
        d.addCallback(self._finish, request)
        request.notifyFinish().addErrback(lambda _: d.cancel())
        return NOT_DONE_YET

    async def handle(self, request: Any) -> bytes:
        """Dispatch to the operation's handler; return the body still to write."""
        if request.early_error is not None:
            raise request.early_error
        method = request.method.decode("ascii", "replace").upper()
        target = request.target
        level = "object" if target.key else "bucket" if target.bucket else "service"
        handler = self.table.find(method, level, subresources(request.params))
        response: Response = await handler(request)
        apply_response(request, response)
        if response.stream is not None:
            await response.stream(request)
            return b""
        return response.body

    @staticmethod
    def _failed(failure: Failure, request: Any) -> bytes:
        sink = getattr(request, "sink", None)
        if sink is not None:
            sink.abort()  # a body the handler never used is discarded, not left behind
        if failure.check(CancelledError):
            return b""
        if failure.check(S3Error):
            return render_error(request, failure.value)
        log.failure("unhandled error for {uri}", failure, uri=getattr(request, "uri", b""))
        if request.startedWriting:
            request.transport.abortConnection()
            return b""
        return render_error(request, S3Error("InternalError"))

    @staticmethod
    def _finish(body: bytes, request: Any) -> None:
        if request.finished or request._disconnected:
            return
        if body:
            request.write(body)
        request.finish()


def apply_response(request: Any, response: Response) -> None:
    """Set a handler response's status and headers on the request."""
    request.setResponseCode(response.status)
    for name, value in response.headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1", "replace"))
    if (
        response.stream is None
        and response.status not in (204, 304)
        and "Content-Length" not in response.headers
    ):
        request.setHeader(b"Content-Length", str(len(response.body)).encode())


def render_error(request: Any, error: S3Error) -> bytes:
    """Set the status and headers of an error response; return its body."""
    request.setResponseCode(error.status)
    if error.status == 304:
        etag = error.extra.get("ETag")
        if etag:
            request.setHeader(b"ETag", etag.encode())
        return b""
    body = error_body(error, request)
    request.setHeader(b"Content-Type", b"application/xml")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    if request.method == b"HEAD":
        return b""
    return body
