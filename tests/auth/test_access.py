"""The authorization decision: roles against actions, and ownership of buckets.

Strategy: :func:`decide` is a pure function; it is checked against the role
table of the issue (Reader: GET, HEAD, listings, SQL; Writer: also PUT, POST,
DELETE; SuperUser: also every bucket), for every action the S3 dispatch table
declares (with queries enabled), so a route added later is classified too.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import acl as acls
from s4d.auth.access import (
    BUCKET_OWNER_ENFORCED,
    AccessGate,
    AccessRequest,
    BucketAccess,
    PublicAccessBlock,
    Verdict,
    authorize,
    decide,
    decide_some_key,
    listed_owner,
    required_role,
)
from s4d.auth.policy import Effect, MappingContext, PolicyRequest
from s4d.auth.principal import Principal, canonical_id
from s4d.errors import S3Error
from s4d.s3.handlers.select import SelectHandlers
from tests.s3.memory import MemoryS3

READER = Principal.of("u-r", "reader", "Reader")
WRITER = Principal.of("u-w", "writer", "Writer")
SUPER = Principal.of("u-s", "super", "SuperUser")


class DecisionTests(SynchronousTestCase):
    def test_every_declared_action_is_classified(self) -> None:
        """Reads are GET, HEAD and SQL queries (POST ?select, ?sql); the rest writes.

        A CORS preflight (OPTIONS) is public: it is answered without an identity.
        """
        server = MemoryS3()
        self.addCleanup(server.close)
        routes = list(server.site.front.table.routes().items())
        # the query routes as a server with queries enabled declares them
        routes += list(SelectHandlers(cast(Any, object())).routes())
        self.assertGreater(len(routes), 40)
        for key, found in routes:
            if found.public or not found.action:
                continue  # a preflight, or a refusal
            role = required_role(found.action)
            reads = key.method in ("GET", "HEAD") or key.subresources & {"select", "sql"}
            expected = "Reader" if reads else "Writer"
            self.assertEqual(role, expected, (key, found.operation, found.action))

    def test_roles(self) -> None:
        for action, allowed in [
            (GET, {READER, WRITER, SUPER}),
            ("s3:ListBucket", {READER, WRITER, SUPER}),
            ("s3:SelectObjectContent", {READER, WRITER, SUPER}),
            (PUT, {WRITER, SUPER}),
            ("s3:DeleteObject", {WRITER, SUPER}),
            ("s3:CreateBucket", {WRITER, SUPER}),
            ("s3:SomethingNew", {WRITER, SUPER}),
        ]:
            for who in (READER, WRITER, SUPER):
                request = AccessRequest(who, action, "b", "k", BucketAccess(who.user_id))
                self.assertEqual(decide(request) is Verdict.ALLOW, who in allowed, (who, action))

    def test_ownership(self) -> None:
        def allowed(who: Principal, action: str, owner: str | None) -> bool:
            access = BucketAccess(owner) if owner is not None else None
            return decide(AccessRequest(who, action, "b", None, access)) is Verdict.ALLOW

        self.assertTrue(allowed(WRITER, PUT, "u-w"))
        self.assertFalse(allowed(WRITER, PUT, "u-other"))
        self.assertFalse(allowed(READER, GET, "u-other"))
        self.assertTrue(allowed(SUPER, "s3:DeleteObject", "u-other"))
        # no such bucket: the operation answers NoSuchBucket itself
        self.assertTrue(allowed(WRITER, PUT, None))
        # creating a bucket never needs the name's owner (BucketAlreadyExists comes later)
        self.assertTrue(allowed(WRITER, "s3:CreateBucket", "u-other"))

    def test_authorize_raises_access_denied(self) -> None:
        denied = AccessRequest(READER, PUT, "b", "k", BucketAccess("u-r"))
        error = self.assertRaises(S3Error, authorize, denied)
        self.assertEqual((error.code, error.status), ("AccessDenied", 403))
        anonymous = AccessRequest(None, GET, "b", "k", None)
        self.assertRaises(S3Error, authorize, anonymous)
        allowed = AccessRequest(WRITER, PUT, "b", "k", BucketAccess("u-w"))
        self.assertIs(authorize(allowed), Verdict.ALLOW)

    def test_listed_owner(self) -> None:
        self.assertEqual(listed_owner(WRITER), "u-w")
        self.assertEqual(listed_owner(READER), "u-r")
        self.assertIsNone(listed_owner(SUPER))
        self.assertEqual(listed_owner(None), "")

    def test_canonical_id(self) -> None:
        self.assertEqual(len(canonical_id("u")), 64)
        self.assertEqual(READER.canonical_id, canonical_id("u-r"))
        self.assertNotEqual(READER.canonical_id, WRITER.canonical_id)


GET, PUT = "s3:GetObject", "s3:PutObject"

OWNER = Principal.of("u-owner", "owner", "Writer")
OTHER = Principal.of("u-other", "other", "Writer")
ALLOWED = Principal.of("u-allowed", "allowed", "Writer")
DENIED = Principal.of("u-denied", "denied", "Writer")
READER_OTHER = Principal.of("u-reader", "reader2", "Reader")


class TablePolicy:
    """A stand-in compiled policy: its effect by (user id or "*", action)."""

    document = b"{}"

    def __init__(self, effects: dict[tuple[str, str], Effect], is_public: bool = False) -> None:
        self.effects = effects
        self.is_public = is_public

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        who = request.principal.user_id if request.principal is not None else "*"
        found = self.effects.get((who, request.action))
        if found is None:
            found = self.effects.get(("*", request.action))
        return found

    def may_allow(self, action: str, principal: Principal | None) -> bool:
        who = principal.user_id if principal is not None else "*"
        return any(
            effect is Effect.ALLOW and name in (who, "*") and asked == action
            for (name, asked), effect in self.effects.items()
        )


POLICY = TablePolicy(
    {
        ("u-allowed", PUT): Effect.ALLOW,
        ("u-allowed", GET): Effect.ALLOW,
        ("u-denied", GET): Effect.DENY,
        ("u-owner", "s3:DeleteObject"): Effect.DENY,
        ("u-owner", "s3:PutBucketPolicy"): Effect.DENY,
        ("u-reader", PUT): Effect.ALLOW,
    }
)
PUBLIC_POLICY = TablePolicy({("*", GET): Effect.ALLOW}, is_public=True)
PRIVATE = acls.private("u-owner")
PUBLIC_READ = acls.canned("public-read", "u-owner")
PUBLIC_RW = acls.canned("public-read-write", "u-owner")
AUTH_READ = acls.canned("authenticated-read", "u-owner")
GRANT_OTHER = acls.Acl(
    "u-owner", (acls.Grant("u-owner", "FULL_CONTROL"), acls.Grant("u-other", "READ"))
)

PLAIN = BucketAccess("u-owner")
WITH_POLICY = BucketAccess("u-owner", policy=POLICY)
PUBLIC_BUCKET = BucketAccess("u-owner", acl=PUBLIC_READ)
PUBLIC_RW_BUCKET = BucketAccess("u-owner", acl=PUBLIC_RW)
IGNORED_PUBLIC = BucketAccess(
    "u-owner", acl=PUBLIC_READ, block=PublicAccessBlock(ignore_public_acls=True)
)
ENFORCED_PUBLIC = BucketAccess("u-owner", acl=PUBLIC_READ, ownership=BUCKET_OWNER_ENFORCED)
PUBLIC_POLICY_BUCKET = BucketAccess("u-owner", policy=PUBLIC_POLICY)
RESTRICTED = BucketAccess(
    "u-owner", policy=PUBLIC_POLICY, block=PublicAccessBlock(restrict_public_buckets=True)
)

A, D, W = Verdict.ALLOW, Verdict.DENY, Verdict.OBJECT_ACL  # W: wait for the object ACL

#: (case, caller, action, key, bucket access, object ACL, expected verdict)
Row = tuple[str, Principal | None, str, str | None, BucketAccess | None, acls.Acl | None, Verdict]
DECISIONS: list[Row] = [
    ("owner reads its bucket", OWNER, GET, "k", PLAIN, None, A),
    ("owner writes its bucket", OWNER, PUT, "k", PLAIN, None, A),
    ("another writer is refused", OTHER, PUT, "k", PLAIN, None, D),
    ("another writer's object read waits for the object ACL", OTHER, GET, "k", PLAIN, None, W),
    ("a private object ACL refuses it", OTHER, GET, "k", PLAIN, PRIVATE, D),
    ("an object ACL grant allows it", OTHER, GET, "k", PLAIN, GRANT_OTHER, A),
    ("a READ grant is no READ_ACP", OTHER, "s3:GetObjectAcl", "k", PLAIN, GRANT_OTHER, D),
    ("a SuperUser does anything", SUPER, "s3:DeleteBucket", None, PLAIN, None, A),
    ("a Reader never writes, even allowed by policy", READER_OTHER, PUT, "k", WITH_POLICY, None, D),
    ("a policy Allow lets another user write", ALLOWED, PUT, "k", WITH_POLICY, None, A),
    ("a policy Deny refuses a read", DENIED, GET, "k", WITH_POLICY, None, D),
    ("a policy Deny wins over ownership", OWNER, "s3:DeleteObject", "k", WITH_POLICY, None, D),
    ("no Deny locks the owner out", OWNER, "s3:PutBucketPolicy", None, WITH_POLICY, None, A),
    ("anonymous: nothing granted", None, GET, "k", PLAIN, PRIVATE, D),
    ("anonymous: no bucket", None, "s3:ListBucket", None, None, None, D),
    ("anonymous lists a public-read bucket", None, "s3:ListBucket", None, PUBLIC_BUCKET, None, A),
    ("anonymous cannot write a public-read bucket", None, PUT, "k", PUBLIC_BUCKET, None, D),
    ("anonymous writes a public-read-write bucket", None, PUT, "k", PUBLIC_RW_BUCKET, None, A),
    ("anonymous reads a public-read object", None, GET, "k", PLAIN, PUBLIC_READ, A),
    ("anonymous is not authenticated-read", None, GET, "k", PLAIN, AUTH_READ, D),
    ("any user is authenticated-read", OTHER, GET, "k", PLAIN, AUTH_READ, A),
    ("IgnorePublicAcls", None, "s3:ListBucket", None, IGNORED_PUBLIC, None, D),
    ("BucketOwnerEnforced: no ACL counts", None, "s3:ListBucket", None, ENFORCED_PUBLIC, None, D),
    ("BucketOwnerEnforced: no object ACL to wait for", OTHER, GET, "k", ENFORCED_PUBLIC, None, D),
    ("a public policy serves anonymous reads", None, GET, "k", PUBLIC_POLICY_BUCKET, None, A),
    ("RestrictPublicBuckets: not to anonymous", None, GET, "k", RESTRICTED, PRIVATE, D),
    ("RestrictPublicBuckets: not to other users", OTHER, GET, "k", RESTRICTED, PRIVATE, D),
    ("RestrictPublicBuckets: the owner still reads", OWNER, GET, "k", RESTRICTED, None, A),
]  # fmt: skip


class KeyPolicy:
    """A stand-in policy deciding by key: ALLOWED may delete under ``tmp/``; nobody under
    ``locked/``."""

    document = b"{}"
    is_public = False

    def evaluate(self, request: PolicyRequest) -> Effect | None:
        key = request.key or ""
        if request.action == "s3:DeleteObject" and key.startswith("locked/"):
            return Effect.DENY
        if request.principal == ALLOWED and request.action == "s3:DeleteObject":
            return Effect.ALLOW if key.startswith("tmp/") else None
        return None

    def may_allow(self, action: str, principal: Principal | None) -> bool:
        return principal == ALLOWED and action == "s3:DeleteObject"


PER_KEY = BucketAccess("u-owner", policy=KeyPolicy())
DELETE_DENIED = BucketAccess("u-owner", policy=TablePolicy({("*", "s3:DeleteObject"): Effect.DENY}))
WRITE_GRANT = acls.Acl("u-owner", (acls.Grant("u-other", "WRITE"),))

#: (case, caller, bucket access, expected header-time verdict of a DeleteObjects)
SOME_KEY: list[tuple[str, Principal | None, BucketAccess | None, Verdict]] = [
    ("the owner", OWNER, PLAIN, A),
    ("the owner, whatever a Deny says (decided per key)", OWNER, DELETE_DENIED, A),
    ("a SuperUser", SUPER, PLAIN, A),
    ("a Reader never deletes", READER_OTHER, PER_KEY, D),
    ("another writer with nothing granted", OTHER, PER_KEY, D),
    ("a policy allowing some keys", ALLOWED, PER_KEY, A),
    ("a bucket ACL granting WRITE", OTHER, BucketAccess("u-owner", acl=WRITE_GRANT), A),
    ("no ACL counts under BucketOwnerEnforced", OTHER,
     BucketAccess("u-owner", acl=WRITE_GRANT, ownership=BUCKET_OWNER_ENFORCED), D),
    ("anonymous, nothing granted", None, PER_KEY, D),
    ("anonymous, public-read-write", None, PUBLIC_RW_BUCKET, A),
    ("anonymous, no bucket", None, None, D),
    ("a writer, no bucket (NoSuchBucket follows)", OTHER, None, A),
]  # fmt: skip


class TableTests(SynchronousTestCase):
    """Each row of :data:`DECISIONS`: the caller, the action, the bucket's configuration,
    the object's ACL, and what AWS's order makes of them."""

    def test_table(self) -> None:
        for case, who, action, key, access, object_acl, expected in DECISIONS:
            request = AccessRequest(who, action, "b", key, access, MappingContext({}), object_acl)
            self.assertIs(decide(request), expected, case)

    def test_some_key_table(self) -> None:
        """DeleteObjects at header time: through when some key could be allowed."""
        for case, who, access, expected in SOME_KEY:
            request = AccessRequest(who, "s3:DeleteObject", "b", None, access)
            self.assertIs(decide_some_key(request), expected, case)

    def test_gate_decides_each_key(self) -> None:
        gate = AccessGate(AccessRequest(ALLOWED, "s3:DeleteObject", "b", None, PER_KEY), A)
        self.assertTrue(gate.may_delete("tmp/x", None))
        self.assertFalse(gate.may_delete("keep/x", None))
        self.assertFalse(gate.may_delete("tmp/x", "v1"))  # s3:DeleteObjectVersion: not allowed
        owner = AccessGate(AccessRequest(OWNER, "s3:DeleteObject", "b", None, PER_KEY), A)
        self.assertTrue(owner.may_delete("tmp/x", "v1"))
        self.assertFalse(owner.may_delete("locked/x", None))  # an explicit Deny on the key

    def test_gate_completes_an_object_read(self) -> None:
        request = AccessRequest(OTHER, GET, "b", "k", PLAIN)
        gate = AccessGate(request, decide(request))
        self.assertRaises(S3Error, gate.check_object, None)
        self.assertRaises(S3Error, gate.check_object, PRIVATE.encode())
        gate.check_object(GRANT_OTHER.encode())
        self.assertFalse(gate.may_list())
        self.assertTrue(AccessGate(AccessRequest(None, GET, "b", "k", PUBLIC_BUCKET), A).may_list())

    def test_stored_canned_names_stay_private(self) -> None:
        """Versions from before ACLs were kept hold a canned name that was never honoured."""
        self.assertEqual(acls.stored_acl("public-read", "u-owner"), PRIVATE)
