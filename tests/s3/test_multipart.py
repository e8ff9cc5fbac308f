"""Multipart uploads through the S3 API, against a real server in this process.

Strategy: the real stack runs on a loopback port (see :mod:`tests.s3.server`) and
boto3, in a thread, drives every multipart operation: create, upload and copy
parts, complete, abort, list. Most tests lower the engine's minimum part size so
that parts of a few kilobytes exercise the same paths as 5 MiB ones; the
``EntityTooSmall`` test keeps S3's real minimum. After each test that changes
data, fsck runs over the live store: reference counts recounted from every
version and every part must match the chunk index. Whether completion copies
data is checked by the size of the segment files, which must not grow. The
keep-alive of a slow Complete is checked on the wire with a completion that the
test delays on purpose.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from botocore.exceptions import ClientError
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from s4d.s3.handlers import multipart as handlers
from s4d.store import fsck
from s4d.util import checksums as ck
from tests.s3.test_api import S3TestCase, error_code, read_object

KIB = 1024
MIB = 1 << 20


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


class MultipartTestCase(S3TestCase):
    """A bucket ``bkt`` and a small minimum part size."""

    min_part_size = 1 * KIB

    def setUp(self) -> Any:
        super().setUp()
        self.server.engine.multipart.min_part_size = self.min_part_size
        return self.call(self.s3.create_bucket, Bucket="bkt")

    def segment_bytes(self) -> int:
        directory = self.server.store.segments.directory
        return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))

    def assert_clean(self) -> None:
        report = fsck.check_store(self.server.store)
        self.assertEqual(report.problems, [], report.render())

    def upload(
        self, key: str, parts: list[bytes], **create: Any
    ) -> tuple[str, list[dict[str, Any]]]:
        """Create an upload and upload ``parts`` (blocking: call in a thread)."""
        uid = self.s3.create_multipart_upload(Bucket="bkt", Key=key, **create)["UploadId"]
        done = []
        for n, data in enumerate(parts, 1):
            got = self.s3.upload_part(Bucket="bkt", Key=key, UploadId=uid, PartNumber=n, Body=data)
            done.append({"PartNumber": n, "ETag": got["ETag"]})
        return uid, done

    def complete(self, key: str, uid: str, parts: list[dict[str, Any]], **kw: Any) -> Any:
        return self.s3.complete_multipart_upload(
            Bucket="bkt", Key=key, UploadId=uid, MultipartUpload={"Parts": parts}, **kw
        )


class RoundTripTests(MultipartTestCase):
    async def test_upload_complete_read_back(self) -> None:
        parts = [os.urandom(5000), os.urandom(7000), os.urandom(300)]
        uid, done = await self.call(
            self.upload,
            "dir/obj",
            parts,
            ContentType="text/x-mp",
            Metadata={"Color": "blue"},
            CacheControl="no-cache",
        )
        self.assertEqual(done[0]["ETag"], f'"{md5_hex(parts[0])}"')
        result = await self.call(self.complete, "dir/obj", uid, done)
        self.assertEqual(result["ETag"], multipart_etag(parts))
        self.assertEqual((result["Bucket"], result["Key"]), ("bkt", "dir/obj"))
        self.assertTrue(result["Location"].endswith("/bkt/dir/obj"))
        whole = b"".join(parts)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="dir/obj")
        self.assertEqual(got["Data"], whole)
        self.assertEqual(got["ETag"], multipart_etag(parts))
        self.assertEqual(got["ContentType"], "text/x-mp")
        self.assertEqual(got["Metadata"], {"color": "blue"})
        self.assertEqual(got["CacheControl"], "no-cache")
        listed = await self.call(self.s3.list_objects_v2, Bucket="bkt")
        self.assertEqual(listed["Contents"][0]["ETag"], multipart_etag(parts))
        self.assertEqual(listed["Contents"][0]["Size"], len(whole))
        # The upload is gone once complete.
        uploads = await self.call(self.s3.list_multipart_uploads, Bucket="bkt")
        self.assertNotIn("Uploads", uploads)
        self.assert_clean()

    async def test_part_number_reads_and_ranges_across_parts(self) -> None:
        parts = [os.urandom(3000), os.urandom(4000), os.urandom(2500)]
        uid, done = await self.call(self.upload, "p", parts)
        await self.call(self.complete, "p", uid, done)
        for n, data in enumerate(parts, 1):
            got = await self.call(read_object, self.s3, Bucket="bkt", Key="p", PartNumber=n)
            self.assertEqual(got["Data"], data)
            self.assertEqual(got["PartsCount"], 3)
            self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206)
            start = sum(len(p) for p in parts[: n - 1])
            self.assertEqual(
                got["ContentRange"], f"bytes {start}-{start + len(data) - 1}/{sum(map(len, parts))}"
            )
            head = await self.call(self.s3.head_object, Bucket="bkt", Key="p", PartNumber=n)
            self.assertEqual(head["ContentLength"], len(data))
            self.assertEqual(head["PartsCount"], 3)
        e = await self.client_error(read_object, self.s3, Bucket="bkt", Key="p", PartNumber=4)
        self.assertEqual(error_code(e), "InvalidPart")
        whole = b"".join(parts)
        for first, last in ((2990, 3010), (0, 9499), (2999, 7000), (6999, 7001), (100, 9000)):
            got = await self.call(
                read_object, self.s3, Bucket="bkt", Key="p", Range=f"bytes={first}-{last}"
            )
            self.assertEqual(got["Data"], whole[first : last + 1], (first, last))

    async def test_parts_span_chunks(self) -> None:
        """Parts larger than a chunk (4 MiB) and a range across a part and a chunk boundary."""
        parts = [os.urandom(5 * MIB), os.urandom(6 * MIB + 7)]
        uid, done = await self.call(self.upload, "big", parts)
        await self.call(self.complete, "big", uid, done)
        whole = b"".join(parts)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="big")
        self.assertEqual(hashlib.sha256(got["Data"]).digest(), hashlib.sha256(whole).digest())
        got = await self.call(
            read_object, self.s3, Bucket="bkt", Key="big", Range="bytes=4194000-9437300"
        )
        self.assertEqual(got["Data"], whole[4194000:9437301])
        self.assert_clean()

    async def test_replace_part_and_release_unnamed(self) -> None:
        one, two, three = os.urandom(2000), os.urandom(2000), os.urandom(2000)
        uid, done = await self.call(self.upload, "r", [one, two, three])
        newer = os.urandom(2100)
        got = await self.call(
            self.s3.upload_part, Bucket="bkt", Key="r", UploadId=uid, PartNumber=1, Body=newer
        )
        listed = await self.call(self.s3.list_parts, Bucket="bkt", Key="r", UploadId=uid)
        self.assertEqual([p["PartNumber"] for p in listed["Parts"]], [1, 2, 3])
        self.assertEqual(listed["Parts"][0]["ETag"], got["ETag"])
        self.assertEqual(listed["Parts"][0]["Size"], 2100)
        # The replaced part's ETag no longer completes.
        e = await self.client_error(self.complete, "r", uid, done)
        self.assertEqual(error_code(e), "InvalidPart")
        await self.call(
            self.complete,
            "r",
            uid,
            [{"PartNumber": 1, "ETag": got["ETag"]}, done[2]],
        )
        data = (await self.call(read_object, self.s3, Bucket="bkt", Key="r"))["Data"]
        self.assertEqual(data, newer + three)
        self.assert_clean()
        # Part two and the first part one hold no references any more.
        report = fsck.check_store(self.server.store)
        self.assertEqual(report.stats.chunk_refs, 2)

    async def test_empty_and_single_part(self) -> None:
        uid, done = await self.call(self.upload, "e", [b""])
        result = await self.call(self.complete, "e", uid, done)
        self.assertEqual(result["ETag"], multipart_etag([b""]))
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="e")
        self.assertEqual(got["Data"], b"")

    async def test_versioned_bucket(self) -> None:
        await self.call(
            self.s3.put_bucket_versioning,
            Bucket="bkt",
            VersioningConfiguration={"Status": "Enabled"},
        )
        uid, done = await self.call(self.upload, "v", [b"a" * 1500, b"b"])
        result = await self.call(self.complete, "v", uid, done)
        self.assertTrue(result["VersionId"])
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="v")
        self.assertEqual(head["VersionId"], result["VersionId"])

    async def test_complete_conditional_write(self) -> None:
        await self.call(self.s3.put_object, Bucket="bkt", Key="c", Body=b"there")
        uid, done = await self.call(self.upload, "c", [b"x" * 10])
        e = await self.client_error(self.complete, "c", uid, done, IfNoneMatch="*")
        self.assertEqual(error_code(e), "PreconditionFailed")
        # A refused completion leaves the upload in place.
        await self.call(self.complete, "c", uid, done)

    async def test_delete_bucket_aborts_uploads(self) -> None:
        await self.call(self.upload, "gone", [b"q" * 100])
        await self.call(self.s3.delete_bucket, Bucket="bkt")
        self.assert_clean()
        self.assertEqual(fsck.check_store(self.server.store).stats.uploads, 0)

    async def test_create_captures_headers(self) -> None:
        created = await self.call(
            self.s3.create_multipart_upload,
            Bucket="bkt",
            Key="h",
            ContentType="a/b",
            StorageClass="STANDARD_IA",
            Tagging="k=v",
            ChecksumAlgorithm="SHA256",
            ContentDisposition="inline",
            Metadata={"m": "1"},
        )
        self.assertEqual(created["ChecksumAlgorithm"], "SHA256")
        uid = created["UploadId"]
        with self.server.store.read() as t:
            bucket = t.buckets.require("bkt")
            upload = t.multipart.upload(bucket.bucket_id, b"h", uid)
        assert upload is not None
        self.assertEqual(upload.content_type, "a/b")
        self.assertEqual(upload.storage_class, "STANDARD_IA")
        self.assertEqual(upload.metadata, {"m": "1"})
        self.assertEqual(upload.headers, {"content-disposition": "inline"})
        self.assertEqual(upload.extra["tagging"], "k=v")
        self.assertEqual(upload.checksum_algorithm, "SHA256")
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt")
        self.assertEqual(listed["Uploads"][0]["StorageClass"], "STANDARD_IA")


class ValidationTests(MultipartTestCase):
    async def test_invalid_part_and_order(self) -> None:
        uid, done = await self.call(self.upload, "k", [b"1" * 2000, b"2" * 2000, b"3"])
        e = await self.client_error(
            self.complete, "k", uid, [done[0], {"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}]
        )
        self.assertEqual(error_code(e), "InvalidPart")
        e = await self.client_error(
            self.complete, "k", uid, [*done, {"PartNumber": 9, "ETag": done[0]["ETag"]}]
        )
        self.assertEqual(error_code(e), "InvalidPart")
        e = await self.client_error(self.complete, "k", uid, [done[1], done[0]])
        self.assertEqual(error_code(e), "InvalidPartOrder")
        e = await self.client_error(self.complete, "k", uid, [done[0], done[1], done[0]])
        self.assertEqual(error_code(e), "InvalidPartOrder")
        # ETags are accepted with or without quotes.
        unquoted = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"].strip('"')} for p in done]
        await self.call(self.complete, "k", uid, unquoted)

    async def test_no_such_upload(self) -> None:
        bogus = "0" * 32
        for f, kw in (
            (self.s3.upload_part, {"PartNumber": 1, "Body": b"x"}),
            (self.s3.list_parts, {}),
            (self.s3.abort_multipart_upload, {}),
            (
                self.s3.complete_multipart_upload,
                {"MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}},
            ),
        ):
            for uid in (bogus, "not-an-id"):
                e = await self.client_error(f, Bucket="bkt", Key="k", UploadId=uid, **kw)
                self.assertEqual(error_code(e), "NoSuchUpload", f)
                self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)
        # An upload id is bound to its key.
        uid, done = await self.call(self.upload, "k", [b"z"])
        e = await self.client_error(self.complete, "other", uid, done)
        self.assertEqual(error_code(e), "NoSuchUpload")
        self.assert_clean()

    async def test_abort(self) -> None:
        before = fsck.check_store(self.server.store).stats.chunk_refs
        uid, done = await self.call(self.upload, "a", [os.urandom(3000), os.urandom(10)])
        await self.call(self.s3.abort_multipart_upload, Bucket="bkt", Key="a", UploadId=uid)
        e = await self.client_error(self.complete, "a", uid, done)
        self.assertEqual(error_code(e), "NoSuchUpload")
        e = await self.client_error(
            self.s3.abort_multipart_upload, Bucket="bkt", Key="a", UploadId=uid
        )
        self.assertEqual(error_code(e), "NoSuchUpload")
        e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="a")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)
        self.assert_clean()
        self.assertEqual(fsck.check_store(self.server.store).stats.chunk_refs, before)

    async def test_bad_part_numbers(self) -> None:
        uid = (await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="n"))["UploadId"]
        for number in ("0", "10001", "x"):
            status, _, body = await self.raw(
                "PUT", "/bkt/n", query=[("partNumber", number), ("uploadId", uid)], body=b"abc"
            )
            self.assertEqual(status, 400, number)
            self.assertIn(b"InvalidArgument", body)
        self.assert_clean()

    async def test_malformed_complete(self) -> None:
        uid = (await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="m"))["UploadId"]
        for body in (
            b"<nope",
            b"<CompleteMultipartUpload/>",
            b"<Other/>",
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber>"
            b"<ETag>a</ETag></Part></CompleteMultipartUpload>",
        ):
            status, _, answer = await self.raw(
                "POST", "/bkt/m", query=[("uploadId", uid)], body=body
            )
            self.assertEqual(status, 400, body)
            self.assertIn(b"MalformedXML", answer)


class EntityTooSmallTests(MultipartTestCase):
    min_part_size = 5 * MIB

    async def test_small_parts_refused_except_last(self) -> None:
        uid, done = await self.call(self.upload, "s", [os.urandom(5 * MIB - 1), b"tail"])
        e = await self.client_error(self.complete, "s", uid, done)
        self.assertEqual(error_code(e), "EntityTooSmall")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        # One small part alone is fine (it is the last), and so is 5 MiB then small.
        await self.call(self.complete, "s", uid, done[1:])
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="s")
        self.assertEqual(got["Data"], b"tail")
        self.assert_clean()


class ListingTests(MultipartTestCase):
    async def test_list_parts_pagination(self) -> None:
        parts = [bytes([n]) * (1000 + n) for n in range(1, 6)]
        uid, done = await self.call(self.upload, "lp", parts)
        page = await self.call(self.s3.list_parts, Bucket="bkt", Key="lp", UploadId=uid, MaxParts=2)
        self.assertEqual([p["PartNumber"] for p in page["Parts"]], [1, 2])
        self.assertTrue(page["IsTruncated"])
        self.assertEqual(page["NextPartNumberMarker"], 2)
        page = await self.call(
            self.s3.list_parts, Bucket="bkt", Key="lp", UploadId=uid, MaxParts=2, PartNumberMarker=2
        )
        self.assertEqual([p["PartNumber"] for p in page["Parts"]], [3, 4])
        page = await self.call(
            self.s3.list_parts, Bucket="bkt", Key="lp", UploadId=uid, PartNumberMarker=4
        )
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in page["Parts"]], [(5, 1005)])
        self.assertFalse(page["IsTruncated"])
        self.assertEqual(page["Parts"][0]["ETag"], done[4]["ETag"])
        paginator = self.s3.get_paginator("list_parts")

        def all_parts() -> list[int]:
            pages = paginator.paginate(
                Bucket="bkt", Key="lp", UploadId=uid, PaginationConfig={"PageSize": 2}
            )
            return [p["PartNumber"] for page in pages for p in page.get("Parts", [])]

        self.assertEqual(await self.call(all_parts), [1, 2, 3, 4, 5])

    async def test_list_uploads(self) -> None:
        keys = ["a", "a", "b/1", "b/2", "b/2", "c", "d/x/y"]
        ids: list[tuple[str, str]] = []
        for key in keys:
            created = await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key=key)
            ids.append((key, created["UploadId"]))
        expected = sorted(ids, key=lambda p: (p[0].encode(), p[1]))
        self.assertEqual(ids, expected)  # upload ids grow, so ties sort by age
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt")
        self.assertEqual([(u["Key"], u["UploadId"]) for u in listed["Uploads"]], expected)
        self.assertFalse(listed["IsTruncated"])
        self.assertIn("Initiated", listed["Uploads"][0])
        # prefix and delimiter
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt", Delimiter="/")
        self.assertEqual([u["Key"] for u in listed["Uploads"]], ["a", "a", "c"])
        self.assertEqual([p["Prefix"] for p in listed["CommonPrefixes"]], ["b/", "d/"])
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt", Prefix="b/")
        self.assertEqual([u["Key"] for u in listed["Uploads"]], ["b/1", "b/2", "b/2"])
        # markers
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt", KeyMarker="b/1")
        self.assertEqual([u["Key"] for u in listed["Uploads"]], ["b/2", "b/2", "c", "d/x/y"])
        listed = await self.call(
            self.s3.list_multipart_uploads,
            Bucket="bkt",
            KeyMarker="b/2",
            UploadIdMarker=expected[3][1],
        )
        self.assertEqual([(u["Key"], u["UploadId"]) for u in listed["Uploads"]], expected[4:])
        # pages of two, through boto3's paginator (NextKeyMarker + NextUploadIdMarker)
        paginator = self.s3.get_paginator("list_multipart_uploads")

        def all_uploads(**kw: Any) -> tuple[list[tuple[str, str]], list[str]]:
            uploads, prefixes = [], []
            for page in paginator.paginate(Bucket="bkt", PaginationConfig={"PageSize": 2}, **kw):
                uploads += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
                prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            return uploads, prefixes

        self.assertEqual(await self.call(all_uploads), (expected, []))
        uploads, prefixes = await self.call(all_uploads, Delimiter="/")
        self.assertEqual(([k for k, _ in uploads], prefixes), (["a", "a", "c"], ["b/", "d/"]))
        page = await self.call(self.s3.list_multipart_uploads, Bucket="bkt", MaxUploads=3)
        self.assertTrue(page["IsTruncated"])
        self.assertEqual((page["NextKeyMarker"], page["NextUploadIdMarker"]), expected[2])

    async def test_list_uploads_long_keys(self) -> None:
        """Keys past the index's 400-byte cut still list in key order."""
        base = "L" * 420
        keys = [base + "b", base + "a", base[:399], base[:400], base + "a/x", "M", base[:390] + "Z"]
        ids = []
        for key in keys:
            created = await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key=key)
            ids.append((key, created["UploadId"]))
        expected = sorted(ids, key=lambda p: (p[0].encode(), p[1]))
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt")
        self.assertEqual([(u["Key"], u["UploadId"]) for u in listed["Uploads"]], expected)
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt", KeyMarker=base + "a")
        self.assertEqual(
            [u["Key"] for u in listed["Uploads"]], [base + "a/x", base + "b", base[:390] + "Z", "M"]
        )
        listed = await self.call(
            self.s3.list_multipart_uploads, Bucket="bkt", Prefix=base + "a", Delimiter="/"
        )
        self.assertEqual([u["Key"] for u in listed["Uploads"]], [base + "a"])
        self.assertEqual([p["Prefix"] for p in listed["CommonPrefixes"]], [base + "a/"])
        for key, uid in ids:
            await self.call(
                self.s3.upload_part,
                Bucket="bkt",
                Key=key,
                UploadId=uid,
                PartNumber=1,
                Body=key.encode(),
            )
            await self.call(self.s3.abort_multipart_upload, Bucket="bkt", Key=key, UploadId=uid)
        self.assert_clean()

    async def test_list_uploads_encoding(self) -> None:
        await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="sp ace+ü")
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt")
        self.assertEqual(listed["Uploads"][0]["Key"], "sp ace+ü")
        status, _, body = await self.raw(
            "GET", "/bkt", query=[("uploads", ""), ("encoding-type", "url")]
        )
        self.assertIn(b"<Key>sp%20ace%2B%C3%BC</Key>", body)
        self.assertIn(b"<EncodingType>url</EncodingType>", body)


