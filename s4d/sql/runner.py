"""One query from start to end, on its pool thread: plan, check, execute, write.

:func:`run_query` is the job a query's pool thread runs:

1. plan: parse the statement (:mod:`s4d.sql.dialect`), build its tables
   (:mod:`s4d.sql.inputs`: the object's header, sample or footer is read
   here), translate it, plan it in a fresh context (:mod:`s4d.sql.session`)
   and check the plan. Any error here becomes the response's S3 error
   document (:meth:`OutputChannel.fail`);
2. execute: DataFusion's record batch stream is polled on an asyncio loop
   owned by this thread, so that the query can be cancelled from another
   thread (the reactor, when the client goes away) and stopped at its
   deadline: the poll is awaited with a timeout, and each time it passes with
   nothing produced a keep-alive goes out (``Cont``, and ``Progress`` when
   asked for). Cancelling the poll drops the stream, which stops DataFusion's
   work at once;
3. write: each batch is written as CSV or JSON (:mod:`s4d.sql.output`) and
   handed to the reactor through the channel, framed as ``Records`` events for
   S3 Select, followed by ``Stats`` and ``End``; an error after the response
   started is an error event (S3 Select) or cuts the response short (``?sql``).
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pa_ds
from datafusion import DataFrame
from twisted.logger import Logger
from twisted.python.failure import Failure

from s4d.engine import ObjectsFacade
from s4d.errors import S3Error
from s4d.sql import eventstream
from s4d.sql.access import ReadAccess
from s4d.sql.channel import OutputChannel
from s4d.sql.control import EngineBridge, QueryCancelled, QueryControl
from s4d.sql.dialect import parse
from s4d.sql.errors import classify
from s4d.sql.globs import compile_glob, exact, is_glob
from s4d.sql.inputs import ObjectList, Shape, Table, TableBuilder
from s4d.sql.output import CsvWriter, Writer, writer_for
from s4d.sql.request import CsvOutput, MultiObjectRequest, SelectRequest
from s4d.sql.session import check_plan, new_context, statement_options
from s4d.util.memory import release_free_memory

log = Logger()

# pyarrow's own allocators (mimalloc, jemalloc) keep what a query freed for the next one;
# the process's malloc (arenas capped by s4d.util.memory) gives it back: the server's
# resident size returns near its idle size between queries (docs/performance.rst).
pa.set_memory_pool(pa.system_memory_pool())

#: When the last query ended (time.monotonic()), for :func:`_quiesce`.
_last_query_end = 0.0
#: How long DataFusion's and pyarrow's threads may still be winding a query down.
QUIESCE = 0.25


@atexit.register
def _quiesce() -> None:
    """Let a query that just ended wind down before the interpreter is torn down.

    DataFusion's tokio tasks and pyarrow's threads release a query's Python
    objects a moment after its stream ends; a process that exits within that
    moment crashes in the interpreter's finalization (seen with DataFusion 55
    and pyarrow 26). Exit waits for it, only if a query ended just before.
    """
    left = QUIESCE - (time.monotonic() - _last_query_end)
    if _last_query_end and left > 0:
        time.sleep(left)
    gc.collect()


@dataclass(frozen=True)
class QuerySettings:
    """Limits and pacing of queries (``S4_SELECT_*``).

    :ivar keepalive: seconds without output after which a keep-alive is sent.
    :ivar buffered: output bytes that may wait for the client before the query
        pauses (None: never pause; for queries run inline in tests).
    :ivar records_size: output bytes gathered into one ``Records`` event.
    """

    max_memory: int = 256 << 20
    timeout: float | None = 60.0
    keepalive: float = 5.0
    buffered: int | None = 4 << 20
    records_size: int = 256 << 10
    partitions: int | None = None


@dataclass(frozen=True)
class Started:
    """What the response needs to know once the query is planned."""

    content_type: str
    columns: list[str] = field(default_factory=list)


@dataclass
class QueryJob:
    """Everything one query's thread needs."""

    bucket: str
    request: SelectRequest | MultiObjectRequest
    key: str | None
    objects: ObjectsFacade
    access: ReadAccess
    settings: QuerySettings
    control: QueryControl
    bridge: EngineBridge
    channel: OutputChannel[Started]


