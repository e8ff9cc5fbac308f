"""SIGKILL a server while versions are locked, unlocked and deleted: no locked version goes.

Strategy: a real ``twistd -n s4`` (fsync on, as in the crash campaign of
:mod:`tests.crash.test_crash_http`, one process or ``S4_WORKERS=2`` in
alternate rounds) holds a bucket with object lock. Several
:class:`~tests.crash.lock_workload.LockWorker` threads, each owning one prefix,
PUT versions with and without lock headers, change retention (extend, shorten,
remove, change mode, with and without the bypass header) and legal holds,
delete versions one by one and with DeleteObjects, and put delete markers.
Retention is mostly 1-4 s long, so locks run out while the campaign goes on
and deletes that were refused succeed later. Every answer is checked against
the worker's model where timing leaves no doubt (a locked version deleted, or
a free one refused, is a failure).

At a random moment the server's process group gets SIGKILL. Then ``s4d fsck``
must find the data directory clean, the server is restarted on it, and each
model is settled against what the server holds
(:meth:`~tests.crash.lock_workload.LockModel.settle`): no acknowledged version
is gone, no locked version was removed (not even by the delete in flight), every
acknowledged retention and legal hold is there (or the one in flight), and each
key's newest surviving version is its current one. Rounds share the data
directory. ``S4D_CRASH_LOCK_ROUNDS`` sets the rounds (default :data:`CI_ROUNDS`),
``S4D_CRASH_SEED`` the seed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import threading
import time
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import ServerGroup
from tests.crash.lock_workload import LockModel, LockWorker, now_ms
from tests.crash.test_crash_http import (
    SERVER_ENV,
    assert_fsck_clean,
    join_workers,
    s4d_command,
)

BUCKET = "locks"
CI_ROUNDS = 5
WORKERS = 3


class LockCrashCampaign(SynchronousTestCase):
    def test_sigkill_during_retention_changes_and_version_deletes(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_LOCK_ROUNDS", str(CI_ROUNDS)))
        seed = int(os.environ.get("S4D_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        work = os.path.abspath(self.mktemp())
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        self.addCleanup(shutil.rmtree, work, True)
        log_path = os.path.join(work, "server.log")
        models = [LockModel(f"w{i}/") for i in range(WORKERS)]
        acked: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        problems: list[str] = []
        started = time.monotonic()
        server: ServerGroup | None = None
        killed_at = 0

        def cleanup() -> None:
            if server is not None:
                server.kill()

        self.addCleanup(cleanup)
        for round_no in range(rounds + 1):
            workers_n = 2 if round_no % 2 else 1
            where = f"seed {seed}, round {round_no}, S4_WORKERS={workers_n}"
            server = ServerGroup(data_dir, log_path, {**SERVER_ENV, "S4_WORKERS": str(workers_n)})
            server.start()
            client = server.client()
            if round_no == 0:
                created = client.request(
                    "PUT", BUCKET, headers={"x-amz-bucket-object-lock-enabled": "true"}
                )
                self.assertEqual(created.status, 200, created.body)
            for model in models:
                problems += [f"{where}: {p}" for p in model.settle(client, BUCKET, killed_at)]
            client.close()
            self.assertEqual(problems, [], self._log(server))
            if round_no == rounds:
                break
            stop, killed = threading.Event(), threading.Event()
            threads = [
                LockWorker(server, BUCKET, model, rng.randrange(1 << 30), stop, killed)
                for model in models
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(1.0, 4.0))
            self.assertEqual(len(server.pids()), workers_n, where)
            killed.set()
            stop.set()
            server.kill()
            killed_at = now_ms()
            join_workers(self, threads, where)
            for t in threads:
                acked.update(t.acked)
                refused.update(t.refused)
                problems += [f"{where}: {w}" for w in t.wrong]
            self.assertEqual(problems, [], self._log(server))
            assert_fsck_clean(self, data_dir, where)
        assert server is not None
        self.assertIn(server.stop(), (0, -signal.SIGTERM), self._log(server))
        server = None
        check = s4d_command("fsck", data_dir)
        self.assertEqual(check.returncode, 0, f"after the last round\n{check.stdout}")
        summary = (
            f"object lock crash campaign (seed {seed}): {rounds} rounds in "
            f"{time.monotonic() - started:.0f} s, acknowledged {dict(sorted(acked.items()))}, "
            f"refused by object lock {dict(sorted(refused.items()))}, problems {len(problems)}"
        )
        sys.stderr.write("\n" + summary + "\n")
        self.assertEqual(problems, [])
        for kind in ("put", "retention", "hold", "delete"):
            self.assertGreater(acked[kind], 0, f"no {kind} acknowledged: {summary}")
        for kind in ("retention", "delete"):
            self.assertGreater(refused[kind], 0, f"no {kind} refused: {summary}")

    def _log(self, server: ServerGroup) -> str:
        return "--- server log (tail) ---\n" + server.log_tail(8000)
