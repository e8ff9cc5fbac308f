"""The operators' views of a real ``twistd s4``: metrics, the access log, probes, the admin API.

boto3 makes real S3 traffic; ``/metrics`` is scraped over HTTP and parsed with
prometheus-client's parser, and every figure is compared with the traffic the
test made. With ``S4_WORKERS=2`` each request opens a new connection, so the
kernel hands them to either process; every scrape (also on a new connection,
answered by either) must show the whole server's figures, which the test
checks against the files the two processes publish for each other. The
admin API's data routes need a bearer token: root logs in with
``S4_ROOT_PASSWORD`` and walks them (their shapes against every role are
tested in memory in ``tests/admin/test_ops_api.py``); every one of them also
refuses a caller without a token, in JSON.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from s4d.bench.s3 import Client
from s4d.config import available_cores
from s4d.util.duties import duty_holder
from tests.clients.harness import ServerTestCase, boto3_client, payload

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request (a new connection): status, headers, body."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class OpsTestCase(ServerTestCase):
    def scrape(self) -> Samples:
        assert self.server is not None
        status, headers, body = http("GET", f"{self.server.endpoint}/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return parse(body.decode())


class MetricsAndAccessLogTests(OpsTestCase):
    # One process, so that the figures are exactly one process's (the default is a
    # process per core: whether a worker has published yet would be a race here;
    # TwoWorkersMetricsTests covers the whole server's figures across processes).
    server_env = {"S4_ACCESS_LOG": "access.log", "S4_WORKERS": "1"}

    def test_metrics_follow_the_traffic(self) -> None:
        assert self.server is not None
        before = self.scrape()
        s3 = boto3_client(self.server, self.tmp)
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        sizes = [10, 1000, 100_000]
        for i, size in enumerate(sizes):
            s3.put_object(Bucket=bucket, Key=f"k{i}", Body=payload(size, i))
        for i in range(len(sizes)):
            self.assertEqual(
                len(s3.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read()), sizes[i]
            )
        with self.assertRaises(ClientError):
            s3.head_object(Bucket=bucket, Key="missing")
        after = self.scrape()

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        requests = "s4d_requests_total"
        self.assertEqual(grew(requests, operation="CreateBucket", status="200"), 1)
        self.assertEqual(grew(requests, operation="PutObject", status="200"), 3)
        self.assertEqual(grew(requests, operation="GetObject", status="200"), 3)
        self.assertEqual(grew(requests, operation="HeadObject", status="404"), 1)
        self.assertEqual(grew(requests, operation="Metrics", status="200"), 1)
        self.assertEqual(grew("s4d_received_bytes_total", operation="PutObject"), sum(sizes))
        self.assertEqual(grew("s4d_sent_bytes_total", operation="GetObject"), sum(sizes))
        self.assertEqual(grew("s4d_request_duration_seconds_count", operation="PutObject"), 3)
        self.assertGreater(grew("s4d_request_duration_seconds_sum", operation="PutObject"), 0)
        self.assertGreaterEqual(value(after, "s4d_objects"), 3)
        self.assertGreaterEqual(value(after, "s4d_logical_bytes"), sum(sizes))
        self.assertGreaterEqual(value(after, "s4d_buckets"), 1)
        self.assertGreater(value(after, "s4d_commit_batch_operations_count"), 0)
        self.assertEqual(value(after, "s4d_processes"), 1)
        self.assertEqual(value(after, "s4d_build_info", version=__import__("s4d").__version__), 1)

    def test_one_access_log_line_per_request(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, self.tmp)
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="dir/a file", Body=b"x" * 1234)
        s3.get_object(Bucket=bucket, Key="dir/a file")["Body"].read()
        ours = []
        deadline = time.monotonic() + 10
        path = os.path.join(self.server.workdir, "access.log")
        while time.monotonic() < deadline:
            with open(path, encoding="utf-8") as f:
                lines = [json.loads(line) for line in f]
            ours = [line for line in lines if line["bucket"] == bucket]
            if len(ours) >= 3:
                break
            time.sleep(0.1)
        self.assertEqual(
            [(x["operation"], x["status"], x["key"]) for x in ours],
            [("CreateBucket", 200, ""), ("PutObject", 200, "dir/a file"),
             ("GetObject", 200, "dir/a file")],
        )  # fmt: skip
        put, get = ours[1], ours[2]
        self.assertEqual((put["bytes_in"], put["bytes_out"]), (1234, 0))
        self.assertEqual((get["bytes_in"], get["bytes_out"]), (0, 1234))
        self.assertEqual(put["identity"], self.server.access_key)
        self.assertEqual(put["peer"], "127.0.0.1")
        self.assertEqual(put["method"], "PUT")
        self.assertGreater(put["duration_ms"], 0)
        self.assertEqual(len({x["request_id"] for x in ours}), 3)
        self.assertNotIn(self.server.secret_key, open(path, encoding="utf-8").read())

    def test_probes(self) -> None:
        assert self.server is not None
        for path in ("/health", "/minio/health/live", "/minio/health/ready"):
            status, _, _ = http("GET", self.server.endpoint + path)
            self.assertEqual(status, 200, path)

    def test_admin_routes_refuse_without_a_token_in_json(self) -> None:
        assert self.server is not None
        for method, path in (
            ("GET", "/api/stats"),
            ("GET", "/api/admin/bucket-stats"),
            ("PUT", "/api/admin/buckets/some-bucket"),
            ("DELETE", "/api/admin/buckets/some-bucket?force=true"),
            ("GET", "/api/admin/buckets/some-bucket/objects?max-keys=5"),
            ("POST", "/api/admin/buckets/some-bucket/rename"),
            ("POST", "/api/admin/compaction/run?dry_run=true"),
            ("GET", "/api/admin/compaction/status"),
            ("POST", "/api/admin/scrubber/run"),
            ("GET", "/api/admin/scrubber/status"),
            ("GET", "/api/admin/server"),
        ):
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                status, got, body = http(
                    method,
                    self.server.endpoint + path,
                    b"" if method in ("PUT", "POST") else None,
                    headers,
                )
                self.assertEqual(status, 401, (method, path))
                self.assertEqual(got["content-type"], "application/json")
                self.assertEqual(list(json.loads(body)), ["error"])
        # and nothing was created
        s3 = boto3_client(self.server, self.tmp)
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        self.assertNotIn("some-bucket", names)


class TokenMetricsTests(OpsTestCase):
    server_env = {"S4_METRICS_TOKEN": "scrape-me", "S4_METRICS_ALLOW": "127.0.0.1"}

    def test_token(self) -> None:
        assert self.server is not None
        url = f"{self.server.endpoint}/metrics"
        self.assertEqual(http("GET", url)[0], 401)
        status, _, body = http("GET", url, headers={"Authorization": "Bearer scrape-me"})
        self.assertEqual(status, 200)
        self.assertIn(b"s4d_requests_total", body)


class TwoWorkersMetricsTests(OpsTestCase):
    server_env = {"S4_WORKERS": "2", "S4_FSYNC": "true"}

    def test_every_scrape_shows_the_whole_server(self) -> None:
        assert self.server is not None
        server = self.server
        s3 = boto3_client(server, self.tmp)
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        size = 777
        figures_dir = os.path.join(server.data_dir, "run", "figures")

        def put(i: int) -> int:
            # a new connection for each request lets either process take it
            client = Client("127.0.0.1", server.port, server.access_key, server.secret_key)
            return client.request("PUT", f"/{bucket}/k{i}", payload(size, i))[0]

        def published() -> dict[str, int]:
            """Each process's own PutObject count, as it last published it."""
            found = {}
            for name in os.listdir(figures_dir):
                if name.endswith(".json"):
                    with open(os.path.join(figures_dir, name)) as f:
                        requests = json.load(f)["requests"]
                    found[name] = sum(n for op, _, n in requests if op == "PutObject")
            return found

        # Concurrent PUTs until both processes have taken some (a busy process
        # leaves the next connection to the idle one).
        count = 0
        with ThreadPoolExecutor(8) as pool:
            for _round in range(20):
                statuses = list(pool.map(put, range(count, count + 24)))
                self.assertEqual(set(statuses), {200})
                count += 24
                time.sleep(1.5)  # a publication interval
                if sum(1 for n in published().values() if n) == 2:
                    break
        deadline = time.monotonic() + 15
        while True:
            per_process = published()
            if len(per_process) == 2 and sum(per_process.values()) == count:
                break
            self.assertLess(time.monotonic(), deadline, per_process)
            time.sleep(0.2)
        self.assertTrue(all(0 < n < count for n in per_process.values()), per_process)
        # Any process answering a scrape adds the other's figures to its own.
        for _ in range(8):
            samples = self.scrape()
            self.assertEqual(value(samples, "s4d_processes"), 2)
            self.assertEqual(
                value(samples, "s4d_requests_total", operation="PutObject", status="200"), count
            )
            self.assertEqual(
                value(samples, "s4d_received_bytes_total", operation="PutObject"), count * size
            )
            self.assertEqual(
                value(samples, "s4d_request_duration_seconds_count", operation="PutObject"), count
            )
            self.assertEqual(value(samples, "s4d_objects"), count)
            batches = value(samples, "s4d_commit_batch_operations_sum")
            self.assertGreaterEqual(batches, count + 1)  # every PUT and the bucket, in some batch
            # the background duties run in one of the two processes
            holder = value(samples, "s4d_duties_pid")
            self.assertEqual(holder, duty_holder(server.data_dir))
            self.assertIn(f"{int(holder)}.json", os.listdir(figures_dir))
            # every committed transaction waited until durable; some wait synced
            transactions = value(samples, "s4d_commit_duration_seconds_count")
            self.assertEqual(value(samples, "s4d_commit_durable_wait_seconds_count"), transactions)
            waits = "s4d_commit_durability_waits_total"
            self.assertGreater(value(samples, waits, answer="synced"), 0)
            answered = sum(value(samples, waits, answer=a) for a in ("synced", "here", "elsewhere"))
            self.assertGreater(answered, 0)
            self.assertLessEqual(answered, transactions)


