"""Versioning as AWS documents it, in memory: delete markers, version ids, suspension.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real seam, handlers,
engine and store with no sockets; each test sends raw signed HTTP to a
versioned (or suspended) bucket and checks the status, the error code and the
headers AWS sends for delete markers (``x-amz-delete-marker``,
``x-amz-version-id``, ``Allow``, ``Last-Modified``), what listings show after
deletes, and which versions remain after writes under suspended versioning.
"""

from __future__ import annotations

import base64
import hashlib
import re

from twisted.trial.unittest import SynchronousTestCase

from tests.s3.memory import MemoryResponse, MemoryS3

ENABLED = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
SUSPENDED = b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"


class VersionedTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt?versioning", ENABLED).status, 200)

    def put(self, key: str, body: bytes) -> str:
        got = self.s3.request("PUT", f"/bkt/{key}", body)
        self.assertEqual(got.status, 200, got.body)
        version = got.header("x-amz-version-id")
        assert version is not None
        return version

    def delete(self, key: str, version_id: str | None = None) -> MemoryResponse:
        target = f"/bkt/{key}" + (f"?versionId={version_id}" if version_id else "")
        got = self.s3.request("DELETE", target)
        self.assertEqual(got.status, 204, got.body)
        return got


class DeleteMarkerReadTests(VersionedTestCase):
    """GET/HEAD of a deleted key and of a delete marker by its version id."""

    def setUp(self) -> None:
        super().setUp()
        self.v1 = self.put("k", b"one")
        deleted = self.delete("k")
        self.assertEqual(deleted.header("x-amz-delete-marker"), "true")
        marker = deleted.header("x-amz-version-id")
        assert marker is not None
        self.marker = marker

    def test_current_marker_is_no_such_key_with_marker_headers(self) -> None:
        for method in ("GET", "HEAD"):
            got = self.s3.request(method, "/bkt/k")
            self.assertEqual(got.status, 404, method)
            if method == "GET":
                self.assertEqual(got.code(), "NoSuchKey")
            self.assertEqual(got.header("x-amz-delete-marker"), "true", method)
            self.assertEqual(got.header("x-amz-version-id"), self.marker, method)

    def test_marker_by_version_id_is_method_not_allowed(self) -> None:
        for method in ("GET", "HEAD"):
            got = self.s3.request(method, f"/bkt/k?versionId={self.marker}")
            self.assertEqual(got.status, 405, method)
            if method == "GET":
                self.assertEqual(got.code(), "MethodNotAllowed")
            self.assertEqual(got.header("x-amz-delete-marker"), "true", method)
            self.assertEqual(got.header("x-amz-version-id"), self.marker, method)
            self.assertEqual(got.header("allow"), "DELETE", method)
            self.assertIsNotNone(got.header("last-modified"), method)

    def test_older_version_still_readable(self) -> None:
        got = self.s3.request("GET", f"/bkt/k?versionId={self.v1}")
        self.assertEqual((got.status, got.body), (200, b"one"))
        self.assertIsNone(got.header("x-amz-delete-marker"))

    def test_missing_key_says_it_is_no_marker(self) -> None:
        for method in ("GET", "HEAD"):
            got = self.s3.request(method, "/bkt/other")
            self.assertEqual(got.status, 404)
            self.assertEqual(got.header("x-amz-delete-marker"), "false", method)
            self.assertIsNone(got.header("x-amz-version-id"), method)

    def test_deleting_the_marker_restores_the_previous_version(self) -> None:
        got = self.delete("k", self.marker)
        self.assertEqual(got.header("x-amz-delete-marker"), "true")
        self.assertEqual(got.header("x-amz-version-id"), self.marker)
        read = self.s3.request("GET", "/bkt/k")
        self.assertEqual((read.status, read.body), (200, b"one"))
        self.assertEqual(read.header("x-amz-version-id"), self.v1)

    def test_delete_objects_reports_a_deleted_marker(self) -> None:
        doc = (
            f"<Delete><Object><Key>k</Key><VersionId>{self.marker}</VersionId></Object></Delete>"
        ).encode()
        got = self.s3.request("POST", "/bkt?delete", doc, {"content-md5": _md5(doc)})
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(b"<DeleteMarker>true</DeleteMarker>", got.body)
        self.assertIn(
            f"<DeleteMarkerVersionId>{self.marker}</DeleteMarkerVersionId>".encode(), got.body
        )
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"one")