class CopyPartTests(MultipartTestCase):
    async def test_copy_ranges_share_chunks(self) -> None:
        source = os.urandom(10 * MIB + 123)  # chunks of 4, 4 and 2 MiB
        await self.call(self.s3.put_object, Bucket="bkt", Key="src", Body=source)
        uid = (await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="dst"))[
            "UploadId"
        ]
        before = self.segment_bytes()
        aligned = await self.call(
            self.s3.upload_part_copy,
            Bucket="bkt",
            Key="dst",
            UploadId=uid,
            PartNumber=1,
            CopySource={"Bucket": "bkt", "Key": "src"},
            CopySourceRange=f"bytes=0-{8 * MIB - 1}",
        )
        self.assertEqual(aligned["CopyPartResult"]["ETag"], f'"{md5_hex(source[: 8 * MIB])}"')
        self.assertEqual(self.segment_bytes(), before)  # shared by reference: nothing written
        cut = await self.call(
            self.s3.upload_part_copy,
            Bucket="bkt",
            Key="dst",
            UploadId=uid,
            PartNumber=2,
            CopySource="bkt/src",
            CopySourceRange=f"bytes=1000-{9 * MIB}",
        )
        self.assertEqual(cut["CopyPartResult"]["ETag"], f'"{md5_hex(source[1000 : 9 * MIB + 1])}"')
        written = self.segment_bytes() - before
        self.assertLess(written, 6 * MIB)  # only the two re-cut edge chunks
        whole = await self.call(
            self.s3.upload_part_copy,
            Bucket="bkt",
            Key="dst",
            UploadId=uid,
            PartNumber=3,
            CopySource="bkt/src",
        )
        self.assertEqual(whole["CopyPartResult"]["ETag"], f'"{md5_hex(source)}"')
        parts = [
            {"PartNumber": 1, "ETag": aligned["CopyPartResult"]["ETag"]},
            {"PartNumber": 2, "ETag": cut["CopyPartResult"]["ETag"]},
            {"PartNumber": 3, "ETag": whole["CopyPartResult"]["ETag"]},
        ]
        result = await self.call(self.complete, "dst", uid, parts)
        pieces = [source[: 8 * MIB], source[1000 : 9 * MIB + 1], source]
        self.assertEqual(result["ETag"], multipart_etag(pieces))
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="dst")
        self.assertEqual(
            hashlib.sha256(got["Data"]).hexdigest(), hashlib.sha256(b"".join(pieces)).hexdigest()
        )
        self.assert_clean()
        # Deleting the source leaves the copy whole.
        await self.call(self.s3.delete_object, Bucket="bkt", Key="src")
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="dst", PartNumber=3)
        self.assertEqual(got["Data"], source)
        self.assert_clean()

    async def test_copy_conditions_and_errors(self) -> None:
        put = await self.call(self.s3.put_object, Bucket="bkt", Key="src", Body=b"0123456789")
        uid = (await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="dst"))[
            "UploadId"
        ]
        copy = self.s3.upload_part_copy
        base = {
            "Bucket": "bkt",
            "Key": "dst",
            "UploadId": uid,
            "PartNumber": 1,
            "CopySource": "bkt/src",
        }
        e = await self.client_error(copy, **base, CopySourceIfMatch='"nope"')
        self.assertEqual(error_code(e), "PreconditionFailed")
        e = await self.client_error(copy, **base, CopySourceIfNoneMatch=put["ETag"])
        self.assertEqual(error_code(e), "PreconditionFailed")
        # outside the 10-byte source: 416 InvalidRange (this asserted InvalidArgument before)
        e = await self.client_error(copy, **base, CopySourceRange="bytes=5-10")
        self.assertEqual(error_code(e), "InvalidRange")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 416)
        e = await self.client_error(copy, **base, CopySourceRange="bytes=5-4")
        self.assertEqual(error_code(e), "InvalidArgument")
        e = await self.client_error(copy, **base, CopySourceRange="bytes=x-1")
        self.assertEqual(error_code(e), "InvalidArgument")
        e = await self.client_error(copy, **{**base, "CopySource": "bkt/missing"})
        self.assertEqual(error_code(e), "NoSuchKey")
        e = await self.client_error(copy, **{**base, "UploadId": "f" * 32})
        self.assertEqual(error_code(e), "NoSuchUpload")
        got = await self.call(
            copy, **base, CopySourceIfMatch=put["ETag"], CopySourceRange="bytes=2-4"
        )
        self.assertEqual(got["CopyPartResult"]["ETag"], f'"{md5_hex(b"234")}"')
        self.assert_clean()

    async def test_copy_from_multipart_source(self) -> None:
        parts = [os.urandom(3000), os.urandom(1000)]
        uid, done = await self.call(self.upload, "src", parts)
        await self.call(self.complete, "src", uid, done)
        uid2 = (await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="dst"))[
            "UploadId"
        ]
        got = await self.call(
            self.s3.upload_part_copy,
            Bucket="bkt",
            Key="dst",
            UploadId=uid2,
            PartNumber=1,
            CopySource="bkt/src",
        )
        self.assertEqual(got["CopyPartResult"]["ETag"], f'"{md5_hex(b"".join(parts))}"')


