"""The admin API's data routes, driven in memory through the whole site.

Requests go in as raw HTTP/1.1 through the real S3 site, its routing rule
(``/api/...`` to the ops app whatever the request carries), the Klein app the
service builds, the engine and a store in a temporary directory
(:class:`~tests.admin.support.OpsServer`). Only the AdminGuard is a test
implementation of the protocol (a table of tokens). Each route is checked for
S4's shape, its errors (always ``{"error": ...}`` JSON, never S3 XML), and who
may call it: anonymous, a bad token, an inactive user, a Reader, a Writer and
a SuperUser.
"""

from __future__ import annotations

import base64
import json
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.admin.support import INACTIVE, READER, ROOT, WRITER, OpsServer
from tests.s3.memory import key_path
from tests.s3.test_object_lock import hold_xml, md5_header

#: every route, with a request that would succeed for root on a server holding bucket "bk1"
ROUTES = [
    ("GET", "/api/admin/bucket-stats"),
    ("PUT", "/api/admin/buckets/newbucket"),
    ("DELETE", "/api/admin/buckets/bk1"),
    ("GET", "/api/admin/buckets/bk1/objects"),
    ("POST", "/api/admin/buckets/bk1/rename"),
    ("GET", "/api/admin/buckets/bk1/policy"),
    ("PUT", "/api/admin/buckets/bk1/policy"),
    ("DELETE", "/api/admin/buckets/bk1/policy"),
    ("GET", "/api/admin/buckets/bk1/public"),
    ("POST", "/api/admin/compaction/run?dry_run=true"),
    ("GET", "/api/admin/compaction/status"),
    ("GET", "/api/admin/lifecycle/status"),
    ("POST", "/api/admin/scrubber/run"),
    ("GET", "/api/admin/scrubber/status"),
    ("GET", "/api/admin/server"),
]


class OpsApiTestCase(SynchronousTestCase):
    env: dict[str, str] = {}
    segment_size = 1 << 30

    def setUp(self) -> None:
        self.server = OpsServer(self.env, self.segment_size)
        self.addCleanup(self.server.close)
        self.s3 = self.server.s3

    def put(self, bucket: str, key: str, body: bytes, **headers: str) -> None:
        response = self.s3.request("PUT", key_path(bucket, key), body, headers)
        self.assertEqual(response.status, 200, response.body)

    def bucket(self, name: str) -> None:
        self.assertEqual(self.s3.request("PUT", f"/{name}").status, 200)


class WhoMayCallTests(OpsApiTestCase):
    def test_admin_routes_need_a_superuser(self) -> None:
        self.bucket("bk1")
        for method, target in ROUTES:
            for token, status in ((None, 401), ("nonsense", 401), (INACTIVE, 401)):
                got, body = self.server.json(method, target, token)
                self.assertEqual(got, status, (method, target, token, body))
                self.assertIsInstance(body["error"], str)
            for token in (READER, WRITER):
                got, body = self.server.json(method, target, token)
                self.assertEqual((got, list(body)), (403, ["error"]), (method, target, token))
        # nothing was done by any of the refused calls
        status, listed = self.server.json("GET", "/api/admin/bucket-stats")
        self.assertEqual([b["name"] for b in listed["buckets"]], ["bk1"])

    def test_a_refusal_says_how_to_authenticate(self) -> None:
        response = self.server.call("GET", "/api/admin/server", token=None)
        self.assertEqual(response.status, 401)
        self.assertEqual(response.header("www-authenticate"), 'Bearer realm="s4d"')

    def test_stats_take_any_valid_token(self) -> None:
        for token in (READER, WRITER, ROOT):
            self.assertEqual(self.server.json("GET", "/api/stats", token)[0], 200)
        for token in (None, "nonsense", INACTIVE):
            self.assertEqual(self.server.json("GET", "/api/stats", token)[0], 401)

    def test_s3_credentials_are_no_admin_credentials(self) -> None:
        # A SigV4-signed request to /api/... is the admin API's, and it wants a token.
        response = self.s3.request("GET", "/api/admin/server")
        self.assertEqual(response.status, 401)
        self.assertEqual(response.header("content-type"), "application/json")
        self.assertNotIn(b"<Error>", response.body)

    def test_unknown_routes_answer_json(self) -> None:
        for method, target in (
            ("GET", "/api/admin/nothing"),
            ("GET", "/api/nothing"),
            ("POST", "/api/stats"),
            ("GET", "/api/admin/buckets/bk1/objects/more"),
        ):
            response = self.server.call(method, target)
            self.assertIn(response.status, (404, 405), (method, target))
            self.assertEqual(response.header("content-type"), "application/json")
            self.assertIn(b'"error"', response.body)

    def test_a_bucket_named_api_is_reachable_path_style_only_as_a_bucket(self) -> None:
        self.bucket("api")
        # /api is the bucket, /api/<anything> is the admin API's
        self.assertEqual(self.s3.request("GET", "/api").status, 200)
        response = self.s3.request("PUT", "/api/k", b"x")
        self.assertEqual(response.status, 404)
        self.assertEqual(response.header("content-type"), "application/json")


