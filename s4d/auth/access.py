"""Who may do what: the one authorization decision, made before any body byte is read.

:func:`decide` is a pure function of an :class:`AccessRequest`: the caller (a
user with its role, or nobody), the S3 action its route declares
(``s3:GetObject``...), the bucket and key, the bucket's access configuration
(:class:`BucketAccess`: owner, ACL, policy, public-access block, object
ownership) and the request's condition context. It follows AWS's order:

1. an explicit ``Deny`` in the bucket policy wins
   (except the owner's own Get/Put/DeleteBucketPolicy: no policy locks a bucket
   away from its owner);
2. a role too small for the action denies (a Reader never writes, whatever
   grants it: the role is what the user may do at most);
3. an ``Allow`` comes from the role (a SuperUser on every bucket; a Reader or
   Writer on the buckets it owns), from the bucket policy (not to others than the
   owner when ``RestrictPublicBuckets`` and the policy is public), or from an
   ACL: the bucket's for bucket actions and object writes, the object's for
   object reads and ACL operations (unless ``BucketOwnerEnforced`` disabled
   ACLs; grants to public groups count for nothing under ``IgnorePublicAcls``);
4. otherwise ``AccessDenied``.

A DeleteObjects is decided key by key, as AWS does (:meth:`AccessGate.may_delete`,
each key with its object's resource ARN); at header time :func:`decide_some_key`
lets it through when some key could be allowed (an explicit Deny on a key refuses
that key only).

The object ACL is known only once the version record is read (in the handler,
before any body byte is sent): when nothing else allowed an object read, the
header-time decision answers :attr:`Verdict.OBJECT_ACL` and the handler asks
again with the version's ACL. Writes are always decided at header time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from s4d.auth import acl as acls
from s4d.auth.acl import Acl
from s4d.auth.policy import ConditionContext, Effect
from s4d.auth.policy import PolicyRequest as PolicyRequest
from s4d.auth.principal import READER, ROLE_RANK, SUPERUSER, WRITER, Principal
from s4d.errors import S3Error


class EvaluablePolicy(Protocol):
    """What the decision needs of a bucket policy: a compiled one
    (:class:`s4d.auth.policy.CompiledPolicy`), or a stored policy that no longer
    compiles standing in for one (:class:`s4d.auth.bucket_access.UnreadablePolicy`)."""

    document: bytes
    is_public: bool

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        """Deny, Allow, or None when no statement applies."""
        ...

    def may_allow(self, action: str, principal: Principal | None) -> bool:
        """Some Allow statement about ``action`` may concern ``principal`` (whatever its
        resource and conditions say): a request decided key by key may find one that
        applies."""
        ...


#: Actions that only read (a Reader may do them).
READ_ACTION_PREFIXES = ("s3:Get", "s3:List")
READ_ACTIONS = frozenset({"s3:SelectObjectContent", "s3:QueryObjects"})
#: Actions whose target bucket need not be the caller's (creating one asks for a new name).
OWNERLESS_ACTIONS = frozenset({"s3:CreateBucket", "s3:ListBuckets", "s3:ListAllMyBuckets"})

#: Object ownership settings (``OwnershipControls``).
OBJECT_WRITER = "ObjectWriter"
BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
OWNERSHIP_SETTINGS = frozenset({OBJECT_WRITER, BUCKET_OWNER_PREFERRED, BUCKET_OWNER_ENFORCED})

#: Actions on the bucket policy itself (an explicit Deny never keeps the owner from them).
POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})
#: What a bucket ACL permission lets its holder do.
BUCKET_ACL_PERMISSIONS = {
    "s3:ListBucket": acls.READ,
    "s3:ListBucketVersions": acls.READ,
    "s3:ListBucketMultipartUploads": acls.READ,
    "s3:PutObject": acls.WRITE,
    "s3:DeleteObject": acls.WRITE,
    "s3:DeleteObjectVersion": acls.WRITE,
    "s3:AbortMultipartUpload": acls.WRITE,
    "s3:ListMultipartUploadParts": acls.WRITE,
    "s3:GetBucketAcl": acls.READ_ACP,
    "s3:PutBucketAcl": acls.WRITE_ACP,
}
#: What an object ACL permission lets its holder do.
OBJECT_ACL_PERMISSIONS = {
    "s3:GetObject": acls.READ,
    "s3:GetObjectVersion": acls.READ,
    "s3:GetObjectAcl": acls.READ_ACP,
    "s3:GetObjectVersionAcl": acls.READ_ACP,
    "s3:PutObjectAcl": acls.WRITE_ACP,
    "s3:PutObjectVersionAcl": acls.WRITE_ACP,
}
#: The action a request naming ``versionId`` performs instead (what policies name).
VERSION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
}


@dataclass(frozen=True)
class PublicAccessBlock:
    """A bucket's public-access block (all four off when none is set)."""

    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False


