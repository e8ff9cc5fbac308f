"""Tests for :mod:`s4d.auth.sigv2`.

botocore's own SigV2 signers (:class:`~botocore.auth.HmacV1Auth` and
:class:`~botocore.auth.HmacV1QueryAuth`, which s3cmd-style clients match) sign
requests; this module must accept exactly those, and reject them once expired
or altered.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from urllib.parse import quote, urlsplit

from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import sigv2
from s4d.auth.request import SignedRequest
from s4d.errors import S3Error
from tests.auth._support import (
    ACCESS_KEY,
    SECRET_KEY,
    Credentials,
    captured,
    client,
    from_botocore,
    from_url,
)

BASE = "http://127.0.0.1:9000"

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/bucket/key", {}),
    ("GET", "/bucket/" + quote("a b+c%/ü", safe="/~"), {}),
    ("GET", "/", {}),
    ("GET", "/bucket/", {}),
    ("GET", "/bucket/?prefix=a%20b&max-keys=3&marker=x", {}),
    ("GET", "/bucket/?acl", {}),
    ("PUT", "/bucket/k?acl", {"x-amz-acl": "public-read"}),
    ("POST", "/bucket/k?uploads", {"Content-Type": "application/octet-stream"}),
    (
        "PUT",
        "/bucket/k?partNumber=2&uploadId=a%2Fb%2Bc",
        {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="},
    ),
    (
        "GET",
        "/bucket/k?response-content-type=text%2Fplain&versionId=3&response-expires=x",
        {"Range": "bytes=0-1"},
    ),
    ("POST", "/bucket/?delete", {"Content-MD5": "abc=", "Content-Type": "text/xml"}),
    ("PUT", "/bucket/k?tagging&x-id=PutObjectTagging", {}),
    (
        "PUT",
        "/bucket/k",
        {
            "x-amz-meta-b": "  two  ",
            "X-Amz-Meta-A": "one",
            "x-amz-storage-class": "STANDARD",
            "x-amz-meta-s3cmd-attrs": "uid:0/gid:0/mode:33188",
            "Content-Type": "text/plain",
        },
    ),
]


def _header_signed(method: str, path: str, headers: dict[str, str]) -> AWSRequest:
    request = AWSRequest(method=method, url=BASE + path, headers=dict(headers), data=b"")
    HmacV1Auth(BotoCredentials(ACCESS_KEY, SECRET_KEY)).add_auth(request)
    return request


def _query_signed(method: str, path: str, headers: dict[str, str], expires: int = 60) -> AWSRequest:
    request = AWSRequest(method=method, url=BASE + path, headers=dict(headers), data=b"")
    HmacV1QueryAuth(BotoCredentials(ACCESS_KEY, SECRET_KEY), expires=expires).add_auth(request)
    return request


def _resource(url: str) -> str:
    return urlsplit(url).path or "/"


class HeaderAuthTests(SynchronousTestCase):
    """``Authorization: AWS <key>:<signature>``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def test_botocore_requests(self) -> None:
        for method, path, headers in REQUESTS:
            request = _header_signed(method, path, headers)
            req = from_botocore(request)
            result = sigv2.verify_header(req, Credentials(), self.now(), _resource(request.url))
            self.assertEqual(result.access_key, ACCESS_KEY)
            self.assertEqual(result.method, "v2-header")
            self.assertEqual(result.payload_hash, "UNSIGNED-PAYLOAD")
            self.assertIsNone(result.signing_key)

    def test_botocore_client(self) -> None:
        """A boto3 client configured for SigV2, path and virtual-host style."""
        for endpoint, style in (
            ("http://127.0.0.1:9000", "path"),
            ("http://s3.localhost.test:9000", "virtual"),
        ):
            s3 = client(endpoint, signature_version="s3", addressing_style=style)
            for call, params in (
                (s3.put_object, {"Bucket": "bkt", "Key": "a b+ü", "Body": b"x"}),
                (s3.get_object_acl, {"Bucket": "bkt", "Key": "k"}),
                (s3.list_objects, {"Bucket": "bkt", "Prefix": "p q"}),
                (s3.create_multipart_upload, {"Bucket": "bkt", "Key": "k"}),
            ):
                request = captured(call, **params)
                path = urlsplit(request.url).path
                resource = path if style == "path" else "/bkt" + path
                sigv2.verify_header(from_botocore(request), Credentials(), self.now(), resource)

    def test_bad_signature(self) -> None:
        for method, path, headers in REQUESTS:
            request = _header_signed(method, path, headers)
            req = from_botocore(request)
            req.headers["content-type"] = ["evil/type"]
            error = self.assertRaises(
                S3Error,
                sigv2.verify_header,
                req,
                Credentials(),
                self.now(),
                _resource(request.url),
            )
            self.assertEqual(error.code, "SignatureDoesNotMatch")
            self.assertIn("evil/type", error.extra["StringToSign"])

    def test_wrong_resource(self) -> None:
        request = _header_signed("GET", "/bucket/key", {})
        error = self.assertRaises(
            S3Error,
            sigv2.verify_header,
            from_botocore(request),
            Credentials(),
            self.now(),
            "/bucket/other",
        )
        self.assertEqual(error.code, "SignatureDoesNotMatch")

    def test_unknown_key(self) -> None:
        request = _header_signed("GET", "/bucket/key", {})
        error = self.assertRaises(
            S3Error,
            sigv2.verify_header,
            from_botocore(request),
            Credentials({}),
            self.now(),
            "/bucket/key",
        )
        self.assertEqual(error.code, "InvalidAccessKeyId")

    def test_skew(self) -> None:
        request = _header_signed("GET", "/bucket/key", {})
        req = from_botocore(request)
        sigv2.verify_header(req, Credentials(), self.now() + timedelta(minutes=14), "/bucket/key")
        error = self.assertRaises(
            S3Error,
            sigv2.verify_header,
            req,
            Credentials(),
            self.now() + timedelta(minutes=16),
            "/bucket/key",
        )
        self.assertEqual(error.code, "RequestTimeTooSkewed")

    def test_x_amz_date_empties_the_date_line(self) -> None:
        """S3 (and s3cmd) sign an empty date when ``x-amz-date`` is sent."""
        stamp = formatdate(time.time(), usegmt=True)
        req = SignedRequest.from_wire(
            "PUT", b"/b/k", {"x-amz-date": [stamp], "host": ["h"], "content-type": ["a/b"]}
        )
        to_sign = sigv2.string_to_sign(req, "/b/k", "")
        self.assertEqual(to_sign, f"PUT\n\na/b\n\nx-amz-date:{stamp}\n/b/k")
        req.headers["authorization"] = [sigv2.sign_header(req, ACCESS_KEY, SECRET_KEY, "/b/k")]
        sigv2.verify_header(req, Credentials(), self.now(), "/b/k")

    def test_botocore_with_x_amz_date(self) -> None:
        """botocore signs its Date line even with ``x-amz-date``: accepted too."""
        stamp = formatdate(time.time(), usegmt=True)
        request = _header_signed("GET", "/bucket/key", {"x-amz-date": stamp})
        sigv2.verify_header(from_botocore(request), Credentials(), self.now(), "/bucket/key")

    def test_malformed(self) -> None:
        for value in ("AWS", "AWS nocolon", "AWS :sig", "AWS key:", "Basic a:b"):
            req = SignedRequest.from_wire(
                "GET", b"/", {"authorization": [value], "date": [formatdate(usegmt=True)]}
            )
            error = self.assertRaises(
                S3Error, sigv2.verify_header, req, Credentials(), self.now(), "/"
            )
            self.assertEqual(error.code, "AccessDenied", value)

    def test_missing_date(self) -> None:
        req = SignedRequest.from_wire("GET", b"/", {"authorization": [f"AWS {ACCESS_KEY}:x"]})
        error = self.assertRaises(S3Error, sigv2.verify_header, req, Credentials(), self.now(), "/")
        self.assertEqual(error.code, "AccessDenied")

    def test_canonical_resource(self) -> None:
        self.assertEqual(
            sigv2.canonical_resource(
                "/b/k", b"x-id=Y&versionId=3&acl&uploadId=a%2Fb&prefix=p&response-expires="
            ),
            "/b/k?acl&response-expires=&uploadId=a/b&versionId=3",
        )
        self.assertEqual(sigv2.canonical_resource(b"/b/", b"prefix=x"), "/b/")


