"""Connection hygiene of the S3 channel, driven by a fake clock.

Strategy: a real :class:`~s4d.s3.request.S3Site` (real front end and dispatch)
builds channels over :class:`~twisted.internet.testing.StringTransport`s,
with a :class:`~twisted.internet.task.Clock` as the site's reactor, so every
timeout (idle, header block, body pace, stalled send) is run out exactly, with
no waiting and no sockets. Requests are anonymous: they get past the channel
and are refused by authentication, which is all these tests need of them.
The same behaviour over real sockets is in ``test_bad_requests.py``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from s4d.admin.app import PUBLIC_PATHS, OpsApp
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.s3.request import BodyFlow, ConnectionLimits, S3Channel, S3Site

LIMITS = ConnectionLimits(
    idle_timeout=60,
    header_timeout=10,
    body_timeout=20,
    body_min_rate=100,
    max_header_bytes=4096,
    max_connections=3,
)


class _Transport(StringTransport):
    """A StringTransport that, like TCP, lets a producer be unregistered twice."""

    def unregisterProducer(self) -> None:
        self.producer = None


class _Facade:
    def upload(self, hashers: list[Any]) -> Any:
        raise AssertionError("anonymous requests never upload")

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: succeed(None)


class _Engine:
    def __init__(self) -> None:
        self.buckets = self.objects = self.multipart = self.renames = self.locks = _Facade()
        self.admin = self.maintenance = _Facade()
        self.lifecycle = _Facade()
        self.users = self.directory = _Facade()


class Connection:
    """One channel of the site, its transport and what it wrote."""

    def __init__(self, site: S3Site) -> None:
        self.protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert self.protocol is not None
        self.transport = _Transport()
        self.protocol.makeConnection(self.transport)

    @property
    def channel(self) -> S3Channel:
        return self.protocol._channel  # type: ignore[no-any-return, union-attr]

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    @property
    def written(self) -> bytes:
        return self.transport.value()  # type: ignore[no-any-return]

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionError("gone")))


class LimitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.site = build_s3_site(
            _Engine(),  # type: ignore[arg-type]
            StaticCredentials({"AK": "SK"}),
            ops=OpsApp().resource(),
            public_paths=PUBLIC_PATHS,
            limits=LIMITS,
            reactor=self.clock,
        )

    def connect(self) -> Connection:
        return Connection(self.site)

    def assert_refused(self, conn: Connection, status: bytes, code: bytes) -> None:
        self.assertTrue(conn.written.startswith(b"HTTP/1.1 " + status), conn.written[:200])
        self.assertIn(b"<Code>" + code + b"</Code>", conn.written)
        self.assertIn(b"Connection: close\r\n", conn.written)
        self.assertTrue(conn.closing)

    # -- idle ------------------------------------------------------------------------------

    def test_idle_connection_is_closed_silently(self) -> None:
        conn = self.connect()
        self.clock.advance(59)
        self.assertFalse(conn.closing)
        self.clock.advance(2)
        self.assertTrue(conn.closing)
        self.assertEqual(conn.written, b"")

    def test_idle_timer_starts_again_after_a_request(self) -> None:
        conn = self.connect()
        self.clock.advance(50)
        conn.send(b"GET /bkt HTTP/1.1\r\nhost: x\r\n\r\n")
        self.assertIn(b"HTTP/1.1 403", conn.written)
        self.clock.advance(50)
        self.assertFalse(conn.closing)
        self.clock.advance(11)
        self.assertTrue(conn.closing)

    # -- the header block ----------------------------------------------------------------------

    def test_slow_headers(self) -> None:
        conn = self.connect()
        conn.send(b"GET /bkt HTTP/1.1\r\n")
        for _ in range(9):
            self.clock.advance(1)
            conn.send(b"x-a: 1\r\n")  # each byte resets the idle timer, not the header clock
        self.assertFalse(conn.closing)
        self.clock.advance(1)
        self.assert_refused(conn, b"400", b"RequestTimeout")

    def test_header_clock_starts_at_the_first_byte(self) -> None:
        conn = self.connect()
        self.clock.advance(30)  # idle, within the idle timeout: no header clock yet
        conn.send(b"GET /bkt HTTP/1.1\r\n")
        self.clock.advance(9)
        conn.send(b"host: x\r\n\r\n")
        self.assertIn(b"HTTP/1.1 403", conn.written)
        self.clock.advance(20)
        self.assertFalse(conn.closing)

    def test_header_block_too_large(self) -> None:
        conn = self.connect()
        conn.send(
            b"GET /bkt HTTP/1.1\r\n"
            + b"".join(b"x-h%d: %s\r\n" % (i, b"a" * 100) for i in range(50))
        )
        self.assert_refused(conn, b"400", b"RequestHeaderSectionTooLarge")
        self.assertIn(b"<MaxSizeAllowed>4096</MaxSizeAllowed>", conn.written)

    def test_header_line_too_long(self) -> None:
        conn = self.connect()
        conn.send(b"GET /bkt HTTP/1.1\r\nx-big: " + b"a" * 5000)  # no line end yet
        self.assert_refused(conn, b"400", b"RequestHeaderSectionTooLarge")

    def test_malformed_request_line(self) -> None:
        conn = self.connect()
        conn.send(b"NOT HTTP\r\n\r\n")
        self.assert_refused(conn, b"400", b"InvalidRequest")

    def test_head_refusal_has_no_body(self) -> None:
        conn = self.connect()
        conn.send(b"HEAD /bkt HTTP/1.1\r\ncontent-length: nope\r\n\r\n")
        self.assertTrue(conn.written.startswith(b"HTTP/1.1 400"), conn.written)
        self.assertTrue(conn.written.endswith(b"\r\n\r\n"), conn.written)

    # -- bodies ----------------------------------------------------------------------------

    def start_body(self, length: int = 100_000) -> Connection:
        """A request with a body that passes the front end (a health check, oddly with a body)."""
        conn = self.connect()
        conn.send(b"GET /health HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % length)
        return conn

    def test_body_at_the_minimum_pace_is_accepted(self) -> None:
        conn = self.start_body(10_000)
        for _ in range(4):
            conn.send(b"x" * 2000)  # 2000 bytes per window of 20 s: the minimum
            self.clock.advance(20)
        self.assertFalse(conn.closing)
        conn.send(b"x" * 2000)
        self.assertIn(b"HTTP/1.1 200", conn.written)  # complete: answered

    def test_slow_body_is_abandoned(self) -> None:
        conn = self.start_body()
        conn.send(b"x" * 2000)
        self.clock.advance(20)
        self.assertFalse(conn.closing)
        conn.send(b"x" * 1999)  # one byte short of the pace
        self.clock.advance(20)
        self.assert_refused(conn, b"400", b"RequestTimeout")

    def test_silent_body_is_abandoned(self) -> None:
        conn = self.start_body()
        self.clock.advance(20)
        self.assert_refused(conn, b"400", b"RequestTimeout")

    def test_idle_timeout_does_not_cut_a_body_short(self) -> None:
        """While a body arrives, its pace is judged, not the idle timeout."""
        conn = self.start_body(10**6)
        for _ in range(10):
            conn.send(b"x" * 5000)
            self.clock.advance(19)
        self.assertFalse(conn.closing)

    def test_backpressure_is_not_a_slow_client(self) -> None:
        conn = self.start_body()
        flow = conn.channel.body_flow
        assert flow is not None
        flow.pauseProducing()  # the server holds the body back
        self.clock.advance(100)
        self.assertFalse(conn.closing)
        flow.resumeProducing()
        self.clock.advance(20)  # a window that saw a pause is not judged
        self.assertFalse(conn.closing)
        self.clock.advance(20)  # a whole window with nothing: the client is to blame
        self.assert_refused(conn, b"400", b"RequestTimeout")

    def test_body_clock_stops_when_the_body_is_in(self) -> None:
        conn = self.start_body(10)
        conn.send(b"x" * 10)
        self.assertIn(b"HTTP/1.1 200", conn.written)
        self.assertIsNone(conn.channel._body_timer)

    def test_body_flow_forwards_to_the_transport(self) -> None:
        transport = _Transport()
        flow = BodyFlow(transport)
        flow.pauseProducing()
        self.assertEqual((transport.producerState, flow.paused, flow.switches), ("paused", True, 1))
        flow.resumeProducing()
        self.assertEqual((transport.producerState, flow.paused), ("producing", False))

    # -- sending ---------------------------------------------------------------------------

    def responding(self) -> Connection:
        """A connection whose response is being written (twisted.web's idle timer is off)."""
        conn = self.connect()
        conn.channel.setTimeout(None)
        return conn

    def test_client_that_stops_reading_is_dropped(self) -> None:
        conn = self.responding()
        conn.channel.pauseProducing()  # the transport's buffer is full
        self.clock.advance(59)
        self.assertFalse(conn.closing)
        self.clock.advance(2)
        self.assertTrue(conn.transport.disconnecting)

    def test_client_that_reads_again_is_kept(self) -> None:
        conn = self.responding()
        conn.channel.pauseProducing()
        self.clock.advance(59)
        conn.channel.resumeProducing()
        self.clock.advance(30)
        self.assertFalse(conn.closing)

    # -- the connection limit ------------------------------------------------------------------

    def test_connection_limit(self) -> None:
        held = [self.connect() for _ in range(LIMITS.max_connections)]
        extra = self.connect()
        self.assertEqual(len(self.site.channels), LIMITS.max_connections + 1)
        extra.send(b"GET /bkt HTTP/1.1\r\nhost: x\r\n\r\n")
        self.assert_refused(extra, b"503", b"SlowDown")
        extra.lose()
        held[0].lose()
        self.assertEqual(len(self.site.channels), LIMITS.max_connections - 1)
        again = self.connect()
        again.send(b"GET /bkt HTTP/1.1\r\nhost: x\r\n\r\n")
        self.assertIn(b"HTTP/1.1 403", again.written)  # served (and refused by authentication)

    def test_over_limit_upload_gets_no_continue(self) -> None:
        for _ in range(LIMITS.max_connections):
            self.connect()
        extra = self.connect()
        extra.send(
            b"PUT /bkt/k HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 9\r\n\r\n"
        )
        self.assertNotIn(b"100 Continue", extra.written)
        self.assert_refused(extra, b"503", b"SlowDown")

    def test_refused_connection_is_aborted_if_it_never_reads(self) -> None:
        conn = self.connect()
        conn.send(b"NOT HTTP\r\n\r\n")
        self.assertTrue(conn.closing)
        self.clock.advance(conn.channel.abortTimeout)
        self.assertTrue(conn.transport.disconnected)

    def test_timers_are_cancelled_on_disconnect(self) -> None:
        conn = self.start_body()
        conn.channel.pauseProducing()
        conn.lose()
        pending = [
            c for c in self.clock.getDelayedCalls() if c.func != self.site._updateLogDateTime
        ]
        self.assertEqual(pending, [])


class SettingsTests(SynchronousTestCase):
    """The S4_* settings reach the channels of the site the service builds."""

    ENV = {
        "S4_ACCESS_KEY_ID": "AK",
        "S4_SECRET_ACCESS_KEY": "SK",
        "S4_JWT_SECRET": "settings-tests-token-signing-key-0123456789",
    }

    def test_defaults(self) -> None:
        from s4d import config
        from s4d.service import connection_limits

        self.assertEqual(connection_limits(config.build(env=self.ENV)), ConnectionLimits())

    def test_environment(self) -> None:
        from s4d import config
        from s4d.service import build_site

        env = dict(
            self.ENV,
            S4_IDLE_TIMEOUT="7",
            S4_HEADER_TIMEOUT="0",
            S4_BODY_TIMEOUT="9.5",
            S4_BODY_MIN_RATE="2KB",
            S4_MAX_HEADER_BYTES="16KB",
            S4_MAX_CONNECTIONS="5",
        )
        clock = Clock()
        site = build_site(config.build(env=env), _Engine(), clock)  # type: ignore[arg-type]
        self.assertEqual(
            site.limits,
            ConnectionLimits(
                idle_timeout=7.0,
                header_timeout=None,
                body_timeout=9.5,
                body_min_rate=2048,
                max_header_bytes=16 << 10,
                max_connections=5,
            ),
        )
        conn = Connection(site)
        self.assertEqual(conn.channel.totalHeadersSize, 16 << 10)
        self.assertEqual(conn.channel.MAX_LENGTH, 16 << 10)
        self.assertEqual(conn.channel.timeOut, 7.0)
        clock.advance(7)
        self.assertTrue(conn.closing)  # the site's clock drives the channel's timers
