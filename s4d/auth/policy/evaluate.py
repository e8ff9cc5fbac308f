"""A compiled bucket policy and its evaluation: explicit Deny wins, then Allow, else nothing.

Statements are indexed when the policy is compiled, by action and by caller:
for every action in AWS's list, the Deny and the Allow statements that cover
it, split into those about any caller (``*``, ``NotPrincipal``) and those that
name callers, keyed by user id, username and canonical id. Evaluating a
request asks only the statements about its action that could concern its
caller, so a 100-statement policy with a statement per user costs what the
two or three statements about this user and this action cost. The answer does
not depend on statement order (any applicable Deny wins, else any applicable
Allow), so the index may regroup them. An action outside AWS's list is
resolved against the statements' patterns once and kept. The statements
selected for one (action, caller) pair are kept too, so a caller's next
request for the same action starts with one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from s4d.auth.policy.actions import ACTIONS_BY_LOWER
from s4d.auth.policy.document import parse_policy
from s4d.auth.policy.publicity import is_public
from s4d.auth.policy.request import Effect, PolicyRequest
from s4d.auth.policy.statements import Statement
from s4d.auth.principal import Principal

_UNKNOWN_ACTIONS_KEPT = 256
_CANDIDATES_KEPT = 4096

#: (Deny statements, Allow statements) that may concern one caller doing one action.
Candidates = tuple[tuple[Statement, ...], tuple[Statement, ...]]


def caller_keys(principal: Principal) -> tuple[str, str, str]:
    """The index keys of a caller: by user id, by username, by canonical id."""
    return ("u:" + principal.user_id, "n:" + principal.username, "c:" + principal.canonical_id)


def statement_keys(statement: Statement) -> list[str] | None:
    """The index keys of the callers a statement names; ``None``: it may concern anyone."""
    principals = statement.principals
    if statement.not_principal or principals.everyone:
        return None
    return (
        ["u:" + user_id for user_id in principals.user_ids]
        + ["n:" + username for username in principals.usernames]
        + ["c:" + canonical for canonical in principals.canonical_ids]
    )


@dataclass
class ActionIndex:
    """The statements that cover one action.

    :ivar denies: the Deny statements that may concern any caller.
    :ivar allows: the Allow statements that may concern any caller.
    :ivar named: caller key -> (Deny statements, Allow statements) naming that caller.
    """

    denies: tuple[Statement, ...] = ()
    allows: tuple[Statement, ...] = ()
    named: dict[str, tuple[tuple[Statement, ...], tuple[Statement, ...]]] = field(
        default_factory=dict
    )

    @classmethod
    def of(
        cls, statements: Iterable[Statement], keys_of: dict[int, list[str] | None] | None = None
    ) -> ActionIndex:
        """Index ``statements`` (all of them covering the same action).

        :param keys_of: each statement's :func:`statement_keys`, by ``id``, if known.
        """
        general: dict[Effect, list[Statement]] = {Effect.DENY: [], Effect.ALLOW: []}
        named: dict[str, dict[Effect, list[Statement]]] = {}
        for statement in statements:
            keys = keys_of[id(statement)] if keys_of else statement_keys(statement)
            if keys is None:
                general[statement.effect].append(statement)
                continue
            for key in keys:
                by_effect = named.setdefault(key, {Effect.DENY: [], Effect.ALLOW: []})
                by_effect[statement.effect].append(statement)
        return cls(
            tuple(general[Effect.DENY]),
            tuple(general[Effect.ALLOW]),
            {
                key: (tuple(found[Effect.DENY]), tuple(found[Effect.ALLOW]))
                for key, found in named.items()
            },
        )

    @property
    def empty(self) -> bool:
        """No statement covers the action."""
        return not (self.denies or self.allows or self.named)


class CompiledPolicy:
    """A bucket policy, validated and compiled for one bucket.

    :ivar document: the policy text as given (GetBucketPolicy returns it verbatim).
    :ivar version: the policy language version.
    :ivar statements: the compiled statements, in document order.
    :ivar is_public: whether the policy is public by AWS's definition.
    """

    def __init__(self, document: bytes, version: str, statements: tuple[Statement, ...]) -> None:
        self.document = document
        self.version = version
        self.statements = statements
        self.is_public = is_public(statements)
        covering: dict[str, list[int]] = {action: [] for action in ACTIONS_BY_LOWER}
        for number, statement in enumerate(statements):
            for action in statement.actions:
                covering[action].append(number)
        # actions covered by the same statements share one index (with ``s3:*`` most do)
        keys_of = {id(statement): statement_keys(statement) for statement in statements}
        shared: dict[tuple[int, ...], ActionIndex] = {}
        self._by_action: dict[str, ActionIndex] = {}
        for action, numbers in covering.items():
            found = tuple(numbers)
            if found not in shared:
                shared[found] = ActionIndex.of((statements[n] for n in found), keys_of)
            self._by_action[action] = shared[found]
        self._unknown: dict[str, ActionIndex] = {}
        self._candidates: dict[tuple[str, Principal | None], Candidates] = {}

    def index(self, action: str) -> ActionIndex:
        """The statements covering ``action`` (any case)."""
        lower = action.lower()
        found = self._by_action.get(lower) or self._unknown.get(lower)
        if found is None:
            found = ActionIndex.of(st for st in self.statements if st.covers_action(lower))
            if len(self._unknown) < _UNKNOWN_ACTIONS_KEPT:
                self._unknown[lower] = found
        return found

    def candidates(self, action: str, principal: Principal | None) -> Candidates:
        """The Deny and the Allow statements that may concern ``principal`` doing ``action``.

        Kept per (action, caller), up to :data:`_CANDIDATES_KEPT` pairs (then forgotten
        all at once): the next request of the same caller and action is one lookup.
        """
        key = (action, principal)
        found = self._candidates.get(key)
        if found is None:
            found = self._select(action, principal)
            if len(self._candidates) >= _CANDIDATES_KEPT:
                self._candidates.clear()
            self._candidates[key] = found
        return found

    def _select(self, action: str, principal: Principal | None) -> Candidates:
        index = self.index(action)
        denies, allows = list(index.denies), list(index.allows)
        if principal is not None and index.named:
            for key in caller_keys(principal):
                named = index.named.get(key)
                if named is not None:
                    denies += (st for st in named[0] if all(st is not d for d in denies))
                    allows += (st for st in named[1] if all(st is not a for a in allows))
        return tuple(denies), tuple(allows)

    def may_allow(self, action: str, principal: Principal | None) -> bool:
        """Some Allow statement about ``action`` may concern ``principal``, whatever its
        resources and conditions say (a request decided key by key may find one)."""
        return bool(self.candidates(action, principal)[1])

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        """What the policy says about ``request``: DENY, ALLOW, or ``None`` (nothing applies)."""
        denies, allows = self.candidates(request.action, request.principal)
        if not denies and not allows:
            return None
        principal, context = request.principal, request.context
        resource = request.bucket if request.key is None else f"{request.bucket}/{request.key}"
        for statement in denies:
            if statement.applies(principal, resource, context):
                return Effect.DENY
        for statement in allows:
            if statement.applies(principal, resource, context):
                return Effect.ALLOW
        return None


def compile_policy(document: bytes, bucket: str) -> CompiledPolicy:
    """Parse, validate and compile a bucket policy for ``bucket``.

    :raises S3Error: ``MalformedPolicy`` with AWS's message, or ``PolicyTooLarge``.
    """
    parsed = parse_policy(document, bucket)
    return CompiledPolicy(bytes(document), parsed.version, parsed.statements)
