"""The S3 API against a real server in this process.

Strategy: every test starts the real stack (streaming site, Klein app, engine,
store on a temp dir) on a loopback port, then drives it with boto3 — run in a
thread, since boto3 blocks — or with raw signed HTTP where the exact wire
matters (100-continue, early rejection, aws-chunked framing, virtual hosts).
"""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from s4d.auth import sigv2
from s4d.auth.chunked import encode_aws_chunked
from s4d.auth.sigv4 import signing_key
from s4d.util import checksums as ck
from tests.s3 import rawhttp
from tests.s3.server import InProcessServer, boto3_client


def read_object(s3: Any, **kwargs: Any) -> dict[str, Any]:
    """get_object with the body read in the calling (non-reactor) thread, as ``Data``."""
    got = s3.get_object(**kwargs)
    got["Data"] = got["Body"].read()
    return got  # type: ignore[no-any-return]


def error_code(e: ClientError) -> str:
    return e.response["Error"]["Code"]  # type: ignore[no-any-return]


class S3TestCase(TestCase):
    """Starts a server per test; ``self.call(f)`` runs blocking client code in a thread."""

    server_options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.server = InProcessServer(**self.server_options)
        self.url = self.server.start()
        self.port = self.server.port.getHost().port
        self.s3 = boto3_client(self.url)

    def tearDown(self) -> Any:
        return self.server.stop()

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        return deferToThread(f, *args, **kwargs)

    def raw(self, *args: Any, **kwargs: Any) -> Any:
        return deferToThread(rawhttp.request, self.port, *args, **kwargs)

    async def client_error(self, f: Any, *args: Any, **kwargs: Any) -> ClientError:
        try:
            await self.call(f, *args, **kwargs)
        except ClientError as e:
            return e
        self.fail("expected a ClientError")


class BucketTests(S3TestCase):
    async def test_create_list_head_delete(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="alpha")
        names = (await self.call(self.s3.list_buckets))["Buckets"]
        self.assertEqual([b["Name"] for b in names], ["alpha"])
        await self.call(self.s3.head_bucket, Bucket="alpha")
        location = await self.call(self.s3.get_bucket_location, Bucket="alpha")
        self.assertIsNone(location.get("LocationConstraint"))
        await self.call(self.s3.delete_bucket, Bucket="alpha")
        e = await self.client_error(self.s3.head_bucket, Bucket="alpha")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    async def test_create_twice_in_us_east_1_succeeds(self) -> None:
        """AWS's legacy behaviour in us-east-1: re-creating a bucket you own is 200 OK.

        (Before, this asserted BucketAlreadyOwnedByYou, which AWS answers in every
        region except us-east-1; see OtherRegionBucketTests.)
        """
        await self.call(self.s3.create_bucket, Bucket="alpha")
        await self.call(self.s3.put_object, Bucket="alpha", Key="k", Body=b"kept")
        again = await self.call(self.s3.create_bucket, Bucket="alpha")
        self.assertEqual(again["ResponseMetadata"]["HTTPStatusCode"], 200)
        got = await self.call(read_object, self.s3, Bucket="alpha", Key="k")
        self.assertEqual(got["Data"], b"kept")

    async def test_bad_names_and_locations(self) -> None:
        for name in ("ab", "Upper", "a..b", "192.168.1.1", "-start", "x" * 64):
            status, _, body = await self.raw("PUT", f"/{name}")
            self.assertEqual(status, 400, name)
            self.assertIn(b"InvalidBucketName", body)
        e = await self.client_error(
            self.s3.create_bucket,
            Bucket="alpha",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        self.assertEqual(error_code(e), "InvalidLocationConstraint")
        status, _, body = await self.raw("PUT", "/alpha", body=b"<notxml")
        self.assertEqual((status, b"MalformedXML" in body), (400, True))

    async def test_delete_non_empty(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="alpha")
        await self.call(self.s3.put_object, Bucket="alpha", Key="k", Body=b"x")
        e = await self.client_error(self.s3.delete_bucket, Bucket="alpha")
        self.assertEqual(error_code(e), "BucketNotEmpty")

    async def test_unimplemented_subresource_is_not_destructive(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="alpha")
        await self.call(self.s3.put_object, Bucket="alpha", Key="k", Body=b"x")
        for method, sub in (
            ("PUT", "website"),
            ("DELETE", "website"),
            ("POST", "restore"),
            ("DELETE", "replication"),
        ):
            status, headers, body = await self.raw(method, "/alpha", query=[(sub, "")])
            self.assertEqual(status, 501, (method, sub))
            self.assertIn(b"<Code>NotImplemented</Code>", body)
            self.assertIn("x-amz-request-id", headers)
        status, _, body = await self.raw("DELETE", "/alpha/k", query=[("restore", "")])
        self.assertEqual(status, 501)
        got = await self.call(read_object, self.s3, Bucket="alpha", Key="k")
        self.assertEqual(got["Data"], b"x")

    async def test_absent_configurations(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="alpha")
        for sub, code in (
            ("policy", "NoSuchBucketPolicy"),
            ("cors", "NoSuchCORSConfiguration"),
            ("lifecycle", "NoSuchLifecycleConfiguration"),
        ):
            status, _, body = await self.raw("GET", "/alpha", query=[(sub, "")])
            self.assertEqual(status, 404)
            self.assertIn(f"<Code>{code}</Code>".encode(), body)

    async def test_acl_canned(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="alpha")
        acl = await self.call(self.s3.get_bucket_acl, Bucket="alpha")
        self.assertEqual(acl["Grants"][0]["Permission"], "FULL_CONTROL")
        await self.call(self.s3.put_bucket_acl, Bucket="alpha", ACL="private")
        await self.call(self.s3.put_bucket_acl, Bucket="alpha", ACL="public-read")
        acl = await self.call(self.s3.get_bucket_acl, Bucket="alpha")
        groups = [g["Grantee"].get("URI") for g in acl["Grants"]]
        self.assertIn("http://acs.amazonaws.com/groups/global/AllUsers", groups)
        e = await self.client_error(self.s3.put_bucket_acl, Bucket="alpha", ACL="aws-exec-read")
        self.assertEqual(error_code(e), "InvalidArgument")


class OtherRegionBucketTests(S3TestCase):
    server_options = {"region": "eu-west-1"}

    async def test_create_twice_is_already_owned(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="alpha")
        e = await self.client_error(self.s3.create_bucket, Bucket="alpha")
        self.assertEqual(error_code(e), "BucketAlreadyOwnedByYou")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 409)