NO_BLOCK = PublicAccessBlock()


@dataclass(frozen=True)
class BucketAccess:
    """Everything about a bucket that access depends on.

    :ivar owner: the owner's user id.
    :ivar acl: the bucket ACL (None: the default, the owner's full control).
    :ivar policy: the compiled bucket policy, if one is set.
    :ivar block: the public-access block.
    :ivar ownership: the object ownership setting (``ObjectWriter`` unless set).
    :ivar has_ownership: ownership controls were set (GetBucketOwnershipControls finds them).
    """

    owner: str
    acl: Acl | None = None
    policy: EvaluablePolicy | None = None
    block: PublicAccessBlock = NO_BLOCK
    ownership: str = OBJECT_WRITER
    has_ownership: bool = False

    @property
    def acls_enabled(self) -> bool:
        """ACLs take part in access (not ``BucketOwnerEnforced``)."""
        return self.ownership != BUCKET_OWNER_ENFORCED

    def bucket_acl(self) -> Acl:
        """The bucket ACL in force."""
        return self.acl if self.acl is not None else acls.private(self.owner)


class _EmptyContext:
    """No condition values at all."""

    def get(self, key: str) -> None:
        """Nothing, whatever the key."""
        return None


class _PrefixContext:
    """A request's context as a listing of the key it named sees it (``s3:prefix``)."""

    def __init__(self, context: ConditionContext, prefix: str) -> None:
        self.context = context
        self.prefix = prefix

    def get(self, key: str) -> Sequence[str] | None:
        """``s3:prefix`` is the key; every other key as the request has it."""
        if key.lower() == "s3:prefix":
            return [self.prefix]
        return self.context.get(key)


class Verdict(enum.Enum):
    """What :func:`decide` answers."""

    ALLOW = "allow"
    DENY = "deny"
    #: nothing allowed it yet; the object's ACL may (ask again with it)
    OBJECT_ACL = "object-acl"


#: A context with no condition values (tests, and decisions no policy sees).
EMPTY_CONTEXT = _EmptyContext()


@dataclass(frozen=True)
class AccessRequest:
    """The inputs of one decision.

    :ivar principal: the caller; None for an anonymous request.
    :ivar access: the bucket's access configuration; None when the request
        names no bucket or one that does not exist.
    :ivar object_acl: the ACL of the version the request reads (the second
        decision of an object read); None at header time.
    """

    principal: Principal | None
    action: str
    bucket: str = ""
    key: str | None = None
    access: BucketAccess | None = None
    context: ConditionContext = field(default_factory=lambda: EMPTY_CONTEXT)
    object_acl: Acl | None = field(default=None)

    def with_object_acl(self, object_acl: Acl) -> AccessRequest:
        """The same request, with the ACL of the version it reads."""
        return replace(self, object_acl=object_acl)


def required_role(action: str) -> str:
    """The least role that may perform ``action`` (unknown actions need a Writer)."""
    if action.startswith(READ_ACTION_PREFIXES) or action in READ_ACTIONS:
        return READER
    return WRITER


