"""ListObjectVersions in memory: the route, the parameters and the document, element by element.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real site, handlers,
engine and store with no sockets and no threads, so each test sends a signed
request and reads the whole XML answer at once. The order of versions, the
markers and paging are the store's business (``tests/store/test_version_listing``);
these tests check what the S3 layer adds: routing and the action, parameter
checks, the ``ListVersionsResult`` elements, ``encoding-type=url``, the
``null`` version of an unversioned bucket, and a walk through every page.
"""

from __future__ import annotations

from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase

from s4d.s3.assembly import default_table
from tests.s3.memory import MemoryResponse, MemoryS3, key_path

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

VERSIONING_ON = (
    b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Status>Enabled</Status></VersioningConfiguration>"
)


def parse(response: MemoryResponse) -> ElementTree.Element:
    """The response's XML document (the test fails on anything but a 200)."""
    assert response.status == 200, response.body.decode()
    return ElementTree.fromstring(response.body)


def text(element: ElementTree.Element, tag: str) -> str | None:
    """The text of ``element``'s child ``tag`` (None if it has none)."""
    found = element.find(NS + tag)
    return None if found is None else (found.text or "")


def entries(doc: ElementTree.Element) -> list[tuple[str, str, str, str | None]]:
    """(element, key, version id, IsLatest) of each Version and DeleteMarker, in order."""
    return [
        (e.tag[len(NS) :], text(e, "Key") or "", text(e, "VersionId") or "", text(e, "IsLatest"))
        for e in doc
        if e.tag in (NS + "Version", NS + "DeleteMarker")
    ]


class ListVersionsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def put(self, key: str, data: bytes, headers: dict[str, str] | None = None) -> str:
        response = self.s3.request("PUT", key_path("bkt", key), data, headers)
        self.assertEqual(response.status, 200, response.body.decode())
        return response.header("x-amz-version-id") or "null"

    def enable_versioning(self) -> None:
        response = self.s3.request("PUT", "/bkt?versioning", VERSIONING_ON)
        self.assertEqual(response.status, 200, response.body.decode())

    def test_route_and_action(self) -> None:
        table = default_table(self.s3.engine, "us-east-1", None)
        found = table.find("GET", "bucket", frozenset({"versions"}))
        self.assertEqual(
            (found.operation, found.action), ("ListObjectVersions", "s3:ListBucketVersions")
        )

    def test_versions_and_delete_marker(self) -> None:
        self.put("plain", b"before versioning")
        self.enable_versioning()
        first = self.put("k", b"one", {"x-amz-checksum-crc32": "emyG8Q=="})
        second = self.put("k", b"two!")
        deleted = self.s3.request("DELETE", key_path("bkt", "k"))
        self.assertEqual(deleted.header("x-amz-delete-marker"), "true")
        marker = deleted.header("x-amz-version-id")
        doc = parse(self.s3.request("GET", "/bkt?versions"))
        self.assertEqual(doc.tag, NS + "ListVersionsResult")
        self.assertEqual(
            [(child, text(doc, child)) for child in ("Name", "Prefix", "KeyMarker")],
            [("Name", "bkt"), ("Prefix", ""), ("KeyMarker", "")],
        )
        self.assertEqual(text(doc, "VersionIdMarker"), "")
        self.assertEqual((text(doc, "MaxKeys"), text(doc, "IsTruncated")), ("1000", "false"))
        self.assertIsNone(doc.find(NS + "NextKeyMarker"))
        self.assertIsNone(doc.find(NS + "Delimiter"))
        self.assertEqual(
            entries(doc),
            [
                ("DeleteMarker", "k", marker, "true"),
                ("Version", "k", second, "false"),
                ("Version", "k", first, "false"),
                ("Version", "plain", "null", "true"),
            ],
        )
        versions = doc.findall(NS + "Version")
        self.assertEqual(text(versions[0], "Size"), "4")
        self.assertEqual(text(versions[0], "StorageClass"), "STANDARD")
        self.assertEqual(text(versions[0], "ETag"), '"9f5b6d9a034d175868bf593885b7dc4e"')
        self.assertIsNone(versions[0].find(NS + "ChecksumAlgorithm"))
        self.assertEqual(text(versions[1], "ChecksumAlgorithm"), "CRC32")
        self.assertTrue(text(versions[1], "LastModified"))
        owner = versions[1].find(NS + "Owner")
        assert owner is not None
        self.assertTrue(text(owner, "ID"))
        dm = doc.find(NS + "DeleteMarker")
        assert dm is not None
        self.assertIsNotNone(dm.find(NS + "Owner"))
        self.assertIsNone(dm.find(NS + "Size"))

    def test_unversioned_bucket_lists_null_versions(self) -> None:
        self.put("a", b"1")
        self.put("a", b"22")
        self.put("b", b"3")
        doc = parse(self.s3.request("GET", "/bkt?versions"))
        self.assertEqual(
            entries(doc), [("Version", "a", "null", "true"), ("Version", "b", "null", "true")]
        )
        self.assertEqual(text(doc.findall(NS + "Version")[0], "Size"), "2")

    def test_every_page_with_max_keys_one(self) -> None:
        self.enable_versioning()
        made = []
        for key in ("a", "b/c", "b/d"):
            for data in (b"x", b"yy"):
                made.append((key, self.put(key, data)))
        expected = []
        for key in ("a", "b/c", "b/d"):
            expected += [v for v in reversed(made) if v[0] == key]
        listed = []
        query = "/bkt?versions&max-keys=1"
        for _ in range(len(expected) + 1):
            doc = parse(self.s3.request("GET", query))
            listed += [(key, vid) for _, key, vid, _ in entries(doc)]
            if text(doc, "IsTruncated") == "false":
                self.assertIsNone(doc.find(NS + "NextKeyMarker"))
                break
            key_marker, vid_marker = text(doc, "NextKeyMarker"), text(doc, "NextVersionIdMarker")
            self.assertEqual((key_marker, vid_marker), listed[-1])
            query = (
                f"/bkt?versions&max-keys=1&key-marker={key_marker}&version-id-marker={vid_marker}"
            )
        self.assertEqual(listed, expected)

    def test_delimiter_prefix_and_url_encoding(self) -> None:
        self.put("dir/a b", b"1")
        self.put("dir/sub/c", b"2")
        self.put("top", b"3")
        doc = parse(
            self.s3.request("GET", "/bkt?versions&prefix=dir%2F&delimiter=%2F&encoding-type=url")
        )
        self.assertEqual(text(doc, "Prefix"), "dir/")
        self.assertEqual((text(doc, "Delimiter"), text(doc, "EncodingType")), ("/", "url"))
        self.assertEqual([key for _, key, _, _ in entries(doc)], ["dir/a%20b"])
        prefixes = [text(p, "Prefix") for p in doc.findall(NS + "CommonPrefixes")]
        self.assertEqual(prefixes, ["dir/sub/"])

    def test_page_ending_on_a_common_prefix(self) -> None:
        self.put("a/1", b"1")
        self.put("a/2", b"2")
        self.put("b", b"3")
        doc = parse(self.s3.request("GET", "/bkt?versions&delimiter=/&max-keys=1"))
        self.assertEqual(text(doc, "IsTruncated"), "true")
        self.assertEqual(text(doc, "NextKeyMarker"), "a/")
        self.assertIsNone(doc.find(NS + "NextVersionIdMarker"))
        doc = parse(self.s3.request("GET", "/bkt?versions&delimiter=/&max-keys=1&key-marker=a/"))
        self.assertEqual([key for _, key, _, _ in entries(doc)], ["b"])
        self.assertEqual(text(doc, "IsTruncated"), "false")

    def test_max_keys_is_capped_and_checked(self) -> None:
        doc = parse(self.s3.request("GET", "/bkt?versions&max-keys=5000"))
        self.assertEqual(text(doc, "MaxKeys"), "1000")
        bad = self.s3.request("GET", "/bkt?versions&max-keys=-1")
        self.assertEqual((bad.status, bad.code()), (400, "InvalidArgument"))
        bad = self.s3.request("GET", "/bkt?versions&max-keys=x")
        self.assertEqual((bad.status, bad.code()), (400, "InvalidArgument"))

    def test_version_id_marker_needs_a_key_marker(self) -> None:
        bad = self.s3.request("GET", "/bkt?versions&version-id-marker=abc")
        self.assertEqual((bad.status, bad.code()), (400, "InvalidArgument"))
        self.assertIn(b"<ArgumentName>version-id-marker</ArgumentName>", bad.body)

    def test_bad_encoding_type(self) -> None:
        bad = self.s3.request("GET", "/bkt?versions&encoding-type=base64")
        self.assertEqual((bad.status, bad.code()), (400, "InvalidArgument"))

    def test_no_such_bucket(self) -> None:
        missing = self.s3.request("GET", "/nope?versions")
        self.assertEqual((missing.status, missing.code()), (404, "NoSuchBucket"))
