"""A browser form upload carrying a checksum, against a real s4d process.

Strategy: boto3's ``generate_presigned_post`` makes the policy and fields of a
form, as a web application would; the form goes out with urllib as
multipart/form-data with an ``x-amz-checksum-sha256`` field that no condition
names (as the conformance suite's test_post_object_upload_checksum sends it).
The right checksum stores the file and keeps the checksum; a wrong or malformed
one is ``400 BadDigest`` and leaves the key as it was.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from tests.clients import checksums
from tests.clients.harness import ServerTestCase, boto3_client, payload


class FormChecksumTests(ServerTestCase):
    def post_form(self, url: str, fields: dict[str, str], content: bytes) -> tuple[int, bytes]:
        """POST multipart/form-data (fields, then the file last) with urllib."""
        boundary = "----s4d" + os.urandom(8).hex()
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="f.txt"\r\nContent-Type: text/plain\r\n\r\n'.encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            url,
            data=b"".join(parts),
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_checksum_field(self) -> None:
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        post = s3.generate_presigned_post(
            bucket, "form.txt", Conditions=[["content-length-range", 0, 5 << 20]]
        )
        body = payload(2 << 20, seed=11)
        good = dict(post["fields"], **{"x-amz-checksum-sha256": checksums.sha256(body)})
        status, data = self.post_form(post["url"], good, body)
        self.assertEqual(status, 204, data[:500])
        head = s3.head_object(Bucket=bucket, Key="form.txt", ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumSHA256"], checksums.sha256(body))
        for value in (checksums.sha256(b"other"), "sailorjerry"):
            bad = dict(post["fields"], **{"x-amz-checksum-sha256": value})
            status, data = self.post_form(post["url"], bad, b"replacement")
            self.assertEqual(status, 400, data[:500])
            self.assertIn(b"<Code>BadDigest</Code>", data)
        self.assertEqual(s3.get_object(Bucket=bucket, Key="form.txt")["Body"].read(), body)
