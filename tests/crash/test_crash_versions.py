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
and the server is restarted on the same directory. Every worker's prefix is
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

import os
import random
import shutil
import signal
import sys
import threading
import time
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import Blobs, S3Http, ServerGroup, sha256
from tests.crash.test_crash_http import (
    SERVER_ENV,
    assert_fsck_clean,
    join_workers,
    s4d_command,
)
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


class VersionCrashCampaign(SynchronousTestCase):
    def test_sigkill_during_version_deletes(self) -> None:
        long_run = os.environ.get("S4D_CRASH_LONG") == "1"
        rounds = int(os.environ.get("S4D_CRASH_VERSIONS_ROUNDS", "100")) if long_run else CI_ROUNDS
        seed = int(os.environ.get("S4D_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        work = os.path.abspath(self.mktemp())
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        self.addCleanup(shutil.rmtree, work, True)
        log_path = os.path.join(work, "server.log")
        models = [VersionModel(f"w{i}/") for i in range(WORKERS)]
        blobs = Blobs(seed, count=6, max_size=200_000)
        acked: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        losses: list[str] = []
        in_flight: Counter[str] = Counter()
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
                self._set_up(client, models, rng)
            # Restarted: every worker's versions must be as acknowledged.
            for model in models:
                page = rng.choice([1000, 1000, 7, 3])
                found, problems = read_versions(client, BUCKET, model.prefix, page=page)
                if model.pending:
                    in_flight[model.op] += 1
                losses += [f"{where}: {p}" for p in problems + model.settle(found)]
            client.close()
            self.assertEqual(losses, [], self._log(server))
            if round_no == rounds:
                break
            stop, killed = threading.Event(), threading.Event()
            threads = [
                VersionWorker(
                    server,
                    BUCKET,
                    model,
                    worker_keys(model.prefix),
                    rng.randrange(1 << 30),
                    stop,
                    killed,
                    blobs,
                )
                for model in models
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, 2.5))
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
        self.assertIn(server.stop(), (0, -signal.SIGTERM), self._log(server))
        server = None
        check = s4d_command("fsck", data_dir)
        self.assertEqual(check.returncode, 0, f"after the last round\n{check.stdout}")
        held = sum(len(v) for m in models for v in m.state.values())
        summary = (
            f"version crash campaign (seed {seed}): {rounds} rounds in "
            f"{time.monotonic() - started:.0f} s, acknowledged {dict(sorted(acked.items()))}, "
            f"{held} versions and markers held at the end, "
            f"in flight at the kills {dict(in_flight) or 0} "
            f"(their effects: {dict(sum((m.outcomes for m in models), Counter()))}), "
            f"errors answered {dict(errors) or 0}, losses {len(losses)}"
        )
        sys.stderr.write("\n" + summary + "\n")
        self.assertEqual(losses, [])
        for kind in ("put", "delete-marker", "delete-version", "delete-objects"):
            self.assertGreater(acked[kind], 0, f"no {kind} acknowledged: {summary}")

    def _set_up(self, s3: S3Http, models: list[VersionModel], rng: random.Random) -> None:
        """Create the bucket, give some keys a ``null`` version, then enable versioning."""
        self.assertEqual(s3.request("PUT", BUCKET).status, 200)
        for model in models:
            for key in worker_keys(model.prefix)[:NULL_KEYS]:
                data = rng.randbytes(rng.randrange(1, 5000))
                r = s3.put(BUCKET, key, data)
                self.assertEqual(r.status, 200)
                model.state[key] = [Ver("null", sha256(data))]
        r = s3.request("PUT", BUCKET, "", [("versioning", "")], body=VERSIONING)
        self.assertEqual(r.status, 200, r.body)

    def _log(self, server: ServerGroup) -> str:
        return "--- server log (tail) ---\n" + server.log_tail(8000)