class UnversionedDeleteTests(SynchronousTestCase):
    def test_deleted_key_is_no_marker(self) -> None:
        s3 = MemoryS3()
        self.addCleanup(s3.close)
        self.assertEqual(s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(s3.request("PUT", "/bkt/k", b"x").status, 200)
        self.assertEqual(s3.request("DELETE", "/bkt/k").status, 204)
        got = s3.request("HEAD", "/bkt/k")
        self.assertEqual(got.status, 404)
        self.assertEqual(got.header("x-amz-delete-marker"), "false")


class ListingHidesDeletedPrefixesTests(VersionedTestCase):
    """A common prefix whose keys all have a delete marker on top is not listed."""

    def setUp(self) -> None:
        super().setUp()
        for key in ("gone/a", "gone/sub/b", "kept/c", "x-gone-y", "top"):
            self.put(key, b"data")
        for key in ("gone/a", "gone/sub/b", "x-gone-y"):
            self.delete(key)

    def prefixes(self, query: str) -> list[str]:
        got = self.s3.request("GET", "/bkt?" + query)
        self.assertEqual(got.status, 200, got.body)
        return [p.decode() for p in re.findall(rb"<Prefix>([^<]+)</Prefix>", got.body)]

    def test_slash_delimiter_v1_and_v2(self) -> None:
        for query in ("delimiter=/", "list-type=2&delimiter=/"):
            self.assertEqual(self.prefixes(query), ["kept/"], query)

    def test_other_delimiter(self) -> None:
        self.assertEqual(self.prefixes("delimiter=-"), [])
        self.put("x-live", b"data")
        self.assertEqual(self.prefixes("delimiter=-"), ["x-"])

    def test_one_live_key_deep_inside_keeps_the_prefix(self) -> None:
        self.put("gone/sub/deeper/live", b"data")
        self.assertEqual(self.prefixes("delimiter=/"), ["gone/", "kept/"])

    def test_versions_listing_still_shows_the_prefix(self) -> None:
        self.assertEqual(self.prefixes("versions&delimiter=/"), ["gone/", "kept/"])


class VersionedCopyTests(VersionedTestCase):
    """``versionId`` on the copy source of CopyObject and UploadPartCopy."""

    def setUp(self) -> None:
        super().setUp()
        self.v1 = self.put("src", b"first")
        self.v2 = self.put("src", b"second")

    def test_copy_object_of_an_old_version(self) -> None:
        got = self.s3.request(
            "PUT", "/bkt/dst", headers={"x-amz-copy-source": f"/bkt/src?versionId={self.v1}"}
        )
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(got.header("x-amz-copy-source-version-id"), self.v1)
        self.assertIsNotNone(got.header("x-amz-version-id"))
        self.assertEqual(self.s3.request("GET", "/bkt/dst").body, b"first")

    def test_copy_of_a_delete_marker_is_refused(self) -> None:
        marker = self.delete("src").header("x-amz-version-id")
        got = self.s3.request(
            "PUT", "/bkt/dst", headers={"x-amz-copy-source": f"/bkt/src?versionId={marker}"}
        )
        self.assertEqual(got.status, 400, got.body)
        self.assertEqual(got.code(), "InvalidRequest")
        current = self.s3.request("PUT", "/bkt/dst", headers={"x-amz-copy-source": "/bkt/src"})
        self.assertEqual(current.status, 404, current.body)
        self.assertEqual(current.code(), "NoSuchKey")

    def test_upload_part_copy_of_an_old_version(self) -> None:
        created = self.s3.request("POST", "/bkt/mp?uploads")
        self.assertEqual(created.status, 200, created.body)
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert found is not None
        upload = found.group(1).decode()
        part = self.s3.request(
            "PUT",
            f"/bkt/mp?partNumber=1&uploadId={upload}",
            headers={"x-amz-copy-source": f"/bkt/src?versionId={self.v1}"},
        )
        self.assertEqual(part.status, 200, part.body)
        self.assertEqual(part.header("x-amz-copy-source-version-id"), self.v1)
        etag = re.search(rb"<ETag>([^<]+)</ETag>", part.body)
        assert etag is not None
        doc = (
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
            + etag.group(1)
            + b"</ETag></Part></CompleteMultipartUpload>"
        )
        done = self.s3.request("POST", f"/bkt/mp?uploadId={upload}", doc)
        self.assertEqual(done.status, 200, done.body)
        self.assertEqual(self.s3.request("GET", "/bkt/mp").body, b"first")

    def test_upload_part_copy_of_a_delete_marker_is_refused(self) -> None:
        marker = self.delete("src").header("x-amz-version-id")
        created = self.s3.request("POST", "/bkt/mp?uploads")
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert found is not None
        part = self.s3.request(
            "PUT",
            f"/bkt/mp?partNumber=1&uploadId={found.group(1).decode()}",
            headers={"x-amz-copy-source": f"/bkt/src?versionId={marker}"},
        )
        self.assertEqual(part.status, 400, part.body)
        self.assertEqual(part.code(), "InvalidRequest")


class DeleteObjectsVersionTests(VersionedTestCase):
    def test_delete_one_version_keeps_the_others(self) -> None:
        v1 = self.put("k", b"one")
        self.put("k", b"two")
        doc = f"<Delete><Object><Key>k</Key><VersionId>{v1}</VersionId></Object></Delete>".encode()
        got = self.s3.request("POST", "/bkt?delete", doc, {"content-md5": _md5(doc)})
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(f"<VersionId>{v1}</VersionId>".encode(), got.body)
        self.assertNotIn(b"DeleteMarker", got.body)
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"two")
        self.assertEqual(self.s3.request("GET", f"/bkt/k?versionId={v1}").status, 404)

    def test_delete_without_version_reports_the_new_marker(self) -> None:
        self.put("k", b"one")
        doc = b"<Delete><Object><Key>k</Key></Object></Delete>"
        got = self.s3.request("POST", "/bkt?delete", doc, {"content-md5": _md5(doc)})
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(b"<DeleteMarker>true</DeleteMarker>", got.body)
        self.assertIn(b"<DeleteMarkerVersionId>", got.body)


