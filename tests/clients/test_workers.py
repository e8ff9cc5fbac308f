"""Several server processes on one port (``S4_WORKERS=2``), driven by boto3.

Requests land on either process at random, so writes made through one must be
read through the other at once; stopping the server must stop every worker; the
secret key reaches the workers through a pipe, never their command line (world
readable in ``/proc/<pid>/cmdline``) or environment.
"""

from __future__ import annotations

import os
import time

from s4d.bench.s3 import Client
from tests.clients.harness import SECRET_KEY, ServerTestCase, boto3_client, payload, sha256


def worker_pids(parent: int) -> set[int]:
    """Pids of running worker processes (``s4d.worker_process``) started by ``parent``."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if b"s4d.worker_process" not in f.read():
                    continue
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.add(int(name))
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    running.add(pid)
        except OSError:
            pass
    return running


class TwoWorkersTests(ServerTestCase):
    server_env = {"S4_WORKERS": "2"}

    def test_cross_process_consistency(self) -> None:
        assert self.server is not None and self.server.process is not None
        self.assertTrue(worker_pids(self.server.process.pid), "no worker process running")
        s3 = boto3_client(self.server, self.tmp)
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        assert self.server is not None
        host, port = "127.0.0.1", self.server.port
        for i in range(60):
            body = payload(1000 + i, seed=i)
            # a new connection for each request lets either process take it
            status, _ = Client(host, port, self.server.access_key, self.server.secret_key).request(
                "PUT", f"/{bucket}/k{i}", body
            )
            self.assertEqual(status, 200)
            got = s3.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read()
            self.assertEqual(sha256(got), sha256(body))
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        self.assertEqual(len(keys), 60)

    def test_workers_stop_with_the_server(self) -> None:
        assert self.server is not None and self.server.process is not None
        before = worker_pids(self.server.process.pid)
        self.assertTrue(before)
        self.server._terminate()
        deadline = time.monotonic() + 15
        while alive(before) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(alive(before))

    def test_no_secret_on_worker_command_lines(self) -> None:
        assert self.server is not None and self.server.process is not None
        workers = worker_pids(self.server.process.pid)
        self.assertTrue(workers, "no worker process running")
        secret = SECRET_KEY.encode()
        for pid in workers:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            self.assertIn(b"s4d.worker_process", cmdline)
            self.assertNotIn(secret, cmdline, f"secret key on the command line of worker {pid}")
            with open(f"/proc/{pid}/environ", "rb") as f:
                self.assertNotIn(secret, f.read(), f"secret key in the environment of {pid}")
