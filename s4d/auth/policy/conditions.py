"""Condition blocks: the operators, compiled into tests over a request's values.

A statement's ``Condition`` is ``{operator: {key: value-or-values}}``. Every
operator and every key must hold (AND); a key's policy values are alternatives
(OR). An operator is a base name (``StringLike``, ``IpAddress``...) with an
optional ``IfExists`` suffix (true when the request has no value for the key)
and an optional ``ForAnyValue:``/``ForAllValues:`` qualifier for multi-valued
keys. As AWS documents: when the request has no value for a key, a positive
operator is false and a negated one (``StringNotEquals``, ``NotIpAddress``...)
is true; ``ForAllValues`` over no values is true, ``ForAnyValue`` false.

Policy values are parsed once here (numbers, dates, CIDRs, wildcard patterns);
a request's values are parsed as they are tested, and one that does not parse
does not match.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from s4d.auth.policy.condition_keys import is_known_key
from s4d.auth.policy.errors import (
    INVALID_CONDITION_KEY,
    INVALID_IP,
    INVALID_SYNTAX,
    invalid_condition_type,
    malformed,
)
from s4d.auth.policy.patterns import GlobSet
from s4d.auth.policy.request import ConditionContext
from s4d.auth.policy.variables import Template, parse_template

#: Whether one request value satisfies the (positive) operator for some policy value.
ValueTest = Callable[[str], bool]

ANY_VALUE = "foranyvalue"
ALL_VALUES = "forallvalues"


@dataclass(frozen=True)
class Operator:
    """A base operator: how policy values compile, and whether it is negated.

    :ivar kind: the family (``string``, ``numeric``, ``date``, ``ip``, ``arn``...).
    :ivar compare: for numeric and date operators, the comparison.
    """

    name: str
    kind: str
    negated: bool = False
    compare: str = "eq"


def _operators() -> dict[str, Operator]:
    table: list[Operator] = [
        Operator("StringEquals", "string"),
        Operator("StringNotEquals", "string", negated=True),
        Operator("StringEqualsIgnoreCase", "string_ignore_case"),
        Operator("StringNotEqualsIgnoreCase", "string_ignore_case", negated=True),
        Operator("StringLike", "string_like"),
        Operator("StringNotLike", "string_like", negated=True),
        Operator("NumericEquals", "numeric"),
        Operator("NumericNotEquals", "numeric", negated=True),
        Operator("NumericLessThan", "numeric", compare="lt"),
        Operator("NumericLessThanEquals", "numeric", compare="le"),
        Operator("NumericGreaterThan", "numeric", compare="gt"),
        Operator("NumericGreaterThanEquals", "numeric", compare="ge"),
        Operator("DateEquals", "date"),
        Operator("DateNotEquals", "date", negated=True),
        Operator("DateLessThan", "date", compare="lt"),
        Operator("DateLessThanEquals", "date", compare="le"),
        Operator("DateGreaterThan", "date", compare="gt"),
        Operator("DateGreaterThanEquals", "date", compare="ge"),
        Operator("Bool", "bool"),
        Operator("BinaryEquals", "string"),
        Operator("IpAddress", "ip"),
        Operator("NotIpAddress", "ip", negated=True),
        Operator("ArnEquals", "arn"),
        Operator("ArnLike", "arn"),
        Operator("ArnNotEquals", "arn", negated=True),
        Operator("ArnNotLike", "arn", negated=True),
        Operator("Null", "null"),
    ]
    return {op.name.lower(): op for op in table}


#: Base operator name in lower case -> operator (operator names are case-insensitive).
OPERATORS = _operators()

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` pair of a Condition block, compiled.

    :ivar operator: the base operator.
    :ivar qualifier: ``foranyvalue``, ``forallvalues`` or ``""``.
    :ivar if_exists: the ``…IfExists`` form.
    :ivar key: the condition key as written in the policy.
    :ivar values: the policy's values, as strings.
    :ivar value_test: the per-value test over the values without policy variables.
    :ivar templates: the values with policy variables, rendered per request.
    """

    operator: Operator
    qualifier: str
    if_exists: bool
    key: str
    values: tuple[str, ...]
    value_test: ValueTest
    templates: tuple[Template, ...] = ()

    def holds(self, context: ConditionContext) -> bool:
        """Whether the request's values satisfy this condition."""
        found = context.get(self.key)
        op = self.operator
        if op.kind == "null":
            absent = not found
            return any((value.lower() == "true") == absent for value in self.values)
        if not found:
            if self.qualifier == ALL_VALUES:
                return True
            if self.if_exists:
                return True
            if self.qualifier == ANY_VALUE:
                return False
            return op.negated
        test = self.value_test if not self.templates else self._request_test(context)
        if self.qualifier == ALL_VALUES:
            if op.negated:
                return all(not test(value) for value in found)
            return all(test(value) for value in found)
        if self.qualifier == ANY_VALUE and op.negated:
            return any(not test(value) for value in found)
        matched = any(test(value) for value in found)
        return not matched if op.negated else matched

    def _request_test(self, context: ConditionContext) -> ValueTest:
        """The per-value test with this request's values of the policy variables."""
        static = self.value_test
        if self.operator.kind in ("string", "string_ignore_case"):
            fold = self.operator.kind == "string_ignore_case"
            rendered = {text for t in self.templates if (text := t.render(context)) is not None}
            if fold:
                rendered = {text.casefold() for text in rendered}
                return lambda found: static(found) or found.casefold() in rendered
            return lambda found: static(found) or found in rendered
        patterns = [p for t in self.templates if (p := t.pattern(context)) is not None]
        return lambda found: static(found) or any(p.fullmatch(found) for p in patterns)


