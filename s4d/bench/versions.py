"""The versions benchmark: page through N versions of K keys with ListObjectVersions.

``python -m s4d.bench versions`` fills a versioned bucket with ``--versions``
versions spread round-robin over ``--keys`` keys, spawns a real ``twistd s4``
on that data directory (one process, background jobs off), and pages through

* ListObjectVersions (``max-keys`` 1000, following ``NextKeyMarker`` and
  ``NextVersionIdMarker``) over every version, once;
* ListObjectsV2 (``max-keys`` 1000) over the same bucket, repeated as many
  pages as the version listing took (with 1,000 keys each pass is one page);
* the bare twisted.web baseline's 1,000-entry listing page, for the ceiling
  Twisted itself sets on this machine,

each with one keep-alive SigV4-signing connection, and prints pages/s, page
latencies and the server's resident memory sampled every 20 ms while it lists
(anonymous memory, the heap, apart from file pages: the LMDB map counts as file
pages as its pages are touched).

The fill: ``--fill engine`` (the default) runs the engine in a child process on
the data directory before the server starts and calls
:meth:`~s4d.engine.objects.ObjectsFacade.put` with the same description a bare
HTTP PUT produces (:func:`s4d.s3.handlers.objects.new_object_from_headers` of
no headers), so the records written are those the PUTs would write; it runs
with fsync off, which changes durability, not what is written.
``--fill http`` sends real concurrent PUTs to the spawned server instead.
``--data-dir`` keeps the directory; run again with the same directory and the
fill is skipped when the bucket already holds the versions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import unescape

from s4d.bench.stats import ProcessMemory, latency_summary, percentile, process_memory
from s4d.bench.workload import S3Http

BUCKET = "bench"
PAGE = 1000
ACCESS_KEY = "BENCHKEY"
SECRET_KEY = "benchsecret"
SERVER_ENV = {
    "S4_WORKERS": "1",
    "S4_SCRUB_ENABLED": "false",
    "S4_COMPACTION_ENABLED": "false",
}


def key_name(index: int) -> str:
    """The key the ``index``-th version is written to."""
    return f"obj/k{index:06d}"


def body(index: int, size: int) -> bytes:
    """The distinct body of the ``index``-th version (distinct: nothing deduplicates)."""
    return (b"v%010d" % index).ljust(size, b".")[: max(size, 11)]


# -- filling ----------------------------------------------------------------------------


def _fill_engine_child(
    data_dir: str, versions: int, keys: int, size: int, concurrency: int, out: Any
) -> None:
    """Child process: write the versions through the engine, send back the seconds it took."""
    from twisted.internet import defer, task

    from s4d.engine import BodyDigests, DeclaredDigests, Engine, WholeBody
    from s4d.features.objects import NewObject, WriteConditions
    from s4d.store.store import Store, StoreConfig
    from s4d.util.threads import ExecutorRunner, FutureBridge

    async def run(reactor: Any) -> None:
        runner = ExecutorRunner(FutureBridge(reactor.callFromThread), 8)
        store = Store(StoreConfig(data_dir, fsync=False))
        engine = Engine(store, runner, reactor.callFromThread)
        try:
            await engine.buckets.create(BUCKET, "us-east-1")
            await engine.buckets.set_versioning(BUCKET, "Enabled")
            indexes = iter(range(versions))
            started = time.perf_counter()

            async def writer() -> None:
                for i in indexes:
                    # What PutObject passes for a PUT without content-type or metadata.
                    new = NewObject(size=0, etag="")
                    data = body(i, size)
                    await engine.objects.put(
                        BUCKET,
                        key_name(i % keys),
                        new,
                        WholeBody(data, BodyDigests(DeclaredDigests())),
                        WriteConditions(),
                    )

            await defer.gatherResults([defer.ensureDeferred(writer()) for _ in range(concurrency)])
            out.send(time.perf_counter() - started)
        finally:
            runner.stop()
            store.close()

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


def fill_engine(data_dir: str, versions: int, keys: int, size: int, concurrency: int) -> float:
    """Fill ``data_dir`` through the engine in a child process; the seconds it took."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_fill_engine_child, args=(data_dir, versions, keys, size, concurrency, send)
    )
    child.start()
    send.close()
    try:
        seconds = float(receive.recv())
    except EOFError:
        raise SystemExit("the fill failed (see above)") from None
    child.join()
    return seconds


