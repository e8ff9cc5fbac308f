"""The pacing of a running query: keep-alives, progress, deadlines, cancellation, backpressure.

The execution loop (:func:`s4d.sql.runner._execute`) is driven with a fake
record batch stream whose batches become ready only when the test (or the
loop's own keep-alive) says so, and a keep-alive interval of zero: every wait
that finds no batch ready sends a keep-alive at once. Nothing depends on how
long anything takes. The channel's backpressure is tested with a real
producer thread that must block until the consumer takes its output. A
deadline that passes after output began is tested through the whole in-memory
server on an injected clock.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pyarrow as pa
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.sql import eventstream
from s4d.sql.access import EveryObject
from s4d.sql.channel import Finished, OutputChannel
from s4d.sql.control import QueryCancelled, QueryControl
from s4d.sql.output import JsonWriter
from s4d.sql.queries import Limits
from s4d.sql.request import CsvInput, JsonOutput, SelectRequest
from s4d.sql.runner import EventStreamSink, PlainSink, QuerySettings, _execute, start_query
from tests.sql._support import QueryMemoryS3, SelectAnswer, select_document


class _Batch:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def to_pyarrow(self) -> pa.RecordBatch:
        return pa.record_batch({"n": list(range(self.rows))})


class _Stream:
    """Batches that are released one by one by :meth:`release`."""

    def __init__(self, batches: int) -> None:
        self.left = batches
        self.released = 0
        self.event: asyncio.Event | None = None

    def release(self) -> None:
        self.released += 1
        if self.event is not None:
            self.event.set()

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> _Batch:
        if self.left == 0:
            raise StopAsyncIteration
        while self.released == 0:
            self.event = asyncio.Event()
            await self.event.wait()
        self.released -= 1
        self.left -= 1
        return _Batch(2)


class _Frame:
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def execute_stream(self) -> _Stream:
        return self.stream


def _job(progress: bool = False, timeout: float | None = None, clock: Any = None) -> Any:
    request = SelectRequest("SELECT 1", CsvInput(), JsonOutput(), request_progress=progress)
    settings = QuerySettings(keepalive=0.0, buffered=None, records_size=1, timeout=timeout)
    job = start_query("bkt", "k", request, None, EveryObject(), settings, lambda f, *a: f(*a))  # type: ignore[arg-type]
    if clock is not None:
        job.control = QueryControl(timeout, clock)
        job.channel = OutputChannel(lambda f, *a: f(*a), job.control, None)
    return job


def _drain(channel: OutputChannel[Any]) -> list[str]:
    data = b""
    while True:
        item = channel.next().result  # type: ignore[attr-defined]
        if isinstance(item, Finished):
            break
        data += item
    messages, rest = eventstream.decode(data)
    assert rest == b""
    return [m.kind for m in messages]


class KeepAliveTests(SynchronousTestCase):
    """Cont (and Progress when asked) while nothing is produced."""

    def run_stream(self, job: Any, stream: _Stream, releases_after_keepalives: int) -> None:
        sink = EventStreamSink(job, JsonWriter(JsonOutput()))
        keepalive = sink.keepalive
        count = {"n": 0}

        def counted() -> None:
            keepalive()
            count["n"] += 1
            if count["n"] % releases_after_keepalives == 0:
                stream.release()

        sink.keepalive = counted  # type: ignore[method-assign]
        asyncio.run(_execute(job, _Frame(stream), sink, JsonWriter(JsonOutput())))
        sink.finish()
        job.channel.close()

    def test_cont_between_slow_batches(self) -> None:
        job = _job()
        stream = _Stream(batches=2)
        self.run_stream(job, stream, releases_after_keepalives=2)
        self.assertEqual(
            _drain(job.channel),
            ["Cont", "Cont", "Records", "Cont", "Cont", "Records", "Stats", "End"],
        )

    def test_progress_with_each_keepalive(self) -> None:
        job = _job(progress=True)
        stream = _Stream(batches=1)
        self.run_stream(job, stream, releases_after_keepalives=1)
        self.assertEqual(
            _drain(job.channel), ["Progress", "Cont", "Records", "Progress", "Stats", "End"]
        )


class StopTests(SynchronousTestCase):
    """The deadline and cancellation end the loop."""

    def test_deadline(self) -> None:
        now = [0.0]
        job = _job(timeout=10.0, clock=lambda: now[0])
        stream = _Stream(batches=1)
        sink = EventStreamSink(job, JsonWriter(JsonOutput()))

        def late() -> None:
            now[0] = 11.0

        sink.keepalive = late  # type: ignore[method-assign]
        now[0] = 5.0
        with self.assertRaises(S3Error) as caught:
            asyncio.run(_execute(job, _Frame(stream), sink, JsonWriter(JsonOutput())))
        self.assertEqual(caught.exception.code, "QueryTimeout")

    def test_cancel_from_another_thread(self) -> None:
        job = _job()
        stream = _Stream(batches=1)
        sink = EventStreamSink(job, JsonWriter(JsonOutput()))
        cancelled = threading.Event()

        def cancel_once() -> None:
            if not cancelled.is_set():
                cancelled.set()
                threading.Thread(target=job.control.cancel).start()

        sink.keepalive = cancel_once  # type: ignore[method-assign]
        with self.assertRaises((asyncio.CancelledError, QueryCancelled)):
            asyncio.run(_execute(job, _Frame(stream), sink, JsonWriter(JsonOutput())))
        self.assertIsInstance(job.control.stopped, QueryCancelled)


class BackpressureTests(SynchronousTestCase):
    """A producer waits while too much output waits for the client."""

    def test_put_blocks_until_taken(self) -> None:
        control = QueryControl()
        calls: list[Any] = []
        channel: OutputChannel[Any] = OutputChannel(lambda f, *a: calls.append((f, a)), control, 10)
        channel.put(b"x" * 10)  # at the limit: the next put must wait
        second_put = threading.Event()

        def produce() -> None:
            channel.put(b"y")
            second_put.set()

        producer = threading.Thread(target=produce)
        producer.start()
        self.assertFalse(second_put.wait(0.2))
        self.assertEqual(channel.next().result, b"x" * 10)  # type: ignore[attr-defined]
        producer.join(10)
        self.assertTrue(second_put.is_set())
        self.assertEqual(channel.next().result, b"y")  # type: ignore[attr-defined]

    def blocked_put(self, channel: OutputChannel[Any], release: Any) -> BaseException:
        """Put into the full ``channel`` on a thread, call ``release``; what the put raised."""
        outcome: list[BaseException] = []

        def produce() -> None:
            try:
                channel.put(b"more")
            except BaseException as e:  # noqa: BLE001 - recorded for the test
                outcome.append(e)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        release()
        producer.join(10)
        self.assertFalse(producer.is_alive(), "put still waits")
        return outcome[0]

    def test_cancel_releases_a_blocked_producer(self) -> None:
        control = QueryControl()
        channel: OutputChannel[Any] = OutputChannel(lambda f, *a: None, control, 1)
        channel.put(b"full")
        self.assertIsInstance(self.blocked_put(channel, control.cancel), QueryCancelled)

    def test_deadline_releases_a_blocked_producer(self) -> None:
        """A query waiting for a slow client stops at its deadline; its error still goes out."""
        now = [0.0]
        control = QueryControl(10.0, lambda: now[0])
        channel: OutputChannel[Any] = OutputChannel(lambda f, *a: None, control, 1)
        channel.put(b"full")
        now[0] = 11.0
        raised = self.blocked_put(channel, lambda: None)
        self.assertIsInstance(raised, S3Error)
        self.assertEqual(raised.code, "QueryTimeout")  # type: ignore[attr-defined]
        channel.put(b"error event")  # stopped by its deadline, not cancelled: it goes in
        self.assertEqual(channel.next().result, b"full")  # type: ignore[attr-defined]
        self.assertEqual(channel.next().result, b"error event")  # type: ignore[attr-defined]


class DeadlineInStreamTests(SynchronousTestCase):
    """The deadline passes after output began: the response still ends with the error.

    The whole in-memory server runs the query (real DataFusion) on a clock that
    stands still until the query hands its first output to the channel, and then
    jumps past the deadline: the deadline passes while a piece of the body is
    being written, between two record batches.
    """

    ROWS = b"n\n" + b"".join(b"%d\n" % i for i in range(100000))

    def setUp(self) -> None:
        self.now = 0.0
        self.s3 = QueryMemoryS3(
            limits=Limits(timeout=5.0, buffered=None), query_clock=lambda: self.now
        )
        self.addCleanup(self.s3.close)
        self.s3.put("bkt", "rows.csv", self.ROWS)

    def late_after_first_output(self, sink: type[Any]) -> None:
        """The clock jumps past every deadline once ``sink`` sent its first output."""
        send = sink.send

        def send_then_late(self_: Any, data: bytes) -> None:
            send(self_, data)
            self.now = 1000.0

        self.patch(sink, "send", send_then_late)

    def test_select_ends_with_the_timeout_event(self) -> None:
        self.late_after_first_output(EventStreamSink)
        response = self.s3.chunked(
            "POST",
            "/bkt/rows.csv?select&select-type=2",
            select_document("SELECT s.n FROM S3Object s"),
        )
        answer = SelectAnswer(response)
        self.assertEqual(answer.response.status, 200)
        self.assertEqual(answer.kinds, ["Records", "error"])
        self.assertEqual((answer.error() or ("",))[0], "QueryTimeout")
        self.assertEqual(response.headers.get("x-test-complete"), "true")
        self.assertLess(len(answer.json_records()), 100000)

    def test_select_finished_before_the_deadline_is_complete(self) -> None:
        answer = SelectAnswer(
            self.s3.chunked(
                "POST",
                "/bkt/rows.csv?select&select-type=2",
                select_document("SELECT s.n FROM S3Object s"),
            )
        )
        self.assertEqual(answer.kinds[-2:], ["Stats", "End"], answer.error())
        self.assertEqual(len(answer.json_records()), 100000)

    def test_sql_is_cut_short(self) -> None:
        self.late_after_first_output(PlainSink)
        body = b'{"sql": "SELECT n FROM \'rows.csv\'", "output": "csv"}'
        response = self.s3.chunked("POST", "/bkt?sql", body)
        self.assertEqual(response.status, 200)
        self.assertNotIn("x-test-complete", response.headers)
        self.assertLess(response.body.count(b"\n"), 100001)