class StatsTests(OpsApiTestCase):
    def test_empty_server(self) -> None:
        status, body = self.server.json("GET", "/api/stats")
        self.assertEqual(status, 200)
        self.assertEqual(
            body,
            {
                "uptime_seconds": 0,
                "buckets_count": 0,
                "objects_count": 0,
                "storage_used_bytes": 0,
                "dedup_unique_blobs": 0,
                "dedup_total_references": 0,
                "dedup_ratio": 0.0,
            },
        )

    def test_counts_and_dedup(self) -> None:
        self.bucket("bk1")
        self.bucket("bk2")
        # larger than INLINE_MAX: smaller objects are kept inline, not deduplicated
        same = os.urandom(2000)
        self.put("bk1", "a", same)
        self.put("bk2", "b", same)
        self.put("bk2", "c", os.urandom(1500))
        self.s3.clock.advance(42)
        status, body = self.server.json("GET", "/api/stats")
        self.assertEqual(body["uptime_seconds"], 42)
        self.assertEqual(body["buckets_count"], 2)
        self.assertEqual(body["objects_count"], 3)
        self.assertEqual(body["storage_used_bytes"], 5500)
        self.assertEqual(body["dedup_unique_blobs"], 2)
        self.assertEqual(body["dedup_total_references"], 3)
        self.assertAlmostEqual(body["dedup_ratio"], 1 - 2 / 3, places=5)

    def test_no_query_parameters(self) -> None:
        status, body = self.server.json("GET", "/api/stats?verbose=1")
        self.assertEqual((status, body), (400, {"error": "unknown query parameter: verbose"}))


class BucketStatsTests(OpsApiTestCase):
    def test_every_bucket_with_its_figures(self) -> None:
        self.s3.clock.advance(5)
        self.bucket("bk1")
        self.bucket("bk2")
        self.put("bk1", "x/a", b"1" * 10)
        self.put("bk1", "x/b", b"2" * 20)
        self.put("bk1", "c", b"3" * 30)
        status, body = self.server.json("GET", "/api/admin/bucket-stats")
        self.assertEqual(status, 200)
        created = {b["name"]: b["created_at"] for b in body["buckets"]}
        records = {
            b.name: b.created_ns for b in self.successResultOf(self.s3.engine.buckets.list_all())
        }
        self.assertEqual(created, records)
        for bucket in body["buckets"]:
            del bucket["created_at"]
        self.assertEqual(
            body,
            {
                "buckets": [
                    {"name": "bk1", "objects_count": 3, "storage_used_bytes": 60},
                    {"name": "bk2", "objects_count": 0, "storage_used_bytes": 0},
                ],
                "total_storage_bytes": 60,
            },
        )

    def test_versions_count_in_bytes_not_in_objects(self) -> None:
        self.bucket("ver")
        self.s3.request(
            "PUT",
            "/ver?versioning",
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        )
        self.put("ver", "k", b"a" * 100)
        self.put("ver", "k", b"b" * 50)
        self.put("ver", "gone", b"c" * 7)
        self.assertEqual(self.s3.request("DELETE", "/ver/gone").status, 204)
        status, body = self.server.json("GET", "/api/admin/bucket-stats")
        (only,) = body["buckets"]
        self.assertEqual((only["objects_count"], only["storage_used_bytes"]), (1, 157))


