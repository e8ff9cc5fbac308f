"""Streaming a body (s4d.s3.producer): a client that leaves mid-stream ends it quietly."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.trial.unittest import SynchronousTestCase

from s4d.engine import ChunkLocation
from s4d.s3.producer import send_object


class Writer:
    """A response that records what the stream does to it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.registered = False
        self.gone = False
        self.producer: Any = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.registered = True
        self.producer = producer

    def unregisterProducer(self) -> None:
        if self.gone:  # twisted.web's request: its channel is gone with the client
            raise AttributeError("'NoneType' object has no attribute 'unregisterProducer'")
        self.registered = False

    def abort(self) -> None:
        self.gone = True


class Objects:
    """Chunk reads that wait until the test answers them."""

    def __init__(self) -> None:
        self.reads: list[Deferred[bytes]] = []

    def read_chunk(self, location: ChunkLocation) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self.reads.append(d)
        return d


LOCATIONS = [ChunkLocation(bytes([i]) * 32, 1, i * 100, 10, 10, 1) for i in range(3)]


class SendObjectTests(SynchronousTestCase):
    def test_whole_stream_unregisters(self) -> None:
        writer, objects = Writer(), Objects()
        d = ensureDeferred(send_object(writer, objects, LOCATIONS, 0, 29))  # type: ignore[arg-type]
        for i in range(3):
            objects.reads[i].callback(bytes([65 + i]) * 10)
        self.successResultOf(d)
        self.assertEqual(b"".join(writer.written), b"A" * 10 + b"B" * 10 + b"C" * 10)
        self.assertFalse(writer.registered)

    def test_client_gone_mid_stream(self) -> None:
        """Cancelled (the client left while its socket was full): nothing but the cancellation."""
        writer, objects = Writer(), Objects()
        d = ensureDeferred(send_object(writer, objects, LOCATIONS, 0, 29))  # type: ignore[arg-type]
        writer.producer.pauseProducing()  # the client's socket is full
        objects.reads[0].callback(b"A" * 10)
        self.assertEqual(writer.written, [b"A" * 10])
        writer.gone = True  # the connection is lost; twisted.web drops the channel
        d.cancel()
        self.failureResultOf(d, CancelledError)

    def test_client_gone_during_a_read(self) -> None:
        """Cancelled while a chunk is being read: not logged as a failed read."""
        writer, objects = Writer(), Objects()
        d = ensureDeferred(send_object(writer, objects, LOCATIONS, 0, 29))  # type: ignore[arg-type]
        writer.gone = True
        d.cancel()  # cancels the read it waits on
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(writer.written, [])
