"""Object and bucket tagging.

Validation (AWS's limits and messages) runs in memory against the real site;
every operation also runs through boto3 against a loopback server.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from twisted.trial.unittest import TestCase

from s4d.store.model import ObjectVersion
from tests.s3.memory import MemoryResponse, MemoryS3
from tests.s3.test_api import S3TestCase, error_code, read_object


def tagging_xml(*pairs: tuple[str, str]) -> bytes:
    tags = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return (
        '<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<TagSet>{tags}</TagSet></Tagging>"
    ).encode()


class ModelTests(TestCase):
    def test_tags_round_trip_and_old_records_decode(self) -> None:
        v = ObjectVersion("null", 1, 3, "e", 5, tags={"b": "2", "a": ""})
        again = ObjectVersion.decode(v.encode())
        self.assertEqual(list(again.tags.items()), [("b", "2"), ("a", "")])
        old = {k: val for k, val in v.encode().items() if k != "tg"}
        self.assertEqual(ObjectVersion.decode(old).tags, {})
        self.assertNotIn("tg", ObjectVersion("null", 1, 3, "e", 5).encode())


class ValidationTests(TestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/k", b"x").status, 200)

    def put_tags(self, body: bytes, target: str = "/bkt/k?tagging") -> MemoryResponse:
        return self.s3.request("PUT", target, body)

    def assertRefused(self, got: MemoryResponse, code: str, message: str | None = None) -> None:
        self.assertEqual((got.status, got.code()), (400, code), got.body)
        if message is not None:
            self.assertIn(f"<Message>{message}</Message>".encode(), got.body)

    def test_limits(self) -> None:
        cases: list[tuple[bytes, str, str]] = [
            (tagging_xml(("", "v")), "InvalidTag", "The TagKey you have provided is invalid"),
            (
                tagging_xml(("k" * 129, "v")),
                "InvalidTag",
                "The TagKey you have provided is invalid",
            ),
            (
                tagging_xml(("k", "v" * 257)),
                "InvalidTag",
                "The TagValue you have provided is invalid",
            ),
            (
                tagging_xml(("a", "1"), ("a", "2")),
                "InvalidTag",
                "Cannot provide multiple Tags with the same key",
            ),
            (
                tagging_xml(("aws:x", "1")),
                "InvalidTag",
                "Your TagKey cannot be prefixed with aws:",
            ),
            (
                tagging_xml(*((f"k{i}", "v") for i in range(11))),
                "InvalidTag",
                "Object tags cannot be greater than 10",
            ),
        ]
        for body, code, message in cases:
            self.assertRefused(self.put_tags(body), code, message)
        # nothing was stored
        got = self.s3.request("GET", "/bkt/k?tagging")
        self.assertIn(b"<TagSet></TagSet>", got.body.replace(b"<TagSet />", b"<TagSet></TagSet>"))

    def test_the_largest_valid_set(self) -> None:
        pairs = [("é" * 128, "ü" * 256)] + [(f"k{i}", "") for i in range(9)]
        got = self.put_tags(tagging_xml(*pairs))
        self.assertEqual(got.status, 200, got.body)
        head = self.s3.request("HEAD", "/bkt/k")
        self.assertEqual(head.header("x-amz-tagging-count"), "10")

    def test_malformed(self) -> None:
        for body in (
            b"<notxml",
            b"<Other><TagSet/></Other>",
            b"<Tagging></Tagging>",
            b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
            b"<Tagging><TagSet><Nope/></TagSet></Tagging>",
        ):
            self.assertRefused(self.put_tags(body), "MalformedXML")

    def test_header_limits(self) -> None:
        got = self.s3.request("PUT", "/bkt/h", b"x", {"x-amz-tagging": "aws%3Ax=1"})
        self.assertRefused(got, "InvalidTag", "Your TagKey cannot be prefixed with aws:")
        self.assertEqual(self.s3.request("HEAD", "/bkt/h").status, 404)
        got = self.s3.request("PUT", "/bkt/h", b"x", {"x-amz-tagging": "a=1&a=2"})
        self.assertRefused(got, "InvalidTag")
        got = self.s3.request("POST", "/bkt/m?uploads", headers={"x-amz-tagging": "aws:k=v"})
        self.assertRefused(got, "InvalidTag")
        eleven = "&".join(f"k{i}=v" for i in range(11))
        for method, target in (("PUT", "/bkt/h"), ("POST", "/bkt/m?uploads")):
            got = self.s3.request(
                method, target, b"x" if method == "PUT" else b"", {"x-amz-tagging": eleven}
            )
            self.assertRefused(got, "InvalidTag", "Object tags cannot be greater than 10")
        self.assertEqual(self.s3.request("HEAD", "/bkt/h").status, 404)

    def test_a_tag_without_a_value_in_the_header(self) -> None:
        """``foo=bar&bar``: ``bar`` is a tag whose value is empty (s3-tests, AWS)."""
        got = self.s3.request("PUT", "/bkt/v", b"x", {"x-amz-tagging": "foo=bar&bar"})
        self.assertEqual(got.status, 200, got.body)
        tags = self.s3.request("GET", "/bkt/v?tagging").body
        self.assertIn(
            b"<TagSet><Tag><Key>bar</Key><Value></Value></Tag>"
            b"<Tag><Key>foo</Key><Value>bar</Value></Tag></TagSet>",
            tags.replace(b"<Value />", b"<Value></Value>"),
        )

    def test_tag_sets_are_listed_in_key_order(self) -> None:
        """AWS promises no order; ours is the keys' (UTF-8 byte) order, however they were set."""
        pairs = [("zeta", "1"), ("Alpha", "2"), ("é", "3"), ("alpha", "4"), ("a b", "5")]
        listed = [b"a b", b"Alpha", b"alpha", b"zeta", "é".encode()]
        self.assertEqual(self.put_tags(tagging_xml(*pairs)).status, 200)
        self.assertEqual(self.put_tags(tagging_xml(*pairs), "/bkt?tagging").status, 204)
        for target in ("/bkt/k?tagging", "/bkt?tagging"):
            body = self.s3.request("GET", target).body
            keys = [
                body[m.end() : body.index(b"</Key>", m.end())] for m in re.finditer(b"<Key>", body)
            ]
            self.assertEqual(keys, sorted(listed), target)
            self.assertEqual(keys, [b"Alpha", b"a b", b"alpha", b"zeta", "é".encode()])

    def test_copy_directive(self) -> None:
        got = self.s3.request(
            "PUT",
            "/bkt/c",
            headers={"x-amz-copy-source": "/bkt/k", "x-amz-tagging-directive": "MERGE"},
        )
        self.assertRefused(got, "InvalidArgument")

    def test_bucket_limits(self) -> None:
        many = tagging_xml(*((f"k{i}", "v") for i in range(51)))
        got = self.put_tags(many, "/bkt?tagging")
        self.assertRefused(got, "InvalidTag", "Bucket tag count cannot be greater than 50")
        got = self.put_tags(tagging_xml(("aws:k", "v")), "/bkt?tagging")
        self.assertRefused(got, "InvalidTag")
        fifty = tagging_xml(*((f"k{i}", "v") for i in range(50)))
        self.assertEqual(self.put_tags(fifty, "/bkt?tagging").status, 204)
        self.assertEqual(self.s3.request("GET", "/bkt?tagging").body.count(b"<Tag>"), 50)

    def test_missing_things(self) -> None:
        got = self.put_tags(tagging_xml(("a", "1")), "/bkt/nope?tagging")
        self.assertEqual((got.status, got.code()), (404, "NoSuchKey"))
        got = self.s3.request("DELETE", "/nobkt?tagging")
        self.assertEqual((got.status, got.code()), (404, "NoSuchBucket"))
        got = self.s3.request("GET", "/bkt/k?tagging&versionId=" + quote("nope"))
        self.assertEqual((got.status, got.code()), (400, "InvalidArgument"))
        got = self.s3.request("GET", "/bkt/k?tagging&versionId=" + "0" * 32)
        self.assertEqual(got.status, 404)


