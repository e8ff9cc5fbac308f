"""Whether a policy is public, by AWS's definition (GetBucketPolicyStatus, public access blocks).

A policy is public when an Allow statement grants to everyone (``*``) without
restricting the grant to fixed values of one of the keys AWS lists: the
caller's or source's account, ARN, organisation, VPC or user id, or a source IP
range no broader than /8 (IPv4) or /32 (IPv6). A restriction must be a positive
operator without wildcards in its values, and not ``…IfExists`` (which a
request without the key passes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from s4d.auth.policy.conditions import ALL_VALUES, Condition
from s4d.auth.policy.patterns import has_wildcard
from s4d.auth.policy.request import Effect
from s4d.auth.policy.statements import Statement

#: The keys whose fixed values make a grant to ``*`` non-public (lower case).
RESTRICTING_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalOrgID",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:userid",
        "s3:DataAccessPointAccount",
        "s3:DataAccessPointArn",
    )
)
_RESTRICTING_KINDS = frozenset({"string", "string_ignore_case", "string_like", "arn", "ip"})
_MIN_PREFIX = {4: 8, 6: 32}


def is_public(statements: Iterable[Statement]) -> bool:
    """Whether any statement makes the policy public."""
    return any(_is_public(statement) for statement in statements)


def _is_public(statement: Statement) -> bool:
    if statement.effect is not Effect.ALLOW or statement.not_principal:
        return False
    if not statement.principals.everyone:
        return False
    return not any(_restricts(condition) for condition in statement.conditions)


def _restricts(condition: Condition) -> bool:
    op = condition.operator
    if op.negated or condition.if_exists or condition.qualifier == ALL_VALUES:
        return False
    if op.kind not in _RESTRICTING_KINDS or condition.key.lower() not in RESTRICTING_KEYS:
        return False
    if op.kind == "ip":
        return all(_narrow(value) for value in condition.values)
    return not any(has_wildcard(value) for value in condition.values)


def _narrow(cidr: str) -> bool:
    network = ipaddress.ip_network(cidr.strip(), strict=False)
    return network.prefixlen >= _MIN_PREFIX[network.version]
