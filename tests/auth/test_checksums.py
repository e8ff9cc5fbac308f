"""Tests for :mod:`s4d.util.checksums`, cross-checked against botocore's checksum classes.

botocore is what computes the values clients send, so every algorithm is
compared with botocore's implementation on fixed and random data, fed whole
and in pieces.
"""

from __future__ import annotations

import base64
import hashlib
import os

from botocore.httpchecksum import (
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc32Checksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.util import checksums

BOTOCORE = {
    "CRC32": CrtCrc32Checksum,
    "CRC32C": CrtCrc32cChecksum,
    "CRC64NVME": CrtCrc64NvmeChecksum,
    "SHA1": Sha1Checksum,
    "SHA256": Sha256Checksum,
}


def botocore_b64(algorithm: str, data: bytes) -> str:
    checksum = BOTOCORE[algorithm]()
    checksum.update(data)
    return checksum.b64digest()


class ChecksumTests(SynchronousTestCase):
    def test_known_values(self) -> None:
        self.assertEqual(checksums.checksum_of("CRC32", b"hello"), "NhCmhg==")
        self.assertEqual(checksums.checksum_of("crc32", b""), "AAAAAA==")
        self.assertEqual(checksums.checksum_of("CRC32C", b"a" * 66560), "sOO8/Q==")
        self.assertEqual(
            checksums.checksum_of("SHA256", b"hello"),
            base64.b64encode(hashlib.sha256(b"hello").digest()).decode(),
        )
        # The pure-Python CRC32 of botocore agrees with the CRT one.
        pure = Crc32Checksum()
        pure.update(b"hello")
        self.assertEqual(pure.b64digest(), "NhCmhg==")

    def test_all_algorithms_match_botocore(self) -> None:
        self.assertEqual(checksums.ALGORITHMS, tuple(BOTOCORE))
        for size in (0, 1, 3, 64, 1000, 1 << 20):
            data = os.urandom(size)
            for algorithm in checksums.ALGORITHMS:
                checksum = checksums.new_checksum(algorithm)
                checksum.update(data)
                self.assertEqual(checksum.b64(), botocore_b64(algorithm, data), algorithm)
                self.assertEqual(len(checksum.digest()), checksums.DIGEST_SIZE[algorithm])
                self.assertEqual(checksum.algorithm, algorithm)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.binary(max_size=200), max_size=8), st.sampled_from(checksums.ALGORITHMS))
    def test_incremental(self, pieces: list[bytes], algorithm: str) -> None:
        checksum = checksums.new_checksum(algorithm)
        for piece in pieces:
            checksum.update(memoryview(piece))
        self.assertEqual(checksum.b64(), botocore_b64(algorithm, b"".join(pieces)))

    def test_unknown_algorithm(self) -> None:
        error = self.assertRaises(S3Error, checksums.new_checksum, "MD5")
        self.assertEqual(error.code, "InvalidRequest")

    def test_header_names(self) -> None:
        for algorithm in checksums.ALGORITHMS:
            name = checksums.header_name(algorithm)
            self.assertEqual(name, "x-amz-checksum-" + algorithm.lower())
            self.assertEqual(checksums.algorithm_from_header(name), algorithm)
            self.assertEqual(checksums.algorithm_from_header(name.upper()), algorithm)
        for name in (
            "x-amz-checksum-algorithm",
            "x-amz-checksum-mode",
            "x-amz-checksum-md5",
            "content-md5",
            "x-amz-checksum-type",
        ):
            self.assertIsNone(checksums.algorithm_from_header(name), name)

    def test_decode_value(self) -> None:
        self.assertEqual(checksums.decode_value("CRC32", "NhCmhg=="), bytes.fromhex("3610a686"))
        for algorithm, value in (
            ("CRC32", "NhCm"),
            ("CRC32", "not base64!"),
            ("CRC64NVME", "NhCmhg=="),
            ("SHA1", ""),
        ):
            error = self.assertRaises(S3Error, checksums.decode_value, algorithm, value)
            self.assertEqual(error.code, "InvalidRequest")

    def test_composite(self) -> None:
        parts = [os.urandom(100), os.urandom(50), b"x"]
        for algorithm in checksums.ALGORITHMS:
            digests = []
            for part in parts:
                checksum = checksums.new_checksum(algorithm)
                checksum.update(part)
                digests.append(checksum.digest())
            expected = botocore_b64(algorithm, b"".join(digests)) + "-3"
            self.assertEqual(checksums.composite(algorithm, digests), expected)
            as_text = [base64.b64encode(d).decode() for d in digests]
            self.assertEqual(checksums.composite(algorithm, as_text), expected)
