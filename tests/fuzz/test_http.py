"""Fuzzing the HTTP seam: raw bytes into the S3 channel, every answer checked.

Strategy: a real :class:`~s4d.s3.request.S3Site` with the real S3 front end and
dispatch table, over a :class:`~twisted.internet.testing.StringTransport` and a
:class:`~twisted.internet.task.Clock`, so nothing touches the network and every
timeout can be run out on demand. The engine is a stub whose every call fails
with ``NoSuchBucket`` (and whose uploads swallow bytes), so requests go as far
as the handlers' own parsing before it. Inputs are arbitrary bytes, and
requests shaped from a vocabulary of methods, targets and headers (odd
lengths, transfer encodings, Expect, ranges, x-amz-* values), some correctly
signed with SigV4 so they get past authentication, damaged at random and cut
into random pieces. Whatever comes in, the channel must not raise, and what it
writes must parse as HTTP responses whose errors carry an S3 ``<Code>``; a
``500`` is a bug (something other than an S3 error escaped a parser).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from s4d.admin.app import PUBLIC_PATHS, OpsApp
from s4d.auth import sigv4
from s4d.errors import S3Error
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.s3.request import ConnectionLimits, S3Site
from tests.fuzz._support import INTERESTING, edits, fuzz, mutate, odd_text, split_at

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AK = "AKIDFUZZ"
SK = "fuzz/secret+key"
HOST = "127.0.0.1:9000"


class _Transport(StringTransport):
    """Like a TCP transport, it lets a producer be unregistered twice."""

    def unregisterProducer(self) -> None:
        self.producer = None


class _Upload:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def abort(self) -> None:
        pass

    def take_whole(self) -> bytes:
        return bytes(self.data)

    def close(self) -> Any:
        return succeed([])


class _Facade:
    """Uploads swallow their bytes; every other call fails with NoSuchBucket."""

    def upload(self, hashers: list[Any]) -> _Upload:
        return _Upload()

    def discard(self, chunks: list[Any]) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: fail(S3Error("NoSuchBucket"))


class _Engine:
    """Every area of the engine is a :class:`_Facade`."""

    def __init__(self) -> None:
        self.buckets = self.objects = self.multipart = self.renames = self.locks = _Facade()
        self.lifecycle = _Facade()


def make_site(clock: Clock) -> S3Site:
    limits = ConnectionLimits(
        idle_timeout=5, header_timeout=3, body_timeout=2, max_header_bytes=4096, max_connections=4
    )
    return build_s3_site(
        _Engine(),  # type: ignore[arg-type]
        StaticCredentials({AK: SK}),
        ops=OpsApp().resource(),
        public_paths=PUBLIC_PATHS,
        max_upload_size=1 << 20,
        now=lambda: NOW,
        clock=None,
        limits=limits,
        reactor=clock,
    )


_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


def responses(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Split what the server wrote into (status, head, body); fail on anything else."""
    out = []
    while data:
        match = _STATUS.match(data)
        assert match, f"not an HTTP response: {data[:200]!r}"
        end = data.index(b"\r\n\r\n") + 4
        head, data = data[:end], data[end:]
        status = int(match.group(1))
        length = re.search(rb"(?i)\r\ncontent-length: (\d+)\r\n", head)
        size = int(length.group(1)) if length and status not in (100, 204, 304) else 0
        if status == 100 or data[:size].startswith(b"HTTP/1.1 "):
            size = 0  # an interim response, or the answer to a HEAD: no body
        out.append((status, head, data[:size]))
        data = data[size:]
        if status != 100 and not length and status not in (204, 304):
            break  # no length: the body runs to the end of the connection
    return out


methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "G\x00T"])
targets = st.one_of(
    st.sampled_from(
        ["/", "/bkt", "/bkt/key", "/bkt/a/../b", "/bkt/%ff", "/bkt/%00", "/bkt?uploads",
         "/bkt/k?uploadId=x&partNumber=1", "/bkt?delete", "/bkt?list-type=2&max-keys=\u00b2",
         "/health", "/bkt/k?acl", "/bkt?versioning", "/bkt/k?renameObject", "*",
         "/bkt/" + "k" * 1100]
    ),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30).map(
        lambda t: "/" + t
    ),
)  # fmt: skip
header_names = st.sampled_from(
    ["content-length", "transfer-encoding", "expect", "range", "content-md5", "content-type",
     "x-amz-content-sha256", "x-amz-decoded-content-length", "x-amz-trailer", "content-encoding",
     "x-amz-copy-source", "x-amz-copy-source-range", "x-amz-meta-a", "x-amz-storage-class",
     "x-amz-rename-source", "if-match", "if-modified-since", "x-amz-checksum-crc32",
     "x-amz-mp-object-size", "x-amz-checksum-algorithm", "authorization", "connection", "host"]
)  # fmt: skip
header_values = st.one_of(
    odd_text,
    st.sampled_from(
        ["100-continue", "chunked", "gzip", "0", "5", "-1", "bytes=0-1", "bytes=\u00b2-",
         "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "aws-chunked", "close",
         "multipart/form-data; boundary=x", "bkt/key", "/bkt/k?versionId=1", "x-amz-checksum-crc32"]
    ),
)  # fmt: skip


@st.composite
def shaped_requests(draw: st.DrawFn) -> bytes:
    method = draw(methods)
    target = draw(targets)
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=6))
    body = draw(
        st.one_of(
            st.binary(max_size=60), st.sampled_from([b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n"])
        )
    )
    if draw(st.booleans()):
        signed = {"host": HOST}
        signed.update({k: v for k, v in headers if k not in ("authorization", "host")})
        path, _, query = target.partition("?")
        pairs = [tuple((p.split("=", 1) + [""])[:2]) for p in query.split("&") if p]
        try:
            signed.update(
                sigv4.sign_request(
                    method,
                    path,
                    pairs,
                    signed,
                    AK,
                    SK,
                    now=NOW,
                    payload_hash=draw(st.sampled_from(["UNSIGNED-PAYLOAD", sigv4.EMPTY_SHA256])),
                )
            )
        except (ValueError, UnicodeError):
            pass
        headers = list(signed.items())
    elif draw(st.booleans()):
        headers.append(("host", HOST))
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
    head = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n"
    return head + body


class ChannelFuzz(SynchronousTestCase):
    def exchange(self, pieces: list[bytes], run_clock: bool) -> bytes:
        clock = Clock()
        site = make_site(clock)
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        assert protocol is not None
        transport = _Transport()
        protocol.makeConnection(transport)
        for piece in pieces:
            if transport.disconnecting:
                break
            protocol.dataReceived(piece)
        if run_clock:
            clock.advance(10)
            clock.advance(20)
        written = transport.value()
        protocol.connectionLost(Failure(ConnectionError("done")))
        clock.advance(60)
        for status, _, body in responses(written):
            self.assertNotEqual(status, 500, written[:2000])
            if status >= 400 and body:
                self.assertIn(b"<Code>", body, written[:2000])
        return written

    @fuzz(300)
    @given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6), st.booleans())
    def test_random_bytes(self, data: bytes, cuts: list[int], run_clock: bool) -> None:
        self.exchange(split_at(data, cuts), run_clock)

    @fuzz(500)
    @given(
        st.lists(shaped_requests(), min_size=1, max_size=3),
        edits,
        st.lists(st.integers(0, 2000), max_size=6),
        st.booleans(),
    )
    def test_shaped_requests(
        self,
        requests: list[bytes],
        damage: list[tuple[int, int, bytes]],
        cuts: list[int],
        run_clock: bool,
    ) -> None:
        self.exchange(split_at(mutate(b"".join(requests), damage), cuts), run_clock)

    @fuzz(100)
    @given(st.lists(st.sampled_from(INTERESTING), max_size=30), st.booleans())
    def test_token_soup(self, tokens: list[bytes], run_clock: bool) -> None:
        self.exchange([b"PUT /bkt/k HTTP/1.1\r\n", *tokens], run_clock)
