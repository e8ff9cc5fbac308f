"""Fuzzing XML request bodies: the parser and every operation that reads one.

Strategy: documents are generated from the vocabulary of the operations that
take XML (CreateBucketConfiguration, Delete, VersioningConfiguration,
CompleteMultipartUpload, AccessControlPolicy, ObjectLockConfiguration,
Retention, LegalHold), nested at random, with random
text, namespaces, and damaged by random edits (a DOCTYPE or an entity
reference spliced in, bytes flipped, the document cut short). Each body goes
through :func:`s4d.s3.xml.parse` and through the real handler code of each
operation, run against a stub engine whose calls succeed at once, so the only
acceptable outcomes are a response or an S3 error. Entity declarations must
never expand: a document with a DTD is always ``MalformedXML``.
"""

from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace
from typing import Any
from xml.sax.saxutils import escape

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import ensureDeferred, succeed
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.principal import Principal
from s4d.errors import S3Error
from s4d.s3.acls import parse_acl_document
from s4d.s3.call import S3Call, SmallBody
from s4d.s3.handlers.access import AccessHandlers
from s4d.s3.handlers.bucket import BucketHandlers
from s4d.s3.handlers.lock import parse_legal_hold, parse_lock_configuration, parse_retention
from s4d.s3.handlers.multipart import parse_complete
from s4d.s3.handlers.objects import ObjectHandlers
from s4d.s3.headers import CallHeaders
from s4d.s3.xml import parse
from tests.fuzz._support import edits, fuzz, mutate, s3_only

TAGS = [
    "CreateBucketConfiguration", "LocationConstraint", "Delete", "Object", "Key", "VersionId",
    "Quiet", "VersioningConfiguration", "Status", "MfaDelete", "CompleteMultipartUpload", "Part",
    "PartNumber", "ETag", "ChecksumCRC32", "ChecksumSHA256", "AccessControlPolicy", "Owner", "ID",
    "AccessControlList", "Grant", "Grantee", "Permission", "ObjectLockConfiguration",
    "ObjectLockEnabled", "Rule", "DefaultRetention", "Mode", "Days", "Years", "Retention",
    "RetainUntilDate", "LegalHold", "x",
]  # fmt: skip
TEXTS = ["", "us-east-1", "eu-west-1", "Enabled", "Suspended", "true", "1", "10001", "\u00b2",
         "9" * 5000, '"etag"', "FULL_CONTROL", "READ", "a/b", "&amp;", "&lt;", "GOVERNANCE",
         "COMPLIANCE", "ON", "OFF", "-1", "0", "36501", "2030-01-01T00:00:00Z",
         "2030-02-30T00:00:00Z", "9999-12-31T23:59:59.999999+14:00"]  # fmt: skip

text = st.one_of(st.sampled_from(TEXTS), st.text(max_size=12).map(escape))


def _element(tag: str, children: list[str] | str, namespace: bool) -> str:
    xmlns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' if namespace else ""
    inner = children if isinstance(children, str) else "".join(children)
    return f"<{tag}{xmlns}>{inner}</{tag}>"


elements = st.recursive(
    st.builds(_element, st.sampled_from(TAGS), text, st.booleans()),
    lambda inner: st.builds(
        _element, st.sampled_from(TAGS), st.lists(inner, max_size=4), st.booleans()
    ),
    max_leaves=12,
)

LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{"&lol{};".format(i - 1 if i > 1 else "") * 10}">' for i in range(1, 10)
    )
    + "]>"
)
PREFIXES = [
    "",
    '<?xml version="1.0" encoding="UTF-8"?>',
    LAUGHS,
    '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE d SYSTEM "http://127.0.0.1:1/dtd">',
    '<?xml version="1.0" encoding="UTF-16"?>',
    "\ufeff",
]


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    prefix = draw(st.sampled_from(PREFIXES))
    body = draw(elements)
    if prefix.startswith("<!DOCTYPE") or prefix.startswith('<?xml version="1.0"?><!DOCTYPE'):
        body = body.replace("</", draw(st.sampled_from(["&x;</", "&lol9;</", "</"])), 1)
    doc = (prefix + body).encode("utf-8")
    return mutate(doc, draw(edits)) if draw(st.booleans()) else doc


class _Facade:
    """Every call succeeds at once (the handlers' parsing is what is under test)."""

    def create(
        self, name: str, region: str, object_lock: bool = False, owner: str = "", **_: Any
    ) -> Any:
        return succeed(None)

    def put_access(self, *args: Any) -> Any:
        return succeed(None)

    def get(self, name: str) -> Any:
        return succeed(SimpleNamespace(name=name, region="us-east-1", versioning=None))

    bucket = get

    def delete_many(self, name: str, items: list[Any]) -> Any:
        return succeed([SimpleNamespace(delete_marker=False, version_id=None) for _ in items])

    def head(self, *args: Any) -> Any:
        return succeed(None)

    def set_versioning(self, name: str, status: str) -> Any:
        return succeed(None)


