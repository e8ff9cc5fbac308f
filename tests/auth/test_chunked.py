"""Tests for :mod:`s4d.auth.chunked`.

Bodies come from three places: AWS's published chunked-upload examples (fixed
signatures for the seed, every chunk and the trailer), botocore's real
:class:`~botocore.httpchecksum.AwsChunkedWrapper` (and a real boto3 upload
over HTTPS, captured before the network), and :func:`encode_aws_chunked` for
the signed modes. Every body is decoded whole, split at every byte boundary,
byte by byte, and at random cut points chosen by hypothesis; the output must
be the same each time, because the network decides where pieces end.
Corruptions (tampered signatures, truncation, bad sizes, garbage) must fail
with the right S3 error.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from botocore.httpchecksum import (
    AwsChunkedWrapper,
    CrtCrc32cChecksum,
    CrtCrc32Checksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import sigv4
from s4d.auth.chunked import AwsChunkedDecoder, encode_aws_chunked
from s4d.auth.request import SignedRequest
from s4d.errors import S3Error
from s4d.util.checksums import checksum_of
from tests.auth._support import ACCESS_KEY, SECRET_KEY, Credentials, captured, client, from_botocore

EXAMPLE_TIME = datetime(2013, 5, 24, tzinfo=UTC)
EXAMPLE_DATE = "20130524T000000Z"
EXAMPLE_SCOPE = "20130524/us-east-1/s3/aws4_request"
EXAMPLE_KEY = sigv4.signing_key(SECRET_KEY, "20130524", "us-east-1")
EXAMPLE_DATA = b"a" * 66560

#: AWS's "Transferring Payload in Multiple Chunks" example.
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
#: AWS's "Including Trailing Headers" example.
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_CHUNK_SIGNATURES = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def published_body(signatures: Sequence[str], trailer: bytes = b"") -> bytes:
    """The example bodies, framed by hand from the published signatures."""
    return (
        f"10000;chunk-signature={signatures[0]}\r\n".encode()
        + EXAMPLE_DATA[:65536]
        + f"\r\n400;chunk-signature={signatures[1]}\r\n".encode()
        + EXAMPLE_DATA[65536:]
        + f"\r\n0;chunk-signature={signatures[2]}\r\n".encode()
        + (trailer or b"\r\n")
    )


EXAMPLE_BODY = published_body(CHUNK_SIGNATURES)
TRAILER_BODY = published_body(
    TRAILER_CHUNK_SIGNATURES,
    b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    + f"x-amz-trailer-signature:{TRAILER_SIGNATURE}\r\n\r\n".encode(),
)


def signed_decoder(
    mode: str = sigv4.STREAMING_SIGNED,
    seed: str = SEED,
    expected_trailers: Sequence[str] | None = None,
) -> AwsChunkedDecoder:
    return AwsChunkedDecoder(
        mode,
        signing_key=EXAMPLE_KEY,
        seed_signature=seed,
        amz_date=EXAMPLE_DATE,
        scope=EXAMPLE_SCOPE,
        expected_trailers=expected_trailers,
    )


def decode(decoder: AwsChunkedDecoder, pieces: Sequence[bytes]) -> tuple[bytes, dict[str, str]]:
    out = bytearray()
    for piece in pieces:
        for part in decoder.feed(piece):
            out += part
    trailers = decoder.finish()
    assert decoder.decoded_size == len(out)
    return bytes(out), trailers


def split_at(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = [0] + sorted({min(max(c, 0), len(body)) for c in cuts}) + [len(body)]
    return [body[a:b] for a, b in zip(points, points[1:], strict=False)]


class PublishedExampleTests(SynchronousTestCase):
    """AWS's published signed chunked uploads."""

    def test_seed_signature(self) -> None:
        """The example request's own signature is the published seed."""
        headers = {
            "host": ["s3.amazonaws.com"],
            "content-encoding": ["aws-chunked"],
            "content-length": ["66824"],
            "x-amz-content-sha256": [sigv4.STREAMING_SIGNED],
            "x-amz-date": [EXAMPLE_DATE],
            "x-amz-decoded-content-length": ["66560"],
            "x-amz-storage-class": ["REDUCED_REDUNDANCY"],
            "authorization": [
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{EXAMPLE_SCOPE},SignedHeaders="
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                f"x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}"
            ],
        }
        req = SignedRequest.from_wire("PUT", b"/examplebucket/chunkObject.txt", headers)
        result = sigv4.verify_header(req, Credentials(), EXAMPLE_TIME)
        self.assertEqual(result.seed_signature, SEED)
        self.assertEqual(len(EXAMPLE_BODY), 66824)
        decoder = AwsChunkedDecoder(
            result.payload_hash,
            signing_key=result.signing_key,
            seed_signature=result.seed_signature,
            amz_date=result.amz_date,
            scope=result.scope,
        )
        self.assertEqual(decode(decoder, [EXAMPLE_BODY]), (EXAMPLE_DATA, {}))

    def test_chunk_signatures(self) -> None:
        """Our encoder reproduces every published chunk signature."""
        body = encode_aws_chunked(
            [EXAMPLE_DATA[:65536], EXAMPLE_DATA[65536:]],
            sigv4.STREAMING_SIGNED,
            signing_key=EXAMPLE_KEY,
            seed_signature=SEED,
            amz_date=EXAMPLE_DATE,
            scope=EXAMPLE_SCOPE,
        )
        self.assertEqual(body, EXAMPLE_BODY)

    def test_decode_in_64k_pieces(self) -> None:
        pieces = [EXAMPLE_BODY[i : i + 65536] for i in range(0, len(EXAMPLE_BODY), 65536)]
        self.assertEqual(decode(signed_decoder(), pieces), (EXAMPLE_DATA, {}))

    def test_trailer_example(self) -> None:
        headers = {
            "host": ["s3.amazonaws.com"],
            "content-encoding": ["aws-chunked"],
            "x-amz-content-sha256": [sigv4.STREAMING_SIGNED_TRAILER],
            "x-amz-date": [EXAMPLE_DATE],
            "x-amz-decoded-content-length": ["66560"],
            "x-amz-storage-class": ["REDUCED_REDUNDANCY"],
            "x-amz-trailer": ["x-amz-checksum-crc32c"],
            "authorization": [
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{EXAMPLE_SCOPE},SignedHeaders="
                "content-encoding;host;x-amz-content-sha256;x-amz-date;"
                "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
                f"Signature={TRAILER_SEED}"
            ],
        }
        req = SignedRequest.from_wire("PUT", b"/examplebucket/chunkObject.txt", headers)
        result = sigv4.verify_header(req, Credentials(), EXAMPLE_TIME)
        self.assertEqual(checksum_of("CRC32C", EXAMPLE_DATA), "sOO8/Q==")
        decoder = signed_decoder(
            sigv4.STREAMING_SIGNED_TRAILER, result.seed_signature or "", ["x-amz-checksum-crc32c"]
        )
        self.assertEqual(
            decode(decoder, [TRAILER_BODY]),
            (EXAMPLE_DATA, {"x-amz-checksum-crc32c": "sOO8/Q=="}),
        )
        body = encode_aws_chunked(
            [EXAMPLE_DATA[:65536], EXAMPLE_DATA[65536:]],
            sigv4.STREAMING_SIGNED_TRAILER,
            signing_key=EXAMPLE_KEY,
            seed_signature=TRAILER_SEED,
            amz_date=EXAMPLE_DATE,
            scope=EXAMPLE_SCOPE,
            trailers={"x-amz-checksum-crc32c": "sOO8/Q=="},
        )
        self.assertEqual(body, TRAILER_BODY)

    def test_trailer_example_variants(self) -> None:
        """Framings seen in the wild around the trailer section are accepted."""
        trailer = (
            b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
            + f"x-amz-trailer-signature:{TRAILER_SIGNATURE}".encode()
        )
        for tail in (
            trailer + b"\r\n",  # no final empty line
            trailer,  # not even the CRLF of the signature line
            b"\r\n" + trailer + b"\r\n\r\n",  # an empty line before the trailers
            b"\r\n" + trailer,
        ):
            body = published_body(TRAILER_CHUNK_SIGNATURES, tail)
            self.assertEqual(
                decode(signed_decoder(sigv4.STREAMING_SIGNED_TRAILER, TRAILER_SEED), [body]),
                (EXAMPLE_DATA, {"x-amz-checksum-crc32c": "sOO8/Q=="}),
                tail,
            )

    def test_tampered_chunk_signature(self) -> None:
        for index, signature in enumerate(CHUNK_SIGNATURES):
            signatures = list(CHUNK_SIGNATURES)
            signatures[index] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
            error = self.assertRaises(
                S3Error, decode, signed_decoder(), [published_body(signatures)]
            )
            self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_tampered_data(self) -> None:
        body = bytearray(EXAMPLE_BODY)
        body[66000] = ord("b")  # inside the second chunk
        error = self.assertRaises(S3Error, decode, signed_decoder(), [bytes(body)])
        self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_wrong_seed(self) -> None:
        error = self.assertRaises(S3Error, decode, signed_decoder(seed="0" * 64), [EXAMPLE_BODY])
        self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_reordered_chunks(self) -> None:
        """Chunk signatures chain: a valid chunk in the wrong place fails."""
        first = f"10000;chunk-signature={CHUNK_SIGNATURES[0]}\r\n".encode()
        body = first + EXAMPLE_DATA[:65536] + b"\r\n" + first + EXAMPLE_DATA[:65536] + b"\r\n"
        error = self.assertRaises(S3Error, decode, signed_decoder(), [body])
        self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_missing_chunk_signature(self) -> None:
        body = b"400\r\n" + b"a" * 1024 + b"\r\n0\r\n\r\n"
        error = self.assertRaises(S3Error, decode, signed_decoder(), [body])
        self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_tampered_trailer(self) -> None:
        for old, new in (
            (b"sOO8/Q==", b"AAAAAA=="),
            (TRAILER_SIGNATURE.encode(), b"0" * 64),
            (b"x-amz-trailer-signature:", b"x-amz-trailer-signature:  "),  # still fine
        ):
            body = TRAILER_BODY.replace(old, new)
            decoder = signed_decoder(sigv4.STREAMING_SIGNED_TRAILER, TRAILER_SEED)
            if old.startswith(b"x-amz-trailer"):
                decode(decoder, [body])
                continue
            error = self.assertRaises(S3Error, decode, decoder, [body])
            self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_missing_trailer_signature(self) -> None:
        body = published_body(TRAILER_CHUNK_SIGNATURES, b"x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n")
        decoder = signed_decoder(sigv4.STREAMING_SIGNED_TRAILER, TRAILER_SEED)
        error = self.assertRaises(S3Error, decode, decoder, [body])
        self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_trailers_in_plain_signed_mode(self) -> None:
        body = EXAMPLE_BODY[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
        error = self.assertRaises(S3Error, decode, signed_decoder(), [body])
        self.assertEqual(error.code, "InvalidRequest")


def unsigned_body(
    payload: bytes,
    checksum_cls: type | None = CrtCrc32Checksum,
    name: str = "x-amz-checksum-crc32",
    chunk_size: int | None = None,
) -> bytes:
    """The body botocore sends for ``payload`` (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    wrapper = AwsChunkedWrapper(
        io.BytesIO(payload), checksum_cls=checksum_cls, checksum_name=name, chunk_size=chunk_size
    )
    return wrapper.read()


class BotocoreBodyTests(SynchronousTestCase):
    """Bodies framed by botocore's own aws-chunked writer."""

    CHECKSUMS = [
        (CrtCrc32Checksum, "CRC32"),
        (CrtCrc32cChecksum, "CRC32C"),
        (CrtCrc64NvmeChecksum, "CRC64NVME"),
        (Sha1Checksum, "SHA1"),
        (Sha256Checksum, "SHA256"),
    ]

    def test_checksum_trailers(self) -> None:
        for size in (0, 1, 7, 1000, 70000):
            payload = os.urandom(size)
            for cls, algorithm in self.CHECKSUMS:
                name = "x-amz-checksum-" + algorithm.lower()
                body = unsigned_body(payload, cls, name, chunk_size=4096)
                decoder = AwsChunkedDecoder(
                    sigv4.STREAMING_UNSIGNED_TRAILER, expected_trailers=[name]
                )
                data, trailers = decode(decoder, [body])
                self.assertEqual(data, payload)
                self.assertEqual(trailers, {name: checksum_of(algorithm, payload)})

    def test_without_checksum(self) -> None:
        body = unsigned_body(b"hello", None)
        self.assertEqual(body, b"5\r\nhello\r\n0\r\n\r\n")
        decoder = AwsChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, expected_trailers=[])
        self.assertEqual(decode(decoder, [body]), (b"hello", {}))

    def test_boto3_https_upload(self) -> None:
        """A real boto3 PutObject over HTTPS: verify, then decode its body."""
        payload = os.urandom(3000)
        s3 = client("https://127.0.0.1:9443")
        request = captured(s3.put_object, Bucket="b", Key="k", Body=payload)
        req = from_botocore(request)
        result = sigv4.verify_header(req, Credentials(), datetime.now(UTC))
        announced = [n.strip() for n in (req.header("x-amz-trailer") or "").split(",")]
        decoder = AwsChunkedDecoder(result.payload_hash, expected_trailers=announced)
        data, trailers = decode(decoder, [request.body.read()])
        self.assertEqual(data, payload)
        self.assertEqual(len(data), int(req.header("x-amz-decoded-content-length") or -1))
        self.assertEqual(trailers, {"x-amz-checksum-crc32": checksum_of("CRC32", payload)})

    def test_undeclared_trailer(self) -> None:
        body = unsigned_body(b"hello")
        decoder = AwsChunkedDecoder(
            sigv4.STREAMING_UNSIGNED_TRAILER, expected_trailers=["x-amz-checksum-sha256"]
        )
        error = self.assertRaises(S3Error, decode, decoder, [body])
        self.assertEqual(error.code, "InvalidRequest")

    def test_declared_trailer_missing(self) -> None:
        body = unsigned_body(b"hello", None)
        decoder = AwsChunkedDecoder(
            sigv4.STREAMING_UNSIGNED_TRAILER, expected_trailers=["x-amz-checksum-crc32"]
        )
        error = self.assertRaises(S3Error, decode, decoder, [body])
        self.assertEqual(error.code, "IncompleteBody")


