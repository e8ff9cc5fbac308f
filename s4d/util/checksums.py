"""S3 flexible checksums: compute CRC32, CRC32C, CRC64NVME, SHA1 and SHA256 incrementally.

Values travel base64-encoded in ``x-amz-checksum-<algorithm>`` headers and
trailers. A multipart object's checksum is *composite*: the checksum of the
concatenated raw part checksums, followed by ``-<number of parts>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

from awscrt import checksums as _crt

from s4d.errors import S3Error

#: Supported algorithms, as S3 names them.
ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")

#: Raw digest length of each algorithm, in bytes.
DIGEST_SIZE: dict[str, int] = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}

_HEADER_PREFIX = "x-amz-checksum-"

_Buffer = bytes | bytearray | memoryview


class Checksum(Protocol):
    """A running checksum."""

    algorithm: str

    def update(self, data: _Buffer) -> None:
        """Add ``data`` to the checksum."""
        ...

    def digest(self) -> bytes:
        """The raw checksum of everything added so far."""
        ...

    def b64(self) -> str:
        """The checksum base64-encoded, as in headers."""
        ...


class _CrcChecksum:
    """A CRC computed by ``awscrt``, big-endian when serialised."""

    def __init__(self, algorithm: str, crc: Callable[[_Buffer, int], int], size: int) -> None:
        self.algorithm = algorithm
        self._crc = crc
        self._size = size
        self._value = 0

    def update(self, data: _Buffer) -> None:
        if data:
            self._value = self._crc(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _HashChecksum:
    """A hashlib hash."""

    def __init__(self, algorithm: str, name: str) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(name)

    def update(self, data: _Buffer) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def b64(self) -> str:
        return base64.b64encode(self._hash.digest()).decode("ascii")


def normalise_algorithm(algorithm: str) -> str:
    """``algorithm`` upper-cased; raises ``InvalidRequest`` if unsupported."""
    name = algorithm.strip().upper()
    if name not in ALGORITHMS:
        raise S3Error(
            "InvalidRequest",
            f"Checksum algorithm {algorithm!r} is not supported; expecting one of "
            f"{', '.join(ALGORITHMS)}.",
        )
    return name


def new_checksum(algorithm: str) -> Checksum:
    """A new running checksum of ``algorithm`` (any case).

    :raises S3Error: ``InvalidRequest`` for an unsupported algorithm.
    """
    name = normalise_algorithm(algorithm)
    if name == "CRC32":
        return _CrcChecksum(name, _crt.crc32, 4)
    if name == "CRC32C":
        return _CrcChecksum(name, _crt.crc32c, 4)
    if name == "CRC64NVME":
        return _CrcChecksum(name, _crt.crc64nvme, 8)
    return _HashChecksum(name, name.lower())


def checksum_of(algorithm: str, data: _Buffer) -> str:
    """The base64 checksum of ``data`` in one call."""
    checksum = new_checksum(algorithm)
    checksum.update(data)
    return checksum.b64()


def checksum_type(value: str) -> str:
    """``COMPOSITE`` for a checksum of part checksums (``...-N``), else ``FULL_OBJECT``.

    A single-part object's checksum and a multipart upload's ``FULL_OBJECT``
    one (combined part CRCs) are over the whole object; only a composite
    checksum carries its part count.
    """
    return "COMPOSITE" if "-" in value else "FULL_OBJECT"


def header_name(algorithm: str) -> str:
    """The header (and trailer) name of ``algorithm``: ``x-amz-checksum-crc32`` etc."""
    return _HEADER_PREFIX + normalise_algorithm(algorithm).lower()


def algorithm_from_header(name: str) -> str | None:
    """The algorithm of header ``name`` (``x-amz-checksum-crc32`` -> ``CRC32``), or ``None``.

    ``x-amz-checksum-algorithm``, ``-mode`` and ``-type`` and unknown
    algorithms give ``None``.
    """
    lower = name.strip().lower()
    if not lower.startswith(_HEADER_PREFIX):
        return None
    candidate = lower[len(_HEADER_PREFIX) :].upper()
    return candidate if candidate in ALGORITHMS else None


def decode_value(algorithm: str, value: str) -> bytes:
    """The raw digest in a base64 checksum ``value`` of ``algorithm``.

    :raises S3Error: ``InvalidRequest`` if ``value`` is not valid base64 of the
        algorithm's digest length.
    """
    name = normalise_algorithm(algorithm)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != DIGEST_SIZE[name]:
        raise S3Error(
            "InvalidRequest", f"Value for x-amz-checksum-{name.lower()} header is invalid."
        )
    return raw


def composite(algorithm: str, part_digests: Sequence[bytes | str]) -> str:
    """The composite checksum of a multipart object: ``<base64>-<number of parts>``.

    :param part_digests: each part's checksum, raw bytes or base64 text, in
        part order.
    """
    checksum = new_checksum(algorithm)
    for digest in part_digests:
        checksum.update(decode_value(algorithm, digest) if isinstance(digest, str) else digest)
    return f"{checksum.b64()}-{len(part_digests)}"


#: Algorithms whose whole-object value can be combined from part values.
COMBINABLE: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME")


def full_object(algorithm: str, parts: Sequence[tuple[bytes | str, int]]) -> str:
    """The full-object CRC of a multipart object, combined from its parts' CRCs.

    :param parts: each part's checksum (raw bytes or base64 text) and byte length,
        in part order.
    :raises S3Error: ``InvalidRequest`` for an algorithm that does not combine.
    """
    name = normalise_algorithm(algorithm)
    combine = getattr(_crt, f"combine_{name.lower()}", None) if name in COMBINABLE else None
    if combine is None:
        raise S3Error(
            "InvalidRequest", f"The FULL_OBJECT checksum type is not supported for {name}."
        )
    value = 0
    for digest, length in parts:
        raw = decode_value(name, digest) if isinstance(digest, str) else digest
        value = combine(value, int.from_bytes(raw, "big"), length)
    return base64.b64encode(value.to_bytes(DIGEST_SIZE[name], "big")).decode("ascii")
