"""Globs over keys: ``logs/2026-*/*.csv`` matched without listing more than its literal prefix.

``*`` matches within one path segment (no ``/``), ``**`` across segments,
``?`` one character other than ``/``, ``[abc]``, ``[a-z]`` and ``[!abc]`` one
character of (or not of) a set, ``{a,b}`` either alternative, and ``\\`` makes
the next character literal. :func:`literal_prefix` is what comes before the
first special character: the only part of the bucket a query lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from s4d.errors import S3Error

SPECIAL = frozenset("*?[{\\")


@dataclass(frozen=True)
class Glob:
    """A compiled glob."""

    pattern: str
    prefix: str
    regex: re.Pattern[str]

    def matches(self, key: str) -> bool:
        """``key`` matches the whole glob."""
        return self.regex.fullmatch(key) is not None


def literal_prefix(pattern: str) -> str:
    """The characters before the first special one (escapes resolved)."""
    out: list[str] = []
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char == "\\" and at + 1 < len(pattern):
            out.append(pattern[at + 1])
            at += 2
            continue
        if char in SPECIAL:
            break
        out.append(char)
        at += 1
    return "".join(out)


def _bad(pattern: str, why: str) -> S3Error:
    return S3Error("InvalidRequest", f"Invalid glob {pattern!r}: {why}.")


def _translate(pattern: str, at: int, stop: str) -> tuple[str, int]:
    """Regex for ``pattern[at:]`` up to a character of ``stop`` at depth 0."""
    out: list[str] = []
    while at < len(pattern):
        char = pattern[at]
        if char in stop:
            return "".join(out), at
        if char == "\\":
            if at + 1 >= len(pattern):
                raise _bad(pattern, "it ends with a backslash")
            out.append(re.escape(pattern[at + 1]))
            at += 2
        elif char == "*":
            if pattern.startswith("**", at):
                at += 2
                if pattern.startswith("/", at):
                    out.append("(?:.*/)?")  # a/**/b also matches a/b
                    at += 1
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
                at += 1
        elif char == "?":
            out.append("[^/]")
            at += 1
        elif char == "[":
            end = pattern.find("]", at + 2)
            if end < 0:
                raise _bad(pattern, "a [ is not closed")
            body = pattern[at + 1 : end]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("]", "\\]")
            out.append(f"[{'^' if negate else ''}{body}]")
            at = end + 1
        elif char == "{":
            choices: list[str] = []
            at += 1
            while True:
                choice, at = _translate(pattern, at, ",}")
                choices.append(choice)
                if at >= len(pattern):
                    raise _bad(pattern, "a { is not closed")
                if pattern[at] == "}":
                    at += 1
                    break
                at += 1  # the comma
            out.append("(?:" + "|".join(choices) + ")")
        else:
            out.append(re.escape(char))
            at += 1
    if stop:
        return "".join(out), at
    return "".join(out), at


def compile_glob(pattern: str) -> Glob:
    """Compile ``pattern``; ``InvalidRequest`` if it is malformed."""
    regex, _ = _translate(pattern, 0, "")
    try:
        compiled = re.compile(regex, re.DOTALL)
    except re.error as e:
        raise _bad(pattern, str(e)) from None
    return Glob(pattern, literal_prefix(pattern), compiled)


def exact(key: str) -> Glob:
    """A glob matching ``key`` alone (a quoted name without wildcards)."""
    return Glob(key, key, re.compile(re.escape(key), re.DOTALL))


def is_glob(text: str) -> bool:
    """``text`` holds a wildcard (``*``, ``?``, ``[`` or ``{``)."""
    return any(char in text for char in "*?[{")
