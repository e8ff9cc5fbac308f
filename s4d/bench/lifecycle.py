"""The lifecycle benchmark: one pass over a large bucket, and what it does to GET latency.

It fills a bucket straight through the store (fsync off, every object sharing
one small chunk, so filling is quick) with ``--keys`` keys under ``logs/``,
every other one written 60 days ago and the rest now, under one rule that
expires ``logs/`` after 30 days; plus ``--hot`` 4 KiB objects under ``hot/``
that no rule names. Then it starts a real ``twistd s4`` twice on the same data:

1. lifecycle off: ``--clients`` threads GET random hot objects for
   ``--seconds`` seconds (the baseline);
2. lifecycle on: the pass starts with the server; the same GETs run until the
   pass's log line appears.

It prints the pass's figures (versions examined and current versions expired,
per second of the pass) and the p50/p99 of the GETs in both phases.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import tempfile
import threading
import time
from typing import Any

from s4d.bench.stats import percentile
from s4d.bench.workload import ServerGroup
from s4d.errors import S3Error
from s4d.features import buckets as fb
from s4d.features import lifecycle as fl
from s4d.features import objects as fo
from s4d.store.chunks import WrittenChunk
from s4d.store.store import Store, StoreConfig

BUCKET = "bench"
FILL_BATCH = 20_000
PER_DIR = 1000
DAY_NS = 86_400 * 10**9
PASS_LINE = re.compile(
    r"Lifecycle pass ended: (\d+) buckets, (\d+) rules, (\d+) versions and uploads examined, "
    r"(\d+) current versions expired.* ([\d.]+) s"
)


def fill(data_dir: str, keys: int, hot: int) -> float:
    """Create the bucket, its rule, ``keys`` log objects and ``hot`` 4 KiB objects; seconds."""
    store = Store(StoreConfig(data_dir, fsync=False), inline_commit=True)
    start = time.perf_counter()
    now = time.time_ns()
    try:
        try:
            store.commit(lambda t: fo.create_bucket(t, BUCKET, "us-east-1", now))
        except S3Error as e:
            if e.code != "BucketAlreadyOwnedByYou":
                raise
        rule = fl.LifecycleRule("logs", True, fl.LifecycleFilter(prefix="logs/"), "prefix",
                                expiration_days=30, has_expiration=True)  # fmt: skip
        raw = fl.encode_rules([rule])
        store.commit(lambda t: fb.put_bucket_config(t, BUCKET, fl.LIFECYCLE, raw))
        written = store.put_chunk(b"s4d lifecycle benchmark\n")
        shared = [WrittenChunk(written.ref, None)]
        new = fo.NewObject(size=written.ref.size, etag="0" * 32)
        cond = fo.WriteConditions()
        old = now - 60 * DAY_NS
        for first in range(0, keys, FILL_BATCH):
            last = min(keys, first + FILL_BATCH)

            def batch(t: Any, first: int = first, last: int = last) -> None:
                for i in range(first, last):
                    chunks = [written] if i == 0 else shared
                    key = f"logs/d{i // PER_DIR:05d}/f{i:08d}"
                    fo.put_object(t, BUCKET, key, new, chunks, cond, old if i % 2 == 0 else now)

            segments: frozenset[int] = frozenset()
            if first == 0 and written.location is not None:
                segments = frozenset({written.location.segment})
            store.commit(batch, segments)
        for i in range(hot):
            chunk = store.put_chunk(os.urandom(4096))
            hot_new = fo.NewObject(size=4096, etag="0" * 32)

            def put_hot(t: Any, i: int = i, c: WrittenChunk = chunk, n: Any = hot_new) -> None:
                fo.put_object(t, BUCKET, f"hot/k{i:05d}", n, [c], cond, now)

            where = frozenset({chunk.location.segment}) if chunk.location else frozenset()
            store.commit(put_hot, where)
        store.env.sync(True)
    finally:
        store.close()
    return time.perf_counter() - start


def get_load(
    server: ServerGroup, hot: int, clients: int, stop: threading.Event
) -> tuple[list[float], int]:
    """GET random hot objects from ``clients`` threads until ``stop``; latencies, errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        client = server.client()
        mine: list[float] = []
        bad = 0
        while not stop.is_set():
            begin = time.perf_counter()
            answer = client.get(BUCKET, f"hot/k{rng.randrange(hot):05d}")
            mine.append(time.perf_counter() - begin)
            bad += answer.status != 200
        client.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def summary(name: str, latencies: list[float], seconds: float, errors: int) -> str:
    values = sorted(latencies)
    return (
        f"{name:<22} {len(values):>8} GETs  {len(values) / seconds:8.0f}/s  "
        f"p50 {percentile(values, 0.5) * 1000:6.2f} ms  "
        f"p99 {percentile(values, 0.99) * 1000:6.2f} ms  errors {errors}"
    )


