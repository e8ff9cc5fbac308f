"""``GET /metrics`` in memory: what S3 traffic and the store look like once scraped.

The whole site runs in memory (:class:`~tests.admin.support.OpsServer`); the
scrape is parsed with prometheus-client's own parser, so what is checked is
what Prometheus would read. The group committer runs inline and the clock is
a ``task.Clock``, so every figure is exact. Several processes are the real
server tests' business (``tests/clients/test_ops.py``); how their figures add
up is tested in ``test_figures``.
"""

from __future__ import annotations

import os

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from s4d.util.duties import DutyLock
from tests.admin.support import OpsServer
from tests.s3.memory import key_path


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: ``{(name, sorted labels): value}``."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


class MetricsTestCase(SynchronousTestCase):
    env: dict[str, str] = {}

    def setUp(self) -> None:
        self.server = OpsServer(self.env)
        self.addCleanup(self.server.close)
        self.s3 = self.server.s3

    def scrape(
        self, headers: dict[str, str] | None = None
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = self.s3.request("GET", "/metrics", headers=headers, sign=False)
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(
            response.header("content-type"), "text/plain; version=0.0.4; charset=utf-8"
        )
        return parse(response.body.decode())


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class RequestFiguresTests(MetricsTestCase):
    def test_requests_by_operation_and_status(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        sizes = [100, 2000, 30000]
        for i, size in enumerate(sizes):
            self.assertEqual(
                self.s3.request("PUT", key_path("bkt", f"k{i}"), os.urandom(size)).status, 200
            )
        for i in range(2):
            self.assertEqual(self.s3.request("GET", key_path("bkt", f"k{i}")).status, 200)
        self.assertEqual(self.s3.request("GET", key_path("bkt", "missing")).status, 404)
        self.assertEqual(self.s3.request("GET", "/bkt", sign=False).status, 403)  # anonymous
        samples = self.scrape()
        requests = "s4d_requests_total"
        self.assertEqual(value(samples, requests, operation="CreateBucket", status="200"), 1)
        self.assertEqual(value(samples, requests, operation="PutObject", status="200"), 3)
        self.assertEqual(value(samples, requests, operation="GetObject", status="200"), 2)
        self.assertEqual(value(samples, requests, operation="GetObject", status="404"), 1)
        self.assertEqual(value(samples, requests, operation="Rejected", status="403"), 1)
        self.assertEqual(
            value(samples, "s4d_received_bytes_total", operation="PutObject"), sum(sizes)
        )
        self.assertEqual(
            value(samples, "s4d_sent_bytes_total", operation="GetObject") >= 2100, True
        )
        error_bytes = len(self.s3.request("GET", key_path("bkt", "missing")).body)
        self.assertEqual(
            value(samples, "s4d_sent_bytes_total", operation="GetObject"), 2100 + error_bytes
        )
        histogram = "s4d_request_duration_seconds"
        self.assertEqual(value(samples, histogram + "_count", operation="PutObject"), 3)
        self.assertEqual(value(samples, histogram + "_bucket", operation="PutObject", le="+Inf"), 3)
        # the scrape counts itself in the next one
        again = self.scrape()
        self.assertEqual(value(again, requests, operation="Metrics", status="200"), 1)
        # in memory a connection stays open after its response: every one made is still open
        self.assertEqual(value(again, "s4d_open_connections"), 11)
        self.assertEqual(len(self.s3.site.channels), 11)

    def test_durations_on_the_site_clock(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        conn = self.s3.connect()
        head = self.s3.head_block("PUT", "/bkt/slow", {"content-length": "10"}, "UNSIGNED-PAYLOAD")
        conn.send(head + b"12345")
        self.s3.clock.advance(0.3)
        conn.send(b"67890")
        self.assertEqual(conn.response().status, 200)
        samples = self.scrape()
        histogram = "s4d_request_duration_seconds_bucket"
        self.assertEqual(value(samples, histogram, operation="PutObject", le="0.25"), 0)
        self.assertEqual(value(samples, histogram, operation="PutObject", le="0.5"), 1)
        self.assertAlmostEqual(
            value(samples, "s4d_request_duration_seconds_sum", operation="PutObject"), 0.3
        )

    def test_a_client_gone_before_the_answer(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        conn = self.s3.connect()
        head = self.s3.head_block("PUT", "/bkt/half", {"content-length": "10"}, "UNSIGNED-PAYLOAD")
        conn.send(head + b"12345")
        conn.transport.loseConnection()
        conn.protocol.connectionLost(None)
        samples = self.scrape()
        self.assertEqual(
            value(samples, "s4d_requests_total", operation="PutObject", status="499"), 1
        )
        self.assertEqual(value(samples, "s4d_received_bytes_total", operation="PutObject"), 5)


class StorageFiguresTests(MetricsTestCase):
    def test_storage_and_dedup(self) -> None:
        for name in ("bk1", "bk2"):
            self.assertEqual(self.s3.request("PUT", f"/{name}").status, 200)
        same = os.urandom(5000)
        self.s3.request("PUT", "/bk1/a", same)
        self.s3.request("PUT", "/bk2/b", same)
        self.s3.request("PUT", "/bk2/c", os.urandom(3000))
        samples = self.scrape()
        self.assertEqual(value(samples, "s4d_buckets"), 2)
        self.assertEqual(value(samples, "s4d_objects"), 3)
        self.assertEqual(value(samples, "s4d_logical_bytes"), 13000)
        self.assertEqual(value(samples, "s4d_unique_bytes"), 8000)
        self.assertEqual(value(samples, "s4d_chunks"), 2)
        self.assertEqual(value(samples, "s4d_chunk_references"), 3)
        self.assertAlmostEqual(value(samples, "s4d_dedup_ratio"), 13000 / 8000)
        self.assertEqual(value(samples, "s4d_compression_ratio"), 1.0)
        self.assertEqual(value(samples, "s4d_segments"), 1)
        self.assertGreater(value(samples, "s4d_physical_bytes"), 8000)
        self.assertEqual(value(samples, "s4d_damaged_chunks"), 0)
        # six commits (two buckets, three objects ... ) went through the committer
        batches = value(samples, "s4d_commit_batch_operations_count")
        self.assertEqual(batches, value(samples, "s4d_commit_duration_seconds_count"))
        self.assertEqual(
            value(samples, "s4d_commit_batch_operations_sum"), batches
        )  # inline: 1 each
        self.assertGreaterEqual(batches, 5)
        # fsync is off in memory: no segment was synced
        self.assertEqual(value(samples, "s4d_segment_fsync_duration_seconds_count"), 0)

    def test_maintenance_counters(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.s3.request("PUT", "/bkt/a", os.urandom(2000))  # a chunk (not inline)
        samples = self.scrape()
        self.assertEqual(value(samples, "s4d_scrub_checked_chunks_total"), 0)
        self.assertNotIn(("s4d_scrub_last_run_timestamp_seconds", ()), samples)
        status, _ = self.server.json("POST", "/api/admin/scrubber/run")
        self.assertEqual(status, 200)
        samples = self.scrape()
        self.assertEqual(value(samples, "s4d_scrub_checked_chunks_total"), 1)
        self.assertEqual(value(samples, "s4d_scrub_passes_total"), 1)
        self.assertIn(("s4d_scrub_last_run_timestamp_seconds", ()), samples)
        self.assertEqual(value(samples, "s4d_compaction_passes_total"), 0)


class DutiesTests(MetricsTestCase):
    def test_the_duty_holder(self) -> None:
        """``s4d_duties_pid``: 0 while nobody holds the duty lock, then its holder's pid."""
        self.assertEqual(value(self.scrape(), "s4d_duties_pid"), 0)
        lock = DutyLock(self.server.s3.data_dir)
        self.assertTrue(lock.try_acquire())
        self.addCleanup(lock.release)
        self.assertEqual(value(self.scrape(), "s4d_duties_pid"), os.getpid())
        lock.release()
        self.assertEqual(value(self.scrape(), "s4d_duties_pid"), 0)

    def test_durability_families_without_shared_durability(self) -> None:
        """fsync is off in memory: the families are there, and empty."""
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        samples = self.scrape()
        for answer in ("synced", "here", "elsewhere"):
            self.assertEqual(
                samples[("s4d_commit_durability_waits_total", (("answer", answer),))], 0
            )
        self.assertEqual(samples[("s4d_commit_durable_wait_seconds_count", ())], 0)


class TokenTests(MetricsTestCase):
    env = {"S4_METRICS_TOKEN": "s3cr3t-token"}

    def test_a_token_is_needed(self) -> None:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cr3t-token"}):
            response = self.s3.request("GET", "/metrics", headers=headers, sign=False)
            self.assertEqual(response.status, 401, headers)
            self.assertEqual(response.header("www-authenticate"), 'Bearer realm="s4d metrics"')
            self.assertNotIn(b"s4d_", response.body)
        self.scrape({"authorization": "Bearer s3cr3t-token"})

    def test_s3_credentials_do_not_scrape(self) -> None:
        self.assertEqual(self.s3.request("GET", "/metrics").status, 401)


# In memory every client is 192.168.1.1 (StringTransport's peer address).


class NetworkTests(MetricsTestCase):
    env = {"S4_METRICS_ALLOW": "10.0.0.0/8, fd00::/8, 192.168.1.2"}

    def test_other_networks_are_refused(self) -> None:
        response = self.s3.request("GET", "/metrics", sign=False)
        self.assertEqual((response.status, response.body), (403, b"Forbidden\n"))


class AllowedNetworkTests(MetricsTestCase):
    env = {"S4_METRICS_ALLOW": "10.0.0.0/8,192.168.1.0/24"}

    def test_allowed(self) -> None:
        self.scrape()


class OpenMetricsTests(MetricsTestCase):
    def test_negotiated(self) -> None:
        response = self.s3.request(
            "GET",
            "/metrics",
            headers={"accept": "application/openmetrics-text; version=1.0.0"},
            sign=False,
        )
        self.assertEqual(response.status, 200)
        self.assertTrue(response.header("content-type").startswith("application/openmetrics-text"))
        self.assertTrue(response.body.endswith(b"# EOF\n"))


class MethodTests(MetricsTestCase):
    def test_head_and_other_methods(self) -> None:
        head = self.s3.request("HEAD", "/metrics", sign=False)
        self.assertEqual((head.status, head.body), (200, b""))
        post = self.s3.request("POST", "/metrics", sign=False)
        self.assertEqual(post.status, 405)
        self.assertEqual(post.header("content-type"), "application/json")


class DisabledTests(MetricsTestCase):
    env = {"S4_METRICS_ENABLED": "false"}

    def test_disabled(self) -> None:
        response = self.s3.request("GET", "/metrics", sign=False)
        self.assertEqual((response.status, response.body), (503, b"Metrics disabled\n"))


class LifecycleCounterTests(MetricsTestCase):
    def test_a_pass_is_counted(self) -> None:
        """What a lifecycle pass did shows in the scrape (the pass runs in the main process)."""
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        rules = (
            b"<LifecycleConfiguration><Rule><ID>old</ID><Filter><Prefix>logs/</Prefix></Filter>"
            b"<Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration>"
            b"</Rule></LifecycleConfiguration>"
        )
        put = self.s3.request("PUT", "/bkt?lifecycle", rules)
        self.assertEqual(put.status, 200, put.body)
        for key in ("logs/a", "logs/b", "keep"):
            self.assertEqual(self.s3.request("PUT", f"/bkt/{key}", b"x").status, 200)
        samples = self.scrape()
        self.assertEqual(value(samples, "s4d_lifecycle_expired_total"), 0)
        done = self.s3.engine.lifecycle.run_pass()
        self.assertTrue(self.successResultOf(done).complete)
        samples = self.scrape()
        self.assertEqual(value(samples, "s4d_lifecycle_examined_total"), 2)
        self.assertEqual(value(samples, "s4d_lifecycle_expired_total"), 2)
        self.assertEqual(value(samples, "s4d_lifecycle_locked_total"), 0)