class AdminApiTests(OpsTestCase):
    """The admin data routes with a real token, once the users' login exists."""

    server_env = {"S4_ROOT_USERNAME": "root", "S4_ROOT_PASSWORD": "a-long-root-password"}

    def token(self) -> str:
        assert self.server is not None
        body = json.dumps({"username": "root", "password": "a-long-root-password"}).encode()
        status, _, answer = http(
            "POST", f"{self.server.endpoint}/api/admin/login", body,
            {"Content-Type": "application/json"},
        )  # fmt: skip
        self.assertEqual(status, 200, answer)
        token: str = json.loads(answer)["token"]
        return token

    def api(self, method: str, path: str, token: str) -> tuple[int, Any]:
        assert self.server is not None
        status, headers, body = http(
            method, self.server.endpoint + path, b"" if method in ("PUT", "POST") else None,
            {"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        if status == 204:
            return status, None
        self.assertEqual(headers["content-type"], "application/json")
        return status, json.loads(body)

    def test_shapes(self) -> None:
        token = self.token()
        bucket = self.bucket_name()
        self.assertEqual(
            self.api("PUT", f"/api/admin/buckets/{bucket}", token), (200, {"name": bucket})
        )
        assert self.server is not None
        s3 = boto3_client(self.server, self.tmp)
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=f"d/k{i}", Body=b"x" * 10)
        status, stats = self.api("GET", "/api/stats", token)
        self.assertEqual(
            set(stats),
            {"uptime_seconds", "buckets_count", "objects_count", "storage_used_bytes",
             "dedup_unique_blobs", "dedup_total_references", "dedup_ratio"},
        )  # fmt: skip
        status, listed = self.api("GET", "/api/admin/bucket-stats", token)
        (mine,) = [b for b in listed["buckets"] if b["name"] == bucket]
        self.assertEqual((mine["objects_count"], mine["storage_used_bytes"]), (3, 30))
        status, page = self.api(
            "GET",
            f"/api/admin/buckets/{bucket}/objects?prefix=&max-keys=50&continuation-token=",
            token,
        )
        self.assertEqual((page["objects"], page["common_prefixes"]), ([], ["d/"]))
        self.assertEqual(self.api("DELETE", f"/api/admin/buckets/{bucket}", token)[0], 400)
        self.assertEqual(
            self.api("DELETE", f"/api/admin/buckets/{bucket}?force=true", token), (204, None)
        )
        status, server = self.api("GET", "/api/admin/server", token)
        # one process per core by default; the duties are held by one of them (or, for the
        # moment after the start, by none yet)
        self.assertEqual((status, server["workers"]), (200, available_cores()))
        self.assertIn("duties_pid", server)
        status, compaction = self.api("POST", "/api/admin/compaction/run?dry_run=true", token)
        self.assertIs(compaction["dry_run"], True)
        status, scrub = self.api("GET", "/api/admin/scrubber/status", token)
        self.assertEqual(scrub["mode"], "standalone")
