"""SIGKILL a process that renames prefixes; each rename must have happened wholly or not at all.

Strategy: :mod:`tests.crash.rename_writer` runs in a child process with a
durable store and one thread per group of keys, each renaming its group's
prefix between three names (one long enough to be split into continuation
entries) as fast as it can, logging ``TRY`` before and ``ACK`` after each
rename. The parent kills it with SIGKILL at a random moment 0.1-1.0 s after it
reports ``READY``, reopens the store (recovery runs) and checks every group:
all of its keys, and nothing else, are under exactly one of its names, and
that name is the last acknowledged one or the one in flight. A half-done
rename would show up as keys under two names or a name with some keys
missing. fsck must then find no problem. All rounds share one data directory,
so each round starts from where the previous crash left the groups (the child
reports ``AT`` lines, checked against the parent's record).
``S4D_CRASH_ROUNDS`` sets the number of rounds (default 8) and
``S4D_CRASH_SEED`` the random seed.
"""

from __future__ import annotations

import os
import random
from urllib.parse import unquote

from twisted.trial.unittest import SynchronousTestCase

from s4d.store import fsck
from s4d.store.store import Store, StoreConfig
from tests.crash.campaign import campaign_seed, fresh_data_dir
from tests.crash.rename_writer import GROUPS, keys_under, names, relative_keys
from tests.crash.test_crash_store import kill_child_round

WRITER = "tests.crash.rename_writer"


class RenameCrashTests(SynchronousTestCase):
    def test_sigkill_during_prefix_renames(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_ROUNDS", "8"))
        seed = campaign_seed()
        rng = random.Random(seed)
        data_dir = fresh_data_dir(self)
        at = {group: names(group)[0] for group in range(GROUPS)}
        total_acks = 0
        for round_no in range(rounds):
            where = f"seed {seed}, round {round_no}"
            child = kill_child_round(
                self, data_dir, rng, round_no, where, WRITER, (0.1, 1.0), what="renamer"
            )
            possible, acks = self.parse(child.lines, at, where)
            total_acks += acks
            self.check(data_dir, possible, at, where)
        self.assertGreater(total_acks, rounds * 3, f"only {total_acks} renames acknowledged")

    def parse(
        self, lines: list[str], at: dict[int, str], where: str
    ) -> tuple[dict[int, set[str]], int]:
        """Each group's possible names after the kill, and how many renames were acknowledged."""
        acked = dict(at)
        in_flight: dict[int, str | None] = dict.fromkeys(at)
        acks = 0
        for line in lines:
            parts = line.split(" ")
            if parts[0] == "READY":
                continue
            group = int(parts[1])
            if parts[0] == "AT":
                self.assertEqual(unquote(parts[2]), at[group], f"group {group} moved ({where})")
            elif parts[0] == "TRY":
                self.assertIsNone(in_flight[group], f"two renames of group {group} in flight")
                self.assertEqual(unquote(parts[2]), acked[group], where)
                in_flight[group] = unquote(parts[3])
            elif parts[0] == "ACK":
                self.assertEqual(in_flight[group], unquote(parts[2]), where)
                acked[group], in_flight[group] = unquote(parts[2]), None
                acks += 1
            elif parts[0] == "ERR":
                self.fail(f"a rename failed ({where}): {line}")
        possible = {g: {acked[g]} | ({in_flight[g]} - {None}) for g in at}  # type: ignore[operator]
        return possible, acks

    def check(
        self, data_dir: str, possible: dict[int, set[str]], at: dict[int, str], where: str
    ) -> None:
        """Every group wholly under one possible name; then fsck."""
        store = Store(StoreConfig(data_dir, map_size=1 << 30, fsync=True), inline_commit=True)
        try:
            for group in sorted(possible):
                holding = {name: keys_under(store, name) for name in names(group)}
                found = [name for name, keys in holding.items() if keys]
                self.assertEqual(len(found), 1, f"group {group} is split: {found} ({where})")
                name = found[0]
                self.assertIn(name, possible[group], f"group {group} ({where})")
                self.assertEqual(
                    holding[name],
                    sorted(relative_keys(group), key=lambda k: k.encode()),
                    f"group {group} under {name!r} lost keys ({where})",
                )
                at[group] = name
        finally:
            store.close()
        report = fsck.check(data_dir)
        self.assertEqual(report.problems, [], f"{where}\n{report.render()}")
