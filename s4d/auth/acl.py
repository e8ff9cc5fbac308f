"""Access control lists: who holds which permission on a bucket or an object version.

An :class:`Acl` is its owner (a user id) and a list of :class:`Grant`\\ s, each a
grantee (a user id, or one of the groups :data:`ALL_USERS`,
:data:`AUTHENTICATED_USERS`, :data:`LOG_DELIVERY`) and a permission (``READ``,
``WRITE``, ``READ_ACP``, ``WRITE_ACP``, ``FULL_CONTROL``). :func:`canned` builds
the canned ACLs of ``x-amz-acl``. The stored form (:meth:`Acl.encode`) is a
small dict kept in the bucket's configuration or in a version record's ``extra``.

This module knows no XML (the S3 layer renders and parses
``AccessControlPolicy`` documents); it answers :meth:`Acl.permits`, which the
authorization decision (:mod:`s4d.auth.access`) asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

READ = "READ"
WRITE = "WRITE"
READ_ACP = "READ_ACP"
WRITE_ACP = "WRITE_ACP"
FULL_CONTROL = "FULL_CONTROL"
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)

#: The group URIs S3 documents name.
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
#: Groups whose grants make a bucket or object public (IgnorePublicAcls ignores them).
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})

#: ``x-amz-grant-*`` headers and the permission each grants.
GRANT_HEADERS = {
    "x-amz-grant-read": READ,
    "x-amz-grant-write": WRITE,
    "x-amz-grant-read-acp": READ_ACP,
    "x-amz-grant-write-acp": WRITE_ACP,
    "x-amz-grant-full-control": FULL_CONTROL,
}

CANNED_ACLS = frozenset(
    {"private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read",
     "bucket-owner-full-control", "log-delivery-write"}
)  # fmt: skip
#: Canned ACLs that grant to a public group.
PUBLIC_CANNED = frozenset({"public-read", "public-read-write", "authenticated-read"})


@dataclass(frozen=True)
class Grant:
    """One grant: ``grantee`` (a user id, or a group URI when ``group``) holds ``permission``."""

    grantee: str
    permission: str
    group: bool = False

    @property
    def is_public(self) -> bool:
        """The grant is to everybody (or every signed-in user)."""
        return self.group and self.grantee in PUBLIC_GROUPS


@dataclass(frozen=True)
class Acl:
    """An access control list: the owner's user id and its grants, in order."""

    owner: str
    grants: tuple[Grant, ...]

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "o": self.owner,
            "g": [[g.grantee, g.permission, 1 if g.group else 0] for g in self.grants],
        }

    @classmethod
    def decode(cls, value: Mapping[str, Any]) -> Acl:
        """Build from the stored form."""
        grants = tuple(Grant(str(g[0]), str(g[1]), bool(g[2])) for g in value.get("g", ()))
        return cls(str(value.get("o", "")), grants)

    @property
    def is_public(self) -> bool:
        """Some grant is to AllUsers or AuthenticatedUsers."""
        return any(g.is_public for g in self.grants)

    def permits(self, user_id: str | None, permission: str, ignore_public: bool = False) -> bool:
        """Does a caller (``user_id``; None: anonymous) hold ``permission`` (or FULL_CONTROL)?

        :param ignore_public: grants to the public groups count for nothing
            (a public-access block's ``IgnorePublicAcls``).
        """
        for grant in self.grants:
            if grant.permission != permission and grant.permission != FULL_CONTROL:
                continue
            if grant.group:
                if ignore_public and grant.grantee in PUBLIC_GROUPS:
                    continue
                if grant.grantee == ALL_USERS:
                    return True
                if grant.grantee == AUTHENTICATED_USERS and user_id is not None:
                    return True
            elif user_id is not None and grant.grantee == user_id:
                return True
        return False

    def without_public(self) -> Acl:
        """The same ACL less its grants to public groups."""
        return Acl(self.owner, tuple(g for g in self.grants if not g.is_public))


def private(owner: str) -> Acl:
    """The default ACL: the owner has full control."""
    return Acl(owner, (Grant(owner, FULL_CONTROL),))


def canned(name: str, owner: str, bucket_owner: str | None = None) -> Acl:
    """The canned ACL ``name`` for a resource owned by ``owner``.

    ``bucket_owner``: the owner of the bucket holding an object (the
    ``bucket-owner-*`` ACLs grant to it); None for a bucket's own ACL.
    Raises ValueError for a name that is not a canned ACL.
    """
    owner_grant = Grant(owner, FULL_CONTROL)
    # the order S3 servers list them in (s3-tests compares it): groups, the owner, others
    if name == "private":
        grants = [owner_grant]
    elif name == "public-read":
        grants = [Grant(ALL_USERS, READ, True), owner_grant]
    elif name == "public-read-write":
        grants = [Grant(ALL_USERS, READ, True), Grant(ALL_USERS, WRITE, True), owner_grant]
    elif name == "authenticated-read":
        grants = [Grant(AUTHENTICATED_USERS, READ, True), owner_grant]
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        grants = [owner_grant]
        if bucket_owner is not None and bucket_owner != owner:
            permission = READ if name == "bucket-owner-read" else FULL_CONTROL
            grants.append(Grant(bucket_owner, permission))
    elif name == "log-delivery-write":
        grants = [Grant(LOG_DELIVERY, WRITE, True), Grant(LOG_DELIVERY, READ_ACP, True)]
        grants.append(owner_grant)
    else:
        raise ValueError(name)
    return Acl(owner, tuple(grants))


def stored_acl(value: object, default_owner: str) -> Acl:
    """An ACL from a version record's ``extra`` (or a bucket's document), private when absent.

    Versions written before ACLs were kept may hold the name of a canned ACL that
    was never honoured; they stay private, as they always were.
    """
    if isinstance(value, Mapping):
        return Acl.decode(value)
    return private(default_owner)
