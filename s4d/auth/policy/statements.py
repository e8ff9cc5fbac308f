"""One policy statement: its elements validated and compiled into fast tests.

Action patterns are resolved at compile time against AWS's list of S3 actions
(:mod:`~s4d.auth.policy.actions`) into the set of action names a statement
covers, so evaluation asks a set, not a pattern. Resource patterns become one
:class:`~s4d.auth.policy.patterns.GlobSet` over ``bucket`` / ``bucket/key``
(the ARN prefix ``arn:aws:s3:::`` is checked here and dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from s4d.auth.policy.actions import ACTIONS_BY_LOWER
from s4d.auth.policy.conditions import Condition, compile_conditions
from s4d.auth.policy.errors import (
    INVALID_ACTION,
    INVALID_PRINCIPAL,
    INVALID_RESOURCE,
    INVALID_SYNTAX,
    invalid_effect,
    malformed,
    missing_field,
    unknown_field,
)
from s4d.auth.policy.patterns import (
    GlobSet,
    glob_can_start,
    glob_match,
    glob_source,
    has_wildcard,
)
from s4d.auth.policy.principals import PrincipalSet, compile_principal
from s4d.auth.policy.request import ConditionContext, Effect
from s4d.auth.policy.variables import Template, parse_template
from s4d.auth.principal import Principal

S3_ARN = "arn:aws:s3:::"
STATEMENT_FIELDS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)


@dataclass(frozen=True, eq=False)
class Statement:
    """A compiled statement.

    :ivar actions: the known action names (``s3:getobject``, lower case) it covers,
        NotAction already inverted.
    :ivar action_patterns: the Action/NotAction patterns in lower case (for an
        action outside AWS's list).
    :ivar resources: the Resource/NotResource patterns, without ``arn:aws:s3:::``.
    :ivar resource_templates: those of them with policy variables.
    """

    sid: str | None
    effect: Effect
    principals: PrincipalSet
    not_principal: bool
    actions: frozenset[str]
    action_patterns: tuple[str, ...]
    not_action: bool
    resources: GlobSet
    resource_patterns: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]
    resource_templates: tuple[Template, ...] = ()

    def covers_action(self, action: str) -> bool:
        """Whether the statement speaks of ``action`` (lower case)."""
        if action in ACTIONS_BY_LOWER:
            return action in self.actions
        return _action_globs(self.action_patterns).match(action) != self.not_action

    def applies(
        self, principal: Principal | None, resource: str, context: ConditionContext
    ) -> bool:
        """Whether the statement applies to this caller, resource and request.

        The action is not checked here: :class:`~s4d.auth.policy.evaluate.CompiledPolicy`
        only asks the statements that cover it.
        """
        if self.principals.matches(principal) == self.not_principal:
            return False
        hit = self.resources.match(resource)
        if not hit and self.resource_templates:
            hit = self._template_match(resource, context)
        if hit == self.not_resource:
            return False
        for condition in self.conditions:
            if not condition.holds(context):
                return False
        return True

    def _template_match(self, resource: str, context: ConditionContext) -> bool:
        for template in self.resource_templates:
            pattern = template.pattern(context)
            if pattern is not None and pattern.fullmatch(resource):
                return True
        return False


@lru_cache(maxsize=256)
def _action_globs(patterns: tuple[str, ...]) -> GlobSet:
    """Action patterns compiled, for the rare action outside AWS's list."""
    return GlobSet.of(patterns)


def compile_statement(raw: object, bucket: str, variables: bool = False) -> Statement:
    """Validate and compile one element of a policy's Statement.

    :param variables: strings may hold policy variables (a ``2012-10-17`` policy).
    """
    if not isinstance(raw, dict):
        raise malformed(INVALID_SYNTAX)
    for name in raw:
        if name not in STATEMENT_FIELDS:
            raise unknown_field(name)
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise malformed(INVALID_SYNTAX)
    effect = _effect(raw)
    principal_field = _one_of(raw, "Principal", "NotPrincipal")
    principals = compile_principal(raw[principal_field])
    not_principal = principal_field == "NotPrincipal"
    if not_principal and effect is Effect.ALLOW:
        raise malformed(INVALID_PRINCIPAL)
    action_field = _one_of(raw, "Action", "NotAction")
    patterns = _action_patterns(raw[action_field])
    not_action = action_field == "NotAction"
    covered = covered_actions(patterns, not_action)
    resource_field = _one_of(raw, "Resource", "NotResource")
    not_resource = resource_field == "NotResource"
    resources = _resource_patterns(raw[resource_field], bucket, not_resource, variables)
    templates = [t for r in resources if (t := parse_template(r)) is not None] if variables else []
    static = [r for r in resources if r not in {t.text for t in templates}]
    conditions = compile_conditions(raw["Condition"], variables) if "Condition" in raw else ()
    return Statement(
        sid,
        effect,
        principals,
        not_principal,
        covered,
        tuple(patterns),
        not_action,
        GlobSet.of(static),
        tuple(resources),
        not_resource,
        conditions,
        tuple(templates),
    )


def _effect(raw: dict[str, object]) -> Effect:
    if "Effect" not in raw:
        raise missing_field("Effect")
    value = raw["Effect"]
    if value == "Allow":
        return Effect.ALLOW
    if value == "Deny":
        return Effect.DENY
    raise invalid_effect(value)


def _one_of(raw: dict[str, object], name: str, negated: str) -> str:
    """Which of ``name`` and ``Not<name>`` the statement has (exactly one)."""
    if name in raw and negated in raw:
        raise malformed(INVALID_SYNTAX)
    if negated in raw:
        return negated
    if name not in raw:
        raise missing_field(name)
    return name


def _strings(raw: object, message: str) -> Sequence[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise malformed(message)
    return [item for item in items if isinstance(item, str)]


def _action_patterns(raw: object) -> list[str]:
    """The Action values in lower case; each must name (or match) an S3 action."""
    patterns = []
    for value in _strings(raw, INVALID_ACTION):
        pattern = value.lower()
        if pattern != "*":
            service, colon, name = pattern.partition(":")
            if service != "s3" or not colon or not name:
                raise malformed(INVALID_ACTION)
            if not matching_actions(pattern):
                raise malformed(INVALID_ACTION)
        patterns.append(pattern)
    return patterns


_ALL_ACTIONS = frozenset(ACTIONS_BY_LOWER)
_ACTION_LINES = "\n".join(sorted(ACTIONS_BY_LOWER)) + "\n"


@lru_cache(maxsize=4096)
def matching_actions(pattern: str) -> frozenset[str]:
    """The known actions (lower case) an Action pattern (lower case) matches."""
    if pattern == "*":
        return _ALL_ACTIONS
    if not has_wildcard(pattern):
        return frozenset({pattern}) & _ALL_ACTIONS
    if "\n" in pattern:
        return frozenset()
    # one search over all the names, one per line (``.`` stops at a line's end)
    lines = re.compile(f"^{glob_source(pattern)}$", re.MULTILINE)
    return frozenset(lines.findall(_ACTION_LINES))


def covered_actions(patterns: Iterable[str], negated: bool) -> frozenset[str]:
    """The known actions an Action (or, ``negated``, a NotAction) element covers."""
    named: frozenset[str] = frozenset()
    for pattern in set(patterns):
        named |= matching_actions(pattern)
    return _ALL_ACTIONS - named if negated else named


def _resource_patterns(raw: object, bucket: str, negated: bool, variables: bool) -> list[str]:
    """The Resource values without the ARN prefix; each must name this bucket or its objects."""
    patterns = []
    for value in _strings(raw, INVALID_RESOURCE):
        if not value.startswith(S3_ARN):
            raise malformed(INVALID_RESOURCE)
        pattern = value[len(S3_ARN) :]
        if not pattern or pattern.startswith("/"):
            raise malformed(INVALID_RESOURCE)
        template = parse_template(pattern) if variables else None
        reach = template.as_glob() if template else pattern
        if not negated and not (glob_match(reach, bucket) or glob_can_start(reach, bucket + "/")):
            raise malformed(INVALID_RESOURCE)
        patterns.append(pattern)
    return patterns