class BucketTests(OpsApiTestCase):
    def test_create(self) -> None:
        status, body = self.server.json("PUT", "/api/admin/buckets/fresh")
        self.assertEqual((status, body), (200, {"name": "fresh"}))
        self.assertEqual(self.s3.request("HEAD", "/fresh").status, 200)
        status, body = self.server.json("PUT", "/api/admin/buckets/fresh")
        self.assertEqual(status, 409)
        self.assertIn("error", body)

    def test_create_refuses_a_bad_name(self) -> None:
        for name in ("A", "ab", "a..b", "192.168.1.1", "x" * 64):
            status, body = self.server.json("PUT", f"/api/admin/buckets/{name}")
            self.assertEqual(status, 400, name)
            self.assertEqual(body, {"error": "The specified bucket is not valid."})
        self.assertEqual(self.server.json("GET", "/api/stats")[1]["buckets_count"], 0)

    def test_delete_empty(self) -> None:
        self.bucket("bk1")
        status, body = self.server.json("DELETE", "/api/admin/buckets/bk1")
        self.assertEqual((status, body), (204, None))
        self.assertEqual(self.s3.request("HEAD", "/bk1").status, 404)

    def test_delete_missing(self) -> None:
        status, body = self.server.json("DELETE", "/api/admin/buckets/nobucket")
        self.assertEqual((status, body), (404, {"error": "The specified bucket does not exist."}))

    def test_non_empty_needs_force(self) -> None:
        self.bucket("bk1")
        self.put("bk1", "k", b"data")
        status, body = self.server.json("DELETE", "/api/admin/buckets/bk1")
        self.assertEqual(status, 400)
        self.assertIn("error", body)
        self.assertEqual(self.s3.request("GET", "/bk1/k").body, b"data")
        status, _ = self.server.json("DELETE", "/api/admin/buckets/bk1?force=false")
        self.assertEqual(status, 400)

    def test_force_deletes_everything(self) -> None:
        self.bucket("bk1")
        self.s3.request(
            "PUT",
            "/bk1?versioning",
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        )
        for i in range(450):  # more than one page of the purge
            self.put("bk1", f"d{i % 7}/k{i}", b"v%d" % i)
        self.put("bk1", "d0/k0", b"second version")
        self.assertEqual(self.s3.request("DELETE", "/bk1/d1/k1").status, 204)  # a marker
        upload = self.s3.request("POST", "/bk1/pending?uploads")
        self.assertEqual(upload.status, 200)
        status, body = self.server.json("DELETE", "/api/admin/buckets/bk1?force=true")
        self.assertEqual((status, body), (204, None))
        self.assertEqual(self.s3.request("HEAD", "/bk1").status, 404)
        stats = self.server.json("GET", "/api/stats")[1]
        self.assertEqual((stats["objects_count"], stats["storage_used_bytes"]), (0, 0))
        self.assertEqual(stats["dedup_total_references"], 0)

    def test_force_stops_at_a_locked_version(self) -> None:
        created = self.s3.request(
            "PUT", "/locked", headers={"x-amz-bucket-object-lock-enabled": "true"}
        )
        self.assertEqual(created.status, 200)
        self.put("locked", "held", b"keep me", **md5_header(b"keep me"))
        hold = self.s3.request("PUT", "/locked/held?legal-hold", hold_xml("ON"))
        self.assertEqual(hold.status, 200, hold.body)
        status, body = self.server.json("DELETE", "/api/admin/buckets/locked?force=true")
        self.assertEqual(status, 409)
        self.assertIn("object lock", body["error"])
        self.assertEqual(self.s3.request("GET", "/locked/held").body, b"keep me")

    def test_bad_force_value(self) -> None:
        self.bucket("bk1")
        status, body = self.server.json("DELETE", "/api/admin/buckets/bk1?force=maybe")
        self.assertEqual((status, body), (400, {"error": "force must be true or false"}))
        self.assertEqual(self.s3.request("HEAD", "/bk1").status, 200)


