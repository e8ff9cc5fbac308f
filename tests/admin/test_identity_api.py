"""The identity half of the admin API: login, users, keys, through the real seam.

Strategy: :class:`tests.admin.support.AdminClient` sends raw HTTP requests
into the in-memory server (channel, front end, ops app, identity API, engine
with an inline runner, store in a temp dir); tokens come from logging in, and
time is the server's :class:`~twisted.internet.task.Clock`. Every route is
called by each kind of caller (anonymous, a forged or broken token, a
deactivated SuperUser, a Reader, a Writer, a SuperUser); shapes are S4's; a
key made through the API is then used to sign S3 requests against the same
server, and refused once revoked.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable

import jwt
from twisted.trial.unittest import SynchronousTestCase

from s4d.admin.throttle import FREE_PER_NAME
from tests.admin.support import AdminClient
from tests.s3.memory import ACCESS_KEY, JWT_KEY, ROOT_PASSWORD, MemoryResponse, MemoryS3

#: the largest admin request body read (s4d.admin.jsonapi.read_json)
MAX_BODY = 64 << 10
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


class IdentityApiTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = MemoryS3()
        self.addCleanup(self.server.close)
        self.api = AdminClient(self.server)
        self.root = self.api.login()


class ShapeTests(IdentityApiTestCase):
    def test_login(self) -> None:
        answer = self.api.call(
            "POST", "/api/admin/login", {"username": "root", "password": ROOT_PASSWORD}
        )
        self.assertEqual(set(answer.body), {"token", "expires_at"})
        self.assertRegex(answer.body["expires_at"], ISO)
        claims = jwt.decode(answer.body["token"], options={"verify_signature": False})
        self.assertEqual((claims["username"], claims["role"]), ("root", "SuperUser"))
        self.assertEqual(claims["exp"], int(self.server.clock.seconds()) + 3600)
        self.assertEqual(jwt.get_unverified_header(answer.body["token"])["alg"], "HS256")

    def test_wrong_password_unknown_user_inactive_user(self) -> None:
        for username, password in [("root", "wrong-password"), ("nobody", ROOT_PASSWORD)]:
            answer = self.api.call(
                "POST", "/api/admin/login", {"username": username, "password": password}
            )
            self.assertEqual(answer, (401, {"error": "invalid username or password"}, answer[2]))
        uid = self.api.create_user(self.root, "alice", "SuperUser")
        self.api.call("PUT", f"/api/admin/users/{uid}", {"is_active": False}, self.root)
        answer = self.api.call(
            "POST", "/api/admin/login", {"username": "alice", "password": "password1"}
        )
        self.assertEqual(answer.status, 401)

    def test_user_lifecycle(self) -> None:
        created = self.api.call(
            "POST",
            "/api/admin/users",
            {"username": "alice_1", "password": "password1", "role": "Writer"},
            self.root,
        )
        self.assertEqual(created.status, 200)
        user = created.body
        self.assertEqual(
            set(user),
            {"id", "username", "role", "access_key", "created_at", "updated_at", "is_active",
             "access_keys", "is_root"},
        )  # fmt: skip
        self.assertEqual(
            (user["username"], user["role"], user["access_key"], user["is_active"]),
            ("alice_1", "Writer", None, True),
        )
        self.assertRegex(user["created_at"], ISO)
        uid = user["id"]
        listed = self.api.call("GET", "/api/admin/users", token=self.root).body["users"]
        self.assertEqual(sorted(u["username"] for u in listed), ["alice_1", "root"])
        root = next(u for u in listed if u["username"] == "root")
        self.assertEqual((root["access_key"], root["is_root"]), (ACCESS_KEY, True))
        got = self.api.call("GET", f"/api/admin/users/{uid}", token=self.root)
        self.assertEqual(got.body, user)
        changed = self.api.call(
            "PUT", f"/api/admin/users/{uid}", {"role": "Reader", "is_active": False}, self.root
        ).body
        self.assertEqual((changed["role"], changed["is_active"]), ("Reader", False))
        deleted = self.api.call("DELETE", f"/api/admin/users/{uid}", token=self.root)
        self.assertEqual((deleted.status, deleted.body), (204, None))
        self.assertEqual(
            self.api.call("GET", f"/api/admin/users/{uid}", token=self.root).status, 404
        )

    def test_bad_requests(self) -> None:
        def create(body: object) -> int:
            return self.api.call("POST", "/api/admin/users", body, self.root).status

        self.assertEqual(create({"username": "ab", "password": "password1", "role": "Writer"}), 400)
        self.assertEqual(create({"username": "abc", "password": "short", "role": "Writer"}), 400)
        self.assertEqual(create({"username": "abc", "password": "password1", "role": "God"}), 400)
        self.assertEqual(create({"username": "abc", "password": 12345678, "role": "Writer"}), 400)
        self.assertEqual(create([1, 2]), 400)
        self.assertEqual(
            create({"username": "root", "password": "password1", "role": "Reader"}), 400
        )
        bad_json = self.api.call("POST", "/api/admin/users", raw=b"{nope", token=self.root)
        self.assertEqual(bad_json.status, 400)
        self.assertIn("JSON", bad_json.body["error"])
        big = self.api.call("POST", "/api/admin/users", raw=b" " * (MAX_BODY + 1), token=self.root)
        self.assertEqual(big.status, 413)
        uid = self.api.create_user(self.root, "bob", "Writer")
        put = self.api.call("PUT", f"/api/admin/users/{uid}", {"is_active": "no"}, self.root)
        self.assertEqual(put.status, 400)
        self.assertEqual(self.api.call("PUT", "/api/admin/users/nope", {}, self.root).status, 404)
        self.assertEqual(
            self.api.call("DELETE", "/api/admin/users/nope", token=self.root).status, 404
        )
        login = self.api.call("POST", "/api/admin/login", {"username": "root"})
        self.assertEqual(login.status, 400)

    def test_the_root_is_protected(self) -> None:
        users = self.api.call("GET", "/api/admin/users", token=self.root).body["users"]
        rid = users[0]["id"]
        for method, body in [("PUT", {"role": "Writer"}), ("PUT", {"is_active": False}),
                             ("DELETE", None)]:  # fmt: skip
            answer = self.api.call(method, f"/api/admin/users/{rid}", body, self.root)
            self.assertEqual(answer.status, 400, answer)
        revoke = self.api.call(
            "DELETE", f"/api/admin/users/{rid}/credentials/{ACCESS_KEY}", token=self.root
        )
        self.assertEqual(revoke.status, 400)
        self.assertIn("S4_ACCESS_KEY_ID", revoke.body["error"])

    def test_unknown_admin_paths_answer_json(self) -> None:
        for method, path in [("GET", "/api/admin/nothing"), ("GET", "/api/whatever"),
                             ("POST", "/api/admin/users/x/y/z")]:  # fmt: skip
            answer = self.api.call(method, path, token=self.root)
            self.assertEqual(answer.status, 404, path)
            self.assertIn("error", answer.body)
        wrong = self.api.call("PATCH", "/api/admin/users", token=self.root)
        self.assertEqual(wrong.status, 405)
        self.assertIn("error", wrong.body)


class KeyTests(IdentityApiTestCase):
    def sign_as(self, keys: tuple[str, str]) -> Callable[..., MemoryResponse]:
        return lambda method, target, body=b"": self.server.request(method, target, body, keys=keys)

    def test_key_round_trip_and_revocation(self) -> None:
        uid = self.api.create_user(self.root, "alice", "Writer")
        keys = self.api.new_key(self.root, uid)
        self.assertTrue(keys[0].startswith("S4AK") and len(keys[0]) == 20)
        self.assertEqual(len(keys[1]), 40)
        s3 = self.sign_as(keys)
        self.assertEqual(s3("PUT", "/alices").status, 200)
        self.assertEqual(s3("PUT", "/alices/k", b"hello").status, 200)
        self.assertEqual(s3("GET", "/alices/k").body, b"hello")
        user = self.api.call("GET", f"/api/admin/users/{uid}", token=self.root).body
        self.assertEqual(user["access_key"], keys[0])
        # the secret is never shown again
        everything = json.dumps(
            [
                self.api.call("GET", "/api/admin/users", token=self.root).body,
                user,
                self.api.call("GET", f"/api/admin/users/{uid}/credentials", token=self.root).body,
            ]
        )
        self.assertNotIn(keys[1], everything)
        self.assertNotIn("scrypt", everything)
        gone = self.api.call("DELETE", f"/api/admin/users/{uid}/credentials", token=self.root)
        self.assertEqual(gone.status, 204)
        refused = s3("GET", "/alices/k")
        self.assertEqual((refused.status, refused.code()), (403, "InvalidAccessKeyId"))

    def test_several_keys_replace_and_revoke_one(self) -> None:
        uid = self.api.create_user(self.root, "alice", "Writer")
        first = self.api.new_key(self.root, uid)
        second = self.api.new_key(self.root, uid, keep=True)
        third = self.api.new_key(self.root, uid, keep=True)
        listed = self.api.call("GET", f"/api/admin/users/{uid}/credentials", token=self.root).body
        self.assertEqual(
            sorted(k["access_key"] for k in listed["credentials"]),
            sorted([first[0], second[0], third[0]]),
        )
        for key in listed["credentials"]:
            self.assertEqual(set(key), {"access_key", "created_at", "configured"})
        for keys in (first, second, third):
            self.assertEqual(self.server.request("GET", "/", keys=keys).status, 200)
        one = self.api.call(
            "DELETE", f"/api/admin/users/{uid}/credentials/{second[0]}", token=self.root
        )
        self.assertEqual(one.status, 204)
        self.assertEqual(self.server.request("GET", "/", keys=second).status, 403)
        self.assertEqual(self.server.request("GET", "/", keys=first).status, 200)
        again = self.api.call(
            "DELETE", f"/api/admin/users/{uid}/credentials/{second[0]}", token=self.root
        )
        self.assertEqual(again.status, 404)
        # S4's behaviour: a POST without keep replaces the stored keys
        fourth = self.api.new_key(self.root, uid)
        for keys in (first, third):
            self.assertEqual(self.server.request("GET", "/", keys=keys).status, 403)
        self.assertEqual(self.server.request("GET", "/", keys=fourth).status, 200)

    def test_a_deactivated_users_keys_stop_working(self) -> None:
        uid = self.api.create_user(self.root, "alice", "Writer")
        keys = self.api.new_key(self.root, uid)
        self.assertEqual(self.server.request("GET", "/", keys=keys).status, 200)
        self.api.call("PUT", f"/api/admin/users/{uid}", {"is_active": False}, self.root)
        refused = self.server.request("GET", "/", keys=keys)
        self.assertEqual((refused.status, refused.code()), (403, "InvalidAccessKeyId"))
        self.api.call("PUT", f"/api/admin/users/{uid}", {"is_active": True}, self.root)
        self.assertEqual(self.server.request("GET", "/", keys=keys).status, 200)


class TokenLifeTests(IdentityApiTestCase):
    def test_expiry(self) -> None:
        self.server.clock.advance(3599)
        self.assertEqual(self.api.call("GET", "/api/admin/users", token=self.root).status, 200)
        self.server.clock.advance(1)
        expired = self.api.call("GET", "/api/admin/users", token=self.root)
        self.assertEqual(expired.status, 401)
        self.assertIn("expired", expired.body["error"])

    def test_password_change_ends_tokens(self) -> None:
        uid = self.api.create_user(self.root, "boss", "SuperUser")
        token = self.api.login("boss", "password1")
        self.assertEqual(self.api.call("GET", "/api/admin/users", token=token).status, 200)
        self.api.call("PUT", f"/api/admin/users/{uid}", {"password": "password2"}, self.root)
        self.assertEqual(self.api.call("GET", "/api/admin/users", token=token).status, 401)
        fresh = self.api.login("boss", "password2")
        self.assertEqual(self.api.call("GET", "/api/admin/users", token=fresh).status, 200)

    def test_role_is_read_now_not_from_the_token(self) -> None:
        uid = self.api.create_user(self.root, "boss", "SuperUser")
        token = self.api.login("boss", "password1")
        self.api.call("PUT", f"/api/admin/users/{uid}", {"role": "Writer"}, self.root)
        self.assertEqual(self.api.call("GET", "/api/admin/users", token=token).status, 403)

    def test_forged_tokens(self) -> None:
        users = self.api.call("GET", "/api/admin/users", token=self.root).body["users"]
        claims = jwt.decode(self.root, options={"verify_signature": False})
        self.assertEqual(claims["sub"], users[0]["id"])
        head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        body = self.root.split(".")[1]
        forged = [
            f"{head}.{body}.",
            jwt.encode(claims, b"not-the-server-key-but-long-enough-000", algorithm="HS256"),
            jwt.encode(claims, JWT_KEY, algorithm="HS512"),
            self.root[:-3] + ("AAA" if not self.root.endswith("AAA") else "BBB"),
            "garbage",
        ]
        for token in forged:
            answer = self.api.call("GET", "/api/admin/users", token=token)
            self.assertEqual(answer.status, 401, token)
        basic = self.api.call(
            "GET", "/api/admin/users", headers={"authorization": "Basic cm9vdDpwdw=="}
        )
        self.assertEqual(basic.status, 401)


class ThrottledLoginTests(IdentityApiTestCase):
    def test_guessing_is_slowed_then_allowed_again(self) -> None:
        def login(password: str) -> tuple[int, str | None]:
            answer = self.api.call(
                "POST", "/api/admin/login", {"username": "root", "password": password}
            )
            return answer.status, answer.response.header("retry-after")

        for _ in range(FREE_PER_NAME):
            self.assertEqual(login("wrong-password"), (401, None))
        self.assertEqual(login("wrong-password"), (401, None))  # the failure that closes it
        self.assertEqual(login(ROOT_PASSWORD), (429, "1"))  # not even checked
        self.server.clock.advance(1)
        self.assertEqual(login("wrong-password"), (401, None))
        self.assertEqual(login("wrong-password"), (429, "2"))
        self.server.clock.advance(2)
        self.assertEqual(login(ROOT_PASSWORD)[0], 200)
        self.assertEqual(login("wrong-password"), (401, None))  # the count starts again


class EveryCallerTests(IdentityApiTestCase):
    """Each route against anonymous, wrong token, inactive user, Reader, Writer, SuperUser."""

    def test_matrix(self) -> None:
        api, root = self.api, self.root
        target = api.create_user(root, "target", "Writer")
        target_key = api.new_key(root, target)[0]
        tokens: dict[str, str | None] = {"anonymous": None, "wrong token": "x.y.z"}
        for role in ("Reader", "Writer", "SuperUser"):
            api.create_user(root, role.lower(), role)
            tokens[role] = api.login(role.lower(), "password1")
        sleeper = api.create_user(root, "sleeper", "SuperUser")
        tokens["inactive user"] = api.login("sleeper", "password1")
        api.call("PUT", f"/api/admin/users/{sleeper}", {"is_active": False}, root)
        expected = {"anonymous": 401, "wrong token": 401, "inactive user": 401, "Reader": 403,
                    "Writer": 403}  # fmt: skip
        routes: list[tuple[str, str, object]] = [
            ("GET", "/api/admin/users", None),
            (
                "POST",
                "/api/admin/users",
                {"username": "newbie", "password": "password1", "role": "Reader"},
            ),  # fmt: skip
            ("GET", f"/api/admin/users/{target}", None),
            ("PUT", f"/api/admin/users/{target}", {"role": "Reader"}),
            ("GET", f"/api/admin/users/{target}/credentials", None),
            ("POST", f"/api/admin/users/{target}/credentials?keep=true", None),
            ("DELETE", f"/api/admin/users/{target}/credentials/{target_key}", None),
            ("DELETE", f"/api/admin/users/{target}/credentials", None),
            ("DELETE", f"/api/admin/users/{target}", None),
        ]
        for method, path, body in routes:
            for who, status in expected.items():
                answer = api.call(method, path, body, tokens[who])
                self.assertEqual(answer.status, status, (who, method, path, answer.body))
                self.assertIn("error", answer.body)
            answer = api.call(method, path, body, tokens["SuperUser"])
            self.assertIn(answer.status, (200, 204), (method, path, answer.body))
