"""The engine benchmark: durable puts and gets through the real async engine.

Runs the same path the S3 layer uses (thread pool, group committer, fsync on)
without HTTP, and prints ops/s, MB/s, latency percentiles and peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from typing import Any

from twisted.internet import defer, task

from s4d.bench.stats import latency_summary, peak_rss_mb
from s4d.engine import BodyDigests, DeclaredDigests, Engine, StagedBody, WholeBody
from s4d.features.objects import NewObject, WriteConditions
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import ExecutorRunner, FutureBridge

PIECE = 1 << 20


async def _put(engine: Engine, key: str, data: bytes | None, size: int = 0) -> float:
    start = time.perf_counter()
    md5 = hashlib.md5(usedforsecurity=False)
    if data is not None:
        # the path the S3 layer takes for bodies smaller than one chunk
        await engine.objects.put(
            "bench",
            key,
            NewObject(size=0, etag=""),
            WholeBody(data, BodyDigests(DeclaredDigests())),
            WriteConditions(),
        )
        return time.perf_counter() - start
    upload = engine.objects.upload([md5])
    if True:  # noqa: SIM108 - streamed like a large PUT
        block = os.urandom(PIECE)
        sent = 0
        while sent < size:
            piece = block[: min(PIECE, size - sent)]
            wait = upload.write(piece)
            sent += len(piece)
            if wait is not None:
                await wait
    chunks = await upload.close()
    await engine.objects.put(
        "bench",
        key,
        NewObject(size=0, etag=""),
        StagedBody(chunks, upload.size, md5.hexdigest()),
        WriteConditions(),
    )
    return time.perf_counter() - start


async def _get(engine: Engine, key: str) -> tuple[float, int]:
    start = time.perf_counter()
    opened = await engine.objects.open("bench", key)
    total = 0
    pending = [engine.objects.read_chunk(loc) for loc in opened.locations[:2]]
    index = 2
    while pending:
        data = await pending.pop(0)
        total += len(data)
        if index < len(opened.locations):
            pending.append(engine.objects.read_chunk(opened.locations[index]))
            index += 1
    return time.perf_counter() - start, total


async def _concurrent(n: int, concurrency: int, make: Any) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            result = await make(i)
            latencies.append(result if isinstance(result, float) else result[0])

    start = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(concurrency)])
    return time.perf_counter() - start, latencies


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run every benchmark and print its figures."""
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="s4d-bench-")
    runner = ExecutorRunner(FutureBridge(reactor.callFromThread), args.threads)
    store = Store(StoreConfig(data_dir, fsync=not args.no_fsync))
    engine = Engine(store, runner, reactor.callFromThread)
    try:
        await engine.buckets.create("bench", "us-east-1")
        print(f"data dir {data_dir}, fsync {'off' if args.no_fsync else 'on'}")
        small = os.urandom(4096)
        for concurrency, n in ((1, args.small_ops // 10), (64, args.small_ops)):
            elapsed, lat = await _concurrent(
                n,
                concurrency,
                lambda i, c=concurrency: _put(
                    engine, f"small/{c}/{i:08d}", small[:-8] + i.to_bytes(8, "big")
                ),
            )
            print(
                f"put 4KiB  c={concurrency:<3} {n / elapsed:9.0f} ops/s  {latency_summary(lat)}  "
                f"(batches {store.committer.batches}, ops {store.committer.operations})"
            )
        n = args.small_ops
        elapsed, lat = await _concurrent(n, 64, lambda i: _get(engine, f"small/64/{i:08d}"))
        print(f"get 4KiB  c=64  {n / elapsed:9.0f} ops/s  {latency_summary(lat)}")
        for size_mb in args.large:
            size = size_mb << 20
            t = await _put(engine, f"large/{size_mb}", None, size)
            print(f"put {size_mb} MiB  {size / t / 1e6:8.0f} MB/s  ({t:.2f} s)")
            t, total = await _get(engine, f"large/{size_mb}")
            assert total == size
            print(f"get {size_mb} MiB  {size / t / 1e6:8.0f} MB/s  ({t:.2f} s)")
        print(f"peak RSS {peak_rss_mb():.0f} MB")
    finally:
        runner.stop()
        store.close()
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Parse options and run under the reactor."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench engine")
    parser.add_argument("--data-dir", help="where to write (default: a temp dir, removed after)")
    parser.add_argument("--small-ops", type=int, default=20000, help="4 KiB puts at concurrency 64")
    parser.add_argument(
        "--large", type=int, nargs="*", default=[64, 1024], help="large sizes in MiB"
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-fsync", action="store_true", help="measure without durability")
    parser.add_argument(
        "--warm", type=int, default=0, metavar="MB", help="first write and delete a scratch file"
    )
    args = parser.parse_args(argv)
    if args.warm:
        from s4d.bench.s3 import warm_page_cache

        warm_page_cache(args.data_dir or tempfile.gettempdir(), args.warm)
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))
    return 0
