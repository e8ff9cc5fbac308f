"""Lifecycle rules and CORS against a real ``twistd s4``, driven by the AWS CLI and boto3.

Strategy: S4's README lifecycle walkthrough runs verbatim (only the port
differs) through ``bash`` with the AWS CLI, over HTTPS with
``--no-verify-ssl`` as the README writes it. Then a server whose lifecycle day
lasts one second (``S4_LIFECYCLE_DAY_SECS``, the test knob) and whose worker
looks every third of a second is given rules one after another, as an
operator would: current versions expiring, noncurrent versions beyond
``NewerNoncurrentVersions``, the delete markers left alone, abandoned uploads.
Each step waits (bounded) until the bucket, as boto3 lists it, shows the
rule's effect, and checks that what the rule does not name is untouched. The
worker's one log line per pass is read back from the server's log. CORS is
checked on the wire with a preflight on a presigned URL; a real browser obeys
it in ``tests/clients/test_browser_cors.py``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.clients.harness import (
    ServerTestCase,
    boto3_client,
    client_binary,
    isolated_env,
    run_client,
)

#: The README's walkthrough, as S4 wrote it (port 9000 is replaced by the test server's).
README_WALKTHROUGH = """\
# Create lifecycle configuration file
cat > lifecycle.json <<'EOF'
{
"Rules": [
{
"ID": "expire-logs",
"Status": "Enabled",
"Filter": {
"Prefix": "logs/"
},
"Expiration": {
"Days": 30
}
},
{
"ID": "cleanup-old-versions",
"Status": "Enabled",
"Filter": {
"Prefix": ""
},
"NoncurrentVersionExpiration": {
"NoncurrentDays": 90
}
}
]
}
EOF
# Set lifecycle configuration
aws s3api put-bucket-lifecycle-configuration \\
--bucket mybucket \\
--lifecycle-configuration file://lifecycle.json \\
--endpoint-url https://127.0.0.1:9000 \\
--no-verify-ssl
# Get lifecycle configuration
aws s3api get-bucket-lifecycle-configuration \\
--bucket mybucket \\
--endpoint-url https://127.0.0.1:9000 \\
--no-verify-ssl
"""

#: How long a step may take before the test gives up (the worker looks every 0.36 s).
DEADLINE = 30.0


class ReadmeWalkthroughTests(ServerTestCase):
    """The README's lifecycle section, over HTTPS as written there."""

    tls = True

    def test_readme_lifecycle_walkthrough(self) -> None:
        assert self.server is not None
        aws = client_binary("aws")
        env = isolated_env(
            os.path.join(self.tmp, "home"),
            AWS_ACCESS_KEY_ID=self.server.access_key,
            AWS_SECRET_ACCESS_KEY=self.server.secret_key,
            AWS_DEFAULT_REGION=self.server.region,
            PATH=os.path.dirname(aws) + os.pathsep + os.environ.get("PATH", ""),
        )
        endpoint = f"https://{self.server.host}"
        run_client(self, [aws, "--endpoint-url", endpoint, "--no-verify-ssl", "s3", "mb",
                          "s3://mybucket"], env)  # fmt: skip
        script = README_WALKTHROUGH.replace("https://127.0.0.1:9000", endpoint)
        done = run_client(self, ["bash", "-e", "-c", script], env)
        answered = json.loads(done.stdout)
        self.assertEqual(
            answered["Rules"],
            [
                {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
                 "Expiration": {"Days": 30}},
                {"ID": "cleanup-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
                 "NoncurrentVersionExpiration": {"NoncurrentDays": 90}},
            ],
        )  # fmt: skip