def decide(request: AccessRequest) -> Verdict:
    """The authorization decision (see the module's documentation for the order)."""
    principal, action, access = request.principal, request.action, request.access
    effect = _policy_effect(request)
    if effect is Effect.DENY and not _may_unlock(request):
        return Verdict.DENY
    if principal is not None:
        if ROLE_RANK.get(principal.role, 0) < ROLE_RANK[required_role(action)]:
            return Verdict.DENY
        if principal.role == SUPERUSER or action in OWNERLESS_ACTIONS:
            return Verdict.ALLOW
        if access is None:
            # no bucket (its operation answers NoSuchBucket), or no bucket named
            return Verdict.ALLOW if request.bucket else Verdict.DENY
        if access.owner == principal.user_id:
            return Verdict.ALLOW
    elif access is None:
        return Verdict.DENY
    assert access is not None
    if effect is Effect.ALLOW and _policy_counts(request, access):
        return Verdict.ALLOW
    if not access.acls_enabled:
        return Verdict.DENY
    user_id = principal.user_id if principal is not None else None
    ignore = access.block.ignore_public_acls
    bucket_permission = BUCKET_ACL_PERMISSIONS.get(action)
    if bucket_permission is not None and access.bucket_acl().permits(
        user_id, bucket_permission, ignore
    ):
        return Verdict.ALLOW
    object_permission = OBJECT_ACL_PERMISSIONS.get(action)
    if object_permission is not None and request.key:
        if request.object_acl is None:
            return Verdict.OBJECT_ACL
        if request.object_acl.permits(user_id, object_permission, ignore):
            return Verdict.ALLOW
    return Verdict.DENY


def decide_some_key(request: AccessRequest) -> Verdict:
    """The header-time decision of a request decided key by key (DeleteObjects).

    ALLOW when the caller could be allowed ``request.action`` (or its version
    action) on some key of the bucket: its role is big enough and it is a
    SuperUser or the owner, the bucket ACL grants it the permission, or an Allow
    statement of the policy may concern it (whatever resources and conditions it
    names). Each key is then decided with its own resource ARN; a Deny is never
    decided here, it refuses the keys it applies to.
    """
    principal, action, access = request.principal, request.action, request.access
    if principal is not None:
        if ROLE_RANK.get(principal.role, 0) < ROLE_RANK[required_role(action)]:
            return Verdict.DENY
        if principal.is_superuser or access is None:
            # no bucket (its operation answers NoSuchBucket), or no bucket named
            return Verdict.ALLOW if request.bucket or principal.is_superuser else Verdict.DENY
        if access.owner == principal.user_id:
            return Verdict.ALLOW
    elif access is None:
        return Verdict.DENY
    assert access is not None
    permission = BUCKET_ACL_PERMISSIONS.get(action)
    user_id = principal.user_id if principal is not None else None
    if access.acls_enabled and permission is not None:
        if access.bucket_acl().permits(user_id, permission, access.block.ignore_public_acls):
            return Verdict.ALLOW
    policy = access.policy
    if policy is not None and _policy_counts(request, access):
        for asked in (action, VERSION_ACTIONS.get(action, action)):
            if policy.may_allow(asked, principal):
                return Verdict.ALLOW
    return Verdict.DENY


def _may_unlock(request: AccessRequest) -> bool:
    """The owner (or a SuperUser) may always see, replace and delete a policy that denies
    it, as the owning account's root user may in AWS: no policy locks its bucket for good."""
    principal, access = request.principal, request.access
    if request.action not in POLICY_ACTIONS or principal is None or access is None:
        return False
    return principal.is_superuser or principal.user_id == access.owner


def _policy_effect(request: AccessRequest) -> Effect | None:
    access = request.access
    if access is None or access.policy is None:
        return None
    return access.policy.evaluate(
        PolicyRequest(
            request.action, request.bucket, request.key, request.principal, request.context
        )
    )


