"""The child process of the lifecycle crash test: lifecycle passes and writers until killed.

Run as ``python -m tests.crash.lifecycle_runner DATA_DIR SEED ROUND``. It opens
the durable store the parent prepared (see
:mod:`tests.crash.test_crash_lifecycle`), starts a reactor with the real
engine (a thread pool, the group committer), prints ``READY`` and then, at
once:

* runs lifecycle passes back to back with tiny batches, printing ``PASS
  resumed=<0|1> expired=<n> ...`` after each pass and ``BATCH`` after each
  committed batch (object lock, the real one, refuses versions under a legal
  hold);
* a writer thread that puts fresh objects under the rules' prefixes (not due
  for years) and overwrites keys that are due, logging ``TRY``/``ACK`` lines
  as :mod:`tests.crash.writer` does.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, succeed

from s4d.engine import Engine, LifecycleLimits
from s4d.features import objects as fo
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import ExecutorRunner, FutureBridge
from tests.crash.writer import emit

#: The buckets the parent made, the one with versioning second.
BUCKETS = ("plain", "ver")


def writer(store: Store, rng: random.Random, round_no: int) -> None:
    """Fresh objects (never due) and overwrites of due keys, logged."""
    n = 0
    while True:
        bucket = rng.choice(BUCKETS)
        key = f"old/{rng.randrange(2000):04}" if rng.random() < 0.3 else f"old/new-{round_no}-{n}"
        data = f"{bucket} {key} {round_no} {n}".encode()
        n += 1
        digest = hashlib.sha256(data).hexdigest()
        emit(f"TRY {bucket} {key} {digest}")
        chunks = [store.put_chunk(data)]
        new = fo.NewObject(len(data), hashlib.md5(data).hexdigest())
        store.commit(
            lambda t, b=bucket, k=key, c=chunks, o=new: fo.put_object(
                t, b, k, o, c, fo.WriteConditions(), time.time_ns()
            ),
            frozenset(c.location.segment for c in chunks if c.location is not None),
        )
        emit(f"ACK {bucket} {key} {digest}")
        time.sleep(rng.uniform(0, 0.01))


def main(argv: list[str]) -> None:
    data_dir, seed, round_no = argv[0], int(argv[1]), int(argv[2])
    store = Store(StoreConfig(data_dir, map_size=8 << 30, fsync=True, chunk_size=1 << 20))
    runner = ExecutorRunner(FutureBridge(reactor.callFromThread), 4)  # type: ignore[attr-defined]
    engine = Engine(store, runner, reactor.callFromThread)  # type: ignore[attr-defined]
    limits = LifecycleLimits(examine=16, actions=8)

    def batch_done() -> Deferred[None]:
        emit("BATCH")
        return succeed(None)

    async def passes() -> None:
        while True:
            report = await engine.lifecycle.run_pass(limits=limits, pause=batch_done)
            figures = " ".join(f"{k}={v}" for k, v in sorted(report.totals.items()))
            emit(f"PASS resumed={int(report.resumed)} {figures}")

    def start() -> None:
        emit("READY")
        thread = threading.Thread(
            target=writer, args=(store, random.Random(seed), round_no), daemon=True
        )
        thread.start()
        ensureDeferred(passes()).addErrback(lambda f: (emit(f"ERR pass {f.value!r}"), f))

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1:])