def all_bodies() -> list[tuple[str, bytes, bytes]]:
    """Small bodies in every mode: ``(mode, body, payload)``."""
    out: list[tuple[str, bytes, bytes]] = []
    payload = bytes(range(256)) * 2 + b"tail"
    pieces = [payload[:100], payload[100:101], payload[101:]]
    trailers = {"x-amz-checksum-crc32": checksum_of("CRC32", payload)}
    for mode in sigv4.STREAMING_MODES:
        signed = mode != sigv4.STREAMING_UNSIGNED_TRAILER
        body = encode_aws_chunked(
            pieces,
            mode,
            signing_key=EXAMPLE_KEY if signed else None,
            seed_signature=SEED if signed else None,
            amz_date=EXAMPLE_DATE if signed else None,
            scope=EXAMPLE_SCOPE if signed else None,
            trailers=trailers,
        )
        out.append((mode, body, payload))
    out.append(("botocore", unsigned_body(payload, chunk_size=200), payload))
    return out


def fresh_decoder(mode: str) -> AwsChunkedDecoder:
    if mode == "botocore":
        mode = sigv4.STREAMING_UNSIGNED_TRAILER
    if mode == sigv4.STREAMING_UNSIGNED_TRAILER:
        return AwsChunkedDecoder(mode, expected_trailers=["x-amz-checksum-crc32"])
    return signed_decoder(
        mode, SEED, None if mode == sigv4.STREAMING_SIGNED else ["x-amz-checksum-crc32"]
    )


