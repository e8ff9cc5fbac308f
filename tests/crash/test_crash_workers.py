"""SIGKILL two busy workers committing small PUTs at once; no acknowledged PUT may be lost.

Strategy: a real ``twistd -n s4`` with ``S4_WORKERS=2`` and fsync on takes
small PUTs from :data:`THREADS` client threads. Each thread owns its keys,
writes new ones and overwrites its own, and reconnects every few requests so
both processes get connections: their group commits then interleave on LMDB's
write lock and share syncs (:mod:`s4d.store.durability`), which is the path
under test. Before the kill the test checks that both processes wrote (their
``/proc/PID/io`` ``wchar`` grew by many objects' worth), so a round where one
worker idled cannot pass unnoticed. The process group then gets SIGKILL at a
random moment; ``s4d fsck`` must find the directory clean; the server restarts
(one worker or two, alternately) and every key must read back as its last
acknowledged content or the one in flight when the kill landed.

``S4D_CRASH_WORKER_ROUNDS`` sets the rounds (default 4), ``S4D_CRASH_SEED``
the seed.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import ServerGroup, sha256
from tests.crash.campaign import SERVER_ENV, assert_fsck_clean

BUCKET = "workers"
THREADS = 12
KEYS_PER_THREAD = 40
#: each process must have written at least this much while under load
MIN_WCHAR = 64 * 4096


def wchar(pid: int) -> int:
    """Bytes ``pid`` has written (files and sockets), or 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Writer(threading.Thread):
    """Small PUTs to the keys of one prefix; remembers what was acknowledged."""

    def __init__(self, server: ServerGroup, prefix: str, seed: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.server, self.prefix, self.stop = server, prefix, stop
        self.rng = random.Random(seed)
        #: key -> SHA-256 of the last acknowledged content
        self.acked: dict[str, str] = {}
        #: the PUT in flight when the server died: key and content's SHA-256
        self.pending: tuple[str, str] | None = None
        self.count = 0
        self.failure = ""

    def run(self) -> None:
        client = self.server.client(timeout=30)
        try:
            while not self.stop.is_set():
                key = f"{self.prefix}k{self.rng.randrange(KEYS_PER_THREAD)}"
                body = self.rng.randbytes(self.rng.choice((100, 4096, 9000)))
                self.pending = (key, sha256(body))
                try:
                    answer = client.put(BUCKET, key, body)
                except OSError:
                    return  # the kill: this PUT stays pending
                if answer.status != 200:
                    if not self.stop.is_set():
                        self.failure = f"PUT {key} -> {answer.status} {answer.error_text()}"
                    return
                self.acked[key] = sha256(body)
                self.pending = None
                self.count += 1
                if self.count % 5 == 0:
                    client.close()  # a new connection may land on the other worker
        except Exception as e:  # noqa: BLE001 - reported by the test
            if not self.stop.is_set():
                self.failure = repr(e)
        finally:
            client.close()


class TwoWorkerCrashTests(SynchronousTestCase):
    def test_sigkill_of_two_committing_workers_loses_nothing(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_WORKER_ROUNDS", "4"))
        seed = int(os.environ.get("S4D_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        work = os.path.abspath(self.mktemp())
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        self.addCleanup(shutil.rmtree, work, True)
        log_path = os.path.join(work, "server.log")
        env = {**SERVER_ENV, "S4_COMPACTION_INTERVAL_HOURS": "1", "S4_SCRUB_INTERVAL_SECS": "0"}
        #: key -> the contents it may hold (last acknowledged, or that plus the one in flight)
        expected: dict[str, set[str | None]] = {}
        server: ServerGroup | None = None

        def cleanup() -> None:
            if server is not None:
                server.kill()

        self.addCleanup(cleanup)
        total = 0
        for round_no in range(rounds + 1):
            where = f"seed {seed}, round {round_no}"
            workers_n = 2 if round_no < rounds else 1
            server = ServerGroup(data_dir, log_path, {**env, "S4_WORKERS": str(workers_n)})
            server.start()
            client = server.client()
            if round_no == 0:
                self.assertEqual(client.request("PUT", BUCKET).status, 200)
            for key, possible in sorted(expected.items(), key=lambda kv: kv[0]):
                answer = client.get(BUCKET, key)
                if answer.status == 404 and None in possible:
                    del expected[key]  # its only PUT was in flight and did not land
                    continue
                self.assertEqual(answer.status, 200, f"{where}: {key} lost")
                found = sha256(answer.body)
                self.assertIn(found, possible, f"{where}: {key} is neither acked nor in flight")
                expected[key] = {found}
            client.close()
            if round_no == rounds:
                break
            pids = server.pids()
            self.assertEqual(len(pids), 2, where)
            before = {pid: wchar(pid) for pid in pids}
            stop = threading.Event()
            writers = [
                Writer(server, f"r{round_no}t{i}/", rng.randrange(1 << 30), stop)
                for i in range(THREADS)
            ]
            for w in writers:
                w.start()
            # Both processes must be committing when the kill lands.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if all(wchar(pid) - before[pid] >= MIN_WCHAR for pid in pids):
                    break
                time.sleep(0.05)
            grown = {pid: wchar(pid) - before[pid] for pid in pids}
            self.assertTrue(all(g >= MIN_WCHAR for g in grown.values()), f"{where}: {grown}")
            time.sleep(rng.uniform(0.1, 1.5))
            stop.set()
            server.kill()
            for w in writers:
                w.join(60)
                self.assertFalse(w.is_alive(), where)
                self.assertEqual(w.failure, "", where)
                total += w.count
                for key, digest in w.acked.items():
                    expected[key] = {digest}
                if w.pending is not None:
                    key, digest = w.pending
                    # never acknowledged before: the key may also be absent
                    expected.setdefault(key, {None}).add(digest)
            assert_fsck_clean(self, data_dir, where)
        self.assertGreater(total, 0)
        assert server is not None
        server.kill()
        server = None
