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
    """``Tue, 24 Nov 2026 16:19:42 GMT`` (whole seconds; recent answers are remembered)."""
    seconds = ns // 1_000_000_000
    found = _http_dates.get(seconds)
    if found is None:
        if len(_http_dates) >= _HTTP_DATES_KEPT:
            _http_dates.clear()
        found = _http_dates[seconds] = format_datetime(
            datetime.fromtimestamp(seconds, UTC), usegmt=True
        )
    return found


#: Last-Modified headers by second: a hot object is read many times a second
_http_dates: dict[int, str] = {}
_HTTP_DATES_KEPT = 4096


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
