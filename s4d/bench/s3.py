"""The S3 load benchmark: many keep-alive clients in several processes, SigV4-signed.

``python -m s4d.bench s3`` starts a server of its own on a temp dir (``--workers
N`` sets its ``S4_WORKERS``) and, in the same invocation, a bare twisted.web
resource (:mod:`s4d.bench.baseline`); every workload runs on each in turn and
each s4d figure is printed as a fraction of the baseline's (``--no-baseline``
skips it, ``--baseline`` measures it alone). ``--compare REPO`` adds the server
of another source tree (before/after in one run); ``--endpoint URL
--access-key AK --secret-key SK [--server-pid PID]`` measures a running server
instead; ``--json PATH`` writes the figures. The load: 8 keep-alive
connections in 2 client processes, 4 KiB objects, SigV4.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from s4d import config as s4config
from s4d.auth.sigv4 import sign_request
from s4d.bench.stats import percentile, process_peak_rss_mb

UNSIGNED = "UNSIGNED-PAYLOAD"


class Client:
    """One keep-alive connection that signs its requests."""

    def __init__(
        self, host: str, port: int, access_key: str, secret: str, sign: bool = True
    ) -> None:
        self.host, self.port = host, port
        self.access_key, self.secret, self.sign = access_key, secret, sign
        self.conn = http.client.HTTPConnection(host, port, timeout=120)

    def request(
        self,
        method: str,
        path: str,
        body: Any = b"",
        query: list[tuple[str, str]] | None = None,
        length: int | None = None,
        payload_hash: str | None = None,
    ) -> tuple[int, bytes]:
        headers = {"host": f"{self.host}:{self.port}"}
        if self.sign:
            if payload_hash is None:
                payload_hash = (
                    hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else UNSIGNED
                )
            headers.update(
                sign_request(
                    method,
                    path,
                    query or [],
                    headers,
                    self.access_key,
                    self.secret,
                    now=datetime.now(UTC),
                    payload_hash=payload_hash,
                )
            )
        target = path + (
            "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query) if query else ""
        )
        size = length if length is not None else len(body)
        if method in ("PUT", "POST"):
            headers["content-length"] = str(size)
        self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        self.conn.endheaders()
        if isinstance(body, bytes):
            if body:
                self.conn.send(body)
        else:
            for piece in body:
                self.conn.send(piece)
        response = self.conn.getresponse()
        if method == "GET" and length is None:
            data = response.read()
        else:
            data = b""
            total = 0
            while True:
                piece = response.read(1 << 20)
                if not piece:
                    break
                total += len(piece)
            data = total.to_bytes(8, "big") if method == "GET" else b""
        return response.status, data


def _worker(args: tuple[Any, ...]) -> list[float]:
    (host, port, ak, sk, sign, op, keys, threads) = args
    latencies: list[float] = []
    lock = threading.Lock()
    body = os.urandom(4096)
    chunks = [keys[i::threads] for i in range(threads)]

    def run(my_keys: list[str]) -> None:
        client = Client(host, port, ak, sk, sign)
        mine = []
        for key in my_keys:
            start = time.perf_counter()
            if op == "PUT":
                # distinct bodies: identical ones would be deduplicated and never written
                unique = body[:-16] + key.encode()[-16:].rjust(16, b"-")
                status, _ = client.request("PUT", key, unique)
            elif op == "LIST":
                status, _ = client.request(
                    "GET", "/bench", query=[("list-type", "2"), ("prefix", key)]
                )
            else:
                status, _ = client.request(op, key)
            mine.append(time.perf_counter() - start)
            if status >= 300:
                raise SystemExit(f"{op} {key} -> {status}")
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies


def bench_policy() -> bytes:
    """The benchmark's bucket policy: ~20 KB, 100 statements, none of which refuses the
    benchmark's plain-HTTP GETs (so every GET is evaluated against all that apply)."""
    from s4d.bench.policy import large_policy

    document = json.loads(large_policy(101))
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "DenyPlainHTTP"]
    return json.dumps(document).encode()


