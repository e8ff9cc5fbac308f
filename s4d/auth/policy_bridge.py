"""The bucket policy language as the authorization decision sees it.

The policy language lives in its own package; this module names what
:mod:`s4d.auth.access` and the S3 layer use of it (:class:`Effect`,
:class:`PolicyRequest`, :class:`ConditionContext`, :func:`compile_policy`,
:class:`CompiledPolicy`), so that the rest of the code depends on one small
surface.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from s4d.auth.principal import Principal
from s4d.errors import S3Error


class Effect(enum.Enum):
    """What a statement that applies says."""

    ALLOW = "Allow"
    DENY = "Deny"


class ConditionContext(Protocol):
    """The values of a request's condition keys (``aws:SourceIp``...), by case-insensitive key."""

    def get(self, key: str) -> Sequence[str] | None:
        """The values of ``key``, or None when the request has none."""
        ...


class MappingContext:
    """A :class:`ConditionContext` over a dict (keys compared case-insensitively)."""

    def __init__(self, values: dict[str, Sequence[str]]) -> None:
        self.values = {k.lower(): v for k, v in values.items()}

    def get(self, key: str) -> Sequence[str] | None:
        """The values of ``key``."""
        return self.values.get(key.lower())


@dataclass(frozen=True)
class PolicyRequest:
    """What a policy is evaluated against."""

    action: str
    bucket: str
    key: str | None
    principal: Principal | None
    context: ConditionContext


class CompiledPolicy(Protocol):
    """A bucket policy, parsed and ready to evaluate."""

    document: bytes
    is_public: bool

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        """Deny, Allow, or None when no statement applies."""
        ...


def compile_policy(document: bytes, bucket: str) -> CompiledPolicy:
    """Parse a bucket policy (``MalformedPolicy`` if it is not one)."""
    raise S3Error("NotImplemented", "Bucket policies are not implemented yet.")
