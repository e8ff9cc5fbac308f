"""Answers that follow AWS's documented behaviour, one small case each, in memory.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real seam, handlers,
engine and store with no sockets; each test sends raw signed HTTP and checks
the status, the S3 error code or the XML element AWS documents for that case
(listing prefixes and encoding, CreateBucket of a bucket one owns, a part
number past an object's parts, a copy range outside its source), and that a
refused request changed nothing.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from tests.s3.memory import MemoryS3

VERSIONING = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"


class MemoryTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)


class ListObjectsV1EncodingTests(MemoryTestCase):
    """V1's Marker and Delimiter are URL-encoded only when ``encoding-type=url``;
    its Prefix never is (botocore does not decode it)."""

    def setUp(self) -> None:
        super().setUp()
        for key in ("a b+/1", "a b+/2", "a b+/x y"):
            self.assertEqual(self.s3.request("PUT", "/bkt/" + key.replace(" ", "%20")).status, 200)

    def test_as_given_without_encoding_type(self) -> None:
        got = self.s3.request("GET", "/bkt?prefix=a%20b%2B&marker=a%20b%2B%2F1&delimiter=%20")
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(b"<Prefix>a b+</Prefix>", got.body)
        self.assertIn(b"<Marker>a b+/1</Marker>", got.body)
        self.assertIn(b"<Delimiter> </Delimiter>", got.body)
        self.assertNotIn(b"EncodingType", got.body)

    def test_encoded_when_asked(self) -> None:
        got = self.s3.request(
            "GET", "/bkt?prefix=a%20b%2B&marker=a%20b%2B%2F1&delimiter=%20&encoding-type=url"
        )
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(b"<Prefix>a b+</Prefix>", got.body)
        self.assertIn(b"<Marker>a%20b%2B/1</Marker>", got.body)
        self.assertIn(b"<Delimiter>%20</Delimiter>", got.body)
        self.assertIn(b"<EncodingType>url</EncodingType>", got.body)

    def test_an_unreadable_prefix_comes_back_as_given(self) -> None:
        """s3-tests test_bucket_list_prefix_unreadable: boto3 asks ``encoding-type=url``."""
        got = self.s3.request("GET", "/bkt?prefix=%0A&encoding-type=url")
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(b"<Prefix>\n</Prefix>", got.body)
        self.assertNotIn(b"<Contents>", got.body)
        v2 = self.s3.request("GET", "/bkt?list-type=2&prefix=%0A&encoding-type=url")
        self.assertIn(b"<Prefix>%0A</Prefix>", v2.body)


class UnreadableKeyTests(MemoryTestCase):
    """A path that is not UTF-8 once percent-decoded: 400 ``InvalidURI`` with S3's text.

    s3-tests test_object_read_unreadable was written for Python 2, where the key
    ``'\\xae\\x8a-'`` is those three bytes; under Python 3 boto3 sends it as UTF-8
    (``%C2%AE%C2%8A-``), a valid key, which is simply not there.
    """

    def test_bytes_that_are_not_utf8(self) -> None:
        for path in ("/bkt/%AE%8A-", "/bkt/a%FFb", "/bkt/%C2"):
            got = self.s3.request("GET", path)
            self.assertEqual((got.status, got.code()), (400, "InvalidURI"), path)
            self.assertIn(b"<Message>Couldn't parse the specified URI.</Message>", got.body)
            self.assertEqual(self.s3.request("PUT", path, b"x").status, 400, path)

    def test_the_same_characters_in_utf8_are_a_key(self) -> None:
        got = self.s3.request("GET", "/bkt/%C2%AE%C2%8A-")
        self.assertEqual((got.status, got.code()), (404, "NoSuchKey"))
        self.assertEqual(self.s3.request("PUT", "/bkt/%C2%AE%C2%8A-", b"x").status, 200)
        self.assertEqual(self.s3.request("GET", "/bkt/%C2%AE%C2%8A-").body, b"x")


class CreateBucketAgainTests(SynchronousTestCase):
    """CreateBucket of a bucket you own: 200 in us-east-1, 409 anywhere else."""

    def start(self, region: str) -> MemoryS3:
        s3 = MemoryS3(region=region)
        self.addCleanup(s3.close)
        self.assertEqual(s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(s3.request("PUT", "/bkt?versioning", VERSIONING).status, 200)
        self.assertEqual(s3.request("PUT", "/bkt/k", b"kept").status, 200)
        return s3

    def assert_unchanged(self, s3: MemoryS3, region: str) -> None:
        self.assertEqual(s3.request("GET", "/bkt/k").body, b"kept")
        self.assertIn(b"<Status>Enabled</Status>", s3.request("GET", "/bkt?versioning").body)
        head = s3.request("HEAD", "/bkt")
        self.assertEqual(head.header("x-amz-bucket-region"), region)

    def test_us_east_1_answers_200_and_changes_nothing(self) -> None:
        s3 = self.start("us-east-1")
        again = s3.request("PUT", "/bkt")
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual(again.header("location"), "/bkt")
        self.assert_unchanged(s3, "us-east-1")

    def test_other_region_answers_already_owned(self) -> None:
        s3 = self.start("eu-west-1")
        again = s3.request("PUT", "/bkt")
        self.assertEqual((again.status, again.code()), (409, "BucketAlreadyOwnedByYou"))
        self.assert_unchanged(s3, "eu-west-1")


class PartNumberPastThePartsTests(MemoryTestCase):
    """GET or HEAD of a part the object lacks: 400 InvalidPart, not a range error.

    (The issue asked for ``InvalidPartNumber``; AWS, as other servers report it,
    and the conformance suite's test_multipart_get_part answer ``InvalidPart``.)
    """

    def multipart_object(self, key: str, parts: list[bytes]) -> None:
        created = self.s3.request("POST", f"/bkt/{key}?uploads")
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert found is not None
        upload_id = found.group(1).decode()
        listed = []
        for number, data in enumerate(parts, 1):
            part = self.s3.request(
                "PUT", f"/bkt/{key}?partNumber={number}&uploadId={upload_id}", data
            )
            self.assertEqual(part.status, 200, part.body)
            listed.append(
                f"<Part><PartNumber>{number}</PartNumber><ETag>{part.header('etag')}</ETag></Part>"
            )
        document = f"<CompleteMultipartUpload>{''.join(listed)}</CompleteMultipartUpload>"
        done = self.s3.request("POST", f"/bkt/{key}?uploadId={upload_id}", document.encode())
        self.assertEqual(done.status, 200, done.body)

    def test_single_part_object(self) -> None:
        self.s3.request("PUT", "/bkt/one", b"0123456789")
        got = self.s3.request("GET", "/bkt/one?partNumber=1")
        self.assertEqual((got.status, got.body), (200, b"0123456789"))
        for number in (2, 10000):
            got = self.s3.request("GET", f"/bkt/one?partNumber={number}")
            self.assertEqual((got.status, got.code()), (400, "InvalidPart"), number)
            head = self.s3.request("HEAD", f"/bkt/one?partNumber={number}")
            self.assertEqual(head.status, 400, number)

    def test_multipart_object(self) -> None:
        self.multipart_object("mp", [b"a" * (5 << 20), b"b" * 10])
        got = self.s3.request("GET", "/bkt/mp?partNumber=2")
        self.assertEqual((got.status, got.body), (206, b"b" * 10))
        got = self.s3.request("GET", "/bkt/mp?partNumber=3")
        self.assertEqual((got.status, got.code()), (400, "InvalidPart"))
        head = self.s3.request("HEAD", "/bkt/mp?partNumber=3")
        self.assertEqual(head.status, 400)


class UploadPartCopyRangeTests(MemoryTestCase):
    """x-amz-copy-source-range outside the source object: 416 InvalidRange, no part stored."""

    def test_range_outside_the_source(self) -> None:
        self.s3.request("PUT", "/bkt/src", b"0123456789")
        created = self.s3.request("POST", "/bkt/dst?uploads")
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert found is not None
        target = f"/bkt/dst?partNumber=1&uploadId={found.group(1).decode()}"
        for spec in ("bytes=0-10", "bytes=10-10", "bytes=5-" + "9" * 30):
            got = self.s3.request(
                "PUT",
                target,
                headers={"x-amz-copy-source": "/bkt/src", "x-amz-copy-source-range": spec},
            )
            self.assertEqual((got.status, got.code()), (416, "InvalidRange"), spec)
        parts = self.s3.request("GET", target.replace("partNumber=1&", ""))
        self.assertNotIn(b"<Part>", parts.body)
        inside = self.s3.request(
            "PUT",
            target,
            headers={"x-amz-copy-source": "/bkt/src", "x-amz-copy-source-range": "bytes=9-9"},
        )
        self.assertEqual(inside.status, 200, inside.body)