class ChecksumTests(MultipartTestCase):
    async def test_composite_crc32(self) -> None:
        parts = [os.urandom(2000), os.urandom(999)]
        uid = (
            await self.call(
                self.s3.create_multipart_upload, Bucket="bkt", Key="c", ChecksumAlgorithm="CRC32"
            )
        )["UploadId"]
        done = []
        for n, data in enumerate(parts, 1):
            got = await self.call(
                self.s3.upload_part,
                Bucket="bkt",
                Key="c",
                UploadId=uid,
                PartNumber=n,
                Body=data,
                ChecksumAlgorithm="CRC32",
            )
            self.assertEqual(got["ChecksumCRC32"], ck.checksum_of("CRC32", data))
            done.append(
                {"PartNumber": n, "ETag": got["ETag"], "ChecksumCRC32": got["ChecksumCRC32"]}
            )
        listed = await self.call(self.s3.list_parts, Bucket="bkt", Key="c", UploadId=uid)
        self.assertEqual(listed["Parts"][0]["ChecksumCRC32"], done[0]["ChecksumCRC32"])
        bad = [dict(done[0], ChecksumCRC32=ck.checksum_of("CRC32", b"other")), done[1]]
        e = await self.client_error(self.complete, "c", uid, bad)
        self.assertEqual(error_code(e), "InvalidPart")
        result = await self.call(self.complete, "c", uid, done)
        want = ck.composite("CRC32", [p["ChecksumCRC32"] for p in done])
        self.assertEqual(result["ChecksumCRC32"], want)
        self.assertTrue(want.endswith("-2"))
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="c", ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumCRC32"], want)
        self.assertEqual(head["ChecksumType"], "COMPOSITE")
        plain = await self.call(self.s3.head_object, Bucket="bkt", Key="c")
        self.assertNotIn("ChecksumType", plain)
        # boto3 skips validating a composite checksum; the bytes are right.
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="c", ChecksumMode="ENABLED")
        self.assertEqual(got["Data"], b"".join(parts))

    async def test_full_object_crc64nvme(self) -> None:
        parts = [os.urandom(1500), os.urandom(2500)]
        whole = b"".join(parts)
        created = await self.call(
            self.s3.create_multipart_upload,
            Bucket="bkt",
            Key="f",
            ChecksumAlgorithm="CRC64NVME",
            ChecksumType="FULL_OBJECT",
        )
        self.assertEqual(created.get("ChecksumType"), "FULL_OBJECT")
        uid = created["UploadId"]
        done = []
        for n, data in enumerate(parts, 1):
            got = await self.call(
                self.s3.upload_part,
                Bucket="bkt",
                Key="f",
                UploadId=uid,
                PartNumber=n,
                Body=data,
                ChecksumAlgorithm="CRC64NVME",
            )
            done.append({"PartNumber": n, "ETag": got["ETag"]})
        full = ck.checksum_of("CRC64NVME", whole)
        e = await self.client_error(
            self.complete,
            "f",
            uid,
            done,
            ChecksumCRC64NVME=ck.checksum_of("CRC64NVME", b"x"),
            ChecksumType="FULL_OBJECT",
        )
        self.assertEqual(error_code(e), "BadDigest")
        result = await self.call(
            self.complete,
            "f",
            uid,
            done,
            ChecksumCRC64NVME=full,
            ChecksumType="FULL_OBJECT",
            MpuObjectSize=len(whole),
        )
        self.assertEqual(result["ChecksumCRC64NVME"], full)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="f", ChecksumMode="ENABLED")
        self.assertEqual(got["Data"], whole)
        self.assertEqual(got["ChecksumCRC64NVME"], full)
        self.assertEqual(got["ChecksumType"], "FULL_OBJECT")
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="f", ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumType"], "FULL_OBJECT")

    async def test_mismatched_part_checksum_algorithm(self) -> None:
        uid = (
            await self.call(
                self.s3.create_multipart_upload, Bucket="bkt", Key="m", ChecksumAlgorithm="SHA256"
            )
        )["UploadId"]
        e = await self.client_error(
            self.s3.upload_part,
            Bucket="bkt",
            Key="m",
            UploadId=uid,
            PartNumber=1,
            Body=b"x",
            ChecksumAlgorithm="CRC32",
        )
        self.assertEqual(error_code(e), "InvalidRequest")
        self.assert_clean()


