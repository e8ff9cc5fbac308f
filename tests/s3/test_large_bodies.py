"""Large upload bodies over a real socket: read in larger pieces, stored byte for byte.

A body of at least :data:`~s4d.s3.request.LARGE_BODY` is read with ``recv``
calls of :data:`~s4d.s3.request.LARGE_BODY_READ` bytes (fewer trips through the
reactor and twisted.web per byte); once it is in, the connection reads in
twisted's ordinary pieces again. The body is sent in two halves with a pause
between them, so the connection is looked at while the body is arriving. No
timings here: the benchmark (``python -m s4d.bench s3 --large``) measures it.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.tcp import Connection
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from s4d.s3.request import LARGE_BODY, LARGE_BODY_READ
from tests.s3.rawhttp import parse_responses, signed_headers
from tests.s3.server import InProcessServer, boto3_client


class LargeBodyReadTests(TestCase):
    def setUp(self) -> None:
        self.server = InProcessServer()
        self.url = self.server.start()
        self.port = self.server.port.getHost().port
        self.s3 = boto3_client(self.url)

    def tearDown(self) -> Any:
        return self.server.stop()

    def transports(self) -> list[Connection]:
        found = [channel.transport for channel in self.server.site.channels]
        return [t for t in found if isinstance(t, Connection)]

    async def body_in_halves(self, key: str, body: bytes) -> tuple[int, list[int]]:
        """PUT ``body`` in two halves; the status and the read sizes seen between them."""
        await deferToThread(self.s3.create_bucket, Bucket="big")
        host = f"127.0.0.1:{self.port}"
        headers = signed_headers(host, "PUT", f"/big/{key}", body=body)
        head = f"PUT /big/{key} HTTP/1.1\r\n".encode()
        for name, value in headers.items():
            head += f"{name}: {value}\r\n".encode()
        head += f"content-length: {len(body)}\r\n\r\n".encode()
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            half = len(body) // 2
            await deferToThread(sock.sendall, head + body[:half])
            for _ in range(1000):
                if any(getattr(c.requests[-1], "bytes_in", 0) for c in self._busy()):
                    break
                await deferLater(reactor, 0.01, lambda: None)
            during = [t.bufferSize for t in self.transports()]
            await deferToThread(sock.sendall, body[half:])
            answer = b""
            while b"\r\n\r\n" not in answer:
                got = await deferToThread(sock.recv, 65536)
                if not got:
                    break
                answer += got
        finally:
            sock.close()
        return parse_responses(answer)[-1][0], during

    def _busy(self) -> list[Any]:
        return [c for c in self.server.site.channels if c.requests]

    async def test_large_body_is_read_in_large_pieces(self) -> None:
        body = os.urandom(LARGE_BODY * 3 + 12345)
        status, during = await self.body_in_halves("large", body)
        self.assertEqual(status, 200)
        self.assertIn(LARGE_BODY_READ, during)
        after = [t.bufferSize for t in self.transports()]
        self.assertTrue(after)
        self.assertEqual(set(after), {Connection.bufferSize})
        got = await deferToThread(self.s3.get_object, Bucket="big", Key="large")
        data = await deferToThread(got["Body"].read)
        self.assertEqual(hashlib.sha256(data).digest(), hashlib.sha256(body).digest())
        self.assertEqual(got["ETag"], f'"{hashlib.md5(body).hexdigest()}"')

    async def test_small_body_keeps_ordinary_reads(self) -> None:
        body = os.urandom(LARGE_BODY - 1)
        status, during = await self.body_in_halves("small", body)
        self.assertEqual(status, 200)
        self.assertTrue(during)
        self.assertEqual(set(during), {Connection.bufferSize})