def _policy_counts(request: AccessRequest, access: BucketAccess) -> bool:
    """A policy's Allow counts (RestrictPublicBuckets keeps a public policy to the owner)."""
    policy = access.policy
    if policy is None or not (access.block.restrict_public_buckets and policy.is_public):
        return True
    principal = request.principal
    return principal is not None and principal.user_id == access.owner


def authorize(request: AccessRequest) -> Verdict:
    """:func:`decide`, raising ``AccessDenied`` when it denies."""
    verdict = decide(request)
    if verdict is Verdict.DENY:
        raise S3Error("AccessDenied")
    return verdict


class AccessGate:
    """A request's decision, carried to its handler for what only the handler learns.

    :meth:`check_object` completes an object read that waits for the version's
    ACL (:attr:`Verdict.OBJECT_ACL`); :meth:`may_list` says whether a missing key
    may be told as missing (``NoSuchKey``) or must be ``AccessDenied``, as AWS
    answers callers who may not list the bucket.
    """

    def __init__(self, request: AccessRequest, verdict: Verdict) -> None:
        self.request = request
        self.verdict = verdict
        #: a copy's read of its source, when that waits for the source version's ACL
        self.source: AccessRequest | None = None

    def check_source(self, stored: object) -> None:
        """Raise ``AccessDenied`` unless a copy may read a source version whose ``extra``
        ACL is ``stored`` (a no-op when the header-time decision allowed it)."""
        if self.source is not None:
            AccessGate(self.source, Verdict.OBJECT_ACL).check_object(stored)

    def check_object(self, stored: object) -> None:
        """Raise ``AccessDenied`` unless the caller may do this to a version whose
        ``extra`` ACL is ``stored`` (a no-op when the header-time decision allowed it)."""
        if self.verdict is not Verdict.OBJECT_ACL:
            return
        access = self.request.access
        owner = access.owner if access is not None else ""
        acl = acls.stored_acl(stored, owner)
        if decide(self.request.with_object_acl(acl)) is not Verdict.ALLOW:
            raise S3Error("AccessDenied")

    def may_delete(self, key: str, version_id: str | None) -> bool:
        """One key of a DeleteObjects: may the caller delete it (``s3:DeleteObject``, or
        ``s3:DeleteObjectVersion`` with a version id, decided for that key)?"""
        action = "s3:DeleteObjectVersion" if version_id else "s3:DeleteObject"
        one = replace(self.request, action=action, key=key, object_acl=None)
        return decide(one) is Verdict.ALLOW

    def may_list(self) -> bool:
        """The caller may list the bucket (so may learn that a key is missing)."""
        if self.verdict is Verdict.ALLOW and self.request.action in BUCKET_ACL_PERMISSIONS:
            if BUCKET_ACL_PERMISSIONS[self.request.action] == acls.READ:
                return True
        request = self.request
        context = _PrefixContext(request.context, request.key or "")
        listing = replace(request, action="s3:ListBucket", key=None, object_acl=None,
                          context=context)  # fmt: skip
        return decide(listing) is Verdict.ALLOW


def listed_owner(principal: Principal | None) -> str | None:
    """Whose buckets ListBuckets shows: the caller's own, or (None) every bucket to a
    SuperUser. An anonymous caller never gets this far."""
    if principal is None:
        return ""
    return None if principal.role == SUPERUSER else principal.user_id


def version_action(action: str, params: Mapping[str, str]) -> str:
    """The action a request performs: ``s3:GetObjectVersion`` for a GetObject naming
    ``versionId``, and so on."""
    if "versionId" in params:
        return VERSION_ACTIONS.get(action, action)
    return action


__all__ = [
    "READER",
    "WRITER",
    "SUPERUSER",
    "AccessGate",
    "AccessRequest",
    "BucketAccess",
    "EvaluablePolicy",
    "PublicAccessBlock",
    "Verdict",
    "authorize",
    "decide",
    "decide_some_key",
    "listed_owner",
    "required_role",
]
