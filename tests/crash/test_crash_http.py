"""The crash campaign: SIGKILL a real server under mixed load; nothing acknowledged may be lost.

Strategy: a real ``twistd -n s4`` (fsync on, small segments, compaction every
second with no grace, the scrubber every two seconds) runs in a session of its
own (:class:`s4d.bench.workload.ServerGroup`), with one process or, in every
other round, ``S4_WORKERS=2``. Several :class:`~s4d.bench.workload.MixedWorker`
threads drive it over HTTP: PUTs of new keys, overwrites, DELETEs, multipart
uploads, CopyObject, RenameObject of keys and of whole prefixes, and GETs that
compare what they read with the model. Each worker owns one prefix, so its
model is exact: every acknowledged operation's effect is known, and the one
operation in flight when the kill lands may or may not have happened, as a
whole (a prefix rename must not be half done).

At a random moment the whole process group gets SIGKILL. Then ``s4d fsck``
(``python -m s4d.cli fsck``) must find the data directory clean (orphan bytes
are allowed: they are what a crash leaves), every few rounds ``s4d compact``
runs offline, and the server is restarted on the same directory: every
worker's prefix is listed and every key read back and compared by SHA-256
with the model (keys that must be absent must be absent). Rounds share the
data directory, so each round also recovers what earlier crashes left.

The CI version runs :data:`CI_ROUNDS` rounds (well under 90 s);
``S4D_CRASH_LONG=1`` runs ``S4D_CRASH_HTTP_ROUNDS`` (default 200).
``S4D_CRASH_SEED`` fixes the seed. A summary line gives the rounds run, the
operations acknowledged and the losses (which must be zero).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import Blobs, KeyModel, MixedWorker, ServerGroup, read_state

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUCKET = "campaign"
CI_ROUNDS = 5
WORKERS = 4

SERVER_ENV = {
    "S4_FSYNC": "true",
    "S4_SEGMENT_SIZE": "4MB",
    "S4_CHUNK_SIZE": "1MB",
    "S4_COMPACTION_INTERVAL_HOURS": str(1 / 3600),
    "S4_COMPACTION_THRESHOLD": "0.2",
    "S4_COMPACTION_GRACE_SECS": "0",
    "S4_SCRUB_INTERVAL_SECS": "2",
    "S4_LMDB_MAP_SIZE": "4GB",
}


def s4d_command(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m s4d.cli ARGS`` from this checkout."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "s4d.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def join_workers(case: SynchronousTestCase, threads: Sequence[Any], where: str) -> None:
    """Wait for a round's load threads after the kill: none hangs, none failed."""
    for t in threads:
        t.join(30)
        case.assertFalse(t.is_alive(), f"{t.name} hangs ({where})")
        if t.failure is not None:
            raise AssertionError(f"{t.name} failed ({where})") from t.failure


def assert_fsck_clean(case: SynchronousTestCase, data_dir: str, where: str) -> None:
    """``s4d fsck`` of ``data_dir`` finds nothing wrong."""
    check = s4d_command("fsck", data_dir)
    case.assertEqual(check.returncode, 0, f"{where}\n{check.stdout}{check.stderr}")


class HttpCrashCampaign(SynchronousTestCase):
    def test_sigkill_server_under_mixed_load(self) -> None:
        long_run = os.environ.get("S4D_CRASH_LONG") == "1"
        rounds = int(os.environ.get("S4D_CRASH_HTTP_ROUNDS", "200")) if long_run else CI_ROUNDS
        seed = int(os.environ.get("S4D_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        work = os.path.abspath(self.mktemp())
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        self.addCleanup(shutil.rmtree, work, True)
        log_path = os.path.join(work, "server.log")
        models = [KeyModel(f"w{i}/") for i in range(WORKERS)]
        blobs = Blobs(seed)
        acked: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        losses: list[str] = []
        #: operations in flight at a kill: landed (True) or not (False)
        in_flight: Counter[bool] = Counter()
        started = time.monotonic()
        server: ServerGroup | None = None

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
                self.assertEqual(client.request("PUT", BUCKET).status, 200)
            # Restarted: every key of every worker must be as acknowledged.
            for model in models:
                expected = set(model.state) | set(model.after())
                found = read_state(client, BUCKET, model.prefix, also=expected)
                if model.pending is not None:
                    in_flight[found == model.after()] += 1
                problems = model.settle(found)
                losses += [f"{where}: {p}" for p in problems]
            client.close()
            self.assertEqual(losses, [], self._log(server))
            if round_no == rounds:
                break
            stop, killed = threading.Event(), threading.Event()
            threads = [
                MixedWorker(server, BUCKET, model, rng.randrange(1 << 30), stop, killed, blobs)
                for model in models
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, 3.0))
            # No worker died (at least as many processes as workers: a short-lived
            # child of a process must not fail the round).
            self.assertGreaterEqual(len(server.pids()), workers_n, where)
            killed.set()
            stop.set()
            server.kill()
            join_workers(self, threads, where)
            for t in threads:
                acked.update(t.acked)
                errors.update(t.errors)
                losses += [f"{where}: {w}" for w in t.wrong]
            self.assertEqual(losses, [], self._log(server))
            assert_fsck_clean(self, data_dir, where)
            if round_no % 3 == 2:
                done = s4d_command("compact", data_dir, "--threshold", "0.1", "--grace", "0")
                self.assertEqual(done.returncode, 0, f"{where}\n{done.stdout}{done.stderr}")
        assert server is not None
        # twistd re-raises the signal it stopped on, so a clean stop reports SIGTERM.
        self.assertIn(server.stop(), (0, -signal.SIGTERM), self._log(server))
        server = None
        check = s4d_command("fsck", data_dir)
        self.assertEqual(check.returncode, 0, f"after the last round\n{check.stdout}")
        compactions = _count_lines(log_path, "Compaction: compacted")
        total = sum(v for k, v in acked.items() if k != "get")
        summary = (
            f"crash campaign (seed {seed}): {rounds} rounds in {time.monotonic() - started:.0f} s, "
            f"{total} writes acknowledged ({dict(sorted(acked.items()))}), "
            f"{compactions} compaction passes with work in the servers, "
            f"{sum(in_flight.values())} in flight at the kills ({in_flight[True]} landed), "
            f"errors answered {dict(errors) or 0}, losses {len(losses)}"
        )
        sys.stderr.write("\n" + summary + "\n")
        self.assertEqual(losses, [])
        self.assertGreater(total, rounds * 10, summary)
        for kind in ("put", "delete", "multipart", "copy", "rename", "rename-prefix"):
            self.assertGreater(acked[kind], 0, f"no {kind} acknowledged: {summary}")

    def _log(self, server: ServerGroup) -> str:
        return "--- server log (tail) ---\n" + server.log_tail(8000)


def _count_lines(path: str, text: str) -> int:
    with open(path, errors="replace") as f:
        return sum(1 for line in f if text in line)
