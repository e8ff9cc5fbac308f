"""A statement's Principal (or NotPrincipal): whom it speaks of, compiled into sets.

s4d's users are named as AWS names IAM users: by ARN
(``arn:aws:iam::<anything>:user/<path>/<username>``), by the account-root ARN
``arn:aws:iam::<user-id>:root``, or by a bare user id; ``{"CanonicalUser": "<id>"}``
names a user by its canonical id. ``"*"`` and ``{"AWS": "*"}`` are everyone,
anonymous callers included. ``{"Service": ...}`` names an AWS service, which
is never the caller here, so it matches nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from s4d.auth.policy.errors import INVALID_PRINCIPAL, malformed
from s4d.auth.principal import Principal

_IAM_ARN = "arn:aws:iam::"


@dataclass(frozen=True)
class PrincipalSet:
    """The callers a Principal element names.

    :ivar everyone: ``*``: every caller, anonymous or not.
    """

    everyone: bool
    user_ids: frozenset[str]
    usernames: frozenset[str]
    canonical_ids: frozenset[str]
    services: frozenset[str]

    def matches(self, principal: Principal | None) -> bool:
        """Whether ``principal`` (``None``: anonymous) is among these callers."""
        if self.everyone:
            return True
        if principal is None:
            return False
        return (
            principal.user_id in self.user_ids
            or principal.username in self.usernames
            or principal.canonical_id in self.canonical_ids
        )


def compile_principal(raw: object) -> PrincipalSet:
    """Parse a Principal or NotPrincipal element."""
    if raw == "*":
        return PrincipalSet(True, frozenset(), frozenset(), frozenset(), frozenset())
    if not isinstance(raw, dict) or not raw:
        raise malformed(INVALID_PRINCIPAL)
    everyone = False
    user_ids: set[str] = set()
    usernames: set[str] = set()
    canonical_ids: set[str] = set()
    services: set[str] = set()
    for kind, names in raw.items():
        for name in _names(names):
            if kind == "AWS":
                if name == "*":
                    everyone = True
                else:
                    _add_aws(name, user_ids, usernames)
            elif kind == "CanonicalUser":
                _no_wildcard(name)
                canonical_ids.add(name)
            elif kind == "Service":
                _no_wildcard(name)
                services.add(name)
            else:
                raise malformed(INVALID_PRINCIPAL)
    return PrincipalSet(
        everyone,
        frozenset(user_ids),
        frozenset(usernames),
        frozenset(canonical_ids),
        frozenset(services),
    )


def _names(raw: object) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(item, str) and item.strip() for item in items):
        raise malformed(INVALID_PRINCIPAL)
    return [item.strip() for item in items if isinstance(item, str)]


def _no_wildcard(name: str) -> None:
    if "*" in name or "?" in name or any(char.isspace() for char in name):
        raise malformed(INVALID_PRINCIPAL)


def _add_aws(name: str, user_ids: set[str], usernames: set[str]) -> None:
    """An ``AWS`` principal: a user ARN, an account-root ARN, or a bare id."""
    _no_wildcard(name)
    if not name.startswith(_IAM_ARN):
        if name.startswith("arn:"):
            raise malformed(INVALID_PRINCIPAL)
        user_ids.add(name)
        return
    account, colon, resource = name[len(_IAM_ARN) :].partition(":")
    if not colon or not account:
        raise malformed(INVALID_PRINCIPAL)
    if resource == "root":
        user_ids.add(account)
        return
    kind, slash, path = resource.partition("/")
    username = path.rpartition("/")[2]
    if kind != "user" or not slash or not username:
        raise malformed(INVALID_PRINCIPAL)
    usernames.add(username)