class _Sink:
    """Output of a query: the bytes its response body is made of."""

    def __init__(self, job: QueryJob, writer: Writer) -> None:
        self.job = job
        self.writer = writer
        self._pending: list[bytes] = []
        self._size = 0

    def begin(self, columns: list[str]) -> None:
        """Before the first record."""

    def records(self, data: bytes) -> None:
        """Output bytes (gathered until there are enough to send)."""
        if not data:
            return
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self.job.settings.records_size:
            self.flush()

    def flush(self) -> None:
        """Send what was gathered."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending, self._size = [], 0
            self.send(data)

    def send(self, data: bytes) -> None:
        """Hand ``data`` to the reactor."""
        self.job.control.returned += len(data)
        self.job.channel.put(data)

    def keepalive(self) -> None:
        """Nothing came for a while."""
        self.flush()

    def finish(self) -> None:
        """After the last record."""
        self.flush()

    def fail(self, error: S3Error) -> None:
        """The query failed after the response started."""


class EventStreamSink(_Sink):
    """S3 Select's event stream: Records, Cont, Progress, Stats, End; errors as events."""

    def send(self, data: bytes) -> None:
        self.job.control.returned += len(data)
        self.job.channel.put(eventstream.records(data))

    def _progress(self) -> None:
        if isinstance(self.job.request, SelectRequest) and self.job.request.request_progress:
            self.job.channel.put(eventstream.progress(*self.job.control.counts()))

    def keepalive(self) -> None:
        self.flush()
        self._progress()
        self.job.channel.put(eventstream.cont())

    def finish(self) -> None:
        self.flush()
        self._progress()
        self.job.channel.put(eventstream.stats(*self.job.control.counts()))
        self.job.channel.put(eventstream.end())

    def fail(self, error: S3Error) -> None:
        self.flush()
        self.job.channel.put(eventstream.error(error.code, error.message))


class PlainSink(_Sink):
    """``?sql``'s body: a JSON array or CSV with a header, nothing else."""

    def begin(self, columns: list[str]) -> None:
        if isinstance(self.writer, CsvWriter):
            self.records(self.writer.header(columns))
        else:
            self.records(self.writer.start())
        self.flush()

    def keepalive(self) -> None:
        self.flush()
        if not isinstance(self.writer, CsvWriter):
            self.job.channel.put(b"\n")  # blank space between JSON values keeps the line busy

    def finish(self) -> None:
        if not isinstance(self.writer, CsvWriter):
            self.records(self.writer.end())
        self.flush()


@dataclass
class _Planned:
    frame: DataFrame
    columns: list[str]


def _plan(job: QueryJob, builder: TableBuilder) -> _Planned:
    """Parse, build the tables, translate, plan and check (on the query's thread)."""
    request = job.request
    select_mode = isinstance(request, SelectRequest)
    sql = request.expression if isinstance(request, SelectRequest) else request.sql
    parsed = parse(sql, select_mode)
    tables: dict[str, Table] = {}
    columns = []
    if select_mode and len({s.path for s in parsed.sources}) > 1:
        raise S3Error("MultipleDataSourcesUnsupported", "A query reads one path of S3Object.")
    for source in parsed.sources:
        table = tables.get(source.table)
        if table is None:
            if isinstance(request, SelectRequest):
                objects = ObjectList(job.objects, job.bridge, job.bucket, job.access, key=job.key)
                shape = Shape(request.input, request.compression, request.scan_range, source.path)
            else:
                pattern = source.glob
                glob = None
                if pattern is not None:
                    glob = compile_glob(pattern) if is_glob(pattern) else exact(pattern)
                objects = ObjectList(job.objects, job.bridge, job.bucket, job.access, glob=glob)
                shape = Shape(request.input, "AUTO")
            table = tables[source.table] = builder.build(source.table, objects, shape)
        columns.append(table.columns)
    unknown = frozenset(
        i for i, source in enumerate(parsed.sources) if tables[source.table].dataset is None
    )
    translated = parsed.translate(columns, unknown)
    context = new_context(job.settings.max_memory, job.settings.partitions)
    for table in tables.values():
        dataset = table.dataset
        if dataset is None:  # no records at all: an empty table of the names the query used
            names = translated.discovered.get(table.name, [])
            empty = pa.schema([(name, pa.string()) for name in names]).empty_table()
            dataset = pa_ds.dataset(empty)
        context.register_dataset(table.name, dataset)
    frame = context.sql_with_options(translated.sql, statement_options())
    check_plan(frame)
    schema: pa.Schema = frame.schema()
    return _Planned(frame, list(schema.names))


