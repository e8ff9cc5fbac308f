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
directory; the round loop is :func:`tests.crash.campaign.run_campaign`'s.
``S4D_CRASH_LOCK_ROUNDS`` sets the rounds (default :data:`CI_ROUNDS`),
``S4D_CRASH_SEED`` the seed.
"""

from __future__ import annotations

import os
import random
import sys
import threading

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import S3Http, ServerGroup
from tests.crash.campaign import Campaign, campaign_seed, run_campaign
from tests.crash.lock_workload import LockModel, LockWorker, now_ms

BUCKET = "locks"
CI_ROUNDS = 5
WORKERS = 3


class LockLoad(Campaign):
    """Locks, unlocks and deletes by LockWorker threads, one prefix each."""

    bucket = BUCKET
    load_seconds = (1.0, 4.0)
    exact_processes = True
    counted = ("acked", "refused")

    def __init__(self) -> None:
        super().__init__(LockModel(f"w{i}/") for i in range(WORKERS))
        self.killed_at = 0

    def set_up(self, case: SynchronousTestCase, client: S3Http, rng: random.Random) -> None:
        """A bucket with object lock."""
        created = client.request(
            "PUT", BUCKET, headers={"x-amz-bucket-object-lock-enabled": "true"}
        )
        case.assertEqual(created.status, 200, created.body)

    def verify(self, client: S3Http, rng: random.Random) -> list[str]:
        """Each model settled against what the server holds (judged at the kill's time)."""
        problems = []
        for model in self.models:
            problems += model.settle(client, BUCKET, self.killed_at)
        return problems

    def worker(
        self,
        server: ServerGroup,
        model: LockModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> LockWorker:
        return LockWorker(server, BUCKET, model, seed, stop, killed)

    def after_kill(self) -> None:
        self.killed_at = now_ms()


class LockCrashCampaign(SynchronousTestCase):
    def test_sigkill_during_retention_changes_and_version_deletes(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_LOCK_ROUNDS", str(CI_ROUNDS)))
        load = LockLoad()
        run = run_campaign(self, load, rounds, campaign_seed())
        acked, refused = load.counts["acked"], load.counts["refused"]
        summary = (
            f"object lock crash campaign (seed {run.seed}): {rounds} rounds in "
            f"{run.seconds:.0f} s, acknowledged {dict(sorted(acked.items()))}, "
            f"refused by object lock {dict(sorted(refused.items()))}, problems 0"
        )
        sys.stderr.write("\n" + summary + "\n")
        for kind in ("put", "retention", "hold", "delete"):
            self.assertGreater(acked[kind], 0, f"no {kind} acknowledged: {summary}")
        for kind in ("retention", "delete"):
            self.assertGreater(refused[kind], 0, f"no {kind} refused: {summary}")
