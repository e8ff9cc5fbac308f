"""boto3 against a real s4d process, with boto3's default checksum behaviour.

The same tests run over plain HTTP (boto3 sends ``x-amz-checksum-crc32`` as a
header with a real payload SHA-256) and over TLS with a self-signed certificate
(boto3 switches to ``aws-chunked`` with a CRC32 trailer and
``STREAMING-UNSIGNED-PAYLOAD-TRAILER``). The wire form is captured with a
botocore event hook so each class proves it exercised the path it claims to.
Every download is compared by SHA-256.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from typing import Any

from botocore.exceptions import ClientError

from tests.clients import checksums
from tests.clients.harness import ServerTestCase, boto3_client, md5_hex, payload, sha256

#: Keys that clients and proxies love to mangle.
AWKWARD_KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal%.txt",
    "ünïcødé/日本語 ファイル.txt",
    "double//slash",
    "//leading-double",
    "trailing/",
    "encoded%2Fslash",
    "query?x=1&y=2#frag",
    "tilde~!*'();:@$,[]",
    "tab\tand<xml>&amp;",
]


class Boto3Tests(ServerTestCase):
    """boto3 over plain HTTP."""

    tls = False

    def setUp(self) -> None:
        super().setUp()
        self.s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        self.sent: list[dict[str, str]] = []
        self.s3.meta.events.register("before-send.s3.*", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        self.sent.append(
            {k.lower(): v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
        )

    def make_bucket(self, tag: str = "") -> str:
        name = self.bucket_name(tag)
        self.s3.create_bucket(Bucket=name)
        return name

    def error_code(self, call: Any, *args: Any, **kwargs: Any) -> tuple[str, int]:
        try:
            call(*args, **kwargs)
        except ClientError as e:
            return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
        self.fail(f"{call} succeeded")

    # -- objects -------------------------------------------------------------

    def test_awkward_keys_round_trip(self) -> None:
        """Keys with spaces, '+', '%', unicode, '//' and a trailing '/' round-trip."""
        bucket = self.make_bucket()
        bodies = {key: payload(1000 + i * 37, seed=i) for i, key in enumerate(AWKWARD_KEYS)}
        for key, body in bodies.items():
            put = self.s3.put_object(Bucket=bucket, Key=key, Body=body)
            self.assertEqual(put["ETag"].strip('"'), md5_hex(body))
        for key, body in bodies.items():
            got = self.s3.get_object(Bucket=bucket, Key=key)
            self.assertEqual(sha256(got["Body"].read()), sha256(body), key)
            self.assertEqual(got["ContentLength"], len(body))
        listed_v2 = [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket)["Contents"]]
        listed_v1 = [o["Key"] for o in self.s3.list_objects(Bucket=bucket)["Contents"]]
        expected = sorted(bodies, key=lambda k: k.encode("utf-8"))
        self.assertEqual(listed_v2, expected)
        self.assertEqual(listed_v1, expected)
        for key in bodies:
            self.s3.delete_object(Bucket=bucket, Key=key)
        self.assertEqual(self.s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0)

    def test_default_checksum_on_the_wire(self) -> None:
        """boto3's default CRC32 arrives (header over HTTP, trailer over TLS) and comes back."""
        bucket = self.make_bucket()
        body = payload(3 * 1024 * 1024 + 17, seed=7)
        self.sent.clear()
        put = self.s3.put_object(Bucket=bucket, Key="big.bin", Body=body)
        headers = self.sent[-1]
        if self.tls:
            self.assertEqual(
                headers.get("x-amz-content-sha256"), "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            )
            self.assertEqual(headers.get("x-amz-trailer"), "x-amz-checksum-crc32")
            self.assertIn("aws-chunked", headers.get("content-encoding", ""))
        else:
            self.assertEqual(headers.get("x-amz-checksum-crc32"), checksums.crc32(body))
        self.assertEqual(put.get("ChecksumCRC32"), checksums.crc32(body))
        got = self.s3.get_object(Bucket=bucket, Key="big.bin", ChecksumMode="ENABLED")
        self.assertEqual(sha256(got["Body"].read()), sha256(body))
        self.assertEqual(got["ContentLength"], len(body))
        self.assertEqual(got.get("ChecksumCRC32"), checksums.crc32(body))
        self.assertNotIn("ContentEncoding", got)
        head = self.s3.head_object(Bucket=bucket, Key="big.bin", ChecksumMode="ENABLED")
        self.assertEqual(head.get("ChecksumCRC32"), checksums.crc32(body))
        self.assertEqual(head["ContentLength"], len(body))

    def test_upload_fileobj_managed_transfer(self) -> None:
        """s3transfer's upload_fileobj/download_fileobj below the multipart threshold."""
        bucket = self.make_bucket()
        body = payload(5 * 1024 * 1024 + 3, seed=11)
        self.s3.upload_fileobj(io.BytesIO(body), bucket, "managed.bin")
        out = io.BytesIO()
        self.s3.download_fileobj(bucket, "managed.bin", out)
        self.assertEqual(sha256(out.getvalue()), sha256(body))

    def test_unseekable_body_and_checksum_opt_out(self) -> None:
        """A body of unknown length (chunked over TLS); a client that opts out of checksums."""
        bucket = self.make_bucket()
        body = payload(300_000, seed=13)

        class Unseekable:
            def __init__(self, data: bytes) -> None:
                self._stream = io.BytesIO(data)

            def read(self, size: int = -1) -> bytes:
                return self._stream.read(size)

        if self.tls:  # botocore can only stream an unseekable body as aws-chunked
            self.sent.clear()
            put = self.s3.put_object(Bucket=bucket, Key="streamed", Body=Unseekable(body))
            self.assertEqual(self.sent[-1].get("transfer-encoding"), "chunked")
            self.assertNotIn("x-amz-decoded-content-length", self.sent[-1])
            self.assertEqual(put.get("ChecksumCRC32"), checksums.crc32(body))
            got = self.s3.get_object(Bucket=bucket, Key="streamed")
            self.assertEqual(sha256(got["Body"].read()), sha256(body))
        plain = boto3_client(
            self.server,
            os.path.join(self.tmp, "home"),
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        plain.put_object(Bucket=bucket, Key="plain", Body=body)
        got = plain.get_object(Bucket=bucket, Key="plain", Range="bytes=1000-")
        self.assertEqual(sha256(got["Body"].read()), sha256(body[1000:]))
        plain.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "plain"}]})
        missing = self.error_code(plain.head_object, Bucket=bucket, Key="plain")
        self.assertEqual(missing, ("404", 404))

    def test_bad_credentials(self) -> None:
        """A wrong secret or key id is refused (before the body, for an upload)."""
        bucket = self.make_bucket()
        home = os.path.join(self.tmp, "home")
        for access_key, secret, code in (
            (self.server.access_key, "wrong-secret", "SignatureDoesNotMatch"),
            ("AKIDNOBODY", self.server.secret_key, "InvalidAccessKeyId"),
        ):
            client = boto3_client(self.server, home, access_key=access_key, secret_key=secret)
            big = payload(3 * 1024 * 1024, seed=17)
            self.assertEqual(
                self.error_code(client.put_object, Bucket=bucket, Key="k", Body=big), (code, 403)
            )
            self.assertEqual(self.error_code(client.list_objects_v2, Bucket=bucket), (code, 403))
        self.assertEqual(self.s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0)

    def test_checksum_algorithms(self) -> None:
        """ChecksumAlgorithm CRC32C, SHA1, SHA256, CRC64NVME: verified, stored and returned."""
        bucket = self.make_bucket()
        body = payload(70_000, seed=3)
        for algorithm in ("CRC32C", "SHA1", "SHA256", "CRC64NVME"):
            expected = checksums.REFERENCE[algorithm](body)
            field = "Checksum" + algorithm
            key = f"sum-{algorithm}"
            put = self.s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algorithm)
            self.assertEqual(put.get(field), expected, algorithm)
            got = self.s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            self.assertEqual(sha256(got["Body"].read()), sha256(body))
            self.assertEqual(got.get(field), expected, algorithm)
            head = self.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            self.assertEqual(head.get(field), expected, algorithm)

    def test_wrong_checksum_rejected(self) -> None:
        """A CRC32 that does not match the body is BadDigest and nothing is stored."""
        bucket = self.make_bucket()
        body = payload(1000)
        code, status = self.error_code(
            self.s3.put_object,
            Bucket=bucket,
            Key="bad",
            Body=body,
            ChecksumCRC32=checksums.crc32(b"x"),
        )
        self.assertEqual((code, status), ("BadDigest", 400))
        self.assertEqual(
            self.error_code(self.s3.head_object, Bucket=bucket, Key="bad"), ("404", 404)
        )

    def test_ranges(self) -> None:
        """Closed, suffix and open-ended ranges; a range past the end is 416 InvalidRange."""
        bucket = self.make_bucket()
        body = payload(10_000, seed=5)
        self.s3.put_object(Bucket=bucket, Key="r", Body=body)
        cases = {
            "bytes=0-0": body[:1],
            "bytes=100-199": body[100:200],
            "bytes=-500": body[-500:],
            "bytes=9000-": body[9000:],
            "bytes=9990-20000": body[9990:],
            "bytes=-20000": body,
        }
        for spec, expected in cases.items():
            got = self.s3.get_object(Bucket=bucket, Key="r", Range=spec)
            self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206, spec)
            self.assertEqual(sha256(got["Body"].read()), sha256(expected), spec)
            self.assertEqual(got["ContentLength"], len(expected), spec)
            self.assertTrue(got["ContentRange"].endswith("/10000"), spec)
        self.assertEqual(
            self.error_code(self.s3.get_object, Bucket=bucket, Key="r", Range="bytes=10000-"),
            ("InvalidRange", 416),
        )

    def test_head_and_metadata(self) -> None:
        """User metadata and stored headers round-trip byte-exact; HEAD matches PUT."""
        bucket = self.make_bucket()
        body = payload(4321)
        metadata = {
            "plain": "value",
            "mixed-case-name": "Mixed Case Value",
            "punctuation": 'a=b; c,d "quoted" /path?x&y=%20 +plus',
            "spaces": "two  spaces inside",
            "empty": "",
            "mtime": "1700000000.123456789",
        }
        put = self.s3.put_object(
            Bucket=bucket,
            Key="m",
            Body=body,
            Metadata=metadata,
            ContentType="text/x-s4d; charset=utf-8",
            CacheControl="max-age=60",
            ContentDisposition='attachment; filename="x y.txt"',
            ContentLanguage="en-GB",
        )
        head = self.s3.head_object(Bucket=bucket, Key="m")
        self.assertEqual(head["Metadata"], metadata)
        self.assertEqual(head["ETag"], put["ETag"])
        self.assertEqual(head["ContentLength"], len(body))
        self.assertEqual(head["ContentType"], "text/x-s4d; charset=utf-8")
        self.assertEqual(head["CacheControl"], "max-age=60")
        self.assertEqual(head["ContentDisposition"], 'attachment; filename="x y.txt"')
        self.assertEqual(head["ContentLanguage"], "en-GB")
        got = self.s3.get_object(Bucket=bucket, Key="m")
        self.assertEqual(got["Metadata"], metadata)
        self.assertEqual(got["LastModified"], head["LastModified"])
        self.assertEqual(sha256(got["Body"].read()), sha256(body))
        listed = self.s3.list_objects_v2(Bucket=bucket)["Contents"][0]
        self.assertEqual(listed["ETag"], put["ETag"])
        self.assertEqual(listed["LastModified"], head["LastModified"])

    def test_copy(self) -> None:
        """CopyObject with COPY and REPLACE, across keys with awkward names, and onto itself."""
        bucket = self.make_bucket()
        body = payload(50_000, seed=9)
        source = "src dir/with space+plus%.bin"
        self.s3.put_object(
            Bucket=bucket, Key=source, Body=body, Metadata={"origin": "yes"}, ContentType="a/b"
        )
        copied = self.s3.copy_object(
            Bucket=bucket, Key="copy/kept", CopySource={"Bucket": bucket, "Key": source}
        )
        head = self.s3.head_object(Bucket=bucket, Key="copy/kept")
        self.assertEqual(head["Metadata"], {"origin": "yes"})
        self.assertEqual(head["ContentType"], "a/b")
        self.assertEqual(copied["CopyObjectResult"]["ETag"], head["ETag"])
        self.s3.copy_object(
            Bucket=bucket,
            Key="copy/replaced ü",
            CopySource={"Bucket": bucket, "Key": source},
            MetadataDirective="REPLACE",
            Metadata={"new": "meta"},
            ContentType="c/d",
        )
        head = self.s3.head_object(Bucket=bucket, Key="copy/replaced ü")
        self.assertEqual((head["Metadata"], head["ContentType"]), ({"new": "meta"}, "c/d"))
        for key in ("copy/kept", "copy/replaced ü"):
            self.assertEqual(
                sha256(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()), sha256(body)
            )
        # rclone's way of setting a new mtime: copy onto itself with REPLACE.
        self.s3.copy_object(
            Bucket=bucket,
            Key=source,
            CopySource={"Bucket": bucket, "Key": source},
            MetadataDirective="REPLACE",
            Metadata={"origin": "yes", "mtime": "1234567890"},
            ContentType="a/b",
        )
        head = self.s3.head_object(Bucket=bucket, Key=source)
        self.assertEqual(head["Metadata"], {"origin": "yes", "mtime": "1234567890"})
        self.assertEqual(
            sha256(self.s3.get_object(Bucket=bucket, Key=source)["Body"].read()), sha256(body)
        )
        code, status = self.error_code(
            self.s3.copy_object,
            Bucket=bucket,
            Key=source,
            CopySource={"Bucket": bucket, "Key": source},
        )
        self.assertEqual((code, status), ("InvalidRequest", 400))

    def test_listing_pagination(self) -> None:
        """V1 and V2 pagination by max-keys, with and without a delimiter, URL-encoded keys."""
        bucket = self.make_bucket()
        keys = [f"dir{d}/file {i:02d}+x.txt" for d in range(3) for i in range(5)]
        keys += [f"top {i}.txt" for i in range(4)] + ["dir1/sub/deep.txt", "ü-last"]
        for key in keys:
            self.s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        expected = sorted(keys, key=lambda k: k.encode("utf-8"))

        def pages(operation: str, **kw: Any) -> list[dict[str, Any]]:
            return list(self.s3.get_paginator(operation).paginate(Bucket=bucket, **kw))

        for operation in ("list_objects", "list_objects_v2"):
            got = pages(operation, PaginationConfig={"PageSize": 4})
            self.assertEqual(len(got), 6, operation)
            self.assertEqual(
                [o["Key"] for p in got for o in p.get("Contents", [])], expected, operation
            )
            self.assertTrue(all(p.get("EncodingType") == "url" for p in got), operation)
            got = pages(operation, Delimiter="/", PaginationConfig={"PageSize": 2})
            prefixes = [c["Prefix"] for p in got for c in p.get("CommonPrefixes", [])]
            tops = [o["Key"] for p in got for o in p.get("Contents", [])]
            self.assertEqual(prefixes, ["dir0/", "dir1/", "dir2/"], operation)
            self.assertEqual(tops, sorted(k for k in keys if "/" not in k), operation)
            self.assertEqual(len(got), 4, operation)  # 3 prefixes + 5 keys, two per page
            got = pages(operation, Prefix="dir1/", Delimiter="/", PaginationConfig={"PageSize": 3})
            self.assertEqual(
                [c["Prefix"] for p in got for c in p.get("CommonPrefixes", [])], ["dir1/sub/"]
            )
            self.assertEqual(len([o for p in got for o in p.get("Contents", [])]), 5)
        page = self.s3.list_objects_v2(Bucket=bucket, MaxKeys=3, StartAfter="dir2/file 03+x.txt")
        self.assertEqual(
            [o["Key"] for o in page["Contents"]],
            expected[expected.index("dir2/file 04+x.txt") :][:3],
        )
        self.assertEqual(page["KeyCount"], 3)
        self.assertTrue(page["IsTruncated"])
        page = self.s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/")
        self.assertEqual(page["NextMarker"], "dir1/")

    def test_delete_objects(self) -> None:
        """DeleteObject and DeleteObjects (which boto3 sends with a CRC32, not Content-MD5)."""
        bucket = self.make_bucket()
        keys = [f"k{i} +%ü" for i in range(12)]
        for key in keys:
            self.s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        self.s3.delete_object(Bucket=bucket, Key=keys[0])
        self.s3.delete_object(Bucket=bucket, Key="never-existed")
        result = self.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[1:]] + [{"Key": "absent"}]}
        )
        self.assertEqual(sorted(d["Key"] for d in result["Deleted"]), sorted(keys[1:] + ["absent"]))
        self.assertNotIn("Errors", result)
        self.assertEqual(self.s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0)
        self.s3.put_object(Bucket=bucket, Key="q", Body=b"x")
        quiet = self.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True}
        )
        self.assertNotIn("Deleted", quiet)
        self.s3.delete_bucket(Bucket=bucket)

    def test_conditional_requests(self) -> None:
        """GET If-None-Match -> 304, If-Match mismatch -> 412; PUT If-None-Match: * -> 412."""
        bucket = self.make_bucket()
        put = self.s3.put_object(Bucket=bucket, Key="c", Body=b"first")
        etag = put["ETag"]
        self.assertEqual(
            self.error_code(self.s3.get_object, Bucket=bucket, Key="c", IfNoneMatch=etag)[1], 304
        )
        self.assertEqual(
            self.error_code(self.s3.get_object, Bucket=bucket, Key="c", IfMatch='"0123"'),
            ("PreconditionFailed", 412),
        )
        got = self.s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfNoneMatch='"other"')
        self.assertEqual(got["Body"].read(), b"first")
        self.assertEqual(
            self.error_code(self.s3.head_object, Bucket=bucket, Key="c", IfMatch='"0123"')[1], 412
        )
        self.assertEqual(
            self.error_code(
                self.s3.put_object, Bucket=bucket, Key="c", Body=b"second", IfNoneMatch="*"
            ),
            ("PreconditionFailed", 412),
        )
        self.s3.put_object(Bucket=bucket, Key="new", Body=b"created", IfNoneMatch="*")
        self.assertEqual(self.s3.get_object(Bucket=bucket, Key="c")["Body"].read(), b"first")
        self.assertEqual(self.s3.get_object(Bucket=bucket, Key="new")["Body"].read(), b"created")

    def test_presigned_get(self) -> None:
        """Presigned GET URLs (boto3's default SigV2 query auth, and SigV4) fetched with urllib."""
        bucket = self.make_bucket()
        body = payload(20_000, seed=2)
        v4 = boto3_client(self.server, os.path.join(self.tmp, "home"), signature_version="s3v4")
        for client, signature in ((self.s3, "Signature"), (v4, "X-Amz-Signature")):
            for key in ("pre signed+ü.bin", "a//b/"):
                self.s3.put_object(Bucket=bucket, Key=key, Body=body)
                url = client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300
                )
                self.assertIn(f"{signature}=", url)
                status, data = self.urlopen(url)
                self.assertEqual(status, 200, data[:500])
                self.assertEqual(sha256(data), sha256(body))
            status, data = self.urlopen(url.replace(f"{signature}=", f"{signature}=AAAA"))
            self.assertEqual(status, 403, signature)
            self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", data)

    def test_presigned_post(self) -> None:
        """A browser form upload from generate_presigned_post, posted with urllib."""
        bucket = self.make_bucket()
        body = payload(123_456, seed=19)
        post = self.s3.generate_presigned_post(
            bucket,
            "uploads/${filename}",
            Fields={"success_action_status": "201", "Content-Type": "image/x-test"},
            Conditions=[
                ["content-length-range", 1, 200_000],
                ["starts-with", "$key", "uploads/"],
                {"success_action_status": "201"},
                {"Content-Type": "image/x-test"},
            ],
            ExpiresIn=300,
        )
        status, data = self.post_form(post["url"], post["fields"], "photo ü+1.jpg", body)
        self.assertEqual(status, 201, data[:500])
        self.assertIn(b"<Key>uploads/photo \xc3\xbc+1.jpg</Key>", data)
        document = ET.fromstring(data)  # AWS's PostResponse: no namespace
        self.assertEqual(document.findtext("Key"), "uploads/photo ü+1.jpg")
        self.assertEqual(document.findtext("Bucket"), bucket)
        location = document.findtext("Location") or ""
        self.assertTrue(location.startswith(post["url"].rstrip("/") + "/uploads/"), location)
        got = self.s3.get_object(Bucket=bucket, Key="uploads/photo ü+1.jpg")
        self.assertEqual(got["ContentType"], "image/x-test")
        self.assertEqual(sha256(got["Body"].read()), sha256(body))
        status, data = self.post_form(post["url"], post["fields"], "big.bin", payload(200_001))
        self.assertEqual(status, 400, data[:500])
        self.assertIn(b"<Code>EntityTooLarge</Code>", data)
        fields = dict(post["fields"], key="elsewhere/x")
        status, data = self.post_form(post["url"], fields, "x", b"x")
        self.assertEqual(status, 403, data[:500])
        self.assertIn(b"<Code>AccessDenied</Code>", data)

    def test_presigned_post_with_tags(self) -> None:
        """The form's ``tagging`` field (a Tagging document) tags the uploaded object."""
        bucket = self.make_bucket()
        tagging = (
            "<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag>"
            "<Tag><Key>stage</Key><Value>raw</Value></Tag></TagSet></Tagging>"
        )
        post = self.s3.generate_presigned_post(
            bucket,
            "tagged",
            Fields={"tagging": tagging},
            Conditions=[["starts-with", "$tagging", ""]],
            ExpiresIn=300,
        )
        status, data = self.post_form(post["url"], post["fields"], "f", b"tagged")
        self.assertEqual(status, 204, data[:500])
        tags = self.s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
        self.assertEqual({t["Key"]: t["Value"] for t in tags}, {"team": "blue", "stage": "raw"})
        head = self.s3.head_object(Bucket=bucket, Key="tagged")
        self.assertEqual(head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"], "2")

    def test_presigned_post_without_its_signature(self) -> None:
        """A form that keeps the policy but drops the signature: 400 InvalidArgument."""
        bucket = self.make_bucket()
        post = self.s3.generate_presigned_post(bucket, "unsigned", ExpiresIn=300)
        signature = "x-amz-signature" if "x-amz-signature" in post["fields"] else "signature"
        fields = {k: v for k, v in post["fields"].items() if k != signature}
        status, data = self.post_form(post["url"], fields, "f", b"x")
        self.assertEqual(status, 400, data[:500])
        self.assertIn(b"<Code>InvalidArgument</Code>", data)
        self.assertEqual(
            self.error_code(self.s3.head_object, Bucket=bucket, Key="unsigned")[1], 404
        )

    def post_form(
        self, url: str, fields: dict[str, str], filename: str, content: bytes
    ) -> tuple[int, bytes]:
        """POST multipart/form-data (fields, then the file last) with urllib."""
        import urllib.error
        import urllib.request

        boundary = "----s4d" + os.urandom(8).hex()
        parts = []
        for name, value in fields.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            url,
            data=b"".join(parts),
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert self.server is not None
        try:
            with urllib.request.urlopen(
                request, timeout=30, context=self.server.ssl_context()
            ) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_errors(self) -> None:
        """NoSuchKey, NoSuchBucket, BucketNotEmpty; CreateBucket again is 200 in us-east-1."""
        bucket = self.make_bucket()
        self.assertEqual(
            self.error_code(self.s3.get_object, Bucket=bucket, Key="nope"), ("NoSuchKey", 404)
        )
        self.assertEqual(
            self.error_code(self.s3.head_object, Bucket=bucket, Key="nope"), ("404", 404)
        )
        self.assertEqual(
            self.error_code(self.s3.list_objects_v2, Bucket="no-such-bucket-here"),
            ("NoSuchBucket", 404),
        )
        self.assertEqual(
            self.error_code(self.s3.put_object, Bucket="no-such-bucket-here", Key="k", Body=b"x"),
            ("NoSuchBucket", 404),
        )
        self.assertEqual(
            self.error_code(self.s3.head_bucket, Bucket="no-such-bucket-here"), ("404", 404)
        )
        # us-east-1 (the harness's region): re-creating a bucket you own is 200 OK, as in AWS
        again = self.s3.create_bucket(Bucket=bucket)
        self.assertEqual(again["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.s3.put_object(Bucket=bucket, Key="k", Body=b"x")
        self.assertEqual(
            self.error_code(self.s3.delete_bucket, Bucket=bucket), ("BucketNotEmpty", 409)
        )
        self.s3.delete_object(Bucket=bucket, Key="k")
        self.s3.delete_bucket(Bucket=bucket)
        self.assertEqual(self.error_code(self.s3.head_bucket, Bucket=bucket), ("404", 404))
        self.s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-1"}
        )
        self.s3.delete_bucket(Bucket=bucket)
        self.assertEqual(
            self.error_code(
                self.s3.create_bucket,
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
            ),
            ("InvalidLocationConstraint", 400),
        )
        self.assertEqual(
            self.error_code(self.s3.create_bucket, Bucket="Bad_Name"), ("InvalidBucketName", 400)
        )
        names = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        self.assertNotIn(bucket, names)

    def test_list_buckets_in_pages(self) -> None:
        """boto3's list_buckets paginator (max-buckets, continuation-token, prefix)."""
        prefix = self.bucket_name()[:40] + "-"
        names = [f"{prefix}{i}" for i in range(5)]
        for name in names:
            self.s3.create_bucket(Bucket=name)
        pages = self.s3.get_paginator("list_buckets").paginate(
            Prefix=prefix, PaginationConfig={"PageSize": 2}
        )
        listed = [[b["Name"] for b in page["Buckets"]] for page in pages]
        self.assertEqual(listed, [names[:2], names[2:4], names[4:]])
        one = self.s3.list_buckets(Prefix=prefix, MaxBuckets=5)
        self.assertEqual(([b["Name"] for b in one["Buckets"]], one["Prefix"]), (names, prefix))
        self.assertNotIn("ContinuationToken", one)
        self.assertEqual(
            self.error_code(self.s3.list_buckets, MaxBuckets=10001), ("InvalidArgument", 400)
        )

    def test_tags_from_a_header_in_key_order(self) -> None:
        """``x-amz-tagging: foo=bar&bar``: ``bar`` has an empty value; eleven tags: InvalidTag."""
        bucket = self.make_bucket()
        self.s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="foo=bar&bar")
        self.assertEqual(
            self.s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"],
            [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}],
        )
        eleven = "&".join(f"t{i}=v" for i in range(11))
        self.assertEqual(
            self.error_code(self.s3.put_object, Bucket=bucket, Key="k2", Body=b"x", Tagging=eleven),
            ("InvalidTag", 400),
        )

    def test_absent_bucket_configurations(self) -> None:
        """Configurations s4d does not keep answer 404 with AWS's code (s3cmd info retries 5xx)."""
        bucket = self.make_bucket()
        calls = {
            "get_bucket_policy": "NoSuchBucketPolicy",
            "get_bucket_cors": "NoSuchCORSConfiguration",
            "get_bucket_lifecycle_configuration": "NoSuchLifecycleConfiguration",
            "get_bucket_tagging": "NoSuchTagSet",
            "get_bucket_website": "NoSuchWebsiteConfiguration",
            "get_bucket_encryption": "ServerSideEncryptionConfigurationNotFoundError",
            "get_object_lock_configuration": "ObjectLockConfigurationNotFoundError",
            "get_bucket_replication": "ReplicationConfigurationNotFoundError",
            "get_bucket_ownership_controls": "OwnershipControlsNotFoundError",
            "get_public_access_block": "NoSuchPublicAccessBlockConfiguration",
        }
        for call, code in calls.items():
            self.assertEqual(
                self.error_code(getattr(self.s3, call), Bucket=bucket), (code, 404), call
            )
        self.assertEqual(self.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"), None)
        self.assertEqual(
            self.s3.get_bucket_acl(Bucket=bucket)["Grants"][0]["Permission"], "FULL_CONTROL"
        )


class Boto3TLSTests(Boto3Tests):
    """boto3 over HTTPS with a self-signed certificate: uploads use aws-chunked trailers."""

    tls = True