class ManagedTransferTests(MultipartTestCase):
    min_part_size = 5 * MIB

    async def test_upload_fileobj_and_dedup(self) -> None:
        """boto3's managed upload (CRC32 by default), and parts that dedup against a PUT."""
        import io

        from boto3.s3.transfer import TransferConfig

        data = os.urandom(24 * MIB + 5)
        await self.call(self.s3.put_object, Bucket="bkt", Key="single", Body=data)
        before = self.segment_bytes()
        config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
        await self.call(self.s3.upload_fileobj, io.BytesIO(data), "bkt", "multi", Config=config)
        # 8 MiB parts fall on the 4 MiB chunk boundaries of the single PUT: nothing new stored.
        self.assertEqual(self.segment_bytes(), before)
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="multi")
        self.assertTrue(head["ETag"].endswith('-4"'))
        out = io.BytesIO()
        await self.call(self.s3.download_fileobj, "bkt", "multi", out)
        self.assertEqual(hashlib.sha256(out.getvalue()).digest(), hashlib.sha256(data).digest())
        self.assert_clean()


class ConcurrencyTests(MultipartTestCase):
    async def test_complete_and_abort_race(self) -> None:
        """Of a Complete and an Abort sent together, exactly one wins, every time."""
        for round_no in range(8):
            key = f"race{round_no}"
            uid, done = await self.call(self.upload, key, [os.urandom(1500), os.urandom(10)])
            outcomes: dict[str, Any] = {}
            barrier = threading.Barrier(2)

            def run(
                name: str,
                f: Any,
                outcomes: dict[str, Any] = outcomes,
                barrier: threading.Barrier = barrier,
                **kw: Any,
            ) -> None:
                barrier.wait()
                try:
                    f(**kw)
                    outcomes[name] = "ok"
                except ClientError as e:
                    outcomes[name] = error_code(e)

            completing = self.call(
                run,
                "complete",
                self.s3.complete_multipart_upload,
                Bucket="bkt",
                Key=key,
                UploadId=uid,
                MultipartUpload={"Parts": done},
            )
            aborting = self.call(
                run, "abort", self.s3.abort_multipart_upload, Bucket="bkt", Key=key, UploadId=uid
            )
            await completing
            await aborting
            self.assertEqual(sorted(outcomes.values()), ["NoSuchUpload", "ok"], outcomes)
            exists = True
            try:
                await self.call(self.s3.head_object, Bucket="bkt", Key=key)
            except ClientError:
                exists = False
            self.assertEqual(exists, outcomes["complete"] == "ok")
        self.assert_clean()

    async def test_parallel_part_uploads(self) -> None:
        uid = (await self.call(self.s3.create_multipart_upload, Bucket="bkt", Key="par"))[
            "UploadId"
        ]
        parts = [os.urandom(1024 + n) for n in range(12)]

        def put(n: int) -> dict[str, Any]:
            got = self.s3.upload_part(
                Bucket="bkt", Key="par", UploadId=uid, PartNumber=n + 1, Body=parts[n]
            )
            return {"PartNumber": n + 1, "ETag": got["ETag"]}

        done = [await d for d in [self.call(put, n) for n in range(12)]]
        await self.call(self.complete, "par", uid, done)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="par")
        self.assertEqual(got["Data"], b"".join(parts))