class TaggingApiTests(S3TestCase):
    async def setup_bucket(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="bkt")

    async def tags(self, **kwargs: Any) -> dict[str, str]:
        got = await self.call(self.s3.get_object_tagging, Bucket="bkt", **kwargs)
        return {t["Key"]: t["Value"] for t in got["TagSet"]}

    async def test_object_tagging(self) -> None:
        await self.setup_bucket()
        await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"data")
        self.assertEqual(await self.tags(Key="k"), {})
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="k")
        self.assertNotIn("x-amz-tagging-count", head["ResponseMetadata"]["HTTPHeaders"])
        put = await self.call(
            self.s3.put_object_tagging,
            Bucket="bkt",
            Key="k",
            Tagging={"TagSet": [{"Key": "a b", "Value": "1&2"}, {"Key": "c", "Value": ""}]},
        )
        self.assertEqual(put["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertNotIn("VersionId", put)
        self.assertEqual(await self.tags(Key="k"), {"a b": "1&2", "c": ""})
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="k")
        self.assertEqual((got["Data"], got["TagCount"]), (b"data", 2))
        deleted = await self.call(self.s3.delete_object_tagging, Bucket="bkt", Key="k")
        self.assertEqual(deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertEqual(await self.tags(Key="k"), {})
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="k")
        self.assertNotIn("TagCount", head)
        e = await self.client_error(self.s3.get_object_tagging, Bucket="bkt", Key="nope")
        self.assertEqual(error_code(e), "NoSuchKey")

    async def test_boto3_sees_aws_answers(self) -> None:
        """A key without ``=`` is a tag with an empty value; tags come in key order;
        eleven tags are ``InvalidTag`` and change nothing."""
        await self.setup_bucket()
        await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"x", Tagging="foo=bar&bar")
        got = await self.call(self.s3.get_object_tagging, Bucket="bkt", Key="k")
        self.assertEqual(
            got["TagSet"], [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}]
        )
        eleven = {"TagSet": [{"Key": str(i), "Value": str(i)} for i in range(11)]}
        e = await self.client_error(
            self.s3.put_object_tagging, Bucket="bkt", Key="k", Tagging=eleven
        )
        self.assertEqual(
            (error_code(e), e.response["ResponseMetadata"]["HTTPStatusCode"]), ("InvalidTag", 400)
        )
        self.assertEqual(await self.tags(Key="k"), {"bar": "", "foo": "bar"})

    async def test_tagging_header_on_put(self) -> None:
        await self.setup_bucket()
        await self.call(
            self.s3.put_object, Bucket="bkt", Key="k", Body=b"x", Tagging="a=1&b%20c=d%26e&empty="
        )
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="k")
        self.assertEqual(head["TagCount"], 3)
        self.assertEqual(await self.tags(Key="k"), {"a": "1", "b c": "d&e", "empty": ""})
        # a new PUT without the header makes an untagged version
        await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"y")
        self.assertEqual(await self.tags(Key="k"), {})

    async def test_copy(self) -> None:
        await self.setup_bucket()
        await self.call(self.s3.put_object, Bucket="bkt", Key="src", Body=b"x", Tagging="a=1")
        source = {"Bucket": "bkt", "Key": "src"}
        await self.call(self.s3.copy_object, Bucket="bkt", Key="copied", CopySource=source)
        self.assertEqual(await self.tags(Key="copied"), {"a": "1"})
        await self.call(
            self.s3.copy_object,
            Bucket="bkt",
            Key="copied2",
            CopySource=source,
            MetadataDirective="REPLACE",
        )
        self.assertEqual(await self.tags(Key="copied2"), {"a": "1"})
        await self.call(
            self.s3.copy_object,
            Bucket="bkt",
            Key="replaced",
            CopySource=source,
            Tagging="x=y&z=",
            TaggingDirective="REPLACE",
        )
        self.assertEqual(await self.tags(Key="replaced"), {"x": "y", "z": ""})
        await self.call(
            self.s3.copy_object,
            Bucket="bkt",
            Key="cleared",
            CopySource=source,
            TaggingDirective="REPLACE",
        )
        self.assertEqual(await self.tags(Key="cleared"), {})
        self.assertEqual(await self.tags(Key="src"), {"a": "1"})

    async def test_versioned(self) -> None:
        await self.setup_bucket()
        await self.call(
            self.s3.put_bucket_versioning,
            Bucket="bkt",
            VersioningConfiguration={"Status": "Enabled"},
        )
        v1 = (await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"1", Tagging="v=1"))[
            "VersionId"
        ]
        v2 = (await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"2"))["VersionId"]
        put = await self.call(
            self.s3.put_object_tagging,
            Bucket="bkt",
            Key="k",
            VersionId=v1,
            Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]},
        )
        self.assertEqual(put["VersionId"], v1)
        got = await self.call(self.s3.get_object_tagging, Bucket="bkt", Key="k", VersionId=v1)
        self.assertEqual((got["VersionId"], got["TagSet"]), (v1, [{"Key": "old", "Value": "yes"}]))
        current = await self.call(self.s3.get_object_tagging, Bucket="bkt", Key="k")
        self.assertEqual((current["VersionId"], current["TagSet"]), (v2, []))
        put = await self.call(
            self.s3.put_object_tagging,
            Bucket="bkt",
            Key="k",
            Tagging={"TagSet": [{"Key": "new", "Value": "1"}]},
        )
        self.assertEqual(put["VersionId"], v2)
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="k", VersionId=v1)
        self.assertEqual(head["TagCount"], 1)
        deleted = await self.call(
            self.s3.delete_object_tagging, Bucket="bkt", Key="k", VersionId=v1
        )
        self.assertEqual(deleted["VersionId"], v1)
        self.assertEqual(await self.tags(Key="k", VersionId=v1), {})
        self.assertEqual(await self.tags(Key="k", VersionId=v2), {"new": "1"})
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="k", VersionId=v1)
        self.assertEqual(got["Data"], b"1")
        e = await self.client_error(
            self.s3.get_object_tagging, Bucket="bkt", Key="k", VersionId="nope"
        )
        self.assertEqual(error_code(e), "InvalidArgument")
        e = await self.client_error(
            self.s3.get_object_tagging, Bucket="bkt", Key="k", VersionId="0" * 32
        )
        self.assertEqual(error_code(e), "NoSuchVersion")

    async def test_multipart_tagging_header(self) -> None:
        await self.setup_bucket()
        upload = await self.call(
            self.s3.create_multipart_upload, Bucket="bkt", Key="mp", Tagging="a=1&b=2"
        )
        part = await self.call(
            self.s3.upload_part,
            Bucket="bkt",
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"abc",
        )
        await self.call(
            self.s3.complete_multipart_upload,
            Bucket="bkt",
            Key="mp",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        self.assertEqual(await self.tags(Key="mp"), {"a": "1", "b": "2"})

    async def test_bucket_tagging(self) -> None:
        await self.setup_bucket()
        e = await self.client_error(self.s3.get_bucket_tagging, Bucket="bkt")
        self.assertEqual(error_code(e), "NoSuchTagSet")
        put = await self.call(
            self.s3.put_bucket_tagging,
            Bucket="bkt",
            Tagging={"TagSet": [{"Key": "team", "Value": "storage"}, {"Key": "e", "Value": ""}]},
        )
        self.assertEqual(put["ResponseMetadata"]["HTTPStatusCode"], 204)
        got = await self.call(self.s3.get_bucket_tagging, Bucket="bkt")
        # in the order of the keys, not as sent (AWS promises no order)
        self.assertEqual(
            got["TagSet"], [{"Key": "e", "Value": ""}, {"Key": "team", "Value": "storage"}]
        )
        deleted = await self.call(self.s3.delete_bucket_tagging, Bucket="bkt")
        self.assertEqual(deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        e = await self.client_error(self.s3.get_bucket_tagging, Bucket="bkt")
        self.assertEqual(error_code(e), "NoSuchTagSet")
        e = await self.client_error(
            self.s3.put_bucket_tagging,
            Bucket="bkt",
            Tagging={"TagSet": [{"Key": "aws:x", "Value": "1"}]},
        )
        self.assertEqual(error_code(e), "InvalidTag")
        # the bucket can still be deleted (its configuration goes with it)
        await self.call(
            self.s3.put_bucket_tagging,
            Bucket="bkt",
            Tagging={"TagSet": [{"Key": "k", "Value": "v"}]},
        )
        await self.call(self.s3.delete_bucket, Bucket="bkt")