class ObjectTests(S3TestCase):
    def setUp(self) -> None:
        super().setUp()
        return self.call(self.s3.create_bucket, Bucket="bkt")

    async def test_round_trip_and_metadata(self) -> None:
        body = os.urandom(100_000)
        put = await self.call(
            self.s3.put_object,
            Bucket="bkt",
            Key="dir/obj",
            Body=body,
            ContentType="text/x-test",
            Metadata={"Mixed-Case": "v1", "sp": "a b  c"},
            CacheControl="no-cache",
            ContentDisposition="attachment",
            ContentLanguage="de",
        )
        self.assertEqual(put["ETag"], f'"{hashlib.md5(body).hexdigest()}"')
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="dir/obj")
        self.assertEqual(got["Data"], body)
        self.assertEqual(got["ContentType"], "text/x-test")
        self.assertEqual(got["Metadata"], {"mixed-case": "v1", "sp": "a b  c"})
        self.assertEqual(
            (got["CacheControl"], got["ContentDisposition"], got["ContentLanguage"]),
            ("no-cache", "attachment", "de"),
        )
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="dir/obj")
        self.assertEqual(head["ContentLength"], len(body))
        self.assertEqual(head["ETag"], put["ETag"])

    async def test_last_modified_same_instant_in_header_and_listing(self) -> None:
        await self.call(self.s3.put_object, Bucket="bkt", Key="k", Body=b"x")
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="k")
        listed = (await self.call(self.s3.list_objects_v2, Bucket="bkt"))["Contents"][0]
        self.assertEqual(head["LastModified"], listed["LastModified"].replace(microsecond=0))
        status, _, body = await self.raw("GET", "/bkt", query=[("list-type", "2")])
        self.assertRegex(body.decode(), r"<LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z<")

    async def test_odd_keys(self) -> None:
        keys = [
            "a//b/",
            "x/./y",
            "../up",
            "sp ace+plus",
            "pct%2Fx",
            "ünï/çødé",
            "#hash?q",
            "trail/",
        ]
        for key in keys:
            await self.call(self.s3.put_object, Bucket="bkt", Key=key, Body=key.encode())
        for key in keys:
            got = await self.call(read_object, self.s3, Bucket="bkt", Key=key)
            self.assertEqual(got["Data"], key.encode(), key)
        listed = await self.call(self.s3.list_objects_v2, Bucket="bkt")
        self.assertEqual(
            [o["Key"] for o in listed["Contents"]], sorted(keys, key=lambda k: k.encode())
        )
        files = [f for _, _, fs in os.walk(self.server.data_dir) for f in fs]
        self.assertFalse([f for f in files if "ace" in f or "hash" in f])

    async def test_missing(self) -> None:
        e = await self.client_error(read_object, self.s3, Bucket="bkt", Key="nope")
        self.assertEqual(error_code(e), "NoSuchKey")
        e = await self.client_error(read_object, self.s3, Bucket="nobucket", Key="k")
        self.assertEqual(error_code(e), "NoSuchBucket")
        status, headers, body = await self.raw("HEAD", "/bkt/nope")
        self.assertEqual((status, body), (404, b""))
        self.assertIn("x-amz-request-id", headers)
        status, _, body = await self.raw("GET", "/bkt/nope")
        self.assertIn(b"<RequestId>", body)
        self.assertIn(b"<Key>nope</Key>", body)

    async def test_ranges(self) -> None:
        body = os.urandom(10_000_000)
        await self.call(self.s3.put_object, Bucket="bkt", Key="r", Body=body)
        for spec, want in (
            ("bytes=0-0", body[:1]),
            ("bytes=-100", body[-100:]),
            ("bytes=9999990-", body[9999990:]),
            ("bytes=4194300-4194310", body[4194300:4194311]),
            ("bytes=5-99999999", body[5:]),
        ):
            got = await self.call(read_object, self.s3, Bucket="bkt", Key="r", Range=spec)
            self.assertEqual(got["Data"], want, spec)
            self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206)
        e = await self.client_error(
            read_object, self.s3, Bucket="bkt", Key="r", Range="bytes=10000000-"
        )
        self.assertEqual(error_code(e), "InvalidRange")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 416)

    async def test_conditional_get(self) -> None:
        put = await self.call(self.s3.put_object, Bucket="bkt", Key="c", Body=b"data")
        etag = put["ETag"]
        e = await self.client_error(read_object, self.s3, Bucket="bkt", Key="c", IfNoneMatch=etag)
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 304)
        e = await self.client_error(read_object, self.s3, Bucket="bkt", Key="c", IfMatch='"0000"')
        self.assertEqual(error_code(e), "PreconditionFailed")
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="c", IfMatch=etag)
        self.assertEqual(got["Data"], b"data")
        future = datetime.now(UTC) + timedelta(days=1)
        e = await self.client_error(
            read_object, self.s3, Bucket="bkt", Key="c", IfModifiedSince=future
        )
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 304)
        past = datetime.now(UTC) - timedelta(days=1)
        e = await self.client_error(
            read_object, self.s3, Bucket="bkt", Key="c", IfUnmodifiedSince=past
        )
        self.assertEqual(error_code(e), "PreconditionFailed")

    async def test_conditional_put(self) -> None:
        await self.call(self.s3.put_object, Bucket="bkt", Key="c", Body=b"one", IfNoneMatch="*")
        e = await self.client_error(
            self.s3.put_object, Bucket="bkt", Key="c", Body=b"two", IfNoneMatch="*"
        )
        self.assertEqual(error_code(e), "PreconditionFailed")
        e = await self.client_error(
            self.s3.put_object, Bucket="bkt", Key="c", Body=b"two", IfMatch='"bad"'
        )
        self.assertEqual(error_code(e), "PreconditionFailed")
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="c")
        self.assertEqual(got["Data"], b"one")

    async def test_content_md5_mismatch_stores_nothing(self) -> None:
        import base64

        bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        e = await self.client_error(
            self.s3.put_object, Bucket="bkt", Key="m", Body=b"data", ContentMD5=bad
        )
        self.assertEqual(error_code(e), "BadDigest")
        e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="m")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    async def test_server_side_encryption_is_refused_and_stores_nothing(self) -> None:
        for key, options in (
            ("sse-s3", {"ServerSideEncryption": "AES256"}),
            ("sse-kms", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k"}),
            ("sse-c", {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}),
        ):
            e = await self.client_error(
                self.s3.put_object, Bucket="bkt", Key=key, Body=b"secret", **options
            )
            self.assertEqual(error_code(e), "NotImplemented", key)
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 501, key)
            e = await self.client_error(self.s3.head_object, Bucket="bkt", Key=key)
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, key)

    async def test_payload_sha256_mismatch(self) -> None:
        status, _, body = await self.raw(
            "PUT", "/bkt/s", body=b"actual", payload_hash=hashlib.sha256(b"claimed").hexdigest()
        )
        self.assertEqual(status, 400)
        self.assertIn(b"XAmzContentSHA256Mismatch", body)

    async def test_copy(self) -> None:
        await self.call(
            self.s3.put_object, Bucket="bkt", Key="src", Body=b"payload", Metadata={"a": "1"}
        )
        await self.call(
            self.s3.copy_object, Bucket="bkt", Key="dst", CopySource={"Bucket": "bkt", "Key": "src"}
        )
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="dst")
        self.assertEqual((got["Data"], got["Metadata"]), (b"payload", {"a": "1"}))
        await self.call(
            self.s3.copy_object,
            Bucket="bkt",
            Key="src",
            CopySource={"Bucket": "bkt", "Key": "src"},
            Metadata={"mtime": "123"},
            MetadataDirective="REPLACE",
        )
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="src")
        self.assertEqual(head["Metadata"], {"mtime": "123"})
        e = await self.client_error(
            self.s3.copy_object, Bucket="bkt", Key="src", CopySource={"Bucket": "bkt", "Key": "src"}
        )
        self.assertEqual(error_code(e), "InvalidRequest")
        e = await self.client_error(
            self.s3.copy_object,
            Bucket="bkt",
            Key="x",
            CopySource={"Bucket": "bkt", "Key": "src"},
            CopySourceIfMatch='"nope"',
        )
        self.assertEqual(error_code(e), "PreconditionFailed")

    async def test_delete_objects(self) -> None:
        for i in range(5):
            await self.call(self.s3.put_object, Bucket="bkt", Key=f"d/{i}", Body=b"x")
        result = await self.call(
            self.s3.delete_objects,
            Bucket="bkt",
            Delete={"Objects": [{"Key": f"d/{i}"} for i in range(5)] + [{"Key": "absent"}]},
        )
        self.assertEqual(len(result["Deleted"]), 6)
        quiet = await self.call(
            self.s3.delete_objects, Bucket="bkt", Delete={"Objects": [{"Key": "x"}], "Quiet": True}
        )
        self.assertNotIn("Deleted", quiet)
        listed = await self.call(self.s3.list_objects_v2, Bucket="bkt")
        self.assertEqual(listed["KeyCount"], 0)
        too_many = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1001))
        body = f"<Delete>{too_many}</Delete>".encode()
        status, _, data = await self.raw(
            "POST",
            "/bkt",
            query=[("delete", "")],
            body=body,
            headers={"Content-MD5": _md5_b64(body)},
        )
        self.assertEqual(status, 400)
        self.assertIn(b"MalformedXML", data)

    async def test_presigned_get(self) -> None:
        await self.call(self.s3.put_object, Bucket="bkt", Key="p k", Body=b"presigned")
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "p k"})
        data = await self.call(lambda: urllib.request.urlopen(url).read())
        self.assertEqual(data, b"presigned")
        bad = url.replace("Signature=", "Signature=0")
        e = await self.call(_http_error, bad)
        self.assertEqual(e, 403)


