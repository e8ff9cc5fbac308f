"""Multipart answers AWS gives that s4d once did not, in memory, one case each.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real seam, handlers,
engine and store with no sockets, and each test sends raw signed HTTP. Three
families:

* a repeated CompleteMultipartUpload (a client retrying one whose answer it
  lost) gets the first answer byte for byte (status, ``x-amz-version-id``,
  document) as long as it names the same parts, the same key and bucket, until
  the expiry job forgets the completion; nothing is written by a repeat;
* a part number uploaded twice at once: the upload that *finishes* last is the
  part, whichever started first; two connections interleave their bodies by
  hand, so the order is exact, not left to timing; a Complete may name both
  answers (the later entry counts);
* checksums of parts: GET/HEAD ``?partNumber=N`` with checksum mode answers the
  part's own checksum and the object's checksum type, GetObjectAttributes lists
  each part's checksum, and every checksum on GET/HEAD comes with its type.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.util import checksums as ck
from tests.s3.memory import MemoryResponse, MemoryS3

VERSIONING = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
MIB = 1 << 20


def document(parts: list[tuple[int, str]], **checksums: str) -> bytes:
    """A CompleteMultipartUpload document naming (number, ETag) pairs."""
    items = []
    for number, etag in parts:
        extra = "".join(f"<{name}>{value}</{name}>" for name, value in checksums.items())
        items.append(f"<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag>{extra}</Part>")
    return f"<CompleteMultipartUpload>{''.join(items)}</CompleteMultipartUpload>".encode()


class MultipartMemoryCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.s3.engine.multipart.min_part_size = 1
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def create(self, key: str, headers: dict[str, str] | None = None) -> str:
        created = self.s3.request("POST", f"/bkt/{key}?uploads", headers=headers)
        self.assertEqual(created.status, 200, created.body)
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body)
        assert found is not None
        return found.group(1).decode()

    def part(
        self, key: str, uid: str, number: int, data: bytes, headers: dict[str, str] | None = None
    ) -> MemoryResponse:
        got = self.s3.request(
            "PUT", f"/bkt/{key}?partNumber={number}&uploadId={uid}", data, headers
        )
        self.assertEqual(got.status, 200, got.body)
        return got

    def complete(self, key: str, uid: str, body: bytes, **headers: str) -> MemoryResponse:
        return self.s3.request("POST", f"/bkt/{key}?uploadId={uid}", body, headers)

    def uploaded(self, key: str, parts: list[bytes]) -> tuple[str, bytes]:
        """An upload of ``parts``; its id and the document that completes it."""
        uid = self.create(key)
        etags = [self.part(key, uid, n, data).header("etag") for n, data in enumerate(parts, 1)]
        return uid, document([(n, e or "") for n, e in enumerate(etags, 1)])


class RepeatedCompleteTests(MultipartMemoryCase):
    def test_repeat_gets_the_same_answer(self) -> None:
        uid, body = self.uploaded("k", [b"a" * 100, b"b" * 50])
        first = self.complete("k", uid, body)
        self.assertEqual(first.status, 200, first.body)
        self.assertIn(b"<ETag>&quot;", first.body)
        again = self.complete("k", uid, body)
        self.assertEqual((again.status, again.body), (200, first.body))
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"a" * 100 + b"b" * 50)
        # the upload is gone all the same: no parts, no listing, no abort
        self.assertEqual(self.s3.request("GET", f"/bkt/k?uploadId={uid}").code(), "NoSuchUpload")
        self.assertNotIn(b"<Upload>", self.s3.request("GET", "/bkt?uploads").body)
        abort = self.s3.request("DELETE", f"/bkt/k?uploadId={uid}")
        self.assertEqual((abort.status, abort.code()), (404, "NoSuchUpload"))
        self.assertEqual(self.complete("k", uid, body).body, first.body)

    def test_repeat_after_the_object_changed_writes_nothing(self) -> None:
        self.s3.request("PUT", "/bkt?versioning", VERSIONING)
        uid, body = self.uploaded("k", [b"x" * 10])
        first = self.complete("k", uid, body)
        version = first.header("x-amz-version-id")
        self.assertIsNotNone(version)
        self.s3.request("PUT", "/bkt/k", b"newer")
        again = self.complete("k", uid, body)
        self.assertEqual((again.status, again.body), (200, first.body))
        self.assertEqual(again.header("x-amz-version-id"), version)
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"newer")
        listed = self.s3.request("GET", "/bkt?versions").body
        self.assertEqual(listed.count(b"<Version>"), 2)

    def test_only_the_same_parts_key_and_bucket(self) -> None:
        uid = self.create("k")
        one = self.part("k", uid, 1, b"1" * 10).header("etag") or ""
        two = self.part("k", uid, 2, b"2" * 10).header("etag") or ""
        self.assertEqual(self.complete("k", uid, document([(1, one), (2, two)])).status, 200)
        for body in (
            document([(1, one)]),
            document([(2, two)]),
            document([(1, one), (2, one)]),
            document([(2, two), (1, one)]),
            document([(1, one), (2, two), (3, two)]),
        ):
            got = self.complete("k", uid, body)
            self.assertEqual((got.status, got.code()), (404, "NoSuchUpload"), body)
        got = self.complete("other", uid, document([(1, one), (2, two)]))
        self.assertEqual((got.status, got.code()), (404, "NoSuchUpload"))
        self.assertEqual(self.s3.request("PUT", "/bkt2").status, 200)
        got = self.s3.request("POST", f"/bkt2/k?uploadId={uid}", document([(1, one), (2, two)]))
        self.assertEqual((got.status, got.code()), (404, "NoSuchUpload"))
        self.assertEqual(self.s3.request("GET", "/bkt2/k").status, 404)
        # the same list spelled differently (quotes, a number given twice) is the same list
        again = self.complete("k", uid, document([(1, one.strip('"')), (1, one), (2, two)]))
        self.assertEqual(again.status, 200, again.body)

    def test_repeat_checks_a_whole_object_checksum(self) -> None:
        sha = {"x-amz-checksum-algorithm": "SHA256"}
        uid = self.create("c", sha)
        data = b"c" * 1000
        value = ck.checksum_of("SHA256", data)
        part = self.part("c", uid, 1, data, {"x-amz-checksum-sha256": value})
        body = document([(1, part.header("etag") or "")], ChecksumSHA256=value)
        made = ck.composite("SHA256", [value])
        first = self.complete("c", uid, body, **{"x-amz-checksum-sha256": made})
        self.assertEqual(first.status, 200, first.body)
        self.assertIn(f"<ChecksumSHA256>{made}</ChecksumSHA256>".encode(), first.body)
        self.assertIn(b"<ChecksumType>COMPOSITE</ChecksumType>", first.body)
        again = self.complete("c", uid, body, **{"x-amz-checksum-sha256": made})
        self.assertEqual(again.body, first.body)
        self.assertEqual(self.complete("c", uid, body).body, first.body)
        wrong = ck.composite("SHA256", [ck.checksum_of("SHA256", b"other")])
        got = self.complete("c", uid, body, **{"x-amz-checksum-sha256": wrong})
        self.assertEqual((got.status, got.code()), (400, "BadDigest"))
        got = self.complete("c", uid, body, **{"x-amz-mp-object-size": "999"})
        self.assertEqual((got.status, got.code()), (400, "InvalidRequest"))
        self.assertEqual(
            self.complete("c", uid, body, **{"x-amz-mp-object-size": "1000"}).status, 200
        )

    def test_forgotten_after_the_expiry_job_passes(self) -> None:
        now = [self.s3.engine.core.now_ns()]
        self.patch(self.s3.engine.core, "now_ns", lambda: now[0])
        uid, body = self.uploaded("k", [b"k" * 10])
        self.assertEqual(self.complete("k", uid, body).status, 200)
        hour = 3600 * 10**9
        forget = self.s3.engine.multipart.forget_completed
        self.assertEqual(self.successResultOf(forget(hour)), 0)
        self.assertEqual(self.complete("k", uid, body).status, 200)
        now[0] += hour + 1
        self.assertEqual(self.successResultOf(forget(hour)), 1)
        got = self.complete("k", uid, body)
        self.assertEqual((got.status, got.code()), (404, "NoSuchUpload"))
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, b"k" * 10)


class SamePartTwiceTests(MultipartMemoryCase):
    """Two uploads of part 1 at once, their bodies interleaved by hand."""

    def start_part(self, uid: str, data: bytes) -> Any:
        """A connection that sent the headers and the first half of a part's body."""
        conn = self.s3.connect()
        target = f"/bkt/k?partNumber=1&uploadId={uid}"
        conn.send(self.s3.head_block("PUT", target, {"content-length": str(len(data))}))
        conn.send(data[: len(data) // 2])
        self.assertIsNone(conn.response())
        return conn

    def finish_part(self, conn: Any, data: bytes) -> str:
        conn.send(data[len(data) // 2 :])
        got = conn.response()
        self.assertIsNotNone(got)
        self.assertEqual(got.status, 200, got.body)
        etag: str = got.header("etag")
        return etag

    def test_first_started_finishes_last_and_wins(self) -> None:
        uid = self.create("k")
        first, second = b"A" * 3000, b"B" * 3000
        conn = self.start_part(uid, first)
        second_etag = self.part("k", uid, 1, second).header("etag") or ""
        first_etag = self.finish_part(conn, first)
        listed = self.s3.request("GET", f"/bkt/k?uploadId={uid}").body
        self.assertIn(first_etag.replace('"', "&quot;").encode(), listed)
        self.assertEqual(listed.count(b"<Part>"), 1)
        # the loser's answer alone does not complete; both answers, in the order received, do
        got = self.complete("k", uid, document([(1, second_etag)]))
        self.assertEqual((got.status, got.code()), (400, "InvalidPart"))
        got = self.complete("k", uid, document([(1, first_etag), (1, second_etag)]))
        self.assertEqual((got.status, got.code()), (400, "InvalidPart"))
        done = self.complete("k", uid, document([(1, second_etag), (1, first_etag)]))
        self.assertEqual(done.status, 200, done.body)
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, first)

    def test_second_started_finishes_last_and_wins(self) -> None:
        uid = self.create("k")
        first, second = b"A" * 3000, b"B" * 3000
        conn_first = self.start_part(uid, first)
        conn_second = self.start_part(uid, second)
        self.finish_part(conn_first, first)
        second_etag = self.finish_part(conn_second, second)
        done = self.complete("k", uid, document([(1, second_etag)]))
        self.assertEqual(done.status, 200, done.body)
        self.assertEqual(self.s3.request("GET", "/bkt/k").body, second)


class PartChecksumTests(MultipartMemoryCase):
    def upload_with(self, alg: str, kind: str, parts: list[bytes]) -> tuple[list[str], bytes]:
        """Complete an upload of ``parts`` with checksum ``alg``/``kind``; the part values."""
        uid = self.create("c", {"x-amz-checksum-algorithm": alg, "x-amz-checksum-type": kind})
        values, named = [], []
        for n, data in enumerate(parts, 1):
            value = ck.checksum_of(alg, data)
            got = self.part("c", uid, n, data, {ck.header_name(alg): value})
            values.append(value)
            named.append((n, got.header("etag") or ""))
        done = self.complete("c", uid, document(named))
        self.assertEqual(done.status, 200, done.body)
        self.assertIn(f"<ChecksumType>{kind}</ChecksumType>".encode(), done.body)
        return values, done.body

    def test_get_and_head_of_a_part(self) -> None:
        parts = [b"1" * 3000, b"2" * 2000, b"3" * 10]
        for alg, kind in (("SHA256", "COMPOSITE"), ("CRC32", "FULL_OBJECT")):
            values, _ = self.upload_with(alg, kind, parts)
            mode = {"x-amz-checksum-mode": "ENABLED"}
            for n, data in enumerate(parts, 1):
                for method in ("GET", "HEAD"):
                    got = self.s3.request(method, f"/bkt/c?partNumber={n}", headers=mode)
                    self.assertEqual(got.status, 206, (alg, n, method))
                    self.assertEqual(got.header(ck.header_name(alg)), values[n - 1], (alg, n))
                    self.assertEqual(got.header("x-amz-checksum-type"), kind, (alg, n))
                    self.assertEqual(got.header("x-amz-mp-parts-count"), "3")
                got = self.s3.request("GET", f"/bkt/c?partNumber={n}")
                self.assertEqual(got.body, data)
                self.assertIsNone(got.header(ck.header_name(alg)))
                self.assertIsNone(got.header("x-amz-checksum-type"))
            whole = self.s3.request("HEAD", "/bkt/c", headers=mode)
            self.assertEqual(whole.header("x-amz-checksum-type"), kind)
            self.assertNotIn(whole.header(ck.header_name(alg)), values)
            ranged = self.s3.request("GET", "/bkt/c", headers={**mode, "range": "bytes=0-9"})
            self.assertIsNone(ranged.header(ck.header_name(alg)))
            self.assertIsNone(ranged.header("x-amz-checksum-type"))

    def test_get_object_attributes_lists_part_checksums(self) -> None:
        values, _ = self.upload_with("SHA256", "COMPOSITE", [b"a" * 2000, b"b" * 1000])
        got = self.s3.request(
            "GET", "/bkt/c?attributes", headers={"x-amz-object-attributes": "ObjectParts,Checksum"}
        )
        self.assertEqual(got.status, 200, got.body)
        for n, value in enumerate(values, 1):
            self.assertIn(
                f"<Part><PartNumber>{n}</PartNumber><Size>{3000 - 1000 * n}</Size>"
                f"<ChecksumSHA256>{value}</ChecksumSHA256></Part>".encode(),
                got.body,
            )
        self.assertIn(b"<ChecksumType>COMPOSITE</ChecksumType>", got.body)

    def test_parts_without_checksums_list_none(self) -> None:
        uid, body = self.uploaded("p", [b"p" * 100, b"q" * 100])
        self.assertEqual(self.complete("p", uid, body).status, 200)
        mode = {"x-amz-checksum-mode": "ENABLED"}
        got = self.s3.request("GET", "/bkt/p?partNumber=1", headers=mode)
        self.assertEqual(got.status, 206)
        self.assertFalse([h for h in got.headers if h.startswith("x-amz-checksum")])
        got = self.s3.request(
            "GET", "/bkt/p?attributes", headers={"x-amz-object-attributes": "ObjectParts"}
        )
        self.assertNotIn(b"Checksum", got.body)

    def test_single_part_object_says_full_object(self) -> None:
        value = ck.checksum_of("CRC32C", b"single")
        put = self.s3.request("PUT", "/bkt/s", b"single", {"x-amz-checksum-crc32c": value})
        self.assertEqual(put.status, 200, put.body)
        got = self.s3.request("HEAD", "/bkt/s", headers={"x-amz-checksum-mode": "ENABLED"})
        self.assertEqual(got.header("x-amz-checksum-crc32c"), value)
        self.assertEqual(got.header("x-amz-checksum-type"), "FULL_OBJECT")
        plain = self.s3.request("HEAD", "/bkt/s")
        self.assertIsNone(plain.header("x-amz-checksum-type"))
