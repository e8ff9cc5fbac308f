"""Incremental decoding (and, for tests, encoding) of ``aws-chunked`` request bodies.

The body of a request whose ``x-amz-content-sha256`` is one of the
``STREAMING-*`` values is a sequence of chunks, each ``hex-size[;ext]\\r\\n
data\\r\\n``, ending with a zero-size chunk and, in the ``-TRAILER`` modes,
trailing headers. :class:`AwsChunkedDecoder` strips that framing from a body
fed in arbitrary pieces, verifies chunk and trailer signatures in the signed
modes, and returns the trailers at the end.

Decoded data is handed out as soon as it arrives, before the signature of its
chunk has been checked (a chunk may be as large as the client likes, so it is
not held back). A caller must therefore treat nothing as stored until
:meth:`AwsChunkedDecoder.finish` has returned.

Leniency, all seen from real clients: a chunk extension may be empty
(``10000;``, the AWS CRT), an empty line may separate the last chunk from the
trailers, and the final empty line (or even the CRLF of the last trailer) may
be missing at the end of the body. Anything else malformed is rejected.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence

from s4d.auth.sigv4 import (
    EMPTY_SHA256,
    STREAMING_MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
)
from s4d.errors import S3Error

#: Longest chunk header line accepted, CRLF included.
MAX_CHUNK_HEADER = 4096
#: Largest trailer section accepted.
MAX_TRAILER_SECTION = 16384
#: Most significant hex digits in a chunk size (sizes below 2**64); leading zeros are free.
MAX_SIZE_DIGITS = 16

TRAILER_SIGNATURE = "x-amz-trailer-signature"
CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}\Z")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

_SIGNED_NEEDS = "signed aws-chunked needs signing_key, seed_signature, amz_date and scope"
_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def chunk_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, chunk_sha256_hex: str
) -> str:
    """The string to sign of one chunk of a signed aws-chunked body."""
    return (
        f"{CHUNK_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n"
        f"{EMPTY_SHA256}\n{chunk_sha256_hex}"
    )


def trailer_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, canonical_trailers: bytes
) -> str:
    """The string to sign of the trailers (each ``name:value\\n``) of a signed body."""
    digest = hashlib.sha256(canonical_trailers).hexdigest()
    return f"{TRAILER_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n{digest}"


def _sign(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode("ascii"), hashlib.sha256).hexdigest()


def _malformed(message: str) -> S3Error:
    return S3Error("InvalidRequest", f"Malformed aws-chunked body: {message}.")


class AwsChunkedDecoder:
    """Strip ``aws-chunked`` framing from a body fed in pieces of any size.

    :param mode: the request's ``x-amz-content-sha256``, one of
        :data:`~s4d.auth.sigv4.STREAMING_MODES`.
    :param signing_key: the SigV4 signing key (signed modes).
    :param seed_signature: the request's signature (signed modes).
    :param amz_date: the request timestamp, ISO 8601 basic (signed modes).
    :param scope: the credential scope (signed modes).
    :param expected_trailers: the trailers announced in ``x-amz-trailer``;
        any other trailer is rejected and each must arrive. ``None`` accepts
        whatever trailers come.
    """

    def __init__(
        self,
        mode: str,
        *,
        signing_key: bytes | None = None,
        seed_signature: str | None = None,
        amz_date: str | None = None,
        scope: str | None = None,
        expected_trailers: Sequence[str] | None = None,
    ) -> None:
        if mode not in STREAMING_MODES:
            if mode.startswith("STREAMING-AWS4-ECDSA"):
                raise S3Error("NotImplemented", "Signature Version 4A is not supported.")
            raise S3Error("InvalidArgument", f"Unsupported x-amz-content-sha256 value {mode}.")
        self.mode = mode
        self._signed = mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        self._with_trailers = mode in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
        if self._signed and (
            signing_key is None or seed_signature is None or amz_date is None or scope is None
        ):
            raise ValueError(_SIGNED_NEEDS)
        self._key = signing_key or b""
        self._previous = seed_signature or ""
        self._amz_date = amz_date or ""
        self._scope = scope or ""
        self._expected = (
            None if expected_trailers is None else {name.lower() for name in expected_trailers}
        )
        self._buffer = bytearray()
        self._state = _HEADER
        self._remaining = 0
        self._chunk_signature = b""
        self._chunk_hash: hashlib._Hash | None = None
        self._trailers: dict[str, str] = {}
        self._canonical_trailers = bytearray()
        self._trailer_bytes = 0
        self._trailer_signed = False
        self._blank_before_trailers = False
        self._finished = False
        #: Number of decoded payload bytes so far.
        self.decoded_size = 0

    # -- public ---------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
        """Consume the next piece of the body; return the payload pieces it completes.

        A piece is the fed bytes themselves or a read-only view of them (never a
        copy of a fed ``bytes``); the decoder never changes what it hands out.

        :raises S3Error: ``InvalidRequest`` for malformed framing,
            ``SignatureDoesNotMatch`` for a bad chunk or trailer signature.
        """
        if self._finished:
            raise ValueError("feed() after finish()")
        out: list[bytes | memoryview] = []
        if not data:
            return out
        if isinstance(data, memoryview):
            data = data.tobytes()
        if self._buffer:
            self._buffer += data
            consumed = self._process(self._buffer, out)
            del self._buffer[:consumed]
        else:
            consumed = self._process(data, out)
            if consumed < len(data):
                self._buffer = bytearray(data[consumed:])
        return out

    def finish(self) -> dict[str, str]:
        """Declare the end of the body; return the trailers (lower-case names).

        :raises S3Error: ``IncompleteBody`` if the body stopped early,
            ``SignatureDoesNotMatch`` if a signed trailer section lacks its
            signature, ``InvalidRequest`` for malformed leftovers.
        """
        if self._finished:
            return dict(self._trailers)
        self._finished = True
        if self._state == _TRAILER:
            leftover = bytes(self._buffer).rstrip(b"\r")
            self._buffer.clear()
            if leftover:
                if self._trailer_bytes + len(leftover) > MAX_TRAILER_SECTION:
                    raise _malformed("trailer section too large")
                # The last trailer line without its CRLF: seen from clients.
                self._trailer_line(leftover)
            self._state = _DONE
        if self._state != _DONE:
            raise S3Error(
                "IncompleteBody",
                "The request body terminated unexpectedly (aws-chunked framing is incomplete).",
            )
        if self._signed and self._with_trailers and not self._trailer_signed:
            raise S3Error("SignatureDoesNotMatch", "The trailer signature is missing.")
        if self._expected is not None:
            missing = sorted(self._expected - self._trailers.keys())
            if missing:
                raise S3Error(
                    "IncompleteBody",
                    f"The trailer {', '.join(missing)} announced in x-amz-trailer was not sent.",
                )
        return dict(self._trailers)

    # -- framing --------------------------------------------------------------

    def _process(self, work: bytes | bytearray, out: list[bytes | memoryview]) -> int:
        """Consume as much of ``work`` as possible; return how much was consumed."""
        end = len(work)
        pos = 0
        with memoryview(work) as view:
            while pos < end:
                state = self._state
                if state == _DATA:
                    take = min(self._remaining, end - pos)
                    piece = view[pos : pos + take]
                    if self._chunk_hash is not None:
                        self._chunk_hash.update(piece)
                    if take == end and type(work) is bytes:
                        out.append(work)
                    elif type(work) is bytes:
                        out.append(piece)  # a view of immutable bytes: kept, not copied
                    else:
                        out.append(piece.tobytes())  # the reused buffer changes: copy
                    pos += take
                    self._remaining -= take
                    self.decoded_size += take
                    if not self._remaining:
                        self._state = _DATA_END
                elif state == _DATA_END:
                    if end - pos < 2:
                        if work[pos] != 0x0D:
                            raise _malformed("chunk data not followed by CRLF")
                        break
                    if work[pos] != 0x0D or work[pos + 1] != 0x0A:
                        raise _malformed("chunk data not followed by CRLF")
                    pos += 2
                    if self._signed:
                        assert self._chunk_hash is not None
                        self._verify_chunk(self._chunk_hash.hexdigest())
                    self._chunk_hash = None
                    self._state = _HEADER
                elif state == _HEADER:
                    newline = work.find(b"\n", pos, pos + MAX_CHUNK_HEADER)
                    if newline < 0:
                        if end - pos >= MAX_CHUNK_HEADER:
                            raise _malformed("chunk header line too long")
                        break
                    self._chunk_header(bytes(work[pos:newline]))
                    pos = newline + 1
                elif state == _TRAILER:
                    newline = work.find(b"\n", pos)
                    if newline < 0:
                        if self._trailer_bytes + end - pos > MAX_TRAILER_SECTION:
                            raise _malformed("trailer section too large")
                        break
                    self._trailer_bytes += newline + 1 - pos
                    if self._trailer_bytes > MAX_TRAILER_SECTION:
                        raise _malformed("trailer section too large")
                    line = bytes(work[pos:newline])
                    pos = newline + 1
                    if not line.endswith(b"\r"):
                        raise _malformed("trailer line not terminated by CRLF")
                    self._trailer_line(line[:-1])
                else:  # _DONE: only stray line ends may follow
                    if bytes(work[pos:]).strip(b"\r\n"):
                        raise _malformed("data after the end of the body")
                    pos = end
        return pos

    def _chunk_header(self, line: bytes) -> None:
        if not line.endswith(b"\r"):
            raise _malformed("chunk header not terminated by CRLF")
        size_text, _, extensions = line[:-1].partition(b";")
        size_text = size_text.strip(b" \t")
        if (
            not size_text
            or len(size_text.lstrip(b"0")) > MAX_SIZE_DIGITS
            or not _HEX_DIGITS.issuperset(size_text)
        ):
            raise _malformed("invalid chunk size")
        size = int(size_text, 16)
        signature = None
        if extensions:
            for extension in extensions.split(b";"):
                name, _, value = extension.partition(b"=")
                if name.strip(b" \t") == b"chunk-signature":
                    signature = value.strip(b" \t")
        if self._signed:
            if signature is None or not _SIGNATURE.match(signature):
                raise S3Error("SignatureDoesNotMatch", "A chunk signature is missing or malformed.")
            self._chunk_signature = signature
        if size == 0:
            if self._signed:
                self._verify_chunk(EMPTY_SHA256)
            self._state = _TRAILER
        else:
            self._remaining = size
            self._chunk_hash = hashlib.sha256() if self._signed else None
            self._state = _DATA

    def _verify_chunk(self, chunk_sha256_hex: str) -> None:
        to_sign = chunk_string_to_sign(
            self._amz_date, self._scope, self._previous, chunk_sha256_hex
        )
        expected = _sign(self._key, to_sign)
        if not hmac.compare_digest(expected.encode("ascii"), self._chunk_signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The chunk signature does not match the chunk data.",
                StringToSign=to_sign,
                SignatureProvided=self._chunk_signature.decode("ascii"),
            )
        self._previous = expected

    def _trailer_line(self, line: bytes) -> None:
        """Handle one trailer-section line (without its CRLF)."""
        if not line:
            if self._trailers or self._trailer_signed:
                self._state = _DONE
            elif self._with_trailers and not self._blank_before_trailers:
                # Either the end of a body without trailers, or an empty line
                # some clients put between the last chunk and the trailers.
                self._blank_before_trailers = True
            else:
                self._state = _DONE
            return
        if not self._with_trailers:
            raise _malformed("data after the final chunk")
        if self._trailer_signed:
            raise _malformed("trailer after the trailer signature")
        raw_name, colon, raw_value = line.partition(b":")
        raw_name = raw_name.strip(b" \t")
        if not colon or not _TOKEN.match(raw_name):
            raise _malformed("invalid trailer line")
        name = raw_name.decode("ascii").lower()
        value = raw_value.strip(b" \t")
        if name == TRAILER_SIGNATURE:
            if not self._signed:
                raise _malformed("trailer signature in an unsigned body")
            self._verify_trailers(value)
            return
        if self._expected is not None and name not in self._expected:
            raise S3Error(
                "InvalidRequest", f"The trailer {name} was not announced in x-amz-trailer."
            )
        if name in self._trailers:
            raise _malformed(f"repeated trailer {name}")
        self._trailers[name] = value.decode("utf-8", "surrogateescape")
        self._canonical_trailers += raw_name.lower() + b":" + value + b"\n"

    def _verify_trailers(self, signature: bytes) -> None:
        to_sign = trailer_string_to_sign(
            self._amz_date, self._scope, self._previous, bytes(self._canonical_trailers)
        )
        expected = _sign(self._key, to_sign)
        if not hmac.compare_digest(expected.encode("ascii"), signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The trailer signature does not match the trailers.",
                StringToSign=to_sign,
                SignatureProvided=signature.decode("ascii", "replace"),
            )
        self._trailer_signed = True
        self._previous = expected


def encode_aws_chunked(
    chunks: Iterable[bytes],
    mode: str,
    *,
    signing_key: bytes | None = None,
    seed_signature: str | None = None,
    amz_date: str | None = None,
    scope: str | None = None,
    trailers: Mapping[str, str] | None = None,
) -> bytes:
    """Frame ``chunks`` as an ``aws-chunked`` body in ``mode`` (tests and benchmarks).

    Empty chunks are skipped (a zero size ends the body). Signed modes need the
    same parameters as :class:`AwsChunkedDecoder`.
    """
    signed = mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
    with_trailers = mode in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
    if mode not in STREAMING_MODES:
        raise ValueError(f"not an aws-chunked mode: {mode}")
    if signed and (signing_key is None or seed_signature is None or amz_date is None or not scope):
        raise ValueError(_SIGNED_NEEDS)
    key = signing_key or b""
    previous = seed_signature or ""
    parts: list[bytes] = []

    def header(size: int, digest: str) -> bytes:
        nonlocal previous
        if not signed:
            return b"%x\r\n" % size
        to_sign = chunk_string_to_sign(amz_date or "", scope or "", previous, digest)
        previous = _sign(key, to_sign)
        return b"%x;chunk-signature=%s\r\n" % (size, previous.encode("ascii"))

    for chunk in chunks:
        if chunk:
            parts += [header(len(chunk), hashlib.sha256(chunk).hexdigest()), chunk, b"\r\n"]
    parts.append(header(0, EMPTY_SHA256))
    if with_trailers:
        canonical = b"".join(
            b"%s:%s\n" % (name.lower().encode("ascii"), value.encode("utf-8"))
            for name, value in (trailers or {}).items()
        )
        parts.append(canonical.replace(b"\n", b"\r\n"))
        if signed:
            to_sign = trailer_string_to_sign(amz_date or "", scope or "", previous, canonical)
            parts.append(b"%s:%s\r\n" % (TRAILER_SIGNATURE.encode(), _sign(key, to_sign).encode()))
    parts.append(b"\r\n")
    return b"".join(parts)
