"""The versioned, self-describing encoding of LMDB values.

A value is one format byte followed by a compact JSON object. New fields can be
added at any time (readers ignore what they do not know and default what is
missing); a new format byte is only needed if the container itself changes.
"""

from __future__ import annotations

import json
from typing import Any

FORMAT_JSON = 0x01

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_decoder = json.JSONDecoder()


class CodecError(Exception):
    """A value could not be decoded."""


def encode(value: dict[str, Any]) -> bytes:
    """Encode a mapping for storage."""
    return bytes((FORMAT_JSON,)) + _encoder.encode(value).encode("utf-8")


def decode(data: bytes | memoryview) -> dict[str, Any]:
    """Decode a stored mapping."""
    raw = bytes(data)
    if not raw or raw[0] != FORMAT_JSON:
        raise CodecError(f"unknown value format {raw[:1]!r}")
    value = _decoder.decode(raw[1:].decode("utf-8"))
    if not isinstance(value, dict):
        raise CodecError("stored value is not a mapping")
    return value
