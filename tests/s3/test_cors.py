"""CORS: Put/Get/DeleteBucketCors, preflights, and the headers of actual requests.

Strategy: the real site in memory (:class:`~tests.s3.memory.MemoryS3`) takes
raw requests, so what a browser sends (``OPTIONS`` without credentials, with
a presigned query signed for another method, ``Origin`` on actual requests
that succeed or fail) is sent byte for byte and the answer's headers checked.
The per-process cache of rules is tested with an injected monotonic clock:
a change made through another process (written straight into the store here)
is seen once the entry's second is over, one made through this process at
once. A real browser obeys these answers in
``tests/clients/test_browser_cors.py``.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from s4d.engine import CORS, ConfigCache, CorsRule, encode_cors
from s4d.features.buckets import put_bucket_config
from tests.s3.memory import MemoryResponse, MemoryS3

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def cors(*rules: str) -> bytes:
    return f'<CORSConfiguration xmlns="{NS}">{"".join(rules)}</CORSConfiguration>'.encode()


def cors_rule(methods: list[str], origins: list[str], extra: str = "") -> str:
    body = "".join(f"<AllowedMethod>{m}</AllowedMethod>" for m in methods)
    body += "".join(f"<AllowedOrigin>{o}</AllowedOrigin>" for o in origins)
    return f"<CORSRule>{body}{extra}</CORSRule>"


RULES = cors(
    cors_rule(["GET", "HEAD"], ["https://app.example"],
              "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>"
              "<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-version-id</ExposeHeader>"
              "<MaxAgeSeconds>600</MaxAgeSeconds>"),
    cors_rule(["PUT"], ["http://*.uploads.example"], "<AllowedHeader>*</AllowedHeader>"),
    cors_rule(["GET"], ["*"]),
)  # fmt: skip


class CorsDocumentTests(TestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def assertRefused(self, body: bytes, code: str, message: str = "") -> None:
        got = self.s3.request("PUT", "/bkt?cors", body)
        self.assertEqual((got.status, got.code()), (400, code), got.body)
        if message:
            self.assertIn(message.replace('"', "&quot;").encode(), got.body)

    def test_round_trip_and_delete(self) -> None:
        got = self.s3.request("GET", "/bkt?cors")
        self.assertEqual((got.status, got.code()), (404, "NoSuchCORSConfiguration"))
        self.assertEqual(self.s3.request("PUT", "/bkt?cors", RULES).status, 200)
        text = self.s3.request("GET", "/bkt?cors").body.decode()
        self.assertIn(
            "<CORSRule><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type"
            "</AllowedHeader><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>"
            "<AllowedOrigin>https://app.example</AllowedOrigin><ExposeHeader>ETag</ExposeHeader>"
            "<ExposeHeader>x-amz-version-id</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>"
            "</CORSRule>",
            text,
        )
        self.assertEqual(self.s3.request("DELETE", "/bkt?cors").status, 204)
        self.assertEqual(self.s3.request("GET", "/bkt?cors").status, 404)
        self.assertEqual(self.s3.request("DELETE", "/bkt?cors").status, 204)
        self.assertEqual(self.s3.request("GET", "/nobkt?cors").code(), "NoSuchBucket")

    def test_refusals_as_aws(self) -> None:
        self.assertRefused(
            cors(cors_rule(["PATCH"], ["*"])),
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is PATCH",
        )
        self.assertRefused(
            cors(cors_rule(["GET"], ["http://*.a*.example"])),
            "InvalidRequest",
            'AllowedOrigin "http://*.a*.example" can not have more than one wildcard.',
        )
        self.assertRefused(
            cors(cors_rule(["GET"], ["*"], "<AllowedHeader>x-*-*</AllowedHeader>")),
            "InvalidRequest",
        )
        self.assertRefused(
            cors(cors_rule(["GET"], ["*"], "<ExposeHeader>*</ExposeHeader>")), "InvalidRequest"
        )
        self.assertRefused(cors(cors_rule([], ["*"])), "MalformedXML")
        self.assertRefused(cors(cors_rule(["GET"], [])), "MalformedXML")
        self.assertRefused(
            cors(cors_rule(["GET"], ["*"], "<MaxAgeSeconds>soon</MaxAgeSeconds>")), "MalformedXML"
        )
        self.assertRefused(cors(cors_rule(["GET"], ["*"], "<Bogus/>")), "MalformedXML")
        self.assertRefused(cors(), "MalformedXML")
        self.assertRefused(cors(*[cors_rule(["GET"], ["*"])] * 101), "InvalidRequest")
        self.assertEqual(self.s3.request("GET", "/bkt?cors").status, 404)


class CorsEnforcementTests(TestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt/obj", b"data").status, 200)
        self.assertEqual(self.s3.request("PUT", "/bkt?cors", RULES).status, 200)

    def preflight(self, target: str, **headers: str) -> MemoryResponse:
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        return self.s3.request("OPTIONS", target, headers=named, sign=False)

    def test_preflight_allowed(self) -> None:
        got = self.preflight(
            "/bkt/obj",
            origin="https://app.example",
            access_control_request_method="GET",
            access_control_request_headers="X-Amz-Date, content-type",
        )
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(got.header("access-control-allow-origin"), "https://app.example")
        self.assertEqual(got.header("access-control-allow-methods"), "GET, HEAD")
        self.assertEqual(got.header("access-control-allow-headers"), "X-Amz-Date, content-type")
        self.assertEqual(got.header("access-control-max-age"), "600")
        self.assertEqual(got.header("access-control-allow-credentials"), "true")
        self.assertIn("Origin", got.header("vary") or "")
        wild = self.preflight(
            "/bkt/obj",
            origin="http://b.uploads.example",
            access_control_request_method="PUT",
            access_control_request_headers="x-anything",
        )
        self.assertEqual(wild.header("access-control-allow-origin"), "http://b.uploads.example")
        anyone = self.preflight("/bkt", origin="null", access_control_request_method="GET")
        self.assertEqual(anyone.status, 200)
        self.assertEqual(anyone.header("access-control-allow-origin"), "*")
        self.assertIsNone(anyone.header("access-control-allow-credentials"))

    def test_preflight_refused(self) -> None:
        cases = [
            ({}, 400, "BadRequest"),
            ({"origin": "https://app.example"}, 400, "BadRequest"),
            ({"origin": "https://app.example", "access_control_request_method": "PATCH"}, 400,
             "BadRequest"),
            ({"origin": "https://evil.example", "access_control_request_method": "PUT"}, 403,
             "AccessForbidden"),
            ({"origin": "http://uploads.example", "access_control_request_method": "PUT"}, 403,
             "AccessForbidden"),
            ({"origin": "https://app.example", "access_control_request_method": "GET",
              "access_control_request_headers": "authorization"}, 403, "AccessForbidden"),
        ]  # fmt: skip
        for headers, status, code in cases:
            got = self.preflight("/bkt/obj", **headers)
            self.assertEqual((got.status, got.code()), (status, code), headers)
            self.assertIsNone(got.header("access-control-allow-origin"))

    def test_preflight_without_rules(self) -> None:
        self.assertEqual(self.s3.request("PUT", "/plain").status, 200)
        got = self.preflight(
            "/plain/x", origin="https://app.example", access_control_request_method="GET"
        )
        self.assertEqual((got.status, got.code()), (403, "AccessForbidden"))
        self.assertIn(b"CORS is not enabled for this bucket", got.body)
        self.assertEqual(self.preflight("/plain/x").status, 400)

    def test_preflight_ignores_signatures_and_subresources(self) -> None:
        """A presigned URL's query (signed for GET, wrong or expired) never refuses a preflight."""
        query = (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDX%2F20200101%2Fus-east-1%2Fs3"
            "%2Faws4_request&X-Amz-Date=20200101T000000Z&X-Amz-Expires=1&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=" + "0" * 64
        )
        for target in (
            f"/bkt/obj?{query}",
            "/bkt/obj?uploads",
            "/bkt?AWSAccessKeyId=x&Signature=y",
        ):
            got = self.preflight(
                target, origin="https://app.example", access_control_request_method="GET"
            )
            self.assertEqual(got.status, 200, (target, got.body))

    def test_actual_requests_on_success_and_error(self) -> None:
        origin = {"origin": "https://app.example"}
        ok = self.s3.request("GET", "/bkt/obj", headers=origin)
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.header("access-control-allow-origin"), "https://app.example")
        self.assertEqual(ok.header("access-control-expose-headers"), "ETag, x-amz-version-id")
        missing = self.s3.request("GET", "/bkt/none", headers=origin)
        self.assertEqual(missing.status, 404)
        self.assertEqual(missing.header("access-control-allow-origin"), "https://app.example")
        anonymous = self.s3.request("GET", "/bkt/obj", headers=origin, sign=False)
        self.assertEqual(anonymous.status, 403)
        self.assertEqual(anonymous.header("access-control-allow-origin"), "https://app.example")
        head = self.s3.request("HEAD", "/bkt/obj", headers=origin)
        self.assertEqual(head.header("access-control-allow-origin"), "https://app.example")
        # PUT is allowed only for *.uploads.example; GET for any origin by the last rule
        put = self.s3.request("PUT", "/bkt/new", b"x", headers=origin)
        self.assertEqual(put.status, 200)
        self.assertIsNone(put.header("access-control-allow-origin"))
        other = self.s3.request("GET", "/bkt/obj", headers={"origin": "https://other.example"})
        self.assertEqual(other.header("access-control-allow-origin"), "*")
        self.assertIsNone(self.s3.request("GET", "/bkt/obj").header("access-control-allow-origin"))

    def test_refused_before_the_body_still_carries_cors(self) -> None:
        """An upload refused at header time (a bad signature) is answered with the cached rules."""
        self.preflight(
            "/bkt/x", origin="http://a.uploads.example", access_control_request_method="PUT"
        )
        conn = self.s3.connect()
        head = self.s3.head_block(
            "PUT", "/bkt/x", {"origin": "http://a.uploads.example", "content-length": "5"}
        ).replace(b"Signature=", b"Signature=0")
        conn.send(head)
        got = conn.response()
        assert got is not None
        self.assertEqual(got.status, 403)
        self.assertEqual(got.header("access-control-allow-origin"), "http://a.uploads.example")

    def test_changes_are_seen_at_once_in_this_process(self) -> None:
        headers = {"origin": "https://app.example", "access_control_request_method": "GET"}
        self.assertEqual(self.preflight("/bkt/obj", **headers).status, 200)
        self.assertEqual(self.s3.request("DELETE", "/bkt?cors").status, 204)
        self.assertEqual(self.preflight("/bkt/obj", **headers).status, 403)
        only_put = cors(cors_rule(["PUT"], ["https://app.example"]))
        self.assertEqual(self.s3.request("PUT", "/bkt?cors", only_put).status, 200)
        self.assertEqual(self.preflight("/bkt/obj", **headers).status, 403)
        headers["access_control_request_method"] = "PUT"
        self.assertEqual(self.preflight("/bkt/obj", **headers).status, 200)

    def test_a_deleted_bucket_takes_its_rules_along(self) -> None:
        headers = {"origin": "https://app.example", "access_control_request_method": "GET"}
        self.assertEqual(self.preflight("/bkt/obj", **headers).status, 200)
        self.assertEqual(self.s3.request("DELETE", "/bkt/obj").status, 204)
        self.assertEqual(self.s3.request("DELETE", "/bkt").status, 204)
        got = self.preflight("/bkt/obj", **headers)
        self.assertIn(b"Bucket not found", got.body)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        got = self.preflight("/bkt/obj", **headers)
        self.assertIn(b"CORS is not enabled for this bucket", got.body)
        self.assertEqual(self.s3.request("GET", "/bkt?cors").code(), "NoSuchCORSConfiguration")


