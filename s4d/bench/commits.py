"""The commit-path benchmark: durable group commits from several processes on one store.

``python -m s4d.bench commits --procs 2 --threads 16 --seconds 4`` opens one
data directory (fsync on) in ``--procs`` processes, as ``S4_WORKERS`` does, and
runs ``--threads`` threads in each that submit a small metadata change to the
store's committer and wait until it is durable, over and over. No segment
bytes and no HTTP: it measures what the processes' commits cost one another on
LMDB's write lock and how the syncs are shared (:mod:`s4d.store.durability`).

It prints the durable commits per second, operations per batch, the mean time
from asking for the write transaction to its commit (which includes waiting for
the lock), and the explicit syncs each process ran against the waits answered
without one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from typing import Any

from s4d.store.store import Store, StoreConfig
from s4d.store.txn import MetaTxn

#: the size of each change's value (a small object's metadata is about this big)
VALUE = b"x" * 200


def _child(data_dir: str, threads: int, seconds: float, results: Any) -> None:
    store = Store(StoreConfig(data_dir=data_dir))
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def run(thread: int) -> None:
        done = 0
        while time.monotonic() < deadline:
            key = b"bench/%d/%d/%d" % (os.getpid(), thread, done)

            def change(meta: MetaTxn, key: bytes = key) -> None:
                meta.txn.put(key, VALUE, db=meta.dbs.config)

            store.committer.submit(change).result()
            done += 1
        counts[thread] = done

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    committer = store.committer
    commit = committer.commit_seconds.snapshot()
    shared = getattr(store, "durability", None)  # None before shared durability existed
    results.put(
        (
            sum(counts),
            committer.batches,
            commit.total / max(1, commit.samples),
            (shared.syncs, shared.shared) if shared is not None else None,
        )
    )
    store.close()


def main(argv: list[str]) -> int:
    """Run the processes and print one line of figures."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench commits")
    p.add_argument("--procs", type=int, default=2, help="processes sharing the store")
    p.add_argument("--threads", type=int, default=16, help="waiting writers per process")
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-commits-")
    try:
        Store(StoreConfig(data_dir=data_dir)).close()
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        procs = [
            context.Process(target=_child, args=(data_dir, args.threads, args.seconds, results))
            for _ in range(args.procs)
        ]
        for proc in procs:
            proc.start()
        figures = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    ops = sum(f[0] for f in figures)
    batches = sum(f[1] for f in figures)
    commit_ms = ", ".join(f"{1000 * f[2]:.2f}" for f in figures)
    syncs = ", ".join(f"{f[3][0]}/{f[3][1]}" if f[3] else "-" for f in figures)
    print(
        f"{args.procs} processes x {args.threads} writers: "
        f"{ops / args.seconds:,.0f} durable commits/s, {ops / max(1, batches):.1f} per batch, "
        f"mean commit {commit_ms} ms, explicit syncs/waits covered without one {syncs}",
        flush=True,
    )
    return 0
