"""Fuzzing the aws-chunked decoder with random bytes and with damaged valid bodies.

Strategy: bodies are fed in pieces cut at random points (the network decides
where pieces end), in every streaming mode. Random bytes must only ever give an
S3 error. Valid bodies made by :func:`encode_aws_chunked` are damaged by
random edits (bytes replaced, inserted, deleted, the body truncated); the
decoder may accept the result or refuse it with an S3 error, but in the signed
modes an accepted body must decode to exactly the original payload, because
every chunk's bytes are signed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import sigv4
from s4d.auth.chunked import AwsChunkedDecoder, encode_aws_chunked
from s4d.errors import S3Error
from tests.fuzz._support import edits, fuzz, mutate, split_at

DATE = "20240501T120000Z"
SCOPE = "20240501/us-east-1/s3/aws4_request"
KEY = sigv4.signing_key("fuzz/secret+key", "20240501", "us-east-1")
SEED = "f" * 64
TRAILER = "x-amz-checksum-crc32"

modes = st.sampled_from(sigv4.STREAMING_MODES)


def decoder(mode: str, expected: list[str] | None = None) -> AwsChunkedDecoder:
    signed = mode != sigv4.STREAMING_UNSIGNED_TRAILER
    return AwsChunkedDecoder(
        mode,
        signing_key=KEY if signed else None,
        seed_signature=SEED if signed else None,
        amz_date=DATE if signed else None,
        scope=SCOPE if signed else None,
        expected_trailers=expected,
    )


def decode(dec: AwsChunkedDecoder, pieces: list[bytes]) -> tuple[bytes, dict[str, str]] | S3Error:
    """Feed every piece, then finish; the payload and trailers, or the S3 error."""
    out = bytearray()
    try:
        for piece in pieces:
            for part in dec.feed(piece):
                out += part
        trailers = dec.finish()
    except S3Error as e:
        return e
    return bytes(out), trailers


def body(mode: str, chunks: list[bytes], trailer_value: str | None) -> bytes:
    signed = mode != sigv4.STREAMING_UNSIGNED_TRAILER
    trailers = {TRAILER: trailer_value} if trailer_value is not None else None
    return encode_aws_chunked(
        chunks,
        mode,
        signing_key=KEY if signed else None,
        seed_signature=SEED if signed else None,
        amz_date=DATE if signed else None,
        scope=SCOPE if signed else None,
        trailers=trailers if mode != sigv4.STREAMING_SIGNED else None,
    )


class ChunkedFuzz(SynchronousTestCase):
    @fuzz(300)
    @given(modes, st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
    def test_random_bytes(self, mode: str, data: bytes, cuts: list[int]) -> None:
        decode(decoder(mode), split_at(data, cuts))

    @fuzz(300)
    @given(
        modes,
        st.lists(st.sampled_from([b"0", b"1\r\n", b"a;chunk-signature=", b"\r\n", b"0\r\n\r\n",
                                  b"x-amz-checksum-crc32:AAAAAA==\r\n", b"ffffffff\r\n",
                                  b"10000;\r\n", b";", b"=", b"\n", b"\x00", b"0" * 40]),
                 max_size=12),
        st.lists(st.integers(0, 200), max_size=6),
    )  # fmt: skip
    def test_framing_tokens(self, mode: str, tokens: list[bytes], cuts: list[int]) -> None:
        decode(decoder(mode, [TRAILER]), split_at(b"".join(tokens), cuts))

    @fuzz(300)
    @given(
        modes,
        st.lists(st.binary(min_size=1, max_size=200), max_size=4),
        st.one_of(st.none(), st.just("AAAAAA=="), st.text(max_size=10)),
        edits,
        st.lists(st.integers(0, 2000), max_size=8),
    )
    def test_damaged_bodies(
        self,
        mode: str,
        chunks: list[bytes],
        trailer: str | None,
        damage: list[tuple[int, int, bytes]],
        cuts: list[int],
    ) -> None:
        original = body(mode, chunks, trailer)
        damaged = mutate(original, damage)
        result = decode(decoder(mode), split_at(damaged, cuts))
        if isinstance(result, S3Error) or mode == sigv4.STREAMING_UNSIGNED_TRAILER:
            return
        self.assertEqual(result[0], b"".join(chunks), "a signed body decoded to other bytes")

    @fuzz(100)
    @given(
        modes,
        st.lists(st.binary(min_size=1, max_size=300), max_size=4),
        st.lists(st.integers(0, 2000), max_size=8),
    )
    def test_valid_bodies_any_split(self, mode: str, chunks: list[bytes], cuts: list[int]) -> None:
        trailer = None if mode == sigv4.STREAMING_SIGNED else "AAAAAA=="
        result = decode(decoder(mode), split_at(body(mode, chunks, trailer), cuts))
        self.assertFalse(isinstance(result, S3Error), str(result))
        assert not isinstance(result, S3Error)
        self.assertEqual(result[0], b"".join(chunks))
