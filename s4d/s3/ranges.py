"""HTTP Range headers for GetObject (a single range, as S3 supports)."""

from __future__ import annotations

from s4d.errors import S3Error


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
    if not (first_text.isdigit() or first_text == "") or not (last_text.isdigit() or last_text == ""):
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0:
            raise S3Error("InvalidRange", ActualObjectSize=size, RangeRequested=header)
        if size == 0:
            return None
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise S3Error("InvalidRange", ActualObjectSize=size, RangeRequested=header)
    return first, min(last, size - 1)
