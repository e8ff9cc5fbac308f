"""The small-request path: what it skips, and that skipping it changes no answer.

A small GET or HEAD is answered without a trip to a worker thread when its
metadata and bytes are in memory; a read that would wait, a larger object, and
any read error go to a worker as before. Accepted connections have Nagle's
algorithm off. No timings here: the benchmark (``python -m s4d.bench s3``)
measures what these save.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from s4d.engine import Engine, OpenObject
from s4d.engine.objects import INLINE_READ_BYTES
from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.util.threads import InlineRunner
from tests.s3.server import InProcessServer, boto3_client
from tests.store.helpers import create_bucket, delete, open_store, put

T = TypeVar("T")


class CountingRunner(InlineRunner):
    """Runs jobs at once, counting them: the jobs are what would go to a worker thread."""

    def __init__(self) -> None:
        self.jobs = 0

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Count the job, then run it."""
        self.jobs += 1
        return super().run(f, *args, **kwargs)


def result(d: Deferred[T]) -> T:
    """The result of an already-fired Deferred (raises its failure)."""
    found: list[Any] = []
    d.addBoth(found.append)
    assert found, "the Deferred has not fired"
    if hasattr(found[0], "raiseException"):
        found[0].raiseException()
    return found[0]  # type: ignore[no-any-return]


class OpenWithoutHopTests(SynchronousTestCase):
    """``ObjectsFacade.open`` reads on the calling thread only what is in memory."""

    def setUp(self) -> None:
        self.store = open_store(self)
        self.runner = CountingRunner()
        self.engine = Engine(self.store, self.runner, lambda f, *a: f(*a))
        create_bucket(self.store, "b")

    def open(self, key: str, prefetch: bool = True) -> OpenObject:
        return result(self.engine.objects.open("b", key, None, prefetch))

    def test_small_get_and_head_need_no_worker(self) -> None:
        data = os.urandom(4096)
        put(self.store, "b", "small", data)
        opened = self.open("small")
        self.assertEqual(opened.first_chunk, data)
        self.assertEqual(opened.version.size, 4096)
        head = self.open("small", prefetch=False)
        self.assertIsNone(head.first_chunk)
        self.assertEqual(self.runner.jobs, 0)

    def test_shared_read_transaction_sees_every_commit(self) -> None:
        """Reads on this thread share one transaction, yet see each write at once."""
        self.store.snapshots.enable()
        put(self.store, "b", "k", b"first")
        self.assertEqual(self.open("k").first_chunk, b"first")
        opened = self.store.snapshots.opened
        self.assertEqual(self.open("k").first_chunk, b"first")
        self.assertEqual(self.store.snapshots.opened, opened)  # nothing new: reused
        put(self.store, "b", "k", b"second")
        self.assertEqual(self.open("k").first_chunk, b"second")
        delete(self.store, "b", "k")
        failure = self.failureResultOf(self.engine.objects.open("b", "k", None, True), S3Error)
        self.assertEqual(failure.value.code, "NoSuchKey")
        self.assertEqual(self.runner.jobs, 0)

    def test_inline_object_needs_no_worker(self) -> None:
        """Bytes kept in the version record are answered from it, never from a segment."""
        data = os.urandom(100)
        new = fo.NewObject(size=len(data), etag=hashlib.md5(data).hexdigest())
        self.store.commit(
            lambda t: fo.put_object(t, "b", "tiny", new, [], fo.WriteConditions(), 1, data)
        )
        opened = self.open("tiny")
        self.assertEqual(opened.first_chunk, data)
        self.assertEqual(self.runner.jobs, 0)

    def test_empty_object(self) -> None:
        put(self.store, "b", "empty", b"")
        self.assertEqual(self.open("empty").version.size, 0)
        self.assertEqual(self.runner.jobs, 0)

    def test_larger_object_goes_to_a_worker(self) -> None:
        data = os.urandom(INLINE_READ_BYTES + 1)
        put(self.store, "b", "larger", data)
        self.assertEqual(self.open("larger").first_chunk, data)
        self.assertEqual(self.runner.jobs, 1)
        # its HEAD reads no bytes: no worker
        self.open("larger", prefetch=False)
        self.assertEqual(self.runner.jobs, 1)

    def test_missing_key_is_the_same_error(self) -> None:
        with self.assertRaises(S3Error) as raised:
            self.open("nothing-here")
        self.assertEqual(raised.exception.code, "NoSuchKey")
        with self.assertRaises(S3Error) as raised:
            result(self.engine.objects.open("no-bucket", "k", None, True))
        self.assertEqual(raised.exception.code, "NoSuchBucket")
        self.assertEqual(self.runner.jobs, 0)

    def test_read_that_would_wait_goes_to_a_worker(self) -> None:
        data = os.urandom(4096)
        put(self.store, "b", "k", data)
        self.patch(self.store.segments, "_nowait", False)  # as where RWF_NOWAIT is refused
        self.assertEqual(self.open("k").first_chunk, data)
        self.assertEqual(self.runner.jobs, 1)

    def test_damaged_chunk_is_reported_by_the_worker_path(self) -> None:
        data = os.urandom(4096)
        put(self.store, "b", "k", data)
        with self.store.read() as t:
            version = fo.find_version(t, t.buckets.require("b"), "k", None)[1]
            (location,) = self.store.locate(t, version.chunks)
        path = self.store.segments.path(location.segment)
        with open(path, "r+b") as f:
            f.seek(location.offset + location.length)  # the payload's last byte
            last = f.read(1)
            f.seek(location.offset + location.length)
            f.write(bytes([last[0] ^ 0xFF]))
        self.store.segments.forget(location.segment)
        with self.assertRaises(Exception) as raised:
            self.open("k")
        self.assertIn("checksum", str(raised.exception))
        self.assertEqual(self.runner.jobs, 1)
        with self.store.read() as t:
            self.assertTrue(t.damaged.contains(location.digest))