def _put_range(args: tuple[int, int, int, int, int, int, int]) -> None:
    """Client process of the HTTP fill: PUT versions ``first::step`` over some threads."""
    port, first, step, versions, keys, size, threads = args
    errors: list[str] = []

    def run(start: int) -> None:
        client = S3Http("127.0.0.1", port, ACCESS_KEY, SECRET_KEY)
        for i in range(start, versions, step * threads):
            r = client.put(BUCKET, key_name(i % keys), body(i, size))
            if r.status != 200:
                errors.append(f"PUT {key_name(i % keys)}: {r.status} {r.error_text()}")
                return
        client.close()

    workers = [threading.Thread(target=run, args=(first + t * step,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit(errors[0])


def fill_http(port: int, versions: int, keys: int, size: int, procs: int, threads: int) -> float:
    """Fill the bucket with real PUTs from ``procs`` x ``threads`` connections; seconds taken."""
    client = S3Http("127.0.0.1", port, ACCESS_KEY, SECRET_KEY)
    for method, query, payload in (
        ("PUT", [], b""),
        (
            "PUT",
            [("versioning", "")],
            b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<Status>Enabled</Status></VersioningConfiguration>",
        ),
    ):
        r = client.request(method, BUCKET, "", query, body=payload)
        if r.status != 200:
            raise SystemExit(f"setting up the bucket: {r.status} {r.error_text()}")
    client.close()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        pool.map(
            _put_range, [(port, p, procs, versions, keys, size, threads) for p in range(procs)]
        )
    return time.perf_counter() - started


# -- the server and its memory ------------------------------------------------------------


class MemorySampler:
    """Samples a process's memory every ``interval`` seconds while a phase runs."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[ProcessMemory] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = process_memory(self.pid)
            if sample is None:
                return
            self.samples.append(sample)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        sample = process_memory(self.pid)
        if sample is not None:
            self.samples.append(sample)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        sample = process_memory(self.pid)
        if sample is not None:
            self.samples.append(sample)

    def report(self) -> str:
        """Start, 10% in, end and peak, in MB (anonymous memory and file pages)."""
        if not self.samples:
            return "server memory: not readable"
        first, tenth, last = (
            self.samples[0],
            self.samples[len(self.samples) // 10],
            self.samples[-1],
        )
        peak_anon = max(s.anon_mb for s in self.samples)
        peak_rss = max(s.rss_mb for s in self.samples)
        return (
            f"server RSS anon (heap) MB: start {first.anon_mb:.0f}, 10% in {tenth.anon_mb:.0f}, "
            f"end {last.anon_mb:.0f}, peak {peak_anon:.0f};  "
            f"RSS total MB: start {first.rss_mb:.0f}, end {last.rss_mb:.0f}, peak {peak_rss:.0f} "
            f"(file pages {first.file_mb:.0f} -> {last.file_mb:.0f}: the LMDB map as read); "
            f"{len(self.samples)} samples"
        )


def spawn(data_dir: str, baseline: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server on ``data_dir`` (or the baseline); the process and its port."""
    from s4d.bench.s3 import spawn_server

    env = {} if baseline else dict(SERVER_ENV)
    return spawn_server(baseline, data_dir, env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- listing ---------------------------------------------------------------------------------

_NEXT_KEY = re.compile(rb"<NextKeyMarker>([^<]*)</NextKeyMarker>")
_NEXT_VERSION = re.compile(rb"<NextVersionIdMarker>([^<]*)</NextVersionIdMarker>")
_NEXT_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")


@dataclass
class Pass:
    """What one listing phase did."""

    name: str
    pages: int = 0
    entries: int = 0
    latest: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def line(self) -> str:
        """One line of figures."""
        lat = sorted(self.latencies)
        return (
            f"{self.name:<28} {self.pages:6d} pages {self.entries:8d} entries "
            f"{self.pages / self.seconds:8.1f} pages/s  {latency_summary(lat)}  "
            f"p90 {percentile(lat, 0.9) * 1000:.2f} ms  max {lat[-1] * 1000:.2f} ms"
        )


def _unescape(raw: bytes) -> str:
    return unescape(raw.decode(), {"&quot;": '"', "&apos;": "'"})


def _timed(client: S3Http, query: list[tuple[str, str]], bucket: str, run: Pass) -> bytes:
    start = time.perf_counter()
    r = client.request("GET", bucket, "", query)
    run.latencies.append(time.perf_counter() - start)
    if r.status != 200:
        raise SystemExit(f"{run.name}: {r.status} {r.error_text()}")
    run.pages += 1
    return r.body


def list_versions(client: S3Http, bucket: str = BUCKET, page_size: int = PAGE) -> Pass:
    """Page through every version of ``bucket`` with ListObjectVersions."""
    run = Pass("ListObjectVersions")
    markers: list[tuple[str, str]] = []
    started = time.perf_counter()
    while True:
        query = [("versions", ""), ("max-keys", str(page_size)), *markers]
        page = _timed(client, query, bucket, run)
        run.entries += page.count(b"<Version>") + page.count(b"<DeleteMarker>")
        run.latest += page.count(b"<IsLatest>true</IsLatest>")
        if b"<IsTruncated>true</IsTruncated>" not in page:
            break
        key, version = _NEXT_KEY.search(page), _NEXT_VERSION.search(page)
        if key is None or version is None:
            raise SystemExit("ListObjectVersions: a truncated page without next markers")
        markers = [
            ("key-marker", _unescape(key.group(1))),
            ("version-id-marker", version.group(1).decode()),
        ]
    run.seconds = time.perf_counter() - started
    return run


def list_v2(client: S3Http, pages: int, bucket: str = BUCKET, page_size: int = PAGE) -> Pass:
    """List ``bucket`` with ListObjectsV2 from the start, again and again, for ``pages`` pages."""
    run = Pass("ListObjectsV2")
    started = time.perf_counter()
    token = ""
    while run.pages < pages:
        query = [("list-type", "2"), ("max-keys", str(page_size))]
        if token:
            query.append(("continuation-token", token))
        page = _timed(client, query, bucket, run)
        run.entries += page.count(b"<Contents>")
        found = _NEXT_TOKEN.search(page) if b"<IsTruncated>true" in page else None
        token = found.group(1).decode() if found else ""
    run.seconds = time.perf_counter() - started
    return run


def list_baseline(port: int, pages: int) -> Pass:
    """Fetch the baseline server's 1,000-entry listing page ``pages`` times."""
    client = S3Http("127.0.0.1", port, ACCESS_KEY, SECRET_KEY)
    run = Pass("baseline (bare twisted.web)")
    started = time.perf_counter()
    while run.pages < pages:
        run.entries += _timed(client, [("list-type", "2")], "bench", run).count(b"<Contents>")
    run.seconds = time.perf_counter() - started
    client.close()
    return run


def _versions_held(data_dir: str) -> int | None:
    """How many versions ``data_dir`` holds (None: no data directory there yet)."""
    if not os.path.isdir(os.path.join(data_dir, "meta")):
        return None
    from s4d.store import stats
    from s4d.store.store import Store, StoreConfig

    store = Store(StoreConfig(data_dir, fsync=False))
    try:
        return stats.store_stats(store).objects
    finally:
        store.close()


def main(argv: list[str]) -> int:
    """Fill, spawn, list, and print one line per figure."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench versions")
    p.add_argument("--versions", type=int, default=100_000, help="versions in the bucket")
    p.add_argument("--keys", type=int, default=1000, help="keys they are spread over")
    p.add_argument("--size", type=int, default=16, help="bytes per version (at least 11)")
    p.add_argument(
        "--fill", choices=("engine", "http"), default="engine", help="how the bucket is filled"
    )
    p.add_argument("--concurrency", type=int, default=256, help="engine fill: puts in flight")
    p.add_argument("--procs", type=int, default=4, help="HTTP fill: client processes")
    p.add_argument("--threads", type=int, default=8, help="HTTP fill: connections per process")
    p.add_argument(
        "--max-keys",
        type=int,
        default=PAGE,
        help="entries a page (one that does not divide the versions a key has makes pages "
        "end inside keys)",
    )
    p.add_argument("--data-dir", help="keep the data here (a second run reuses a full bucket)")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare twisted.web pages")
    args = p.parse_args(argv)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="s4d-bench-versions-")
    os.makedirs(data_dir, exist_ok=True)
    proc = None
    try:
        print(
            f"versions benchmark: {args.versions} versions of {args.keys} keys "
            f"({args.size} bytes each), max-keys {args.max_keys}, one keep-alive connection",
            flush=True,
        )
        held = _versions_held(data_dir)
        if held is not None and (held != args.versions or args.fill != "engine"):
            raise SystemExit(f"{data_dir} holds {held} versions: give an empty directory")
        if args.fill == "engine":
            if held is not None:
                print(f"fill: {data_dir} already holds them", flush=True)
            else:
                seconds = fill_engine(
                    data_dir, args.versions, args.keys, args.size, args.concurrency
                )
                print(
                    f"fill through the engine in-process ({args.concurrency} puts in flight, "
                    f"fsync off): {args.versions / seconds:.0f} puts/s ({seconds:.0f} s)",
                    flush=True,
                )
            proc, port = spawn(data_dir)
        else:
            proc, port = spawn(data_dir)
            seconds = fill_http(port, args.versions, args.keys, args.size, args.procs, args.threads)
            print(
                f"fill through HTTP PUTs ({args.procs} x {args.threads} connections, fsync on): "
                f"{args.versions / seconds:.0f} puts/s ({seconds:.0f} s)",
                flush=True,
            )
            stop(proc)
            proc, port = spawn(data_dir)
        print(f"s4d on 127.0.0.1:{port} ({', '.join(f'{k}={v}' for k, v in SERVER_ENV.items())})")
        client = S3Http("127.0.0.1", port, ACCESS_KEY, SECRET_KEY, timeout=300)
        with MemorySampler(proc.pid) as memory:
            versions = list_versions(client, page_size=args.max_keys)
        print(versions.line(), flush=True)
        print(memory.report(), flush=True)
        _check(versions, args.versions, args.keys)
        with MemorySampler(proc.pid) as memory_v2:
            v2 = list_v2(client, versions.pages, page_size=args.max_keys)
        print(v2.line(), flush=True)
        print(memory_v2.report(), flush=True)
        client.close()
        stop(proc)
        proc = None
        ratio = (versions.pages / versions.seconds) / (v2.pages / v2.seconds)
        print(
            f"ListObjectVersions pages at {ratio:.2f}x the rate of ListObjectsV2 pages "
            f"(target: at least 0.5x)"
            + (
                f"; but V2 pages hold only {args.keys} keys here"
                if args.keys < args.max_keys
                else ""
            ),
            flush=True,
        )
        if not args.no_baseline:
            proc, port = spawn(data_dir, baseline=True)
            print(list_baseline(port, versions.pages).line(), flush=True)
    finally:
        if proc is not None:
            stop(proc)
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _check(run: Pass, versions: int, keys: int) -> None:
    """The listing must have seen every version once and one latest version per key."""
    if run.entries != versions or run.latest != min(keys, versions):
        raise SystemExit(
            f"ListObjectVersions listed {run.entries} entries ({run.latest} latest), "
            f"expected {versions} ({min(keys, versions)} latest)"
        )
