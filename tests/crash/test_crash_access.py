"""SIGKILL a server while clients change buckets' access documents: no acknowledged change is lost.

Strategy: a real ``twistd -n s4`` (fsync on, as in the crash campaign of
:mod:`tests.crash.test_crash_http`, one process or ``S4_WORKERS=2`` in
alternate rounds) holds one bucket per :class:`~tests.crash.access_workload.AccessWorker`
thread, each with a few objects. Each worker changes its bucket's policy, bucket
ACL, object ACLs, ownership controls and public-access block at random (the
writes of ``put_access`` and ``set_acl``) and checks every answer against its
model, which predicts the refusals the documents make each other give
(``BlockPublicAcls``, ``BlockPublicPolicy``, ``BucketOwnerEnforced``).

At a random moment the server's process group gets SIGKILL; ``s4d fsck`` must
find the data directory clean; the server is restarted on it and every
document of every bucket is read back (GetBucketPolicy, GetBucketAcl,
GetObjectAcl, GetBucketOwnershipControls, GetPublicAccessBlock): each is as
acknowledged, or as the change in flight asked. Rounds share the data
directory; the round loop is :func:`tests.crash.campaign.run_campaign`'s.
``S4D_CRASH_ACCESS_ROUNDS`` sets the rounds (default :data:`CI_ROUNDS`; with
``S4D_CRASH_LONG=1`` 100), ``S4D_CRASH_SEED`` the seed.
"""

from __future__ import annotations

import random
import sys
import threading

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import S3Http, ServerGroup
from tests.crash.access_workload import OBJECTS, AccessModel, AccessWorker, read_document
from tests.crash.campaign import Campaign, campaign_rounds, campaign_seed, run_campaign

CI_ROUNDS = 4
WORKERS = 3


class AccessLoad(Campaign):
    """Access document changes by AccessWorker threads, one bucket each."""

    load_seconds = (0.5, 2.0)
    counted = ("acked", "refused")

    def __init__(self) -> None:
        super().__init__(AccessModel(f"access{i}") for i in range(WORKERS))

    def set_up(self, case: SynchronousTestCase, client: S3Http, rng: random.Random) -> None:
        """The buckets and their objects; each model learns its owner's canonical id."""
        for model in self.models:
            created = client.request("PUT", model.bucket)
            case.assertEqual(created.status, 200, created.body)
            for key in OBJECTS:
                put = client.put(model.bucket, key, key.encode())
                case.assertEqual(put.status, 200, put.body)
            grants = read_document(client, model.bucket, "acl")
            case.assertEqual(len(grants), 1, grants)
            ((owner, _),) = grants
            model.start(owner)

    def verify(self, client: S3Http, rng: random.Random) -> list[str]:
        """Every document of every bucket as acknowledged (the one in flight: either way)."""
        problems = []
        for model in self.models:
            problems += model.settle(client)
        return problems

    def worker(
        self,
        server: ServerGroup,
        model: AccessModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> AccessWorker:
        return AccessWorker(server, model, seed, stop, killed)


class AccessCrashCampaign(SynchronousTestCase):
    def test_sigkill_during_access_changes(self) -> None:
        rounds = campaign_rounds(CI_ROUNDS, "S4D_CRASH_ACCESS_ROUNDS", 100)
        load = AccessLoad()
        run = run_campaign(self, load, rounds, campaign_seed())
        acked, refused = load.counts["acked"], load.counts["refused"]
        summary = (
            f"access crash campaign (seed {run.seed}): {rounds} rounds in "
            f"{run.seconds:.0f} s, acknowledged {dict(sorted(acked.items()))}, "
            f"refused as predicted {dict(sorted(refused.items()))}, losses 0"
        )
        sys.stderr.write("\n" + summary + "\n")
        for kind in ("policy", "acl", "object-acl", "ownership", "block"):
            self.assertGreater(acked[kind], 0, f"no {kind} change acknowledged: {summary}")
        self.assertGreater(sum(refused.values()), 0, f"nothing refused: {summary}")