class ShortDayLifecycleTests(ServerTestCase):
    """The worker at work: one-second days, a pass every third of a second."""

    server_env = {
        "S4_LIFECYCLE_DAY_SECS": "1",
        "S4_LIFECYCLE_INTERVAL_HOURS": "0.0001",
        "S4_LIFECYCLE_BATCH": "7",
    }

    def setUp(self) -> None:
        super().setUp()
        assert self.server is not None
        self.s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))

    def rules(self, bucket: str, *rules: dict[str, Any]) -> None:
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)}
        )

    def versions(self, bucket: str) -> dict[str, list[str]]:
        """Each key's versions, newest first: ``M`` for a delete marker, ``V`` otherwise."""
        listed = self.s3.list_object_versions(Bucket=bucket)
        items = [(v, "V") for v in listed.get("Versions", [])]
        items += [(m, "M") for m in listed.get("DeleteMarkers", [])]
        items.sort(
            key=lambda i: (i[0]["Key"], not i[0]["IsLatest"], -i[0]["LastModified"].timestamp())
        )
        found: dict[str, list[str]] = {}
        for item, kind in items:
            found.setdefault(item["Key"], []).append(kind)
        return found

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        self.fail(f"not within {DEADLINE} s: {what}")

    def test_rules_one_after_another(self) -> None:
        s3 = self.s3
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for i in range(12):
            s3.put_object(Bucket=bucket, Key=f"tmp/{i:02}", Body=b"temporary")
        for i in range(10):
            s3.put_object(Bucket=bucket, Key="doc", Body=f"draft {i}".encode())
        s3.put_object(Bucket=bucket, Key="keep/me", Body=b"kept")

        # 1. current versions under tmp/ expire into delete markers
        put = s3.put_object(Bucket=bucket, Key="tmp/extra", Body=b"x")
        self.rules(bucket, {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                            "Expiration": {"Days": 2}})  # fmt: skip
        head = s3.head_object(Bucket=bucket, Key="tmp/extra")
        self.assertIn('rule-id="tmp"', head["Expiration"])
        self.assertNotIn("Expiration", put)  # the rule came after the PUT
        self.wait_for(
            "tmp/ listed empty",
            lambda: s3.list_objects_v2(Bucket=bucket, Prefix="tmp/")["KeyCount"] == 0,
        )
        versions = self.versions(bucket)
        self.assertEqual(versions["tmp/00"], ["M", "V"])
        self.assertEqual(len(versions["doc"]), 10)
        self.assertEqual(versions["keep/me"], ["V"])

        # 2. noncurrent versions of doc beyond the newest two go
        keep_two = {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2}
        self.rules(bucket, {"ID": "drafts", "Status": "Enabled", "Filter": {"Prefix": "doc"},
                            "NoncurrentVersionExpiration": keep_two})  # fmt: skip
        self.wait_for("doc keeps 3 versions", lambda: len(self.versions(bucket)["doc"]) == 3)
        got = s3.get_object(Bucket=bucket, Key="doc")["Body"].read()
        self.assertEqual(got, b"draft 9")
        self.assertEqual(self.versions(bucket)["tmp/00"], ["M", "V"])  # no rule names tmp/ now

        # 3. then the markers left alone under tmp/
        self.rules(bucket, {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                            "Expiration": {"ExpiredObjectDeleteMarker": True}})  # fmt: skip
        self.wait_for(
            "no version or marker under tmp/",
            lambda: not any(k.startswith("tmp/") for k in self.versions(bucket)),
        )
        self.assertEqual(self.versions(bucket), {"doc": ["V", "V", "V"], "keep/me": ["V"]})

        # 4. abandoned uploads under up/
        uploads = [s3.create_multipart_upload(Bucket=bucket, Key=f"up/{i}") for i in range(3)]
        s3.create_multipart_upload(Bucket=bucket, Key="keep/upload")
        abort = {"DaysAfterInitiation": 2}
        self.rules(bucket, {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "up/"},
                            "AbortIncompleteMultipartUpload": abort})  # fmt: skip
        created = s3.create_multipart_upload(Bucket=bucket, Key="up/late")
        self.assertEqual(created["AbortRuleId"], "uploads")
        self.assertIn("AbortDate", created)
        self.wait_for(
            "only keep/upload left",
            lambda: (
                [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
                == ["keep/upload"]
            ),
        )
        self.assertEqual(len(uploads), 3)
        self.assertEqual(self.versions(bucket), {"doc": ["V", "V", "V"], "keep/me": ["V"]})

        assert self.server is not None
        log = self.server.log(self.log_mark)
        self.assertIn("Lifecycle pass ended", log)
        self.assertRegex(log, r"[1-9]\d* current versions expired")
        self.assertRegex(log, r"[1-9]\d* uploads aborted")

    def test_unversioned_bucket_loses_expired_objects(self) -> None:
        s3 = self.s3
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        for i in range(20):
            s3.put_object(Bucket=bucket, Key=f"logs/{i:02}", Body=b"line")
        s3.put_object(Bucket=bucket, Key="data", Body=b"kept")
        self.rules(bucket, {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
                            "Expiration": {"Days": 1}})  # fmt: skip
        self.wait_for(
            "logs/ gone",
            lambda: (
                [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
                == ["data"]
            ),
        )
        self.assertNotIn("DeleteMarkers", s3.list_object_versions(Bucket=bucket))

    def test_object_lock_outlasts_the_rules(self) -> None:
        """A version under a legal hold stays however due; the rest of its key's history goes."""
        s3 = self.s3
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        held = s3.put_object(Bucket=bucket, Key="k", Body=b"held", ObjectLockLegalHoldStatus="ON")
        s3.put_object(Bucket=bucket, Key="k", Body=b"free")
        self.rules(bucket, {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""},
                            "Expiration": {"Days": 1},
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 1}})  # fmt: skip
        self.wait_for(
            "only the marker and the held version",
            lambda: self.versions(bucket) == {"k": ["M", "V"]},
        )
        listed = s3.list_object_versions(Bucket=bucket)["Versions"]
        self.assertEqual([v["VersionId"] for v in listed], [held["VersionId"]])
        assert self.server is not None
        self.assertRegex(self.server.log(self.log_mark), r"[1-9]\d* skipped \(locked\)")
        s3.put_object_legal_hold(
            Bucket=bucket, Key="k", VersionId=held["VersionId"], LegalHold={"Status": "OFF"}
        )
        # then the held version goes too (and the marker, alone and old enough, after it)
        self.wait_for("the history gone", lambda: "V" not in self.versions(bucket).get("k", []))


