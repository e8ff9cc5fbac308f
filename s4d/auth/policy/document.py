"""A policy document: size, JSON, the top-level elements, and each statement.

:func:`parse_policy` checks what AWS checks when a bucket policy is stored and
answers what AWS answers (``MalformedPolicy`` with AWS's message, or
``PolicyTooLarge``); it returns the compiled statements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from s4d.auth.policy.errors import (
    EMPTY_STATEMENT,
    INVALID_JSON,
    INVALID_SYNTAX,
    INVALID_VERSION,
    MAX_POLICY_BYTES,
    NOT_AN_OBJECT,
    malformed,
    missing_field,
    too_large,
    unknown_field,
)
from s4d.auth.policy.statements import Statement, compile_statement

#: The policy language versions AWS accepts (without one, a policy is 2008-10-17).
VERSIONS = ("2012-10-17", "2008-10-17")
DEFAULT_VERSION = "2008-10-17"
POLICY_FIELDS = frozenset({"Version", "Id", "Statement"})


@dataclass(frozen=True)
class ParsedPolicy:
    """A validated policy: its version, id, and compiled statements."""

    version: str
    policy_id: str | None
    statements: tuple[Statement, ...]


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object's members; a name twice is refused (which one counts would be a guess)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("an element is named twice")
    return found


def load_json(document: bytes) -> object:
    """The document's JSON value: strict JSON (no NaN or Infinity, no name twice in an object)."""
    if len(document) > MAX_POLICY_BYTES:
        raise too_large()
    if document[:1] != b"{":
        raise malformed(NOT_AN_OBJECT)
    try:
        return json.loads(
            document.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise malformed(INVALID_JSON) from None


def parse_policy(document: bytes, bucket: str) -> ParsedPolicy:
    """Validate ``document`` as a policy of ``bucket`` and compile its statements."""
    top = load_json(document)
    if not isinstance(top, dict):
        raise malformed(NOT_AN_OBJECT)
    for name in top:
        if name not in POLICY_FIELDS:
            raise unknown_field(name)
    version = top.get("Version", DEFAULT_VERSION)
    if version not in VERSIONS:
        raise malformed(INVALID_VERSION)
    policy_id = top.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise malformed(INVALID_SYNTAX)
    if "Statement" not in top:
        raise missing_field("Statement")
    raw = top["Statement"]
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise malformed(INVALID_SYNTAX)
    if not items:
        raise malformed(EMPTY_STATEMENT)
    variables = version == "2012-10-17"
    statements = tuple(compile_statement(item, bucket, variables) for item in items)
    return ParsedPolicy(str(version), policy_id, statements)
