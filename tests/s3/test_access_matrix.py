"""The authorization matrix: every route of the dispatch table × every kind of caller.

Strategy: one in-memory server (the real seam, front end and store) with a
bucket ``bkt`` owned by the Writer ``owner`` and holding ``obj`` and ``keep``,
and a bucket policy that allows everything (``s3:*``) to the Writer
``friend`` and denies everything to the SuperUser ``denied``. Every route of
:meth:`~s4d.s3.dispatch.DispatchTable.routes` (enumerated, so a route added
later is in the matrix too) is sent, with an empty or junk body, by each
caller: anonymous, a wrong signature, an inactive user, a Reader, the owner,
the root SuperUser, the owner of another bucket, the user the policy allows and
the user it denies. Each cell's outcome is compared with the expectation the
test states independently of :func:`s4d.auth.access.decide`: the request
was refused by authorization (its code: ``AccessDenied``,
``SignatureDoesNotMatch``, ``InvalidAccessKeyId``), or it got past it (any
other answer: the handler's own, often a 400 for the junk body). After each
cell the root puts back what a cell may have taken away (the object, the policy).

A second test sends denied writes as headers only, then checks that the
refusal came before any body byte and that nothing was stored.
"""

from __future__ import annotations

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from s4d.s3.dispatch import Route, RouteKey
from tests.admin.support import AdminClient
from tests.s3.memory import ACCESS_KEY, MemoryResponse, MemoryS3

Keys = tuple[str, str]

#: What authorization answers when it refuses.
REFUSALS = frozenset({"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"})

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["FRIEND"]},
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"],
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": ["DENIED"]},
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"],
            },
        ],
    }
)

#: Operations that are not about the bucket named, for the callers who own nothing there.
OWNERLESS = frozenset({"ListBuckets", "CreateBucket"})
#: Operations on the policy itself: a Deny never locks the owner or a SuperUser out.
POLICY_OPERATIONS = frozenset({"GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"})
#: Operations decided key by key (a Deny refuses each key in a 200 answer, as in AWS).
PER_KEY_OPERATIONS = frozenset({"DeleteObjects"})


def expected(caller: str, key: RouteKey, found: Route) -> str:
    """The expected outcome of one cell: ``pass`` (got past authorization) or a refusal."""
    if found.public:
        return "pass"  # a CORS preflight is answered unsigned (whatever it carries)
    if caller == "anonymous":
        return "AccessDenied"
    if caller == "wrong-signature":
        return "SignatureDoesNotMatch"
    if caller == "inactive":
        return "InvalidAccessKeyId"
    if not found.action:
        return "pass"  # a refusal route: NotImplemented or MethodNotAllowed for everyone
    reads = key.method in ("GET", "HEAD") or bool(key.subresources & {"select", "sql"})
    if caller in ("owner", "root", "friend"):
        return "pass"
    if caller == "denied":  # a SuperUser the policy denies
        if key.level == "service" or found.operation in POLICY_OPERATIONS | PER_KEY_OPERATIONS:
            return "pass"
        return "AccessDenied"
    if caller == "reader":  # owns no part of bkt
        return "pass" if found.operation == "ListBuckets" and reads else "AccessDenied"
    if caller == "stranger":  # a Writer owning another bucket
        return "pass" if found.operation in OWNERLESS else "AccessDenied"
    raise AssertionError(caller)


def target_of(key: RouteKey) -> tuple[str, dict[str, str]]:
    """The request target and headers that reach ``key``'s route."""
    path = {"service": "/", "bucket": "/bkt", "object": "/bkt/obj"}[key.level]
    params = []
    for sub in sorted(key.subresources):
        value = {"uploadId": "0" * 32, "partNumber": "1"}.get(sub, "")
        params.append(f"{sub}={value}" if value else sub)
    headers: dict[str, str] = {}
    if key.copy:
        headers["x-amz-copy-source"] = "/bkt/keep"
    if key.method == "OPTIONS":
        headers.update({"origin": "http://example.com", "access-control-request-method": "GET"})
    return path + ("?" + "&".join(params) if params else ""), headers


class MatrixTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = MemoryS3()
        self.addCleanup(self.server.close)
        api = AdminClient(self.server)
        self.token = api.login()
        self.ids: dict[str, str] = {}
        self.keys: dict[str, Keys] = {}
        for name, role in [("owner", "Writer"), ("reader", "Reader"), ("stranger", "Writer"),
                           ("friend", "Writer"), ("denied", "SuperUser"),
                           ("inactive", "Writer")]:  # fmt: skip
            self.ids[name] = api.create_user(self.token, name, role)
            self.keys[name] = api.new_key(self.token, self.ids[name])
        answer = api.call(
            "PUT", f"/api/admin/users/{self.ids['inactive']}", {"is_active": False}, self.token
        )
        self.assertEqual(answer.status, 200, answer)
        self.keys["wrong-signature"] = (self.keys["owner"][0], "not-the-secret")
        self.assertEqual(self.send("owner", "PUT", "/bkt").status, 200)
        self.assertEqual(self.send("stranger", "PUT", "/elsewhere").status, 200)
        self.policy = POLICY.replace("FRIEND", self.ids["friend"]).replace(
            "DENIED", self.ids["denied"]
        )
        self.restore()

    def send(
        self,
        who: str,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> MemoryResponse:
        request = self.server.request
        if who == "anonymous":
            return request(method, target, body, headers, sign=False, close=True)
        if who == "root":
            return request(method, target, body, headers, close=True)
        return request(method, target, body, headers, keys=self.keys[who], close=True)

    def restore(self) -> None:
        """Put back what a cell may have removed: the objects, the policy."""
        for key in ("obj", "keep"):
            self.assertEqual(self.send("root", "PUT", f"/bkt/{key}", b"data").status, 200)
        put = self.send("root", "PUT", "/bkt?policy", self.policy.encode())
        self.assertEqual(put.status, 204, put.body)

    def test_every_route_for_every_caller(self) -> None:
        routes = self.server.site.front.table.routes()
        self.assertGreater(len(routes), 60)
        callers = ("anonymous", "wrong-signature", "inactive", "reader", "owner", "root",
                   "stranger", "friend", "denied")  # fmt: skip
        failures = []
        for key, found in sorted(routes.items(), key=lambda kv: repr(kv[0])):
            target, headers = target_of(key)
            for caller in callers:
                answer = self.send(caller, key.method, target, b"<junk/>", headers)
                if key.method == "HEAD":
                    # no body to carry a code: a refusal is the bare 403
                    outcome = "refused" if answer.status == 403 else "pass"
                    want = "pass" if expected(caller, key, found) == "pass" else "refused"
                else:
                    code = answer.code() if answer.status == 403 else None
                    outcome = code if code in REFUSALS else "pass"
                    want = expected(caller, key, found)
                if outcome != want:
                    failures.append((found.operation, key.method, target, caller, want, outcome,
                                     answer.status, answer.body[:200]))  # fmt: skip
                self.restore()
        self.assertEqual(failures, [])


class DeniedWriteTests(SynchronousTestCase):
    """A refused write is refused before its body, and leaves nothing behind."""

    def setUp(self) -> None:
        self.server = MemoryS3()
        self.addCleanup(self.server.close)
        api = AdminClient(self.server)
        token = api.login()
        user = api.create_user(token, "stranger", "Writer")
        self.keys = api.new_key(token, user)
        self.assertEqual(self.server.request("PUT", "/bkt").status, 200)

    def segment_bytes(self) -> int:
        root = self.server.data_dir
        return sum(
            os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs
            if "seg" in f
        )  # fmt: skip

    def test_refused_before_the_body(self) -> None:
        before = self.segment_bytes()
        for who, keys in (("stranger", self.keys), ("anonymous", None)):
            for target, extra in (("/bkt/new", {}), ("/bkt/new?uploads", {}),
                                  ("/bkt/new?partNumber=1&uploadId=" + "0" * 32, {})):  # fmt: skip
                method = "POST" if target.endswith("uploads") else "PUT"
                headers = {"content-length": str(10 << 20), **extra}
                conn = self.server.connect()
                conn.send(
                    self.server.head_block(
                        method,
                        target,
                        headers,
                        sign=keys is not None,
                        keys=keys or (ACCESS_KEY, ""),
                    )  # fmt: skip
                )
                response = conn.response()
                assert response is not None, (who, target)  # answered with no body byte sent
                self.assertEqual((response.status, response.code()), (403, "AccessDenied"))
        self.assertEqual(self.server.request("HEAD", "/bkt/new").status, 404)
        listing = self.server.request("GET", "/bkt?uploads")
        self.assertNotIn(b"<Upload>", listing.body)
        self.assertEqual(self.segment_bytes(), before)
