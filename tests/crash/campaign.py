"""The round loop of the crash campaigns that SIGKILL a real server under load over HTTP.

A campaign (:class:`Campaign`) brings its bucket, its models, its load threads
and its checks; :func:`run_campaign` runs the rounds, the same for every one:

1. start a real ``twistd -n s4`` (:class:`~s4d.bench.workload.ServerGroup`:
   :data:`SERVER_ENV`, fsync on, small segments, compaction every second with
   no grace, the scrubber every two seconds; a campaign may change them:
   :attr:`Campaign.server_env`) on the campaign's data directory, one process
   or, in every odd round, ``S4_WORKERS=2`` (or the campaign's
   :attr:`Campaign.processes` in every round); in round 0 the campaign sets up
   its bucket (:meth:`Campaign.set_up`);
2. the campaign checks every acknowledged effect against its models
   (:meth:`Campaign.verify`): the state the previous kill left, recovered. Any
   problem fails the round, with the server log's tail;
3. after the last round's check the loop ends here; otherwise the campaign's
   load threads start (:meth:`Campaign.worker`, one per model), the campaign
   may wait until the load has reached where it must (:meth:`Campaign.under_load`),
   and they run for a random while;
4. no server process died (at least, or exactly, as many as started), then
   the whole process group gets SIGKILL (:meth:`Campaign.after_kill` notes
   the moment), the threads are joined (none hangs, none failed) and the
   campaign takes their tallies and wrong answers (:meth:`Campaign.tally`);
5. ``s4d fsck`` must find the data directory clean, and a campaign that asks
   for it runs ``s4d compact`` offline every third round.

At the end the server stops cleanly (SIGTERM) and fsck runs once more. Rounds
share the data directory, so each round also recovers what earlier kills
left. The seed (:func:`campaign_seed`: ``S4D_CRASH_SEED``, else random) drives
one generator that the loop hands to the campaign's hooks in a fixed order, so
a seed replays a run.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import S3Http, ServerGroup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def campaign_rounds(ci_rounds: int, long_variable: str, long_default: int) -> int:
    """``ci_rounds``, or with ``S4D_CRASH_LONG=1`` ``$long_variable`` (default ``long_default``)."""
    if os.environ.get("S4D_CRASH_LONG") == "1":
        return int(os.environ.get(long_variable, str(long_default)))
    return ci_rounds


class Campaign:
    """One campaign's part of the loop: subclass it and fill in the hooks.

    A campaign has one model per load thread (:attr:`models`); each round makes
    one thread per model (:meth:`worker`), and after the kill adds each thread's
    counters named in :attr:`counted` to :attr:`counts` and collects its wrong
    answers (``wrong``). Every hook that takes ``rng`` draws from the run's one
    generator, in the order the loop calls them: set_up (round 0), verify, then
    one seed per worker.
    """

    #: the bucket the campaign works in
    bucket = "campaign"
    #: seconds the load runs before the kill (a random value between the two)
    load_seconds = (0.5, 3.0)
    #: run ``s4d compact`` offline after the kill of every third round
    compact = False
    #: the server must have exactly its processes (not at least: a short-lived
    #: child of a process must then not exist)
    exact_processes = False
    #: the Counter attributes of a load thread that add up over the run
    counted: tuple[str, ...] = ("acked", "errors")
    #: ``S4_WORKERS`` of every round (None: one process, and two in every odd round)
    processes: int | None = None
    #: settings over :data:`SERVER_ENV` for this campaign's server
    server_env: dict[str, str] = {}

    def __init__(self, models: Iterable[Any]) -> None:
        self.models = list(models)
        #: each counted attribute, summed over every thread of every round
        self.counts: dict[str, Counter[str]] = {name: Counter() for name in self.counted}

    def set_up(self, case: SynchronousTestCase, client: S3Http, rng: random.Random) -> None:
        """Round 0, before the first check: create the bucket (and whatever else)."""
        response = client.request("PUT", self.bucket)
        case.assertEqual(response.status, 200, response.body)

    def verify(self, client: S3Http, rng: random.Random) -> list[str]:
        """Check what the server holds against the models; the problems found."""
        raise NotImplementedError

    def worker(
        self,
        server: ServerGroup,
        model: Any,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> Any:
        """The load thread of ``model``, not started (with ``name``, ``failure``, ``wrong``)."""
        raise NotImplementedError

    def under_load(
        self, case: SynchronousTestCase, server: ServerGroup, processes: int, where: str
    ) -> None:
        """Called once the load threads run, before the random wait that ends in the kill
        (to wait until the load reaches what the campaign is about; fail ``case`` if not)."""

    def after_kill(self) -> None:
        """Called right after the SIGKILL, before the threads are joined."""

    def tally(self, threads: Sequence[Any]) -> list[str]:
        """Add the joined threads' counters up; their wrong answers."""
        wrong: list[str] = []
        for t in threads:
            for name, counter in self.counts.items():
                counter.update(getattr(t, name))
            wrong += t.wrong
        return wrong


