"""Run the S3 conformance suite (ceph/s3-tests) against a real ``twistd s4``; keep its gains.

``python tests/conformance/check.py`` starts a server on a free loopback port
with a temporary data directory, makes a second user (a Writer, "alt") with a
key through the admin API, runs ``../shared/s3-tests/run-s3tests`` (the suite
and its runner, beside the repository) with the root's key as the main user
and alt's as the alternate one, with the ``aws`` profile, and compares the
tests that passed with
``tests/conformance/s3-tests-passing.txt``. It fails when a test listed there
did not pass; tests that pass but are not listed are printed, to be added
(``--update`` rewrites the list from this run). Exit status: 0 when every
listed test passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PASSING = HERE / "s3-tests-passing.txt"
RUNNER = REPO.parent / "shared" / "s3-tests" / "run-s3tests"
ACCESS_KEY = "AKCONFORMANCE"
SECRET_KEY = "conformance/secret+key"
ROOT_PASSWORD = "conformance-root-password"


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(data_dir: str, port: int, log: str) -> subprocess.Popen[bytes]:
    """``twistd -n s4`` on ``port``; returns once ``/health`` answers."""
    env = dict(os.environ)
    env.update(
        S4_DATA_DIR=os.path.join(data_dir, "data"),
        S4_BIND=f"127.0.0.1:{port}",
        S4_ACCESS_KEY_ID=ACCESS_KEY,
        S4_SECRET_ACCESS_KEY=SECRET_KEY,
        S4_ROOT_PASSWORD=ROOT_PASSWORD,
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    server = subprocess.Popen([twistd, "-n", "--pidfile=", "-l", log, "s4"], env=env, cwd=data_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"s4d did not start; its log:\n{Path(log).read_text(errors='replace')}")


def admin_call(port: int, method: str, path: str, body: object, token: str = "") -> Any:
    """One admin API call (JSON in and out)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def make_alt_user(port: int) -> tuple[str, str]:
    """The second user (a Writer, "alt") with a key, through the admin API."""
    token = admin_call(
        port, "POST", "/api/admin/login", {"username": "root", "password": ROOT_PASSWORD}
    )["token"]
    user = admin_call(
        port,
        "POST",
        "/api/admin/users",
        {"username": "alt", "password": "alt-user-password", "role": "Writer"},
        token,
    )
    keys = admin_call(port, "POST", f"/api/admin/users/{user['id']}/credentials", {}, token)
    return keys["access_key"], keys["secret_key"]


def passed_tests(out_dir: Path) -> set[str]:
    """The ids (``module::name``) of the tests that passed, from the runner's JUnit files."""
    passed: set[str] = set()
    for name in ("junit.xml", "junit-serial.xml"):
        path = out_dir / name
        if not path.exists():
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            if any(child.tag in ("failure", "error", "skipped") for child in case):
                continue
            passed.add(f"{case.get('classname')}::{case.get('name')}")
    return passed


def read_list() -> set[str]:
    """The tests that must keep passing."""
    if not PASSING.exists():
        return set()
    lines = PASSING.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def write_list(tests: set[str]) -> None:
    """Rewrite the list of tests that must keep passing."""
    header = (
        "# ceph/s3-tests that s4d passes (aws profile, two users): .ci/run fails if one stops\n"
        "# passing. Regenerate with: python tests/conformance/check.py --update\n"
    )
    PASSING.write_text(header + "".join(f"{t}\n" for t in sorted(tests)))


def main(argv: list[str] | None = None) -> int:
    """Run the suite once; compare with (or, with ``--update``, rewrite) the passing list."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the passing list")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the results and server log")
    parser.add_argument("-k", dest="select", help="only the tests this pytest -k expression picks")
    args = parser.parse_args(argv)
    if not RUNNER.exists():
        print(f"conformance: the suite's runner is missing: {RUNNER}")
        return 1
    work = tempfile.mkdtemp(prefix="s4d-conformance-")
    out_dir = Path(work) / "results"
    port = free_port()
    server = start_server(work, port, os.path.join(work, "server.log"))
    try:
        alt_key, alt_secret = make_alt_user(port)
        env = dict(
            os.environ,
            ENDPOINT_PORT=str(port),
            ACCESS_KEY=ACCESS_KEY,
            SECRET_KEY=SECRET_KEY,
            ALT_ACCESS_KEY=alt_key,
            ALT_SECRET_KEY=alt_secret,
        )
        command = [str(RUNNER), "--jobs", str(args.jobs), "--out", str(out_dir)]
        if args.select:
            command += ["-k", args.select]
        subprocess.run(
            command,
            env=env,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    passed = passed_tests(out_dir)
    if not passed:
        print("conformance: no test passed (did the suite run at all?)")
        return 1
    if args.update:
        write_list(passed)
        print(f"conformance: {len(passed)} passing tests written to {PASSING}")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    expected = read_list()
    lost = [] if args.select else sorted(expected - passed)  # a partial run cannot tell
    gained = sorted(passed - expected)
    for test in gained:
        print(f"conformance: now passes, add it to the list: {test}")
    for test in lost:
        print(f"conformance: LISTED TEST NO LONGER PASSES: {test}")
    print(
        f"conformance: {len(passed)} passed; {len(expected)} listed, {len(lost)} of them lost, "
        f"{len(gained)} new (results in {out_dir})"
    )
    if lost:
        return 1
    if not (args.keep or args.select):
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
