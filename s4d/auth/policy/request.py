"""What a policy is asked about: the request (action, resource, caller, condition values).

:class:`PolicyRequest` is built by the authorization decision for each S3
request; :class:`ConditionContext` is where a condition finds the request's
values for a key (``aws:SourceIp``, ``s3:prefix``, ``s3:ExistingObjectTag/color``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from s4d.auth.principal import Principal


class Effect(enum.Enum):
    """What a statement, or a whole policy, says about a request."""

    ALLOW = "Allow"
    DENY = "Deny"


class ConditionContext(Protocol):
    """The request's values for condition keys."""

    def get(self, key: str) -> Sequence[str] | None:
        """The request's values for a condition key, or ``None`` when it has none.

        ``key`` is passed as written in the policy; key names are
        case-insensitive (see :func:`normalize_key`).
        """


def normalize_key(key: str) -> str:
    """A condition key in the form lookups compare: its name in lower case.

    The part after the first ``/`` (the tag key of ``s3:ExistingObjectTag/<key>``,
    ``s3:RequestObjectTag/<key>``, ``aws:ResourceTag/<key>``) keeps its case: tag
    keys are case-sensitive.
    """
    name, slash, rest = key.partition("/")
    return name.lower() + slash + rest


class MappingContext(dict[str, Sequence[str]]):
    """A :class:`ConditionContext` over a dict, with case-insensitive key names.

    ``MappingContext({"aws:SourceIp": ["10.0.0.1"], "s3:prefix": ["photos/"]})``
    """

    def __init__(self, values: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        for key, found in (values or {}).items():
            self[key] = found

    def __setitem__(self, key: str, value: Sequence[str]) -> None:
        super().__setitem__(normalize_key(key), value)

    def __getitem__(self, key: str) -> Sequence[str]:
        return super().__getitem__(normalize_key(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(normalize_key(key))

    def get(self, key: str, default: Sequence[str] | None = None) -> Sequence[str] | None:  # type: ignore[override]
        """The values for ``key`` (any case of its name), or ``default``."""
        return super().get(normalize_key(key), default)


#: A context with no values at all.
EMPTY_CONTEXT = MappingContext()


@dataclass(frozen=True)
class PolicyRequest:
    """One request, as a bucket policy sees it.

    :ivar action: the S3 action, ``s3:GetObject`` (any case).
    :ivar bucket: the bucket's name.
    :ivar key: the object's key, ``None`` for a bucket-level action.
    :ivar principal: the caller, ``None`` when anonymous.
    :ivar context: the request's condition values.
    """

    action: str
    bucket: str
    key: str | None
    principal: Principal | None
    context: ConditionContext