class SplittingTests(SynchronousTestCase):
    """The decoded result does not depend on where the body is cut."""

    def expected(self, mode: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        if mode == sigv4.STREAMING_SIGNED:
            return payload, {}
        return payload, {"x-amz-checksum-crc32": checksum_of("CRC32", payload)}

    def test_every_boundary(self) -> None:
        for mode, body, payload in all_bodies():
            expected = self.expected(mode, payload)
            self.assertEqual(decode(fresh_decoder(mode), [body]), expected)
            for cut in range(len(body) + 1):
                self.assertEqual(
                    decode(fresh_decoder(mode), [body[:cut], body[cut:]]), expected, (mode, cut)
                )

    def test_byte_by_byte(self) -> None:
        for mode, body, payload in all_bodies():
            pieces = [body[i : i + 1] for i in range(len(body))]
            self.assertEqual(decode(fresh_decoder(mode), pieces), self.expected(mode, payload))

    def test_published_example_every_boundary_near_framing(self) -> None:
        """Cuts in and around each framing line of the 66 KB example."""
        cuts = set()
        for marker in (b"10000;", b"\r\n400;", b"\r\n0;"):
            at = EXAMPLE_BODY.index(marker)
            cuts.update(range(max(0, at - 3), at + 100))
        cuts.update(range(len(EXAMPLE_BODY) - 5, len(EXAMPLE_BODY) + 1))
        for cut in sorted(cuts):
            self.assertEqual(
                decode(signed_decoder(), [EXAMPLE_BODY[:cut], EXAMPLE_BODY[cut:]]),
                (EXAMPLE_DATA, {}),
            )

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_random_splits(self, data: st.DataObject) -> None:
        mode, body, payload = data.draw(st.sampled_from(all_bodies()))
        cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=40))
        pieces = split_at(body, cuts)
        self.assertEqual(b"".join(pieces), body)
        self.assertEqual(decode(fresh_decoder(mode), pieces), self.expected(mode, payload))

    @settings(max_examples=50, deadline=None)
    @given(
        st.lists(st.binary(min_size=0, max_size=300), max_size=6),
        st.lists(st.integers(0, 4000), max_size=10),
        st.sampled_from(sigv4.STREAMING_MODES),
    )
    def test_random_bodies(self, chunks: list[bytes], cuts: list[int], mode: str) -> None:
        payload = b"".join(chunks)
        signed = mode != sigv4.STREAMING_UNSIGNED_TRAILER
        trailers = {"x-amz-checksum-sha256": checksum_of("SHA256", payload)}
        body = encode_aws_chunked(
            chunks,
            mode,
            signing_key=EXAMPLE_KEY if signed else None,
            seed_signature=SEED if signed else None,
            amz_date=EXAMPLE_DATE if signed else None,
            scope=EXAMPLE_SCOPE if signed else None,
            trailers=trailers,
        )
        if signed:
            decoder = signed_decoder(mode, SEED)
        else:
            decoder = AwsChunkedDecoder(mode)
        data, got = decode(decoder, split_at(body, cuts))
        self.assertEqual(data, payload)
        self.assertEqual(got, {} if mode == sigv4.STREAMING_SIGNED else trailers)


