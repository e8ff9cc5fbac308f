"""What authorization costs on the hot path: 4 KiB GETs with one user and with 10,000.

Two data directories are filled the same way except for the users table: one
holds the root and one Writer with one key; the other the root and 10,000
Writers with two keys each (20,000 keys), each user owning a bucket of its own
(so the bucket table, which every request reads for the owner, grows too).
Every bucket holds one 4 KiB object. Then GETs of that object are measured:

* in memory (the default): the real site, seam, handlers, engine and store,
  fed signed requests over an in-memory transport, committing inline, so the
  figure is the reactor thread's CPU time per request (printed as ops/s of one
  core). "one signer": the same user's key every time; "every signer": each
  request signed by the next of all the keys (20,000 in the large directory,
  so the per-process key cache is full), each user reading its own bucket.
  Each is also measured without the users store (one static SuperUser key
  reading the same objects), so the cost of users and authorization is the
  difference. Everything is measured in turns, best of ``--rounds``;
* over sockets (``--spawn``): ``twistd s4`` on each directory in turn, client
  processes GETting with one user's key, as ``python -m s4d.bench s3`` does.

    python -m s4d.bench users [--users 10000] [--rounds 5] [--spawn]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from s4d.admin.app import OpsApp
from s4d.auth import sigv4
from s4d.auth.access import AccessRequest, authorize
from s4d.auth.credentials import IdentitySource, UserCredentials
from s4d.bench.s3 import _wait_port, _worker
from s4d.engine import SERVER_KEY_FILE, Engine
from s4d.features import buckets as fb
from s4d.features import iam as fi
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.s3.request import S3Site
from s4d.store.store import Store, StoreConfig
from s4d.store.txn import MetaTxn
from s4d.util.passwords import ScryptCost, hash_password
from s4d.util.sealing import SecretBox
from s4d.util.threads import InlineRunner

ROOT_AK, ROOT_SK = "AKBENCHROOT", "bench/root/secret"
HOST = "bench:9000"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
BATCH = 500


def populate(data_dir: str, users: int, keys_per_user: int) -> list[tuple[str, str, str]]:
    """Fill a data directory; ``(access key, secret, bucket)`` of every user key."""
    store = Store(StoreConfig(data_dir, fsync=False, map_size=4 << 30), inline_commit=True)
    box = SecretBox(os.path.join(data_dir, SERVER_KEY_FILE))
    hashed = hash_password("bench-password", ScryptCost(4, 8, 1))
    keys: list[tuple[str, str, str]] = []
    try:
        store.commit(lambda t: fi.set_up_root(t, "root", None, 1))
        for start in range(0, users, BATCH):
            batch = []
            for i in range(start, min(users, start + BATCH)):
                made = []
                for k in range(keys_per_user):
                    ak = f"AKBENCH{i:07d}K{k}"
                    secret = hashlib.sha256(ak.encode()).hexdigest()[:40]
                    made.append((ak, secret, box.seal(secret, ak)))
                batch.append((i, made))

            def write(
                t: MetaTxn, batch: list[tuple[int, list[tuple[str, str, bytes]]]] = batch
            ) -> None:
                for i, made in batch:
                    user = fi.create_user(t, f"user{i}", hashed, "Writer", 1)
                    fb.create_bucket(t, f"u{i:07d}", "us-east-1", 1, owner=user.user_id)
                    for ak, _, sealed in made:
                        fi.add_key(t, user.user_id, ak, sealed, 1, False)

            store.commit(write)
            keys += [(ak, sk, f"u{i:07d}") for i, made in batch for ak, sk, _ in made]
        body = os.urandom(4096)
        buckets = sorted({bucket for _, _, bucket in keys})
        puts = [_signed("PUT", f"/{bucket}/obj", ROOT_AK, ROOT_SK, body) for bucket in buckets]
        _connection(_site(store), puts)
    finally:
        store.close()
    return keys


def _engine(store: Store) -> Engine:
    """An engine over ``store`` running everything inline; the root's key configured."""
    engine = Engine(store, InlineRunner(), lambda f, *a, **k: f(*a, **k))
    engine.directory.configure_root_key(ROOT_AK, ROOT_SK)
    return engine


def _site(store: Store, static: tuple[str, str] | None = None) -> S3Site:
    """The S3 site over ``store``; with ``static``, that one key without the users store."""
    engine = _engine(store)
    credentials: IdentitySource = UserCredentials(engine.directory)
    if static is not None:
        credentials = StaticCredentials(dict([static]))
    return build_s3_site(
        engine,
        credentials,
        ops=OpsApp().resource(),
        now=lambda: NOW,
        reactor=Clock(),
    )


