"""Shared durability (s4d.store.durability): no commit is reported before a sync covers it.

The cross-process tests run real processes against a *fake* environment kept in
files: a commit takes a file lock (LMDB's write lock), hands out the next
transaction id and appends ``commit P T`` to an event log; a sync appends
``sync X`` where ``X`` is the last id committed when it began (what a real
``fdatasync`` of the data file covers). A waiter appends ``release P T`` once
:meth:`SharedDurability.wait` returns. Replaying the log must show every
release preceded by a sync (or a later commit's page sync) covering it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import durability
from s4d.store.committer import _STOP, BATCH_TXN_KEY, Committer, _Request
from s4d.store.durability import SharedDurability
from s4d.store.schema import U64
from s4d.store.store import Store, StoreConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeEnv:
    """LMDB's write lock, transaction ids and sync, in files shared by processes.

    ``flock`` excludes other processes only: threads of one process share the
    descriptor, so a thread lock stands in for LMDB's in-process writer mutex.
    """

    def __init__(self, directory: str) -> None:
        self.writer = threading.Lock()
        self.lock_fd = os.open(os.path.join(directory, "wlock"), os.O_RDWR | os.O_CREAT)
        self.log_fd = os.open(
            os.path.join(directory, "events"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
        self.pid = os.getpid()

    def log(self, line: str) -> None:
        os.write(self.log_fd, (line + "\n").encode())

    def _last(self) -> int:
        raw = os.pread(self.lock_fd, 8, 0)
        return U64.unpack(raw)[0] if len(raw) == 8 else 0

    def commit(self) -> int:
        """One write transaction: the next id, logged while the write lock is held."""
        with self.writer:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
            try:
                txnid = self._last() + 1
                # logged before it is visible to last(), as LMDB writes the meta page first
                self.log(f"commit {self.pid} {txnid}")
                os.pwrite(self.lock_fd, U64.pack(txnid), 0)
                return txnid
            finally:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def last(self) -> int:
        """The newest committed id (``env.info()["last_txnid"]``)."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
        try:
            return self._last()
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def sync(self) -> None:
        """What an fdatasync covers: every transaction committed before it began."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
        try:
            covered = self._last()
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
        self.log(f"sync {self.pid} {covered}")
        os.sched_yield()


def child(directory: str, threads: int, commits: int) -> None:
    """One process: ``threads`` committers, each commit waited for, then released."""
    env = FakeEnv(directory)
    shared = SharedDurability(directory, env.sync, env.last)

    def run() -> None:
        for _ in range(commits):
            txnid = env.commit()
            shared.committed(txnid)
            shared.wait(txnid)
            env.log(f"release {env.pid} {txnid}")

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    env.log(f"done {env.pid} syncs={shared.syncs} shared={shared.shared}")
    shared.close()


def replay(lines: list[str]) -> tuple[int, int, list[str]]:
    """Releases seen, syncs seen, and every release that came before its transaction was durable."""
    durable = 0
    committed: set[int] = set()
    early = []
    releases = syncs = 0
    for line in lines:
        kind, _pid, value = line.split()[:3]
        if kind == "commit":
            txnid = int(value)
            committed.add(txnid)
            # this commit's own page sync made every earlier transaction durable
            durable = max(durable, txnid - 1)
        elif kind == "sync":
            durable = max(durable, int(value))
            syncs += 1
        elif kind == "release":
            releases += 1
            if int(value) not in committed or int(value) > durable:
                early.append(line)
    return releases, syncs, early


class SharedDurabilityProcessTests(SynchronousTestCase):
    def test_no_waiter_released_before_a_sync_covers_it(self) -> None:
        directory = tempfile.mkdtemp(prefix="s4d-durable-")
        self.addCleanup(shutil.rmtree, directory, True)
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; from tests.store.test_durability import child; "
                    "child(sys.argv[1], 4, 150)",
                    directory,
                ],
                env=dict(os.environ, PYTHONPATH=ROOT),
            )
            for _ in range(3)
        ]
        for p in procs:
            self.assertEqual(p.wait(120), 0)
        with open(os.path.join(directory, "events")) as f:
            lines = f.read().splitlines()
        releases, syncs, early = replay([x for x in lines if not x.startswith("done")])
        self.assertEqual(releases, 3 * 4 * 150)
        self.assertEqual(early, [])
        # at least one sync ran, and no more than one per commit
        self.assertGreater(syncs, 0)
        self.assertLessEqual(syncs, releases)

    def test_replay_catches_an_early_release(self) -> None:
        """The checker itself: a release before any covering sync is reported."""
        _, _, early = replay(["commit 1 1", "commit 2 2", "release 2 2", "sync 1 2"])
        self.assertEqual(early, ["release 2 2"])
        _, _, early = replay(["commit 1 1", "commit 2 2", "release 1 1"])
        self.assertEqual(early, [])


class SharedDurabilityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="s4d-durable-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.syncs: list[str] = []

    def open(self, name: str = "a") -> SharedDurability:
        shared = SharedDurability(self.dir, lambda: self.syncs.append(name))
        self.addCleanup(shared.close)
        return shared

    def test_wait_syncs_once_then_is_covered(self) -> None:
        shared = self.open()
        self.assertTrue(shared.wait(3))
        self.assertEqual(self.syncs, ["a"])
        self.assertFalse(shared.wait(2))
        self.assertFalse(shared.wait(3))
        self.assertTrue(shared.wait(4))
        self.assertEqual(self.syncs, ["a", "a"])

    def test_one_process_sync_serves_another(self) -> None:
        first, second = self.open("a"), self.open("b")
        self.assertTrue(first.wait(10))
        # the second's transaction 9 committed before the first synced 10
        self.assertFalse(second.wait(9))
        self.assertEqual(second.shared, 1)
        self.assertTrue(second.wait(11))
        self.assertEqual(self.syncs, ["a", "b"])

    def test_a_later_commit_covers_the_earlier_ones(self) -> None:
        first, second = self.open("a"), self.open("b")
        first.committed(8)  # commit 8 synced its pages after 7's meta page
        self.assertTrue(first.covered(7))
        self.assertFalse(first.wait(7))
        self.assertEqual(self.syncs, [])
        # another process learns it from the meta pages (last_committed), not from
        # the shared record: a commit writes no file
        self.assertFalse(second.covered(7))
        self.assertTrue(second.wait(7))
        self.assertEqual(self.syncs, ["b"])

    def test_a_newer_commit_by_anyone_covers_without_a_sync(self) -> None:
        last = [5]
        shared = SharedDurability(self.dir, lambda: self.syncs.append("a"), lambda: last[0])
        self.addCleanup(shared.close)
        self.assertFalse(shared.wait(4))  # transaction 5's commit synced 4's meta page
        self.assertTrue(shared.wait(5))  # nothing after 5 yet
        last[0] = 9
        self.assertFalse(shared.wait(8))
        self.assertEqual(self.syncs, ["a"])

    def test_how_waits_were_answered_is_counted(self) -> None:
        last = [0]  # the newest committed transaction, as the meta pages say
        first = SharedDurability(self.dir, lambda: self.syncs.append("a"), lambda: last[0])
        second = SharedDurability(self.dir, lambda: self.syncs.append("b"), lambda: last[0])
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        self.assertTrue(first.wait(10))  # a sync of its own
        self.assertFalse(first.wait(9))  # its own sync covered it
        first.committed(13)  # its own commit covers 12
        last[0] = 13
        self.assertFalse(first.wait(12))
        self.assertFalse(second.wait(8))  # the first's sync covered it
        second.committed(15)
        last[0] = 15
        self.assertFalse(first.wait(14))  # the second's commit covered it
        self.assertEqual(
            (first.syncs, first.covered_here, first.covered_elsewhere, first.shared), (1, 2, 1, 3)
        )
        self.assertEqual((second.syncs, second.covered_here, second.covered_elsewhere), (0, 0, 1))

    def test_first_opener_forgets_a_stale_record(self) -> None:
        with open(os.path.join(self.dir, durability.LOCK_NAME), "wb") as f:
            f.write((1000).to_bytes(8, "little"))
        shared = self.open()
        # alone: the record of a previous run (maybe undone by a crash) is reset
        self.assertTrue(shared.wait(5))
        self.assertEqual(self.syncs, ["a"])

    def test_a_later_opener_keeps_the_live_record(self) -> None:
        first = self.open("a")
        self.assertTrue(first.wait(20))
        second = self.open("b")
        self.assertFalse(second.wait(20))
        self.assertEqual(self.syncs, ["a"])


class RecordingDurability(SharedDurability):
    """Records, in order, what the committer asks of it."""

    def __init__(self, directory: str, events: list[str]) -> None:
        self.events = events
        #: set at every commit
        self.commits = threading.Event()
        super().__init__(directory, lambda: events.append("sync"))

    def committed(self, txnid: int) -> None:
        self.events.append(f"committed {txnid}")
        super().committed(txnid)
        self.commits.set()

    def wait(self, txnid: int) -> bool:
        self.events.append(f"wait {txnid}")
        return super().wait(txnid)


class CommitterDurabilityTests(SynchronousTestCase):
    def setUp(self) -> None:
        data_dir = tempfile.mkdtemp(prefix="s4d-durable-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        self.store = Store(StoreConfig(data_dir=data_dir))
        self.addCleanup(self.store.close)
        self.events: list[str] = []
        self.durability = RecordingDurability(
            os.path.join(self.store.config.data_dir, "meta"), self.events
        )
        self.addCleanup(self.durability.close)

    def committer(self, inline: bool) -> Committer:
        c = Committer(
            self.store.dbs, self.store.segments, inline=inline, durability=self.durability
        )
        self.addCleanup(c.stop)
        return c

    def _operation(self, key: bytes) -> object:
        def op(meta: object) -> bytes:
            self.events.append(f"apply {key.decode()}")
            return key

        return op

    def test_results_wait_for_a_covering_sync(self) -> None:
        committer = self.committer(inline=True)
        future = committer.submit(self._operation(b"k"))  # type: ignore[arg-type]

        def done(_: object) -> None:
            self.events.append("result")

        future.add_done_callback(done)
        self.assertEqual(future.result(), b"k")
        txnid = self.store.env.info()["last_txnid"]
        self.assertEqual(
            self.events, ["apply k", f"committed {txnid}", f"wait {txnid}", "sync", "result"]
        )

    def test_a_batch_that_writes_nothing_still_commits(self) -> None:
        """Its id must name a transaction that exists (an empty one commits nothing)."""
        committer = self.committer(inline=True)
        before = self.store.env.info()["last_txnid"]
        committer.submit(self._operation(b"k")).result()  # type: ignore[arg-type]
        after = self.store.env.info()["last_txnid"]
        self.assertEqual(after, before + 1)
        with self.store.env.begin() as txn:
            raw = txn.get(BATCH_TXN_KEY, db=self.store.dbs.counters)
        self.assertEqual(U64.unpack(raw)[0], after)

    def test_threaded_committer_reports_after_the_sync(self) -> None:
        committer = self.committer(inline=False)
        early: list[int] = []

        def op(meta: Any) -> int:
            return int(meta.txn.id())

        def done(future: Future[int]) -> None:
            # reported only once this process knows the transaction durable
            if not self.durability.covered(future.result()):
                early.append(future.result())

        futures = [committer.submit(op) for _ in range(200)]
        for f in futures:
            f.add_done_callback(done)
        for f in futures:
            f.result(30)
        self.assertEqual(early, [])
        self.assertIn("sync", self.events)

    def _stopped(self) -> Committer:
        """A threaded committer whose threads are gone: the test drives its stages."""
        committer = self.committer(inline=False)
        committer.stop()
        self.events.clear()
        return committer

    def _request(self, name: str) -> _Request:
        request = _Request(self._operation(name.encode()), frozenset())  # type: ignore[arg-type]
        request.future.add_done_callback(lambda _: self.events.append(f"result {name}"))
        return request

    def test_a_batch_in_the_sync_stage_is_waited_for(self) -> None:
        """While the sync stage holds a batch, the one committed before waits for it."""
        committer = self._stopped()
        first, second = self._request("a"), self._request("b")
        committer._sync_busy = True  # the sync stage has taken "b" and syncs its segments
        committer._synced.put(([first], {}))

        def hand_on() -> None:
            self.durability.commits.wait()
            committer._sync_busy = False
            committer._synced.put(([second], {}))
            committer._synced.put(_STOP)

        stage = threading.Thread(target=hand_on)
        stage.start()
        committer._apply_loop()
        stage.join()
        self.assertEqual((first.future.result(), second.future.result()), (b"a", b"b"))
        last = self.store.env.info()["last_txnid"]
        # "a" needed no sync of its own: "b"'s commit synced its pages after a's meta page
        self.assertEqual(
            self.events,
            [
                "apply a",
                f"committed {last - 1}",
                "apply b",
                f"committed {last}",
                "result a",
                f"wait {last}",
                "sync",
                "result b",
            ],
        )

    def test_a_failed_sync_stage_still_hands_on(self) -> None:
        """The applying thread may be waiting for the batch: it gets an empty one."""
        committer = self._stopped()

        def broken(segment_ids: set[int]) -> dict[int, int]:
            raise OSError(5, "Input/output error")

        self.patch(committer.segments, "sync", broken)
        request = _Request(self._operation(b"x"), frozenset({1}))  # type: ignore[arg-type]
        committer._queue.put(request)
        committer._queue.put(_STOP)
        committer._run()
        self.assertEqual(committer._synced.get_nowait(), ([], {}))
        self.assertIs(committer._synced.get_nowait(), _STOP)
        self.assertFalse(committer._sync_busy)
        self.assertIsInstance(request.future.exception(), Exception)
