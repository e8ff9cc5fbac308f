"""SelectObjectContent and multi-object SQL (``?sql``): queries whose answers stream.

``POST /{bucket}/{key}?select&select-type=2`` takes AWS's request document
and answers AWS's event stream; ``POST /{bucket}?sql`` (S4's extension) takes
a JSON body and answers a JSON array or CSV. Both start a query on the query
service (:mod:`s4d.sql`), wait until it is planned (an error until then is
an ordinary S3 error document), then stream its output as the client reads
it: the query pauses while the client is slow, and is cancelled when the
client goes away. An error after the 200 is an error event (S3 Select) or a
response cut short (``?sql``: the client sees an incomplete body, never a
wrong one).

Authorization: both routes need ``s3:GetObject``, and each query reads only
objects the caller may GET (:func:`read_access`, the hook per-user policies
will fill).
"""

from __future__ import annotations

from collections.abc import Iterator

from twisted.internet.defer import CancelledError

from s4d.errors import S3Error
from s4d.s3.call import Response, ResponseWriter, S3Call
from s4d.s3.dispatch import Route, RouteKey, refusal, route
from s4d.s3.producer import Pause
from s4d.s3.xml import parse
from s4d.sql.access import EveryObject, ReadAccess
from s4d.sql.channel import Finished
from s4d.sql.queries import QueryService, RunningQuery
from s4d.sql.request import multi_object_request, select_request


def read_access(call: S3Call) -> ReadAccess:
    """What the caller of ``call`` may read.

    One user today: every object. This is where a user's role and policies
    will decide, object by object, which keys a query may read.
    """
    return EveryObject()


async def _started(query: RunningQuery) -> str:
    """Wait until ``query`` is planned; its content type."""
    try:
        started = await query.started()
    except CancelledError:
        query.cancel()
        raise
    return started.content_type


async def _stream(query: RunningQuery, writer: ResponseWriter, cut_on_error: bool) -> None:
    """Write the query's output as the client reads it."""
    pause = Pause()
    writer.registerProducer(pause, True)
    try:
        while True:
            item = await query.next()
            if isinstance(item, Finished):
                if item.error is not None and cut_on_error:
                    writer.abort()
                return
            if pause.stopped or writer.gone:
                query.cancel()
                return
            writer.write(item)
            waiter = pause.wait()
            if waiter is not None:
                await waiter
            if pause.stopped:
                query.cancel()
                return
    except CancelledError:
        query.cancel()
        raise
    finally:
        writer.unregisterProducer()


class SelectHandlers:
    """S3 Select and ``?sql`` over a query service (None: queries are disabled)."""

    def __init__(self, queries: QueryService | None) -> None:
        self.queries = queries

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        select, sql = frozenset({"select"}), frozenset({"sql"})
        if self.queries is None:
            off = S3Error(
                "NotImplemented", "Queries are disabled on this server (S4_SELECT_ENABLED)."
            )
            yield RouteKey("POST", "object", select), refusal(off)
            yield RouteKey("POST", "bucket", sql), refusal(off)
            return
        yield (
            RouteKey("POST", "object", select),
            route("SelectObjectContent", self.select_object_content, action="s3:GetObject"),
        )
        yield (
            RouteKey("POST", "bucket", sql),
            route("QueryObjects", self.query_objects, action="s3:GetObject"),
        )

    async def select_object_content(self, call: S3Call) -> Response:
        """SelectObjectContent: AWS's request document in, AWS's event stream out."""
        assert self.queries is not None
        select_type = call.params.get("select-type")
        if select_type not in (None, "2"):
            raise S3Error("InvalidArgument", "select-type must be 2.", ArgumentName="select-type")
        body = call.document()
        if not body.strip():
            raise S3Error("EmptyRequestBody", "The request names no query.")
        request = select_request(parse(body))
        query = self.queries.select(call.bucket, call.key, request, read_access(call))
        content_type = await _started(query)
        return Response(
            headers={"Content-Type": content_type},
            stream=lambda writer: _stream(query, writer, cut_on_error=False),
        )

    async def query_objects(self, call: S3Call) -> Response:
        """``?sql``: S4's JSON request in, a JSON array or CSV out."""
        assert self.queries is not None
        request = multi_object_request(call.document())
        query = self.queries.query(call.bucket, request, read_access(call))
        content_type = await _started(query)
        return Response(
            headers={"Content-Type": content_type},
            stream=lambda writer: _stream(query, writer, cut_on_error=True),
        )