class MalformedTests(SynchronousTestCase):
    """Broken framing is rejected, never silently stored."""

    def unsigned(self) -> AwsChunkedDecoder:
        return AwsChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER)

    def test_truncated(self) -> None:
        """Every prefix that stops before the final chunk is an IncompleteBody."""
        for mode, body, payload in all_bodies():
            final = body.rindex(b"\r\n0") + 3
            for cut in range(final):
                error = self.assertRaises(S3Error, decode, fresh_decoder(mode), [body[:cut]])
                self.assertIn(error.code, ("IncompleteBody",), (mode, cut))
            for cut in range(final, len(body)):
                # Past the last chunk: the payload is complete; what is left of
                # the trailers is either rejected or at worst a shorter value
                # (which then fails checksum verification).
                try:
                    data, trailers = decode(fresh_decoder(mode), [body[:cut]])
                except S3Error as error:
                    self.assertIn(
                        error.code,
                        ("IncompleteBody", "InvalidRequest", "SignatureDoesNotMatch"),
                        (mode, cut),
                    )
                else:
                    self.assertEqual(data, payload)
                    for name, value in trailers.items():
                        self.assertTrue(
                            checksum_of("CRC32", payload).startswith(value), (mode, cut)
                        )
                        self.assertEqual(name, "x-amz-checksum-crc32")

    def test_truncated_signed_data(self) -> None:
        error = self.assertRaises(S3Error, decode, signed_decoder(), [EXAMPLE_BODY[:50000]])
        self.assertEqual(error.code, "IncompleteBody")

    def test_bad_sizes(self) -> None:
        for header in (
            b"zz",
            b"0x5",
            b"+5",
            b"5_0",
            b"",
            b" ",
            b"-5",
            b"5.0",
            b"\xff",
            b"1" * 17,
            b"5 5",
        ):
            body = header + b"\r\nhello\r\n0\r\n\r\n"
            error = self.assertRaises(S3Error, decode, self.unsigned(), [body])
            self.assertEqual(error.code, "InvalidRequest", header)

    def test_lenient_sizes(self) -> None:
        for header in (
            b"5",
            b"05",
            b"0000000000000000000005",
            b"5;",
            b"5;ext=1;other",
            b"5 ",
            b" 5",
        ):
            body = header + b"\r\nhello\r\n0\r\n\r\n"
            self.assertEqual(decode(self.unsigned(), [body]), (b"hello", {}), header)
        body = b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"
        self.assertEqual(decode(self.unsigned(), [body]), (b"0123456789" * 2, {}))

    def test_crt_style_extension(self) -> None:
        """The AWS CRT writes ``size;`` with an empty extension."""
        body = b"5;\r\nhello\r\n0;\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
        self.assertEqual(
            decode(self.unsigned(), [body]), (b"hello", {"x-amz-checksum-crc32": "NhCmhg=="})
        )

    def test_missing_data_crlf(self) -> None:
        for body in (
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\rX0\r\n\r\n",
        ):
            error = self.assertRaises(S3Error, decode, self.unsigned(), [body])
            self.assertEqual(error.code, "InvalidRequest", body)

    def test_bare_lf(self) -> None:
        error = self.assertRaises(S3Error, decode, self.unsigned(), [b"5\nhello\r\n0\r\n\r\n"])
        self.assertEqual(error.code, "InvalidRequest")

    def test_header_line_cap(self) -> None:
        decoder = self.unsigned()
        decoder.feed(b"5;" + b"x" * 4000)
        error = self.assertRaises(S3Error, decoder.feed, b"x" * 200)
        self.assertEqual(error.code, "InvalidRequest")
        # A long but legal extension is fine.
        body = b"5;" + b"x" * 4000 + b"\r\nhello\r\n0\r\n\r\n"
        self.assertEqual(decode(self.unsigned(), [body]), (b"hello", {}))

    def test_trailer_section_cap(self) -> None:
        decoder = self.unsigned()
        decoder.feed(b"0\r\n")
        lines = b"".join(b"x-amz-meta-%d:%s\r\n" % (i, b"v" * 100) for i in range(200))
        error = self.assertRaises(S3Error, decoder.feed, lines)
        self.assertEqual(error.code, "InvalidRequest")
        decoder = self.unsigned()
        decoder.feed(b"0\r\nx-amz-checksum-crc32:")
        error = self.assertRaises(S3Error, decoder.feed, b"A" * 17000)
        self.assertEqual(error.code, "InvalidRequest")

    def test_garbage_trailers(self) -> None:
        for tail in (
            b"no colon here\r\n\r\n",
            b":value\r\n\r\n",
            b"bad name:v\r\n\r\n",
            b"x-amz-checksum-crc32:a\r\nx-amz-checksum-crc32:b\r\n\r\n",
            b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n",
        ):
            error = self.assertRaises(S3Error, decode, self.unsigned(), [b"0\r\n" + tail])
            self.assertEqual(error.code, "InvalidRequest", tail)

    def test_data_after_end(self) -> None:
        error = self.assertRaises(
            S3Error, decode, self.unsigned(), [b"0\r\nx-amz-checksum-crc32:x\r\n\r\nGARBAGE"]
        )
        self.assertEqual(error.code, "InvalidRequest")
        # Stray line ends after the end are tolerated.
        self.assertEqual(decode(self.unsigned(), [b"0\r\n\r\n\r\n"]), (b"", {}))

    def test_double_zero_chunk(self) -> None:
        """The zero-byte-stream framing S3 rejects (aws-sdk-net#4012)."""
        body = b"0\r\n\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
        error = self.assertRaises(S3Error, decode, self.unsigned(), [body])
        self.assertEqual(error.code, "InvalidRequest")

    def test_empty_body(self) -> None:
        error = self.assertRaises(S3Error, decode, self.unsigned(), [])
        self.assertEqual(error.code, "IncompleteBody")

    def test_modes(self) -> None:
        error = self.assertRaises(
            S3Error, AwsChunkedDecoder, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
        )
        self.assertEqual(error.code, "NotImplemented")
        error = self.assertRaises(S3Error, AwsChunkedDecoder, sigv4.UNSIGNED_PAYLOAD)
        self.assertEqual(error.code, "InvalidArgument")
        self.assertRaises(ValueError, AwsChunkedDecoder, sigv4.STREAMING_SIGNED)

    def test_feed_after_finish(self) -> None:
        decoder = self.unsigned()
        decode(decoder, [b"0\r\n\r\n"])
        self.assertRaises(ValueError, decoder.feed, b"x")