def _policy_rounds(
    client: Client, target: tuple[str, int, str, str, bool], keys: list[str], args: Any
) -> None:
    """4 KiB GET ops/s with no policy and with :func:`bench_policy`, interleaved."""
    policy = bench_policy()
    count = len(json.loads(policy)["Statement"])
    print(f"bucket policy: {len(policy)} bytes, {count} statements", flush=True)
    rates: dict[str, list[float]] = {"no policy": [], "policy": []}
    with multiprocessing.get_context("fork").Pool(args.procs) as pool:
        _phase(pool, target, "PUT", keys, args.procs, args.threads)
        for _ in range(args.policy_rounds):
            for name in ("no policy", "policy"):
                if name == "policy":
                    status, _ = client.request("PUT", "/bench", policy, query=[("policy", "")])
                else:
                    status, _ = client.request("DELETE", "/bench", query=[("policy", "")])
                if status >= 300:
                    raise SystemExit(f"setting the policy -> {status}")
                rate = _phase(pool, target, "GET", keys, args.procs, args.threads)["ops_per_s"]
                print(f"[{name}] GET 4KiB {rate:9.0f} ops/s", flush=True)
                rates[name].append(rate)
    for name, found in rates.items():
        ordered = sorted(found)
        print(f"GET 4KiB {name:<10} median {ordered[len(ordered) // 2]:8.0f} ops/s "
              f"(runs: {', '.join(f'{r:.0f}' for r in found)})")  # fmt: skip


def _phase(
    pool: Any,
    target: tuple[str, int, str, str, bool],
    op: str,
    keys: list[str],
    procs: int,
    threads: int,
) -> dict[str, float]:
    """Run one workload on one server; its rate and latency percentiles."""
    host, port, ak, sk, sign = target
    parts = [keys[i::procs] for i in range(procs)]
    start = time.perf_counter()
    results = pool.map(_worker, [(host, port, ak, sk, sign, op, p, threads) for p in parts])
    elapsed = time.perf_counter() - start
    lat = sorted(x for r in results for x in r)
    return {
        "ops_per_s": len(lat) / elapsed,
        "p50_ms": percentile(lat, 0.5) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
    }


def _stream(size: int) -> Any:
    block = os.urandom(1 << 20)
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        yield piece


