"""CORS rules: AWS's checks of a configuration, and which rule answers a browser.

A bucket's CORS configuration is a list of :class:`CorsRule`, stored as JSON in
the bucket's configuration documents (kind :data:`CORS`). The first rule whose
origin pattern, method and (for a preflight) every requested header match
decides the answer, as in S3. Origins and allowed headers may hold one ``*``
each; origins compare exactly, header names without regard to case.

:func:`preflight_headers` answers an ``OPTIONS`` preflight,
:func:`actual_headers` decorates the answer to a request that carried
``Origin``; both are pure, and both return None when no rule matches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from s4d.errors import S3Error

#: The kind of the bucket configuration document holding the CORS rules.
CORS = b"cors"
#: The methods a rule may allow.
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100
MAX_ID_CHARS = 255
#: Sent with every CORS answer: caches must keep answers for other origins apart.
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


@dataclass(frozen=True)
class CorsRule:
    """One ``CORSRule``."""

    allowed_methods: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    rule_id: str | None = None

    def encode(self) -> dict[str, Any]:
        """The JSON form kept in the bucket's configuration."""
        value: dict[str, Any] = {"m": list(self.allowed_methods), "o": list(self.allowed_origins)}
        if self.allowed_headers:
            value["h"] = list(self.allowed_headers)
        if self.expose_headers:
            value["x"] = list(self.expose_headers)
        if self.max_age_seconds is not None:
            value["age"] = self.max_age_seconds
        if self.rule_id is not None:
            value["id"] = self.rule_id
        return value

    @classmethod
    def decode(cls, value: dict[str, Any]) -> CorsRule:
        """Build from the JSON form."""
        return cls(
            allowed_methods=tuple(value["m"]),
            allowed_origins=tuple(value["o"]),
            allowed_headers=tuple(value.get("h", ())),
            expose_headers=tuple(value.get("x", ())),
            max_age_seconds=value.get("age"),
            rule_id=value.get("id"),
        )

    def origin_for(self, origin: str) -> str | None:
        """What ``Access-Control-Allow-Origin`` says for ``origin`` (None: no match)."""
        for pattern in self.allowed_origins:
            if pattern == "*":
                return "*"
            if wildcard_match(pattern, origin):
                return origin
        return None

    def allows_headers(self, names: Iterable[str]) -> bool:
        """Every one of ``names`` matches an allowed header."""
        patterns = [h.lower() for h in self.allowed_headers]
        return all(any(wildcard_match(p, name.lower()) for p in patterns) for name in names)


def wildcard_match(pattern: str, text: str) -> bool:
    """``text`` matches ``pattern``, in which one ``*`` stands for any run of characters."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == text
    return len(text) >= len(head) + len(tail) and text.startswith(head) and text.endswith(tail)


def check_cors_rules(rules: list[CorsRule]) -> list[CorsRule]:
    """``rules`` as given, or AWS's error for the first fault."""
    if not rules:
        raise S3Error("MalformedXML")
    if len(rules) > MAX_RULES:
        raise S3Error(
            "InvalidRequest",
            f"The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules.",
        )
    for rule in rules:
        if not rule.allowed_methods or not rule.allowed_origins:
            raise S3Error("MalformedXML")
        if rule.rule_id is not None and len(rule.rule_id) > MAX_ID_CHARS:
            raise S3Error(
                "InvalidArgument", f"ID length should not exceed allowed limit of {MAX_ID_CHARS}"
            )
        for method in rule.allowed_methods:
            if method not in METHODS:
                raise S3Error(
                    "InvalidRequest",
                    f"Found unsupported HTTP method in CORS config. Unsupported method is {method}",
                )
        for origin in rule.allowed_origins:
            if origin.count("*") > 1:
                raise S3Error(
                    "InvalidRequest",
                    f'AllowedOrigin "{origin}" can not have more than one wildcard.',
                )
        for header in rule.allowed_headers:
            if header.count("*") > 1:
                raise S3Error(
                    "InvalidRequest",
                    f'AllowedHeader "{header}" can not have more than one wildcard.',
                )
        for header in rule.expose_headers:
            if "*" in header:
                raise S3Error(
                    "InvalidRequest",
                    f'ExposeHeader "{header}" contains wildcard. We currently do not support '
                    "wildcard for ExposeHeader.",
                )
        if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
            raise S3Error("MalformedXML")
    return rules


def encode_cors(rules: list[CorsRule]) -> bytes:
    """A configuration as stored."""
    return json.dumps([r.encode() for r in rules], separators=(",", ":")).encode()


@lru_cache(maxsize=256)
def decode_cors(raw: bytes) -> tuple[CorsRule, ...]:
    """A stored configuration (parsed once per distinct document)."""
    return tuple(CorsRule.decode(v) for v in json.loads(raw))


def requested_headers(value: str | None) -> list[str]:
    """The names of ``Access-Control-Request-Headers`` (comma-separated)."""
    if not value:
        return []
    return [name.strip() for name in value.split(",") if name.strip()]


def _answer(rule: CorsRule, allow_origin: str) -> dict[str, str]:
    headers = {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods),
        "Vary": VARY,
    }
    if allow_origin != "*":
        headers["Access-Control-Allow-Credentials"] = "true"
    if rule.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age_seconds is not None:
        headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
    return headers


def preflight_headers(
    rules: tuple[CorsRule, ...], origin: str, method: str, request_headers: str | None
) -> dict[str, str] | None:
    """The answer to a preflight the rules allow (None: no rule allows it)."""
    names = requested_headers(request_headers)
    for rule in rules:
        if method not in rule.allowed_methods or not rule.allows_headers(names):
            continue
        allow_origin = rule.origin_for(origin)
        if allow_origin is None:
            continue
        headers = _answer(rule, allow_origin)
        if names:
            headers["Access-Control-Allow-Headers"] = ", ".join(names)
        return headers
    return None


def actual_headers(rules: tuple[CorsRule, ...], origin: str, method: str) -> dict[str, str] | None:
    """The CORS headers of the answer to a ``method`` request from ``origin`` (None: none)."""
    for rule in rules:
        if method not in rule.allowed_methods:
            continue
        allow_origin = rule.origin_for(origin)
        if allow_origin is not None:
            return _answer(rule, allow_origin)
    return None
