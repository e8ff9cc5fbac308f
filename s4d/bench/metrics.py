"""How long a ``/metrics`` scrape takes as buckets pile up: ``python -m s4d.bench.metrics``.

Starts a server of its own (``--workers`` processes), times ``--scrapes``
scrapes of an empty server, creates ``--buckets`` buckets (one small object in
every hundredth) over ``--connections`` concurrent connections, and times the
scrapes again. A scrape reads counters only, so its time should not grow with
buckets. Then, with the server stopped, it times what ``GET
/api/admin/bucket-stats`` computes (every bucket's keys walked, a page per read
transaction) on the same data directory, which does grow with them.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from s4d.bench.s3 import Client, spawn_server
from s4d.bench.stats import percentile


def scrape_times(port: int, count: int) -> tuple[list[float], int]:
    """Seconds per scrape (each on a new connection) and the size of the last body."""
    times = []
    size = 0
    for _ in range(count):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        conn.close()
        if response.status != 200:
            raise SystemExit(f"/metrics answered {response.status}: {body[:200]!r}")
        size = len(body)
    return times, size


def report(label: str, times: list[float], size: int) -> None:
    """One line: median, p90 and worst scrape time, and the exposition size."""
    ms = sorted(t * 1000 for t in times)
    print(
        f"{label:<28} median {percentile(ms, 0.5):7.2f} ms  p90 {percentile(ms, 0.9):7.2f} ms  "
        f"max {ms[-1]:7.2f} ms  ({size} bytes)",
        flush=True,
    )


def create_buckets(port: int, count: int, connections: int) -> float:
    """Create ``count`` buckets (a small object in every hundredth); seconds taken."""

    def create(start: int) -> None:
        client = Client("127.0.0.1", port, "BENCHKEY", "benchsecret")
        for i in range(start, count, connections):
            status, body = client.request("PUT", f"/bucket-{i:06d}")
            if status != 200:
                raise SystemExit(f"creating bucket {i}: {status} {body[:200]!r}")
            if i % 100 == 0:
                client.request("PUT", f"/bucket-{i:06d}/object", b"x" * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(create, range(connections)))
    return time.perf_counter() - started


def bucket_stats_seconds(data_dir: str) -> tuple[float, int]:
    """Seconds the engine takes to compute every bucket's usage (bucket-stats), and buckets."""
    from s4d.engine import Engine
    from s4d.store.store import Store, StoreConfig
    from s4d.util.threads import InlineRunner

    store = Store(StoreConfig(data_dir), inline_commit=True)
    try:
        engine = Engine(store, InlineRunner(), lambda f, *a: f(*a))
        found: list[int] = []
        started = time.perf_counter()
        engine.admin.all_usage().addCallback(lambda usage: found.append(len(usage)))
        return time.perf_counter() - started, found[0]
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; print one line per figure."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench.metrics", description=__doc__)
    p.add_argument("--buckets", type=int, default=10_000)
    p.add_argument("--scrapes", type=int, default=50)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-metrics-")
    proc = None
    try:
        proc, port = spawn_server(
            False, data_dir, {"S4_WORKERS": str(args.workers), "S4_FSYNC": "false"}
        )
        print(f"s4d on 127.0.0.1:{port}, {args.workers} process(es)", flush=True)
        report("scrape, no bucket", *scrape_times(port, args.scrapes))
        seconds = create_buckets(port, args.buckets, args.connections)
        print(f"created {args.buckets} buckets in {seconds:.1f} s", flush=True)
        report(f"scrape, {args.buckets} buckets", *scrape_times(port, args.scrapes))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    try:
        seconds, count = bucket_stats_seconds(data_dir)
        print(f"bucket-stats over {count} buckets: {seconds * 1000:.0f} ms (engine, no HTTP)")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