class RssSampler:
    """Samples a process's resident set size while a transfer runs."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]) / 1024)
            except OSError:
                return
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        if self.pid:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def _large(
    target: tuple[str, int, str, str, bool], sizes: list[int], pid: int | None, warm: int = 0
) -> dict[str, dict[str, float]]:
    """PUT then GET one object of each size; MB/s, the server's CPU seconds per GiB, peak RSS.

    With ``warm`` (MB), a scratch file is written and deleted right before each PUT.
    """
    host, port, ak, sk, sign = target
    client = Client(host, port, ak, sk, sign)
    figures: dict[str, dict[str, float]] = {}
    for size_mb in sizes:
        size = size_mb << 20
        if warm:
            warm_page_cache(tempfile.gettempdir(), warm)
        with RssSampler(pid) as rss:
            cpu = process_tree_cpu_seconds(pid) if pid else 0.0
            start = time.perf_counter()
            status, _ = client.request(
                "PUT", f"/bench/large-{size_mb}", _stream(size), length=size, payload_hash=UNSIGNED
            )
            put_s = time.perf_counter() - start
            put_cpu = process_tree_cpu_seconds(pid) - cpu if pid else 0.0
            cpu = process_tree_cpu_seconds(pid) if pid else 0.0
            start = time.perf_counter()
            status2, data = client.request("GET", f"/bench/large-{size_mb}", length=size)
            get_s = time.perf_counter() - start
            get_cpu = process_tree_cpu_seconds(pid) - cpu if pid else 0.0
        got = int.from_bytes(data, "big") if data else 0
        gib = size / (1 << 30)
        put = {"mb_per_s": size / put_s / 1e6, "server_cpu_s_per_gib": put_cpu / gib}
        get = {"mb_per_s": size / get_s / 1e6, "server_cpu_s_per_gib": get_cpu / gib}
        if pid:
            put["server_rss_mb"] = get["server_rss_mb"] = rss.peak
        figures[f"PUT {size_mb} MiB"], figures[f"GET {size_mb} MiB"] = put, get
        print(
            f"PUT {size_mb} MiB {put['mb_per_s']:8.0f} MB/s (status {status}"
            + (f", server CPU {put['server_cpu_s_per_gib']:.2f} s/GiB" if pid else "")
            + f")   GET {get['mb_per_s']:8.0f} MB/s (status {status2}, {got} bytes"
            + (f", server CPU {get['server_cpu_s_per_gib']:.2f} s/GiB" if pid else "")
            + ")"
            + (f"   server RSS during transfer <= {rss.peak:.0f} MB" if pid else ""),
            flush=True,
        )
    return figures


def _parallel_worker(args: tuple[Any, ...]) -> None:
    (host, port, ak, sk, sign, keys, size) = args

    def put(key: str) -> None:
        status, _ = Client(host, port, ak, sk, sign).request(
            "PUT", key, _stream(size), length=size, payload_hash=UNSIGNED
        )
        if status != 200:
            raise SystemExit(f"PUT {key} -> {status}")

    threads = [threading.Thread(target=put, args=(key,)) for key in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _parallel_puts(
    pool: Any,
    target: tuple[str, int, str, str, bool],
    count: int,
    size_mb: int,
    procs: int,
    pid: int | None,
) -> dict[str, float]:
    """``count`` PUTs of ``size_mb`` MiB at once, from ``procs`` client processes."""
    host, port, ak, sk, sign = target
    keys = [f"/bench/parallel-{i}" for i in range(count)]
    parts = [p for p in (keys[i::procs] for i in range(procs)) if p]
    size = size_mb << 20
    cpu = process_tree_cpu_seconds(pid) if pid else 0.0
    start = time.perf_counter()
    pool.map(_parallel_worker, [(host, port, ak, sk, sign, p, size) for p in parts])
    elapsed = time.perf_counter() - start
    used = process_tree_cpu_seconds(pid) - cpu if pid else 0.0
    gib = count * size / (1 << 30)
    got = {"mb_per_s": count * size / elapsed / 1e6, "server_cpu_s_per_gib": used / gib}
    print(
        f"PUT {size_mb} MiB x{count} {got['mb_per_s']:8.0f} MB/s in total"
        + (f" (server CPU {got['server_cpu_s_per_gib']:.2f} s/GiB)" if pid else ""),
        flush=True,
    )
    return got


def warm_page_cache(directory: str, megabytes: int) -> None:
    """Write and delete a scratch file so later writes reuse page-cache memory.

    On this virtual machine a write into memory the guest has not used lately
    costs several times more than one into recently freed memory: the
    hypervisor backs guest pages on first touch, and free memory goes back to it
    within seconds (a 512 MiB write: 0.96 s of system time cold, 0.13 s right
    after freeing 512 MiB, 0.9 s again ten seconds later). Warming right before
    a transfer (``--warm-each``) measures a server whose memory is in use, as a
    storage server's page cache is.
    """
    path = os.path.join(directory, f"s4d-warm-{os.getpid()}")
    block = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    os.unlink(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def spawn_server(
    baseline: bool,
    data_dir: str,
    extra_env: dict[str, str],
    repo: str | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start s4d (or the baseline) on a free port; return the process and port.

    ``repo`` is the source tree the server runs (default: this one), so one
    invocation can set another checkout's server beside this one's.
    """
    port = _free_port()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(s4config.child_environment(), PYTHONPATH=repo or here, **extra_env)
    if baseline:
        cmd = [sys.executable, "-m", "s4d.bench.baseline", str(port)]
        env["PYTHONPATH"] = here
    else:
        env.update(
            S4_BIND=f"127.0.0.1:{port}",
            S4_DATA_DIR=data_dir,
            S4_ACCESS_KEY_ID="BENCHKEY",
            S4_SECRET_ACCESS_KEY="benchsecret",
        )
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        cmd = [twistd, "-n", "--pidfile=", "-l", os.path.join(data_dir, "server.log"), "s4"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port)
    return proc, port


