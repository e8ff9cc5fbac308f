"""The condition keys a request offers a bucket policy (:class:`s4d.s3.conditions.RequestContext`).

Strategy: contexts built from plain headers and parameters; each key a policy
may name is asked for in several spellings (keys are case-insensitive, tag keys
are not), and the existing-object tags are checked to be read only when asked.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.principal import Principal
from s4d.s3.conditions import RequestContext
from s4d.s3.headers import CallHeaders

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
USER = Principal.of("u-1", "alice", "Writer")


def context(headers: dict[str, str] | None = None, **kwargs: object) -> RequestContext:
    values = {"source_ip": "127.0.0.1", "secure": False, "now": NOW, "principal": USER,
              "headers": CallHeaders({k: [v] for k, v in (headers or {}).items()}),
              "params": {}}  # fmt: skip
    values.update(kwargs)
    return RequestContext(**values)  # type: ignore[arg-type]


class RequestContextTests(SynchronousTestCase):
    def test_global_keys(self) -> None:
        found = context({"x-forwarded-for": "10.1.1.1", "referer": "http://a/", "user-agent": "ua"})
        self.assertEqual(found.get("aws:SourceIp"), ["127.0.0.1"])  # no forwarded header believed
        self.assertEqual(found.get("AWS:SECURETRANSPORT"), ["false"])
        self.assertEqual(context(secure=True).get("aws:SecureTransport"), ["true"])
        self.assertEqual(found.get("aws:CurrentTime"), ["2026-11-30T12:00:00Z"])
        self.assertEqual(found.get("aws:EpochTime"), [str(int(NOW.timestamp()))])
        self.assertEqual(found.get("aws:username"), ["alice"])
        self.assertEqual(found.get("aws:userid"), ["u-1"])
        self.assertEqual(found.get("aws:Referer"), ["http://a/"])
        self.assertEqual(found.get("aws:UserAgent"), ["ua"])
        self.assertIsNone(context(principal=None).get("aws:username"))
        self.assertIsNone(found.get("aws:NoSuchKey"))

    def test_s3_keys(self) -> None:
        params = {"prefix": "home/", "delimiter": "/", "max-keys": "10", "versionId": "v1"}
        found = context({"x-amz-acl": "public-read", "x-amz-tagging": "Color=Red&size=L"},
                        params=params)  # fmt: skip
        self.assertEqual(found.get("s3:prefix"), ["home/"])
        self.assertEqual(found.get("s3:delimiter"), ["/"])
        self.assertEqual(found.get("s3:max-keys"), ["10"])
        self.assertEqual(found.get("s3:VersionId"), ["v1"])
        self.assertEqual(found.get("s3:x-amz-acl"), ["public-read"])
        self.assertEqual(found.get("s3:RequestObjectTag/Color"), ["Red"])
        self.assertIsNone(found.get("s3:RequestObjectTag/color"))  # tag keys keep their case
        self.assertEqual(sorted(found.get("s3:RequestObjectTagKeys") or []), ["Color", "size"])
        self.assertIsNone(context().get("s3:prefix"))

    def test_existing_tags_are_read_only_when_asked(self) -> None:
        reads: list[int] = []

        def tags() -> dict[str, str]:
            reads.append(1)
            return {"Project": "x"}

        found = context(existing_tags=tags)
        self.assertEqual(found.get("aws:SourceIp"), ["127.0.0.1"])
        self.assertEqual(reads, [])
        self.assertEqual(found.get("s3:ExistingObjectTag/Project"), ["x"])
        self.assertIsNone(found.get("s3:ExistingObjectTag/Other"))
        self.assertEqual(reads, [1])  # read once, then kept
