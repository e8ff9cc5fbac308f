"""The S3 server in memory: the real site, seam, handlers, engine and store, no sockets.

:class:`MemoryS3` builds the server exactly as the service does
(:func:`~s4d.s3.assembly.build_s3_site`) over a store in a temporary directory
whose group committer runs inline, with a runner passed in as a value:
:class:`~s4d.util.threads.InlineRunner` (every blocking call runs at once, so a
request is answered before :meth:`MemoryS3.request` returns) or
:class:`QueuedRunner` (blocking calls wait until the test lets them run, for
tests of what happens while the engine is behind). Requests are written as
raw HTTP/1.1 bytes into a channel over a
:class:`~twisted.internet.testing.StringTransport` and signed by a test signer
(:func:`s4d.auth.sigv4.sign_request`); timeouts run on a
:class:`~twisted.internet.task.Clock`.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import IResource

from s4d.admin.app import PUBLIC_PATHS, OpsApp, is_ops_path
from s4d.admin.bearer import JwtGuard
from s4d.admin.throttle import LoginThrottle
from s4d.admin.users import IdentityApi
from s4d.auth import sigv4
from s4d.auth.credentials import UserCredentials
from s4d.auth.tokens import TokenIssuer
from s4d.engine import Engine
from s4d.s3.assembly import build_s3_site
from s4d.s3.request import S3Channel, S3Request, S3Site
from s4d.store.clock import SYSTEM_CLOCK
from s4d.store.clock import Clock as StoreClock
from s4d.store.store import Store, StoreConfig
from s4d.util.passwords import ScryptCost
from s4d.util.served import RequestObserver
from s4d.util.threads import InlineRunner, Runner

T = TypeVar("T")

ACCESS_KEY = "AKIDMEMORY"
SECRET_KEY = "memory/secret+key"
ROOT_NAME = "root"
ROOT_PASSWORD = "memory-root-password"
#: scrypt at its cheapest: these tests check what a hash does, not what it costs
CHEAP_HASH = ScryptCost(4, 8, 1)
JWT_KEY = b"memory-tests-token-signing-key-0123456789"
HOST = "s3.test:9000"
NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


class QueuedRunner:
    """A runner whose jobs wait in a queue until :meth:`run_all` (or :meth:`run_one`)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[], Any], Deferred[Any]]] = []

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Queue ``f(*args, **kwargs)``; the Deferred fires when the test runs it."""
        d: Deferred[T] = Deferred()
        self.jobs.append((lambda: f(*args, **kwargs), d))
        return d

    def run_one(self) -> bool:
        """Run the oldest queued job; False if there was none."""
        if not self.jobs:
            return False
        job, d = self.jobs.pop(0)
        try:
            result = job()
        except BaseException:  # noqa: BLE001 - delivered as a Failure
            d.errback(Failure())
        else:
            d.callback(result)
        return True

    def run_all(self) -> int:
        """Run jobs (and the jobs they queue) until none is left; how many ran."""
        count = 0
        while self.run_one():
            count += 1
        return count


class _Transport(StringTransport):
    """Like a TCP transport: a producer may be unregistered twice; it can be aborted."""

    def unregisterProducer(self) -> None:
        self.producer = None

    def abortConnection(self) -> None:
        self.loseConnection()


@dataclass
class MemoryResponse:
    """One parsed HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A response header by (any-case) name."""
        return self.headers.get(name.lower())

    def code(self) -> str | None:
        """The S3 error code of an error document."""
        found = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return found.group(1).decode() if found else None


class MemoryConnection:
    """One client connection to the in-memory site."""

    def __init__(self, site: S3Site) -> None:
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert protocol is not None
        self.protocol = protocol
        self.transport = _Transport()
        self.protocol.makeConnection(self.transport)

    @property
    def channel(self) -> S3Channel:
        """The S3 channel behind the protocol wrapper."""
        return self.protocol._channel  # type: ignore[attr-defined, no-any-return]

    @property
    def request(self) -> S3Request | None:
        """The request being received (None between requests)."""
        requests = self.channel.requests
        return requests[-1] if requests else None  # type: ignore[no-any-return]

    def send(self, data: bytes) -> None:
        """Bytes from the client."""
        self.protocol.dataReceived(data)

    @property
    def written(self) -> bytes:
        """Everything the server wrote so far."""
        return self.transport.value()  # type: ignore[no-any-return]

    @property
    def paused(self) -> bool:
        """The server stopped reading from this connection."""
        return self.transport.producerState == "paused"  # type: ignore[no-any-return]

    def response(self, head: bool = False) -> MemoryResponse | None:
        """The first complete response written, or None if it is not complete yet."""
        return parse_response(self.written, head)

    def close(self) -> None:
        """The client closes the connection."""
        self.protocol.connectionLost(Failure(ConnectionDone()))


def parse_response(data: bytes, head: bool = False) -> MemoryResponse | None:
    """Parse one HTTP response (skipping ``100 Continue``); None while incomplete.

    ``head``: the answer to a HEAD, whose Content-Length describes no body.
    """
    while data.startswith(b"HTTP/1.1 100"):
        data = data[data.index(b"\r\n\r\n") + 4 :]
    if b"\r\n\r\n" not in data:
        return None
    block, _, rest = data.partition(b"\r\n\r\n")
    lines = block.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    return MemoryResponse(status, headers, rest[:length])


class MemoryS3:
    """An in-memory S3 server; :meth:`close` removes its data directory."""

    def __init__(
        self,
        runner: Runner | None = None,
        max_upload_size: int = 5 << 30,
        region: str = "us-east-1",
        ops: Callable[[MemoryS3], IResource] | None = None,
        observer: RequestObserver | None = None,
        segment_size: int = 1 << 30,
        store_clock: StoreClock = SYSTEM_CLOCK,
        data_dir: str | None = None,
    ) -> None:
        """``ops`` builds the ops app's resource (default: the health probes and the
        identity API: login, users, keys);
        ``observer`` is told about every answered request; ``store_clock``: the clocks
        the store reads (object lock's "now"); tests move it; ``data_dir``: an existing
        data directory to serve (removed by :meth:`close` like a fresh one)."""
        self.clock = Clock()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="s4d-memory-")
        self.store = Store(
            StoreConfig(self.data_dir, fsync=False, map_size=1 << 28, segment_size=segment_size),
            inline_commit=True,
            clock=store_clock,
        )
        self.runner = runner or InlineRunner()
        self.engine = Engine(
            self.store, self.runner, lambda f, *a, **k: f(*a, **k), password_cost=CHEAP_HASH
        )
        self.engine.users.set_up_root(ROOT_NAME, ROOT_PASSWORD)
        self.engine.directory.configure_root_key(ACCESS_KEY, SECRET_KEY)
        self.tokens = TokenIssuer(JWT_KEY, 3600, self.clock.seconds)
        self.site = build_s3_site(
            self.engine,
            UserCredentials(self.engine.directory),
            ops=ops(self) if ops is not None else self.identity_ops(),
            public_paths=PUBLIC_PATHS,
            ops_paths=is_ops_path,
            observer=observer,
            max_upload_size=max_upload_size,
            region=region,
            now=lambda: NOW,
            clock=None,
            reactor=self.clock,
        )

    def identity_ops(self) -> IResource:
        """The ops app with the identity API (login, users, keys) as the service mounts it."""
        identity = IdentityApi(
            self.engine.users,
            JwtGuard(self.tokens, self.engine.directory),
            self.tokens,
            LoginThrottle(self.clock.seconds),
        )
        return OpsApp([identity]).resource()

    def close(self) -> None:
        """Close the store and remove its directory."""
        self.store.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def connect(self) -> MemoryConnection:
        """A new client connection."""
        return MemoryConnection(self.site)

    def head_block(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        payload_hash: str = sigv4.UNSIGNED_PAYLOAD,
        sign: bool = True,
        keys: tuple[str, str] = (ACCESS_KEY, SECRET_KEY),
    ) -> bytes:
        """A request line and header block, signed with SigV4 (by ``keys``) unless ``sign``
        is false."""
        path, _, query = target.partition("?")
        all_headers = {"host": HOST}
        all_headers.update(headers or {})
        if sign:
            pairs = [
                (unquote(k), unquote(v))
                for k, _, v in (p.partition("=") for p in query.split("&") if p)
            ]
            all_headers.update(
                sigv4.sign_request(
                    method,
                    path,
                    pairs,
                    all_headers,
                    keys[0],
                    keys[1],
                    now=NOW,
                    payload_hash=payload_hash,
                )
            )
        lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in all_headers.items()]
        # surrogateescape: a value made with wire_text() goes out as its raw bytes
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")

    def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        sign: bool = True,
        keys: tuple[str, str] = (ACCESS_KEY, SECRET_KEY),
        close: bool = False,
    ) -> MemoryResponse:
        """Send one request on a new connection; the whole response (runs queued jobs).

        ``keys``: the (access key, secret key) that sign it; ``close``: close the
        connection once answered (tests that send thousands of requests).
        """
        conn = self.connect()
        headers = dict(headers or {})
        if body or method in ("PUT", "POST", "DELETE"):
            headers["content-length"] = str(len(body))
        payload = hashlib.sha256(body).hexdigest()
        conn.send(self.head_block(method, target, headers, payload, sign, keys) + body)
        if isinstance(self.runner, QueuedRunner):
            self.runner.run_all()
        response = conn.response(head=method == "HEAD")
        assert response is not None, f"no complete response: {conn.written[:300]!r}"
        if close:
            conn.close()
        return response


def key_path(bucket: str, key: str) -> str:
    """``/bucket/key`` with the key percent-encoded as clients send it."""
    return f"/{bucket}/{quote(key, safe='/')}"
