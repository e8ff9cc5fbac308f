"""Several server processes on one port (``S4_WORKERS=2``), driven by boto3.

Requests land on either process at random, so writes made through one must be
read through the other at once; stopping the server must stop every worker.
"""

from __future__ import annotations

import os
import time

from s4d.bench.s3 import Client
from tests.clients.harness import ServerTestCase, boto3_client, payload, sha256


def worker_pids() -> set[int]:
    """Pids of running ``s4d.workers`` processes."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if b"s4d.workers" in f.read():
                    found.add(int(name))
        except OSError:
            pass
    return found


class TwoWorkersTests(ServerTestCase):
    server_env = {"S4_WORKERS": "2"}

    def test_cross_process_consistency(self) -> None:
        self.assertTrue(worker_pids(), "no worker process running")
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
        before = worker_pids()
        self.assertTrue(before)
        assert self.server is not None
        self.server._terminate()
        deadline = time.monotonic() + 15
        while worker_pids() & before and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(worker_pids() & before)
