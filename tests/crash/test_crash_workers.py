"""SIGKILL two busy workers committing small PUTs at once; no acknowledged PUT may be lost.

Strategy: a real ``twistd -n s4`` with ``S4_WORKERS=2`` in every round and
fsync on takes small PUTs from :data:`THREADS` client threads (the round loop
is :func:`tests.crash.campaign.run_campaign`'s). Each thread owns the keys of
one prefix, writes new ones and overwrites its own (also those of earlier
rounds), and reconnects every few requests so both processes get connections:
their group commits then interleave on LMDB's write lock and share syncs
(:mod:`s4d.store.durability`), which is the path under test. Before the kill
the campaign checks that both processes wrote (their ``/proc/PID/io``
``wchar`` grew by many objects' worth, :meth:`WorkerPuts.under_load`), so a
round where one worker idled cannot pass unnoticed. The process group then
gets SIGKILL at a random moment; ``s4d fsck`` must find the directory clean;
the server restarts and every key must read back as its last acknowledged
content or the one in flight when the kill landed.

``S4D_CRASH_WORKER_ROUNDS`` sets the rounds (default 4), ``S4D_CRASH_SEED``
the seed.
"""

from __future__ import annotations

import http.client
import os
import random
import sys
import threading
import time
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import S3Http, ServerGroup, sha256
from tests.crash.campaign import Campaign, campaign_seed, run_campaign

BUCKET = "workers"
THREADS = 12
KEYS_PER_THREAD = 40
#: each process must have written at least this much while under load
MIN_WCHAR = 64 * 4096
#: how long the load may take to reach both processes
LOAD_DEADLINE = 60.0


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


class KeysModel:
    """What the keys of one prefix may hold: acknowledged, and in flight at the kill.

    :ivar possible: key -> the contents (SHA-256) it may hold; ``None`` among
        them: the key may also be absent (its only PUT was in flight).
    :ivar pending: the PUT in flight (key, SHA-256 of its body), if any.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.possible: dict[str, set[str | None]] = {}
        self.pending: tuple[str, str] | None = None

    def acknowledged(self, key: str, digest: str) -> None:
        """A PUT answered 200: the key holds exactly this."""
        self.possible[key] = {digest}
        self.pending = None

    def settle(self, client: S3Http) -> list[str]:
        """After a restart: read every key back; the problems (and the model made exact)."""
        if self.pending is not None:
            key, digest = self.pending
            self.possible.setdefault(key, {None}).add(digest)
            self.pending = None
        problems = []
        for key, possible in sorted(self.possible.items()):
            answer = client.get(BUCKET, key)
            if answer.status == 404 and None in possible:
                del self.possible[key]  # its only PUT was in flight and did not land
                continue
            if answer.status != 200:
                problems.append(f"{key} lost: {answer.status} {answer.error_text()}")
                continue
            found = sha256(answer.body)
            if found not in possible:
                problems.append(f"{key} is neither acknowledged nor in flight")
                continue
            self.possible[key] = {found}
        return problems


class Writer(threading.Thread):
    """Small PUTs to the keys of one prefix, told to its model, until stopped.

    :param killed: set (with ``stop``) when the server was killed: a broken
        connection then ends the thread, leaving its PUT pending.
    """

    def __init__(
        self,
        server: ServerGroup,
        model: KeysModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> None:
        super().__init__(name=f"writer {model.prefix}", daemon=True)
        self.server, self.model, self.stop, self.killed = server, model, stop, killed
        self.rng = random.Random(seed)
        self.acked: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        #: answers that contradict the model (a PUT refused)
        self.wrong: list[str] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        client = self.server.client(timeout=30)
        try:
            while not self.stop.is_set():
                key = f"{self.model.prefix}k{self.rng.randrange(KEYS_PER_THREAD)}"
                body = self.rng.randbytes(self.rng.choice((100, 4096, 9000)))
                self.model.pending = (key, sha256(body))
                try:
                    answer = client.put(BUCKET, key, body)
                except (OSError, http.client.HTTPException) as e:
                    if not self.killed.is_set():
                        self.errors[f"put connection {type(e).__name__}"] += 1
                    return  # this PUT stays pending
                if answer.status != 200:
                    if not self.stop.is_set():
                        self.wrong.append(f"PUT {key} -> {answer.status} {answer.error_text()}")
                    return
                self.model.acknowledged(key, sha256(body))
                self.acked["put"] += 1
                if self.acked["put"] % 5 == 0:
                    client.close()  # a new connection may land on the other worker
        except BaseException as e:  # noqa: BLE001 - reported by the driver
            if not self.killed.is_set():
                self.failure = e
        finally:
            client.close()


class WorkerPuts(Campaign):
    """Small PUTs from :data:`THREADS` writers, one prefix each, into two committing workers."""

    bucket = BUCKET
    load_seconds = (0.1, 1.5)
    processes = 2
    exact_processes = True
    server_env = {"S4_COMPACTION_INTERVAL_HOURS": "1", "S4_SCRUB_INTERVAL_SECS": "0"}

    def __init__(self) -> None:
        super().__init__(KeysModel(f"t{i}/") for i in range(THREADS))
        #: how much each process wrote before the kill, per round
        self.grown: list[list[int]] = []

    def verify(self, client: S3Http, rng: random.Random) -> list[str]:
        """Every key holds its acknowledged content, or the one in flight at the kill."""
        problems = []
        for model in self.models:
            problems += model.settle(client)
        return problems

    def worker(
        self,
        server: ServerGroup,
        model: KeysModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> Writer:
        return Writer(server, model, seed, stop, killed)

    def under_load(
        self, case: SynchronousTestCase, server: ServerGroup, processes: int, where: str
    ) -> None:
        """Both processes must be committing when the kill lands: wait until each wrote."""
        pids = server.pids()
        case.assertEqual(len(pids), processes, where)
        before = {pid: wchar(pid) for pid in pids}
        deadline = time.monotonic() + LOAD_DEADLINE
        while time.monotonic() < deadline:
            if all(wchar(pid) - before[pid] >= MIN_WCHAR for pid in pids):
                break
            time.sleep(0.05)
        grown = {pid: wchar(pid) - before[pid] for pid in pids}
        case.assertTrue(all(g >= MIN_WCHAR for g in grown.values()), f"{where}: {grown}")
        self.grown.append(sorted(grown.values()))


class TwoWorkerCrashTests(SynchronousTestCase):
    def test_sigkill_of_two_committing_workers_loses_nothing(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_WORKER_ROUNDS", "4"))
        seed = campaign_seed()
        load = WorkerPuts()
        run = run_campaign(self, load, rounds, seed)
        held = sum(len(m.possible) for m in load.models)
        acked = load.counts["acked"]
        summary = (
            f"workers crash campaign (seed {run.seed}): {rounds} rounds in "
            f"{run.seconds:.0f} s, PUTs acknowledged {acked['put']}, {held} keys held at the "
            f"end, bytes written per process before the kills {load.grown}, "
            f"errors answered {dict(load.counts['errors']) or 0}, losses 0"
        )
        sys.stderr.write("\n" + summary + "\n")
        self.assertGreater(acked["put"], 0, summary)