class QueryAuthTests(SynchronousTestCase):
    """``AWSAccessKeyId``, ``Expires`` and ``Signature`` in the query."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def test_botocore_requests(self) -> None:
        for method, path, headers in REQUESTS:
            request = _query_signed(method, path, headers)
            # botocore moves x-amz-*, Content-Type and Content-MD5 into the URL;
            # a client following the URL sends no such headers.
            req = from_url(method, request.url)
            result = sigv2.verify_presigned(req, Credentials(), self.now(), _resource(request.url))
            self.assertEqual(result.method, "v2-presigned")
            self.assertEqual(result.access_key, ACCESS_KEY)

    def test_botocore_client_presign(self) -> None:
        """boto3's default presigner for a custom endpoint is SigV2."""
        s3 = client(signature_version="s3")
        for key in ("k", "a b+c", "ü/%/x"):
            url = s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": "bkt", "Key": key, "ResponseContentType": "text/plain"},
            )
            self.assertIn("AWSAccessKeyId=", url)
            sigv2.verify_presigned(from_url("GET", url), Credentials(), self.now(), _resource(url))

    def test_expired(self) -> None:
        request = _query_signed("GET", "/bucket/key", {}, expires=60)
        req = from_url("GET", request.url)
        sigv2.verify_presigned(
            req, Credentials(), self.now() + timedelta(seconds=50), "/bucket/key"
        )
        error = self.assertRaises(
            S3Error,
            sigv2.verify_presigned,
            req,
            Credentials(),
            self.now() + timedelta(seconds=62),
            "/bucket/key",
        )
        self.assertEqual(error.code, "AccessDenied")
        self.assertEqual(error.message, "Request has expired")

    def test_bad_signature(self) -> None:
        request = _query_signed("GET", "/bucket/key", {})
        for url in (
            request.url.replace("/bucket/key", "/bucket/kez"),
            request.url.replace("Expires=", "Expires=1"),
            request.url + "&acl",
        ):
            error = self.assertRaises(
                S3Error,
                sigv2.verify_presigned,
                from_url("GET", url),
                Credentials(),
                self.now(),
                _resource(url),
            )
            self.assertIn(error.code, ("SignatureDoesNotMatch",), url)

    def test_missing_parameters(self) -> None:
        req = from_url("GET", BASE + "/b/k?AWSAccessKeyId=x&Signature=y")
        error = self.assertRaises(
            S3Error, sigv2.verify_presigned, req, Credentials(), self.now(), "/b/k"
        )
        self.assertEqual(error.code, "AccessDenied")

    def test_unknown_key(self) -> None:
        request = _query_signed("GET", "/bucket/key", {})
        error = self.assertRaises(
            S3Error,
            sigv2.verify_presigned,
            from_url("GET", request.url),
            Credentials({}),
            self.now(),
            "/bucket/key",
        )
        self.assertEqual(error.code, "InvalidAccessKeyId")