BUCKETS = BucketHandlers(_Facade(), "us-east-1")  # type: ignore[arg-type]
OBJECTS = ObjectHandlers(_Facade())  # type: ignore[arg-type]
ACCESS = AccessHandlers(_Facade(), _Facade())  # type: ignore[arg-type]
USER = Principal.of("u-1", "user", "Writer")


def _request(body: bytes, bucket_name: str = "bkt", **headers: str) -> S3Call:
    content = SmallBody()
    content.add(body)
    return S3Call(
        method="PUT",
        bucket=bucket_name,
        key="",
        params={},
        subresources=frozenset(),
        headers=CallHeaders({k.lower(): [v] for k, v in headers.items()}),
        identity=None,
        content=content,
    )


def run_handler(handler: Any, req: Any) -> Any:
    """Run an async handler whose awaits are all already fired; its response or S3 error."""
    outcome: list[Any] = []
    ensureDeferred(handler(req)).addBoth(outcome.append)
    assert outcome, "the handler did not finish synchronously"
    result = outcome[0]
    if isinstance(result, Failure):
        if result.check(S3Error):
            return result.value
        result.raiseException()
    return result


class XmlFuzz(SynchronousTestCase):
    def check_parse(self, body: bytes) -> None:
        root = s3_only(parse, body)
        if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
            self.assertIsInstance(root, S3Error)

    @fuzz(300)
    @given(st.binary(max_size=300))
    def test_parse_bytes(self, body: bytes) -> None:
        self.check_parse(body)

    @fuzz(300)
    @given(documents())
    def test_parse_documents(self, body: bytes) -> None:
        self.check_parse(body)

    def test_deep_nesting(self) -> None:
        depth = 300_000
        result = s3_only(parse, b"<a>" * depth + b"</a>" * depth)
        self.assertIsInstance(result, S3Error)  # over 2 MB: refused before parsing
        depth = 100_000
        s3_only(parse, b"<a>" * depth + b"</a>" * depth)

    def test_billion_laughs(self) -> None:
        doc = (LAUGHS + "<Delete><Object><Key>&lol9;</Key></Object></Delete>").encode()
        error = s3_only(parse, doc)
        self.assertIsInstance(error, S3Error)
        assert isinstance(error, S3Error)
        self.assertEqual(error.code, "MalformedXML")


class XmlOperationFuzz(SynchronousTestCase):
    """Each operation's own reading of the document, through its real handler."""

    @fuzz(200)
    @given(documents())
    def test_create_bucket(self, body: bytes) -> None:
        run_handler(BUCKETS.create_bucket, _request(body))

    @fuzz(200)
    @given(documents())
    def test_put_versioning(self, body: bytes) -> None:
        run_handler(BUCKETS.put_versioning, _request(body))

    @fuzz(200)
    @given(documents())
    def test_delete_objects(self, body: bytes) -> None:
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        run_handler(OBJECTS.delete_objects, _request(body, **{"content-md5": md5}))

    @fuzz(200)
    @given(documents())
    def test_put_acl(self, body: bytes) -> None:
        acl = s3_only(parse_acl_document, body, "u-1", {"u-1": USER}.get)
        if not isinstance(acl, S3Error):
            self.assertEqual(acl.owner, "u-1")

    @fuzz(200)
    @given(documents())
    def test_ownership_and_public_access_block(self, body: bytes) -> None:
        run_handler(ACCESS.put_ownership, _request(body))
        run_handler(ACCESS.put_block, _request(body))

    @fuzz(200)
    @given(documents())
    def test_object_lock_documents(self, body: bytes) -> None:
        rule = s3_only(parse_lock_configuration, body)
        if rule is not None and not isinstance(rule, S3Error):
            self.assertIn(rule.mode, ("GOVERNANCE", "COMPLIANCE"))
        retention = s3_only(parse_retention, body)
        if not isinstance(retention, S3Error):
            mode, until = retention
            self.assertEqual(mode is None, until is None)
        s3_only(parse_legal_hold, body)

    @fuzz(200)
    @given(documents())
    def test_complete_multipart(self, body: bytes) -> None:
        parts = s3_only(parse_complete, body)
        if not isinstance(parts, S3Error):
            for part in parts:
                self.assertIsInstance(part.number, int)