def process_tree_peak_rss_mb(pid: int) -> dict[str, float]:
    """Peak RSS (VmHWM) in MB of a process and of each of its children, by pid."""
    found: dict[str, float] = {}
    rss = process_peak_rss_mb(pid)
    if rss is not None:
        found[str(pid)] = rss
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    for child in children:
        rss = process_peak_rss_mb(child)
        if rss is not None:
            found[str(child)] = rss
    return found


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its children have used so far, in seconds.

    On a machine shared with other load, CPU time per request is steadier than a rate.
    """
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids = [pid, *(int(c) for c in f.read().split())]
    except OSError:
        pids = [pid]
    for one in pids:
        try:
            with open(f"/proc/{one}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


class Server:
    """One server under test: its name, address and process (when spawned here)."""

    def __init__(
        self,
        name: str,
        target: tuple[str, int, str, str, bool],
        proc: subprocess.Popen[bytes] | None,
        pid: int | None,
    ) -> None:
        self.name, self.target, self.proc, self.pid = name, target, proc, pid
        self.figures: dict[str, Any] = {}

    def stop(self) -> None:
        """End the process this benchmark started (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


#: The small-request workloads, in the order they run (each PUT's keys are read back).
SMALL_OPS = ("PUT", "GET", "HEAD", "LIST", "DELETE")


def figure_name(op: str) -> str:
    """How a workload is named in the output and the JSON result."""
    return "LIST 1000" if op == "LIST" else f"{op} 4KiB"


def main(argv: list[str]) -> int:
    """Run the benchmark phases and print one line per figure."""
    p = argparse.ArgumentParser(prog="python -m s4d.bench s3")
    p.add_argument("--endpoint", help="http://host:port of a running server")
    p.add_argument("--access-key", default="BENCHKEY")
    p.add_argument("--secret-key", default="benchsecret")
    p.add_argument("--server-pid", type=int, help="pid of the server, for its peak RSS")
    p.add_argument("--spawn", action="store_true", help="start a server of our own (the default)")
    p.add_argument(
        "--baseline", action="store_true", help="measure only the bare twisted.web server"
    )
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the bare twisted.web server otherwise measured beside s4d",
    )
    p.add_argument("--workers", type=int, help="S4_WORKERS of the spawned server")
    p.add_argument(
        "--compare",
        metavar="REPO",
        help="also spawn the server of another source tree (e.g. a checkout of main), "
        "measured in turn with this one's on every workload",
    )
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--threads", type=int, default=4, help="connections per client process")
    p.add_argument("--ops", type=int, default=8000, help="4 KiB operations per phase")
    p.add_argument("--list-ops", type=int, default=400, help="LIST requests (1,000 keys each)")
    p.add_argument("--large", type=int, nargs="*", default=[64, 1024], help="large sizes in MiB")
    p.add_argument(
        "--parallel",
        type=int,
        nargs=2,
        default=[16, 64],
        metavar=("COUNT", "MIB"),
        help="COUNT concurrent PUTs of MIB MiB each (0 0: none)",
    )
    p.add_argument(
        "--large-rounds",
        type=int,
        default=1,
        metavar="N",
        help="run the large phases N times, the servers alternating",
    )
    p.add_argument("--skip-small", action="store_true", help="only the large-object phases")
    p.add_argument(
        "--only",
        nargs="+",
        choices=SMALL_OPS,
        metavar="OP",
        help="run only these 4 KiB workloads (PUT GET HEAD LIST DELETE)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run each 4 KiB workload N times, the servers alternating (each round printed)",
    )
    p.add_argument(
        "--warm", type=int, default=0, metavar="MB", help="first write and delete a scratch file"
    )
    p.add_argument(
        "--warm-each",
        type=int,
        default=0,
        metavar="MB",
        help="write and delete a scratch file right before every large PUT phase",
    )
    p.add_argument(
        "--policy-rounds",
        type=int,
        default=0,
        metavar="N",
        help="only compare 4 KiB GETs without and with a ~20 KB 100-statement bucket policy, "
        "interleaved N times (after one PUT phase)",
    )
    args = p.parse_args(argv)
    if args.ops < 1000:
        p.error("--ops must be at least 1000 (a LIST reads 1,000 keys)")
    if args.warm:
        warm_page_cache(tempfile.gettempdir(), args.warm)
    scratch = tempfile.mkdtemp(prefix="s4d-bench-s3-")
    extra = {"S4_WORKERS": str(args.workers)} if args.workers else {}
    servers: list[Server] = []
    ak, sk = args.access_key, args.secret_key
    try:
        if not args.no_baseline or args.baseline:
            proc, port = spawn_server(True, scratch, {})
            servers.append(Server("baseline", ("127.0.0.1", port, ak, sk, False), proc, proc.pid))
        if args.endpoint and not args.baseline:
            parts = urlsplit(args.endpoint)
            host = parts.hostname or "127.0.0.1"
            servers.append(
                Server("s4d", (host, parts.port or 80, ak, sk, True), None, args.server_pid)
            )
        elif not args.baseline:
            for name, repo in (("s4d", None), ("compare", args.compare)):
                if name == "compare" and not repo:
                    continue
                data_dir = os.path.join(scratch, name)
                os.makedirs(data_dir)
                proc, port = spawn_server(False, data_dir, extra, repo)
                servers.append(Server(name, ("127.0.0.1", port, ak, sk, True), proc, proc.pid))
        print(
            f"{', '.join(f'{s.name} on port {s.target[1]}' for s in servers)}; "
            f"{args.procs} processes x {args.threads} connections; "
            f"workers {args.workers or 'default'}; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        for server in servers:
            Client(*server.target).request("PUT", "/bench")
        keys = [f"/bench/k{i:07d}" for i in range(args.ops)]
        if args.policy_rounds:
            measured = next(s for s in servers if s.name != "baseline").target
            _policy_rounds(Client(*measured), measured, keys, args)
            return 0
        with multiprocessing.get_context("fork").Pool(args.procs) as pool:
            small_ops = () if args.skip_small else tuple(args.only or SMALL_OPS)
            for op in small_ops:
                workload = ["k"] * args.list_ops if op == "LIST" else keys
                if not workload:
                    continue
                for server in servers * args.rounds:
                    cpu = process_tree_cpu_seconds(server.pid) if server.pid else 0.0
                    got = _phase(pool, server.target, op, workload, args.procs, args.threads)
                    if server.pid:
                        used = process_tree_cpu_seconds(server.pid) - cpu
                        got["server_cpu_us_per_op"] = used / len(workload) * 1e6
                    server.figures[figure_name(op)] = got
                    _print_figure(op, server, servers)
            count, size_mb = args.parallel
            for round_number in range(args.large_rounds):
                for server in servers:
                    if server.name == "baseline":
                        continue
                    suffix = f" #{round_number + 1}" if args.large_rounds > 1 else ""
                    if args.large:
                        print(f"{server.name}{suffix}:", flush=True)
                        found = _large(server.target, args.large, server.pid, args.warm_each)
                        for name, got in found.items():
                            server.figures[name + suffix] = got
                    if count and size_mb:
                        if args.warm_each:
                            warm_page_cache(tempfile.gettempdir(), args.warm_each)
                        with RssSampler(server.pid) as sampler:
                            got = _parallel_puts(
                                pool, server.target, count, size_mb, args.procs, server.pid
                            )
                        if server.pid:
                            got["server_rss_mb"] = sampler.peak
                            print(
                                f"{server.name} RSS during parallel PUTs <= {sampler.peak:.0f} MB",
                                flush=True,
                            )
                        server.figures[f"PUT {size_mb} MiB x{count}{suffix}"] = got
        for server in servers:
            if server.pid:
                server.figures["peak_rss_mb"] = process_tree_peak_rss_mb(server.pid)
                print(f"{server.name} peak RSS by process (MB): {server.figures['peak_rss_mb']}")
        if args.json:
            _write_json(args, servers)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _print_figure(op: str, server: Server, servers: list[Server]) -> None:
    name = figure_name(op)
    got = server.figures[name]
    line = f"{name:<10} {server.name:<9} {got['ops_per_s']:9.0f} ops/s"
    base = next((s for s in servers if s.name == "baseline"), None)
    if base is not None and server is not base and name in base.figures:
        fraction = got["ops_per_s"] / base.figures[name]["ops_per_s"]
        got["fraction_of_baseline"] = fraction
        line += f"  {fraction:5.2f} of baseline"
    else:
        line += " " * 19
    cpu = got.get("server_cpu_us_per_op")
    line += f"  server CPU {cpu:7.0f} us/op" if cpu is not None else ""
    print(f"{line}  p50 {got['p50_ms']:.2f} ms  p99 {got['p99_ms']:.2f} ms", flush=True)


def _write_json(args: argparse.Namespace, servers: list[Server]) -> None:
    result = {
        "setup": {
            "procs": args.procs,
            "threads": args.threads,
            "ops": args.ops,
            "list_ops": args.list_ops,
            "workers": args.workers,
            "compare": args.compare,
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "time": datetime.now(UTC).isoformat(),
        },
        "servers": {s.name: s.figures for s in servers},
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
