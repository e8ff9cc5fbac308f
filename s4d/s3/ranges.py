"""HTTP Range headers for GetObject (a single range, as S3 supports)."""

from __future__ import annotations

from s4d.errors import S3Error
from s4d.util.numbers import decimal


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range ``(first, last)`` to send, or None for the whole object.

    A header S3 would ignore (not ``bytes=``, several ranges, garbage) gives None;
    a well-formed range that lies wholly past the end is ``InvalidRange``.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    first_value, last_value = decimal(first_text), decimal(last_text)
    if (first_value is None and first_text) or (last_value is None and last_text):
        return None
    if first_value is None:
        if last_value is None:
            return None
        suffix = last_value
        if suffix == 0:
            raise S3Error("InvalidRange", ActualObjectSize=size, RangeRequested=header)
        if size == 0:
            return None
        return max(0, size - suffix), size - 1
    first = first_value
    last = last_value if last_value is not None else size - 1
    if last_value is not None and last < first:
        return None
    if first >= size:
        raise S3Error("InvalidRange", ActualObjectSize=size, RangeRequested=header)
    return first, min(last, size - 1)