def _signed(method: str, path: str, ak: str, sk: str, body: bytes = b"") -> bytes:
    headers = {"host": HOST, "content-length": str(len(body))}
    payload = hashlib.sha256(body).hexdigest()
    headers.update(sigv4.sign_request(method, path, [], headers, ak, sk, now=NOW,
                                      payload_hash=payload))  # fmt: skip
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _serve(site: S3Site, request: bytes, count: int) -> tuple[float, bytes]:
    """Seconds per request over ``count`` requests on one connection; the first answer."""
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(request)
    first = transport.value()
    transport.clear()
    started = time.thread_time()
    for _ in range(count - 1):
        protocol.dataReceived(request)
        transport.clear()
    return (time.thread_time() - started) / max(1, count - 1), first


def _connection(site: S3Site, requests: list[bytes]) -> tuple[Any, StringTransport]:
    """A connection that sent ``requests`` (each must succeed); its protocol and transport."""
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    for request in requests:
        protocol.dataReceived(request)
        if not transport.value().startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"a benchmark request failed: {transport.value()[:300]!r}")
        transport.clear()
    return protocol, transport


def _serve_all(site: S3Site, requests: list[bytes], count: int) -> float:
    """Seconds per request, cycling through ``requests`` (one per signer)."""
    # every key looked up once first: the cache is warm
    protocol, transport = _connection(site, requests)
    started = time.thread_time()
    for i in range(count):
        protocol.dataReceived(requests[i % len(requests)])
        transport.clear()
    return (time.thread_time() - started) / count


def in_memory(
    dirs: dict[str, tuple[str, list[tuple[str, str, str]]]], args: argparse.Namespace
) -> None:
    """Reactor CPU time per GET, each directory in turn, with and without the users store.

    "static key" sites take one key from :class:`StaticCredentials` (a SuperUser, no
    users store, no owner look-up: what authentication cost before users), the
    others the users store; the difference is the cost of users and authorization.
    """
    stores = {name: Store(StoreConfig(d, fsync=False, map_size=4 << 30), inline_commit=True)
              for name, (d, _) in dirs.items()}  # fmt: skip
    try:
        sites = {name: _site(store) for name, store in stores.items()}
        statics = {name: _site(store, (ROOT_AK, ROOT_SK)) for name, store in stores.items()}
        requests: dict[tuple[str, str, str], list[bytes]] = {}
        for name, (_, keys) in dirs.items():
            ak, sk, bucket = keys[0]
            requests[(name, "one", "users")] = [_signed("GET", f"/{bucket}/obj", ak, sk)]
            requests[(name, "one", "static")] = [_signed("GET", f"/{bucket}/obj", ROOT_AK, ROOT_SK)]
            requests[(name, "every", "users")] = [
                _signed("GET", f"/{b}/obj", ak, sk) for ak, sk, b in keys
            ]
            requests[(name, "every", "static")] = [
                _signed("GET", f"/{b}/obj", ROOT_AK, ROOT_SK) for _, _, b in keys
            ]
        best: dict[tuple[str, str, str], float] = {}
        for _ in range(args.rounds):
            for (name, case, source), sent in requests.items():
                site = sites[name] if source == "users" else statics[name]
                seconds = _serve_all(site, sent, args.requests)
                key = (name, case, source)
                best[key] = min(best.get(key, float("inf")), seconds)
        print(f"in memory, reactor CPU per 4 KiB GET, µs (ops/s of one core), best of "
              f"{args.rounds} rounds of {args.requests}:")  # fmt: skip
        print(f"  {'':<26} {'one object, one signer':^37}  {'every object, every signer':^37}")
        print(f"  {'directory':<26} {'static key':>13} {'users store':>13} {'cost':>9}  "
              f"{'static key':>13} {'users store':>13} {'cost':>9}")  # fmt: skip
        first = next(iter(dirs))
        for name in dirs:
            cells = []
            for case in ("one", "every"):
                static, users = best[(name, case, "static")], best[(name, case, "users")]
                cells.append(f"{static * 1e6:6.1f} ({1 / static:4.0f}) "
                             f"{users * 1e6:6.1f} ({1 / users:4.0f}) "
                             f"{(users / static - 1) * 100:+8.1f}%")  # fmt: skip
            print(f"  {name:<26} {cells[0]}  {cells[1]}")
        for case in ("one", "every"):
            base, large = (best[(n, case, "users")] for n in (first, list(dirs)[-1]))
            print(f"  users store, {case} signer: {list(dirs)[-1]} vs {first}: "
                  f"{(large / base - 1) * 100:+.1f} %", flush=True)  # fmt: skip
    finally:
        for store in stores.values():
            store.close()


