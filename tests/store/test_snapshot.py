"""The reactor thread's shared read transaction (s4d.store.snapshot): shared, yet never stale.

A snapshot is reused by every read until something newer is committed, by this
store or by another process on the same data directory, and each read sees
every commit made before it, exactly as a new transaction would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from twisted.trial.unittest import SynchronousTestCase

from s4d.features import buckets as fb
from s4d.store.store import Store
from s4d.store.txn import MetaTxn
from tests.store.helpers import open_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Opens the store in another process and creates a bucket there (then closes it).
OTHER_PROCESS = """
import sys
from s4d.features import buckets as fb
from s4d.store.store import Store, StoreConfig
store = Store(StoreConfig(sys.argv[1], map_size=1 << 30, fsync=False), inline_commit=True)
store.commit(lambda t: fb.create_bucket(t, sys.argv[2], "us-east-1", 1))
store.close()
"""


def bucket_names(t: MetaTxn) -> set[str]:
    """The buckets ``t`` sees."""
    return {b.name for b in fb.list_buckets(t)}


def open_shared(case: SynchronousTestCase, path: str | None = None) -> Store:
    """A store whose snapshot is enabled (as the service enables it)."""
    store = open_store(case, path)
    store.snapshots.enable()
    return store


class ReadSnapshotTests(SynchronousTestCase):
    def test_off_until_enabled(self) -> None:
        store = open_store(self)
        self.assertIsNone(store.snapshot())
        store.snapshots.enable()
        self.assertIsNotNone(store.snapshot())
        store.snapshots.enable(False)
        self.assertIsNone(store.snapshot())

    def test_reused_until_something_is_committed(self) -> None:
        store = open_shared(self)
        first = store.snapshot()
        self.assertIsNotNone(first)
        self.assertIs(store.snapshot(), first)
        self.assertEqual(store.snapshots.opened, 1)
        store.commit(lambda t: fb.create_bucket(t, "one", "us-east-1", 1))
        after = store.snapshot()
        assert after is not None
        self.assertIsNot(after, first)
        self.assertEqual(bucket_names(after), {"one"})
        self.assertEqual(store.snapshots.opened, 2)

    def test_sees_a_commit_of_another_process_at_once(self) -> None:
        path = self.mktemp()
        store = open_shared(self, path)
        before = store.snapshot()
        assert before is not None
        self.assertEqual(bucket_names(before), set())
        env = dict(os.environ, PYTHONPATH=ROOT)
        subprocess.run([sys.executable, "-c", OTHER_PROCESS, path, "theirs"], env=env, check=True)
        seen = store.snapshot()
        assert seen is not None
        self.assertEqual(bucket_names(seen), {"theirs"})

    def test_released_snapshot_is_replaced(self) -> None:
        store = open_shared(self)
        first = store.snapshot()
        store.snapshots.release()
        second = store.snapshot()
        self.assertIsNot(second, first)
        self.assertEqual(store.snapshots.opened, 2)
        store.snapshots.release()
        store.snapshots.release()  # twice is harmless

    def test_other_threads_get_none(self) -> None:
        store = open_shared(self)
        got: list[object] = []
        thread = threading.Thread(target=lambda: got.append(store.snapshot()))
        thread.start()
        thread.join()
        self.assertEqual(got, [None])
        self.assertIsNotNone(store.snapshot())

    def test_close_with_a_snapshot_open(self) -> None:
        store = open_shared(self)
        self.assertIsNotNone(store.snapshot())
        store.close()