class AuthTests(S3TestCase):
    async def test_wrong_secret_and_key(self) -> None:
        status, _, body = await self.raw("GET", "/", secret="wrong")
        self.assertEqual(status, 403)
        self.assertIn(b"SignatureDoesNotMatch", body)
        self.assertIn(b"<StringToSign>", body)
        status, _, body = await self.raw("GET", "/", access_key="NOPE")
        self.assertIn(b"InvalidAccessKeyId", body)
        status, _, body = await self.raw("GET", "/", sign=False)
        self.assertEqual(status, 403)
        self.assertIn(b"AccessDenied", body)

    async def test_skew(self) -> None:
        old = datetime.now(UTC) - timedelta(minutes=20)
        status, _, body = await self.raw("GET", "/", now=old)
        self.assertEqual(status, 403)
        self.assertIn(b"RequestTimeTooSkewed", body)

    async def test_rejected_upload_answers_before_body(self) -> None:
        """A bad signature with Expect: 100-continue gets its 403 without a 100 first."""
        await self.call(self.s3.create_bucket, Bucket="bkt")
        host = f"127.0.0.1:{self.port}"
        headers = rawhttp.signed_headers(
            host,
            "PUT",
            "/bkt/big",
            headers={"expect": "100-continue", "content-length": "1048576"},
            payload_hash="UNSIGNED-PAYLOAD",
            secret="wrong",
        )
        head = (
            "PUT /bkt/big HTTP/1.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        )
        reply = await self.call(rawhttp.send_raw, self.port, head.encode())
        self.assertTrue(reply.startswith(b"HTTP/1.1 403"), reply[:100])
        self.assertNotIn(b"100 Continue", reply)
        e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="big")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    async def test_expect_continue_upload(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="bkt")
        body = b"z" * 5000
        host = f"127.0.0.1:{self.port}"
        headers = rawhttp.signed_headers(
            host,
            "PUT",
            "/bkt/ok",
            headers={"expect": "100-continue", "content-length": str(len(body))},
            body=body,
        )
        head = "PUT /bkt/ok HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += "connection: close\r\n\r\n"
        reply = await self.call(rawhttp.send_raw, self.port, head.encode(), body)
        self.assertTrue(reply.startswith(b"HTTP/1.1 100 Continue"), reply[:60])
        self.assertIn(b"HTTP/1.1 200", reply)


