"""Decimal numbers from untrusted text (headers, query parameters, XML)."""

from __future__ import annotations

#: What :func:`decimal` answers for numbers too long to be meant (past 19 digits).
HUGE = 1 << 64


def decimal(text: str | None) -> int | None:
    """The value of a string of ASCII digits, or None for anything else.

    ``str.isdigit`` also accepts digits ``int()`` refuses (``"²"``) and
    ``int()`` refuses strings of more than 4300 digits; a number of more than
    19 significant digits comes back as :data:`HUGE`, beyond any real size.
    """
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0")
    if len(significant) > 19:
        return HUGE
    return int(significant or "0")
