"""SIGKILL a real server while versions and delete markers are created and deleted.

Strategy: as in :mod:`tests.crash.test_crash_http`, a real ``twistd -n s4``
(fsync on, small segments and chunks, compaction every second with no grace,
the scrubber every two seconds) runs in a session of its own, with one process
or, in every other round, ``S4_WORKERS=2``. Its bucket is versioned; before
versioning was enabled each worker's first keys got a version, so ``null``
versions exist too. Several :class:`~tests.crash.version_writer.VersionWorker`
threads drive it over HTTP, each owning one prefix: PUTs make versions,
DeleteObject without an id makes delete markers, DeleteObject with an id
removes a version or a marker (the current one half the time, so the current
version must be recomputed), DeleteObjects mixes both kinds of entries, and
GETs by id check what they read. Some versions share their bytes (dedup), so
removing one must leave the chunks the others use.

At a random moment the whole process group gets SIGKILL. ``s4d fsck`` must then
find the data directory clean, every third round ``s4d compact`` runs offline,
and the server is restarted on the same directory (the round loop is
:func:`tests.crash.campaign.run_campaign`'s). Every worker's prefix is
listed with ListObjectVersions (in pages of a random size, so that the key and
version id markers are exercised) and every version read back by id:

* every acknowledged version and marker that was not acknowledged deleted is
  there, in order, with its bytes; one whose deletion was in flight may be gone;
* every version acknowledged deleted is gone; a version whose creation was in
  flight may exist, on top, with the bytes that were sent;
* the current version of every key is its newest surviving one: the listing
  marks it latest, GET without a version id answers it (a 404 with
  ``x-amz-delete-marker`` when it is a marker), and ListObjectsV2 lists exactly
  the keys whose newest version is not a marker.

DeleteObjects deletes its entries one by one (as S3 does: it is not atomic), so
any subset of an in-flight request's entries may have happened, never part of
one. The CI version runs :data:`CI_ROUNDS` rounds (a few seconds each);
``S4D_CRASH_LONG=1`` runs ``S4D_CRASH_VERSIONS_ROUNDS`` (default 100).
``S4D_CRASH_SEED`` fixes the seed. A summary line gives the rounds, the
operations acknowledged and the losses (which must be zero).
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import Blobs, S3Http, ServerGroup, sha256
from tests.crash.campaign import Campaign, campaign_rounds, campaign_seed, run_campaign
from tests.crash.version_writer import Ver, VersionModel, VersionWorker, read_versions

BUCKET = "versions"
CI_ROUNDS = 4
WORKERS = 3
KEYS = 10
#: keys of each worker that get a version before versioning is enabled (``null``)
NULL_KEYS = 3

VERSIONING = (
    b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Status>Enabled</Status></VersioningConfiguration>"
)


def worker_keys(prefix: str) -> list[str]:
    """The keys one worker writes: one under a directory, one with a space and non-ASCII."""
    names = [f"k{i:02d}" for i in range(KEYS - 2)] + ["d/k", "ü k"]
    return [prefix + name for name in names]


class VersionLoad(Campaign):
    """Versions and delete markers made and removed by VersionWorker threads, one prefix each."""

    bucket = BUCKET
    load_seconds = (0.5, 2.5)
    compact = True

    def __init__(self, seed: int) -> None:
        super().__init__(VersionModel(f"w{i}/") for i in range(WORKERS))
        self.blobs = Blobs(seed, count=6, max_size=200_000)
        self.in_flight: Counter[str] = Counter()

    def set_up(self, case: SynchronousTestCase, client: S3Http, rng: random.Random) -> None:
        """Create the bucket, give some keys a ``null`` version, then enable versioning."""
        super().set_up(case, client, rng)
        for model in self.models:
            for key in worker_keys(model.prefix)[:NULL_KEYS]:
                data = rng.randbytes(rng.randrange(1, 5000))
                r = client.put(BUCKET, key, data)
                case.assertEqual(r.status, 200)
                model.state[key] = [Ver("null", sha256(data))]
        r = client.request("PUT", BUCKET, "", [("versioning", "")], body=VERSIONING)
        case.assertEqual(r.status, 200, r.body)

    def verify(self, client: S3Http, rng: random.Random) -> list[str]:
        """Every worker's versions are as acknowledged (listed in pages of a random size)."""
        problems = []
        for model in self.models:
            page = rng.choice([1000, 1000, 7, 3])
            found, listed = read_versions(client, BUCKET, model.prefix, page=page)
            if model.pending:
                self.in_flight[model.op] += 1
            problems += listed + model.settle(found)
        return problems

    def worker(
        self,
        server: ServerGroup,
        model: VersionModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> VersionWorker:
        keys = worker_keys(model.prefix)
        return VersionWorker(server, BUCKET, model, keys, seed, stop, killed, self.blobs)


class VersionCrashCampaign(SynchronousTestCase):
    def test_sigkill_during_version_deletes(self) -> None:
        rounds = campaign_rounds(CI_ROUNDS, "S4D_CRASH_VERSIONS_ROUNDS", 100)
        seed = campaign_seed()
        load = VersionLoad(seed)
        run = run_campaign(self, load, rounds, seed)
        models, acked = load.models, load.counts["acked"]
        held = sum(len(v) for m in models for v in m.state.values())
        summary = (
            f"version crash campaign (seed {run.seed}): {rounds} rounds in "
            f"{run.seconds:.0f} s, acknowledged {dict(sorted(acked.items()))}, "
            f"{held} versions and markers held at the end, "
            f"in flight at the kills {dict(load.in_flight) or 0} "
            f"(their effects: {dict(sum((m.outcomes for m in models), Counter()))}), "
            f"errors answered {dict(load.counts['errors']) or 0}, losses 0"
        )
        sys.stderr.write("\n" + summary + "\n")
        for kind in ("put", "delete-marker", "delete-version", "delete-objects"):
            self.assertGreater(acked[kind], 0, f"no {kind} acknowledged: {summary}")