class ChunkedUploadTests(S3TestCase):
    """aws-chunked bodies in every mode, with Content-Length or inside chunked transfer coding."""

    def setUp(self) -> None:
        super().setUp()
        return self.call(self.s3.create_bucket, Bucket="bkt")

    def _signed_chunked(
        self,
        mode: str,
        data: bytes,
        trailer: bool,
        key: str,
        transfer_chunked: bool = False,
        tamper: bool = False,
    ) -> tuple[bytes, bytes]:
        import base64
        import zlib

        now = datetime.now(UTC)
        host = f"127.0.0.1:{self.port}"
        extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
        trailers = None
        if trailer:
            crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
            extra["x-amz-trailer"] = "x-amz-checksum-crc32"
            trailers = {"x-amz-checksum-crc32": crc}
        headers = rawhttp.signed_headers(
            host, "PUT", f"/bkt/{key}", headers=extra, payload_hash=mode, now=now
        )
        amz_date = headers["x-amz-date"]
        scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
        seed = headers["authorization"].rsplit("Signature=", 1)[1]
        pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
        body = encode_aws_chunked(
            pieces,
            mode,
            signing_key=signing_key(rawhttp.SECRET_KEY, amz_date[:8], "us-east-1"),
            seed_signature=seed,
            amz_date=amz_date,
            scope=scope,
            trailers=trailers,
        )
        if tamper:
            body = body.replace(data[70000:70010], b"X" * 10, 1)
        if transfer_chunked:
            headers["transfer-encoding"] = "chunked"
            wire = (
                b"".join(
                    b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000])
                    for i in range(0, len(body), 1000)
                )
                + b"0\r\n\r\n"
            )
        else:
            headers["content-length"] = str(len(body))
            wire = body
        head = f"PUT /bkt/{key} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += "connection: close\r\n\r\n"
        return head.encode(), wire

    async def _check(self, mode: str, trailer: bool, transfer_chunked: bool = False) -> None:
        data = os.urandom(200_000)
        key = f"{mode}-{trailer}-{transfer_chunked}"
        head, wire = self._signed_chunked(mode, data, trailer, key, transfer_chunked)
        reply = await self.call(rawhttp.send_raw, self.port, head, wire)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:400])
        got = await self.call(read_object, self.s3, Bucket="bkt", Key=key)
        self.assertEqual(got["Data"], data)
        self.assertNotIn("aws-chunked", got.get("ContentEncoding") or "")

    def test_signed(self) -> Any:
        return self._check("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", False)

    def test_signed_in_transfer_chunked(self) -> Any:
        return self._check("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", False, True)

    def test_signed_trailer(self) -> Any:
        return self._check("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", True)

    def test_unsigned_trailer(self) -> Any:
        return self._check("STREAMING-UNSIGNED-PAYLOAD-TRAILER", True)

    def test_unsigned_trailer_in_transfer_chunked(self) -> Any:
        return self._check("STREAMING-UNSIGNED-PAYLOAD-TRAILER", True, True)

    async def test_tampered_chunk_rejected(self) -> None:
        data = os.urandom(200_000)
        head, wire = self._signed_chunked(
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", data, False, "t", tamper=True
        )
        reply = await self.call(rawhttp.send_raw, self.port, head, wire)
        self.assertTrue(reply.startswith(b"HTTP/1.1 403"), reply[:300])
        e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="t")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)


