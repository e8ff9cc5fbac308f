"""S3 Select's functions that DataFusion lacks or spells differently, as DataFusion UDFs.

``TO_TIMESTAMP`` (and ``CAST(... AS TIMESTAMP)``, and backquoted literals)
reads AWS's timestamps (``2010T``, ``2010-01-02T``, ``2010-01-02T03:04:05.6Z``,
``...+01:00``); ``TO_STRING`` formats with AWS's (Java-style) patterns;
``DATE_ADD`` and ``DATE_DIFF`` count calendar years and months and elapsed
days, hours, minutes and seconds as AWS does. Timestamps are UTC with
nanoseconds. :mod:`s4d.sql.dialect` renames the calls to these.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from datafusion import ScalarUDF, udf

TIMESTAMP = pa.timestamp("ns", tz="UTC")

_ION = re.compile(
    r"""\s*(?P<y>\d{4})
    (?:T
     |-(?P<mo>\d{2})
      (?:T
       |-(?P<d>\d{2})
        (?:[T\ ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?
           (?P<tz>Z|[+-]\d{2}:?\d{2})?
         |T?)
      )
    )?\s*\Z""",
    re.VERBOSE,
)


class TimestampError(ValueError):
    """Text that is not a timestamp."""


def parse_timestamp(text: str) -> datetime:
    """An AWS (Ion) timestamp as a UTC datetime."""
    found = _ION.match(text)
    if found is None:
        raise TimestampError(text)
    g = found.groupdict()
    try:
        moment = datetime(
            int(g["y"]),
            int(g["mo"] or 1),
            int(g["d"] or 1),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            int((g["f"] or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        raise TimestampError(text) from None
    zone = g["tz"]
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def _timestamps(values: list[datetime | None]) -> pa.Array:
    return pa.array(values, type=TIMESTAMP)


def _to_timestamp(texts: pa.Array) -> pa.Array:
    cache: dict[str, datetime] = {}
    out: list[datetime | None] = []
    for text in texts.to_pylist():
        if text is None:
            out.append(None)
            continue
        moment = cache.get(text)
        if moment is None:
            try:
                moment = cache[text] = parse_timestamp(text)
            except TimestampError:
                raise ValueError(
                    f"Cast error: Cannot cast {text!r} to a timestamp (CastFailed)"
                ) from None
        out.append(moment)
    return _timestamps(out)


def _micros(moments: pa.Array) -> list[Any]:
    """Timestamps as Python values (nanoseconds dropped: datetime holds microseconds)."""
    if pa.types.is_timestamp(moments.type) and moments.type.unit == "ns":
        moments = moments.cast(pa.timestamp("us", moments.type.tz), safe=False)
    values: list[Any] = moments.to_pylist()
    return values


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months (the day clamped to the month's length)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


_SECONDS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}


def date_add(part: str, quantity: int, moment: datetime) -> datetime:
    """AWS's DATE_ADD."""
    if part == "year":
        return add_months(moment, 12 * quantity)
    if part == "month":
        return add_months(moment, quantity)
    return moment + timedelta(seconds=_SECONDS[part] * quantity)


def date_diff(part: str, first: datetime, second: datetime) -> int:
    """AWS's DATE_DIFF: whole units elapsed from ``first`` to ``second``."""
    if part in ("year", "month"):
        months = (second.year - first.year) * 12 + (second.month - first.month)
        rest_first = first.replace(year=2000, month=1)
        rest_second = second.replace(year=2000, month=1)
        if months > 0 and rest_second < rest_first:
            months -= 1
        elif months < 0 and rest_second > rest_first:
            months += 1
        return int(months / 12) if part == "year" else months
    elapsed = (second - first).total_seconds()
    return int(elapsed / _SECONDS[part])


def _date_add(parts: pa.Array, quantities: pa.Array, moments: pa.Array) -> pa.Array:
    out: list[datetime | None] = []
    for part, quantity, moment in zip(
        parts.to_pylist(), quantities.to_pylist(), _micros(moments), strict=True
    ):
        when = _as_datetime(moment)
        out.append(None if when is None or quantity is None else date_add(part, quantity, when))
    return _timestamps(out)


def _date_diff(parts: pa.Array, firsts: pa.Array, seconds: pa.Array) -> pa.Array:
    out: list[int | None] = []
    for part, first, second in zip(
        parts.to_pylist(), _micros(firsts), _micros(seconds), strict=True
    ):
        a, b = _as_datetime(first), _as_datetime(second)
        out.append(None if a is None or b is None else date_diff(part, a, b))
    return pa.array(out, type=pa.int64())


_PATTERN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+")


def _offset(moment: datetime, letters: str) -> str:
    minutes = int((moment.utcoffset() or timedelta()).total_seconds() // 60)
    if minutes == 0 and letters[0] == "X":
        return "Z"
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    if len(letters) == 1:
        return f"{sign}{hours:02d}" + (f"{mins:02d}" if mins else "")
    if len(letters) == 2:
        return f"{sign}{hours:02d}{mins:02d}"
    return f"{sign}{hours:02d}:{mins:02d}"


def format_timestamp(moment: datetime, pattern: str) -> str:
    """``moment`` written with an AWS ``TO_STRING`` pattern (``yyyy-MM-dd'T'HH:mm``)."""
    out: list[str] = []
    for token in _PATTERN.finditer(pattern):
        text = token.group()
        if text.startswith("'"):
            out.append(text[1:-1].replace("''", "'") if len(text) > 2 else "'")
            continue
        if token.group(1) is None:
            out.append(text)
            continue
        letter, n = text[0], len(text)
        if letter == "y":
            out.append(f"{moment.year % 100:02d}" if n == 2 else f"{moment.year:0{n}d}")
        elif letter == "M":
            if n >= 4:
                out.append(calendar.month_name[moment.month])
            elif n == 3:
                out.append(calendar.month_abbr[moment.month])
            else:
                out.append(f"{moment.month:0{n}d}")
        elif letter == "d":
            out.append(f"{moment.day:0{n}d}")
        elif letter == "a":
            out.append("AM" if moment.hour < 12 else "PM")
        elif letter == "h":
            out.append(f"{(moment.hour % 12) or 12:0{n}d}")
        elif letter == "H":
            out.append(f"{moment.hour:0{n}d}")
        elif letter == "m":
            out.append(f"{moment.minute:0{n}d}")
        elif letter == "s":
            out.append(f"{moment.second:0{n}d}")
        elif letter == "S":
            out.append(f"{moment.microsecond:06d}000"[:n].ljust(n, "0"))
        elif letter == "n":
            out.append(str(moment.microsecond * 1000))
        elif letter in "Xx":
            out.append(_offset(moment, text))
        else:
            raise ValueError(
                f"Invalid TO_STRING pattern letter {letter!r} (InvalidTimestampFormat)"
            )
    return "".join(out)


def _to_string(moments: pa.Array, patterns: pa.Array) -> pa.Array:
    out: list[str | None] = []
    for moment, pattern in zip(_micros(moments), patterns.to_pylist(), strict=True):
        when = _as_datetime(moment)
        out.append(None if when is None or pattern is None else format_timestamp(when, pattern))
    return pa.array(out, type=pa.string())


def _udf(
    f: Callable[..., pa.Array], inputs: list[pa.DataType], result: pa.DataType, name: str
) -> ScalarUDF:
    return udf(f, inputs, result, "immutable", name=name)


def s3_functions() -> list[ScalarUDF]:
    """The UDFs :mod:`s4d.sql.dialect` translates S3 Select's calls into."""
    return [
        _udf(_to_timestamp, [pa.string()], TIMESTAMP, "s3_to_timestamp"),
        _udf(_to_string, [TIMESTAMP, pa.string()], pa.string(), "s3_to_string"),
        _udf(_date_add, [pa.string(), pa.int64(), TIMESTAMP], TIMESTAMP, "s3_date_add"),
        _udf(_date_diff, [pa.string(), TIMESTAMP, TIMESTAMP], pa.int64(), "s3_date_diff"),
    ]
