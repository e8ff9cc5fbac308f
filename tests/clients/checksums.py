"""Reference checksums as S3 returns them (base64 of the big-endian digest), computed here.

CRC32C and CRC64NVME are table-driven pure Python, independent of the server's
implementation, and fast enough for the few hundred kilobytes tests send.
"""

from __future__ import annotations

import base64
import hashlib
import zlib


def _table(poly: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _table(0x82F63B78)
_CRC64NVME = _table(0x9A6C9329AC4BC9B5)


def _reflected_crc(data: bytes, table: list[int], mask: int) -> int:
    crc = mask
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


def crc32(data: bytes) -> str:
    """x-amz-checksum-crc32 of ``data``."""
    return base64.b64encode((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def crc32c(data: bytes) -> str:
    """x-amz-checksum-crc32c of ``data``."""
    return base64.b64encode(_reflected_crc(data, _CRC32C, 0xFFFFFFFF).to_bytes(4, "big")).decode()


def crc64nvme(data: bytes) -> str:
    """x-amz-checksum-crc64nvme of ``data``."""
    value = _reflected_crc(data, _CRC64NVME, 0xFFFFFFFFFFFFFFFF)
    return base64.b64encode(value.to_bytes(8, "big")).decode()


def sha1(data: bytes) -> str:
    """x-amz-checksum-sha1 of ``data``."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def sha256(data: bytes) -> str:
    """x-amz-checksum-sha256 of ``data``."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


#: algorithm name (as boto3 spells it) -> reference function
REFERENCE = {
    "CRC32": crc32,
    "CRC32C": crc32c,
    "CRC64NVME": crc64nvme,
    "SHA1": sha1,
    "SHA256": sha256,
}
