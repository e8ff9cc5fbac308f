"""The body sink: an upload's bytes from the socket to the engine, decoded and checked.

It undoes aws-chunked framing (verifying chunk signatures), feeds the engine's
:class:`~s4d.engine.Upload` (which writes chunks and runs the digests in worker
threads), pauses the socket when the engine is behind, and when the body is
complete hands back an :data:`~s4d.engine.UploadedBody`: the handler, never the
sink, commits it. Content-MD5, the signed payload SHA-256 and flexible
checksums are declared to the engine's :class:`~s4d.engine.BodyDigests`, which
compares them when the bytes are all in.
"""

from __future__ import annotations

import base64
import binascii
from typing import Protocol

from twisted.internet.defer import Deferred, fail, succeed

from s4d.auth.chunked import AwsChunkedDecoder
from s4d.auth.sigv4 import AuthResult, is_sha256_hex
from s4d.engine import BodyDigests, DeclaredDigests, ObjectsFacade, UploadedBody, WholeBody
from s4d.errors import S3Error
from s4d.s3.headers import CallHeaders
from s4d.util import checksums as ck
from s4d.util.numbers import decimal


class FlowControl(Protocol):
    """What a sink pauses when the engine is behind (the connection's reading side)."""

    def pauseProducing(self) -> None:
        """Stop reading from the socket."""

    def resumeProducing(self) -> None:
        """Read from the socket again."""


def declared_digests(headers: CallHeaders, payload_hash: str) -> tuple[DeclaredDigests, list[str]]:
    """What the client declared about the body, and the trailer names it announced."""
    content_md5 = headers.get("content-md5")
    raw_md5: bytes | None = None
    if content_md5 is not None:
        try:
            raw_md5 = base64.b64decode(content_md5, validate=True)
        except (binascii.Error, ValueError):
            raw_md5 = b""
        if len(raw_md5) != 16:
            raise S3Error("InvalidDigest")
    expected: dict[str, str | None] = {}
    for alg in ck.ALGORITHMS:
        value = headers.get(ck.header_name(alg))
        if value is not None:
            expected[alg] = value
    trailer_names = [
        t.strip().lower() for t in (headers.get("x-amz-trailer") or "").split(",") if t.strip()
    ]
    for name in trailer_names:
        trailer_alg = ck.algorithm_from_header(name)
        if trailer_alg is None:
            raise S3Error("InvalidRequest", f"Unsupported trailer {name}.")
        expected.setdefault(trailer_alg, None)
    sdk_alg = (headers.get("x-amz-sdk-checksum-algorithm") or "").upper()
    if sdk_alg:
        if sdk_alg not in ck.ALGORITHMS:
            raise S3Error("InvalidRequest", "Unsupported checksum algorithm.")
        expected.setdefault(sdk_alg, None)
    if len(expected) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header.")
    sha256 = payload_hash.lower() if is_sha256_hex(payload_hash) else None
    return DeclaredDigests(raw_md5, sha256, expected), trailer_names


class BodySink:
    """Receives one upload's body chunk by chunk (built at header time; may refuse then)."""

    def __init__(
        self,
        objects: ObjectsFacade,
        headers: CallHeaders,
        identity: AuthResult | None,
        max_size: int,
    ) -> None:
        self.max_size = max_size
        signed_hash = identity.payload_hash if identity is not None else ""
        self.payload_hash: str = signed_hash or "UNSIGNED-PAYLOAD"
        declared, trailer_names = declared_digests(headers, self.payload_hash)
        self.digests = BodyDigests(declared)
        self.decoder: AwsChunkedDecoder | None = None
        self.decoded_length: int | None = None
        if self.payload_hash.startswith("STREAMING-"):
            declared_length = headers.get("x-amz-decoded-content-length")
            if declared_length is not None:
                self.decoded_length = decimal(declared_length.strip())
                if self.decoded_length is None:
                    raise S3Error("InvalidArgument", "Bad x-amz-decoded-content-length.")
            elif self.payload_hash != "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
                raise S3Error("MissingContentLength")
            self.decoder = AwsChunkedDecoder(
                self.payload_hash,
                signing_key=identity.signing_key if identity is not None else None,
                seed_signature=identity.seed_signature if identity is not None else None,
                amz_date=identity.amz_date if identity is not None else None,
                scope=identity.scope if identity is not None else None,
                expected_trailers=trailer_names,
            )
        content_length = decimal(headers.get("content-length"))
        if self.decoder is None and content_length is not None and content_length > max_size:
            raise S3Error("EntityTooLarge")
        if self.decoded_length is not None and self.decoded_length > max_size:
            raise S3Error("EntityTooLarge")
        self.upload = objects.upload(self.digests.hashers)
        self.received = 0
        self.error: S3Error | None = None
        #: :meth:`receive` took the body: its chunks are the handler's to keep or discard
        self.consumed = False
        self._paused: FlowControl | None = None

    def feed(self, data: bytes, flow: FlowControl | None) -> None:
        """Take bytes from the socket; pause ``flow`` while the engine is behind."""
        if self.error is not None:
            return
        try:
            pieces: list[bytes | memoryview] = (
                self.decoder.feed(data) if self.decoder is not None else [data]
            )
            for piece in pieces:
                if not piece:
                    continue
                self.received += len(piece)
                if self.received > self.max_size:
                    raise S3Error("EntityTooLarge")
                if self.decoded_length is not None and self.received > self.decoded_length:
                    raise S3Error("IncompleteBody", "The body is longer than declared.")
                wait = self.upload.write(piece)
                if wait is not None and self._paused is None and flow is not None:
                    self._paused = flow
                    flow.pauseProducing()
                    wait.addCallback(self._resume)
        except S3Error as e:
            self._fail(e)

    def _resume(self, _: object) -> None:
        flow, self._paused = self._paused, None
        if flow is not None:
            flow.resumeProducing()

    def _fail(self, error: S3Error) -> None:
        self.error = error
        self.upload.abort()
        self._resume(None)

    def abort(self) -> None:
        """The client went away, or the request failed before the body was used."""
        if self.error is None and not self.consumed:
            self._fail(S3Error("IncompleteBody"))

    def receive(self) -> Deferred[UploadedBody]:
        """The complete body, checked: staged chunks, or (small) the bytes still in memory."""
        self.consumed = True
        try:
            trailers = self._trailers()
        except S3Error as e:
            return fail(e)
        data = self.upload.take_whole()
        if data is not None:
            return succeed(WholeBody(data, self.digests, trailers))
        staged: Deferred[UploadedBody] = self.upload.finish(self.digests, trailers)  # type: ignore[assignment]
        return staged

    def _trailers(self) -> dict[str, str]:
        if self.error is not None:
            raise self.error
        trailers: dict[str, str] = {}
        try:
            if self.decoder is not None:
                trailers = self.decoder.finish()
            if self.decoded_length is not None and self.received != self.decoded_length:
                raise S3Error("IncompleteBody")
        except S3Error as e:
            self._fail(e)
            raise
        return trailers
