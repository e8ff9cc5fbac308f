"""An upload that deduplicates against a released chunk must not race its purge.

Found by the crash campaign and the soak: a PUT whose content equals a chunk
released long ago (count 0, older than the compaction grace period) used to
skip writing it (the dedup check saw the index entry), then compaction purged
the entry, and the PUT's commit failed with ``InternalError`` ("a chunk this
object needs is missing; retry"). The dedup check now counts only chunks with
references: released content is written again, and the commit either revives
the released entry (the new copy is dead) or, if it was purged meanwhile,
indexes the new copy. Here the interleaving is forced step by step.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from s4d.features import objects as fo
from tests.store.helpers import NOW, get, open_store, put


class DedupPurgeRaceTests(SynchronousTestCase):
    def test_released_chunk_purged_between_dedup_and_commit(self) -> None:
        store = open_store(self)
        store.commit(lambda t: fo.create_bucket(t, "b", "us-east-1", NOW))
        data = b"released content " * 1000
        put(store, "b", "old", data)
        store.commit(lambda t: fo.delete_object(t, "b", "old", None, NOW))
        written = store.put_chunk(data)  # the dedup check of a new upload
        self.assertIsNotNone(written.location, "released content must be written again")
        store.commit(lambda t: t.chunks.purge(written.ref.digest))  # compaction's purge
        new = fo.NewObject(size=len(data), etag="0" * 32)
        store.commit(
            lambda t: fo.put_object(t, "b", "new", new, [written], fo.WriteConditions(), NOW),
            frozenset({written.location.segment}),
        )
        self.assertEqual(get(store, "b", "new"), data)

    def test_released_chunk_revived_when_not_purged(self) -> None:
        store = open_store(self)
        store.commit(lambda t: fo.create_bucket(t, "b", "us-east-1", NOW))
        data = b"revived content " * 1000
        put(store, "b", "old", data)
        store.commit(lambda t: fo.delete_object(t, "b", "old", None, NOW))
        put(store, "b", "new", data)
        self.assertEqual(get(store, "b", "new"), data)

    def test_live_chunk_is_still_deduplicated(self) -> None:
        store = open_store(self)
        store.commit(lambda t: fo.create_bucket(t, "b", "us-east-1", NOW))
        data = b"shared content " * 1000
        put(store, "b", "one", data)
        self.assertIsNone(store.put_chunk(data).location)
