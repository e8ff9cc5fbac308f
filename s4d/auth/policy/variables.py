"""Policy variables: ``${aws:username}`` and its kin inside a Resource or a condition value.

In a ``2012-10-17`` policy a string may hold ``${key}`` (any condition key,
filled in from the request's values for it), ``${key, 'default'}`` (the
default when the request has none), and ``${*}``, ``${?}``, ``${$}`` (the
characters themselves, never wildcards). A value filled in is literal text:
a ``*`` in a username does not become a wildcard. When the request has no
value for a variable without a default, the string matches nothing.

A :class:`Template` is parsed once; each request renders it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from s4d.auth.policy.condition_keys import is_known_key
from s4d.auth.policy.errors import INVALID_CONDITION_KEY, malformed
from s4d.auth.policy.patterns import join_runs, piece_source
from s4d.auth.policy.request import ConditionContext

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}

#: A part of a template: ("glob", text with live wildcards), ("literal", text),
#: or ("variable", key, default-or-empty, has-default).
Part = tuple[str, str, str, bool]


@dataclass(frozen=True)
class Template:
    """A string with policy variables."""

    text: str
    parts: tuple[Part, ...]

    def render(self, context: ConditionContext) -> str | None:
        """The string with its variables filled in (wildcards left as text), or ``None``."""
        pieces = []
        for kind, text, default, has_default in self.parts:
            if kind != "variable":
                pieces.append(text)
                continue
            value = _value(context, text, default, has_default)
            if value is None:
                return None
            pieces.append(value)
        return "".join(pieces)

    def pattern(
        self, context: ConditionContext, *, ignore_case: bool = False
    ) -> re.Pattern[str] | None:
        """The template as a wildcard pattern for this request, or ``None``."""
        runs = [""]  # the expressions between live ``*``
        for kind, text, default, has_default in self.parts:
            if kind == "glob":
                first, *rest = text.split("*")
                runs[-1] += piece_source(first)
                runs.extend(piece_source(run) for run in rest)
                continue
            value = text if kind == "literal" else _value(context, text, default, has_default)
            if value is None:
                return None
            runs[-1] += re.escape(value)
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        return re.compile(join_runs(runs), flags)

    def as_glob(self) -> str:
        """The template with every variable as ``*`` (what it could match, for validation)."""
        return "".join("*" if kind == "variable" else text for kind, text, _, _ in self.parts)


def _value(context: ConditionContext, key: str, default: str, has_default: bool) -> str | None:
    found = context.get(key)
    if found:
        return found[0]
    return default if has_default else None


def parse_template(text: str) -> Template | None:
    """``text`` as a template, or ``None`` when it has no variable.

    :raises S3Error: ``MalformedPolicy`` for a variable naming no condition key.
    """
    if "${" not in text:
        return None
    parts: list[Part] = []
    last = 0
    for found in _VARIABLE.finditer(text):
        if found.start() > last:
            parts.append(("glob", text[last : found.start()], "", False))
        inside = found.group(1)
        if inside in _SPECIAL:
            parts.append(("literal", _SPECIAL[inside], "", False))
        else:
            with_default = _DEFAULT.match(inside)
            key, default = (with_default.group(1), with_default.group(2)) if with_default else (
                inside.strip(), ""
            )  # fmt: skip
            if not is_known_key(key):
                raise malformed(INVALID_CONDITION_KEY)
            parts.append(("variable", key, default, with_default is not None))
        last = found.end()
    if last < len(text):
        parts.append(("glob", text[last:], "", False))
    if not any(kind != "glob" for kind, _, _, _ in parts):
        return None
    return Template(text, tuple(parts))
