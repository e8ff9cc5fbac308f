"""SIGKILL a process in the middle of lifecycle passes; nothing that should exist may be gone.

Strategy: the parent prepares a durable store with two buckets (one
unversioned, one with object lock and so versioning) holding thousands of keys
that are due (written 30 days ago under one-day rules), keys no rule names,
versions under a legal hold (object lock's own), keys with eight versions of
which a rule keeps the newest two noncurrent ones, and lone delete markers.
:mod:`tests.crash.lifecycle_runner` then runs passes with tiny
batches through the real engine and reactor while a writer thread puts fresh
objects and overwrites due keys, and the parent kills it with SIGKILL at a
random moment. After each kill the parent reopens the store and checks:

* every acknowledged write reads back (a fresh object is never expired, not
  even one that replaced a key the pass had planned to expire);
* no key the rules do not name, no locked version, and none of the newest
  three versions of a multi-version key is gone;
* the pass's saved position and figures only move forward across kills, and a
  later round carries on the same pass (same start) instead of beginning anew;
* fsck finds no problem.

At the end a pass runs to completion in the parent and everything due is gone
(except what is locked or was written since). ``S4D_LIFECYCLE_CRASH_ROUNDS``
sets the rounds (default 6), ``S4D_CRASH_SEED`` the seed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time

from twisted.trial.unittest import SynchronousTestCase

from s4d.engine import Engine, LifecycleLimits
from s4d.features import buckets as fb
from s4d.features import lifecycle as fl
from s4d.features import lifecycle_sweep as fs
from s4d.features import objects as fo
from s4d.features.lifecycle import LIFECYCLE, LifecycleFilter, LifecycleRule
from s4d.store import fsck
from s4d.store.model import NO_LOCK, ObjectLock, ObjectVersion
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import InlineRunner
from tests.crash.campaign import campaign_seed, fresh_data_dir
from tests.crash.test_crash_store import KeyLog, kill_child_round

MODULE = "tests.crash.lifecycle_runner"
DAY = 86_400 * 10**9
DUE = 2000
HIST_KEYS = 20
MARKERS = 100


def _rule(rule_id: str, prefix: str, **kw: object) -> LifecycleRule:
    return LifecycleRule(rule_id, True, LifecycleFilter(prefix=prefix), "prefix", **kw)  # type: ignore[arg-type]


def prepare(data_dir: str) -> None:
    """The store the first round starts from."""
    store = Store(StoreConfig(data_dir, map_size=8 << 30, fsync=True), inline_commit=True)
    past = time.time_ns() - 30 * DAY

    def put(bucket: str, key: str, data: bytes, held: bool = False) -> None:
        chunks = [store.put_chunk(data)]
        lock = ObjectLock(legal_hold=True) if held else NO_LOCK
        new = fo.NewObject(len(data), hashlib.md5(data).hexdigest(), lock=lock)
        store.commit(
            lambda t: fo.put_object(t, bucket, key, new, chunks, fo.WriteConditions(), past),
            frozenset(c.location.segment for c in chunks if c.location is not None),
        )

    try:
        store.commit(lambda t: fb.create_bucket(t, "plain", "us-east-1", past))
        store.commit(lambda t: fb.create_bucket(t, "ver", "us-east-1", past, object_lock=True))
        expire = _rule("old", "old/", expiration_days=1, has_expiration=True)
        rules = {
            "plain": [expire],
            "ver": [
                expire,
                _rule("hist", "hist/", noncurrent_days=1, newer_noncurrent_versions=2,
                      has_noncurrent=True),
                _rule("gone", "gone/", expired_object_delete_marker=True, has_expiration=True),
            ],
        }  # fmt: skip
        for bucket, listed in rules.items():
            raw = fl.encode_rules(listed)
            store.commit(lambda t, b=bucket, r=raw: fb.put_bucket_config(t, b, LIFECYCLE, r))
            for i in range(DUE):
                put(bucket, f"old/{i:04}", f"due {bucket} {i}".encode())
            for i in range(50):
                put(bucket, f"keep/{i}", f"kept {bucket} {i}".encode())
        for i in range(10):
            put("ver", f"old/lock-{i}", f"locked {i}".encode(), held=True)
        for k in range(HIST_KEYS):
            for v in range(8):
                put("ver", f"hist/{k:02}", f"hist {k} v{v}".encode(), held=k == 0 and v == 0)
        for i in range(MARKERS):
            store.commit(lambda t, i=i: fo.delete_object(t, "ver", f"gone/{i:03}", None, past))
    finally:
        store.close()


def parse_writes(lines: list[str], writes: dict[tuple[str, str], KeyLog]) -> int:
    """Fold the writer's TRY/ACK lines into ``writes``; the number of acknowledgements."""
    acks = 0
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind not in ("TRY", "ACK"):
            continue
        bucket, key, digest = rest.split(" ")
        log = writes.setdefault((bucket, key), KeyLog(acked="untouched"))
        if kind == "TRY":
            log.in_flight.append(digest)
        else:
            log.acked = digest
            log.in_flight = [d for d in log.in_flight if d != digest]
            acks += 1
    return acks


