"""Who may do what: the one authorization decision, made before any body byte is read.

:func:`decide` takes the caller, the S3 action its route declares
(``s3:GetObject``...) and the bucket's owner, and answers allow or deny.
Today two things decide: the caller's role (Reader: reading actions, GET,
HEAD, listings, SQL queries; Writer: everything else too; SuperUser: both, on
every bucket) and ownership (a Reader's or Writer's requests reach only the
buckets it owns). Access control lists, bucket policies and public-access
blocks (issue "Who may do what") are to plug in here, as further inputs to the
same function, so that no handler ever decides access on its own.
"""

from __future__ import annotations

from s4d.auth.principal import READER, ROLE_RANK, SUPERUSER, WRITER, Principal
from s4d.errors import S3Error

#: Actions that only read (a Reader may do them).
READ_ACTION_PREFIXES = ("s3:Get", "s3:List")
READ_ACTIONS = frozenset({"s3:SelectObjectContent", "s3:QueryObjects"})
#: Actions whose target bucket need not be the caller's (creating one asks for a new name).
OWNERLESS_ACTIONS = frozenset({"s3:CreateBucket", "s3:ListBuckets", "s3:ListAllMyBuckets"})


def required_role(action: str) -> str:
    """The least role that may perform ``action`` (unknown actions need a Writer)."""
    if action.startswith(READ_ACTION_PREFIXES) or action in READ_ACTIONS:
        return READER
    return WRITER


def decide(principal: Principal, action: str, owner: str | None) -> bool:
    """May ``principal`` perform ``action`` on a bucket owned by ``owner``?

    :param owner: the bucket owner's user id; None when the request names no
        bucket or a bucket that does not exist (its operation then answers
        ``NoSuchBucket`` itself).
    """
    rank = ROLE_RANK.get(principal.role, 0)
    if rank < ROLE_RANK[required_role(action)]:
        return False
    if principal.role == SUPERUSER or owner is None or action in OWNERLESS_ACTIONS:
        return True
    return owner == principal.user_id


def authorize(principal: Principal | None, action: str, owner: str | None) -> None:
    """:func:`decide`, raising ``AccessDenied`` when it denies (or nobody is named)."""
    if principal is None or not decide(principal, action, owner):
        raise S3Error("AccessDenied")


def listed_owner(principal: Principal | None) -> str | None:
    """Whose buckets ListBuckets shows: the caller's own, or (None) every bucket to a
    SuperUser. An anonymous caller never gets this far."""
    if principal is None:
        return ""
    return None if principal.role == SUPERUSER else principal.user_id


__all__ = ["READER", "WRITER", "SUPERUSER", "authorize", "decide", "listed_owner", "required_role"]
