"""Many small objects use a handful of files, not one inode each.

Strategy: 100,000 distinct 100-byte objects are stored through the real store
(``fsync=False``, inline commits, a thousand ``put_object`` calls per commit to
keep it quick), spread over a few hundred directories. The data directory must
then hold fewer than 20 files, and a sample of objects must read back.
"""

from __future__ import annotations

import hashlib
import time

from twisted.trial.unittest import SynchronousTestCase

from s4d.features import objects as fo
from s4d.store import listing
from s4d.store.chunks import WrittenChunk
from s4d.store.model import ObjectVersion
from s4d.store.txn import MetaTxn
from tests.store.helpers import NOW, create_bucket, files_under, get, open_store, segments_of

Batch = list[tuple[str, fo.NewObject, list[WrittenChunk]]]
COUNT = 100_000
BATCH = 1_000
SIZE = 100


def key_of(i: int) -> str:
    return f"d{i % 50}/sub{i % 7}/object-{i:06d}"


def data_of(i: int) -> bytes:
    return (f"{i:06d}".encode() * 17)[:SIZE]


class InodeTests(SynchronousTestCase):
    def test_hundred_thousand_objects(self) -> None:
        path = self.mktemp()
        store = open_store(self, path)
        create_bucket(store, "b")
        started = time.monotonic()
        for first in range(0, COUNT, BATCH):
            batch: Batch = []
            for i in range(first, first + BATCH):
                data = data_of(i)
                new = fo.NewObject(size=SIZE, etag=hashlib.md5(data).hexdigest())
                batch.append((key_of(i), new, [store.put_chunk(data)]))

            def put_all(t: MetaTxn, batch: Batch = batch) -> list[ObjectVersion]:
                cond = fo.WriteConditions()
                return [fo.put_object(t, "b", k, new, ch, cond, NOW) for k, new, ch in batch]

            segs = frozenset().union(*(segments_of(ch) for _, _, ch in batch))
            store.commit(put_all, segs)
        elapsed = time.monotonic() - started
        files = files_under(path)
        self.assertLess(len(files), 20, f"{files} after {elapsed:.1f}s")
        for i in (0, 1, 4999, 50_000, COUNT - 1):
            self.assertEqual(get(store, "b", key_of(i)), data_of(i))
        with store.read() as t:
            page = listing.list_objects(
                t, t.buckets.require("b"), prefix=b"d3/sub2/", max_keys=1000
            )
        expected = sorted(key_of(i) for i in range(COUNT) if i % 50 == 3 and i % 7 == 2)
        self.assertEqual([e.key for e in page.entries], expected)
        self.assertEqual(files, ["meta/data.mdb", "meta/lock.mdb", "segments/00000001.seg"])