def auth_path(dirs: dict[str, tuple[str, list[tuple[str, str, str]]]], count: int) -> None:
    """The authorization path alone, per request: what the front end asks of the users store.

    The secret (with the generation check), the SigV4 signing key (cached), the
    principal, the bucket's owner and the decision, for one signer and for every
    signer in turn.
    """
    print("the authorization path alone, µs per request (best of 3):")
    for name, (data_dir, keys) in dirs.items():
        store = Store(StoreConfig(data_dir, fsync=False, map_size=4 << 30), inline_commit=True)
        try:
            credentials = UserCredentials(_engine(store).directory)
            figures = []
            for signers in (keys[:1], keys):
                best = float("inf")
                for _ in range(3):
                    for ak, sk, bucket in signers:  # warm every cache first
                        _authorize_once(credentials, ak, sk, bucket)
                    started = time.thread_time()
                    for i in range(count):
                        ak, sk, bucket = signers[i % len(signers)]
                        _authorize_once(credentials, ak, sk, bucket)
                    best = min(best, (time.thread_time() - started) / count)
                figures.append(best)
            print(f"  {name:<26} one signer {figures[0] * 1e6:5.2f}   "
                  f"every signer {figures[1] * 1e6:5.2f}", flush=True)  # fmt: skip
        finally:
            store.close()


def _authorize_once(credentials: UserCredentials, ak: str, sk: str, bucket: str) -> None:
    secret = credentials.secret_for(ak)
    assert secret == sk
    sigv4.signing_key(secret, NOW.strftime("%Y%m%d"), "us-east-1")
    principal = credentials.principal_for(ak)
    access = credentials.bucket_access(bucket)
    authorize(AccessRequest(principal, "s3:GetObject", bucket, "key", access))


def over_sockets(
    dirs: dict[str, tuple[str, list[tuple[str, str, str]]]], args: argparse.Namespace
) -> None:
    """GET ops/s of ``twistd s4`` on each directory in turn (one user's key)."""
    from s4d import config as s4config
    from s4d.bench.s3 import _free_port

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rates: dict[str, list[float]] = {name: [] for name in dirs}
    for _ in range(args.rounds):
        for name, (data_dir, keys) in dirs.items():
            port = _free_port()
            env = dict(s4config.child_environment(), PYTHONPATH=repo, S4_BIND=f"127.0.0.1:{port}",
                       S4_DATA_DIR=data_dir, S4_ACCESS_KEY_ID=ROOT_AK,
                       S4_SECRET_ACCESS_KEY=ROOT_SK, S4_FSYNC="false")  # fmt: skip
            twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
            log = os.path.join(data_dir, "server.log")
            command = [twistd, "-n", "--pidfile=", "-l", log, "s4"]
            quiet = subprocess.DEVNULL
            proc = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet)
            try:
                _wait_port(port)
                ak, sk, bucket = keys[0]
                paths = [f"/{bucket}/obj"] * args.ops
                parts = [paths[i :: args.procs] for i in range(args.procs)]
                with multiprocessing.get_context("fork").Pool(args.procs) as pool:
                    work = [
                        ("127.0.0.1", port, ak, sk, True, "GET", p, args.threads) for p in parts
                    ]
                    pool.map(_worker, work[:1])  # warm up
                    started = time.perf_counter()
                    done = pool.map(_worker, work)
                    elapsed = time.perf_counter() - started
                rates[name].append(sum(len(d) for d in done) / elapsed)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    print(f"over sockets, 4 KiB GET ops/s ({args.procs} client processes x {args.threads} "
          f"connections, {args.ops} GETs, {args.rounds} rounds):")  # fmt: skip
    names = list(dirs)
    base = statistics.median(rates[names[0]])
    for name in names:
        median = statistics.median(rates[name])
        shown = " ".join(f"{r:.0f}" for r in rates[name])
        print(f"  {name:<28} median {median:7.0f} ops/s  {(median / base - 1) * 100:+6.1f} %"
              f"   (rounds: {shown})", flush=True)  # fmt: skip


def main(argv: list[str]) -> int:
    """Fill both directories, measure, print."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench users")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--keys-per-user", type=int, default=2)
    parser.add_argument("--requests", type=int, default=20_000, help="GETs per in-memory round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spawn", action="store_true", help="also measure twistd over sockets")
    parser.add_argument("--procs", type=int, default=2, help="client processes (--spawn)")
    parser.add_argument("--threads", type=int, default=8, help="connections each (--spawn)")
    parser.add_argument("--ops", type=int, default=8000, help="GETs per round (--spawn)")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="s4d-bench-users-")
    try:
        dirs = {}
        for label, users, per in [("1 user, 1 key", 1, 1),
                                  (f"{args.users} users, {args.users * args.keys_per_user} keys",
                                   args.users, args.keys_per_user)]:  # fmt: skip
            started = time.perf_counter()
            data_dir = os.path.join(work, f"{users}")
            dirs[label] = (data_dir, populate(data_dir, users, per))
            print(f"filled: {label} ({time.perf_counter() - started:.1f} s)", flush=True)
        in_memory(dirs, args)
        auth_path(dirs, args.requests * 5)
        if args.spawn:
            over_sockets(dirs, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