class ThroughputTests(SynchronousTestCase):
    """Large bodies decode in linear time."""

    def test_signed_64k_pieces(self) -> None:
        size = 32 * 1024 * 1024
        block = os.urandom(1024 * 1024)
        chunks = [block[: 64 * 1024]] * (size // (64 * 1024))
        body = encode_aws_chunked(
            chunks,
            sigv4.STREAMING_SIGNED,
            signing_key=EXAMPLE_KEY,
            seed_signature=SEED,
            amz_date=EXAMPLE_DATE,
            scope=EXAMPLE_SCOPE,
        )
        decoder = signed_decoder()
        digest = hashlib.sha256()
        start = time.perf_counter()
        view = memoryview(body)
        for offset in range(0, len(body), 65536):
            for part in decoder.feed(view[offset : offset + 65536]):
                digest.update(part)
        decoder.finish()
        elapsed = time.perf_counter() - start
        self.assertEqual(decoder.decoded_size, size)
        self.assertEqual(digest.digest(), hashlib.sha256(b"".join(chunks)).digest())
        # Generous: a quadratic buffer would take minutes.
        self.assertLess(elapsed, 20)


class NoCopyTests(SynchronousTestCase):
    """Payload bytes come out as the fed ``bytes`` or views of them, never copies."""

    def test_payload_is_a_view_of_what_was_fed(self) -> None:
        decoder = AwsChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, expected_trailers=[])
        first, second = os.urandom(300), os.urandom(200)
        fed = b"12c\r\n" + first + b"\r\nc8\r\n" + second[:50]
        parts = decoder.feed(fed)
        self.assertEqual([bytes(p) for p in parts], [first, second[:50]])
        for part in parts:
            self.assertIsInstance(part, memoryview)
            assert isinstance(part, memoryview)
            self.assertIs(part.obj, fed)
            self.assertTrue(part.readonly)
        rest = second[50:]
        self.assertEqual(decoder.feed(rest), [rest])
        self.assertEqual(decoder.feed(b"\r\n0\r\n\r\n"), [])
        self.assertEqual(decoder.finish(), {})

    def test_bytes_held_back_are_copied_out(self) -> None:
        """Bytes kept in the decoder's own buffer (a cut header) are handed out as copies."""
        decoder = AwsChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, expected_trailers=[])
        data = os.urandom(100)
        self.assertEqual(decoder.feed(b"6"), [])
        parts = decoder.feed(b"4\r\n" + data + b"\r\n0\r\n\r\n")
        self.assertEqual(b"".join(parts), data)
        self.assertTrue(all(isinstance(p, bytes) for p in parts))
        self.assertEqual(decoder.finish(), {})