def main(argv: list[str]) -> int:
    """Fill, measure both phases, print."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench lifecycle", description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--hot", type=int, default=1000, help="4 KiB objects the GETs read")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the baseline")
    parser.add_argument("--batch", type=int, default=1000, help="S4_LIFECYCLE_BATCH")
    parser.add_argument("--pause", type=float, default=0.01, help="S4_LIFECYCLE_PAUSE_SECS")
    parser.add_argument("--dir", help="work directory (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    work = args.dir or tempfile.mkdtemp(prefix="s4d-bench-lifecycle-")
    data_dir = os.path.join(work, "data")
    try:
        print(f"filling {args.keys} keys (half due) and {args.hot} hot 4 KiB objects ...")
        print(f"fill: {fill(data_dir, args.keys, args.hot):.1f} s")
        base_env = {"S4_FSYNC": "true", "S4_LIFECYCLE_BATCH": str(args.batch),
                    "S4_LIFECYCLE_PAUSE_SECS": str(args.pause)}  # fmt: skip

        server = ServerGroup(data_dir, os.path.join(work, "off.log"),
                             dict(base_env, S4_LIFECYCLE_ENABLED="false")).start()  # fmt: skip
        stop = threading.Event()
        timer = threading.Timer(args.seconds, stop.set)
        timer.start()
        begin = time.perf_counter()
        quiet, quiet_errors = get_load(server, args.hot, args.clients, stop)
        quiet_seconds = time.perf_counter() - begin
        server.stop()

        log_path = os.path.join(work, "on.log")
        server = ServerGroup(data_dir, log_path, dict(base_env, S4_LIFECYCLE_ENABLED="true"))
        server.start(timeout=120)
        stop = threading.Event()
        found: list[re.Match[str]] = []

        def watch() -> None:
            while not stop.is_set():
                hit = PASS_LINE.search(server.log_tail(100_000))
                if hit:
                    found.append(hit)
                    stop.set()
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        begin = time.perf_counter()
        busy, busy_errors = get_load(server, args.hot, args.clients, stop)
        busy_seconds = time.perf_counter() - begin
        watcher.join()
        server.stop()
        if not found:
            print("the pass did not end")
            return 1
        _, _, examined, expired, duration = found[0].groups()
        pass_seconds = float(duration)
        print(
            f"pass: {int(examined)} versions examined, {int(expired)} expired in "
            f"{pass_seconds:.1f} s: {int(examined) / pass_seconds:,.0f} examined/s, "
            f"{int(expired) / pass_seconds:,.0f} expired/s"
        )
        print(summary("GET 4 KiB, no pass", quiet, quiet_seconds, quiet_errors))
        print(summary("GET 4 KiB, during pass", busy, busy_seconds, busy_errors))
        ratio = percentile(sorted(busy), 0.99) / percentile(sorted(quiet), 0.99)
        print(f"p99 during the pass / without: {ratio:.2f}x")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0
