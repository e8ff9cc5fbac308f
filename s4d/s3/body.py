"""The body sink: an upload's bytes from the socket to the engine, checked on the way.

It undoes aws-chunked framing (verifying chunk signatures), feeds the engine's
:class:`~s4d.engine.Upload` (which hashes for the ETag and any checksums in
worker threads), pauses the socket when the engine is behind, and at the end
checks Content-MD5, the signed payload SHA-256, the flexible checksum and the
declared lengths before anything is committed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from s4d.auth.chunked import AwsChunkedDecoder
from s4d.auth.sigv4 import is_sha256_hex
from s4d.engine import Engine, Upload
from s4d.errors import S3Error
from s4d.features.objects import NewObject, WriteConditions
from s4d.s3 import checksums as ck
from s4d.store.chunks import WrittenChunk
from s4d.store.model import ObjectVersion
from s4d.util.numbers import decimal


@dataclass
class UploadedBody:
    """What arrived: its chunks (written, not yet committed) and its digests."""

    chunks: list[WrittenChunk]
    size: int
    md5_hex: str
    checksums: dict[str, str] = field(default_factory=dict)


def _header(req: Any, name: str) -> str | None:
    return req.header(name)


class BodySink:
    """Receives one upload's body chunk by chunk."""

    log = Logger()

    def __init__(self, engine: Engine, req: Any, auth: Any, max_size: int) -> None:
        self.max_size = max_size
        self.payload_hash = (auth.payload_hash if auth is not None else None) or "UNSIGNED-PAYLOAD"
        self.md5 = hashlib.md5(usedforsecurity=False)
        hashers: list[Any] = [self.md5]
        self.sha256 = None
        if is_sha256_hex(self.payload_hash):
            self.sha256 = hashlib.sha256()
            hashers.append(self.sha256)
        self.content_md5 = _header(req, "content-md5")
        if self.content_md5 is not None:
            try:
                raw = base64.b64decode(self.content_md5, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 16:
                raise S3Error("InvalidDigest")
        self.checksum_expected: dict[str, str | None] = {}
        self.checksums: dict[str, ck.Checksum] = {}
        for alg in ck.ALGORITHMS:
            value = _header(req, ck.header_name(alg))
            if value is not None:
                self.checksum_expected[alg] = value
        trailer_names = [
            t.strip().lower() for t in (_header(req, "x-amz-trailer") or "").split(",") if t.strip()
        ]
        for name in trailer_names:
            alg = ck.algorithm_from_header(name)
            if alg is None:
                raise S3Error("InvalidRequest", f"Unsupported trailer {name}.")
            self.checksum_expected.setdefault(alg, None)
        sdk_alg = (_header(req, "x-amz-sdk-checksum-algorithm") or "").upper()
        if sdk_alg:
            if sdk_alg not in ck.ALGORITHMS:
                raise S3Error("InvalidRequest", "Unsupported checksum algorithm.")
            self.checksum_expected.setdefault(sdk_alg, None)
        if len(self.checksum_expected) > 1:
            raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header.")
        for alg in self.checksum_expected:
            self.checksums[alg] = ck.new_checksum(alg)
            hashers.append(self.checksums[alg])
        self.decoder: AwsChunkedDecoder | None = None
        self.decoded_length: int | None = None
        if self.payload_hash.startswith("STREAMING-"):
            declared = _header(req, "x-amz-decoded-content-length")
            if declared is not None:
                self.decoded_length = decimal(declared.strip())
                if self.decoded_length is None:
                    raise S3Error("InvalidArgument", "Bad x-amz-decoded-content-length.")
            elif self.payload_hash != "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
                raise S3Error("MissingContentLength")
            self.decoder = AwsChunkedDecoder(
                self.payload_hash,
                signing_key=getattr(auth, "signing_key", None),
                seed_signature=getattr(auth, "seed_signature", None),
                amz_date=getattr(auth, "amz_date", None),
                scope=getattr(auth, "scope", None),
                expected_trailers=trailer_names,
            )
        declared_length = decimal(_header(req, "content-length"))
        if self.decoder is None and declared_length is not None and declared_length > max_size:
            raise S3Error("EntityTooLarge")
        if self.decoded_length is not None and self.decoded_length > max_size:
            raise S3Error("EntityTooLarge")
        self.hashers = hashers
        self.upload: Upload = engine.upload(hashers)
        self.engine = engine
        self.received = 0
        self.error: S3Error | None = None
        #: :meth:`finish` or :meth:`store` took the body: its chunks are theirs to keep or discard
        self.consumed = False
        self._paused_transport: Any = None

    def feed(self, data: bytes, transport: Any) -> None:
        """Take bytes from the socket."""
        if self.error is not None:
            return
        try:
            pieces = self.decoder.feed(data) if self.decoder is not None else [data]
            for piece in pieces:
                if not piece:
                    continue
                self.received += len(piece)
                if self.received > self.max_size:
                    raise S3Error("EntityTooLarge")
                if self.decoded_length is not None and self.received > self.decoded_length:
                    raise S3Error("IncompleteBody", "The body is longer than declared.")
                wait = self.upload.write(bytes(piece))
                if wait is not None and self._paused_transport is None and transport is not None:
                    self._paused_transport = transport
                    transport.pauseProducing()
                    wait.addCallback(self._resume)
        except S3Error as e:
            self._fail(e)

    def _resume(self, _: object) -> None:
        transport, self._paused_transport = self._paused_transport, None
        if transport is not None:
            transport.resumeProducing()

    def _fail(self, error: S3Error) -> None:
        self.error = error
        self.upload.abort()
        self._resume(None)

    def abort(self) -> None:
        """The client went away, or the request failed before the body was used."""
        if self.error is None and not self.consumed:
            self._fail(S3Error("IncompleteBody"))

    def finish(self, trailers: dict[str, str] | None = None) -> Deferred[UploadedBody]:
        """Once the body is complete: close the upload and check every digest."""
        self.consumed = True
        if trailers is None:
            try:
                trailers = self._trailers()
            except S3Error as e:
                return fail(e)
        d = self.upload.close()
        d.addCallback(self._check, trailers)
        return d

    def _verify(self, trailers: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Compare every digest with what the client declared; the MD5 and checksums."""
        md5 = self.md5.digest()
        if self.content_md5 is not None and base64.b64decode(self.content_md5) != md5:
            raise S3Error("BadDigest")
        if self.sha256 is not None and self.sha256.hexdigest() != self.payload_hash.lower():
            raise S3Error("XAmzContentSHA256Mismatch")
        sums: dict[str, str] = {}
        for alg, checksum in self.checksums.items():
            actual = checksum.b64()
            expected = self.checksum_expected.get(alg)
            if expected is None:
                expected = trailers.get(ck.header_name(alg))
            if expected is not None and expected != actual:
                raise S3Error(
                    "BadDigest", f"The {alg} you specified did not match the calculated checksum."
                )
            sums[alg] = actual
        return md5.hex(), sums

    def _check(self, chunks: list[WrittenChunk], trailers: dict[str, str]) -> UploadedBody:
        try:
            md5_hex, sums = self._verify(trailers)
        except S3Error:
            self.engine.discard(chunks)
            raise
        return UploadedBody(chunks, self.received, md5_hex, sums)

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

    def store(
        self, bucket: str, key: str, new: NewObject, conditions: WriteConditions
    ) -> Deferred[ObjectVersion]:
        """Commit the body as object ``key``, checked; small bodies take the fast path."""
        self.consumed = True
        try:
            trailers = self._trailers()
        except S3Error as e:
            return fail(e)
        data = self.upload.take_whole()
        if data is None:

            def commit(body: UploadedBody) -> Deferred[ObjectVersion]:
                new.size, new.etag, new.checksums = body.size, body.md5_hex, body.checksums
                return self.engine.commit_put(bucket, key, new, body.chunks, conditions)

            return self.finish(trailers).addCallback(commit)

        def finalize() -> NewObject:
            new.etag, new.checksums = self._verify(trailers)
            new.size = len(data)
            return new

        return self.engine.put_whole(bucket, key, data, self.hashers, finalize, conditions)


def failure_of(error: S3Error) -> Failure:
    """A Failure wrapping ``error`` (for handlers that build Deferreds)."""
    return Failure(error)