class CorsWireTests(ServerTestCase):
    """A preflight on a presigned URL, and the headers of the presigned request itself."""

    def test_presigned_preflight_and_get(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="obj", Body=b"hello")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "obj"})

        def send(method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
            request = urllib.request.Request(url, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    return r.status, {k.lower(): v for k, v in r.headers.items()}
            except urllib.error.HTTPError as e:
                return e.code, {k.lower(): v for k, v in e.headers.items()}

        asking = {"Origin": "http://app.test", "Access-Control-Request-Method": "GET"}
        self.assertEqual(send("OPTIONS", {})[0], 400)
        self.assertEqual(send("OPTIONS", asking)[0], 403)
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"],
                                              "AllowedOrigins": ["http://app.test"],
                                              "ExposeHeaders": ["ETag"]}]},
        )  # fmt: skip
        status, headers = send("OPTIONS", asking)
        self.assertEqual(status, 200)
        self.assertEqual(headers["access-control-allow-origin"], "http://app.test")
        self.assertEqual(headers["access-control-allow-methods"], "GET")
        status, headers = send("GET", {"Origin": "http://app.test"})
        self.assertEqual((status, headers["access-control-expose-headers"]), (200, "ETag"))
        status, headers = send("GET", {"Origin": "http://elsewhere.test"})
        self.assertEqual(status, 200)
        self.assertNotIn("access-control-allow-origin", headers)
        got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
        self.assertEqual(got[0]["AllowedOrigins"], ["http://app.test"])


class CorsAcrossWorkersTests(ServerTestCase):
    """Two worker processes: a change made through one is obeyed by both within a second."""

    server_env = {"S4_WORKERS": "2"}

    def test_rules_reach_every_worker(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        url = f"{self.server.endpoint}/{bucket}/obj"
        asking = {"Origin": "http://app.test", "Access-Control-Request-Method": "GET"}

        def statuses(n: int = 12) -> set[int]:
            found = set()
            for _ in range(n):  # a new connection each: the kernel spreads them over workers
                request = urllib.request.Request(url, method="OPTIONS", headers=asking)
                try:
                    with urllib.request.urlopen(request, timeout=10) as r:
                        found.add(r.status)
                except urllib.error.HTTPError as e:
                    found.add(e.code)
            return found

        self.assertEqual(statuses(), {403})  # every worker has cached "no rules" now
        rules = {"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["http://app.test"]}]}
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=rules)
        changed = time.monotonic()
        while statuses() != {200}:
            self.assertLess(time.monotonic() - changed, 3.0, "a worker kept stale rules")
            time.sleep(0.1)
        s3.delete_bucket_cors(Bucket=bucket)
        changed = time.monotonic()
        while statuses() != {403}:
            self.assertLess(time.monotonic() - changed, 3.0, "a worker kept deleted rules")
            time.sleep(0.1)
