"""Wildcard patterns (``*`` any run of characters, ``?`` one character), compiled once.

A policy's Action, Resource and ``…Like`` condition values are such patterns.
:func:`compile_glob` turns one into the cheapest test that decides it: string
equality when it has no wildcard, a prefix test when its only wildcard is a
trailing ``*``, a regular expression otherwise. :class:`GlobSet` merges many
patterns into one set lookup, one ``str.startswith`` over a tuple and one
alternation, so a statement naming a dozen resources costs about one test.
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
    """Whether ``text`` matches ``pattern`` (no compilation kept; for one-off checks)."""
    return glob_regex(pattern).fullmatch(text) is not None


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
    :ivar regex: the other patterns as one alternation, or ``None``.
    :ivar matches_all: a bare ``*`` was among them.
    """

    exact: frozenset[str]
    prefixes: tuple[str, ...]
    regex: re.Pattern[str] | None
    matches_all: bool

    @classmethod
    def of(cls, patterns: Iterable[str]) -> GlobSet:
        """Compile ``patterns`` (case-sensitive)."""
        exact: set[str] = set()
        prefixes: list[str] = []
        others: list[str] = []
        matches_all = False
        for pattern in patterns:
            if pattern == "*":
                matches_all = True
            elif not has_wildcard(pattern):
                exact.add(pattern)
            elif pattern.endswith("*") and not has_wildcard(pattern[:-1]):
                prefixes.append(pattern[:-1])
            else:
                others.append(glob_source(pattern))
        regex = re.compile("|".join(f"(?:{p})" for p in others), re.DOTALL) if others else None
        return cls(frozenset(exact), tuple(prefixes), regex, matches_all)

    def match(self, text: str) -> bool:
        """Whether ``text`` matches any of the patterns."""
        if self.matches_all or text in self.exact:
            return True
        if self.prefixes and text.startswith(self.prefixes):
            return True
        return self.regex is not None and self.regex.fullmatch(text) is not None
