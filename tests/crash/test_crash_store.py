"""SIGKILL a busy writer process and check that every acknowledged write survived.

Strategy: :mod:`tests.crash.writer` runs in a child process with a durable store
and eight threads that put objects of random sizes (1 byte to 3 MiB, cut into
1 MiB chunks), overwrite them and delete them, logging ``TRY`` before and
``ACK`` after each operation. The parent reads that log and kills the child
with SIGKILL at a random moment 0.2-1.5 s after it reports ``READY`` (so the
kill lands among writes, not during start-up). It then reopens the store, which
runs recovery, and checks each key against the log: its ops are sequential (one
thread owns it), so the state after the last ``ACK`` is known exactly, and an
operation ``TRY``-ed but not acknowledged may or may not have landed. Every key
must read back byte-exact as one of those states, acknowledged deletes must be
gone unless a later unacknowledged put landed, and fsck must find no problem
(orphan bytes and torn regions are expected after a crash and allowed).

All rounds share one data directory, so later rounds also recover a store that
was itself recovered from a crash; keys of earlier rounds are checked again
every round. ``S4D_CRASH_ROUNDS`` sets the number of rounds (default 20) and
``S4D_CRASH_SEED`` the random seed.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.store import fsck
from s4d.store.store import Store, StoreConfig
from tests.crash.campaign import campaign_seed, fresh_data_dir
from tests.crash.writer import BUCKET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ABSENT = None  # the state of a key that is not there


@dataclass
class KeyLog:
    """What the log says about one key: the last acknowledged state and what was in flight."""

    acked: str | None = ABSENT  # sha256 of the acknowledged content, or ABSENT
    in_flight: list[str | None] = field(default_factory=list)

    def possible(self) -> set[str | None]:
        return {self.acked, *self.in_flight}


def parse(lines: list[str], keys: dict[str, KeyLog]) -> int:
    """Fold one round's log into ``keys``; return the number of acknowledged operations."""
    acks = 0
    for line in lines:
        parts = line.split(" ")
        if parts[0] == "READY":
            continue
        kind, op, key = parts[0], parts[1], unquote(parts[2])
        state = parts[3] if op == "put" else ABSENT
        log = keys.setdefault(key, KeyLog())
        if kind == "TRY":
            assert not log.in_flight, f"two operations in flight on {key!r}"
            log.in_flight.append(state)
        elif kind == "ACK":
            assert log.in_flight == [state], f"ACK without its TRY on {key!r}"
            log.acked, log.in_flight = state, []
            acks += 1
        elif kind == "ERR":
            raise AssertionError(f"the writer failed: {line}")
        else:
            raise AssertionError(f"unexpected line {line!r}")
    return acks


class Child:
    """The writer process and a thread collecting its stdout lines."""

    def __init__(
        self,
        data_dir: str,
        seed: int,
        round_no: int,
        stderr_path: str,
        module: str = "tests.crash.writer",
    ) -> None:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, data_dir, str(seed), str(round_no)],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=ROOT,
            env=env,
        )
        self.stderr_path = stderr_path
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):
                break  # a torn last line: the kill came mid-write (cannot happen, but be safe)
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if line == "READY":
                self.ready.set()
        self.ready.set()

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        status = self.proc.wait()
        self.reader.join(30)
        self.stderr.close()
        return status


def kill_child_round(
    case: SynchronousTestCase,
    data_dir: str,
    rng: random.Random,
    round_no: int,
    where: str,
    module: str,
    seconds: tuple[float, float],
    what: str = "writer",
) -> Child:
    """One round's child: start ``module`` on ``data_dir``, wait for its ``READY``, let it
    run a random while within ``seconds``, SIGKILL it; the killed child (its lines).

    A child that does not start fails ``case`` with its stderr (``data_dir.ROUND.err``).
    """
    err = data_dir + f".{round_no}.err"
    child = Child(data_dir, rng.randrange(1 << 30), round_no, err, module)
    if not child.ready.wait(60) or child.proc.poll() is not None:
        child.kill()
        with open(err) as f:
            case.fail(f"{what} did not start ({where}):\n{f.read()}")
    time.sleep(rng.uniform(*seconds))
    case.assertEqual(child.kill(), -signal.SIGKILL, where)
    return child


class CrashTests(SynchronousTestCase):
    def test_sigkill_during_writes(self) -> None:
        rounds = int(os.environ.get("S4D_CRASH_ROUNDS", "20"))
        seed = campaign_seed()
        rng = random.Random(seed)
        data_dir = fresh_data_dir(self)
        keys: dict[str, KeyLog] = {}
        total_acks = 0
        for round_no in range(rounds):
            where = f"seed {seed}, round {round_no}"
            child = kill_child_round(
                self, data_dir, rng, round_no, where, "tests.crash.writer", (0.2, 1.5)
            )
            total_acks += parse(child.lines, keys)
            self.check(data_dir, keys, where)
        # Enough happened for the test to mean something.
        self.assertGreater(total_acks, rounds * 5, f"only {total_acks} operations acknowledged")

    def check(self, data_dir: str, keys: dict[str, KeyLog], where: str) -> None:
        """Reopen the store, compare every key with its log, then run fsck."""
        store = Store(
            StoreConfig(data_dir, map_size=8 << 30, fsync=True, chunk_size=1 << 20),
            inline_commit=True,
        )
        try:
            for key, log in sorted(keys.items()):
                found = self.read(store, key)
                self.assertIn(
                    found,
                    log.possible(),
                    f"{key!r}: found {found}, acked {log.acked}, "
                    f"in flight {log.in_flight} ({where})",
                )
                # Whatever landed is the truth from now on.
                log.acked, log.in_flight = found, []
        finally:
            store.close()
        report = fsck.check(data_dir)
        self.assertEqual(report.problems, [], f"{where}\n{report.render()}")

    def read(self, store: Store, key: str) -> str | None:
        """The sha256 of ``key``'s current content, or ABSENT."""
        with store.read() as t:
            try:
                _, version = fo.find_version(t, t.buckets.require(BUCKET), key, None)
            except S3Error as e:
                self.assertEqual(e.code, "NoSuchKey")
                return ABSENT
            locations = store.locate(t, version.chunks)
        digest = hashlib.sha256()
        for loc in locations:
            digest.update(store.read_chunk(loc))
        self.assertEqual(sum(loc.size for loc in locations), version.size)
        return digest.hexdigest()
