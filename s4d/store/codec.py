"""The versioned, self-describing encoding of LMDB values.

A value is one format byte followed by a compact JSON object. New fields can be
added at any time (readers ignore what they do not know and default what is
missing); a new format byte is only needed if the container itself changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

FORMAT_JSON = 0x01

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_decoder = json.JSONDecoder()
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


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
    text = raw.decode("utf-8")  # the format byte decodes to one character, skipped below
    try:
        value, end = _scan(text, 1)  # the C scanner, without json's per-call wrapper
    except StopIteration:
        end = -1
    if end != len(text):
        value = _decoder.decode(text[1:])  # not one plain document: json's own error
    if not isinstance(value, dict):
        raise CodecError("stored value is not a mapping")
    return value
