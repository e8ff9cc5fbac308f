"""The bucket policy language as the authorization decision sees it.

The language lives in :mod:`s4d.auth.policy`; this module names what
:mod:`s4d.auth.access` and the S3 layer use of it (:class:`Effect`,
:class:`PolicyRequest`, :class:`ConditionContext`, :func:`compile_policy`,
:class:`CompiledPolicy`), so that the rest of the code depends on one small
surface: :class:`CompiledPolicy` here is the protocol the decision needs (a
stored policy that no longer compiles stands in for one, see
:mod:`s4d.auth.bucket_access`).
"""

from __future__ import annotations

from typing import Protocol

from s4d.auth.policy import (
    MAX_POLICY_BYTES,
    ConditionContext,
    Effect,
    MappingContext,
    PolicyRequest,
    compile_policy,
)


class CompiledPolicy(Protocol):
    """A bucket policy, parsed and ready to evaluate."""

    document: bytes
    is_public: bool

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        """Deny, Allow, or None when no statement applies."""
        ...


__all__ = [
    "MAX_POLICY_BYTES",
    "CompiledPolicy",
    "ConditionContext",
    "Effect",
    "MappingContext",
    "PolicyRequest",
    "compile_policy",
]
