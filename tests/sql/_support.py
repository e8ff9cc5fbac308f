"""The in-memory S3 server with queries, and helpers to send them and read their answers.

:class:`QueryMemoryS3` is :class:`tests.s3.memory.MemoryS3` whose site also
answers S3 Select and ``?sql``: the query service runs each query inline (its
"pool" is an :class:`~s4d.util.threads.InlineRunner` and its calls into the
engine are direct), so a query has run to its end when :meth:`request`
returns. DataFusion and pyarrow still use their own threads inside it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from s4d.admin.app import PUBLIC_PATHS, OpsApp
from s4d.engine import Engine
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.sql import eventstream
from s4d.sql.queries import Limits, QueryService
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import InlineRunner
from tests.s3.memory import (
    ACCESS_KEY,
    NOW,
    SECRET_KEY,
    MemoryConnection,
    MemoryResponse,
    MemoryS3,
)


class QueryMemoryS3(MemoryS3):
    """An in-memory S3 server whose queries run inline."""

    def __init__(
        self,
        limits: Limits | None = None,
        chunk_size: int | None = None,
        query_clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        """``query_clock`` is the clock queries' deadlines are measured on."""
        super().__init__(**kwargs)
        if chunk_size is not None:  # small chunks: reads of part of an object are visible
            self.store.close()
            config = StoreConfig(
                self.data_dir, fsync=False, map_size=1 << 28, chunk_size=chunk_size
            )
            self.store = Store(config, inline_commit=True)
            self.engine = Engine(self.store, self.runner, lambda f, *a, **k: f(*a, **k))
        self.queries = QueryService(
            self.engine.objects,
            InlineRunner(),
            lambda f, *a, **k: f(*a, **k),
            limits or Limits(buffered=None),
            query_clock,
        )
        self._buckets: set[str] = set()
        self.site = build_s3_site(
            self.engine,
            StaticCredentials({ACCESS_KEY: SECRET_KEY}),
            ops=OpsApp().resource(),
            public_paths=PUBLIC_PATHS,
            now=lambda: NOW,
            clock=None,
            queries=self.queries,
            reactor=self.clock,
        )

    def put(self, bucket: str, key: str, body: bytes) -> None:
        """Store an object (creating its bucket if needed)."""
        if bucket not in self._buckets:
            self.exchange("PUT", f"/{bucket}", b"")
            self._buckets.add(bucket)
        response = self.exchange("PUT", f"/{bucket}/{quote(key)}", body)
        assert response.status == 200, response.body

    def exchange(self, method: str, target: str, body: bytes) -> MemoryResponse:
        """One request on its own connection, closed afterwards; the whole response.

        The response may be chunked (a query's); it is read as far as it goes
        (``x-test-complete`` says whether its last chunk came).
        """
        response, conn = self.exchange_on_connection(method, target, body)
        conn.protocol.connectionLost(Failure(ConnectionDone()))
        return response

    def exchange_on_connection(
        self, method: str, target: str, body: bytes
    ) -> tuple[MemoryResponse, MemoryConnection]:
        """:meth:`exchange`, leaving the connection open (to look at it)."""
        conn = self.connect()
        headers = {"content-length": str(len(body))}
        digest = hashlib.sha256(body).hexdigest()
        conn.send(self.head_block(method, target, headers, digest) + body)
        return parse_chunked(conn.written), conn

    def chunked(self, method: str, target: str, body: bytes) -> MemoryResponse:
        """A request whose response may be chunked."""
        return self.exchange(method, target, body)


def parse_chunked(data: bytes) -> MemoryResponse:
    """A complete response with a chunked (or sized) body."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") != "chunked":
        length = int(headers.get("content-length", "0"))
        return MemoryResponse(status, headers, rest[:length])
    body = bytearray()
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            headers["x-test-complete"] = "true"
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return MemoryResponse(status, headers, bytes(body))


def select_document(
    expression: str,
    input_xml: str = "<CSV><FileHeaderInfo>USE</FileHeaderInfo></CSV>",
    output_xml: str = "<JSON/>",
    extra: str = "",
) -> bytes:
    """A SelectObjectContentRequest document."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Expression>{escape(expression)}</Expression><ExpressionType>SQL</ExpressionType>"
        f"<InputSerialization>{input_xml}</InputSerialization>"
        f"<OutputSerialization>{output_xml}</OutputSerialization>{extra}"
        "</SelectObjectContentRequest>"
    ).encode()


class SelectAnswer:
    """A decoded SelectObjectContent response."""

    def __init__(self, response: MemoryResponse) -> None:
        self.response = response
        self.messages: list[eventstream.Message] = []
        if response.status == 200:
            self.messages, rest = eventstream.decode(response.body)
            assert rest == b"", f"bytes after the last message: {rest[:100]!r}"

    @property
    def records(self) -> bytes:
        """The output (every Records payload, joined)."""
        return b"".join(m.payload for m in self.messages if m.kind == "Records")

    @property
    def kinds(self) -> list[str]:
        """The event types in order (``error`` for an error message)."""
        return [m.kind for m in self.messages]

    def json_records(self) -> list[Any]:
        """The output as JSON lines."""
        return [json.loads(line) for line in self.records.decode().splitlines() if line]

    def error(self) -> tuple[str, str] | None:
        """The error event's code and message, if there was one."""
        for m in self.messages:
            if m.kind == "error":
                return m.headers[":error-code"], m.headers[":error-message"]
        return None

    def stats(self) -> dict[str, int]:
        """The Stats event's counts."""
        import re

        for m in self.messages:
            if m.kind == "Stats":
                return {k: int(v) for k, v in re.findall(r"<(\w+)>(\d+)</\1>", m.payload.decode())}
        raise AssertionError(f"no Stats event in {self.kinds}")