def public_read(bucket: str) -> dict[str, object]:
    """A policy letting everybody read ``bucket``'s objects."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }  # fmt: skip


class BucketPolicyTests(OpsApiTestCase):
    """An operator views and sets a bucket's policy, and sees whether the bucket is public."""

    def test_set_view_and_remove_a_policy(self) -> None:
        self.bucket("bk1")
        self.put("bk1", "k", b"data")
        status, body = self.server.json("GET", "/api/admin/buckets/bk1/policy")
        self.assertEqual((status, body), (404, {"error": "the bucket has no policy"}))
        self.assertEqual(self.s3.request("GET", "/bk1/k", sign=False).status, 403)
        policy = public_read("bk1")
        status, body = self.server.json("PUT", "/api/admin/buckets/bk1/policy", body=policy)
        self.assertEqual((status, body), (200, {"bucket": "bk1", "is_public": True}))
        status, body = self.server.json("GET", "/api/admin/buckets/bk1/policy")
        self.assertEqual((status, body["policy"], body["is_public"]), (200, policy, True))
        # the S3 side sees the same policy, at once, and serves the object to anybody
        self.assertEqual(json.loads(self.s3.request("GET", "/bk1?policy").body), policy)
        self.assertEqual(self.s3.request("GET", "/bk1/k", sign=False).body, b"data")
        status, body = self.server.json("GET", "/api/admin/buckets/bk1/public")
        self.assertEqual(
            body,
            {"bucket": "bk1", "public": True, "policy_public": True, "acl_public": False,
             "public_access_block": {"BlockPublicAcls": False, "IgnorePublicAcls": False,
                                     "BlockPublicPolicy": False, "RestrictPublicBuckets": False},
             "object_ownership": "ObjectWriter"},
        )  # fmt: skip
        self.assertEqual(self.server.json("DELETE", "/api/admin/buckets/bk1/policy")[0], 204)
        self.assertEqual(self.s3.request("GET", "/bk1/k", sign=False).status, 403)
        self.assertFalse(self.server.json("GET", "/api/admin/buckets/bk1/public")[1]["public"])

    def test_public_by_acl(self) -> None:
        self.bucket("bk1")
        put = self.s3.request("PUT", "/bk1?acl", headers={"x-amz-acl": "public-read"})
        self.assertEqual(put.status, 200, put.body)
        body = self.server.json("GET", "/api/admin/buckets/bk1/public")[1]
        self.assertEqual((body["public"], body["acl_public"]), (True, True))

    def test_bad_policies_are_refused(self) -> None:
        self.bucket("bk1")
        for raw in (b"not json", b'{"Statement": []}', b"{" + b" " * 21_000 + b"}"):
            status, body = self.server.json("PUT", "/api/admin/buckets/bk1/policy", body=raw)
            self.assertEqual(status, 400, raw[:20])
            self.assertIsInstance(body["error"], str)
        self.assertEqual(self.server.json("GET", "/api/admin/buckets/bk1/policy")[0], 404)
        status, _ = self.server.json("PUT", "/api/admin/buckets/none/policy", body=public_read("n"))
        self.assertEqual(status, 404)

    def test_block_public_policy_holds(self) -> None:
        self.bucket("bk1")
        block = (b"<PublicAccessBlockConfiguration><BlockPublicPolicy>true</BlockPublicPolicy>"
                 b"</PublicAccessBlockConfiguration>")  # fmt: skip
        self.assertEqual(self.s3.request("PUT", "/bk1?publicAccessBlock", block).status, 200)
        status, _ = self.server.json(
            "PUT", "/api/admin/buckets/bk1/policy", body=public_read("bk1")
        )
        self.assertEqual(status, 403)
        body = self.server.json("GET", "/api/admin/buckets/bk1/public")[1]
        self.assertTrue(body["public_access_block"]["BlockPublicPolicy"])
        self.assertFalse(body["public"])


