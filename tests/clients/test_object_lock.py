"""Object lock through boto3 against a real s4d process.

Strategy: each scenario creates its own bucket with object lock on a real
``twistd s4`` (one per class) and drives it as an application would: lock
headers on PutObject, CopyObject and multipart uploads, a default retention,
PutObjectRetention and PutObjectLegalHold, then every way a client could try to
remove a locked version (DeleteObject with a version id, DeleteObjects,
RenameObject of a key and of a prefix, DeleteBucket). The server runs on the
real clock, so retention meant to run out during a test is a few seconds long;
the rest lies a day or more ahead. Contents are compared by SHA-256. The same
scenarios run over TLS, where boto3 declares its checksum as an aws-chunked
trailer instead of a header (S3 demands a declared digest for a locked PUT).
"""

from __future__ import annotations

import io
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from tests.clients.harness import ServerTestCase, boto3_client, payload, sha256


class ObjectLockTests(ServerTestCase):
    """boto3 over plain HTTP."""

    tls = False

    def setUp(self) -> None:
        super().setUp()
        self.s3 = boto3_client(self.server, os.path.join(self.tmp, "home"))

    def locked_bucket(self) -> str:
        name = self.bucket_name()
        self.s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        return name

    def error(self, call: Any, **kwargs: Any) -> tuple[str, int]:
        try:
            call(**kwargs)
        except ClientError as e:
            return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
        self.fail(f"{call.__name__} succeeded")

    def versions(self, bucket: str) -> list[tuple[str, str]]:
        listed = self.s3.list_object_versions(Bucket=bucket)
        return [(v["Key"], v["VersionId"]) for v in listed.get("Versions", [])]

    def test_governance_bypass_only_with_the_header(self) -> None:
        bucket = self.locked_bucket()
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        put = self.s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"governed",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=until,
        )
        v = put["VersionId"]
        head = self.s3.head_object(Bucket=bucket, Key="k")
        self.assertEqual(
            (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]), ("GOVERNANCE", until)
        )
        denied = ("AccessDenied", 403)
        self.assertEqual(
            self.error(self.s3.delete_object, Bucket=bucket, Key="k", VersionId=v), denied
        )
        shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": until - timedelta(days=1)}
        self.assertEqual(
            self.error(self.s3.put_object_retention, Bucket=bucket, Key="k", Retention=shorter),
            denied,
        )
        got = self.s3.get_object_retention(Bucket=bucket, Key="k", VersionId=v)
        self.assertEqual(got["Retention"]["RetainUntilDate"], until)
        self.s3.put_object_retention(
            Bucket=bucket, Key="k", Retention=shorter, BypassGovernanceRetention=True
        )
        got = self.s3.get_object_retention(Bucket=bucket, Key="k")
        self.assertEqual(got["Retention"], shorter)
        deleted = self.s3.delete_object(
            Bucket=bucket, Key="k", VersionId=v, BypassGovernanceRetention=True
        )
        self.assertEqual(deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertEqual(self.versions(bucket), [])
        self.s3.delete_bucket(Bucket=bucket)

    def test_compliance_is_never_shortened(self) -> None:
        bucket = self.locked_bucket()
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        body = payload(10_000, seed=3)
        v = self.s3.put_object(Bucket=bucket, Key="k", Body=body)["VersionId"]
        compliance = {"Mode": "COMPLIANCE", "RetainUntilDate": until}
        self.s3.put_object_retention(Bucket=bucket, Key="k", Retention=compliance)
        denied = ("AccessDenied", 403)
        for retention in (
            {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=1)},
            {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)},
        ):
            for bypass in (False, True):
                self.assertEqual(
                    self.error(
                        self.s3.put_object_retention,
                        Bucket=bucket,
                        Key="k",
                        VersionId=v,
                        Retention=retention,
                        BypassGovernanceRetention=bypass,
                    ),
                    denied,
                )
        self.assertEqual(
            self.error(
                self.s3.delete_object,
                Bucket=bucket,
                Key="k",
                VersionId=v,
                BypassGovernanceRetention=True,
            ),
            denied,
        )
        longer = {"Mode": "COMPLIANCE", "RetainUntilDate": until + timedelta(days=30)}
        self.s3.put_object_retention(Bucket=bucket, Key="k", Retention=longer)
        self.assertEqual(self.s3.get_object_retention(Bucket=bucket, Key="k")["Retention"], longer)
        got = self.s3.get_object(Bucket=bucket, Key="k", VersionId=v)
        self.assertEqual(sha256(got["Body"].read()), sha256(body))
        # a short retention runs out on the server's clock, and then the version may go
        short = datetime.now(UTC) + timedelta(seconds=2)
        v2 = self.s3.put_object(
            Bucket=bucket,
            Key="brief",
            Body=b"x",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=short,
        )["VersionId"]
        self.assertEqual(
            self.error(self.s3.delete_object, Bucket=bucket, Key="brief", VersionId=v2), denied
        )
        time.sleep(max(0.0, (short - datetime.now(UTC)).total_seconds()) + 0.2)
        self.s3.delete_object(Bucket=bucket, Key="brief", VersionId=v2)
        self.assertEqual(self.versions(bucket), [("k", v)])

    def test_locked_version_survives_every_removal(self) -> None:
        """DeleteObjects, RenameObject (key and prefix) and DeleteBucket leave it in place."""
        bucket = self.locked_bucket()
        body = payload(50_000, seed=7)
        v = self.s3.put_object(
            Bucket=bucket,
            Key="dir/k",
            Body=body,
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1),
        )["VersionId"]
        free = self.s3.put_object(Bucket=bucket, Key="dir/free", Body=b"free")["VersionId"]
        result = self.s3.delete_objects(
            Bucket=bucket,
            Delete={
                "Objects": [
                    {"Key": "dir/k", "VersionId": v},
                    {"Key": "dir/free", "VersionId": free},
                ]
            },
        )
        self.assertEqual(
            [(e["Key"], e["VersionId"], e["Code"]) for e in result["Errors"]],
            [("dir/k", v, "AccessDenied")],
        )
        self.assertEqual([d["Key"] for d in result["Deleted"]], ["dir/free"])
        denied = ("AccessDenied", 403)
        rename = self.s3.rename_object
        self.assertEqual(
            self.error(rename, Bucket=bucket, Key="moved", RenameSource=f"{bucket}/dir/k"), denied
        )
        self.assertEqual(
            self.error(rename, Bucket=bucket, Key="moved/", RenameSource=f"{bucket}/dir/"), denied
        )
        marker = self.s3.delete_object(Bucket=bucket, Key="dir/k")
        self.assertTrue(marker["DeleteMarker"])
        self.assertEqual(self.error(self.s3.delete_bucket, Bucket=bucket), ("BucketNotEmpty", 409))
        self.s3.delete_object(Bucket=bucket, Key="dir/k", VersionId=marker["VersionId"])
        self.assertEqual(self.error(self.s3.delete_bucket, Bucket=bucket), ("BucketNotEmpty", 409))
        self.assertEqual(self.versions(bucket), [("dir/k", v)])
        got = self.s3.get_object(Bucket=bucket, Key="dir/k")
        self.assertEqual((got["VersionId"], sha256(got["Body"].read())), (v, sha256(body)))

        # with the bypass header (boto3 has no parameter for it on RenameObject) it moves
        def bypass(request: Any, **_: Any) -> None:
            request.headers["x-amz-bypass-governance-retention"] = "true"

        self.s3.meta.events.register("before-sign.s3.RenameObject", bypass)
        rename(Bucket=bucket, Key="moved/", RenameSource=f"{bucket}/dir/")
        self.assertEqual(self.versions(bucket), [("moved/k", v)])

    def test_managed_transfers_carry_the_lock(self) -> None:
        """upload_fileobj and copy in parts: the lock goes with CreateMultipartUpload only."""
        from boto3.s3.transfer import TransferConfig

        bucket = self.locked_bucket()
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        lock = {
            "ObjectLockMode": "COMPLIANCE",
            "ObjectLockRetainUntilDate": until,
            "ObjectLockLegalHoldStatus": "ON",
        }
        parts = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
        big = payload(11 << 20, seed=2)
        self.s3.upload_fileobj(io.BytesIO(big), bucket, "big", ExtraArgs=lock, Config=parts)
        self.s3.copy(
            {"Bucket": bucket, "Key": "big"}, bucket, "big-copy", ExtraArgs=lock, Config=parts
        )
        for key in ("big", "big-copy"):
            head = self.s3.head_object(Bucket=bucket, Key=key)
            self.assertTrue(head["ETag"].endswith('-3"'), (key, head["ETag"]))  # in parts
            self.assertEqual(
                (
                    head["ObjectLockMode"],
                    head["ObjectLockRetainUntilDate"],
                    head["ObjectLockLegalHoldStatus"],
                ),
                ("COMPLIANCE", until, "ON"),
                key,
            )
            got = self.s3.get_object(Bucket=bucket, Key=key)
            self.assertEqual(sha256(got["Body"].read()), sha256(big), key)

    def test_legal_hold_on_and_off(self) -> None:
        bucket = self.locked_bucket()
        v = self.s3.put_object(Bucket=bucket, Key="k", Body=b"held")["VersionId"]
        self.assertEqual(
            self.error(self.s3.get_object_legal_hold, Bucket=bucket, Key="k"),
            ("NoSuchObjectLockConfiguration", 404),
        )
        self.s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
        self.assertEqual(
            self.s3.get_object_legal_hold(Bucket=bucket, Key="k")["LegalHold"], {"Status": "ON"}
        )
        self.assertEqual(
            self.s3.head_object(Bucket=bucket, Key="k")["ObjectLockLegalHoldStatus"], "ON"
        )
        self.assertEqual(
            self.error(
                self.s3.delete_object,
                Bucket=bucket,
                Key="k",
                VersionId=v,
                BypassGovernanceRetention=True,
            ),
            ("AccessDenied", 403),
        )
        self.s3.put_object_legal_hold(
            Bucket=bucket, Key="k", VersionId=v, LegalHold={"Status": "OFF"}
        )
        self.assertEqual(
            self.s3.get_object_legal_hold(Bucket=bucket, Key="k")["LegalHold"], {"Status": "OFF"}
        )
        self.s3.delete_object(Bucket=bucket, Key="k", VersionId=v)
        self.s3.delete_bucket(Bucket=bucket)

    def test_default_retention_is_applied(self) -> None:
        bucket = self.locked_bucket()
        conf = {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        }
        self.s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)
        self.assertEqual(
            self.s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"], conf
        )
        self.assertEqual(
            self.error(
                self.s3.put_bucket_versioning,
                Bucket=bucket,
                VersioningConfiguration={"Status": "Suspended"},
            ),
            ("InvalidBucketState", 409),
        )
        before = datetime.now(UTC)
        self.s3.put_object(Bucket=bucket, Key="put", Body=b"put")
        self.s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "put"})
        from boto3.s3.transfer import TransferConfig

        big = payload(6 << 20, seed=1)
        self.s3.upload_fileobj(
            io.BytesIO(big),
            bucket,
            "multipart",
            Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20),
        )
        post = self.s3.generate_presigned_post(bucket, "posted")
        status, data = self.post_form(post["url"], post["fields"], b"posted")
        self.assertEqual(status, 204, data[:300])
        after = datetime.now(UTC)
        for key in ("put", "copy", "multipart", "posted"):
            head = self.s3.head_object(Bucket=bucket, Key=key)
            self.assertEqual(head["ObjectLockMode"], "GOVERNANCE", key)
            until = head["ObjectLockRetainUntilDate"]
            self.assertTrue(
                before + timedelta(days=1) - timedelta(seconds=1)
                <= until
                <= after + timedelta(days=1),
                (key, until),
            )
            self.assertEqual(
                self.error(
                    self.s3.delete_object, Bucket=bucket, Key=key, VersionId=head["VersionId"]
                ),
                ("AccessDenied", 403),
            )
        got = self.s3.get_object(Bucket=bucket, Key="multipart")
        self.assertEqual(sha256(got["Body"].read()), sha256(big))
        # explicit headers win over the default
        self.s3.put_object(
            Bucket=bucket,
            Key="explicit",
            Body=b"e",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=3),
        )
        self.assertEqual(
            self.s3.head_object(Bucket=bucket, Key="explicit")["ObjectLockMode"], "COMPLIANCE"
        )

    def post_form(self, url: str, fields: dict[str, str], content: bytes) -> tuple[int, bytes]:
        """A browser form upload (POST Object): the fields, then the file."""
        boundary = "----s4dlock" + os.urandom(8).hex()
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ]
        body = (
            "".join(parts).encode()
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            url,
            data=body,
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

    def test_lock_needs_a_lock_bucket(self) -> None:
        bucket = self.bucket_name("plain")
        self.s3.create_bucket(Bucket=bucket)
        self.s3.put_object(Bucket=bucket, Key="k", Body=b"x")
        self.assertEqual(
            self.error(
                self.s3.put_object,
                Bucket=bucket,
                Key="k2",
                Body=b"x",
                ObjectLockLegalHoldStatus="ON",
            ),
            ("InvalidRequest", 400),
        )
        self.assertEqual(
            self.error(self.s3.get_object_lock_configuration, Bucket=bucket),
            ("ObjectLockConfigurationNotFoundError", 404),
        )
        self.assertEqual(
            self.error(
                self.s3.put_object_legal_hold, Bucket=bucket, Key="k", LegalHold={"Status": "ON"}
            ),
            ("InvalidRequest", 400),
        )
        self.assertEqual([k for k, _ in self.versions(bucket)], ["k"])


class ObjectLockTlsTests(ObjectLockTests):
    """The same over TLS: boto3 declares its checksums as aws-chunked trailers."""

    tls = True
