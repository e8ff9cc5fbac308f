"""Who may do what over S3: the role matrix, bucket ownership, and what listings show.

Strategy: one in-memory server (:class:`tests.s3.memory.MemoryS3`, the real
seam and store) with users made through the admin API: a Reader, two Writers
and a SuperUser besides the root, each with a key. Buckets belong to whoever
created them (the Reader's is made through the engine, since a Reader cannot
create one). Each S3 operation is then signed by each user against a bucket of
its own and a bucket of someone else's, and the answers compared with the
issue's table: Reader reads, Writer also writes, SuperUser does both on every
bucket, nobody reaches another user's bucket otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.principal import canonical_id
from tests.admin.support import AdminClient
from tests.s3.memory import HOST, MemoryResponse, MemoryS3

Keys = tuple[str, str]

#: (operation, method, target, body, headers, reads?) with {b} for the bucket
OPERATIONS: list[tuple[str, str, str, bytes, dict[str, str], bool]] = [
    ("HeadBucket", "HEAD", "/{b}", b"", {}, True),
    ("ListObjects", "GET", "/{b}", b"", {}, True),
    ("ListObjectsV2", "GET", "/{b}?list-type=2", b"", {}, True),
    ("ListObjectVersions", "GET", "/{b}?versions", b"", {}, True),
    ("ListMultipartUploads", "GET", "/{b}?uploads", b"", {}, True),
    ("GetBucketLocation", "GET", "/{b}?location", b"", {}, True),
    ("GetBucketAcl", "GET", "/{b}?acl", b"", {}, True),
    ("GetBucketVersioning", "GET", "/{b}?versioning", b"", {}, True),
    ("GetObject", "GET", "/{b}/obj", b"", {}, True),
    ("HeadObject", "HEAD", "/{b}/obj", b"", {}, True),
    ("GetObjectTagging", "GET", "/{b}/obj?tagging", b"", {}, True),
    ("GetObjectAcl", "GET", "/{b}/obj?acl", b"", {}, True),
    ("PutObject", "PUT", "/{b}/new", b"data", {}, False),
    ("CopyObject", "PUT", "/{b}/copy", b"", {"x-amz-copy-source": "/{b}/obj"}, False),
    ("PutObjectTagging", "PUT", "/{b}/obj?tagging",
     b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>", {}, False),
    ("CreateMultipartUpload", "POST", "/{b}/mp?uploads", b"", {}, False),
    ("PutBucketVersioning", "PUT", "/{b}?versioning",
     b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>", {}, False),
    ("DeleteObject", "DELETE", "/{b}/new", b"", {}, False),
    ("DeleteObjects", "POST", "/{b}?delete",
     b"<Delete><Object><Key>none</Key></Object></Delete>", {}, False),
]  # fmt: skip


class RolesTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = MemoryS3()
        self.addCleanup(self.server.close)
        self.api = AdminClient(self.server)
        root = self.api.login()
        self.ids: dict[str, str] = {}
        self.keys: dict[str, Keys] = {}
        for name, role in [("reader", "Reader"), ("writer", "Writer"), ("writer2", "Writer"),
                           ("super", "SuperUser")]:  # fmt: skip
            self.ids[name] = self.api.create_user(root, name, role)
            self.keys[name] = self.api.new_key(root, self.ids[name])
        self.buckets = {"reader": "readers", "writer": "writers", "writer2": "writer2s",
                        "super": "supers"}  # fmt: skip
        for name, bucket in self.buckets.items():
            if name == "reader":
                self.server.engine.buckets.create(bucket, "us-east-1", owner=self.ids["reader"])
            else:
                self.assertEqual(self.s3(name, "PUT", f"/{bucket}").status, 200)
        for bucket in self.buckets.values():
            self.s3("super", "PUT", f"/{bucket}/obj", b"object")

    def s3(
        self,
        who: str,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> MemoryResponse:
        return self.server.request(method, target, body, headers, keys=self.keys[who])


class MatrixTests(RolesTestCase):
    def check(self, who: str, bucket: str, allowed: Callable[[bool], bool]) -> None:
        for operation, method, target, body, headers, reads in OPERATIONS:
            path = target.format(b=bucket)
            sent = {k: v.format(b=bucket) for k, v in headers.items()}
            answer = self.s3(who, method, path, body, sent)
            if allowed(reads):
                self.assertLess(answer.status, 300, (who, operation, bucket, answer.body[:300]))
            else:
                self.assertEqual(answer.status, 403, (who, operation, bucket))
                if method != "HEAD":
                    self.assertEqual(answer.code(), "AccessDenied", (who, operation))

    def test_reader(self) -> None:
        self.check("reader", "readers", lambda reads: reads)
        self.check("reader", "writers", lambda reads: False)

    def test_writer(self) -> None:
        self.check("writer", "writers", lambda reads: True)
        self.check("writer", "writer2s", lambda reads: False)
        self.check("writer", "supers", lambda reads: False)

    def test_superuser_everywhere(self) -> None:
        for bucket in self.buckets.values():
            self.check("super", bucket, lambda reads: True)

    def test_root_configured_key_everywhere(self) -> None:
        for bucket in ("writers", "readers"):
            answer = self.server.request("GET", f"/{bucket}/obj")
            self.assertEqual(answer.body, b"object")

    def test_bucket_creation_and_deletion(self) -> None:
        self.assertEqual(self.s3("reader", "PUT", "/readers-new").code(), "AccessDenied")
        self.assertEqual(self.s3("writer", "PUT", "/writer-new").status, 200)
        taken = self.s3("writer", "PUT", "/writer2s")
        self.assertEqual((taken.status, taken.code()), (409, "BucketAlreadyExists"))
        self.assertEqual(self.s3("writer", "PUT", "/writers").status, 200)  # own: us-east-1
        self.assertEqual(self.s3("writer2", "DELETE", "/writer-new").code(), "AccessDenied")
        self.assertEqual(self.s3("reader", "DELETE", "/readers").code(), "AccessDenied")
        self.assertEqual(self.s3("writer", "DELETE", "/writer-new").status, 204)
        missing = self.s3("writer", "GET", "/no-such-bucket")
        self.assertEqual(missing.code(), "NoSuchBucket")

    def test_copy_needs_the_source_bucket_too(self) -> None:
        stolen = self.s3("writer", "PUT", "/writers/stolen", b"",
                         {"x-amz-copy-source": "/writer2s/obj"})  # fmt: skip
        self.assertEqual(stolen.code(), "AccessDenied")
        pushed = self.s3("writer", "PUT", "/writer2s/pushed", b"",
                         {"x-amz-copy-source": "/writers/obj"})  # fmt: skip
        self.assertEqual(pushed.code(), "AccessDenied")
        mine = self.s3("writer", "PUT", "/writers/copy2", b"",
                       {"x-amz-copy-source": "writers/obj"})  # fmt: skip
        self.assertEqual(mine.status, 200)
        upload = self.s3("writer", "POST", "/writers/mp?uploads")
        upload_id = upload.body.split(b"<UploadId>")[1].split(b"<")[0].decode()
        part = self.s3("writer", "PUT", f"/writers/mp?partNumber=1&uploadId={upload_id}", b"",
                       {"x-amz-copy-source": "/writer2s/obj"})  # fmt: skip
        self.assertEqual(part.code(), "AccessDenied")

    def test_unimplemented_sub_resources_still_answer_not_implemented(self) -> None:
        answer = self.s3("reader", "PUT", "/readers?website", b"<x/>")
        self.assertEqual(answer.code(), "NotImplemented")


class ListingTests(RolesTestCase):
    def buckets_listed(self, who: str) -> tuple[list[str], bytes]:
        body = self.s3(who, "GET", "/").body
        names = [n.split(b"</Name>")[0].decode() for n in body.split(b"<Name>")[1:]]
        return names, body

    def test_list_buckets_shows_own_buckets(self) -> None:
        self.assertEqual(self.buckets_listed("writer")[0], ["writers"])
        self.assertEqual(self.buckets_listed("reader")[0], ["readers"])
        everything, body = self.buckets_listed("super")
        self.assertEqual(sorted(everything), sorted(self.buckets.values()))
        self.assertIn(f"<ID>{canonical_id(self.ids['super'])}</ID>".encode(), body)
        self.assertIn(b"<DisplayName>super</DisplayName>", body)

    def test_owner_in_listings_and_acls_is_the_buckets_owner(self) -> None:
        writer_id = canonical_id(self.ids["writer"]).encode()
        for who in ("writer", "super"):
            listed = self.s3(who, "GET", "/writers?list-type=2&fetch-owner=true").body
            self.assertIn(b"<Owner><ID>" + writer_id + b"</ID><DisplayName>writer</DisplayName>",
                          listed)  # fmt: skip
            acl = self.s3(who, "GET", "/writers?acl").body
            self.assertIn(b"<ID>" + writer_id + b"</ID>", acl)


class FormUploadTests(RolesTestCase):
    def post(self, who: str, bucket: str) -> MemoryResponse:
        import boto3
        from botocore.config import Config

        client: Any = boto3.client(
            "s3",
            endpoint_url=f"http://{HOST}",
            aws_access_key_id=self.keys[who][0],
            aws_secret_access_key=self.keys[who][1],
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        fields = client.generate_presigned_post(bucket, "form.txt")["fields"]
        boundary = "----rolesboundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
            f"hello\r\n--{boundary}--\r\n".encode()
        )
        return self.server.request(
            "POST",
            f"/{bucket}",
            b"".join(parts),
            {"content-type": f"multipart/form-data; boundary={boundary}"},
            sign=False,
        )

    def test_form_uploads_are_authorized_like_puts(self) -> None:
        self.assertEqual(self.post("writer", "writers").status, 204)
        self.assertEqual(self.post("writer", "writer2s").code(), "AccessDenied")
        self.assertEqual(self.post("reader", "readers").code(), "AccessDenied")
        self.assertEqual(self.post("super", "writer2s").status, 204)
        self.assertEqual(self.s3("writer2", "GET", "/writer2s/form.txt").body, b"hello")
