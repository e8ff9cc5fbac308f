"""S3's two timestamp forms: ISO-8601 with milliseconds in XML, RFC 1123 in headers."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime


def iso8601(ns: int) -> str:
    """``2026-11-24T16:19:42.000Z``: whole seconds, as S3 keeps them.

    The milliseconds are always zero so that a listing's LastModified is the
    same instant as the Last-Modified header of GET and HEAD (whole seconds);
    sync tools compare the two.
    """
    t = time.gmtime(ns // 1_000_000_000)
    return _ISO % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


_ISO = "%04d-%02d-%02dT%02d:%02d:%02d.000Z"


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
