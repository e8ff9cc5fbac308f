"""ACLs, ownership controls and public-access blocks, in memory.

Strategy: the in-memory server with the root, a bucket owner (Writer) and a
second Writer made through the admin API. Each test sets an ACL one of the ways
S3 allows (``x-amz-acl``, ``x-amz-grant-*``, an AccessControlPolicy document)
on a bucket or object, then checks both what GetBucketAcl/GetObjectAcl show and
what the other users may actually do; refusals are checked for their code and
for leaving nothing changed.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.principal import canonical_id
from tests.admin.support import AdminClient
from tests.s3.memory import MemoryResponse, MemoryS3

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def acl_document(owner: str, grants: list[tuple[str, str, str]]) -> bytes:
    """An AccessControlPolicy: grants as (type, id or uri, permission)."""
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    parts = []
    for kind, who, permission in grants:
        inner = f"<URI>{who}</URI>" if kind == "Group" else (
            f"<EmailAddress>{who}</EmailAddress>" if kind == "AmazonCustomerByEmail"
            else f"<ID>{who}</ID>"
        )  # fmt: skip
        parts.append(
            f'<Grant><Grantee {xsi} xsi:type="{kind}">{inner}</Grantee>'
            f"<Permission>{permission}</Permission></Grant>"
        )
    return (
        f"<AccessControlPolicy><Owner><ID>{owner}</ID></Owner>"
        f"<AccessControlList>{''.join(parts)}</AccessControlList></AccessControlPolicy>"
    ).encode()


class AclTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = MemoryS3()
        self.addCleanup(self.server.close)
        api = AdminClient(self.server)
        token = api.login()
        self.ids = {}
        self.keys = {}
        for name in ("owner", "other"):
            self.ids[name] = api.create_user(token, name, "Writer")
            self.keys[name] = api.new_key(token, self.ids[name])
        self.assertEqual(self.send("owner", "PUT", "/bkt").status, 200)
        self.assertEqual(self.send("owner", "PUT", "/bkt/obj", b"data").status, 200)

    def send(
        self,
        who: str,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> MemoryResponse:
        if who == "anonymous":
            return self.server.request(method, target, body, headers, sign=False)
        return self.server.request(method, target, body, headers, keys=self.keys[who])

    def cid(self, who: str) -> str:
        return canonical_id(self.ids[who])


class CannedAclTests(AclTestCase):
    def test_public_read_object(self) -> None:
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj").status, 403)
        put = self.send("owner", "PUT", "/bkt/obj?acl", headers={"x-amz-acl": "public-read"})
        self.assertEqual(put.status, 200, put.body)
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj").body, b"data")
        self.assertEqual(self.send("other", "GET", "/bkt/obj").body, b"data")
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj?acl").status, 403)  # READ only
        self.assertEqual(self.send("anonymous", "PUT", "/bkt/obj", b"x").status, 403)
        self.assertEqual(self.send("anonymous", "GET", "/bkt").status, 403)
        shown = self.send("owner", "GET", "/bkt/obj?acl").body
        self.assertIn(ALL_USERS.encode(), shown)
        self.assertIn(f"<ID>{self.cid('owner')}</ID>".encode(), shown)

    def test_put_object_with_canned_acl(self) -> None:
        put = self.send("owner", "PUT", "/bkt/pub", b"p", {"x-amz-acl": "public-read"})
        self.assertEqual(put.status, 200)
        self.assertEqual(self.send("anonymous", "GET", "/bkt/pub").body, b"p")
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj").status, 403)

    def test_authenticated_read_bucket(self) -> None:
        create = self.send("owner", "PUT", "/authb", headers={"x-amz-acl": "authenticated-read"})
        self.assertEqual(create.status, 200)
        self.assertEqual(self.send("other", "GET", "/authb").status, 200)  # lists
        self.assertEqual(self.send("anonymous", "GET", "/authb").status, 403)
        self.assertEqual(self.send("other", "PUT", "/authb/k", b"x").status, 403)

    def test_public_read_write_bucket_takes_anonymous_writes(self) -> None:
        self.send("owner", "PUT", "/bkt?acl", headers={"x-amz-acl": "public-read-write"})
        self.assertEqual(self.send("anonymous", "PUT", "/bkt/anon", b"a").status, 200)
        self.assertEqual(self.send("other", "PUT", "/bkt/theirs", b"t").status, 200)
        # the writer owns what it wrote (ObjectWriter): the bucket owner's role still reads it
        shown = self.send("other", "GET", "/bkt/theirs?acl").body
        self.assertIn(f"<Owner><ID>{self.cid('other')}</ID>".encode(), shown)
        self.assertEqual(self.send("owner", "GET", "/bkt/theirs").body, b"t")

    def test_multipart_acl_applies_at_completion(self) -> None:
        started = self.send(
            "owner", "POST", "/bkt/mp?uploads", headers={"x-amz-acl": "public-read"}
        )
        upload_id = started.body.split(b"<UploadId>")[1].split(b"<")[0].decode()
        part = self.send("owner", "PUT", f"/bkt/mp?partNumber=1&uploadId={upload_id}", b"part")
        etag = part.header("etag")
        self.assertEqual(self.send("anonymous", "GET", "/bkt/mp").status, 403)
        done = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
                "</Part></CompleteMultipartUpload>").encode()  # fmt: skip
        self.assertEqual(
            self.send("owner", "POST", f"/bkt/mp?uploadId={upload_id}", done).status, 200
        )
        self.assertEqual(self.send("anonymous", "GET", "/bkt/mp").body, b"part")

    def test_copy_takes_the_requested_acl_not_the_source_acl(self) -> None:
        self.send("owner", "PUT", "/bkt/obj?acl", headers={"x-amz-acl": "public-read"})
        copy = self.send("owner", "PUT", "/bkt/copy", headers={"x-amz-copy-source": "/bkt/obj"})
        self.assertEqual(copy.status, 200)
        self.assertEqual(self.send("anonymous", "GET", "/bkt/copy").status, 403)
        headers = {"x-amz-copy-source": "/bkt/obj", "x-amz-acl": "public-read"}
        self.assertEqual(self.send("owner", "PUT", "/bkt/copy2", b"", headers).status, 200)
        self.assertEqual(self.send("anonymous", "GET", "/bkt/copy2").body, b"data")

    def test_acl_headers_refused_where_not_honoured(self) -> None:
        for method, target, headers in (
            ("GET", "/bkt/obj", {"x-amz-acl": "public-read"}),
            ("PUT", "/bkt/obj?tagging", {"x-amz-grant-read": f'id="{self.ids["other"]}"'}),
            ("PUT", "/bkt/new", {"x-amz-acl": "aws-exec-read"}),
            ("PUT", "/bkt/new", {"x-amz-grant-everything": 'uri="x"'}),
            ("PUT", "/bkt/new", {"x-amz-acl": "private", "x-amz-grant-read": 'uri="x"'}),
        ):
            answer = self.send("owner", method, target, b"", headers)
            self.assertIn(answer.status, (400,), (method, target, headers, answer.body))
        self.assertEqual(self.send("owner", "HEAD", "/bkt/new").status, 404)


class GrantTests(AclTestCase):
    def test_grant_header_to_a_user(self) -> None:
        grant = {"x-amz-grant-read": f'id="{self.cid("other")}"'}
        self.assertEqual(self.send("owner", "PUT", "/bkt/g", b"g", grant).status, 200)
        self.assertEqual(self.send("other", "GET", "/bkt/g").body, b"g")
        self.assertEqual(self.send("other", "GET", "/bkt/obj").status, 403)
        # the grant replaced the default: the owner's FULL_CONTROL is not implied in the list
        shown = self.send("owner", "GET", "/bkt/g?acl").body
        self.assertEqual(shown.count(b"<Grant>"), 1)

    def test_acl_document(self) -> None:
        body = acl_document(self.cid("owner"), [
            ("CanonicalUser", self.cid("owner"), "FULL_CONTROL"),
            ("CanonicalUser", self.cid("other"), "WRITE"),
            ("Group", ALL_USERS, "READ"),
        ])  # fmt: skip
        put = self.send("owner", "PUT", "/bkt?acl", body)
        self.assertEqual(put.status, 200, put.body)
        self.assertEqual(self.send("other", "PUT", "/bkt/w", b"w").status, 200)
        self.assertEqual(self.send("anonymous", "GET", "/bkt").status, 200)
        self.assertEqual(self.send("anonymous", "PUT", "/bkt/w2", b"w").status, 403)
        shown = self.send("other", "GET", "/bkt?acl")
        self.assertEqual(shown.status, 403)  # WRITE is no READ_ACP
        # grants to groups are listed first, then the users' in the order given
        listed = self.send("owner", "GET", "/bkt?acl").body
        grantees = re.findall(rb"<Grantee[^>]*><(?:ID|URI)>([^<]+)<", listed)
        self.assertEqual(
            grantees, [ALL_USERS.encode(), self.cid("owner").encode(), self.cid("other").encode()]
        )

    def test_recreating_ones_bucket_resets_its_acl(self) -> None:
        """AWS in us-east-1: CreateBucket of a bucket one owns answers 200 and resets its
        ACL to the one asked for (private when none is)."""
        self.assertEqual(
            self.send("owner", "PUT", "/bkt", headers={"x-amz-acl": "public-read"}).status, 200
        )
        self.assertEqual(self.send("anonymous", "GET", "/bkt").status, 200)
        self.assertEqual(self.send("owner", "PUT", "/bkt").status, 200)
        self.assertEqual(self.send("anonymous", "GET", "/bkt").status, 403)
        self.assertEqual(self.send("owner", "GET", "/bkt?acl").body.count(b"<Grant>"), 1)
        self.assertEqual(self.send("owner", "GET", "/bkt/obj").body, b"data")  # objects stay
        answer = self.send("other", "PUT", "/bkt", headers={"x-amz-acl": "public-read"})
        self.assertEqual((answer.status, answer.code()), (409, "BucketAlreadyExists"))
        self.assertEqual(self.send("anonymous", "GET", "/bkt").status, 403)

    def test_anonymous_requests_to_a_missing_bucket(self) -> None:
        """NoSuchBucket, as AWS answers anyone (there is no policy or ACL to ask)."""
        for method, target in (("GET", "/gone/k"), ("DELETE", "/gone/k"), ("GET", "/gone"),
                               ("HEAD", "/gone/k"), ("PUT", "/gone/k")):  # fmt: skip
            answer = self.send("anonymous", method, target, b"x" if method == "PUT" else b"")
            self.assertEqual(answer.status, 404, (method, target))
            if method != "HEAD":
                self.assertEqual(answer.code(), "NoSuchBucket", (method, target))
        answer = self.send("anonymous", "PUT", "/gone")  # CreateBucket is no bucket's
        self.assertEqual((answer.status, answer.code()), (403, "AccessDenied"))
        answer = self.send("anonymous", "GET", "/bkt/missing")  # the bucket exists: 403
        self.assertEqual((answer.status, answer.code()), (403, "AccessDenied"))

    def test_unknown_grantees_are_refused(self) -> None:
        before = self.send("owner", "GET", "/bkt?acl").body
        for grantee, code in (
            (("CanonicalUser", "0" * 64, "READ"), "InvalidArgument"),
            (("AmazonCustomerByEmail", "nobody@example.com", "READ"),
             "UnresolvableGrantByEmailAddress"),
            (("Group", "http://example.com/group", "READ"), "InvalidArgument"),
            (("CanonicalUser", self.cid("other"), "EVERYTHING"), "MalformedACLError"),
        ):  # fmt: skip
            answer = self.send(
                "owner", "PUT", "/bkt?acl", acl_document(self.cid("owner"), [grantee])
            )
            self.assertEqual((answer.status, answer.code()), (400, code), grantee)
        header = {"x-amz-grant-read": 'id="no-such-user"'}
        self.assertEqual(
            self.send("owner", "PUT", "/bkt/h", b"h", header).code(), "InvalidArgument"
        )
        self.assertEqual(self.send("owner", "GET", "/bkt?acl").body, before)
        self.assertEqual(self.send("owner", "HEAD", "/bkt/h").status, 404)

    def test_object_acl_of_a_version(self) -> None:
        versioning = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        self.send("owner", "PUT", "/bkt?versioning", versioning)
        first = self.send("owner", "PUT", "/bkt/v", b"one").header("x-amz-version-id")
        self.send("owner", "PUT", "/bkt/v", b"two")
        put = self.send("owner", "PUT", f"/bkt/v?acl&versionId={first}",
                        headers={"x-amz-acl": "public-read"})  # fmt: skip
        self.assertEqual((put.status, put.header("x-amz-version-id")), (200, first))
        self.assertEqual(self.send("anonymous", "GET", f"/bkt/v?versionId={first}").body, b"one")
        self.assertEqual(self.send("anonymous", "GET", "/bkt/v").status, 403)


class CopySourceTests(AclTestCase):
    """A copy reads its source as a GetObject would (the source object's ACL included),
    and checks the source bucket's owner when ``x-amz-source-expected-bucket-owner``
    names one."""

    def setUp(self) -> None:
        super().setUp()
        self.assertEqual(self.send("other", "PUT", "/mine").status, 200)
        self.assertEqual(self.send("owner", "PUT", "/bkt/secret", b"secret").status, 200)
        grant = {"x-amz-grant-read": f'id="{self.cid("other")}"'}
        self.assertEqual(self.send("owner", "PUT", "/bkt/obj?acl", b"", grant).status, 200)

    def upload(self) -> str:
        answer = self.send("other", "POST", "/mine/big?uploads")
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", answer.body)
        assert found is not None, answer.body
        return found.group(1).decode()

    def test_copy_source_readable_through_its_object_acl(self) -> None:
        copy = self.send("other", "PUT", "/mine/c", headers={"x-amz-copy-source": "/bkt/obj"})
        self.assertEqual(copy.status, 200, copy.body)
        self.assertEqual(self.send("other", "GET", "/mine/c").body, b"data")
        refused = self.send("other", "PUT", "/mine/s", headers={"x-amz-copy-source": "/bkt/secret"})
        self.assertEqual((refused.status, refused.code()), (403, "AccessDenied"))
        self.assertEqual(self.send("other", "HEAD", "/mine/s").status, 404)
        upload = self.upload()
        part = f"/mine/big?partNumber=1&uploadId={upload}"
        copied = self.send("other", "PUT", part, headers={"x-amz-copy-source": "/bkt/obj"})
        self.assertEqual(copied.status, 200, copied.body)
        part2 = f"/mine/big?partNumber=2&uploadId={upload}"
        refused = self.send("other", "PUT", part2, headers={"x-amz-copy-source": "/bkt/secret"})
        self.assertEqual((refused.status, refused.code()), (403, "AccessDenied"))
        parts = self.send("other", "GET", f"/mine/big?uploadId={upload}").body
        self.assertEqual(parts.count(b"<Part>"), 1)

    def test_source_expected_bucket_owner(self) -> None:
        def copy(target: str, **headers: str) -> MemoryResponse:
            headers = {"x-amz-copy-source": "/bkt/obj", **headers}
            return self.send("other", "PUT", target, b"", headers)

        source, target = "x-amz-source-expected-bucket-owner", "x-amz-expected-bucket-owner"
        for right in (self.cid("owner"), self.ids["owner"]):
            self.assertEqual(copy("/mine/ok", **{source: right}).status, 200)
        both = {source: self.cid("owner"), target: self.cid("other")}
        self.assertEqual(copy("/mine/both", **both).status, 200)
        upload = self.upload()
        part = f"/mine/big?partNumber=1&uploadId={upload}"
        self.assertEqual(copy(part, **{source: self.cid("owner")}).status, 200)
        for target_path in ("/mine/wrong", f"/mine/big?partNumber=2&uploadId={upload}"):
            for headers in ({source: self.cid("other")}, {source: "0" * 64},
                            {source: self.cid("owner"), target: self.cid("owner")}):  # fmt: skip
                answer = copy(target_path, **headers)
                self.assertEqual((answer.status, answer.code()), (403, "AccessDenied"), headers)
        self.assertEqual(self.send("other", "HEAD", "/mine/wrong").status, 404)
        parts = self.send("other", "GET", f"/mine/big?uploadId={upload}").body
        self.assertEqual(parts.count(b"<Part>"), 1)


class OwnershipAndBlockTests(AclTestCase):
    def test_bucket_owner_enforced(self) -> None:
        rule = (b"<OwnershipControls><Rule><ObjectOwnership>BucketOwnerEnforced"
                b"</ObjectOwnership></Rule></OwnershipControls>")  # fmt: skip
        self.assertEqual(self.send("owner", "PUT", "/bkt?ownershipControls", rule).status, 200)
        refused = self.send("owner", "PUT", "/bkt/p", b"p", {"x-amz-acl": "public-read"})
        self.assertEqual((refused.status, refused.code()), (400, "AccessControlListNotSupported"))
        fine = self.send("owner", "PUT", "/bkt/p", b"p", {"x-amz-acl": "bucket-owner-full-control"})
        self.assertEqual(fine.status, 200)
        refused = self.send("owner", "PUT", "/bkt/p?acl", headers={"x-amz-acl": "public-read"})
        self.assertEqual(refused.code(), "AccessControlListNotSupported")
        got = self.send("owner", "GET", "/bkt?ownershipControls").body
        self.assertIn(b"<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>", got)
        self.assertEqual(self.send("owner", "DELETE", "/bkt?ownershipControls").status, 204)
        self.assertEqual(self.send("owner", "GET", "/bkt?ownershipControls").status, 404)

    def test_enforced_refused_while_the_bucket_acl_grants(self) -> None:
        self.send("owner", "PUT", "/bkt?acl", headers={"x-amz-acl": "public-read"})
        rule = (b"<OwnershipControls><Rule><ObjectOwnership>BucketOwnerEnforced"
                b"</ObjectOwnership></Rule></OwnershipControls>")  # fmt: skip
        answer = self.send("owner", "PUT", "/bkt?ownershipControls", rule)
        self.assertEqual(answer.code(), "InvalidBucketAclWithObjectOwnership")

    def test_public_access_block(self) -> None:
        block = (
            b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>"
            b"<IgnorePublicAcls>true</IgnorePublicAcls></PublicAccessBlockConfiguration>"
        )
        self.send("owner", "PUT", "/bkt/obj?acl", headers={"x-amz-acl": "public-read"})
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj").status, 200)
        self.assertEqual(self.send("owner", "PUT", "/bkt?publicAccessBlock", block).status, 200)
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj").status, 403)  # ignored now
        refused = self.send("owner", "PUT", "/bkt/x", b"x", {"x-amz-acl": "public-read"})
        self.assertEqual((refused.status, refused.code()), (403, "AccessDenied"))
        self.assertEqual(self.send("owner", "HEAD", "/bkt/x").status, 404)
        got = self.send("owner", "GET", "/bkt?publicAccessBlock").body
        self.assertIn(b"<BlockPublicAcls>true</BlockPublicAcls>", got)
        self.assertIn(b"<BlockPublicPolicy>false</BlockPublicPolicy>", got)
        self.assertEqual(self.send("owner", "DELETE", "/bkt?publicAccessBlock").status, 204)
        self.assertEqual(self.send("anonymous", "GET", "/bkt/obj").status, 200)
