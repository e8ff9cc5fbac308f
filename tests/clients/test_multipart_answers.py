"""Multipart answers as boto3 sees them from a real s4d process.

Strategy: one ``twistd s4`` per class on a loopback port, driven by boto3 with
its default checksum settings. Each test is one defect that was found by trying
s4d with real clients (and the conformance suite), now a scenario:

* a retried CompleteMultipartUpload answers 200 with the first result (ETag,
  version id, checksum), even after the object changed; another part list is
  ``NoSuchUpload``;
* two uploads of one part number overlap; the one that finishes last is the
  part. The overlap is made exact, not left to timing: boto3 presigns both
  UploadPart requests, and the first is sent in two halves over a raw
  connection, the second whole in between;
* a part's own checksum on GET ``?partNumber=N`` (boto3 asks for checksum mode
  on GetObject by itself) and in GetObjectAttributes, and ``InvalidPart`` for a
  part number past the object's parts;
* with a multipart TTL of 2 seconds, a completed upload stops answering a
  retried Complete once the expiry job has passed.
"""

from __future__ import annotations

import http.client
import os
import time
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from tests.clients import checksums
from tests.clients.harness import ServerTestCase, boto3_client, payload

MIB = 1 << 20
#: checksums computed independently of the server
REFERENCE = {"SHA256": checksums.sha256, "CRC32": checksums.crc32}