@dataclass
class CampaignRun:
    """What a finished run reports: its seed and rounds, how long it took, its log."""

    seed: int
    rounds: int
    seconds: float
    log_path: str


def campaign_seed() -> int:
    """``S4D_CRASH_SEED``, else a random seed."""
    return int(os.environ.get("S4D_CRASH_SEED", str(random.randrange(1 << 30))))


def fresh_data_dir(case: SynchronousTestCase) -> str:
    """An empty data directory for ``case``, removed when it ends (campaigns write a
    gigabyte or so: do not leave it in _trial_temp)."""
    data_dir = os.path.abspath(case.mktemp())
    os.makedirs(data_dir)
    case.addCleanup(shutil.rmtree, data_dir, True)
    return data_dir


def run_campaign(
    case: SynchronousTestCase, campaign: Campaign, rounds: int, seed: int
) -> CampaignRun:
    """Run ``rounds`` kills of ``campaign`` (and the check after the last) from ``seed``;
    fail ``case`` at the first problem."""
    rng = random.Random(seed)
    work = os.path.abspath(case.mktemp())
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    case.addCleanup(shutil.rmtree, work, True)
    log_path = os.path.join(work, "server.log")
    started = time.monotonic()
    server: ServerGroup | None = None

    def cleanup() -> None:
        if server is not None:
            server.kill()

    case.addCleanup(cleanup)

    def log() -> str:
        assert server is not None
        return "--- server log (tail) ---\n" + server.log_tail(8000)

    for round_no in range(rounds + 1):
        workers_n = campaign.processes or (2 if round_no % 2 else 1)
        where = f"seed {seed}, round {round_no}, S4_WORKERS={workers_n}"
        env = {**SERVER_ENV, **campaign.server_env, "S4_WORKERS": str(workers_n)}
        server = ServerGroup(data_dir, log_path, env)
        server.start()
        client = server.client()
        if round_no == 0:
            campaign.set_up(case, client, rng)
        try:
            problems = campaign.verify(client, rng)
        except Exception as failure:  # noqa: BLE001 - reported with the server's side
            case.fail(f"{where}: the check failed: {failure!r}\n{log()}")
        client.close()
        case.assertEqual([f"{where}: {p}" for p in problems], [], log())
        if round_no == rounds:
            break
        stop, killed = threading.Event(), threading.Event()
        threads = [
            campaign.worker(server, model, rng.randrange(1 << 30), stop, killed)
            for model in campaign.models
        ]
        for t in threads:
            t.start()
        campaign.under_load(case, server, workers_n, where)
        time.sleep(rng.uniform(*campaign.load_seconds))
        # No server process died.
        if campaign.exact_processes:
            case.assertEqual(len(server.pids()), workers_n, where)
        else:
            case.assertGreaterEqual(len(server.pids()), workers_n, where)
        killed.set()
        stop.set()
        server.kill()
        campaign.after_kill()
        join_workers(case, threads, where)
        case.assertEqual([f"{where}: {w}" for w in campaign.tally(threads)], [], log())
        assert_fsck_clean(case, data_dir, where)
        if campaign.compact and round_no % 3 == 2:
            done = s4d_command("compact", data_dir, "--threshold", "0.1", "--grace", "0")
            case.assertEqual(done.returncode, 0, f"{where}\n{done.stdout}{done.stderr}")
    assert server is not None
    # twistd re-raises the signal it stopped on, so a clean stop reports SIGTERM.
    case.assertIn(server.stop(), (0, -signal.SIGTERM), log())
    server = None
    check = s4d_command("fsck", data_dir)
    case.assertEqual(check.returncode, 0, f"after the last round\n{check.stdout}")
    return CampaignRun(seed, rounds, time.monotonic() - started, log_path)
