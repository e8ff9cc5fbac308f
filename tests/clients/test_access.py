"""Who may do what, against a real ``twistd s4``: public buckets, policies, ACLs.

Strategy: real servers (HTTP, and one over HTTPS) with users made through the
admin API; the owner sets a bucket policy or an ACL with boto3, then real
clients use the bucket as a stranger would: ``curl`` with no credentials,
rclone in anonymous mode (no keys at all), boto3 signed as another user. What
each is allowed and refused is what the policy says, and nothing more.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from botocore.exceptions import ClientError
from twisted.trial.unittest import SkipTest

from s4d.auth.principal import canonical_id
from tests.clients.harness import (
    ServerTestCase,
    boto3_client,
    client_binary,
    isolated_env,
    payload,
    run_client,
)
from tests.clients.test_users import ROOT_PASSWORD, AdminApiClient


def error_code(e: ClientError) -> str:
    return str(e.response["Error"]["Code"])


def public_read_policy(bucket: str) -> str:
    """Everybody may list ``bucket`` and read its objects."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "List", "Effect": "Allow", "Principal": "*",
                 "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
                {"Sid": "Read", "Effect": "Allow", "Principal": "*",
                 "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
            ],
        }
    )  # fmt: skip


class AccessTestCase(ServerTestCase):
    server_env = {"S4_ROOT_PASSWORD": ROOT_PASSWORD}

    def setUp(self) -> None:
        super().setUp()
        assert self.server is not None
        self.admin = AdminApiClient(self.server.endpoint)
        if not self.tls:
            self.admin.login()
        self.root = boto3_client(self.server, os.path.join(self.tmp, "root"))

    def user(self, role: str) -> tuple[str, Any]:
        """A new user's id and a boto3 client signing as it."""
        assert self.server is not None
        name = "u" + os.urandom(4).hex()
        user_id, access_key, secret_key = self.admin.user_with_key(name, role)
        home = os.path.join(self.tmp, name)
        return user_id, boto3_client(self.server, home, access_key, secret_key)

    def curl(self, *args: str) -> tuple[int, bytes]:
        """curl with no credentials at all: the status and the body."""
        out = os.path.join(self.tmp, "curl.out")
        done = subprocess.run(
            ["curl", "-sS", "-o", out, "-w", "%{http_code}", *args],
            capture_output=True,
            timeout=60,
            check=True,
        )
        with open(out, "rb") as f:
            return int(done.stdout), f.read()


