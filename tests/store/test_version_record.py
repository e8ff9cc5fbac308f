"""The binary version record (:mod:`s4d.store.version_record`) and its JSON predecessor.

Strategy: round-trip versions of every shape through the binary form and
through the old JSON form (both must decode to the same record); check what
listings skip (``chunks=False``), which fields take their compact forms (and
that an unusual value falls back to the JSON tail rather than being lost), and
that a damaged record is a :class:`~s4d.store.codec.CodecError` that fsck
reports, as is an inline record that also names chunks.
"""

from __future__ import annotations

import hashlib
import random

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import codec, fsck
from s4d.store.model import ChunkRef, ObjectLock, ObjectVersion
from s4d.store.version_record import (
    F_CHECKSUMS,
    F_ETAG_MD5,
    F_INLINE,
    F_NULL_VID,
    F_REST,
    FORMAT_BINARY,
    decode_version,
    encode_version,
)
from tests.store.helpers import create_bucket, open_store, put

DATA = bytes(range(100))
MD5 = hashlib.md5(DATA).hexdigest()


def shapes() -> list[ObjectVersion]:
    """Versions of many shapes."""
    rng = random.Random(7)
    digest = bytes(rng.randrange(256) for _ in range(32))
    return [
        ObjectVersion("null", 1, 100, MD5, 1_700_000_000_123_456_789, inline=DATA),
        ObjectVersion("null", 2, 100, "not-the-md5", 5, inline=DATA),
        ObjectVersion("0123456789abcdef0123456789abcdef", 1 << 40, 0, "", 7),
        ObjectVersion("0123456789abcdef0123456789abcdeF", 3, 1, "e", 7, inline=b"z"),
        ObjectVersion("vid", 4, 0, "", 9, delete_marker=True),
        ObjectVersion(
            "null",
            5,
            6 << 20,
            "00112233445566778899aabbccddeeff-2",
            11,
            content_type="application/x-é",
            metadata={"colour": "blue"},
            headers={"Cache-Control": "no-cache"},
            storage_class="STANDARD_IA",
            checksums={"CRC32": "AAECAw==", "SHA256": "A" * 43 + "="},
            chunks=[ChunkRef(digest, 4 << 20), ChunkRef(digest[::-1], 2 << 20)],
            parts=[5 << 20, 1 << 20],
            part_checksums=["AAECAw==", "BAUGBw=="],
            extra={"sse": "AES256"},
            tags={"a": "1", "b": ""},
            lock=ObjectLock("COMPLIANCE", 123, True),
        ),
        # a checksum that is not a plain digest stays in the JSON tail, unchanged
        ObjectVersion("null", 6, 3, "e", 1, inline=b"abc", checksums={"CRC32": "AAECAw==-3"}),
        ObjectVersion("null", 7, 3, "e", 1, inline=b"abc", checksums={"MD9": "AAECAw=="}),
    ]


class RoundTripTests(SynchronousTestCase):
    def test_binary_and_json_forms_decode_alike(self) -> None:
        for version in shapes():
            raw = encode_version(version)
            self.assertEqual(raw[0], FORMAT_BINARY)
            self.assertEqual(decode_version(raw), version)
            self.assertEqual(decode_version(codec.encode(version.encode())), version)

    def test_listings_skip_the_body(self) -> None:
        for version in shapes():
            for raw in (encode_version(version), codec.encode(version.encode())):
                listed = decode_version(raw, "k", chunks=False)
                self.assertEqual((listed.chunks, listed.inline, listed.key), ([], None, "k"))
                self.assertEqual(
                    (listed.size, listed.etag, listed.checksums),
                    (version.size, version.etag, version.checksums),
                )

    def test_compact_forms(self) -> None:
        small = shapes()[0]
        raw = encode_version(small)
        flags = raw[1]
        self.assertEqual(flags, F_NULL_VID | F_INLINE | F_ETAG_MD5)
        # tag, flags, seq, mtime, length, bytes: nothing else
        self.assertEqual(len(raw), 1 + 1 + 1 + 8 + 1 + len(DATA))
        self.assertEqual(len(encode_version(shapes()[1])), len(raw) + len("not-the-md5") + 1)
        summed = ObjectVersion("null", 1, 100, MD5, 1, inline=DATA, checksums={"CRC32": "AAECAw=="})
        raw = encode_version(summed)
        self.assertTrue(raw[1] & F_CHECKSUMS or raw[2] & (F_CHECKSUMS >> 7))
        self.assertNotIn(b"CRC32", raw)
        self.assertIn(b"CRC32", encode_version(shapes()[6]))  # kept in the tail
        self.assertTrue(encode_version(shapes()[7])[1] & F_REST)

    def test_inline_size_must_match(self) -> None:
        with self.assertRaises(ValueError):
            encode_version(ObjectVersion("null", 1, 5, "", 1, inline=b"abc"))

    def test_damaged_records(self) -> None:
        raw = encode_version(shapes()[5])
        for bad in (raw[:-60], raw[:20], b"\x02", b"\x07{}", b"", raw[:3] + b"\xff" * 40):
            with self.assertRaises(codec.CodecError):
                decode_version(bad)


class FsckTests(SynchronousTestCase):
    def test_damaged_and_inconsistent_records_are_reported(self) -> None:
        store = open_store(self)
        create_bucket(store, "b")
        put(store, "b", "k", b"x" * 5000)
        put(store, "b", "j", b"y" * 5000)
        self.assertEqual(fsck.check_store(store).problems, [])
        with store.env.begin(write=True) as txn:
            cursor = txn.cursor(db=store.dbs.versions)
            records = [(bytes(k), decode_version(v)) for k, v in cursor]
            first, second = records
            txn.put(first[0], encode_version(first[1])[:-5], db=store.dbs.versions)
            both = second[1]
            both.inline = b"y" * both.size
            # the binary form cannot say both; the JSON one can
            txn.put(second[0], codec.encode(both.encode()), db=store.dbs.versions)
        kinds = sorted(p.kind for p in fsck.check_store(store).problems)
        self.assertIn(fsck.BAD_VERSION, kinds)
        self.assertEqual(kinds.count(fsck.BAD_VERSION), 2)
