"""Users and keys made through the admin API, used by real clients against ``twistd s4``.

Strategy: a real server (``S4_ROOT_PASSWORD`` set) per test class; the admin
API is called over HTTP with urllib exactly as S4's console calls it (JSON,
``Authorization: Bearer``); the keys it hands out are then given to boto3 and
to the AWS CLI. A revoked key must be refused from the very next request; with
``S4_WORKERS=2`` every request goes out on a fresh connection, so both
processes are asked and each must have dropped its cached key. The server's
log must never show a secret key or a password.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import ClientError

from tests.clients.harness import (
    ServerTestCase,
    boto3_client,
    client_binary,
    isolated_env,
    run_client,
)

ROOT_PASSWORD = "clients-root-password"


class AdminApiClient:
    """The admin API of a running server, over HTTP."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.endpoint + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                raw, status, kind = r.read(), r.status, r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            raw, status, kind = e.read(), e.code, e.headers.get("Content-Type")
        if raw:
            assert kind == "application/json", (status, kind, raw[:200])
        return status, json.loads(raw) if raw else None

    def login(self, username: str = "root", password: str = ROOT_PASSWORD) -> None:
        status, body = self.call(
            "POST", "/api/admin/login", {"username": username, "password": password}
        )
        assert status == 200, body
        self.token = body["token"]

    def user_with_key(self, username: str, role: str) -> tuple[str, str, str]:
        status, user = self.call(
            "POST",
            "/api/admin/users",
            {"username": username, "password": "password1", "role": role},
        )
        assert status == 200, user
        status, keys = self.call("POST", f"/api/admin/users/{user['id']}/credentials")
        assert status == 200, keys
        return user["id"], keys["access_key"], keys["secret_key"]


class UsersTestCase(ServerTestCase):
    server_env = {"S4_ROOT_PASSWORD": ROOT_PASSWORD}

    def setUp(self) -> None:
        super().setUp()
        assert self.server is not None
        self.admin = AdminApiClient(self.server.endpoint)
        self.admin.login()

    def no_secret_in_log(self, *secrets: str) -> None:
        assert self.server is not None
        log = self.server.log()
        for secret in (*secrets, ROOT_PASSWORD, self.server.secret_key):
            self.assertNotIn(secret, log)


class Boto3RoundTripTests(UsersTestCase):
    def test_create_use_revoke(self) -> None:
        assert self.server is not None
        uid, ak, sk = self.admin.user_with_key("alice", "Writer")
        alice = boto3_client(self.server, os.path.join(self.tmp, "a"), ak, sk)
        root = boto3_client(self.server, os.path.join(self.tmp, "r"))
        bucket, rootbucket = self.bucket_name("alice"), self.bucket_name("root")
        alice.create_bucket(Bucket=bucket)
        root.create_bucket(Bucket=rootbucket)
        alice.put_object(Bucket=bucket, Key="k", Body=b"alice's data")
        self.assertEqual(alice.get_object(Bucket=bucket, Key="k")["Body"].read(), b"alice's data")
        listed = alice.list_buckets()
        self.assertEqual([b["Name"] for b in listed["Buckets"]], [bucket])
        self.assertEqual(listed["Owner"]["DisplayName"], "alice")
        self.assertEqual(
            {bucket, rootbucket} - {b["Name"] for b in root.list_buckets()["Buckets"]}, set()
        )
        with self.assertRaises(ClientError) as denied:
            alice.put_object(Bucket=rootbucket, Key="k", Body=b"x")
        self.assertEqual(denied.exception.response["Error"]["Code"], "AccessDenied")
        # the root (a SuperUser) reaches alice's bucket
        self.assertEqual(root.get_object(Bucket=bucket, Key="k")["Body"].read(), b"alice's data")
        status, _ = self.admin.call("DELETE", f"/api/admin/users/{uid}/credentials")
        self.assertEqual(status, 204)
        with self.assertRaises(ClientError) as refused:
            alice.get_object(Bucket=bucket, Key="k")
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidAccessKeyId")
        self.no_secret_in_log(sk)


