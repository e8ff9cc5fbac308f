"""Wildcard patterns (``*`` any run of characters, ``?`` one character), compiled once.

A policy's Action, Resource and ``…Like`` condition values are such patterns.
:class:`GlobSet` gives each the cheapest test that decides it: a set lookup
when it has no wildcard, one ``str.startswith`` over a tuple for those whose
only wildcard is a trailing ``*``, and for the rest a :class:`Wildcard`, which
matches the pieces between ``*`` left to right with ``str.find`` (linear, no
backtracking, nothing to compile but a tiny expression for a piece with ``?``).

Matching must stay linear whatever the pattern: a plain translation to a
regular expression (``a*b*c`` to ``a.*b.*c``) backtracks exponentially on a
failing pattern of many ``*``, a denial of service in one policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_STARS = re.compile(r"\*{2,}")


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` has a ``*`` or ``?``."""
    return "*" in pattern or "?" in pattern


def glob_regex(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """The regular expression matching exactly the strings ``pattern`` matches.

    Linear, whatever the pattern: ``a*b*c`` becomes ``a(?>.*?b).*c``. Each
    middle piece is found at its earliest place and never reconsidered (an
    atomic group), which is always right for ``*`` (taking the earliest leaves
    the most text for the rest, and the rest starts with a ``*``); only the
    last ``.*`` backtracks, to fit the final piece at the end. A plain
    translation (``a.*b.*c``) backtracks exponentially on a pattern of many
    ``*`` that fails, a denial of service in a policy.
    """
    return re.compile(glob_source(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_source(pattern: str) -> str:
    """The source of :func:`glob_regex`'s expression (for joining into an alternation)."""
    return join_runs([piece_source(piece) for piece in pattern.split("*")])


def join_runs(runs: list[str]) -> str:
    """The expression for ``runs`` (each already an expression) with a ``*`` between each two."""
    if len(runs) == 1:
        return runs[0]
    first, *middle, last = runs
    return first + "".join(f"(?>.*?{run})" for run in middle if run) + ".*" + last


def piece_source(text: str) -> str:
    """A run without ``*``: ``?`` is any one character, the rest literal."""
    return "".join("." if char == "?" else re.escape(char) for char in text)


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` (for one-off checks)."""
    return Wildcard(pattern).match(text)


class _Piece:
    """A run of a pattern between two ``*``: literal text, or with ``?`` a fixed-length test."""

    __slots__ = ("regex", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self.regex = re.compile(piece_source(text), re.DOTALL) if "?" in text else None

    def at(self, text: str, pos: int) -> bool:
        """Whether the piece matches ``text`` at ``pos`` (the caller checked the length)."""
        if self.regex is None:
            return text.startswith(self.text, pos)
        return self.regex.match(text, pos) is not None

    def find(self, text: str, start: int, end: int) -> int:
        """The first place in ``text[start:end]`` where the piece matches, or -1."""
        if self.regex is None:
            return text.find(self.text, start, end)
        found = self.regex.search(text, start, end)
        return -1 if found is None else found.start()


class Wildcard:
    """One pattern with wildcards, matched piece by piece in linear time.

    The first piece must match at the start and the last at the end; each
    middle piece is taken at its earliest place after the previous one, which
    is always right (the earliest leaves the most text for the rest, and the
    rest begins with a ``*``).
    """

    __slots__ = ("first", "last", "middle", "min_size")

    def __init__(self, pattern: str) -> None:
        first, *rest = pattern.split("*")
        self.first = _Piece(first)
        self.last = _Piece(rest[-1]) if rest else None
        self.middle = tuple(_Piece(piece) for piece in rest[:-1] if piece)
        self.min_size = len(pattern) - pattern.count("*")

    def match(self, text: str) -> bool:
        """Whether all of ``text`` matches the pattern."""
        size = len(text)
        if size < self.min_size or not self.first.at(text, 0):
            return False
        last = self.last
        if last is None:
            return size == self.first.size
        end = size - last.size
        if not last.at(text, end):
            return False
        pos = self.first.size
        for piece in self.middle:
            found = piece.find(text, pos, end)
            if found < 0:
                return False
            pos = found + piece.size
        return True


def glob_can_start(pattern: str, prefix: str) -> bool:
    """Whether some string that starts with ``prefix`` matches ``pattern``.

    Runs ``prefix`` through the pattern as a set of positions (a tiny NFA): a
    ``*`` absorbs any character, ``?`` exactly one, a literal itself. If any
    position survives, the rest of the pattern can always be completed.
    """
    pattern = _STARS.sub("*", pattern)  # ``**`` is ``*``; keeps the position sets small
    positions = _closure({0}, pattern)
    for char in prefix:
        following: set[int] = set()
        for pos in positions:
            if pos == len(pattern):
                continue
            token = pattern[pos]
            if token == "*":
                following.add(pos)
            elif token == "?" or token == char:
                following.add(pos + 1)
        positions = _closure(following, pattern)
        if not positions:
            return False
    return True


def _closure(positions: set[int], pattern: str) -> set[int]:
    """Add the positions reachable by letting a ``*`` match nothing."""
    result = set(positions)
    stack = list(positions)
    while stack:
        pos = stack.pop()
        if pos < len(pattern) and pattern[pos] == "*" and pos + 1 not in result:
            result.add(pos + 1)
            stack.append(pos + 1)
    return result


@dataclass(frozen=True)
class GlobSet:
    """Many patterns, matched as one: any pattern matching means a match.

    :ivar exact: the patterns without wildcards.
    :ivar prefixes: the patterns whose only wildcard is one trailing ``*``, without it.
    :ivar others: the other patterns.
    :ivar matches_all: a bare ``*`` was among them.
    """

    exact: frozenset[str]
    prefixes: tuple[str, ...]
    others: tuple[Wildcard, ...]
    matches_all: bool

    @classmethod
    def of(cls, patterns: Iterable[str]) -> GlobSet:
        """Compile ``patterns`` (case-sensitive)."""
        exact: set[str] = set()
        prefixes: list[str] = []
        others: dict[str, Wildcard] = {}
        matches_all = False
        for pattern in patterns:
            pattern = _STARS.sub("*", pattern)
            if pattern == "*":
                matches_all = True
            elif not has_wildcard(pattern):
                exact.add(pattern)
            elif pattern.endswith("*") and not has_wildcard(pattern[:-1]):
                prefixes.append(pattern[:-1])
            elif pattern not in others:
                others[pattern] = Wildcard(pattern)
        return cls(frozenset(exact), tuple(prefixes), tuple(others.values()), matches_all)

    def match(self, text: str) -> bool:
        """Whether ``text`` matches any of the patterns."""
        if self.matches_all or text in self.exact:
            return True
        if self.prefixes and text.startswith(self.prefixes):
            return True
        for pattern in self.others:
            if pattern.match(text):
                return True
        return False
