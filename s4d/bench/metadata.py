"""The metadata benchmark: LMDB bytes per small object, split by sub-database.

Writes ``--objects`` objects of ``--size`` bytes through the real engine (the
durable PUT path the S3 layer takes for small bodies), then reads the LMDB
environment's statistics: for every named sub-database its pages (branch, leaf
and overflow) times the page size, and its entries, each divided by the number
of objects; and the bytes of the segment files. Keys are written in order
(``obj/00000000`` ...) unless ``--shuffle`` writes them in a random order
(which leaves B-tree pages less full).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from typing import Any

import lmdb
from twisted.internet import defer, task

from s4d.bench.stats import peak_rss_mb
from s4d.engine import BodyDigests, DeclaredDigests, Engine, WholeBody
from s4d.features.objects import NewObject, WriteConditions
from s4d.store.schema import DATABASES
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import ExecutorRunner, FutureBridge


def database_usage(env: lmdb.Environment) -> dict[str, dict[str, int]]:
    """Pages, bytes and entries of every named sub-database (and of the main one)."""
    usage: dict[str, dict[str, int]] = {}
    with env.begin() as txn:
        for name in DATABASES:
            db = env.open_db(name, txn=txn, create=False)
            usage[name.decode()] = _usage(txn.stat(db))
    usage["(main)"] = _usage(env.stat())
    return usage


def _usage(stat: Any) -> dict[str, int]:
    pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
    return {
        "pages": pages,
        "bytes": pages * stat["psize"],
        "entries": stat["entries"],
        "depth": stat["depth"],
    }


def segment_bytes(data_dir: str) -> int:
    """The total size of the segment files."""
    seg_dir = os.path.join(data_dir, "segments")
    if not os.path.isdir(seg_dir):
        return 0
    return sum(os.path.getsize(os.path.join(seg_dir, n)) for n in os.listdir(seg_dir))


def report(data_dir: str, env: lmdb.Environment, objects: int) -> dict[str, Any]:
    """The per-object split of one store's metadata (and its segment bytes)."""
    usage = database_usage(env)
    total = sum(u["bytes"] for u in usage.values())
    return {
        "objects": objects,
        "lmdb_bytes": total,
        "lmdb_bytes_per_object": total / objects,
        "segment_bytes_per_object": segment_bytes(data_dir) / objects,
        "databases": {
            name: {**u, "bytes_per_object": u["bytes"] / objects}
            for name, u in usage.items()
            if u["entries"] or u["pages"]
        },
    }


def render(result: dict[str, Any]) -> str:
    """The report as a table."""
    lines = [f"{'database':<10} {'entries':>10} {'pages':>8} {'bytes/object':>13}"]
    for name, u in sorted(result["databases"].items(), key=lambda kv: -kv[1]["bytes"]):
        lines.append(
            f"{name:<10} {u['entries']:>10} {u['pages']:>8} {u['bytes_per_object']:>13.1f}"
        )
    lines.append(f"{'LMDB':<10} {'':>10} {'':>8} {result['lmdb_bytes_per_object']:>13.1f}")
    lines.append(f"{'segments':<10} {'':>10} {'':>8} {result['segment_bytes_per_object']:>13.1f}")
    return "\n".join(lines)


async def _write(engine: Engine, keys: list[str], size: int, concurrency: int) -> None:
    payload = os.urandom(size + 8)
    todo = iter(enumerate(keys))

    async def worker() -> None:
        for i, key in todo:
            # distinct bytes per object (no dedup): the index, then random bytes
            data = (i.to_bytes(8, "big") + payload)[:size]
            await engine.objects.put(
                "bench",
                key,
                NewObject(size=0, etag=""),
                WholeBody(data, BodyDigests(DeclaredDigests())),
                WriteConditions(),
            )

    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(concurrency)])


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Write the objects and print the split."""
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="s4d-bench-meta-")
    runner = ExecutorRunner(FutureBridge(reactor.callFromThread), args.threads)
    store = Store(StoreConfig(data_dir, fsync=not args.no_fsync))
    engine = Engine(store, runner, reactor.callFromThread)
    try:
        await engine.buckets.create("bench", "us-east-1")
        keys = [f"obj/{i:08d}" for i in range(args.objects)]
        if args.shuffle:
            random.Random(1).shuffle(keys)
        start = time.perf_counter()
        await _write(engine, keys, args.size, args.concurrency)
        elapsed = time.perf_counter() - start
        result = report(data_dir, store.env, args.objects)
        result.update(
            size=args.size,
            shuffled=args.shuffle,
            seconds=round(elapsed, 2),
            puts_per_second=round(args.objects / elapsed),
            peak_rss_mb=round(peak_rss_mb()),
        )
        print(
            f"{args.objects} objects of {args.size} bytes "
            f"({'shuffled' if args.shuffle else 'in key order'}) in {elapsed:.1f} s "
            f"({args.objects / elapsed:.0f}/s), data dir {data_dir}"
        )
        print(render(result))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(result, out, indent=2)
    finally:
        runner.stop()
        store.close()
        if not args.data_dir and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Parse options and run under the reactor."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench metadata")
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100, help="bytes per object")
    parser.add_argument("--shuffle", action="store_true", help="write the keys in random order")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--data-dir", help="where to write (default: a temp dir, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    parser.add_argument("--no-fsync", action="store_true", help="measure without durability")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument(
        "--inline-max", type=int, help="keep objects up to this size inline (an experiment)"
    )
    args = parser.parse_args(argv)
    if args.inline_max is not None:
        from s4d.store import model

        model.INLINE_MAX = args.inline_max
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))
    return 0