class ConfigCacheTests(TestCase):
    """What other processes change is seen within the cache's second."""

    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.now = 100.0
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        self.cache = ConfigCache(self.s3.engine.core, ttl=1.0, monotonic=lambda: self.now)

    def read(self, bucket: str = "bkt") -> bytes | None:
        found = self.cache.get(bucket, CORS)
        if isinstance(found, Deferred):
            results: list[bytes | None] = []
            found.addCallback(results.append)
            return results[0]
        return found

    def write_elsewhere(self, value: bytes | None) -> None:
        """A change as another worker process makes it: straight into the store."""
        self.s3.store.commit(lambda t: put_bucket_config(t, "bkt", CORS, value))

    def test_fresh_for_a_second_then_read_again(self) -> None:
        self.assertIsNone(self.read())
        document = encode_cors([CorsRule(("GET",), ("*",))])
        self.write_elsewhere(document)
        self.now += 0.5
        self.assertIsNone(self.cache.get("bkt", CORS))  # cached, and not a Deferred
        self.now += 0.6
        self.assertEqual(self.read(), document)
        self.cache.forget("bkt", CORS)
        self.write_elsewhere(None)
        self.assertIsNone(self.read())
        self.assertIsNone(self.read("nobucket"))

    def test_bounded(self) -> None:
        self.cache.max_entries = 3
        for i in range(10):
            self.read(f"b{i}")
        self.assertEqual(len(self.cache._entries), 3)
