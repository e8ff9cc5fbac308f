"""SIGKILL a process while it compacts, writes and reads; nothing acknowledged may suffer.

Strategy: :mod:`tests.crash.compaction_writer` runs writers (the same logged
puts, overwrites and deletes as :mod:`tests.crash.test_crash_store`), readers
of the keys of earlier rounds (checked against the contents recorded here), and
back-to-back compaction passes with no grace period over 2 MiB segments, all in
one durable store. The parent kills it with SIGKILL at a random moment, reopens
the store and checks every key against the log (each must read back as its
acknowledged state or an operation in flight), that no reader saw a wrong byte,
and that fsck finds no problem. Rounds share the data directory, so later
rounds compact what earlier kills left half done. At the end one more pass must
finish every segment a killed pass left retiring.

``S4D_COMPACTION_CRASH_ROUNDS`` sets the rounds (default 8), ``S4D_CRASH_SEED``
the seed.
"""

from __future__ import annotations

import json
import os
import random

from twisted.trial.unittest import SynchronousTestCase

from s4d.store.compaction import Compactor
from s4d.store.store import Store, StoreConfig
from tests.crash import test_crash_store as base
from tests.crash.campaign import campaign_seed, fresh_data_dir
from tests.crash.test_crash_store import KeyLog, kill_child_round, parse

MODULE = "tests.crash.compaction_writer"


class CompactionCrashTests(SynchronousTestCase):
    def test_sigkill_during_compaction(self) -> None:
        rounds = int(os.environ.get("S4D_COMPACTION_CRASH_ROUNDS", "8"))
        seed = campaign_seed()
        rng = random.Random(seed)
        data_dir = fresh_data_dir(self)
        keys: dict[str, KeyLog] = {}
        acks = passes = compacted = 0
        for round_no in range(rounds):
            where = f"seed {seed}, round {round_no}"
            stable = {k: log.acked for k, log in keys.items()}
            with open(data_dir + ".stable.json", "w") as f:
                json.dump(stable, f)
            child = kill_child_round(
                self, data_dir, rng, round_no, where, MODULE, (0.5, 2.0), what="child"
            )
            log_lines = []
            for line in child.lines:
                if line.startswith("PASS "):
                    passes += 1
                    compacted += int(line.split()[1])
                elif line.startswith("ERR read") or line.startswith("ERR compact"):
                    with open(child.stderr_path) as f:
                        self.fail(f"{line} ({where})\n{f.read()}")
                else:
                    log_lines.append(line)
            acks += parse(log_lines, keys)
            self.check(data_dir, keys, where)
        self.assertGreater(acks, rounds * 3, f"only {acks} operations acknowledged")
        self.assertGreater(passes, rounds, f"only {passes} compaction passes")
        self.assertGreater(compacted, 0, "no segment was ever compacted")
        # The next pass finishes whatever a killed pass left half done.
        store = Store(StoreConfig(data_dir, map_size=8 << 30, fsync=True), inline_commit=True)
        try:
            Compactor(store, threshold=0.0, grace=0).run()
            with store.read() as t:
                for sid in store.segments.segment_ids():
                    self.assertFalse(t.segments.info(sid).get("retiring"), f"segment {sid}")
        finally:
            store.close()
        self.check(data_dir, keys, "after the final pass")

    def check(self, data_dir: str, keys: dict[str, KeyLog], where: str) -> None:
        base.CrashTests.check(self, data_dir, keys, where)  # type: ignore[arg-type]

    read = base.CrashTests.read
