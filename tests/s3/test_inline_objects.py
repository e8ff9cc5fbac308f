"""Small objects kept in their version record (inline), through the whole S3 path.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real handlers, engine and
store. Objects of at most :data:`~s4d.store.model.INLINE_MAX` bytes must leave
no chunk index entry and no segment bytes, yet answer GET, HEAD, ranges,
checksums, versions, tagging, copies (to inline and chunked targets), and
UploadPartCopy exactly as chunked objects do; one byte more is a chunk again and
still deduplicates. fsck is clean after each scenario.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zlib

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import fsck
from s4d.store.compaction import Compactor
from s4d.store.model import INLINE_MAX
from s4d.store.scrub import Scrubber
from tests.s3.memory import MemoryS3

ENABLED = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"


class InlineObjectTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def put(self, key: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        got = self.s3.request("PUT", f"/bkt/{key}", data, headers)
        self.assertEqual(got.status, 200, got.body)

    def chunk_entries(self) -> int:
        with self.s3.store.read() as t:
            return t.chunks.record_count()

    def segment_bytes(self) -> int:
        seg_dir = os.path.join(self.s3.data_dir, "segments")
        if not os.path.isdir(seg_dir):
            return 0
        return sum(os.path.getsize(os.path.join(seg_dir, n)) for n in os.listdir(seg_dir))

    def assert_clean(self) -> None:
        report = fsck.check_store(self.s3.store)
        self.assertEqual((report.problems, report.warnings), ([], []))

    def test_small_objects_take_no_chunk_and_no_segment(self) -> None:
        for size in (1, 100, INLINE_MAX):
            self.put(f"k{size}", os.urandom(size))
        self.assertEqual((self.chunk_entries(), self.segment_bytes()), (0, 0))
        self.put("big", os.urandom(INLINE_MAX + 1))
        self.assertEqual(self.chunk_entries(), 1)
        self.assertGreater(self.segment_bytes(), INLINE_MAX)
        self.assert_clean()

    def test_reads(self) -> None:
        data = os.urandom(300)
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        self.put("k", data, {"x-amz-checksum-crc32": crc, "Content-Type": "text/x-small"})
        got = self.s3.request("GET", "/bkt/k", headers={"x-amz-checksum-mode": "ENABLED"})
        self.assertEqual((got.status, got.body), (200, data))
        self.assertEqual(got.header("ETag"), f'"{hashlib.md5(data).hexdigest()}"')
        self.assertEqual(got.header("x-amz-checksum-crc32"), crc)
        self.assertEqual(got.header("Content-Type"), "text/x-small")
        head = self.s3.request("HEAD", "/bkt/k")
        self.assertEqual(head.header("Content-Length"), "300")
        ranged = self.s3.request("GET", "/bkt/k", headers={"Range": "bytes=10-19"})
        self.assertEqual((ranged.status, ranged.body), (206, data[10:20]))
        suffix = self.s3.request("GET", "/bkt/k", headers={"Range": "bytes=-5"})
        self.assertEqual(suffix.body, data[-5:])
        listing = self.s3.request("GET", "/bkt?list-type=2")
        self.assertIn(b"<Size>300</Size>", listing.body)
        self.assertIn(hashlib.md5(data).hexdigest().encode(), listing.body)

    def test_versions_and_tags(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt?versioning", ENABLED).status, 200)
        ids = []
        for n in range(3):
            got = self.s3.request("PUT", "/bkt/v", f"version {n}".encode())
            ids.append(got.header("x-amz-version-id"))
        tagging = b"<Tagging><TagSet><Tag><Key>t</Key><Value>1</Value></Tag></TagSet></Tagging>"
        got = self.s3.request("PUT", f"/bkt/v?tagging&versionId={ids[1]}", tagging)
        self.assertEqual(got.status, 200, got.body)
        for n, vid in enumerate(ids):
            got = self.s3.request("GET", f"/bkt/v?versionId={vid}")
            self.assertEqual(got.body, f"version {n}".encode())
        tags = self.s3.request("GET", f"/bkt/v?tagging&versionId={ids[1]}")
        self.assertIn(b"<Key>t</Key>", tags.body)
        got = self.s3.request("GET", f"/bkt/v?versionId={ids[1]}")
        self.assertEqual(got.body, b"version 1")  # retagging kept the bytes
        self.assertEqual(self.s3.request("DELETE", f"/bkt/v?versionId={ids[2]}").status, 204)
        self.assertEqual(self.s3.request("GET", "/bkt/v").body, b"version 1")
        self.assertEqual(self.chunk_entries(), 0)
        self.assert_clean()

    def test_copies(self) -> None:
        data = os.urandom(INLINE_MAX)
        self.put("src", data)
        got = self.s3.request("PUT", "/bkt/dst", headers={"x-amz-copy-source": "/bkt/src"})
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(self.s3.request("DELETE", "/bkt/src").status, 204)
        self.assertEqual(self.s3.request("GET", "/bkt/dst").body, data)
        self.assertEqual(self.chunk_entries(), 0)
        self.assert_clean()

    def test_upload_part_copy_of_an_inline_source(self) -> None:
        data = os.urandom(400)
        self.put("src", data)
        created = self.s3.request("POST", "/bkt/mp?uploads")
        upload_id = re.search(rb"<UploadId>(.+?)</UploadId>", created.body).group(1).decode()  # type: ignore[union-attr]
        etags = []
        for number, copy_range in ((1, None), (2, "bytes=100-199")):
            headers = {"x-amz-copy-source": "/bkt/src"}
            if copy_range:
                headers["x-amz-copy-source-range"] = copy_range
            got = self.s3.request(
                "PUT", f"/bkt/mp?partNumber={number}&uploadId={upload_id}", headers=headers
            )
            self.assertEqual(got.status, 200, got.body)
            etags.append(re.search(rb"<ETag>(.+?)</ETag>", got.body).group(1).decode())  # type: ignore[union-attr]
        # a multipart object's non-last part must be 5 MiB: one part is enough here
        complete = (
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
            f"<ETag>{etags[0]}</ETag></Part></CompleteMultipartUpload>"
        ).encode()
        got = self.s3.request("POST", f"/bkt/mp?uploadId={upload_id}", complete)
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(self.s3.request("GET", "/bkt/mp").body, data)
        self.assertEqual(self.s3.request("DELETE", "/bkt/src").status, 204)
        self.assertEqual(self.s3.request("GET", "/bkt/mp").body, data)
        self.assert_clean()

    def test_larger_objects_still_deduplicate(self) -> None:
        data = os.urandom(INLINE_MAX + 1)
        self.put("a", data)
        self.put("b", data)
        self.put("small-a", data[:10])
        self.put("small-b", data[:10])
        with self.s3.store.read() as t:
            entries = [t.chunks.get(bytes(k)) for k, _v in t.chunks.cursor()]
        self.assertEqual([e[1] for e in entries if e is not None], [2])
        self.assert_clean()


class MaintenanceTests(SynchronousTestCase):
    """Compaction and scrub over a mix of inline and chunked objects."""

    def setUp(self) -> None:
        # small segments, so that deletes leave whole segments mostly dead
        self.s3 = MemoryS3(segment_size=64 << 10)
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def test_compaction_and_scrub_leave_inline_objects_alone(self) -> None:
        kept: dict[str, bytes] = {}
        for n in range(60):
            size = 200 if n % 2 else 5000
            data = os.urandom(size)
            self.assertEqual(self.s3.request("PUT", f"/bkt/o{n}", data).status, 200)
            if n % 3:
                kept[f"o{n}"] = data
            else:
                self.assertEqual(self.s3.request("DELETE", f"/bkt/o{n}").status, 204)
        report = Compactor(self.s3.store, threshold=0.0, grace=0).run()
        self.assertGreater(report.copied_records, 0)
        self.assertEqual(report.damaged, [])
        scrubbed = Scrubber(self.s3.store, rate=None).run_pass()
        with self.s3.store.read() as t:
            indexed = t.chunks.record_count()  # the kept 5000-byte objects, and released ones
        self.assertGreaterEqual(indexed, len(kept) // 2)
        self.assertEqual((scrubbed.chunks, scrubbed.corrupt), (indexed, []))
        for key, data in kept.items():
            self.assertEqual(self.s3.request("GET", f"/bkt/{key}").body, data, key)
        report = fsck.check_store(self.s3.store)
        self.assertEqual((report.problems, report.warnings), ([], []))