def error_of(caught: Any) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a ClientError."""
    response = caught.exception.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


class MultipartAnswersTests(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        assert self.server is not None
        self.s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        self.bucket = self.bucket_name()
        self.s3.create_bucket(Bucket=self.bucket)

    def upload(self, key: str, parts: list[bytes], **create: Any) -> tuple[str, list[Any]]:
        uid = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, **create)["UploadId"]
        named = []
        for number, data in enumerate(parts, 1):
            got = self.s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=number, Body=data
            )
            named.append({"PartNumber": number, "ETag": got["ETag"]})
        return uid, named

    def complete(self, key: str, uid: str, parts: list[Any], **kw: Any) -> Any:
        return self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}, **kw
        )

    def test_retried_complete_answers_the_first_result(self) -> None:
        self.s3.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        parts = [payload(5 * MIB, seed=1), payload(1000, seed=2)]
        uid, named = self.upload("k", parts)
        first = self.complete("k", uid, named)
        self.s3.put_object(Bucket=self.bucket, Key="k", Body=b"overwritten")
        again = self.complete("k", uid, named)
        for field in ("ETag", "VersionId", "Bucket", "Key", "Location"):
            self.assertEqual(again[field], first[field], field)
        self.assertTrue(first["ETag"].endswith('-2"'), first["ETag"])
        got = self.s3.get_object(Bucket=self.bucket, Key="k", VersionId=first["VersionId"])
        self.assertEqual(got["Body"].read(), b"".join(parts))
        self.assertEqual(
            self.s3.get_object(Bucket=self.bucket, Key="k")["Body"].read(), b"overwritten"
        )
        versions = self.s3.list_object_versions(Bucket=self.bucket)["Versions"]
        self.assertEqual(len(versions), 2)
        with self.assertRaises(ClientError) as caught:
            self.complete("k", uid, named[:1])
        self.assertEqual(error_of(caught), (404, "NoSuchUpload"))

    def test_retried_complete_with_checksums(self) -> None:
        """The conformance suite's reupload case: ETag and composite SHA-256 both repeat."""
        parts = [payload(5 * MIB, seed=3), payload(5 * MIB, seed=4), payload(10, seed=5)]
        uid = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key="c", ChecksumAlgorithm="SHA256"
        )["UploadId"]
        named = []
        for number, data in enumerate(parts, 1):
            got = self.s3.upload_part(
                Bucket=self.bucket,
                Key="c",
                UploadId=uid,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="SHA256",
            )
            named.append(
                {"PartNumber": number, "ETag": got["ETag"], "ChecksumSHA256": got["ChecksumSHA256"]}
            )
        first = self.complete("c", uid, named)
        again = self.complete("c", uid, named, ChecksumSHA256=first["ChecksumSHA256"])
        self.assertEqual(
            (again["ETag"], again["ChecksumSHA256"]), (first["ETag"], first["ChecksumSHA256"])
        )
        self.assertEqual(again["ChecksumType"], "COMPOSITE")
        self.assertTrue(first["ChecksumSHA256"].endswith("-3"))

    def test_same_part_number_twice_the_later_finisher_wins(self) -> None:
        uid = self.s3.create_multipart_upload(Bucket=self.bucket, Key="p")["UploadId"]
        params = {"Bucket": self.bucket, "Key": "p", "UploadId": uid, "PartNumber": 1}
        early, late = payload(3 * MIB, seed=6), payload(3 * MIB, seed=7)
        # the first upload starts, and is still sending when the second one finishes
        url = urlsplit(self.s3.generate_presigned_url("upload_part", Params=params))
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(early)))
        conn.endheaders()
        conn.send(early[: len(early) // 2])
        late_etag = self.s3.upload_part(Body=late, **params)["ETag"]
        conn.send(early[len(early) // 2 :])
        response = conn.getresponse()
        response.read()
        conn.close()
        self.assertEqual(response.status, 200)
        early_etag = response.getheader("ETag")
        listed = self.s3.list_parts(Bucket=self.bucket, Key="p", UploadId=uid)["Parts"]
        self.assertEqual([(p["PartNumber"], p["ETag"]) for p in listed], [(1, early_etag)])
        with self.assertRaises(ClientError) as caught:
            self.complete("p", uid, [{"PartNumber": 1, "ETag": late_etag}])
        self.assertEqual(error_of(caught), (400, "InvalidPart"))
        # both answers, in the order they came: the later entry counts
        both = [{"PartNumber": 1, "ETag": late_etag}, {"PartNumber": 1, "ETag": early_etag}]
        done = self.complete("p", uid, both)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="p")["Body"].read(), early)
        self.assertEqual(self.complete("p", uid, both)["ETag"], done["ETag"])

    def test_part_checksums_and_parts_past_the_end(self) -> None:
        parts = [payload(5 * MIB, seed=8), payload(5 * MIB, seed=9), payload(77, seed=10)]
        for alg, kind in (("SHA256", "COMPOSITE"), ("CRC32", "FULL_OBJECT")):
            key = f"sums-{alg}"
            uid = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm=alg, ChecksumType=kind
            )["UploadId"]
            named, values = [], []
            for number, data in enumerate(parts, 1):
                value = REFERENCE[alg](data)
                got = self.s3.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=uid,
                    PartNumber=number,
                    Body=data,
                    ChecksumAlgorithm=alg,
                )
                self.assertEqual(got[f"Checksum{alg}"], value)
                values.append(value)
                named.append({"PartNumber": number, "ETag": got["ETag"]})
            done = self.complete(key, uid, named)
            self.assertEqual(done["ChecksumType"], kind)
            for number, data in enumerate(parts, 1):
                got = self.s3.get_object(Bucket=self.bucket, Key=key, PartNumber=number)
                self.assertEqual(got["Body"].read(), data)
                self.assertEqual(got[f"Checksum{alg}"], values[number - 1], (alg, number))
                self.assertEqual(got["ChecksumType"], kind)
                self.assertEqual(got["PartsCount"], 3)
            head = self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            self.assertEqual(
                (head[f"Checksum{alg}"], head["ChecksumType"]), (done[f"Checksum{alg}"], kind)
            )
            attributes = self.s3.get_object_attributes(
                Bucket=self.bucket, Key=key, ObjectAttributes=["ObjectParts", "Checksum"]
            )
            self.assertEqual(attributes["Checksum"]["ChecksumType"], kind)
            listed = attributes["ObjectParts"]["Parts"]
            self.assertEqual([p[f"Checksum{alg}"] for p in listed], values)
            for call in (self.s3.get_object, self.s3.head_object):
                with self.assertRaises(ClientError) as caught:
                    call(Bucket=self.bucket, Key=key, PartNumber=4)
                self.assertEqual(error_of(caught)[0], 400)
            with self.assertRaises(ClientError) as caught:
                self.s3.get_object(Bucket=self.bucket, Key=key, PartNumber=4)
            self.assertEqual(error_of(caught), (400, "InvalidPart"))
        self.s3.put_object(Bucket=self.bucket, Key="single", Body=b"single")
        with self.assertRaises(ClientError) as caught:
            self.s3.get_object(Bucket=self.bucket, Key="single", PartNumber=2)
        self.assertEqual(error_of(caught), (400, "InvalidPart"))
        got = self.s3.get_object(Bucket=self.bucket, Key="single", PartNumber=1)
        self.assertEqual(got["Body"].read(), b"single")
        head = self.s3.head_object(Bucket=self.bucket, Key="single", ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumType"], "FULL_OBJECT")


class CompletedUploadExpiryTests(ServerTestCase):
    """A server whose uploads (and completed uploads) expire after 2 seconds."""

    server_env = {"S4_COMPACTION_MULTIPART_TTL_SECS": "2"}

    def test_completed_upload_is_forgotten(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        uid = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"k" * 10)
        parts = {"Parts": [{"PartNumber": 1, "ETag": etag["ETag"]}]}
        first = s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts
        )
        again = s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts
        )
        self.assertEqual(again["ETag"], first["ETag"])
        deadline = time.monotonic() + 15
        while True:
            try:
                s3.complete_multipart_upload(
                    Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts
                )
            except ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "NoSuchUpload")
                break
            self.assertLess(time.monotonic(), deadline, "the completed upload was not forgotten")
            time.sleep(0.25)
        self.assertEqual(s3.get_object(Bucket=bucket, Key="k")["Body"].read(), b"k" * 10)