class KeepAliveTests(MultipartTestCase):
    """A slow Complete: 200 first, spaces, then the document (or an error in the body)."""

    def setUp(self) -> Any:
        d = super().setUp()
        self.patch(handlers, "KEEPALIVE_AFTER", 0.05)
        self.patch(handlers, "KEEPALIVE_EVERY", 0.05)
        engine = self.server.engine
        original = engine.multipart.complete

        def slow(*args: Any, **kwargs: Any) -> Deferred[Any]:
            result = original(*args, **kwargs)
            late: Deferred[Any] = deferLater(reactor, 0.3, lambda: None)
            return late.addCallback(lambda _: result)

        self.patch(engine.multipart, "complete", slow)
        return d

    def complete_body(self, parts: list[dict[str, Any]]) -> bytes:
        items = "".join(
            f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>"
            for p in parts
        )
        return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()

    async def test_slow_complete_streams_whitespace(self) -> None:
        parts = [os.urandom(2000), b"end"]
        uid, done = await self.call(self.upload, "slow", parts)
        status, headers, body = await self.raw(
            "POST", "/bkt/slow", query=[("uploadId", uid)], body=self.complete_body(done)
        )
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertTrue(body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n  '), body[:80])
        self.assertIn(b"<CompleteMultipartUploadResult", body)
        self.assertIn(multipart_etag(parts).replace('"', "&quot;").encode(), body)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="slow")
        self.assertEqual(got["Data"], b"".join(parts))

    async def test_slow_failure_is_an_error_document(self) -> None:
        uid, done = await self.call(self.upload, "slowbad", [b"x" * 10])
        wrong = [{"PartNumber": 1, "ETag": '"' + "1" * 32 + '"'}]
        status, _, body = await self.raw(
            "POST", "/bkt/slowbad", query=[("uploadId", uid)], body=self.complete_body(wrong)
        )
        self.assertEqual(status, 200)
        self.assertIn(b"<Error><Code>InvalidPart</Code>", body)
        # boto3 sees the error inside the 200 for what it is.
        e = await self.client_error(self.complete, "slowbad", uid, wrong)
        self.assertEqual(error_code(e), "InvalidPart")
        result = await self.call(self.complete, "slowbad", uid, done)
        self.assertEqual(result["ETag"], multipart_etag([b"x" * 10]))