class LifecycleCrashTests(SynchronousTestCase):
    def test_sigkill_during_lifecycle_passes(self) -> None:
        rounds = int(os.environ.get("S4D_LIFECYCLE_CRASH_ROUNDS", "6"))
        seed = campaign_seed()
        self.addCleanup(lambda: print(f"seed {seed}"))
        rng = random.Random(seed)
        data_dir = fresh_data_dir(self)
        prepare(data_dir)
        writes: dict[tuple[str, str], KeyLog] = {}
        acks = batches = resumed = 0
        previous: fs.SweepState | None = None
        carried_on = 0
        for round_no in range(rounds):
            where = f"seed {seed}, round {round_no}"
            child = kill_child_round(
                self, data_dir, rng, round_no, where, MODULE, (0.3, 1.5), what="child"
            )
            for line in child.lines:
                if line.startswith("ERR"):
                    with open(child.stderr_path) as f:
                        self.fail(f"{line} ({where})\n{f.read()}")
                batches += line == "BATCH"
                resumed += line.startswith("PASS resumed=1")
            acks += parse_writes(child.lines, writes)
            state = self.check(data_dir, writes, where)
            if previous is not None and state is not None:
                if state.started_ns == previous.started_ns:
                    carried_on += 1
                    self.assertGreaterEqual(self._progress(state), self._progress(previous), where)
            previous = state
        self.assertGreater(acks, rounds, f"only {acks} writes acknowledged")
        self.assertGreater(batches, rounds * 5, f"only {batches} batches committed")
        self.assertGreater(carried_on + resumed, 0, "no pass ever went on after a kill")
        self.finish(data_dir, writes)

    @staticmethod
    def _progress(state: fs.SweepState) -> tuple[int, ...]:
        totals = fs.totals_line(state.totals)
        return (totals["expired"], totals["noncurrent_removed"], totals["markers_removed"],
                totals["examined"])  # fmt: skip

    def check(
        self, data_dir: str, writes: dict[tuple[str, str], KeyLog], where: str
    ) -> fs.SweepState | None:
        """Reopen the store; what must exist does; return the saved pass state."""
        store = Store(StoreConfig(data_dir, map_size=8 << 30, fsync=True), inline_commit=True)
        try:
            with store.read() as t:
                for (bucket, key), log in sorted(writes.items()):
                    found = self.current(store, t, bucket, key)
                    if log.acked != "untouched":
                        self.assertIn(found, {log.acked, *log.in_flight}, f"{bucket}/{key} {where}")
                        log.acked = found or "gone"
                    elif found in log.in_flight:
                        log.acked = found  # a first write that landed unacknowledged
                    log.in_flight = []
                for bucket in ("plain", "ver"):
                    for i in range(50):
                        self.assertIsNotNone(self.current(store, t, bucket, f"keep/{i}"), where)
                for i in range(10):
                    self.assert_held(t, f"old/lock-{i}", where)
                for k in range(HIST_KEYS):
                    found = self.versions(t, "ver", f"hist/{k:02}")
                    assert found is not None
                    data = [v.etag for v in found[:3]]
                    expected = [
                        hashlib.md5(f"hist {k} v{v}".encode()).hexdigest() for v in (7, 6, 5)
                    ]
                    self.assertEqual(data, expected, f"hist/{k:02} {where}")
                    if k == 0:
                        self.assert_held(t, "hist/00", where)
                state = fs.load_state(t)
        finally:
            store.close()
        report = fsck.check(data_dir)
        self.assertEqual(report.problems, [], f"{where}\n{report.render()}")
        return state

    def assert_held(self, t: object, key: str, where: str) -> None:
        """The version of ``key`` under a legal hold is still there."""
        found = self.versions(t, "ver", key) or []
        self.assertEqual(
            [v.lock.legal_hold for v in found if v.lock.legal_hold], [True], key + where
        )

    def current(self, store: Store, t: object, bucket: str, key: str) -> str | None:
        """sha256 of the current content of ``key`` (None: absent or a delete marker)."""
        found = self.versions(t, bucket, key)
        if not found or found[0].delete_marker:
            return None
        digest = hashlib.sha256()
        for loc in store.locate(t, found[0].chunks):  # type: ignore[arg-type]
            digest.update(store.read_chunk(loc))
        return digest.hexdigest()

    def versions(self, t: object, bucket: str, key: str) -> list[ObjectVersion] | None:
        record = t.buckets.require(bucket)  # type: ignore[attr-defined]
        object_id = t.ns.lookup(record, key.encode())  # type: ignore[attr-defined]
        if object_id is None:
            return None
        return t.versions.all(object_id, key)  # type: ignore[attr-defined, no-any-return]

    def finish(self, data_dir: str, writes: dict[tuple[str, str], KeyLog]) -> None:
        """One pass to the end: everything due is gone, nothing else."""
        store = Store(StoreConfig(data_dir, map_size=8 << 30, fsync=True), inline_commit=True)
        try:
            engine = Engine(store, InlineRunner(), lambda f, *a: f(*a))
            while True:
                report = self.successResultOf(
                    engine.lifecycle.run_pass(limits=LifecycleLimits(examine=500))
                )
                if not report.resumed:
                    break  # a fresh pass over what a resumed one left
            rewritten = {k for k, log in writes.items() if log.acked not in ("untouched", "gone")}
            with store.read() as t:
                for i in range(DUE):
                    key = f"old/{i:04}"
                    plain = self.versions(t, "plain", key)
                    ver = self.versions(t, "ver", key)
                    if ("plain", key) not in rewritten:
                        self.assertIsNone(plain, key)
                    if ("ver", key) not in rewritten:
                        assert ver is not None
                        self.assertTrue(
                            ver[0].delete_marker,
                            f"{key}: {[(v.mtime_ns, v.delete_marker) for v in ver]} "
                            f"{writes.get(('ver', key))}",
                        )
                for k in range(HIST_KEYS):
                    found = self.versions(t, "ver", f"hist/{k:02}")
                    assert found is not None
                    self.assertEqual(len(found), 4 if k == 0 else 3)
                for i in range(MARKERS):
                    self.assertIsNone(self.versions(t, "ver", f"gone/{i:03}"))
                for i in range(10):
                    self.assert_held(t, f"old/lock-{i}", "at the end")
                    self.assertTrue(
                        (self.versions(t, "ver", f"old/lock-{i}") or [])[0].delete_marker
                    )
        finally:
            store.close()
        self.assertEqual(fsck.check(data_dir).problems, [])
