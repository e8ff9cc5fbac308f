"""The authorization decision: roles against actions, and ownership of buckets.

Strategy: :func:`decide` is a pure function; it is checked against the role
table of the issue (Reader: GET, HEAD, listings, SQL; Writer: also PUT, POST,
DELETE; SuperUser: also every bucket), for every action the S3 dispatch table
declares (with queries enabled), so a route added later is classified too.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.access import authorize, decide, listed_owner, required_role
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
            ("s3:GetObject", {READER, WRITER, SUPER}),
            ("s3:ListBucket", {READER, WRITER, SUPER}),
            ("s3:SelectObjectContent", {READER, WRITER, SUPER}),
            ("s3:PutObject", {WRITER, SUPER}),
            ("s3:DeleteObject", {WRITER, SUPER}),
            ("s3:CreateBucket", {WRITER, SUPER}),
            ("s3:SomethingNew", {WRITER, SUPER}),
        ]:
            for who in (READER, WRITER, SUPER):
                self.assertEqual(decide(who, action, who.user_id), who in allowed, (who, action))

    def test_ownership(self) -> None:
        self.assertTrue(decide(WRITER, "s3:PutObject", "u-w"))
        self.assertFalse(decide(WRITER, "s3:PutObject", "u-other"))
        self.assertFalse(decide(READER, "s3:GetObject", "u-other"))
        self.assertTrue(decide(SUPER, "s3:DeleteObject", "u-other"))
        # no such bucket: the operation answers NoSuchBucket itself
        self.assertTrue(decide(WRITER, "s3:PutObject", None))
        # creating a bucket never needs the name's owner (BucketAlreadyExists comes later)
        self.assertTrue(decide(WRITER, "s3:CreateBucket", "u-other"))

    def test_authorize_raises_access_denied(self) -> None:
        error = self.assertRaises(S3Error, authorize, READER, "s3:PutObject", "u-r")
        self.assertEqual((error.code, error.status), ("AccessDenied", 403))
        self.assertRaises(S3Error, authorize, None, "s3:GetObject", None)
        authorize(WRITER, "s3:PutObject", "u-w")

    def test_listed_owner(self) -> None:
        self.assertEqual(listed_owner(WRITER), "u-w")
        self.assertEqual(listed_owner(READER), "u-r")
        self.assertIsNone(listed_owner(SUPER))
        self.assertEqual(listed_owner(None), "")

    def test_canonical_id(self) -> None:
        self.assertEqual(len(canonical_id("u")), 64)
        self.assertEqual(READER.canonical_id, canonical_id("u-r"))
        self.assertNotEqual(READER.canonical_id, WRITER.canonical_id)