class ListingTests(S3TestCase):
    def setUp(self) -> None:
        super().setUp()
        return self.call(self._fill)

    KEYS = ["a", "a+b c", "a/", "a/1", "a/2/x", "a0", "b/1", "b/2", "c"]

    def _fill(self) -> None:
        self.s3.create_bucket(Bucket="bkt")
        for key in self.KEYS:
            self.s3.put_object(Bucket="bkt", Key=key, Body=b"x")

    async def test_v2_pagination(self) -> None:
        seen: list[str] = []
        token = None
        while True:
            kwargs = {"ContinuationToken": token} if token else {}
            page = await self.call(self.s3.list_objects_v2, Bucket="bkt", MaxKeys=2, **kwargs)
            seen += [o["Key"] for o in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        self.assertEqual(seen, self.KEYS)

    async def test_v1_delimiter_pagination(self) -> None:
        items: list[str] = []
        marker = ""
        while True:
            page = await self.call(
                self.s3.list_objects, Bucket="bkt", Delimiter="/", MaxKeys=1, Marker=marker
            )
            items += [o["Key"] for o in page.get("Contents", [])]
            items += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            if not page["IsTruncated"]:
                break
            marker = page["NextMarker"]
        self.assertEqual(items, ["a", "a+b c", "a/", "a0", "b/", "c"])

    async def test_encoding_type_echoed(self) -> None:
        status, _, body = await self.raw(
            "GET", "/bkt", query=[("encoding-type", "url"), ("prefix", "a+")]
        )
        self.assertIn(b"<EncodingType>url</EncodingType>", body)
        self.assertIn(b"<Key>a%2Bb%20c</Key>", body)
        page = await self.call(self.s3.list_objects_v2, Bucket="bkt", Prefix="a+")
        self.assertEqual([o["Key"] for o in page["Contents"]], ["a+b c"])

    async def test_prefixes_boto3_reads_back_as_given(self) -> None:
        """boto3 lists with ``encoding-type=url`` and decodes V1's Prefix never, V2's always."""
        for prefix in ("\n", "a+b c", "é/"):
            v1 = await self.call(self.s3.list_objects, Bucket="bkt", Prefix=prefix)
            v2 = await self.call(self.s3.list_objects_v2, Bucket="bkt", Prefix=prefix)
            self.assertEqual((v1["Prefix"], v2["Prefix"]), (prefix, prefix))
        v1 = await self.call(self.s3.list_objects, Bucket="bkt", Prefix="a+")
        self.assertEqual([o["Key"] for o in v1["Contents"]], ["a+b c"])

    async def test_start_after_and_bad_args(self) -> None:
        page = await self.call(self.s3.list_objects_v2, Bucket="bkt", StartAfter="a0")
        self.assertEqual([o["Key"] for o in page["Contents"]], ["b/1", "b/2", "c"])
        status, _, body = await self.raw("GET", "/bkt", query=[("max-keys", "x")])
        self.assertEqual(status, 400)
        status, _, body = await self.raw(
            "GET", "/bkt", query=[("list-type", "2"), ("continuation-token", "@@")]
        )
        self.assertIn(b"InvalidArgument", body)


class VirtualHostTests(S3TestCase):
    server_options = {"domain": "s4d.test"}

    async def test_virtual_host_style(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="vbucket")
        host = f"vbucket.s4d.test:{self.port}"
        status, _, _ = await self.raw("PUT", "/k/v", body=b"hello", host=host)
        self.assertEqual(status, 200)
        got = await self.call(read_object, self.s3, Bucket="vbucket", Key="k/v")
        self.assertEqual(got["Data"], b"hello")
        status, _, body = await self.raw("GET", "/", host=host, query=[("list-type", "2")])
        self.assertIn(b"<Key>k/v</Key>", body)


def _md5_b64(body: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(body).digest()).decode()


def _http_error(url: str) -> int:
    try:
        urllib.request.urlopen(url)
    except urllib.error.HTTPError as e:
        return e.code
    return 200


class PostObjectTests(S3TestCase):
    """Browser form uploads built by boto3's generate_presigned_post, sent as multipart."""

    def setUp(self) -> None:
        super().setUp()
        return self.call(self.s3.create_bucket, Bucket="bkt")

    def _post(
        self, fields: dict[str, str], data: bytes, filename: str = "up.txt"
    ) -> tuple[int, dict[str, str], bytes]:
        boundary = "----s4dtestboundary"
        parts = []
        for name, value in fields.items():
            parts.append(
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        return rawhttp.request(
            self.port,
            "POST",
            "/bkt",
            body=body,
            sign=False,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    async def test_presigned_post(self) -> None:
        post = self.s3.generate_presigned_post(
            "bkt",
            "uploads/${filename}",
            Conditions=[["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1 << 20]],
        )
        data = os.urandom(300_000)
        status, _, _ = await self.call(self._post, post["fields"], data, "pic.bin")
        self.assertEqual(status, 204)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="uploads/pic.bin")
        self.assertEqual(got["Data"], data)

    async def test_policy_enforced(self) -> None:
        post = self.s3.generate_presigned_post(
            "bkt", "fixed", Conditions=[["content-length-range", 1, 10]]
        )
        status, _, body = await self.call(self._post, post["fields"], b"x" * 100)
        self.assertEqual(status, 400)
        self.assertIn(b"EntityTooLarge", body)
        tampered = dict(post["fields"], key="other")
        status, _, body = await self.call(self._post, tampered, b"x")
        self.assertEqual(status, 403)
        fields = {k: v for k, v in post["fields"].items() if k != "policy"}
        status, _, body = await self.call(self._post, fields, b"x")
        self.assertEqual(status, 403)
        for key in ("fixed", "other"):
            e = await self.client_error(self.s3.head_object, Bucket="bkt", Key=key)
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    async def test_a_policy_without_its_signature_is_a_bad_argument(self) -> None:
        """AWS: 400 ``InvalidArgument`` naming the missing field, and nothing stored."""
        v4 = boto3_client(self.url, signature_version="s3v4")
        for client, signature in ((self.s3, "Signature"), (v4, "X-Amz-Signature")):
            post = client.generate_presigned_post("bkt", "unsigned")
            fields = {k: v for k, v in post["fields"].items() if k != signature.lower()}
            self.assertEqual(len(fields), len(post["fields"]) - 1)
            status, _, body = await self.call(self._post, fields, b"x")
            self.assertEqual(status, 400, body)
            self.assertIn(b"<Code>InvalidArgument</Code>", body)
            self.assertIn(f"<ArgumentName>{signature}</ArgumentName>".encode(), body)
        e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="unsigned")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    async def test_an_expiration_that_is_not_iso_8601_utc(self) -> None:
        """``str(datetime)`` as the expiration (s3-tests does that) is a bad policy: 400."""
        import base64
        import json

        post = self.s3.generate_presigned_post("bkt", "badexp")
        fields = dict(post["fields"])
        document = json.loads(base64.b64decode(fields["policy"]))
        document["expiration"] = str(datetime.now(UTC) + timedelta(hours=1))
        fields["policy"] = base64.b64encode(json.dumps(document).encode()).decode()
        fields["signature"] = sigv2.sign(rawhttp.SECRET_KEY, fields["policy"])
        status, _, body = await self.call(self._post, fields, b"x")
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>InvalidPolicyDocument</Code>", body)
        e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="badexp")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    async def test_checksum_fields_are_checked_and_kept(self) -> None:
        """A form's ``x-amz-checksum-*`` (no condition needed) and ``Content-MD5`` (covered)."""
        data = os.urandom(5000)
        post = self.s3.generate_presigned_post("bkt", "sum")
        good = dict(post["fields"], **{"x-amz-checksum-sha256": ck.checksum_of("SHA256", data)})
        status, _, body = await self.call(self._post, good, data)
        self.assertEqual(status, 204, body)
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="sum", ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumSHA256"], good["x-amz-checksum-sha256"])
        self.assertEqual(head["ChecksumType"], "FULL_OBJECT")
        for name, value in (
            ("x-amz-checksum-sha256", ck.checksum_of("SHA256", b"other")),
            ("x-amz-checksum-sha256", "sailorjerry"),
            ("x-amz-checksum-crc32", ck.checksum_of("CRC32", b"other")),
        ):
            status, _, body = await self.call(
                self._post, dict(post["fields"], **{name: value}), b"x"
            )
            self.assertEqual(status, 400, (name, value))
            self.assertIn(b"<Code>BadDigest</Code>", body)
        got = await self.call(read_object, self.s3, Bucket="bkt", Key="sum")
        self.assertEqual(got["Data"], data)
        # Content-MD5 and the algorithm to compute are ordinary fields: a condition names them
        md5 = base64.b64encode(hashlib.md5(b"md5").digest()).decode()
        post = self.s3.generate_presigned_post(
            "bkt",
            "md5",
            Fields={"Content-MD5": md5, "x-amz-checksum-algorithm": "CRC32C"},
            Conditions=[{"Content-MD5": md5}, {"x-amz-checksum-algorithm": "CRC32C"}],
        )
        status, _, body = await self.call(self._post, post["fields"], b"not md5")
        self.assertEqual(status, 400)
        self.assertIn(b"<Code>BadDigest</Code>", body)
        status, _, body = await self.call(self._post, post["fields"], b"md5")
        self.assertEqual(status, 204, body)
        head = await self.call(self.s3.head_object, Bucket="bkt", Key="md5", ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumCRC32C"], ck.checksum_of("CRC32C", b"md5"))
        uncovered = self.s3.generate_presigned_post("bkt", "md5")
        status, _, _ = await self.call(
            self._post, dict(uncovered["fields"], **{"Content-MD5": md5}), b"md5"
        )
        self.assertEqual(status, 403)

    async def test_success_status_201(self) -> None:
        post = self.s3.generate_presigned_post(
            "bkt",
            "k201",
            Fields={"success_action_status": "201"},
            Conditions=[{"success_action_status": "201"}],
        )
        status, _, body = await self.call(self._post, post["fields"], b"hello")
        self.assertEqual(status, 201)
        # AWS's PostResponse: no namespace, the object's URL as Location
        document = ET.fromstring(body)
        self.assertEqual(document.tag, "PostResponse")
        self.assertEqual(document.findtext("Key"), "k201")
        self.assertEqual(document.findtext("Bucket"), "bkt")
        self.assertEqual(document.findtext("Location"), f"http://127.0.0.1:{self.port}/bkt/k201")

    async def test_tagging_field(self) -> None:
        """The ``tagging`` field (a Tagging document) tags the object; a bad one is refused."""
        tagging = ("<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag>"
                   "<Tag><Key>x</Key><Value></Value></Tag></TagSet></Tagging>")  # fmt: skip
        post = self.s3.generate_presigned_post(
            "bkt", "tagged", Fields={"tagging": tagging}, Conditions=[{"tagging": tagging}]
        )
        status, _, body = await self.call(self._post, post["fields"], b"t")
        self.assertEqual(status, 204, body)
        got = await self.call(self.s3.get_object_tagging, Bucket="bkt", Key="tagged")
        tags = {t["Key"]: t["Value"] for t in got["TagSet"]}
        self.assertEqual(tags, {"team": "blue", "x": ""})
        for bad, code in (("<Tagging><TagSet>", b"MalformedXML"),
                          ("<Tagging><TagSet><Tag><Key>aws:k</Key><Value>v</Value></Tag>"
                           "</TagSet></Tagging>", b"InvalidTag")):  # fmt: skip
            post = self.s3.generate_presigned_post(
                "bkt", "bad", Fields={"tagging": bad}, Conditions=[{"tagging": bad}]
            )
            status, _, body = await self.call(self._post, post["fields"], b"t")
            self.assertEqual(status, 400, body)
            self.assertIn(code, body)
            e = await self.client_error(self.s3.head_object, Bucket="bkt", Key="bad")
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 404)


class ListObjectVersionsTests(S3TestCase):
    """``list_object_versions`` and its paginator through boto3."""

    async def versioned_bucket(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="ver")
        await self.call(
            self.s3.put_bucket_versioning,
            Bucket="ver",
            VersioningConfiguration={"Status": "Enabled"},
        )

    async def test_two_puts_and_a_delete(self) -> None:
        await self.versioned_bucket()
        first = await self.call(self.s3.put_object, Bucket="ver", Key="k", Body=b"one")
        second = await self.call(self.s3.put_object, Bucket="ver", Key="k", Body=b"two!")
        deleted = await self.call(self.s3.delete_object, Bucket="ver", Key="k")
        self.assertTrue(deleted["DeleteMarker"])
        listed = await self.call(self.s3.list_object_versions, Bucket="ver")
        self.assertEqual(listed["Name"], "ver")
        self.assertFalse(listed["IsTruncated"])
        self.assertEqual(listed["MaxKeys"], 1000)
        self.assertEqual(
            [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in listed["Versions"]],
            [("k", second["VersionId"], False, 4), ("k", first["VersionId"], False, 3)],
        )
        self.assertEqual(listed["Versions"][0]["ETag"], second["ETag"])
        self.assertEqual(listed["Versions"][0]["StorageClass"], "STANDARD")
        self.assertIn("ID", listed["Versions"][0]["Owner"])
        (marker,) = listed["DeleteMarkers"]
        self.assertEqual(
            (marker["Key"], marker["VersionId"], marker["IsLatest"]),
            ("k", deleted["VersionId"], True),
        )
        self.assertLessEqual(listed["Versions"][0]["LastModified"], marker["LastModified"])
        # The delete marker hides the key from ListObjects, not from the versions listing.
        plain = await self.call(self.s3.list_objects_v2, Bucket="ver")
        self.assertEqual(plain["KeyCount"], 0)

    async def test_paging_with_max_keys_one(self) -> None:
        await self.versioned_bucket()
        made = []
        for key in ("a", "b", "b/c"):
            for body in (b"1", b"22"):
                put = await self.call(self.s3.put_object, Bucket="ver", Key=key, Body=body)
                made.append((key, put["VersionId"]))
        expected = [v for key in ("a", "b", "b/c") for v in reversed(made) if v[0] == key]
        listed: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {}
        for _ in range(len(expected) + 1):
            page = await self.call(self.s3.list_object_versions, Bucket="ver", MaxKeys=1, **kwargs)
            listed += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
            if not page["IsTruncated"]:
                break
            self.assertEqual((page["NextKeyMarker"], page["NextVersionIdMarker"]), listed[-1])
            kwargs = {
                "KeyMarker": page["NextKeyMarker"],
                "VersionIdMarker": page["NextVersionIdMarker"],
            }
        self.assertEqual(listed, expected)

    async def test_paginator_prefix_and_delimiter(self) -> None:
        await self.versioned_bucket()
        for i in range(7):
            await self.call(self.s3.put_object, Bucket="ver", Key=f"d/k{i % 3}", Body=b"x")
        await self.call(self.s3.put_object, Bucket="ver", Key="d/sub/x", Body=b"x")
        await self.call(self.s3.delete_object, Bucket="ver", Key="d/k0")
        await self.call(self.s3.put_object, Bucket="ver", Key="other", Body=b"x")

        def walk() -> list[dict[str, Any]]:
            paginator = self.s3.get_paginator("list_object_versions")
            pages = paginator.paginate(
                Bucket="ver", Prefix="d/", Delimiter="/", PaginationConfig={"PageSize": 2}
            )
            return list(pages)

        pages = await self.call(walk)
        self.assertGreater(len(pages), 4)
        versions = [(v["Key"], v["IsLatest"]) for p in pages for v in p.get("Versions", [])]
        markers = [(m["Key"], m["IsLatest"]) for p in pages for m in p.get("DeleteMarkers", [])]
        prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
        self.assertEqual(
            versions,
            [("d/k0", False)] * 3
            + [("d/k1", True), ("d/k1", False)]
            + [("d/k2", True), ("d/k2", False)],
        )
        self.assertEqual(markers, [("d/k0", True)])
        self.assertEqual(prefixes, ["d/sub/"])

    async def test_unversioned_bucket_and_encoding(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="plain")
        await self.call(self.s3.put_object, Bucket="plain", Key="a b+c", Body=b"1")
        await self.call(self.s3.put_object, Bucket="plain", Key="a b+c", Body=b"22")
        listed = await self.call(self.s3.list_object_versions, Bucket="plain")
        self.assertEqual(
            [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in listed["Versions"]],
            [("a b+c", "null", True, 2)],
        )
        self.assertNotIn("DeleteMarkers", listed)

    async def test_errors(self) -> None:
        e = await self.client_error(self.s3.list_object_versions, Bucket="missing")
        self.assertEqual(error_code(e), "NoSuchBucket")
        await self.call(self.s3.create_bucket, Bucket="plain")
        e = await self.client_error(
            self.s3.list_object_versions, Bucket="plain", VersionIdMarker="v"
        )
        self.assertEqual(error_code(e), "InvalidArgument")
