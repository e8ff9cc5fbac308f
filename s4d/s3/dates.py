"""S3's two timestamp forms: ISO-8601 with milliseconds in XML, RFC 1123 in headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime


def iso8601(ns: int) -> str:
    """``2026-11-24T16:19:42.123Z`` (milliseconds, truncated)."""
    ms = ns // 1_000_000
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def http_date(ns: int) -> str:
    """``Tue, 24 Nov 2026 16:19:42 GMT`` (whole seconds)."""
    return format_datetime(datetime.fromtimestamp(ns // 1_000_000_000, UTC), usegmt=True)


def parse_http_date(text: str) -> int | None:
    """Seconds since the epoch of an HTTP date, or None if it does not parse."""
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())
