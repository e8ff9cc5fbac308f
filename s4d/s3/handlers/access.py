"""Who may do what, as S3 operations: ACLs, bucket policies, ownership, public access.

Bucket-level documents (policy, ACL, public-access block, ownership controls)
are stored through :meth:`s4d.engine.BucketsFacade.put_access`, which raises
the bucket generation in the same transaction (every process sees the change
on its next request) and re-checks, inside that transaction, what the other
documents forbid (a public policy under ``BlockPublicPolicy``, a public ACL
under ``BlockPublicAcls``, any ACL under ``BucketOwnerEnforced``). An object
version's ACL lives in its record (:meth:`s4d.engine.ObjectsFacade.set_acl`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from s4d.auth import acl as acls
from s4d.auth.access import (
    BUCKET_OWNER_ENFORCED,
    OWNERSHIP_SETTINGS,
    BucketAccess,
    PublicAccessBlock,
)
from s4d.auth.acl import Acl
from s4d.auth.bucket_access import (
    ACL,
    BLOCK_FLAGS,
    OWNERSHIP,
    POLICY,
    PUBLIC_ACCESS_BLOCK,
    block_flags,
    bucket_access,
    decode_acl,
    decode_block,
    decode_ownership,
    encode_acl,
    encode_block,
    is_public,
    refuse_acl,
    refuse_public_policy,
)
from s4d.auth.credentials import IdentitySource
from s4d.auth.policy import compile_policy
from s4d.auth.principal import Principal
from s4d.engine import BucketsFacade, ObjectsFacade
from s4d.errors import S3Error
from s4d.s3.acls import parse_acl_document, render_acl, requested_acl
from s4d.s3.call import Response, S3Call
from s4d.s3.dispatch import Route, RouteKey, route
from s4d.s3.handlers.common import requested_version, xml_response
from s4d.s3.xml import child_text, parse


def _identities(call: S3Call) -> IdentitySource:
    if call.identities is None:
        raise S3Error("InternalError", "no identity source")
    return call.identities


def _display(call: S3Call, user_id: str) -> Principal | None:
    return call.identities.principal_of(user_id) if call.identities is not None else None


def _acl_response(call: S3Call, acl: Acl, headers: Mapping[str, str] | None = None) -> Response:
    hdrs = {"Content-Type": "application/xml"}
    hdrs.update(headers or {})
    return Response(headers=hdrs, body=render_acl(acl, lambda u: _display(call, u)))


class AccessHandlers:
    """ACL, policy, ownership controls and public-access block operations."""

    def __init__(self, buckets: BucketsFacade, objects: ObjectsFacade) -> None:
        self.buckets = buckets
        self.objects = objects

    def routes(self) -> Iterator[tuple[RouteKey, Route]]:
        """This area's routes."""
        acl = frozenset({"acl"})
        policy = frozenset({"policy"})
        ownership = frozenset({"ownershipControls"})
        block = frozenset({"publicAccessBlock"})
        yield RouteKey("GET", "bucket", acl), route("GetBucketAcl", self.get_bucket_acl)
        yield RouteKey("PUT", "bucket", acl), route("PutBucketAcl", self.put_bucket_acl)
        yield RouteKey("GET", "object", acl), route("GetObjectAcl", self.get_object_acl)
        yield RouteKey("PUT", "object", acl), route("PutObjectAcl", self.put_object_acl)
        yield RouteKey("GET", "bucket", policy), route("GetBucketPolicy", self.get_policy)
        yield RouteKey("PUT", "bucket", policy), route("PutBucketPolicy", self.put_policy)
        yield RouteKey("DELETE", "bucket", policy), route("DeleteBucketPolicy", self.delete_policy)
        yield (
            RouteKey("GET", "bucket", frozenset({"policyStatus"})),
            route("GetBucketPolicyStatus", self.get_policy_status),
        )
        yield (
            RouteKey("GET", "bucket", ownership),
            route("GetBucketOwnershipControls", self.get_ownership),
        )
        yield (
            RouteKey("PUT", "bucket", ownership),
            route("PutBucketOwnershipControls", self.put_ownership),
        )
        yield (
            RouteKey("DELETE", "bucket", ownership),
            route(
                "DeleteBucketOwnershipControls",
                self.delete_ownership,
                action="s3:PutBucketOwnershipControls",
            ),
        )
        yield (
            RouteKey("GET", "bucket", block),
            route("GetPublicAccessBlock", self.get_block, action="s3:GetBucketPublicAccessBlock"),
        )
        yield (
            RouteKey("PUT", "bucket", block),
            route("PutPublicAccessBlock", self.put_block, action="s3:PutBucketPublicAccessBlock"),
        )
        yield (
            RouteKey("DELETE", "bucket", block),
            route(
                "DeletePublicAccessBlock", self.delete_block, action="s3:PutBucketPublicAccessBlock"
            ),
        )

    async def _access(self, call: S3Call) -> BucketAccess:
        """The bucket's access configuration (``NoSuchBucket`` if there is no bucket).

        Without a users store (fixed keys, every one a SuperUser) the front end knows
        no access configuration: it is read here, the caller standing in as owner.
        """
        if call.access is not None:
            return call.access
        await self.buckets.get(call.bucket)  # NoSuchBucket
        documents = {}
        for kind in (ACL, OWNERSHIP, PUBLIC_ACCESS_BLOCK):
            raw = await self.buckets.get_config(call.bucket, kind)
            if raw is not None:
                documents[kind] = bytes(raw)
        owner = call.principal.user_id if call.principal is not None else ""
        return bucket_access(call.bucket, owner, documents, compile_policy)

    # -- bucket ACL -------------------------------------------------------------------

    async def get_bucket_acl(self, call: S3Call) -> Response:
        """GetBucketAcl."""
        access = await self._access(call)
        return _acl_response(call, access.bucket_acl())

    async def put_bucket_acl(self, call: S3Call) -> Response:
        """PutBucketAcl: a canned ACL, grant headers, or an AccessControlPolicy document."""
        access = await self._access(call)
        acl = self._asked_acl(call, access.owner, None)
        await self.buckets.put_access(call.bucket, ACL, encode_acl(acl), refuse_acl(acl))
        return Response()

    def _asked_acl(self, call: S3Call, owner: str, bucket_owner: str | None) -> Acl:
        """The ACL a Put*Acl asks for: from its headers, or its body (not both)."""
        resolve = _identities(call).grantee
        body = call.document()
        from_headers = requested_acl(call.headers, owner, bucket_owner, resolve)
        if from_headers is not None:
            if body.strip():
                raise S3Error("UnexpectedContent")
            return from_headers
        if not body.strip():
            raise S3Error("MissingSecurityHeader", "Your request was missing a required header")
        return parse_acl_document(body, owner, resolve)

    # -- object ACL -------------------------------------------------------------------

    async def get_object_acl(self, call: S3Call) -> Response:
        """GetObjectAcl (of the version named by ``versionId``, else the current one)."""
        access = await self._access(call)
        version = await self.objects.head(call.bucket, call.key, requested_version(call))
        stored = version.extra.get("acl")
        call.check_object(stored)
        headers = {}
        if "versionId" in call.params:
            headers["x-amz-version-id"] = version.version_id
        return _acl_response(call, acls.stored_acl(stored, access.owner), headers)

    async def put_object_acl(self, call: S3Call) -> Response:
        """PutObjectAcl (of the version named by ``versionId``, else the current one)."""
        access = await self._access(call)
        version_id = requested_version(call)
        version = await self.objects.head(call.bucket, call.key, version_id)
        stored = version.extra.get("acl")
        call.check_object(stored)
        owner = acls.stored_acl(stored, access.owner).owner
        acl = self._asked_acl(call, owner, access.owner)
        if access.block.block_public_acls and acl.is_public:
            raise S3Error("AccessDenied")
        if not access.acls_enabled:
            raise S3Error("AccessControlListNotSupported")
        updated = await self.objects.set_acl(
            call.bucket, call.key, version.version_id, acl.encode()
        )
        headers = {}
        if version_id is not None:
            headers["x-amz-version-id"] = updated.version_id
        return Response(headers=headers)

    # -- policy -----------------------------------------------------------------------

    async def get_policy(self, call: S3Call) -> Response:
        """GetBucketPolicy: the document as it was put."""
        document = await self.buckets.get_config(call.bucket, POLICY)
        if document is None:
            raise S3Error("NoSuchBucketPolicy", BucketName=call.bucket)
        return Response(headers={"Content-Type": "application/json"}, body=bytes(document))

    async def put_policy(self, call: S3Call) -> Response:
        """PutBucketPolicy (at most 20 KB: ``PolicyTooLarge``; ``MalformedPolicy`` if it
        does not compile; ``AccessDenied`` for a public policy under ``BlockPublicPolicy``)."""
        document = call.document()
        await self.buckets.get(call.bucket)
        compiled = compile_policy(document, call.bucket)
        check = refuse_public_policy(compiled)
        await self.buckets.put_access(call.bucket, POLICY, document, check)
        return Response(status=204)

    async def delete_policy(self, call: S3Call) -> Response:
        """DeleteBucketPolicy (204 whether or not one was set)."""
        await self.buckets.put_access(call.bucket, POLICY, None)
        return Response(status=204)

    async def get_policy_status(self, call: S3Call) -> Response:
        """GetBucketPolicyStatus: whether the bucket is public, by its policy or its ACL
        (as ceph/s3-tests expects; false when it has neither)."""
        access = await self._access(call)
        public = is_public(access)
        return xml_response("PolicyStatus", [("IsPublic", "true" if public else "false")])

    # -- ownership controls ------------------------------------------------------------

    async def get_ownership(self, call: S3Call) -> Response:
        """GetBucketOwnershipControls."""
        raw = await self.buckets.get_config(call.bucket, OWNERSHIP)
        if raw is None:
            raise S3Error("OwnershipControlsNotFoundError", BucketName=call.bucket)
        return xml_response(
            "OwnershipControls", [("Rule", [("ObjectOwnership", decode_ownership(raw))])]
        )

    async def put_ownership(self, call: S3Call) -> Response:
        """PutBucketOwnershipControls: one rule naming the object ownership setting."""
        root = parse(call.document())
        rules = root.findall("Rule")
        setting = child_text(rules[0], "ObjectOwnership") if len(rules) == 1 else None
        if root.tag != "OwnershipControls" or setting not in OWNERSHIP_SETTINGS:
            raise S3Error("MalformedXML")
        assert setting is not None
        await self.buckets.get(call.bucket)

        def check(documents: Mapping[bytes, bytes]) -> None:
            raw = documents.get(ACL)
            if setting == BUCKET_OWNER_ENFORCED and raw is not None:
                acl = decode_acl(raw)
                if acl != acls.private(acl.owner):
                    raise S3Error("InvalidBucketAclWithObjectOwnership")

        await self.buckets.put_access(call.bucket, OWNERSHIP, setting.encode(), check)
        return Response()

    async def delete_ownership(self, call: S3Call) -> Response:
        """DeleteBucketOwnershipControls (back to ``ObjectWriter``)."""
        await self.buckets.put_access(call.bucket, OWNERSHIP, None)
        return Response(status=204)

    # -- public-access block ----------------------------------------------------------

    async def get_block(self, call: S3Call) -> Response:
        """GetPublicAccessBlock."""
        raw = await self.buckets.get_config(call.bucket, PUBLIC_ACCESS_BLOCK)
        if raw is None:
            raise S3Error("NoSuchPublicAccessBlockConfiguration", BucketName=call.bucket)
        flags = block_flags(decode_block(bytes(raw)))
        return xml_response(
            "PublicAccessBlockConfiguration",
            [
                (name, "true" if flag else "false")
                for name, flag in zip(BLOCK_FLAGS, flags, strict=True)
            ],
        )

    async def put_block(self, call: S3Call) -> Response:
        """PutPublicAccessBlock: the four flags (an absent one is false)."""
        root = parse(call.document())
        if root.tag != "PublicAccessBlockConfiguration":
            raise S3Error("MalformedXML")
        values = []
        for name in BLOCK_FLAGS:
            text = (child_text(root, name) or "false").strip().lower()
            if text not in ("true", "false"):
                raise S3Error("MalformedXML")
            values.append(text == "true")
        block = PublicAccessBlock(*values)
        await self.buckets.put_access(call.bucket, PUBLIC_ACCESS_BLOCK, encode_block(block))
        return Response()

    async def delete_block(self, call: S3Call) -> Response:
        """DeletePublicAccessBlock."""
        await self.buckets.put_access(call.bucket, PUBLIC_ACCESS_BLOCK, None)
        return Response(status=204)
