"""The soak: mixed load at a fixed rate for a long time; throughput, errors and RSS over time.

``python -m s4d.bench soak --minutes 30`` starts ``twistd s4`` on a temporary
data directory (fsync on, ``S4_WORKERS=2`` by default, compaction and the
scrubber running often) and drives it with :class:`~s4d.bench.workload.MixedWorker`
threads (PUT, overwrite, DELETE, multipart, copy, rename of keys and prefixes,
checked GETs) paced to ``--rate`` operations per second in total. Every
``--interval`` seconds it prints the operations completed, errors answered,
wrong reads and the RSS of every server process (main and workers). At the end
it reads back every key against the model, stops the server, runs fsck, and
prints a verdict on RSS growth: each process's RSS at the end must stay within
``--rss-slack`` (fraction) plus 16 MB of its RSS after the first interval
(the warm-up). Exit status 0 only if nothing was lost, nothing wrong was read,
fsck is clean and no process grew.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from s4d.bench.workload import Blobs, KeyModel, MixedWorker, ServerGroup, read_state, rss_mb

BUCKET = "soak"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    """Run the soak and print its report."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench soak")
    p.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    p.add_argument("--rate", type=float, default=150.0, help="operations per second in total")
    p.add_argument("--threads", type=int, default=8, help="client threads (one prefix each)")
    p.add_argument("--workers", type=int, default=2, help="server processes (S4_WORKERS)")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between report lines")
    p.add_argument("--rss-slack", type=float, default=0.25, help="allowed RSS growth (fraction)")
    p.add_argument("--data-dir", help="where to keep the data (default: a temporary directory)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)

    work = tempfile.mkdtemp(prefix="s4d-soak-")
    data_dir = args.data_dir or os.path.join(work, "data")
    server = ServerGroup(
        data_dir,
        os.path.join(work, "server.log"),
        {
            "S4_FSYNC": "true",
            "S4_WORKERS": str(args.workers),
            "S4_SEGMENT_SIZE": "64MB",
            "S4_COMPACTION_INTERVAL_HOURS": str(60 / 3600),
            "S4_COMPACTION_GRACE_SECS": "30",
            "S4_SCRUB_INTERVAL_SECS": "30",
        },
    )
    server.start()
    try:
        return _soak(args, server, data_dir)
    finally:
        server.kill()
        if not args.data_dir:
            shutil.rmtree(work, ignore_errors=True)


def _soak(args: argparse.Namespace, server: ServerGroup, data_dir: str) -> int:
    client = server.client()
    client.request("PUT", BUCKET)
    client.close()
    pids = server.pids()
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} ops/s, {args.threads} client threads, "
        f"S4_WORKERS={args.workers} (pids {pids}), fsync on",
        flush=True,
    )
    stop = threading.Event()
    blobs = Blobs(args.seed)
    models = [KeyModel(f"s{i}/") for i in range(args.threads)]
    workers = [
        MixedWorker(
            server,
            BUCKET,
            m,
            args.seed * 1000 + i,
            stop,
            blobs=blobs,
            rate=args.rate / args.threads,
        )
        for i, m in enumerate(models)
    ]
    for w in workers:
        w.start()
    started = time.monotonic()
    end = started + args.minutes * 60
    previous_ops = 0
    previous_errors = 0
    previous_at = started
    previous_cpu = [cpu_seconds(pid) for pid in pids]
    rss_rows: list[list[float]] = []
    print(
        f"{'minute':>7} {'ops/s':>7} {'errors':>6} {'wrong':>5}  RSS MB per process"
        "   CPU per process",
        flush=True,
    )
    while time.monotonic() < end and all(w.is_alive() for w in workers):
        stop.wait(min(args.interval, max(0.0, end - time.monotonic())))
        ops = sum(sum(w.acked.values()) for w in workers)
        errors = sum(sum(w.errors.values()) for w in workers)
        wrong_now = sum(len(w.wrong) for w in workers)
        rss = [rss_mb(pid) for pid in pids]
        rss_rows.append(rss)
        now = time.monotonic()
        cpu = [cpu_seconds(pid) for pid in pids]
        busy = [(c - p) / (now - previous_at) * 100 for c, p in zip(cpu, previous_cpu, strict=True)]
        print(
            f"{(now - started) / 60:7.1f} {(ops - previous_ops) / (now - previous_at):7.1f} "
            f"{errors - previous_errors:6d} {wrong_now:5d}  "
            + " ".join(f"{r:6.1f}" for r in rss)
            + "   "
            + " ".join(f"{b:4.0f}%" for b in busy),
            flush=True,
        )
        previous_ops, previous_errors, previous_at, previous_cpu = ops, errors, now, cpu
    stop.set()
    for w in workers:
        w.join(60)
    failures = [w for w in workers if w.failure is not None]
    acked: Counter[str] = Counter()
    errors_by_kind: Counter[str] = Counter()
    for w in workers:
        acked.update(w.acked)
        errors_by_kind.update(w.errors)
    latencies = sorted(x for w in workers for x in w.latencies)
    wrong = [x for w in workers for x in w.wrong]
    client = server.client()
    losses: list[str] = []
    for m in models:
        losses += m.settle(read_state(client, BUCKET, m.prefix))
    client.close()
    server.stop()
    fsck = subprocess.run(
        [sys.executable, "-m", "s4d.cli", "fsck", "--quick", data_dir],
        capture_output=True,
        text=True,
    )
    total = sum(acked.values())
    elapsed = time.monotonic() - started
    print(f"operations acknowledged: {total} ({total / elapsed:.1f}/s)")
    print(f"  by kind: {dict(sorted(acked.items()))}")
    if latencies:
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        print(f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"errors answered: {dict(errors_by_kind) or 0}")
    print(f"wrong reads: {len(wrong)}; losses after the run: {len(losses)}")
    for line in (wrong + losses)[:20]:
        print("  " + line)
    print("fsck: " + ("clean" if fsck.returncode == 0 else "PROBLEMS\n" + fsck.stdout))
    grew = []
    if len(rss_rows) >= 2:
        for index, pid in enumerate(pids):
            first, last = rss_rows[0][index], rss_rows[-1][index]
            peak = max(row[index] for row in rss_rows)
            ok = last <= first * (1 + args.rss_slack) + 16
            print(
                f"RSS of pid {pid}: {first:.1f} MB after warm-up, {last:.1f} MB at the end, "
                f"peak {peak:.1f} MB: {'stable' if ok else 'GROWING'}"
            )
            if not ok:
                grew.append(pid)
    for w in failures:
        print(f"{w.name} failed: {w.failure!r}")
    good = not (wrong or losses or grew or failures) and fsck.returncode == 0
    print("verdict: " + ("PASS" if good else "FAIL"))
    return 0 if good else 1
