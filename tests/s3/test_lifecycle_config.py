"""Lifecycle configuration: Put/Get/DeleteBucketLifecycleConfiguration and what clients are told.

Strategy: the real site in memory (:class:`~tests.s3.memory.MemoryS3`) checks
the XML AWS accepts and refuses (codes and messages), the round trip of every
filter form, and the ``x-amz-expiration`` / ``x-amz-abort-date`` answers,
whose dates are computed here from the object's own Last-Modified. boto3
drives the same through an in-process server (its parser is the judge of the
documents we answer); the background sweep is tested in
``tests/features/test_lifecycle_sweep.py`` and against a real ``twistd s4`` in
``tests/clients/test_lifecycle_cors.py``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from twisted.trial.unittest import TestCase

from tests.s3.memory import MemoryResponse, MemoryS3
from tests.s3.test_api import S3TestCase, error_code

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
DAY = 86400


def lifecycle(*rules: str) -> bytes:
    return (
        f'<LifecycleConfiguration xmlns="{NS}">{"".join(rules)}</LifecycleConfiguration>'.encode()
    )


def rule(body: str, rule_id: str = "r1", status: str = "Enabled", where: str = "<Filter/>") -> str:
    ident = f"<ID>{rule_id}</ID>" if rule_id else ""
    return f"<Rule>{ident}{where}<Status>{status}</Status>{body}</Rule>"


EXPIRE_1 = "<Expiration><Days>1</Days></Expiration>"
LOGS = "<Filter><Prefix>logs/</Prefix></Filter>"


def expiry(header: str | None) -> tuple[int, str]:
    """(epoch seconds, rule id) of an ``x-amz-expiration`` header."""
    assert header is not None
    found = re.fullmatch(r'expiry-date="([^"]+)", rule-id="([^"]+)"', header)
    assert found is not None, header
    return int(parsedate_to_datetime(found.group(1)).timestamp()), found.group(2)


def midnight_after(seconds: int, days: int) -> int:
    end = seconds + days * DAY
    return -(-end // DAY) * DAY


class LifecycleDocumentTests(TestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)

    def put(self, body: bytes, headers: dict[str, str] | None = None) -> MemoryResponse:
        return self.s3.request("PUT", "/bkt?lifecycle", body, headers=headers)

    def assertRefused(self, body: bytes, status: int, code: str, message: str = "") -> None:
        got = self.put(body)
        self.assertEqual((got.status, got.code()), (status, code), got.body)
        if message:
            self.assertIn(f"<Message>{message}</Message>".encode(), got.body)

    def test_every_filter_form_round_trips_as_put(self) -> None:
        rules = [
            rule(EXPIRE_1, "legacy", where="<Prefix>logs/</Prefix>"),
            rule(EXPIRE_1, "empty", where="<Filter></Filter>"),
            rule(EXPIRE_1, "prefix", where="<Filter><Prefix>a/</Prefix></Filter>"),
            rule(EXPIRE_1, "tag", where="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"),
            rule(
                EXPIRE_1,
                "and",
                where="<Filter><And><Prefix>p/</Prefix><Tag><Key>a</Key><Value>1</Value></Tag>"
                "<Tag><Key>b</Key><Value>2</Value></Tag><ObjectSizeGreaterThan>10"
                "</ObjectSizeGreaterThan><ObjectSizeLessThan>99</ObjectSizeLessThan></And></Filter>",
            ),
            rule(
                EXPIRE_1,
                "gt",
                where="<Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>",
            ),
            rule(
                "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>"
                "<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays>"
                "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>4</DaysAfterInitiation>"
                "</AbortIncompleteMultipartUpload>"
                "<Transition><Days>0</Days><StorageClass>STANDARD</StorageClass></Transition>",
                "all",
                "Disabled",
            ),
        ]
        self.assertEqual(self.put(lifecycle(*rules)).status, 200)
        got = self.s3.request("GET", "/bkt?lifecycle")
        self.assertEqual(got.status, 200)
        text = got.body.decode()
        self.assertIn("<ID>legacy</ID><Prefix>logs/</Prefix><Status>Enabled</Status>", text)
        self.assertIn("<ID>empty</ID><Filter></Filter>", text)
        self.assertIn("<ID>prefix</ID><Filter><Prefix>a/</Prefix></Filter>", text)
        self.assertIn("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>", text)
        self.assertIn(
            "<Filter><And><Prefix>p/</Prefix><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b"
            "</Key><Value>2</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
            "<ObjectSizeLessThan>99</ObjectSizeLessThan></And></Filter>",
            text,
        )
        self.assertIn("<Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>", text)
        self.assertIn(
            "<Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date>"
            "</Expiration><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays>"
            "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>4</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload><Transition><Days>0</Days>"
            "<StorageClass>STANDARD</StorageClass></Transition>",
            text,
        )

    def test_a_rule_without_id_gets_one(self) -> None:
        self.assertEqual(self.put(lifecycle(rule(EXPIRE_1, rule_id=""))).status, 200)
        got = self.s3.request("GET", "/bkt?lifecycle").body.decode()
        found = re.search(r"<ID>([^<]+)</ID>", got)
        assert found is not None
        self.assertEqual(len(found.group(1)), 48)

    def test_refusals_as_aws(self) -> None:
        self.assertRefused(
            lifecycle(rule(EXPIRE_1, "a" * 256)),
            400,
            "InvalidArgument",
            "ID length should not exceed allowed limit of 255",
        )
        self.assertRefused(
            lifecycle(rule(EXPIRE_1, "same"), rule(EXPIRE_1, "same")),
            400,
            "InvalidArgument",
            "Rule ID must be unique. Found same ID for more than one rule",
        )
        for status in ("enabled", "disabled", "invalid"):
            self.assertRefused(lifecycle(rule(EXPIRE_1, status=status)), 400, "MalformedXML")
        self.assertRefused(
            lifecycle(rule("<Expiration><Days>0</Days></Expiration>")),
            400,
            "InvalidArgument",
            "&#x27;Days&#x27; for Expiration action must be a positive integer".replace(
                "&#x27;", "'"
            ),
        )
        self.assertRefused(
            lifecycle(rule("<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>")),
            400,
            "InvalidArgument",
            "'Date' must be at midnight GMT",
        )
        self.assertRefused(
            lifecycle(rule("<Expiration><Date>20200101</Date></Expiration>")), 400, "MalformedXML"
        )
        self.assertRefused(
            lifecycle(rule("<Expiration><Days>x</Days></Expiration>")), 400, "MalformedXML"
        )
        self.assertRefused(
            lifecycle(
                rule(
                    EXPIRE_1,
                    where="<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
                    "</Filter>",
                )
            ),
            400,
            "MalformedXML",
        )
        self.assertRefused(
            lifecycle(rule(EXPIRE_1, where="<Prefix>a</Prefix><Filter/>")), 400, "MalformedXML"
        )
        self.assertRefused(lifecycle(rule(EXPIRE_1, where="")), 400, "MalformedXML")
        self.assertRefused(lifecycle(rule(EXPIRE_1 + "<Bogus/>")), 400, "MalformedXML")
        self.assertRefused(lifecycle(), 400, "MalformedXML")
        self.assertRefused(
            lifecycle(rule("")),
            400,
            "InvalidRequest",
            "At least one action needs to be specified in a rule",
        )
        self.assertRefused(
            lifecycle(
                rule("<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>")
            ),
            400,
            "InvalidStorageClass",
        )
        self.assertRefused(
            lifecycle(
                rule(
                    "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                    "<NewerNoncurrentVersions>101</NewerNoncurrentVersions>"
                    "</NoncurrentVersionExpiration>"
                )
            ),
            400,
            "InvalidArgument",
        )
        self.assertRefused(
            lifecycle(
                rule(
                    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
                    "</AbortIncompleteMultipartUpload>",
                    where="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                )
            ),
            400,
            "InvalidRequest",
        )
        self.assertRefused(
            lifecycle(
                rule(
                    "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true"
                    "</ExpiredObjectDeleteMarker></Expiration>"
                )
            ),
            400,
            "InvalidArgument",
        )
        self.assertRefused(
            lifecycle(*(rule(EXPIRE_1, f"r{i}") for i in range(1001))), 400, "InvalidRequest"
        )
        # nothing refused was stored
        self.assertEqual(
            self.s3.request("GET", "/bkt?lifecycle").code(), "NoSuchLifecycleConfiguration"
        )

    def test_content_md5_is_checked(self) -> None:
        body = lifecycle(rule(EXPIRE_1))
        wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        got = self.put(body, headers={"content-md5": wrong})
        self.assertEqual(got.code(), "BadDigest")
        right = base64.b64encode(hashlib.md5(body).digest()).decode()
        self.assertEqual(self.put(body, headers={"content-md5": right}).status, 200)

    def test_delete_and_absent(self) -> None:
        self.assertEqual(self.s3.request("DELETE", "/bkt?lifecycle").status, 204)
        self.assertEqual(self.put(lifecycle(rule(EXPIRE_1))).status, 200)
        self.assertEqual(self.s3.request("DELETE", "/bkt?lifecycle").status, 204)
        got = self.s3.request("GET", "/bkt?lifecycle")
        self.assertEqual((got.status, got.code()), (404, "NoSuchLifecycleConfiguration"))
        self.assertEqual(self.s3.request("GET", "/nobkt?lifecycle").code(), "NoSuchBucket")
        self.assertEqual(
            self.s3.request("PUT", "/nobkt?lifecycle", lifecycle(rule(EXPIRE_1))).code(),
            "NoSuchBucket",
        )


class ExpirationHeaderTests(TestCase):
    """``x-amz-expiration`` on PUT, GET, HEAD, CopyObject and CompleteMultipartUpload."""

    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt").status, 200)
        rules = lifecycle(
            rule("<Expiration><Days>3</Days></Expiration>", "three", where=LOGS),
            rule("<Expiration><Days>1</Days></Expiration>", "tagged",
                 where="<Filter><Tag><Key>tmp</Key><Value>yes</Value></Tag></Filter>"),
            rule("<Expiration><Date>2031-05-01T00:00:00Z</Date></Expiration>", "dated",
                 where="<Filter><Prefix>dated/</Prefix></Filter>"),
            rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
                 "</AbortIncompleteMultipartUpload>", "uploads", where=LOGS),
            rule("<Expiration><Days>1</Days></Expiration>", "off", "Disabled",
                 where="<Filter><Prefix>off/</Prefix></Filter>"),
        )  # fmt: skip
        self.assertEqual(self.s3.request("PUT", "/bkt?lifecycle", rules).status, 200)

    def modified(self, key: str) -> int:
        got = self.s3.request("HEAD", f"/bkt/{key}")
        return int(parsedate_to_datetime(got.headers["last-modified"]).timestamp())

    def test_put_get_head_copy(self) -> None:
        put = self.s3.request("PUT", "/bkt/logs/a", b"x")
        mtime = self.modified("logs/a")
        self.assertEqual(
            expiry(put.header("x-amz-expiration")), (midnight_after(mtime, 3), "three")
        )
        for method in ("GET", "HEAD"):
            got = self.s3.request(method, "/bkt/logs/a")
            self.assertEqual(
                expiry(got.header("x-amz-expiration")), (midnight_after(mtime, 3), "three")
            )
        copy = self.s3.request("PUT", "/bkt/logs/b", headers={"x-amz-copy-source": "/bkt/logs/a"})
        self.assertEqual(expiry(copy.header("x-amz-expiration"))[1], "three")
        dated = self.s3.request("PUT", "/bkt/dated/x", b"x")
        self.assertEqual(
            expiry(dated.header("x-amz-expiration")),
            (int(datetime(2031, 5, 1, tzinfo=UTC).timestamp()), "dated"),
        )
        for key in ("other", "off/x"):
            self.assertIsNone(
                self.s3.request("PUT", f"/bkt/{key}", b"x").header("x-amz-expiration")
            )

    def test_the_earliest_rule_wins_and_tags_count(self) -> None:
        put = self.s3.request("PUT", "/bkt/logs/t", b"x", headers={"x-amz-tagging": "tmp=yes"})
        mtime = self.modified("logs/t")
        self.assertEqual(
            expiry(put.header("x-amz-expiration")), (midnight_after(mtime, 1), "tagged")
        )
        self.s3.request("PUT", "/bkt/u", b"x")
        self.assertIsNone(self.s3.request("HEAD", "/bkt/u").header("x-amz-expiration"))
        tagging = b"<Tagging><TagSet><Tag><Key>tmp</Key><Value>yes</Value></Tag></TagSet></Tagging>"
        self.assertEqual(self.s3.request("PUT", "/bkt/u?tagging", tagging).status, 200)
        self.assertEqual(
            expiry(self.s3.request("HEAD", "/bkt/u").header("x-amz-expiration"))[1], "tagged"
        )

    def test_rules_changed_are_seen_at_once(self) -> None:
        self.s3.request("PUT", "/bkt/logs/a", b"x")
        self.assertIsNotNone(self.s3.request("HEAD", "/bkt/logs/a").header("x-amz-expiration"))
        self.assertEqual(self.s3.request("DELETE", "/bkt?lifecycle").status, 204)
        self.assertIsNone(self.s3.request("HEAD", "/bkt/logs/a").header("x-amz-expiration"))

    def test_multipart_abort_date_and_completion(self) -> None:
        created = self.s3.request("POST", "/bkt/logs/big?uploads")
        self.assertEqual(created.status, 200)
        self.assertEqual(created.header("x-amz-abort-rule-id"), "uploads")
        abort = parsedate_to_datetime(created.headers["x-amz-abort-date"]).timestamp()
        self.assertEqual(abort % DAY, 0)
        upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", created.body).group(1).decode()  # type: ignore[union-attr]
        listed = self.s3.request("GET", f"/bkt/logs/big?uploadId={upload_id}")
        self.assertEqual(listed.header("x-amz-abort-date"), created.header("x-amz-abort-date"))
        self.assertEqual(listed.header("x-amz-abort-rule-id"), "uploads")
        part = self.s3.request("PUT", f"/bkt/logs/big?partNumber=1&uploadId={upload_id}", b"part")
        complete = (
            f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part.headers['etag']}"
            "</ETag></Part></CompleteMultipartUpload>"
        ).encode()
        done = self.s3.request("POST", f"/bkt/logs/big?uploadId={upload_id}", complete)
        self.assertEqual(done.status, 200, done.body)
        self.assertEqual(expiry(done.header("x-amz-expiration"))[1], "three")
        other = self.s3.request("POST", "/bkt/elsewhere?uploads")
        self.assertIsNone(other.header("x-amz-abort-date"))


class Boto3LifecycleTests(S3TestCase):
    """boto3 reads what we answer (its parser is the judge of the XML and the headers)."""

    async def test_put_get_delete_and_expiration(self) -> None:
        await self.call(self.s3.create_bucket, Bucket="lcb")
        rules: list[dict[str, Any]] = [
            {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
             "Expiration": {"Days": 30}},
            {"ID": "cleanup-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 90}},
            {"ID": "legacy", "Prefix": "old/", "Status": "Disabled", "Expiration": {"Days": 1}},
        ]  # fmt: skip
        await self.call(
            self.s3.put_bucket_lifecycle_configuration,
            Bucket="lcb",
            LifecycleConfiguration={"Rules": rules},
        )
        got = await self.call(self.s3.get_bucket_lifecycle_configuration, Bucket="lcb")
        self.assertEqual(got["Rules"], rules)
        put = await self.call(self.s3.put_object, Bucket="lcb", Key="logs/x", Body=b"1")
        self.assertIn('rule-id="expire-logs"', put["Expiration"])
        head = await self.call(self.s3.head_object, Bucket="lcb", Key="logs/x")
        self.assertEqual(head["Expiration"], put["Expiration"])
        await self.call(self.s3.delete_bucket_lifecycle, Bucket="lcb")
        e = await self.client_error(self.s3.get_bucket_lifecycle_configuration, Bucket="lcb")
        self.assertEqual(error_code(e), "NoSuchLifecycleConfiguration")
