"""The rename benchmark: how long a prefix rename takes as the prefix grows.

For each size it fills a prefix straight through the store (batched commits,
fsync off, every object sharing one small chunk, so filling is quick), then
reopens the store with fsync on and the threaded group committer, the path a
server's writes take, and times RenameObject operations: a prefix renamed back
and forth between two names of the same length, to a longer name (the key
length check reads one bound, not the keys), and a single key renamed back and
forth. The time of an operation is from its submission to the committer until
its commit is durable (the server-side cost of the request, without HTTP);
the time spent inside the transaction is shown too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from typing import Any

from s4d.bench.stats import latency_summary, peak_rss_mb
from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.features import rename as fr
from s4d.store.chunks import WrittenChunk
from s4d.store.store import Store, StoreConfig

BUCKET = "bench"
#: objects per fill transaction
FILL_BATCH = 20_000
#: objects per directory below the renamed prefix
PER_DIR = 1000


def key_of(prefix: str, i: int) -> str:
    """The i-th key below ``prefix`` (a thousand per subdirectory)."""
    return f"{prefix}d{i // PER_DIR:05d}/f{i:08d}"


def fill(data_dir: str, prefix: str, count: int) -> float:
    """Create ``count`` objects under ``prefix``; returns the seconds it took.

    Every object references the same small chunk: it is written once (or found
    already indexed) and each further object only adds a reference to it.
    """
    store = Store(StoreConfig(data_dir, fsync=False), inline_commit=True)
    start = time.perf_counter()
    try:
        try:
            store.commit(lambda t: fo.create_bucket(t, BUCKET, "us-east-1", time.time_ns()))
        except S3Error as e:
            if e.code != "BucketAlreadyOwnedByYou":
                raise
        written = store.put_chunk(b"s4d rename benchmark\n")
        shared = [WrittenChunk(written.ref, None)]
        new = fo.NewObject(size=written.ref.size, etag="0" * 32)
        cond = fo.WriteConditions()
        now = time.time_ns()
        for first in range(0, count, FILL_BATCH):
            last = min(count, first + FILL_BATCH)

            def batch(t: Any, first: int = first, last: int = last) -> None:
                for i in range(first, last):
                    chunks = [written] if i == 0 else shared
                    fo.put_object(t, BUCKET, key_of(prefix, i), new, chunks, cond, now)

            segments: frozenset[int] = frozenset()
            if first == 0 and written.location is not None:
                segments = frozenset({written.location.segment})
            store.commit(batch, segments)
    finally:
        store.close()
    return time.perf_counter() - start


def timed_rename(store: Store, source: str, destination: str) -> tuple[float, float]:
    """(seconds until durable, seconds inside the transaction) of one rename."""
    inside: list[float] = []
    request = fr.Rename(BUCKET, destination, BUCKET, source)

    def operation(t: Any) -> fr.RenameOutcome:
        begin = time.perf_counter()
        outcome = fr.rename(t, request, time.time_ns())
        inside.append(time.perf_counter() - begin)
        return outcome

    start = time.perf_counter()
    store.commit(operation)
    return time.perf_counter() - start, inside[0]


def ms(values: list[float]) -> str:
    """Median and max in milliseconds."""
    return f"median {statistics.median(values) * 1000:6.2f} ms  max {max(values) * 1000:6.2f} ms"


def measure(data_dir: str, prefix: str, count: int, repeats: int) -> dict[str, Any]:
    """Time prefix renames of a ``count``-key prefix and single-key renames."""
    store = Store(StoreConfig(data_dir, fsync=True))  # the threaded committer, fsync on
    store.env.sync(True)  # the fill ran without fsync: flush it before timing anything
    try:
        other = prefix.replace("src", "dst")
        longer = prefix.replace("src", "a-longer-name")
        durable, inside = [], []
        for i in range(repeats):
            a, b = (prefix, other) if i % 2 == 0 else (other, prefix)
            d, t = timed_rename(store, a, b)
            durable.append(d)
            inside.append(t)
        if repeats % 2:
            timed_rename(store, other, prefix)
        grow = [timed_rename(store, prefix, longer)[0], timed_rename(store, longer, prefix)[0]]
        key_a, key_b = key_of(prefix, count // 2), key_of(prefix, count // 2) + ".renamed"
        single = []
        for i in range(repeats * 5):
            a, b = (key_a, key_b) if i % 2 == 0 else (key_b, key_a)
            single.append(timed_rename(store, a, b)[0])
        if len(single) % 2:
            timed_rename(store, key_b, key_a)
    finally:
        store.close()
    return {"durable": durable, "inside": inside, "longer": grow, "single": single}


def main(argv: list[str]) -> int:
    """Fill, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench rename")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[10_000, 100_000, 1_000_000],
        help="objects below the renamed prefix, one run each",
    )
    parser.add_argument("--repeats", type=int, default=20, help="renames timed per size")
    parser.add_argument("--data-dir", help="where to work (default: a temp dir, removed after)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="s4d-bench-rename-")
    print(f"data dir {data_dir}; fill with fsync off, renames with fsync on")
    try:
        for count in args.sizes:
            prefix = f"n{count}/src/"
            took = fill(data_dir, prefix, count)
            print(f"{count:>9,} objects filled in {took:6.1f} s ({count / took:,.0f}/s)")
            figures = measure(data_dir, prefix, count, args.repeats)
            print(f"  prefix rename, durable       {ms(figures['durable'])}")
            print(f"  prefix rename, in txn        {ms(figures['inside'])}")
            print(f"  prefix rename, longer name   {ms(figures['longer'])}")
            print(f"  single-key rename, durable   {latency_summary(figures['single'])}")
        print(f"peak RSS {peak_rss_mb():.0f} MB")
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
