"""A compiled bucket policy and its evaluation: explicit Deny wins, then Allow, else nothing.

Statements are indexed by action when the policy is compiled: for every action
in AWS's list, the Deny statements and the Allow statements that cover it, in
document order. Evaluating a request asks only those, so a 100-statement
policy costs what its few statements about the request's action cost. An
action outside AWS's list is resolved against the patterns once and cached.
"""

from __future__ import annotations

from s4d.auth.policy.actions import ACTIONS_BY_LOWER
from s4d.auth.policy.document import parse_policy
from s4d.auth.policy.publicity import is_public
from s4d.auth.policy.request import Effect, PolicyRequest
from s4d.auth.policy.statements import Statement

#: (Deny statements, Allow statements) that cover one action.
Candidates = tuple[tuple[Statement, ...], tuple[Statement, ...]]

_UNKNOWN_ACTIONS_KEPT = 256


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
        self._by_action: dict[str, Candidates] = {
            action: self._candidates(action) for action in ACTIONS_BY_LOWER
        }
        self._unknown: dict[str, Candidates] = {}

    def _candidates(self, action: str) -> Candidates:
        covering = [st for st in self.statements if st.covers_action(action)]
        return (
            tuple(st for st in covering if st.effect is Effect.DENY),
            tuple(st for st in covering if st.effect is Effect.ALLOW),
        )

    def candidates(self, action: str) -> Candidates:
        """The Deny and Allow statements covering ``action`` (any case)."""
        lower = action.lower()
        found = self._by_action.get(lower) or self._unknown.get(lower)
        if found is None:
            found = self._candidates(lower)
            if len(self._unknown) < _UNKNOWN_ACTIONS_KEPT:
                self._unknown[lower] = found
        return found

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        """What the policy says about ``request``: DENY, ALLOW, or ``None`` (nothing applies)."""
        denies, allows = self.candidates(request.action)
        if not denies and not allows:
            return None
        resource = request.bucket if request.key is None else f"{request.bucket}/{request.key}"
        principal, context = request.principal, request.context
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