class ObjectListingTests(OpsApiTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.bucket("bk1")
        self.put("bk1", "a.txt", b"hello", **{"content-type": "text/plain"})
        self.put("bk1", "dir/x", b"1")
        self.put("bk1", "dir/y", b"22")
        self.put("bk1", "z", b"333")

    def test_grouped_by_slash(self) -> None:
        status, body = self.server.json("GET", "/api/admin/buckets/bk1/objects")
        self.assertEqual(status, 200)
        self.assertEqual([o["key"] for o in body["objects"]], ["a.txt", "z"])
        self.assertEqual(body["common_prefixes"], ["dir/"])
        self.assertIs(body["is_truncated"], False)
        self.assertNotIn("next_continuation_token", body)
        first = body["objects"][0]
        head = self.s3.request("HEAD", "/bk1/a.txt")
        self.assertEqual(
            first,
            {
                "key": "a.txt",
                "size": 5,
                "content_type": "text/plain",
                "last_modified": first["last_modified"],
                "etag": head.header("etag").strip('"'),
            },
        )
        version = self.successResultOf(self.s3.engine.objects.head("bk1", "a.txt"))
        self.assertEqual(first["last_modified"], version.mtime_ns)

    def test_prefix(self) -> None:
        status, body = self.server.json("GET", "/api/admin/buckets/bk1/objects?prefix=dir/")
        self.assertEqual(
            [(o["key"], o["size"]) for o in body["objects"]], [("dir/x", 1), ("dir/y", 2)]
        )
        self.assertEqual(body["common_prefixes"], [])

    def test_pages_with_either_spelling(self) -> None:
        for names in (("max-keys", "continuation-token"), ("max_keys", "continuation_token")):
            seen: list[str] = []
            target = f"/api/admin/buckets/bk1/objects?prefix=&{names[0]}=1&{names[1]}="
            while True:
                status, body = self.server.json("GET", target)
                self.assertEqual(status, 200, body)
                seen += [o["key"] for o in body["objects"]] + body["common_prefixes"]
                if not body["is_truncated"]:
                    self.assertNotIn("next_continuation_token", body)
                    break
                token = body["next_continuation_token"]
                target = f"/api/admin/buckets/bk1/objects?{names[0]}=1&{names[1]}={token}"
            self.assertEqual(seen, ["a.txt", "dir/", "z"], names)

    def test_bad_parameters(self) -> None:
        for query, message in (
            ("max-keys=0", "max-keys must be a whole number from 1 to 1000"),
            ("max-keys=1001", "max-keys must be a whole number from 1 to 1000"),
            ("max-keys=ten", "max-keys must be a whole number from 1 to 1000"),
            ("continuation-token=%FF%FE", "the query is not valid UTF-8"),
            ("continuation-token=!!", "the continuation token is not valid"),
            ("delimiter=/", "unknown query parameter: delimiter"),
            ("max-keys=1&max_keys=2", "query parameter max-keys is given twice"),
        ):
            status, body = self.server.json("GET", f"/api/admin/buckets/bk1/objects?{query}")
            self.assertEqual((status, body), (400, {"error": message}), query)
        token = base64.urlsafe_b64encode(b"\xff").decode()
        status, _ = self.server.json(
            "GET", f"/api/admin/buckets/bk1/objects?continuation-token={token}"
        )
        self.assertEqual(status, 400)

    def test_missing_bucket(self) -> None:
        status, body = self.server.json("GET", "/api/admin/buckets/nobucket/objects")
        self.assertEqual((status, body), (404, {"error": "The specified bucket does not exist."}))


class RenameTests(OpsApiTestCase):
    def test_prefix_rename(self) -> None:
        self.bucket("bk1")
        for i in range(5):
            self.put("bk1", f"old/{i}", b"%d" % i)
        status, body = self.server.json(
            "POST", "/api/admin/buckets/bk1/rename", body={"source": "old/", "destination": "new/"}
        )
        self.assertEqual(
            (status, body), (200, {"source": "old/", "destination": "new/", "prefix": True})
        )
        self.assertEqual(self.s3.request("GET", "/bk1/new/3").body, b"3")
        self.assertEqual(self.s3.request("GET", "/bk1/old/3").status, 404)

    def test_key_rename(self) -> None:
        self.bucket("bk1")
        self.put("bk1", "a", b"A")
        status, body = self.server.json(
            "POST", "/api/admin/buckets/bk1/rename", body={"source": "a", "destination": "b"}
        )
        self.assertEqual((status, body["prefix"]), (200, False))
        self.assertEqual(self.s3.request("GET", "/bk1/b").body, b"A")

    def test_refusals(self) -> None:
        self.bucket("bk1")
        self.put("bk1", "p/1", b"1")
        self.put("bk1", "q/1", b"1")
        for payload, status in (
            ({"source": "p/"}, 400),
            ({"source": 1, "destination": "x/"}, 400),
            ({"source": "p/", "destination": "x/", "merge": "yes"}, 400),
            ({"source": "p/", "destination": "x/", "extra": 1}, 400),
            (b"not json", 400),
            (b"[1, 2]", 400),
            ({"source": "p/", "destination": "q/"}, 409),  # q/ holds keys: no merge asked
            ({"source": "nothing/", "destination": "x/"}, 404),
        ):
            got, body = self.server.json("POST", "/api/admin/buckets/bk1/rename", body=payload)
            self.assertEqual(got, status, (payload, body))
            self.assertEqual(list(body), ["error"])
        self.assertEqual(self.s3.request("GET", "/bk1/p/1").status, 200)


class CompactionTests(OpsApiTestCase):
    env = {"S4_COMPACTION_GRACE_SECS": "0"}
    segment_size = 64 << 10

    def fill_and_delete(self) -> None:
        self.bucket("bk1")
        for i in range(40):
            self.put("bk1", f"k{i}", os.urandom(4000))
        for i in range(30):
            self.assertEqual(self.s3.request("DELETE", f"/bk1/k{i}").status, 204)

    def test_dry_run_then_run(self) -> None:
        self.fill_and_delete()
        status, dry = self.server.json(
            "POST", "/api/admin/compaction/run?dry_run=true&threshold=0.5"
        )
        self.assertEqual(status, 200, dry)
        self.assertEqual(
            set(dry) - {"seconds", "segments"},
            {"volumes_scanned", "volumes_compacted", "volumes_skipped", "live_blobs", "dead_blobs",
             "bytes_reclaimed", "errors", "dry_run"},
        )  # fmt: skip
        self.assertIs(dry["dry_run"], True)
        self.assertGreater(dry["volumes_compacted"], 0)
        self.assertGreater(dry["dead_blobs"], 0)
        self.assertGreater(dry["bytes_reclaimed"], 0)
        self.assertEqual(dry["volumes_scanned"], dry["volumes_compacted"] + dry["volumes_skipped"])
        before = self.server.json("GET", "/api/stats")[1]
        status, done = self.server.json("POST", "/api/admin/compaction/run?threshold=0.5")
        self.assertEqual(status, 200, done)
        self.assertIs(done["dry_run"], False)
        self.assertEqual(done["volumes_compacted"], dry["volumes_compacted"])
        self.assertEqual(done["live_blobs"], dry["live_blobs"])
        self.assertEqual(done["errors"], 0)
        self.assertGreater(done["bytes_reclaimed"], 0)
        self.assertEqual(self.server.json("GET", "/api/stats")[1], before)
        for i in range(30, 40):
            self.assertEqual(self.s3.request("GET", f"/bk1/k{i}").status, 200)
        status, state = self.server.json("GET", "/api/admin/compaction/status")
        self.assertEqual(state["last_run"]["segments_compacted"], done["volumes_compacted"])
        self.assertEqual(state["totals"]["compaction_passes"], 1)  # the dry run does not count
        self.assertEqual(state["totals"]["compaction_segments"], done["volumes_compacted"])
        self.assertEqual(
            (state["enabled"], state["threshold"], state["grace_secs"]), (True, 0.3, 0.0)
        )

    def test_max_volumes(self) -> None:
        self.fill_and_delete()
        status, done = self.server.json("POST", "/api/admin/compaction/run?max_volumes=1")
        self.assertEqual((status, done["volumes_compacted"]), (200, 1))

    def test_bad_parameters(self) -> None:
        for query, message in (
            ("threshold=2", "threshold must be from 0 to 1"),
            ("threshold=x", "threshold must be a number"),
            ("dry_run=perhaps", "dry_run must be true or false"),
            ("max_volumes=0", "max_volumes must be a whole number from 1 to 1073741824"),
            ("volumes=3", "unknown query parameter: volumes"),
        ):
            status, body = self.server.json("POST", f"/api/admin/compaction/run?{query}")
            self.assertEqual((status, body), (400, {"error": message}), query)

    def test_a_pass_already_running(self) -> None:
        lock = self.s3.engine.maintenance.compaction_lock
        lock.acquire()
        self.addCleanup(lock.release)
        status, body = self.server.json("POST", "/api/admin/compaction/run")
        self.assertEqual((status, body), (409, {"error": "a compaction pass is already running"}))


class ScrubberTests(OpsApiTestCase):
    def test_clean_store(self) -> None:
        self.bucket("bk1")
        for i in range(3):
            self.put("bk1", f"k{i}", os.urandom(2000))  # chunks (not inline)
        status, body = self.server.json("POST", "/api/admin/scrubber/run")
        self.assertEqual(status, 200)
        del body["seconds"]
        self.assertEqual(
            body,
            {
                "blobs_checked": 3,
                "blobs_ok": 3,
                "blobs_corrupted": 0,
                "volumes_scanned": 1,
                "errors": [],
                "bytes_checked": body["bytes_checked"],
            },
        )
        self.assertGreater(body["bytes_checked"], 300)

    def test_damage_is_reported_every_run(self) -> None:
        self.bucket("bk1")
        self.put("bk1", "good", b"g" * 2000)  # chunks (not inline)
        self.put("bk1", "bad", b"b" * 2000)
        version = self.successResultOf(self.s3.engine.objects.open("bk1", "bad"))
        location = version.locations[0]
        path = self.s3.store.segments.path(location.segment)
        with open(path, "r+b") as f:
            f.seek(location.offset + location.length)  # inside the payload
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        for _ in range(2):
            status, body = self.server.json("POST", "/api/admin/scrubber/run")
            self.assertEqual(status, 200)
            self.assertEqual((body["blobs_checked"], body["blobs_ok"]), (2, 1))
            self.assertEqual(body["blobs_corrupted"], 1)
            (error,) = body["errors"]
            self.assertEqual(
                (error["volume_id"], error["offset"]), (location.segment, location.offset)
            )
            self.assertEqual((error["expected_crc"], error["actual_crc"]), (None, None))
            self.assertEqual(error["digest"], location.digest.hex())
        # the first run found it (and its key); the second knew it already
        status, state = self.server.json("GET", "/api/admin/scrubber/status")
        self.assertEqual(state["damaged_chunks"], 1)
        self.assertEqual(state["totals"]["scrub_damaged"], 1)
        self.assertEqual(state["totals"]["scrub_passes"], 2)
        self.assertEqual(state["last_run"]["corrupt"], 1)

    def test_status_shape(self) -> None:
        status, body = self.server.json("GET", "/api/admin/scrubber/status")
        self.assertEqual(status, 200)
        self.assertEqual(body["mode"], "standalone")
        self.assertIs(body["background_scrubber"], True)
        self.assertIsInstance(body["message"], str)
        self.assertEqual(body["last_run"], None)
        self.assertEqual((body["interval_secs"], body["rate_bytes_per_second"]), (600.0, 16 << 20))


class ScrubberOffTests(OpsApiTestCase):
    env = {"S4_SCRUB_ENABLED": "false"}

    def test_status_says_off(self) -> None:
        status, body = self.server.json("GET", "/api/admin/scrubber/status")
        self.assertIs(body["background_scrubber"], False)
        self.assertIn("S4_SCRUB_ENABLED=false", body["message"])


class ServerInfoTests(OpsApiTestCase):
    def test_shape(self) -> None:
        self.s3.clock.advance(1_800_000_000)
        self.server.telemetry.board.started = 1_800_000_000 - 3600
        status, body = self.server.json("GET", "/api/admin/server")
        self.assertEqual(status, 200)
        import s4d

        self.assertEqual(
            body,
            {
                "version": s4d.__version__,
                "data_dir": self.s3.data_dir,
                "region": "us-east-1",
                "workers": 1,
                "processes": 1,
                "duties_pid": None,
                "started_at": "2027-01-15T07:00:00Z",
                "uptime_seconds": 3600,
            },
        )


class HealthTests(OpsApiTestCase):
    def test_ready_until_stopping(self) -> None:
        for path in ("/health", "/minio/health/live", "/minio/health/ready"):
            self.assertEqual(self.s3.request("GET", path, sign=False).status, 200, path)
        self.s3.engine.stop()
        self.assertEqual(self.s3.request("GET", "/minio/health/ready", sign=False).status, 503)
        self.assertEqual(self.s3.request("GET", "/minio/health/live", sign=False).status, 200)


class OpsBodyTests(OpsApiTestCase):
    def test_a_large_body_is_refused_without_keeping_it(self) -> None:
        self.bucket("bk1")
        body = b"x" * ((1 << 20) + 1)
        response = self.server.call("POST", "/api/admin/buckets/bk1/rename", body=body)
        self.assertEqual(response.status, 413)
        self.assertEqual(response.header("content-type"), "application/json")


class LifecycleStatusTests(OpsApiTestCase):
    def test_totals_and_last_pass(self) -> None:
        status, state = self.server.json("GET", "/api/admin/lifecycle/status")
        self.assertEqual((status, state["last_pass"]), (200, None))
        self.assertEqual(state["totals"]["expired"], 0)
        self.bucket("bk1")
        rules = (
            b"<LifecycleConfiguration><Rule><ID>old</ID><Filter><Prefix>logs/</Prefix></Filter>"
            b"<Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration>"
            b"</Rule></LifecycleConfiguration>"
        )
        self.assertEqual(self.s3.request("PUT", "/bk1?lifecycle", rules).status, 200)
        self.put("bk1", "logs/a", b"x")
        self.put("bk1", "keep", b"x")
        self.assertTrue(self.successResultOf(self.s3.engine.lifecycle.run_pass()).complete)
        status, state = self.server.json("GET", "/api/admin/lifecycle/status")
        self.assertEqual(status, 200)
        self.assertEqual((state["totals"]["expired"], state["totals"]["examined"]), (1, 1))
        self.assertEqual(state["last_pass"]["expired"], 1)
        self.assertIs(state["last_pass"]["complete"], True)