class ConnectionTests(TestCase):
    """What an accepted connection is set up with."""

    def setUp(self) -> None:
        self.server = InProcessServer()
        self.url = self.server.start()

    def tearDown(self) -> Any:
        return self.server.stop()

    async def test_accepted_connections_have_nagle_off(self) -> None:
        s3 = boto3_client(self.url)
        await deferToThread(s3.list_buckets)
        channels = list(self.server.site.channels)
        self.assertTrue(channels)
        for channel in channels:
            sock = channel.transport.getHandle()
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)


class ResponseHeadersTests(SynchronousTestCase):
    """``S3Request.set_headers`` stores what twisted.web's ``setHeader`` would."""

    def test_same_headers_as_set_header(self) -> None:
        from twisted.internet.testing import StringTransport
        from twisted.web.http import HTTPChannel
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        from s4d.s3.request import S3Request

        channel = HTTPChannel()
        channel.site = Site(Resource())  # type: ignore[attr-defined]
        channel.makeConnection(StringTransport())
        fast, slow = S3Request(channel), S3Request(channel)
        headers = {
            "ETag": '"abc"',
            "x-amz-meta-Mixed-Case": "a\r\nb\nc",
            "Content-Length": "4096",
            "x-amz-meta-note": "caf\u00e9 \u2603",
            "Last-Modified": "",
        }
        fast.set_headers(headers)
        fast.set_headers(headers)  # the remembered names give the same
        for name, value in headers.items():
            slow.setHeader(name.encode("latin-1"), value.encode("latin-1", "replace"))
        for request in (fast, slow):  # each has its own id
            request.responseHeaders.removeHeader(b"x-amz-request-id")
        self.assertEqual(
            list(fast.responseHeaders.getAllRawHeaders()),
            list(slow.responseHeaders.getAllRawHeaders()),
        )
