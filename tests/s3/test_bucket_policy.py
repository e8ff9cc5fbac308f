"""Bucket policies over S3, in memory: the operations, and conditions on real requests.

Strategy: the in-memory server with a bucket owner and a partner (Writers) made
through the admin API. Policies are put with PutBucketPolicy and then the
partner's requests show what each condition key does when the policy is
evaluated at header time: ``s3:prefix`` on listings, ``s3:RequestObjectTag``
on writes, ``s3:ExistingObjectTag`` read from the version's record only when a
statement asks for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.admin.support import AdminClient
from tests.s3.memory import MemoryResponse, MemoryS3


class PolicyTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = MemoryS3()
        self.addCleanup(self.server.close)
        api = AdminClient(self.server)
        token = api.login()
        self.ids: dict[str, str] = {}
        self.keys: dict[str, tuple[str, str]] = {}
        for name in ("owner", "partner"):
            self.ids[name] = api.create_user(token, name, "Writer")
            self.keys[name] = api.new_key(token, self.ids[name])
        self.assertEqual(self.send("owner", "PUT", "/bkt").status, 200)

    def send(
        self,
        who: str,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> MemoryResponse:
        return self.server.request(method, target, body, headers, keys=self.keys[who])

    def policy(self, *statements: dict[str, Any]) -> None:
        document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
        answer = self.send("owner", "PUT", "/bkt?policy", document.encode())
        self.assertEqual(answer.status, 204, answer.body)

    def partner(
        self, effect: str, action: object, resource: str, **condition: Any
    ) -> dict[str, Any]:
        statement = {"Effect": effect, "Principal": {"AWS": [self.ids["partner"]]},
                     "Action": action, "Resource": resource}  # fmt: skip
        if condition:
            statement["Condition"] = condition
        return statement


class OperationTests(PolicyTestCase):
    def test_put_get_delete(self) -> None:
        self.assertEqual(self.send("owner", "GET", "/bkt?policy").code(), "NoSuchBucketPolicy")
        document = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::bkt/*"}]}, indent=3).encode()  # fmt: skip
        self.assertEqual(self.send("owner", "PUT", "/bkt?policy", document).status, 204)
        got = self.send("owner", "GET", "/bkt?policy")
        self.assertEqual((got.body, got.header("content-type")), (document, "application/json"))
        status = self.send("owner", "GET", "/bkt?policyStatus").body
        self.assertIn(b"<IsPublic>true</IsPublic>", status)
        self.assertEqual(self.send("owner", "DELETE", "/bkt?policy").status, 204)
        self.assertEqual(self.send("owner", "GET", "/bkt?policy").status, 404)
        self.assertIn(b"<IsPublic>false", self.send("owner", "GET", "/bkt?policyStatus").body)

    def test_bad_policies(self) -> None:
        for body, code in (
            (b"not json", "MalformedPolicy"),
            (b'{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}', "MalformedPolicy"),
            (b'{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:Fly",'
             b' "Resource": "arn:aws:s3:::bkt/*"}]}', "MalformedPolicy"),
            (b"{" + b" " * 21_000 + b"}", "PolicyTooLarge"),
        ):  # fmt: skip
            answer = self.send("owner", "PUT", "/bkt?policy", body)
            self.assertEqual((answer.status, answer.code()), (400, code), body[:40])
        self.assertEqual(self.send("owner", "GET", "/bkt?policy").status, 404)

    def test_only_the_owner_manages_it(self) -> None:
        self.assertEqual(self.send("partner", "GET", "/bkt?policy").code(), "AccessDenied")
        answer = self.send("partner", "PUT", "/bkt?policy", b"{}")
        self.assertEqual(answer.code(), "AccessDenied")


class ConditionTests(PolicyTestCase):
    def test_prefix_condition_on_listing(self) -> None:
        self.policy(self.partner("Allow", "s3:ListBucket", "arn:aws:s3:::bkt",
                                 StringLike={"s3:prefix": "shared/*"}))  # fmt: skip
        self.assertEqual(self.send("partner", "GET", "/bkt?list-type=2&prefix=shared/").status, 200)
        self.assertEqual(self.send("partner", "GET", "/bkt?list-type=2&prefix=x/").status, 403)
        self.assertEqual(self.send("partner", "GET", "/bkt?list-type=2").status, 403)

    def test_request_object_tag_on_writes(self) -> None:
        self.policy(self.partner("Allow", "s3:PutObject", "arn:aws:s3:::bkt/*",
                                 StringEquals={"s3:RequestObjectTag/team": "blue"}))  # fmt: skip
        tagged = self.send("partner", "PUT", "/bkt/a", b"a", {"x-amz-tagging": "team=blue"})
        self.assertEqual(tagged.status, 200)
        other = self.send("partner", "PUT", "/bkt/b", b"b", {"x-amz-tagging": "team=red"})
        self.assertEqual(other.status, 403)
        self.assertEqual(self.send("partner", "PUT", "/bkt/c", b"c").status, 403)
        self.assertEqual(self.send("owner", "HEAD", "/bkt/b").status, 404)

    def test_existing_object_tag_on_reads(self) -> None:
        self.policy(
            self.partner("Allow", "s3:GetObject", "arn:aws:s3:::bkt/*"),
            self.partner("Deny", "s3:GetObject", "arn:aws:s3:::bkt/*",
                         StringEquals={"s3:ExistingObjectTag/secret": "yes"}),
        )  # fmt: skip
        self.send("owner", "PUT", "/bkt/open", b"open", {"x-amz-tagging": "secret=no"})
        self.send("owner", "PUT", "/bkt/closed", b"closed", {"x-amz-tagging": "secret=yes"})
        self.assertEqual(self.send("partner", "GET", "/bkt/open").body, b"open")
        self.assertEqual(self.send("partner", "GET", "/bkt/closed").status, 403)
        # a change of the tags holds from the next request on
        tagging = (b"<Tagging><TagSet><Tag><Key>secret</Key><Value>no</Value></Tag>"
                   b"</TagSet></Tagging>")  # fmt: skip
        self.assertEqual(self.send("owner", "PUT", "/bkt/closed?tagging", tagging).status, 200)
        self.assertEqual(self.send("partner", "GET", "/bkt/closed").body, b"closed")

    def test_a_policy_change_holds_at_once(self) -> None:
        self.send("owner", "PUT", "/bkt/k", b"v")
        self.assertEqual(self.send("partner", "GET", "/bkt/k").status, 403)
        self.policy(self.partner("Allow", "s3:GetObject", "arn:aws:s3:::bkt/*"))
        self.assertEqual(self.send("partner", "GET", "/bkt/k").body, b"v")
        self.policy(self.partner("Deny", "s3:GetObject", "arn:aws:s3:::bkt/*"))
        self.assertEqual(self.send("partner", "GET", "/bkt/k").status, 403)
        self.assertEqual(self.send("owner", "DELETE", "/bkt?policy").status, 204)
        self.assertEqual(self.send("partner", "GET", "/bkt/k").status, 403)


def delete_document(*keys: str, quiet: bool = False) -> tuple[bytes, dict[str, str]]:
    """A DeleteObjects body for ``keys`` and its Content-MD5 header."""
    objects = "".join(f"<Object><Key>{key}</Key></Object>" for key in keys)
    body = f"<Delete><Quiet>{str(quiet).lower()}</Quiet>{objects}</Delete>".encode()
    return body, {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}


class DeleteObjectsTests(PolicyTestCase):
    """DeleteObjects is decided key by key, each with its object's resource ARN."""

    def setUp(self) -> None:
        super().setUp()
        for key in ("tmp/a", "tmp/b", "keep/c", "locked/d"):
            self.assertEqual(self.send("owner", "PUT", f"/bkt/{key}", b"x").status, 200)

    def delete(self, who: str, *keys: str, quiet: bool = False) -> tuple[list[str], list[str]]:
        """The keys DeleteObjects reports deleted, and those it reports AccessDenied."""
        body, headers = delete_document(*keys, quiet=quiet)
        answer = self.send(who, "POST", "/bkt?delete", body, headers)
        self.assertEqual(answer.status, 200, answer.body)
        deleted = re.findall(rb"<Deleted><Key>([^<]*)</Key>", answer.body)
        denied = re.findall(
            rb"<Error><Key>([^<]*)</Key>(?:<VersionId>[^<]*</VersionId>)?"
            rb"<Code>AccessDenied</Code>",
            answer.body,
        )
        self.assertEqual(answer.body.count(b"<Error>"), len(denied), answer.body)
        return [k.decode() for k in deleted], [k.decode() for k in denied]

    def exists(self, key: str) -> bool:
        return self.send("owner", "HEAD", f"/bkt/{key}").status == 200

    def test_allowed_on_objects_only(self) -> None:
        """A policy allowing s3:DeleteObject on ``bkt/tmp/*`` only: the request gets in,
        the keys under tmp/ are deleted, the others are AccessDenied and stay."""
        self.policy(self.partner("Allow", "s3:DeleteObject", "arn:aws:s3:::bkt/tmp/*"))
        deleted, denied = self.delete("partner", "tmp/a", "keep/c")
        self.assertEqual((deleted, denied), (["tmp/a"], ["keep/c"]))
        self.assertFalse(self.exists("tmp/a"))
        self.assertTrue(self.exists("keep/c"))
        # Quiet mode leaves out what was deleted, never what was refused
        self.assertEqual(self.delete("partner", "tmp/b", "keep/c", quiet=True), ([], ["keep/c"]))
        self.assertFalse(self.exists("tmp/b"))
        # DeleteObject agrees with it key by key
        self.assertEqual(self.send("partner", "DELETE", "/bkt/keep/c").status, 403)

    def test_a_deny_refuses_its_keys_even_to_the_owner(self) -> None:
        self.policy(
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
             "Resource": "arn:aws:s3:::bkt/locked/*"}
        )  # fmt: skip
        deleted, denied = self.delete("owner", "tmp/a", "locked/d")
        self.assertEqual((deleted, denied), (["tmp/a"], ["locked/d"]))
        self.assertTrue(self.exists("locked/d"))

    def test_nothing_granted_is_refused_whole(self) -> None:
        """A caller no statement or ACL could allow on any key is refused at header time."""
        body, headers = delete_document("tmp/a")
        answer = self.send("partner", "POST", "/bkt?delete", body, headers)
        self.assertEqual((answer.status, answer.code()), (403, "AccessDenied"))
        self.policy(self.partner("Allow", "s3:GetObject", "arn:aws:s3:::bkt/*"))
        answer = self.send("partner", "POST", "/bkt?delete", body, headers)
        self.assertEqual((answer.status, answer.code()), (403, "AccessDenied"))
        self.assertTrue(self.exists("tmp/a"))