class PublicBucketTests(AccessTestCase):
    def test_public_read_bucket_served_to_curl(self) -> None:
        assert self.server is not None
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        data = payload(5000, 1)
        self.root.put_object(Bucket=bucket, Key="site/index.html", Body=data)
        url = f"{self.server.endpoint}/{bucket}"
        self.assertEqual(self.curl(f"{url}/site/index.html")[0], 403)  # private until granted
        self.root.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
        status, body = self.curl(f"{url}/site/index.html")
        self.assertEqual((status, body), (200, data))
        status, body = self.curl(f"{url}?list-type=2")
        self.assertEqual(status, 200)
        self.assertIn(b"<Key>site/index.html</Key>", body)
        self.assertEqual(self.curl(f"{url}/missing")[0], 404)  # listing allowed: NoSuchKey
        status, body = self.curl("-X", "PUT", "--data-binary", "x", f"{url}/site/evil")
        self.assertEqual(status, 403)
        self.assertIn(b"AccessDenied", body)
        self.assertEqual(self.curl("-X", "DELETE", f"{url}/site/index.html")[0], 403)
        self.assertEqual(self.curl(f"{url}?acl")[0], 403)
        status = self.root.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"]
        self.assertTrue(status)
        self.root.delete_bucket_policy(Bucket=bucket)
        self.assertEqual(self.curl(f"{url}/site/index.html")[0], 403)

    def test_public_read_object_acl_served_to_curl(self) -> None:
        assert self.server is not None
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        self.root.put_object(Bucket=bucket, Key="open", Body=b"open", ACL="public-read")
        self.root.put_object(Bucket=bucket, Key="closed", Body=b"closed")
        url = f"{self.server.endpoint}/{bucket}"
        self.assertEqual(self.curl(f"{url}/open"), (200, b"open"))
        self.assertEqual(self.curl(f"{url}/closed")[0], 403)
        self.assertEqual(self.curl(f"{url}/missing")[0], 403)  # may not list: no NoSuchKey
        grants = self.root.get_object_acl(Bucket=bucket, Key="open")["Grants"]
        uris = {g["Grantee"].get("URI") for g in grants}
        self.assertIn("http://acs.amazonaws.com/groups/global/AllUsers", uris)

    def test_bucket_acl_with_boto3_and_curl(self) -> None:
        """Grants to groups are listed first; re-creating one's bucket resets its ACL
        (us-east-1); curl is told NoSuchBucket for a bucket that does not exist."""
        assert self.server is not None
        _, owner = self.user("Writer")
        other_id, other = self.user("Writer")
        bucket = self.bucket_name()
        owner.create_bucket(Bucket=bucket)
        acl = owner.get_bucket_acl(Bucket=bucket)
        owner_cid = acl["Owner"]["ID"]
        all_users = "http://acs.amazonaws.com/groups/global/AllUsers"
        grants = acl["Grants"] + [
            {
                "Grantee": {"Type": "CanonicalUser", "ID": canonical_id(other_id)},
                "Permission": "WRITE",
            },
            {"Grantee": {"Type": "Group", "URI": all_users}, "Permission": "READ"},
        ]
        policy = {"Grants": grants, "Owner": acl["Owner"]}
        owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
        listed = owner.get_bucket_acl(Bucket=bucket)["Grants"]
        shown = [(g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in listed]
        self.assertEqual(shown[0], (all_users, "READ"))
        self.assertEqual(shown[1], (owner_cid, "FULL_CONTROL"))
        self.assertEqual(shown[2], (canonical_id(other_id), "WRITE"))
        url = f"{self.server.endpoint}/{bucket}"
        self.assertEqual(self.curl(url)[0], 200)  # public-read: anonymous listing
        other.put_object(Bucket=bucket, Key="from-other", Body=b"x")  # WRITE granted
        owner.create_bucket(Bucket=bucket)  # 200 in us-east-1, and the ACL is reset
        self.assertEqual(len(owner.get_bucket_acl(Bucket=bucket)["Grants"]), 1)
        self.assertEqual(self.curl(url)[0], 403)
        with self.assertRaises(ClientError) as raised:
            other.put_object(Bucket=bucket, Key="again", Body=b"x")
        self.assertEqual(error_code(raised.exception), "AccessDenied")
        status, body = self.curl(f"{self.server.endpoint}/{self.bucket_name()}/k")
        self.assertEqual(status, 404)
        self.assertIn(b"<Code>NoSuchBucket</Code>", body)

    def test_rclone_anonymous(self) -> None:
        assert self.server is not None
        rclone = client_binary("rclone")
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        files = {"a.txt": payload(1000, 2), "dir/b.bin": payload(70_000, 3)}
        for key, data in files.items():
            self.root.put_object(Bucket=bucket, Key=key, Body=data)
        self.root.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
        home = os.path.join(self.tmp, "rclone")
        env = isolated_env(home)
        remote = [
            "--s3-provider", "Other", "--s3-endpoint", self.server.endpoint,
            "--s3-region", "us-east-1", "--s3-force-path-style=true",
        ]  # fmt: skip
        listed = run_client(self, [rclone, "lsf", "-R", f":s3:{bucket}", *remote], env)
        self.assertEqual(sorted(listed.stdout.split()), ["a.txt", "dir/", "dir/b.bin"])
        target = os.path.join(self.tmp, "copy")
        run_client(self, [rclone, "copy", f":s3:{bucket}", target, *remote], env)
        with open(os.path.join(target, "dir", "b.bin"), "rb") as f:
            self.assertEqual(f.read(), files["dir/b.bin"])
        source = os.path.join(self.tmp, "upload")
        self.write_tree(source, {"new.txt": b"new"})
        refused = run_client(
            self, [rclone, "copy", source, f":s3:{bucket}", *remote, "--retries", "1"], env,
            check=False,
        )  # fmt: skip
        self.assertNotEqual(refused.returncode, 0)
        names = [o["Key"] for o in self.root.list_objects_v2(Bucket=bucket)["Contents"]]
        self.assertNotIn("new.txt", names)

    def test_s3fs_anonymous(self) -> None:
        assert self.server is not None
        try:
            import s3fs
            from aiobotocore.session import AioSession
        except ImportError as e:  # pragma: no cover - the [test] extra installs it
            raise SkipTest(f"s3fs is not installed: {e}") from None
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        data = payload(20_000, 4)
        self.root.put_object(Bucket=bucket, Key="pub/data.bin", Body=data)
        self.root.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
        home = os.path.join(self.tmp, "s3fs")
        os.makedirs(home)
        session = AioSession()
        session.set_config_variable("config_file", os.path.join(home, "aws-config"))
        session.set_config_variable("credentials_file", os.path.join(home, "aws-credentials"))
        fs = s3fs.S3FileSystem(
            anon=True,
            endpoint_url=self.server.endpoint,
            client_kwargs={"region_name": "us-east-1"},
            session=session,
            skip_instance_cache=True,
            use_listings_cache=False,
        )
        self.assertEqual(fs.ls(f"{bucket}/pub"), [f"{bucket}/pub/data.bin"])
        self.assertEqual(fs.cat(f"{bucket}/pub/data.bin"), data)
        with self.assertRaises(PermissionError):
            fs.pipe(f"{bucket}/pub/new.bin", b"new")


class AnonymousOffTests(AccessTestCase):
    server_env = {"S4_ROOT_PASSWORD": ROOT_PASSWORD, "S4_ANONYMOUS": "false"}

    def test_public_bucket_refused_when_anonymous_is_off(self) -> None:
        assert self.server is not None
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket, ACL="public-read")
        self.root.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="public-read")
        self.root.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
        status, body = self.curl(f"{self.server.endpoint}/{bucket}/k")
        self.assertEqual(status, 403)
        self.assertIn(b"Anonymous access is not allowed", body)
        url = self.root.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300
        )
        self.assertEqual(self.curl(url), (200, b"v"))  # presigned URLs are signed requests


