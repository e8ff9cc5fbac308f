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
are allowed: they are what a crash leaves), every third round ``s4d compact``
runs offline, and the server is restarted on the same directory: every
worker's prefix is listed and every key read back and compared by SHA-256
with the model (keys that must be absent must be absent). Rounds share the
data directory, so each round also recovers what earlier crashes left. The
round loop is :func:`tests.crash.campaign.run_campaign`'s; this module brings
the load and the check.

The CI version runs :data:`CI_ROUNDS` rounds (well under 90 s);
``S4D_CRASH_LONG=1`` runs ``S4D_CRASH_HTTP_ROUNDS`` (default 200).
``S4D_CRASH_SEED`` fixes the seed. A summary line gives the rounds run, the
operations acknowledged and the losses (which must be zero).
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import Blobs, KeyModel, MixedWorker, S3Http, ServerGroup, read_state
from tests.crash.campaign import Campaign, campaign_rounds, campaign_seed, run_campaign

BUCKET = "campaign"
CI_ROUNDS = 5
WORKERS = 4


class MixedLoad(Campaign):
    """Mixed S3 writes by :class:`~s4d.bench.workload.MixedWorker` threads, one prefix each."""

    bucket = BUCKET
    load_seconds = (0.5, 3.0)
    compact = True

    def __init__(self, seed: int) -> None:
        super().__init__(KeyModel(f"w{i}/") for i in range(WORKERS))
        self.blobs = Blobs(seed)
        #: operations in flight at a kill: landed (True) or not (False)
        self.in_flight: Counter[bool] = Counter()

    def verify(self, client: S3Http, rng: random.Random) -> list[str]:
        """Every key of every worker is as acknowledged (the one in flight: either way)."""
        problems = []
        for model in self.models:
            expected = set(model.state) | set(model.after())
            found = read_state(client, BUCKET, model.prefix, also=expected)
            if model.pending is not None:
                self.in_flight[found == model.after()] += 1
            problems += model.settle(found)
        return problems

    def worker(
        self,
        server: ServerGroup,
        model: KeyModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> MixedWorker:
        return MixedWorker(server, BUCKET, model, seed, stop, killed, self.blobs)


class HttpCrashCampaign(SynchronousTestCase):
    def test_sigkill_server_under_mixed_load(self) -> None:
        rounds = campaign_rounds(CI_ROUNDS, "S4D_CRASH_HTTP_ROUNDS", 200)
        seed = campaign_seed()
        load = MixedLoad(seed)
        run = run_campaign(self, load, rounds, seed)
        compactions = _count_lines(run.log_path, "Compaction: compacted")
        acked, in_flight = load.counts["acked"], load.in_flight
        total = sum(v for k, v in acked.items() if k != "get")
        summary = (
            f"crash campaign (seed {run.seed}): {rounds} rounds in {run.seconds:.0f} s, "
            f"{total} writes acknowledged ({dict(sorted(acked.items()))}), "
            f"{compactions} compaction passes with work in the servers, "
            f"{sum(in_flight.values())} in flight at the kills ({in_flight[True]} landed), "
            f"errors answered {dict(load.counts['errors']) or 0}, losses 0"
        )
        sys.stderr.write("\n" + summary + "\n")
        self.assertGreater(total, rounds * 10, summary)
        for kind in ("put", "delete", "multipart", "copy", "rename", "rename-prefix"):
            self.assertGreater(acked[kind], 0, f"no {kind} acknowledged: {summary}")


def _count_lines(path: str, text: str) -> int:
    with open(path, errors="replace") as f:
        return sum(1 for line in f if text in line)
