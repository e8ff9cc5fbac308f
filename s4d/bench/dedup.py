"""The dedup, compression and compaction benchmark.

``python -m s4d.bench dedup`` drives the real asynchronous engine (worker
threads, group committer, fsync on) with a corpus it generates:

* ``copies``: one random 20 MiB file stored under 50 different keys;
* ``versions``: 200 versions of a 1 MiB text file, each with a few small edits,
  in a versioned bucket;
* ``text``: 64 MiB of generated text in files of 1-4 MiB.

It prints, per corpus and in total, logical against physical bytes and the
dedup and compression ratios (from the store's incrementally kept statistics),
then PUT throughput with compression ``off`` and ``auto`` on incompressible
and on text data (each in a fresh store) and for content that is already
stored (dedup: nothing is written), and finally deletes most of the corpus and
runs a compaction pass while GETs keep going, reporting compaction speed and
GET latency before and during the pass.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import tempfile
import time
from typing import Any

from twisted.internet import defer, task

from s4d.bench.stats import latency_summary, peak_rss_mb, percentile
from s4d.engine import Engine, StagedBody
from s4d.features.objects import NewObject, WriteConditions
from s4d.store.stats import StorageStats
from s4d.store.store import Store, StoreConfig
from s4d.store.txn import MetaTxn
from s4d.util.threads import ExecutorRunner, FutureBridge

MiB = 1 << 20
PIECE = 1 << 20


def text_bytes(size: int, seed: int) -> bytes:
    """Text-like bytes (words from a fixed vocabulary), compressible about 3x."""
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(5000)
    ]
    out: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(vocab, k=14)) + ".\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


async def put(engine: Engine, bucket: str, key: str, data: bytes) -> float:
    """Stream ``data`` to ``key`` as the S3 layer does; return the seconds it took."""
    start = time.perf_counter()
    md5 = hashlib.md5(usedforsecurity=False)
    upload = engine.objects.upload([md5])
    view = memoryview(data)
    for offset in range(0, len(data), PIECE):
        wait = upload.write(bytes(view[offset : offset + PIECE]))
        if wait is not None:
            await wait
    chunks = await upload.close()
    await engine.objects.put(
        bucket,
        key,
        NewObject(size=0, etag=""),
        StagedBody(chunks, len(data), md5.hexdigest()),
        WriteConditions(),
    )
    return time.perf_counter() - start


async def get(engine: Engine, bucket: str, key: str) -> int:
    """Read a whole object; return its size."""
    opened = await engine.objects.open(bucket, key)
    total = 0
    for loc in opened.locations:
        total += len(await engine.objects.read_chunk(loc))
    return total


def open_engine(
    reactor: Any, path: str, compression: str, threads: int, segment_mb: int = 64
) -> tuple[Engine, Any]:
    store = Store(
        StoreConfig(path, compression=compression, segment_size=segment_mb * MiB, map_size=8 << 30)
    )
    runner = ExecutorRunner(FutureBridge(reactor.callFromThread), threads)
    return Engine(store, runner, reactor.callFromThread), runner


def close_engine(engine: Engine, runner: Any) -> None:
    runner.stop()
    engine.store.close()


def size(n: float) -> str:
    return f"{n / MiB:9.1f} MiB"


def show(title: str, st: StorageStats, base: StorageStats | None = None) -> None:
    def d(name: str) -> int:
        return int(getattr(st, name) - (getattr(base, name) if base else 0))

    logical, unique, stored, physical = (
        d("logical_bytes"),
        d("unique_bytes"),
        d("stored_bytes"),
        d("physical_bytes"),
    )
    dedup = logical / unique if unique else float("inf")
    comp = unique / stored if stored else 1.0
    print(
        f"{title:<10} logical {size(logical)}  unique {size(unique)}  stored {size(stored)}  "
        f"physical {size(physical)}  dedup {dedup:6.2f}x  compression {comp:4.2f}x"
    )


async def throughput(
    reactor: Any, workdir: str, args: argparse.Namespace, label: str, objects: list[bytes]
) -> dict[str, float]:
    """PUT MB/s of ``objects`` into fresh stores with compression off and auto.

    The modes alternate, twice each, and the better run of each counts: the first
    writes into never-touched memory are slower on this kind of machine.
    """
    rates: dict[str, float] = {}
    for mode in ("off", "auto", "off", "auto"):
        path = tempfile.mkdtemp(prefix=f"tp-{mode}-", dir=workdir)
        engine, runner = open_engine(reactor, path, mode, args.threads)
        try:
            await engine.buckets.create("t", "us-east-1")
            total = sum(len(o) for o in objects)
            start = time.perf_counter()
            await defer.gatherResults(
                [
                    defer.ensureDeferred(_put_all(engine, objects[i :: args.concurrency], i))
                    for i in range(args.concurrency)
                ]
            )
            elapsed = time.perf_counter() - start
            second = mode in rates
            rates[mode] = max(rates.get(mode, 0.0), total / elapsed / 1e6)
            st = await engine.maintenance.storage_stats()
            print(
                f"PUT {label:<14} compression {mode:<4} {total / elapsed / 1e6:7.0f} MB/s"
                f"  (stored {st.stored_bytes / st.unique_bytes:.2f} of the bytes)"
            )
            if mode == "auto" and label == "incompressible" and second:
                # The same bytes again: every chunk exists, nothing is written.
                start = time.perf_counter()
                await defer.gatherResults(
                    [
                        defer.ensureDeferred(
                            _put_all(engine, objects[i :: args.concurrency], i, "again")
                        )
                        for i in range(args.concurrency)
                    ]
                )
                again = total / (time.perf_counter() - start) / 1e6
                after = await engine.maintenance.storage_stats()
                print(
                    f"PUT {'duplicates':<14} compression {mode:<4} {again:7.0f} MB/s"
                    f"  (physical grew {after.physical_bytes - st.physical_bytes} bytes)"
                )
                rates["dedup"] = again
        finally:
            close_engine(engine, runner)
            shutil.rmtree(path, ignore_errors=True)
    return rates


async def _put_all(engine: Engine, objects: list[bytes], worker: int, tag: str = "") -> None:
    for n, data in enumerate(objects):
        await put(engine, "t", f"{tag}w{worker}/{n}", data)


async def get_loop(engine: Engine, keys: list[tuple[str, str]], stop: list[bool]) -> list[float]:
    """GET random keys until ``stop[0]``; return the latencies."""
    rng = random.Random(1)
    latencies: list[float] = []
    while not stop[0]:
        bucket, key = rng.choice(keys)
        start = time.perf_counter()
        await get(engine, bucket, key)
        latencies.append(time.perf_counter() - start)
    return latencies


async def run(reactor: Any, args: argparse.Namespace) -> None:
    workdir = args.data_dir or tempfile.mkdtemp(prefix="s4d-bench-dedup-")
    os.makedirs(workdir, exist_ok=True)
    try:
        await corpus_and_compaction(reactor, workdir, args)
        print()
        for rate in (None, 128e6):
            await compaction_load(reactor, workdir, args, rate)
        print()
        noise = [os.urandom(args.object_mb * MiB) for _ in range(args.objects)]
        best = await throughput(reactor, workdir, args, "incompressible", noise)
        print(
            f"incompressible PUT, best runs: auto {best['auto']:.0f} MB/s = "
            f"{best['auto'] / best['off']:.0%} of off ({best['off']:.0f} MB/s); "
            f"duplicates {best['dedup']:.0f} MB/s"
        )
        del noise
        texts = [text_bytes(args.object_mb * MiB, 100 + i) for i in range(args.objects)]
        best = await throughput(reactor, workdir, args, "text", texts)
        print(f"text PUT, best runs: auto {best['auto']:.0f} MB/s, off {best['off']:.0f} MB/s")
        print(f"peak RSS of the benchmark (its corpus included) {peak_rss_mb():.0f} MB")
    finally:
        if not args.data_dir:
            shutil.rmtree(workdir, ignore_errors=True)


async def compaction_load(
    reactor: Any, workdir: str, args: argparse.Namespace, rate: float | None
) -> None:
    """Half of ``--compact-mb`` of 4 MiB objects deleted, then a pass while GETs go on."""
    path = tempfile.mkdtemp(prefix="compact-", dir=workdir)
    engine, runner = open_engine(reactor, path, "auto", args.threads, 64)
    try:
        await engine.buckets.create("c", "us-east-1")
        count = args.compact_mb // 4
        for i in range(count):
            await put(engine, "c", f"o{i:05d}", os.urandom(4 * MiB))
        for i in range(0, count, 2):
            await engine.objects.delete("c", f"o{i:05d}")
        readers = [("c", f"o{i:05d}") for i in range(1, count, 2)]
        stop = [False]
        measure = defer.ensureDeferred(get_loop(engine, readers, stop))
        await task.deferLater(reactor, args.baseline_secs, lambda: None)
        stop[0] = True
        before = sorted(await measure)
        stop = [False]
        measure = defer.ensureDeferred(get_loop(engine, readers, stop))
        report = await engine.maintenance.compact(threshold=args.threshold, grace=0, rate=rate)
        stop[0] = True
        during = sorted(await measure)
        cap = f"capped at {rate / 1e6:.0f} MB/s" if rate else "unthrottled"
        print(
            f"compaction ({cap}): {len(report.compacted)} segments, "
            f"{report.copied_bytes / MiB:.0f} MiB copied in {report.seconds:.2f} s = "
            f"{report.copied_bytes / report.seconds / 1e6:.0f} MB/s copied, "
            f"{report.reclaimed_bytes / report.seconds / 1e6:.0f} MB/s of segments processed, "
            f"{report.freed_bytes / MiB:.0f} MiB freed"
        )
        print(f"  GET 4 MiB before: {latency_summary(before)} ({len(before)} GETs)")
        print(f"  GET 4 MiB during: {latency_summary(during)} ({len(during)} GETs)")
    finally:
        close_engine(engine, runner)
        shutil.rmtree(path, ignore_errors=True)


async def corpus_and_compaction(reactor: Any, workdir: str, args: argparse.Namespace) -> None:
    path = os.path.join(workdir, "corpus")
    engine, runner = open_engine(reactor, path, args.compression, args.threads, args.segment_mb)
    try:
        await engine.buckets.create("copies", "us-east-1")
        await engine.buckets.create("versions", "us-east-1")
        await engine.buckets.create("text", "us-east-1")

        def enable(t: Any) -> None:
            b = t.buckets.require("versions")
            b.versioning = "Enabled"
            t.buckets.put(b)

        await engine.core.commit(enable)
        print(f"corpus (compression {args.compression}, fsync on, {args.threads} threads)")
        start_stats = await engine.maintenance.storage_stats()
        original = os.urandom(20 * MiB)
        t0 = time.perf_counter()
        for i in range(args.copies):
            await put(engine, "copies", f"copy-{i:03d}", original)
        copies_s = time.perf_counter() - t0
        after_copies = await engine.maintenance.storage_stats()
        show("copies", after_copies, start_stats)
        print(
            f"           {args.copies} x 20 MiB in {copies_s:.1f} s "
            f"({args.copies * 20 * MiB / copies_s / 1e6:.0f} MB/s); "
            "copies after the first cost "
            f"{after_copies.physical_bytes - start_stats.physical_bytes - 20 * MiB} "
            "bytes beyond one copy's (record headers)"
        )
        doc = bytearray(text_bytes(MiB, 7))
        rng = random.Random(3)
        for _ in range(args.versions):
            for _edit in range(3):
                at = rng.randrange(len(doc) - 8)
                doc[at : at + 8] = rng.randbytes(8).hex()[:8].encode()
            await put(engine, "versions", "document.txt", bytes(doc))
        after_versions = await engine.maintenance.storage_stats()
        show("versions", after_versions, after_copies)
        sizes = []
        remaining = args.text_mb * MiB
        n = 0
        while remaining > 0:
            piece = min(remaining, rng.randint(1, 4) * MiB)
            await put(engine, "text", f"file-{n:04d}.txt", text_bytes(piece, n))
            sizes.append(piece)
            remaining -= piece
            n += 1
        after_text = await engine.maintenance.storage_stats()
        show("text", after_text, after_versions)
        show("total", after_text)

        # -- compaction while GETs go on --------------------------------------------------
        readers = [("text", f"file-{i:04d}.txt") for i in range(0, n, 2)]
        stop = [False]
        measure = defer.ensureDeferred(get_loop(engine, readers, stop))
        await task.deferLater(reactor, args.baseline_secs, lambda: None)
        stop[0] = True
        before = sorted(await measure)
        # Garbage: every copy but one, all versions but the newest, every other text file.
        for i in range(1, args.copies):
            await engine.objects.delete("copies", f"copy-{i:03d}")

        def version_ids(t: MetaTxn) -> list[str]:
            object_id = t.ns.lookup(t.buckets.require("versions"), b"document.txt")
            assert object_id is not None, "versions/document.txt was written above"
            return [v.version_id for v in t.versions.all(object_id)]

        listing = await engine.core.read(version_ids)
        for vid in listing[1:]:
            await engine.objects.delete("versions", "document.txt", vid)
        for i in range(1, n, 2):
            await engine.objects.delete("text", f"file-{i:04d}.txt")
        garbage = await engine.maintenance.storage_stats()
        print(
            f"\nafter deletes: physical {size(garbage.physical_bytes)}, "
            f"dead {size(garbage.dead_bytes)} in {len(garbage.segments)} segments"
        )
        stop = [False]
        measure = defer.ensureDeferred(get_loop(engine, readers, stop))
        report = await engine.maintenance.compact(threshold=args.threshold, grace=0, rate=args.rate)
        stop[0] = True
        during = sorted(await measure)
        after = await engine.maintenance.storage_stats()
        print(report.summary())
        print(
            f"compaction: {report.copied_bytes / MiB:.1f} MiB copied in {report.seconds:.2f} s "
            f"= {report.copied_bytes / max(report.seconds, 1e-9) / 1e6:.0f} MB/s copied, "
            f"{report.reclaimed_bytes / max(report.seconds, 1e-9) / 1e6:.0f} MB/s of segments "
            f"processed; physical {size(garbage.physical_bytes)} -> {size(after.physical_bytes)}"
        )
        print(f"GET text files before compaction: {latency_summary(before)} ({len(before)} GETs)")
        print(f"GET text files during compaction: {latency_summary(during)} ({len(during)} GETs)")
        if during:
            ratio = percentile(during, 0.99) / percentile(before, 0.99)
            print(f"  p99 during / before: {ratio:.2f}")
    finally:
        close_engine(engine, runner)


def main(argv: list[str]) -> int:
    """Parse options and run under the reactor."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench dedup")
    parser.add_argument("--data-dir", help="where to write (default: a temp dir, removed after)")
    parser.add_argument("--compression", default="auto", choices=("off", "auto", "zstd"))
    parser.add_argument("--copies", type=int, default=50, help="copies of the 20 MiB file")
    parser.add_argument("--versions", type=int, default=200, help="versions of the 1 MiB file")
    parser.add_argument("--text-mb", type=int, default=64, help="size of the text corpus")
    parser.add_argument("--objects", type=int, default=16, help="objects per throughput run")
    parser.add_argument("--object-mb", type=int, default=32, help="their size in MiB")
    parser.add_argument("--concurrency", type=int, default=4, help="uploads at once")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument(
        "--segment-mb", type=int, default=16, help="segment size of the corpus store"
    )
    parser.add_argument("--rate", type=float, default=None, help="compaction cap, bytes/s")
    parser.add_argument("--baseline-secs", type=float, default=3.0)
    parser.add_argument(
        "--compact-mb", type=int, default=512, help="written, half deleted, then compacted"
    )
    args = parser.parse_args(argv)
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))
    return 0