class SuspendedVersioningTests(VersionedTestCase):
    """Suspended: writes replace the ``null`` version and keep every other version."""

    def versions(self) -> MemoryResponse:
        got = self.s3.request("GET", "/bkt?versions")
        self.assertEqual(got.status, 200, got.body)
        return got

    def test_put_replaces_null_and_keeps_others(self) -> None:
        v1 = self.put("k", b"one")
        self.assertEqual(self.s3.request("PUT", "/bkt?versioning", SUSPENDED).status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/k", b"two").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/k", b"three").status, 200)
        listed = self.versions()
        self.assertEqual(listed.body.count(b"<Version>"), 2, listed.body)
        self.assertEqual(listed.body.count(b"<VersionId>null</VersionId>"), 1)
        self.assertIn(f"<VersionId>{v1}</VersionId>".encode(), listed.body)
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"three")
        self.assertEqual(self.s3.request("GET", "/bkt/k?versionId=null").body, b"three")
        self.assertEqual(self.s3.request("GET", f"/bkt/k?versionId={v1}").body, b"one")

    def test_delete_writes_a_null_marker(self) -> None:
        v1 = self.put("k", b"one")
        self.assertEqual(self.s3.request("PUT", "/bkt?versioning", SUSPENDED).status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/k", b"two").status, 200)
        got = self.delete("k")
        self.assertEqual(got.header("x-amz-delete-marker"), "true")
        self.assertEqual(got.header("x-amz-version-id"), "null")
        listed = self.versions()
        self.assertEqual(listed.body.count(b"<Version>"), 1, listed.body)
        self.assertEqual(listed.body.count(b"<DeleteMarker>"), 1, listed.body)
        self.assertIn(f"<VersionId>{v1}</VersionId>".encode(), listed.body)
        read = self.s3.request("GET", "/bkt/k")
        self.assertEqual(read.status, 404)
        self.assertEqual(read.header("x-amz-version-id"), "null")
        self.assertEqual(read.header("x-amz-delete-marker"), "true")


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


class SuspendedWriteAnswersTests(VersionedTestCase):
    """A write to a Suspended bucket answers no ``x-amz-version-id``, as AWS does.

    (ceph/s3-tests' ``test_versioning_bucket_*_return_version_id``, which AWS passes.)
    """

    def setUp(self) -> None:
        super().setUp()
        self.assertEqual(self.s3.request("PUT", "/bkt?versioning", SUSPENDED).status, 200)

    def test_put_object(self) -> None:
        got = self.s3.request("PUT", "/bkt/k", b"one")
        self.assertEqual(got.status, 200)
        self.assertIsNone(got.header("x-amz-version-id"))

    def test_copy_object(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt/k", b"one").status, 200)
        got = self.s3.request("PUT", "/bkt/c", headers={"x-amz-copy-source": "/bkt/k"})
        self.assertEqual(got.status, 200, got.body)
        self.assertIsNone(got.header("x-amz-version-id"))

    def test_complete_multipart_upload(self) -> None:
        created = self.s3.request("POST", "/bkt/m?uploads")
        self.assertEqual(created.status, 200, created.body)
        match = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert match is not None
        uid = match.group(1).decode()
        part = self.s3.request("PUT", f"/bkt/m?partNumber=1&uploadId={uid}", b"data")
        self.assertEqual(part.status, 200, part.body)
        etag = part.header("etag")
        doc = (
            f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
            "</Part></CompleteMultipartUpload>"
        ).encode()
        got = self.s3.request("POST", f"/bkt/m?uploadId={uid}", doc)
        self.assertEqual(got.status, 200, got.body)
        self.assertIn(b"<CompleteMultipartUploadResult", got.body)
        self.assertIsNone(got.header("x-amz-version-id"))

    def test_unversioned_bucket_answers_no_version_id(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/plain").status, 200)
        got = self.s3.request("PUT", "/plain/k", b"one")
        self.assertEqual(got.status, 200)
        self.assertIsNone(got.header("x-amz-version-id"))


class MalformedVersionIdTests(VersionedTestCase):
    """A version id s4d could not have issued is ``InvalidArgument``, not ``NoSuchVersion``."""

    def test_malformed_is_invalid_argument(self) -> None:
        v1 = self.put("k", b"one")
        for bad in ("nope", v1.upper(), v1[:-1], v1 + "0", "NULL"):
            for method in ("GET", "HEAD", "DELETE"):
                got = self.s3.request(method, f"/bkt/k?versionId={bad}")
                self.assertEqual(got.status, 400, (method, bad))
                if method != "HEAD":
                    self.assertEqual(got.code(), "InvalidArgument")
                    self.assertIn(b"<Message>Invalid version id specified</Message>", got.body)
                    self.assertIn(b"<ArgumentName>versionId</ArgumentName>", got.body)
        self.assertEqual(self.s3.request("GET", f"/bkt/k?versionId={v1}").body, b"one")

    def test_well_formed_but_unknown_is_no_such_version(self) -> None:
        self.put("k", b"one")
        for version_id in ("0" * 32, "null"):
            got = self.s3.request("GET", f"/bkt/k?versionId={version_id}")
            self.assertEqual((got.status, got.code()), (404, "NoSuchVersion"), version_id)
