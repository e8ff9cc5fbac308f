"""The bucket-policy language: parse, validate, compile, evaluate.

A pure package (no Twisted, no store). :func:`compile_policy` turns a policy
document into a :class:`CompiledPolicy` or refuses it with AWS's
``MalformedPolicy`` message; :meth:`CompiledPolicy.evaluate` answers what the
policy says about one :class:`PolicyRequest`; :attr:`CompiledPolicy.is_public`
is AWS's definition of a public policy.

Modules: :mod:`.actions` (AWS's S3 action names), :mod:`.condition_keys`,
:mod:`.patterns` (wildcards), :mod:`.conditions` (operators),
:mod:`.principals`, :mod:`.statements`, :mod:`.document` (the document's
checks), :mod:`.publicity`, :mod:`.evaluate`, :mod:`.request` (what is asked).
"""

from __future__ import annotations

from s4d.auth.policy.errors import MAX_POLICY_BYTES
from s4d.auth.policy.evaluate import CompiledPolicy, compile_policy
from s4d.auth.policy.request import (
    EMPTY_CONTEXT,
    ConditionContext,
    Effect,
    MappingContext,
    PolicyRequest,
    normalize_key,
)

__all__ = [
    "EMPTY_CONTEXT",
    "MAX_POLICY_BYTES",
    "CompiledPolicy",
    "ConditionContext",
    "Effect",
    "MappingContext",
    "PolicyRequest",
    "compile_policy",
    "normalize_key",
]