class AwsCliRoundTripTests(UsersTestCase):
    def aws(self, keys: tuple[str, str], *args: str, check: bool = True) -> Any:
        assert self.server is not None
        home = os.path.join(self.tmp, keys[0])
        env = isolated_env(
            home, AWS_ACCESS_KEY_ID=keys[0], AWS_SECRET_ACCESS_KEY=keys[1],
            AWS_DEFAULT_REGION=self.server.region,
        )  # fmt: skip
        argv = [client_binary("aws"), "--endpoint-url", self.server.endpoint, *args]
        return run_client(self, argv, env, check=check)

    def test_create_use_revoke(self) -> None:
        uid, ak, sk = self.admin.user_with_key("bob", "Writer")
        _, rak, rsk = self.admin.user_with_key("carol", "Reader")
        bucket = self.bucket_name()
        local = os.path.join(self.tmp, "f.txt")
        with open(local, "wb") as f:
            f.write(b"from the aws cli\n")
        self.aws((ak, sk), "s3", "mb", f"s3://{bucket}")
        self.aws((ak, sk), "s3", "cp", "--no-progress", local, f"s3://{bucket}/f.txt")
        listing = self.aws((ak, sk), "s3", "ls", f"s3://{bucket}/").stdout
        self.assertIn("f.txt", listing)
        self.assertIn(bucket, self.aws((ak, sk), "s3", "ls").stdout)
        # a Reader may not write, and does not see bob's bucket
        failed = self.aws((rak, rsk), "s3", "cp", "--no-progress", local,
                          f"s3://{bucket}/g.txt", check=False)  # fmt: skip
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn("AccessDenied", failed.stderr)
        self.assertNotIn(bucket, self.aws((rak, rsk), "s3", "ls").stdout)
        status, _ = self.admin.call("DELETE", f"/api/admin/users/{uid}/credentials")
        self.assertEqual(status, 204)
        refused = self.aws((ak, sk), "s3", "ls", f"s3://{bucket}/", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("InvalidAccessKeyId", refused.stderr)
        self.no_secret_in_log(sk, rsk)


class TwoWorkersRevocationTests(UsersTestCase):
    server_env = {"S4_ROOT_PASSWORD": ROOT_PASSWORD, "S4_WORKERS": "2"}

    def test_every_process_refuses_a_revoked_key_at_once(self) -> None:
        assert self.server is not None
        uid, ak, sk = self.admin.user_with_key("dave", "Writer")
        bucket = self.bucket_name()
        boto3_client(self.server, os.path.join(self.tmp, "d"), ak, sk).create_bucket(Bucket=bucket)
        # fresh clients, fresh connections: the requests spread over both processes
        for i in range(12):
            client = boto3_client(self.server, os.path.join(self.tmp, f"c{i}"), ak, sk)
            client.head_bucket(Bucket=bucket)
        status, _ = self.admin.call("PUT", f"/api/admin/users/{uid}", {"is_active": False})
        self.assertEqual(status, 200)
        for i in range(12):
            client = boto3_client(self.server, os.path.join(self.tmp, f"x{i}"), ak, sk)
            with self.assertRaises(ClientError) as refused:
                client.list_objects_v2(Bucket=bucket)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidAccessKeyId")
        # a token issued by one process is accepted by the other, and refused by both
        # once the password changes
        statuses = {self.admin.call("GET", "/api/admin/users")[0] for _ in range(8)}
        self.assertEqual(statuses, {200})
        status, users = self.admin.call("GET", "/api/admin/users")
        root = next(u for u in users["users"] if u["username"] == "root")
        self.admin.call("PUT", f"/api/admin/users/{root['id']}", {"password": "another-password"})
        statuses = {self.admin.call("GET", "/api/admin/users")[0] for _ in range(8)}
        self.assertEqual(statuses, {401})