class ExpiryTests(MultipartTestCase):
    async def test_expire_old_uploads(self) -> None:
        engine = self.server.engine
        uid_old, _ = await self.call(self.upload, "old", [os.urandom(2000)])
        clock = [engine.core.now_ns()]
        self.patch(engine.core, "now_ns", lambda: clock[0])
        clock[0] += 3600 * 10**9
        uid_new, _ = await self.call(self.upload, "new", [os.urandom(2000)])
        count = await engine.multipart.expire(1800 * 10**9)
        self.assertEqual(count, 1)
        listed = await self.call(self.s3.list_multipart_uploads, Bucket="bkt")
        self.assertEqual([u["UploadId"] for u in listed["Uploads"]], [uid_new])
        e = await self.client_error(self.s3.list_parts, Bucket="bkt", Key="old", UploadId=uid_old)
        self.assertEqual(error_code(e), "NoSuchUpload")
        self.assert_clean()
        report = fsck.check_store(self.server.store)
        self.assertEqual((report.stats.uploads, report.stats.parts), (1, 1))


class GetObjectAttributesTests(MultipartTestCase):
    """GetObjectAttributes through boto3: a single-part and a multipart object."""

    ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]

    async def test_single_part(self) -> None:
        data = os.urandom(3000)
        put = await self.call(
            self.s3.put_object, Bucket="bkt", Key="s", Body=data, ChecksumAlgorithm="CRC32"
        )
        got = await self.call(
            self.s3.get_object_attributes, Bucket="bkt", Key="s", ObjectAttributes=self.ALL
        )
        self.assertEqual(got["ETag"], put["ETag"].strip('"'))
        self.assertEqual(got["ObjectSize"], 3000)
        self.assertEqual(got["StorageClass"], "STANDARD")
        self.assertEqual(got["Checksum"]["ChecksumCRC32"], ck.checksum_of("CRC32", data))
        self.assertEqual(got["Checksum"]["ChecksumType"], "FULL_OBJECT")
        self.assertNotIn("ObjectParts", got)
        self.assertIn("LastModified", got)
        only = await self.call(
            self.s3.get_object_attributes, Bucket="bkt", Key="s", ObjectAttributes=["ObjectSize"]
        )
        self.assertEqual(only["ObjectSize"], 3000)
        self.assertNotIn("ETag", only)
        e = await self.client_error(
            self.s3.get_object_attributes, Bucket="bkt", Key="nope", ObjectAttributes=self.ALL
        )
        self.assertEqual(error_code(e), "NoSuchKey")

    async def test_multipart(self) -> None:
        parts = [os.urandom(2000), os.urandom(1500), os.urandom(10)]
        uid, done = await self.call(self.upload, "m", parts)
        result = await self.call(self.complete, "m", uid, done)
        got = await self.call(
            self.s3.get_object_attributes, Bucket="bkt", Key="m", ObjectAttributes=self.ALL
        )
        self.assertEqual(got["ETag"], result["ETag"].strip('"'))
        self.assertEqual(got["ObjectSize"], 3510)
        self.assertNotIn("Checksum", got)
        listed = got["ObjectParts"]
        self.assertEqual(listed["TotalPartsCount"], 3)
        self.assertFalse(listed["IsTruncated"])
        self.assertEqual(
            [(p["PartNumber"], p["Size"]) for p in listed["Parts"]],
            [(1, 2000), (2, 1500), (3, 10)],
        )
        page = await self.call(
            self.s3.get_object_attributes,
            Bucket="bkt",
            Key="m",
            ObjectAttributes=["ObjectParts"],
            MaxParts=1,
            PartNumberMarker=1,
        )
        listed = page["ObjectParts"]
        self.assertTrue(listed["IsTruncated"])
        self.assertEqual(listed["NextPartNumberMarker"], 2)
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in listed["Parts"]], [(2, 1500)])
