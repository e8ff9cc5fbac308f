"""What a bucket policy costs per request: evaluations/s of a compiled policy.

Two policies on one bucket, written as people write them: a one-statement
public-read policy, and a realistic ~20 KB policy of 100 statements (a public
``public/*`` prefix, a Deny of plain HTTP, a Deny of deletes from outside an
IP range, and for each of many users an Allow of Get/Put/Delete under its home
prefix plus a ListBucket limited by ``s3:prefix``). Each is asked the same
requests, in turns, best of ``--rounds``:

* ``user GET``: a user reading under its own home prefix (allowed);
* ``anonymous GET``: an anonymous read of ``public/`` (allowed);
* ``refused PUT``: a user writing outside its prefix, which every candidate
  statement must be asked about before the answer is ``None``.

Times are CPU time of this process (``time.process_time``), so other work on
the machine slows the figures less than it would wall-clock ones.

With ``--get`` it also measures a 4 KiB GET through the real S3 seam (in
memory, as ``python -m s4d.bench routing`` does), so the policy's cost can be
read as a share of a GET.

    python -m s4d.bench policy [--evaluations 200000] [--rounds 5] [--get]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from typing import Any

from twisted.internet.task import Clock

from s4d.admin.app import OpsApp
from s4d.auth.policy import CompiledPolicy, MappingContext, PolicyRequest, compile_policy
from s4d.auth.principal import Principal
from s4d.bench.routing import AK, NOW, SK, _run, _signed
from s4d.engine import Engine
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import InlineRunner

BUCKET = "bench"
ARN = f"arn:aws:s3:::{BUCKET}"


def large_policy(statements: int = 100) -> bytes:
    """A realistic policy of ``statements`` statements (about 20 KB at 100)."""
    body: list[dict[str, Any]] = [
        {
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{ARN}/public/*",
        },
        {
            "Sid": "DenyPlainHTTP",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [ARN, f"{ARN}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DeletesFromTheOfficeOnly",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            "Resource": f"{ARN}/*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}},
        },
    ]
    user = 0
    while len(body) < statements:
        name = f"user{user:03d}"
        who = {"AWS": f"arn:aws:iam::123456789012:user/{name}"}
        body.append(
            {
                "Effect": "Allow",
                "Principal": who,
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{ARN}/home/{name}/*",
            }
        )
        if len(body) < statements:
            body.append(
                {
                    "Effect": "Allow",
                    "Principal": who,
                    "Action": "s3:ListBucket",
                    "Resource": ARN,
                    "Condition": {"StringLike": {"s3:prefix": f"home/{name}/*"}},
                }
            )
        user += 1
    return json.dumps({"Version": "2012-10-17", "Statement": body}).encode()


def small_policy() -> bytes:
    """A one-statement public-read policy."""
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"{ARN}/public/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}).encode()


def requests() -> dict[str, PolicyRequest]:
    """The requests asked of each policy."""
    user = Principal.of("u-24", "user024", "Writer")
    context = MappingContext({"aws:SecureTransport": ["true"], "aws:SourceIp": ["10.1.2.3"]})
    return {
        "user GET": PolicyRequest("s3:GetObject", BUCKET, "home/user024/a.jpg", user, context),
        "anonymous GET": PolicyRequest("s3:GetObject", BUCKET, "public/logo.png", None, context),
        "refused PUT": PolicyRequest("s3:PutObject", BUCKET, "home/user001/x", user, context),
    }


def _time(policy: CompiledPolicy, request: PolicyRequest, count: int) -> float:
    """CPU seconds per evaluation over ``count`` evaluations."""
    evaluate = policy.evaluate
    started = time.process_time()
    for _ in range(count):
        evaluate(request)
    return (time.process_time() - started) / count


def _get_seconds(count: int, rounds: int) -> float:
    """CPU seconds per 4 KiB GET through the real S3 seam in memory (no policy)."""
    data_dir = tempfile.mkdtemp(prefix="s4d-bench-policy-")
    store = Store(StoreConfig(data_dir, fsync=False, map_size=1 << 30), inline_commit=True)
    try:
        engine = Engine(store, InlineRunner(), lambda f, *a, **k: f(*a, **k))
        site = build_s3_site(
            engine,
            StaticCredentials({AK: SK}),
            ops=OpsApp().resource(),
            now=lambda: NOW,
            reactor=Clock(),
        )
        _run(site, _signed("PUT", "/bench"), 1)
        _run(site, _signed("PUT", "/bench/small", b"x" * 4096), 1)
        get = _signed("GET", "/bench/small")
        return min(_run(site, get, count, time.process_time) for _ in range(rounds))
    finally:
        store.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Measure both policies, interleaved; print evaluations/s and µs each."""
    parser = argparse.ArgumentParser(prog="python -m s4d.bench policy")
    parser.add_argument("--evaluations", type=int, default=200000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--statements", type=int, default=100)
    parser.add_argument("--get", action="store_true", help="also time a 4 KiB GET")
    args = parser.parse_args(argv)
    documents = {"1 statement": small_policy(), f"{args.statements} statements": large_policy(
        args.statements
    )}  # fmt: skip
    policies: dict[str, CompiledPolicy] = {}
    for label, document in documents.items():
        started = time.perf_counter()
        policies[label] = compile_policy(document, BUCKET)
        compiled_ms = (time.perf_counter() - started) * 1e3
        print(f"{label}: {len(document)} bytes, compiled in {compiled_ms:.1f} ms")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    get_us = _get_seconds(2000, args.rounds) * 1e6 if args.get else None
    if get_us is not None:
        print(f"4 KiB GET through the S3 seam, no policy: {get_us:.1f} µs")
    names = list(policies)
    header = f"{'request':<14}" + "".join(f"{name + ' µs':>18}{'evals/s':>12}" for name in names)
    print(header + (f"{'share of a GET':>16}" if get_us else ""))
    for label, request in requests().items():
        best = dict.fromkeys(names, float("inf"))
        for _ in range(args.rounds):
            for name in names:
                best[name] = min(best[name], _time(policies[name], request, args.evaluations))
        line = f"{label:<14}"
        for name in names:
            line += f"{best[name] * 1e6:>18.2f}{1 / best[name]:>12,.0f}"
        if get_us:
            line += f"{best[names[-1]] * 1e6 / get_us:>16.1%}"
        print(line, flush=True)
    return 0
