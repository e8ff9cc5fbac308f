"""A bucket's access documents, as stored and as the decision uses them.

A bucket keeps four documents in its configuration (each changed in one
transaction that also raises the bucket generation, see
:class:`s4d.engine.Directory`):

============ ==========================================================
``policy``   the bucket policy, as the client sent it (JSON)
``acl``      the bucket ACL: JSON of :meth:`s4d.auth.acl.Acl.encode`
``pab``      the public-access block: JSON, the four flags by AWS name
``ownership`` the object ownership setting (``ObjectWriter``...), ASCII
============ ==========================================================

:func:`bucket_access` turns them (with the owner) into a
:class:`~s4d.auth.access.BucketAccess`, compiling the policy; callers cache
the result for as long as the documents stay the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from s4d.auth import acl as acls
from s4d.auth.access import (
    BUCKET_OWNER_ENFORCED,
    NO_BLOCK,
    OBJECT_WRITER,
    OWNERSHIP_SETTINGS,
    BucketAccess,
    EvaluablePolicy,
    PublicAccessBlock,
)
from s4d.auth.acl import Acl
from s4d.auth.policy import Effect, PolicyRequest
from s4d.auth.principal import Principal
from s4d.errors import S3Error

POLICY = b"policy"
ACL = b"acl"
PUBLIC_ACCESS_BLOCK = b"pab"
OWNERSHIP = b"ownership"

#: The public-access block's flags, by their AWS names, in document order.
BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

Compiler = Callable[[bytes, str], EvaluablePolicy]


class UnreadablePolicy:
    """A stored policy that does not compile any more: it denies all but the owner and
    SuperUsers."""

    is_public = False

    def __init__(self, document: bytes, owner: str) -> None:
        self.document = document
        self.owner = owner

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        """Deny, unless the owner or a SuperUser asks."""
        principal = request.principal
        if principal is not None and (principal.is_superuser or principal.user_id == self.owner):
            return None
        return Effect.DENY

    def may_allow(self, action: str, principal: Principal | None) -> bool:
        """Nobody but the owner and SuperUsers (decided before a policy is asked)."""
        return False


def encode_acl(acl: Acl) -> bytes:
    """The stored form of a bucket ACL."""
    return json.dumps(acl.encode(), separators=(",", ":")).encode()


def decode_acl(raw: bytes) -> Acl:
    """A stored bucket ACL."""
    return Acl.decode(json.loads(raw))


def encode_block(block: PublicAccessBlock) -> bytes:
    """The stored form of a public-access block."""
    flags = block_flags(block)
    return json.dumps(dict(zip(BLOCK_FLAGS, flags, strict=True))).encode()


def block_flags(block: PublicAccessBlock) -> tuple[bool, bool, bool, bool]:
    """The four flags, in :data:`BLOCK_FLAGS` order."""
    return (
        block.block_public_acls,
        block.ignore_public_acls,
        block.block_public_policy,
        block.restrict_public_buckets,
    )


def decode_block(raw: bytes) -> PublicAccessBlock:
    """A stored public-access block."""
    value = json.loads(raw)
    return PublicAccessBlock(*(bool(value.get(name, False)) for name in BLOCK_FLAGS))


def decode_ownership(raw: bytes | None) -> str:
    """A stored ownership setting (``ObjectWriter`` when none, or one not known)."""
    if raw is None:
        return OBJECT_WRITER
    setting = raw.decode("ascii", "replace")
    return setting if setting in OWNERSHIP_SETTINGS else OBJECT_WRITER


def bucket_access(
    bucket: str, owner: str, documents: Mapping[bytes, bytes], compile_policy: Compiler
) -> BucketAccess:
    """The :class:`BucketAccess` of a bucket from its stored documents.

    A stored policy that no longer compiles (a server that learnt stricter rules)
    fails closed: it denies everyone but the owner and SuperUsers
    (:class:`UnreadablePolicy`), who can see and replace it.
    """
    raw_policy = documents.get(POLICY)
    policy: EvaluablePolicy | None = None
    if raw_policy is not None:
        try:
            policy = compile_policy(raw_policy, bucket)
        except Exception:  # noqa: BLE001 - a stored policy must never break a request
            policy = UnreadablePolicy(raw_policy, owner)
    raw_acl = documents.get(ACL)
    raw_block = documents.get(PUBLIC_ACCESS_BLOCK)
    raw_ownership = documents.get(OWNERSHIP)
    return BucketAccess(
        owner=owner,
        acl=decode_acl(raw_acl) if raw_acl is not None else None,
        policy=policy,
        block=decode_block(raw_block) if raw_block is not None else NO_BLOCK,
        ownership=decode_ownership(raw_ownership),
        has_ownership=raw_ownership is not None,
    )


def refuse_public_policy(policy: EvaluablePolicy) -> Callable[[Mapping[bytes, bytes]], None]:
    """The in-transaction check of a new policy: ``AccessDenied`` for a public one on a
    bucket whose public-access block says ``BlockPublicPolicy``."""

    def check(documents: Mapping[bytes, bytes]) -> None:
        raw = documents.get(PUBLIC_ACCESS_BLOCK)
        if raw is not None and decode_block(raw).block_public_policy and policy.is_public:
            raise S3Error("AccessDenied")

    return check


def refuse_acl(acl: Acl) -> Callable[[Mapping[bytes, bytes]], None]:
    """The in-transaction check of a new bucket ACL: ``AccessControlListNotSupported``
    for one that grants more than the owner's full control under
    ``BucketOwnerEnforced``, ``AccessDenied`` for a public one under ``BlockPublicAcls``."""
    owners_only = acl == acls.private(acl.owner)

    def check(documents: Mapping[bytes, bytes]) -> None:
        ownership = decode_ownership(documents.get(OWNERSHIP))
        if ownership == BUCKET_OWNER_ENFORCED and not owners_only:
            raise S3Error("AccessControlListNotSupported")
        raw = documents.get(PUBLIC_ACCESS_BLOCK)
        if raw is not None and decode_block(raw).block_public_acls and acl.is_public:
            raise S3Error("AccessDenied")

    return check


def is_public(access: BucketAccess) -> bool:
    """The bucket is public: its policy is (AWS's definition), or its ACL grants to
    everybody or every signed-in user (while ACLs count: not ``BucketOwnerEnforced``)."""
    if access.policy is not None and access.policy.is_public:
        return True
    return access.acls_enabled and access.bucket_acl().is_public