#: The operator families whose values may hold policy variables.
TEMPLATE_KINDS = frozenset({"string", "string_ignore_case", "string_like", "arn"})


def compile_conditions(raw: object, variables: bool = False) -> tuple[Condition, ...]:
    """Parse and compile a statement's ``Condition`` element.

    :param variables: values may hold policy variables (a ``2012-10-17`` policy).
    """
    if not isinstance(raw, dict):
        raise malformed(INVALID_SYNTAX)
    compiled: list[Condition] = []
    for operator_name, clauses in raw.items():
        qualifier, op, if_exists = _parse_operator(operator_name)
        if not isinstance(clauses, dict) or not clauses:
            raise malformed(INVALID_SYNTAX)
        for key, raw_values in clauses.items():
            if not is_known_key(key):
                raise malformed(INVALID_CONDITION_KEY)
            values = _values(raw_values)
            templates: list[Template] = []
            if variables and op.kind in TEMPLATE_KINDS:
                templates = [t for value in values if (t := parse_template(value)) is not None]
            static = tuple(value for value in values if value not in {t.text for t in templates})
            test = _value_test(op, static)
            compiled.append(
                Condition(op, qualifier, if_exists, key, values, test, tuple(templates))
            )
    return tuple(compiled)


def _parse_operator(name: str) -> tuple[str, Operator, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> (qualifier, base operator, if-exists)."""
    qualifier = ""
    base = name
    prefix, colon, rest = name.partition(":")
    if colon:
        if prefix.lower() not in (ANY_VALUE, ALL_VALUES):
            raise invalid_condition_type(name)
        qualifier, base = prefix.lower(), rest
    if_exists = False
    lower = base.lower()
    if lower.endswith("ifexists") and lower != "ifexists":
        if_exists, lower = True, lower[: -len("ifexists")]
    op = OPERATORS.get(lower)
    if op is None or (op.kind == "null" and (if_exists or qualifier)):
        raise invalid_condition_type(name)
    return qualifier, op, if_exists


def _values(raw: object) -> tuple[str, ...]:
    """A key's policy values as strings (JSON strings, numbers and booleans)."""
    items = raw if isinstance(raw, list) else [raw]
    values: list[str] = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, str):
            values.append(item)
        elif isinstance(item, int | float) and math.isfinite(item):
            values.append(str(item))
        else:
            raise malformed(INVALID_SYNTAX)
    if not values:
        raise malformed(INVALID_SYNTAX)
    return tuple(values)


def _value_test(op: Operator, values: tuple[str, ...]) -> ValueTest:
    """The per-value test of ``op`` against the policy's ``values``."""
    if op.kind == "string":
        exact = frozenset(values)
        return exact.__contains__
    if op.kind == "string_ignore_case":
        folded = frozenset(value.casefold() for value in values)
        return lambda found: found.casefold() in folded
    if op.kind in ("string_like", "arn"):
        return GlobSet.of(values).match
    if op.kind == "bool":
        return _bool_test(values)
    if op.kind == "null":
        _bool_test(values)
        return lambda found: False
    if op.kind == "ip":
        return _ip_test(values)
    if op.kind == "numeric":
        return _ordered_test(op, [_policy_number(value) for value in values], parse_number)
    return _ordered_test(op, [_policy_date(value) for value in values], parse_date)


def _bool_test(values: tuple[str, ...]) -> ValueTest:
    lowered = {value.lower() for value in values}
    if not lowered <= {"true", "false"}:
        raise malformed(INVALID_SYNTAX)
    return lambda found: found.lower() in lowered


def _ip_test(values: tuple[str, ...]) -> ValueTest:
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise malformed(INVALID_IP) from None

    def test(found: str) -> bool:
        try:
            address = ipaddress.ip_address(found.strip())
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            mapped = address.ipv4_mapped  # a dual-stack listener's view of an IPv4 caller
            return any(address in network or mapped in network for network in networks)
        return any(address in network for network in networks)

    return test


def _ordered_test(
    op: Operator, bounds: Sequence[float], parse: Callable[[str], float | None]
) -> ValueTest:
    compare = _COMPARE[op.compare]

    def test(found: str) -> bool:
        number = parse(found)
        return number is not None and any(compare(number, bound) for bound in bounds)

    return test


def parse_number(text: str) -> float | None:
    """A request's numeric value, or ``None``."""
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_date(text: str) -> float | None:
    """A request's date (ISO 8601, or seconds since the epoch) as epoch seconds, or ``None``."""
    text = text.strip()
    epoch = parse_number(text) if text[:1].isdigit() and text.isdigit() else None
    if epoch is not None:
        return epoch
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _policy_number(value: str) -> float:
    number = parse_number(value)
    if number is None:
        raise malformed(INVALID_SYNTAX)
    return number


def _policy_date(value: str) -> float:
    moment = parse_date(value)
    if moment is None:
        raise malformed(INVALID_SYNTAX)
    return moment