class PolicyTests(AccessTestCase):
    def test_partner_writes_only_under_incoming(self) -> None:
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        partner_id, partner = self.user("Writer")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": [partner_id]},
                 "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/incoming/*"},
            ],
        }  # fmt: skip
        self.root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        self.root.put_object(Bucket=bucket, Key="private.txt", Body=b"secret")
        partner.put_object(Bucket=bucket, Key="incoming/report.csv", Body=b"a,b\n")
        for key in ("outgoing/report.csv", "report.csv", "incomingx/r.csv"):
            with self.assertRaises(ClientError) as raised:
                partner.put_object(Bucket=bucket, Key=key, Body=b"x")
            self.assertEqual(error_code(raised.exception), "AccessDenied", key)
        # the writer owns what it wrote (ObjectWriter), as in AWS; nothing else is its
        mine = partner.get_object(Bucket=bucket, Key="incoming/report.csv")["Body"].read()
        self.assertEqual(mine, b"a,b\n")
        with self.assertRaises(ClientError) as raised:
            partner.get_object(Bucket=bucket, Key="private.txt")
        self.assertEqual(error_code(raised.exception), "AccessDenied")
        with self.assertRaises(ClientError) as raised:
            partner.list_objects_v2(Bucket=bucket)
        self.assertEqual(error_code(raised.exception), "AccessDenied")
        keys = [o["Key"] for o in self.root.list_objects_v2(Bucket=bucket)["Contents"]]
        self.assertEqual(keys, ["incoming/report.csv", "private.txt"])

    def test_delete_denied_to_a_writer(self) -> None:
        owner_id, owner = self.user("Writer")
        bucket = self.bucket_name()
        owner.create_bucket(Bucket=bucket)
        owner.put_object(Bucket=bucket, Key="backup.tar", Body=b"precious")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "KeepBackups", "Effect": "Deny", "Principal": {"AWS": [owner_id]},
                 "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                 "Resource": f"arn:aws:s3:::{bucket}/*"},
            ],
        }  # fmt: skip
        owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        with self.assertRaises(ClientError) as raised:
            owner.delete_object(Bucket=bucket, Key="backup.tar")
        self.assertEqual(error_code(raised.exception), "AccessDenied")
        deleted = owner.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "backup.tar"}]})
        self.assertEqual(deleted.get("Deleted", []), [])
        errors = [(e["Key"], e["Code"]) for e in deleted["Errors"]]
        self.assertEqual(errors, [("backup.tar", "AccessDenied")])
        body = owner.get_object(Bucket=bucket, Key="backup.tar")["Body"].read()
        self.assertEqual(body, b"precious")
        owner.put_object(Bucket=bucket, Key="more.tar", Body=b"more")  # writes still allowed
        owner.delete_bucket_policy(Bucket=bucket)  # the owner is never locked out of it
        owner.delete_object(Bucket=bucket, Key="more.tar")

    def test_delete_objects_decided_per_key(self) -> None:
        """A partner allowed s3:DeleteObject on ``scratch/*`` only deletes there with
        DeleteObjects too; each other key is an AccessDenied entry of the answer."""
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        partner_id, partner = self.user("Writer")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": [partner_id]},
                 "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/scratch/*"},
            ],
        }  # fmt: skip
        for key in ("scratch/a", "scratch/b", "reports/c"):
            self.root.put_object(Bucket=bucket, Key=key, Body=b"x")
        with self.assertRaises(ClientError) as raised:  # nothing granted yet: refused whole
            partner.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "scratch/a"}]})
        self.assertEqual(error_code(raised.exception), "AccessDenied")
        self.root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        keys = [{"Key": k} for k in ("scratch/a", "reports/c", "scratch/b")]
        answer = partner.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        self.assertEqual(sorted(d["Key"] for d in answer["Deleted"]), ["scratch/a", "scratch/b"])
        errors = [(e["Key"], e["Code"]) for e in answer["Errors"]]
        self.assertEqual(errors, [("reports/c", "AccessDenied")])
        left = [o["Key"] for o in self.root.list_objects_v2(Bucket=bucket)["Contents"]]
        self.assertEqual(left, ["reports/c"])

    def test_malformed_policy_refused(self) -> None:
        bucket = self.bucket_name()
        self.root.create_bucket(Bucket=bucket)
        for document in ("not json", json.dumps({"Statement": [{"Effect": "Allow"}]})):
            with self.assertRaises(ClientError) as raised:
                self.root.put_bucket_policy(Bucket=bucket, Policy=document)
            self.assertEqual(error_code(raised.exception), "MalformedPolicy")
        with self.assertRaises(ClientError) as raised:
            self.root.get_bucket_policy(Bucket=bucket)
        self.assertEqual(error_code(raised.exception), "NoSuchBucketPolicy")


class CopyAccessTests(AccessTestCase):
    def test_copy_checks_the_source_owner_and_its_object_acl(self) -> None:
        """boto3's ExpectedSourceBucketOwner on CopyObject and UploadPartCopy is checked
        against the source bucket's owner; a source the copier may read only through
        its object ACL is copied, one it may not read is AccessDenied."""
        owner_id, owner = self.user("Writer")
        other_id, other = self.user("Writer")
        source, target = self.bucket_name(), self.bucket_name()
        owner.create_bucket(Bucket=source)
        other.create_bucket(Bucket=target)
        owner_cid = owner.get_bucket_acl(Bucket=source)["Owner"]["ID"]
        other_cid = other.get_bucket_acl(Bucket=target)["Owner"]["ID"]
        owner.put_object(Bucket=source, Key="shared", Body=b"shared",
                         GrantRead=f'id="{other_cid}"')  # fmt: skip
        owner.put_object(Bucket=source, Key="private", Body=b"private")
        shared = {"Bucket": source, "Key": "shared"}
        other.copy_object(Bucket=target, Key="a", CopySource=shared,
                          ExpectedSourceBucketOwner=owner_cid)  # fmt: skip
        self.assertEqual(other.get_object(Bucket=target, Key="a")["Body"].read(), b"shared")
        upload = other.create_multipart_upload(Bucket=target, Key="big")["UploadId"]
        other.upload_part_copy(Bucket=target, Key="big", UploadId=upload, PartNumber=1,
                               CopySource=shared, ExpectedSourceBucketOwner=owner_id)  # fmt: skip
        refusals = [
            lambda: other.copy_object(Bucket=target, Key="b", CopySource=shared,
                                      ExpectedSourceBucketOwner=other_cid),
            lambda: other.copy_object(Bucket=target, Key="b", CopySource=shared,
                                      ExpectedSourceBucketOwner=owner_cid,
                                      ExpectedBucketOwner=owner_cid),
            lambda: other.copy_object(Bucket=target, Key="b",
                                      CopySource={"Bucket": source, "Key": "private"}),
            lambda: other.upload_part_copy(Bucket=target, Key="big", UploadId=upload,
                                           PartNumber=2, CopySource=shared,
                                           ExpectedSourceBucketOwner=other_id),
            lambda: other.upload_part_copy(Bucket=target, Key="big", UploadId=upload,
                                           PartNumber=2,
                                           CopySource={"Bucket": source, "Key": "private"}),
        ]  # fmt: skip
        for number, refused in enumerate(refusals):
            with self.assertRaises(ClientError) as raised:
                refused()
            self.assertEqual(error_code(raised.exception), "AccessDenied", number)
        listed = other.list_objects_v2(Bucket=target)["Contents"]
        self.assertEqual([o["Key"] for o in listed], ["a"])
        parts = other.list_parts(Bucket=target, Key="big", UploadId=upload)["Parts"]
        self.assertEqual([p["PartNumber"] for p in parts], [1])


SECURE_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::BUCKET", "arn:aws:s3:::BUCKET/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}  # fmt: skip


class SecureTransportOverHttpTests(AccessTestCase):
    """The same Deny on ``aws:SecureTransport=false`` refuses plain HTTP..."""

    def test_plain_http_refused(self) -> None:
        _, writer = self.user("Writer")
        bucket = self.bucket_name()
        writer.create_bucket(Bucket=bucket)
        writer.put_object(Bucket=bucket, Key="k", Body=b"v")
        policy = json.dumps(SECURE_ONLY).replace("BUCKET", bucket)
        writer.put_bucket_policy(Bucket=bucket, Policy=policy)
        for call in (
            lambda: writer.get_object(Bucket=bucket, Key="k"),
            lambda: writer.put_object(Bucket=bucket, Key="k2", Body=b"v"),
            lambda: self.root.get_object(Bucket=bucket, Key="k"),  # even a SuperUser
        ):
            with self.assertRaises(ClientError) as raised:
                call()
            self.assertEqual(error_code(raised.exception), "AccessDenied")


class SecureTransportOverTlsTests(AccessTestCase):
    """...while over TLS it lets everything through."""

    tls = True

    def test_tls_allowed(self) -> None:
        writer = self.root
        bucket = self.bucket_name()
        writer.create_bucket(Bucket=bucket)
        policy = json.dumps(SECURE_ONLY).replace("BUCKET", bucket)
        writer.put_bucket_policy(Bucket=bucket, Policy=policy)
        writer.put_object(Bucket=bucket, Key="k", Body=b"v")
        self.assertEqual(writer.get_object(Bucket=bucket, Key="k")["Body"].read(), b"v")