async def _execute(job: QueryJob, frame: DataFrame, sink: _Sink, writer: Writer) -> None:
    """Poll the stream, writing batches, sending keep-alives, until the end or a stop."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def cancel() -> None:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass  # the loop is closed: the query has ended already

    job.control.on_stop(cancel)
    job.control.check()
    stream = frame.execute_stream()
    batches = stream.__aiter__()
    while True:
        pending: asyncio.Future[Any] = asyncio.ensure_future(batches.__anext__())
        try:
            while True:
                left = job.control.remaining()
                wait = job.settings.keepalive if left is None else min(job.settings.keepalive, left)
                done, _ = await asyncio.wait({pending}, timeout=max(wait, 0.0))
                if done:
                    break
                job.control.check()
                sink.keepalive()
            batch = pending.result()
        except StopAsyncIteration:
            return
        finally:
            if not pending.done():
                pending.cancel()
        sink.records(writer.batch(batch.to_pyarrow()))
        job.control.check()


def run_query(job: QueryJob) -> None:
    """Run one query to its end (the pool thread's job); never raises."""
    builder = TableBuilder(job.objects, job.bridge, job.bucket, job.access)
    try:
        _run(job, builder)
    finally:
        # the query's files refer back to the builder: break the cycle now, so that
        # pyarrow's and DataFusion's objects go while the interpreter is whole
        builder.close()
        job.control.finish()
        global _last_query_end
        _last_query_end = time.monotonic()
        release_free_memory()


def _run(job: QueryJob, builder: TableBuilder) -> None:
    control, channel = job.control, job.channel
    request = job.request
    select_mode = isinstance(request, SelectRequest)
    writer = writer_for(request.output)
    sink: _Sink = EventStreamSink(job, writer) if select_mode else PlainSink(job, writer)
    try:
        planned = _plan(job, builder)
    except BaseException as e:  # noqa: BLE001 - every failure becomes the response
        failure = classify(e, control, planning=True)
        _log_unexpected(failure, e)
        channel.fail(failure)
        return
    if select_mode:
        content_type = "application/octet-stream"
    elif isinstance(request.output, CsvOutput):
        content_type = "text/csv"
    else:
        content_type = "application/json"
    channel.ready(Started(content_type, planned.columns))
    error: BaseException | None = None
    try:
        sink.begin(planned.columns)
        asyncio.run(_execute(job, planned.frame, sink, writer))
        control.check()
        sink.finish()
    except BaseException as e:  # noqa: BLE001 - reported in the stream
        error = classify(e, control, planning=False)
        _log_unexpected(error, e)
        if isinstance(error, S3Error):
            try:
                sink.fail(error)
            except (QueryCancelled, S3Error):
                pass
    channel.close(error)


def _log_unexpected(failure: BaseException, original: BaseException) -> None:
    """Log an error that is nobody's input but a fault (with its traceback, when called
    in the ``except`` block that caught it)."""
    if isinstance(failure, S3Error) and failure.code == "InternalError":
        log.failure("Query failed unexpectedly: {error!r}", Failure(), error=original)  # type: ignore[no-untyped-call]


def start_query(
    bucket: str,
    key: str | None,
    request: SelectRequest | MultiObjectRequest,
    objects: ObjectsFacade,
    access: ReadAccess,
    settings: QuerySettings,
    call_from_thread: Callable[..., Any],
    clock: Callable[[], float] = time.monotonic,
) -> QueryJob:
    """A query's job, ready to run on a pool thread (its deadline on ``clock``)."""
    control = QueryControl(settings.timeout, clock)
    return QueryJob(
        bucket,
        request,
        key,
        objects,
        access,
        settings,
        control,
        EngineBridge(call_from_thread, control),
        OutputChannel(call_from_thread, control, settings.buffered),
    )
