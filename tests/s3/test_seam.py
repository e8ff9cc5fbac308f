"""The S3 seam, in memory: routing at header time, the call record, one direction for a PUT.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real site, channel,
front end, dispatch table, handlers, engine and store (in a temporary
directory, committing inline) with no sockets and no threads. Each test writes
raw HTTP bytes into a channel, so it can look at the seam between the header
block and the body: which route was chosen, what the call record holds, when
the socket is paused. Upload backpressure is made deterministic with a
:class:`~tests.s3.memory.QueuedRunner`: no blocking job runs until the test
says so, so "the engine is behind" is a state the test builds, not a race.
"""

from __future__ import annotations

import hashlib
import os

from twisted.trial.unittest import SynchronousTestCase

from s4d.engine import MAX_INFLIGHT
from s4d.s3.dispatch import BodyMode
from tests.s3.memory import MemoryS3, QueuedRunner, key_path


class MemoryTestCase(SynchronousTestCase):
    runner: QueuedRunner | None = None

    def setUp(self) -> None:
        self.s3 = MemoryS3(self.runner)
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)


class RoundTripTests(MemoryTestCase):
    def test_put_get_head_list_delete(self) -> None:
        data = os.urandom(3000)
        put = self.s3.request("PUT", key_path("bkt", "a/b c"), data)
        self.assertEqual(put.status, 200)
        self.assertEqual(put.header("etag"), f'"{hashlib.md5(data).hexdigest()}"')
        got = self.s3.request("GET", key_path("bkt", "a/b c"))
        self.assertEqual((got.status, got.body), (200, data))
        head = self.s3.request("HEAD", key_path("bkt", "a/b c"))
        self.assertEqual((head.status, head.header("content-length")), (200, "3000"))
        listing = self.s3.request("GET", "/bkt?list-type=2&prefix=a%2F")
        self.assertIn(b"<Key>a/b c</Key>", listing.body)
        self.assertEqual(self.s3.request("DELETE", key_path("bkt", "a/b c")).status, 204)
        self.assertEqual(self.s3.request("GET", key_path("bkt", "a/b c")).code(), "NoSuchKey")

    def test_large_body_is_staged_in_chunks(self) -> None:
        data = os.urandom(self.s3.store.config.chunk_size + 12345)
        put = self.s3.request("PUT", key_path("bkt", "big"), data)
        self.assertEqual(put.status, 200, put.body)
        got = self.s3.request("GET", key_path("bkt", "big"))
        self.assertEqual(hashlib.sha256(got.body).digest(), hashlib.sha256(data).digest())

    def test_bad_digest_stores_nothing(self) -> None:
        response = self.s3.request(
            "PUT", key_path("bkt", "k"), b"hello", {"content-md5": "AAAAAAAAAAAAAAAAAAAAAA=="}
        )
        self.assertEqual((response.status, response.code()), (400, "BadDigest"))
        self.assertEqual(self.s3.request("HEAD", key_path("bkt", "k")).status, 404)

    def test_anonymous_request_is_refused(self) -> None:
        response = self.s3.request("GET", "/bkt", sign=False)
        self.assertEqual((response.status, response.code()), (403, "AccessDenied"))


class RouteAtHeaderTimeTests(MemoryTestCase):
    """The route is chosen, and the call built, before any body byte arrives."""

    def prepared_after_headers(self, method: str, target: str, headers: dict[str, str]) -> object:
        """What the seam decided once the headers of a request with a body are in."""
        conn = self.s3.connect()
        conn.send(self.s3.head_block(method, target, {"content-length": "1", **headers}))
        request = conn.request
        assert request is not None
        self.assertIsNone(request.early_error)
        assert request.prepared is not None
        return request.prepared

    def test_put_streams(self) -> None:
        prepared = self.prepared_after_headers("PUT", "/bkt/k", {"content-length": "10"})
        self.assertEqual(prepared.route.operation, "PutObject")  # type: ignore[attr-defined]
        self.assertIs(prepared.route.body, BodyMode.STREAM)  # type: ignore[attr-defined]
        self.assertIsNotNone(prepared.call.upload)  # type: ignore[attr-defined]

    def test_copy_is_its_own_route(self) -> None:
        prepared = self.prepared_after_headers("PUT", "/bkt/k", {"x-amz-copy-source": "/bkt/src"})
        self.assertEqual(prepared.route.operation, "CopyObject")  # type: ignore[attr-defined]
        self.assertIsNone(prepared.call.upload)  # type: ignore[attr-defined]

    def test_part_and_part_copy(self) -> None:
        target = "/bkt/k?partNumber=1&uploadId=u"
        part = self.prepared_after_headers("PUT", target, {"content-length": "1"})
        self.assertEqual(part.route.operation, "UploadPart")  # type: ignore[attr-defined]
        copy = self.prepared_after_headers("PUT", target, {"x-amz-copy-source": "bkt/s"})
        self.assertEqual(copy.route.operation, "UploadPartCopy")  # type: ignore[attr-defined]

    def test_call_record_holds_what_handlers_read(self) -> None:
        prepared = self.prepared_after_headers(
            "GET", "/bkt/dir/k?versionId=v1&x-id=GetObject", {"Range": "bytes=0-1"}
        )
        call = prepared.call  # type: ignore[attr-defined]
        self.assertEqual((call.method, call.bucket, call.key), ("GET", "bkt", "dir/k"))
        self.assertEqual(call.params["versionId"], "v1")
        self.assertEqual(call.subresources, frozenset())
        self.assertEqual(call.header("range"), "bytes=0-1")
        self.assertEqual(call.identity.access_key, "AKIDMEMORY")

    def test_unknown_subresource_is_not_implemented_and_touches_nothing(self) -> None:
        self.s3.request("PUT", "/bkt/k", b"kept")
        response = self.s3.request("PUT", "/bkt/k?website", b"<x/>")
        self.assertEqual((response.status, response.code()), (501, "NotImplemented"))
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"kept")

    def test_header_refusal_never_reads_the_body(self) -> None:
        conn = self.s3.connect()
        conn.send(self.s3.head_block("PUT", "/bkt/k%00", {"content-length": "5"}))
        response = conn.response()
        assert response is not None
        self.assertEqual(response.code(), "InvalidURI")
        self.assertTrue(conn.transport.disconnecting)


class BackpressureTests(MemoryTestCase):
    """An upload pauses the socket while the engine is behind, and resumes when it catches up."""

    runner = QueuedRunner()

    def setUp(self) -> None:
        self.runner = QueuedRunner()
        super().setUp()

    def test_pause_and_resume(self) -> None:
        runner = self.runner
        assert runner is not None
        piece = os.urandom(1 << 20)
        total = MAX_INFLIGHT + (8 << 20)
        conn = self.s3.connect()
        conn.send(self.s3.head_block("PUT", "/bkt/big", {"content-length": str(total)}))
        sent = 0
        while sent < total and not conn.paused:
            conn.send(piece)
            sent += len(piece)
        self.assertTrue(conn.paused, "the socket was never paused")
        self.assertGreater(sent, MAX_INFLIGHT)
        self.assertLess(sent, total)
        self.assertTrue(runner.jobs, "nothing is waiting for the engine")
        while conn.paused and runner.run_one():
            pass
        self.assertFalse(conn.paused, "the socket was never resumed")
        while sent < total:
            conn.send(piece)
            sent += len(piece)
        runner.run_all()
        response = conn.response()
        assert response is not None
        self.assertEqual(response.status, 200, response.body)
        got = self.s3.request("HEAD", "/bkt/big")
        self.assertEqual(got.header("content-length"), str(total))
