"""Object lock: bucket configuration, retention, legal hold, lock headers, enforcement.

Strategy: :class:`~tests.s3.memory.MemoryS3` runs the real site, handlers,
engine and store in memory over a store whose wall clock (object lock's "now",
read inside each transaction) is a :class:`Wall` the test moves, so retention
that runs out is tested without waiting. Every way a version can be removed
(DeleteObject with a version id, DeleteObjects, RenameObject of a key and of a
prefix, the replacement of a ``null`` version, bucket deletion) is tried on a
locked version, which must survive; the rules themselves (``may_remove``,
retention changes, default retention) are also tested as plain functions.
Real clients against a real server: ``tests/clients/test_object_lock.py``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from twisted.trial.unittest import SynchronousTestCase

from s4d.errors import S3Error
from s4d.features import lock as fl
from s4d.s3.objectlock import parse_retain_until, render_retain_until
from s4d.store.clock import Clock
from s4d.store.model import Bucket, DefaultRetention, ObjectLock, ObjectVersion
from tests.s3.memory import MemoryResponse, MemoryS3

START = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
DAY = 86_400


class Wall:
    """A wall clock that stands still until the test moves it."""

    def __init__(self, when: datetime = START) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def md5_header(body: bytes) -> dict[str, str]:
    return {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def retention_xml(mode: str | None = None, until: str | None = None) -> bytes:
    inner = ""
    if mode is not None:
        inner += f"<Mode>{mode}</Mode>"
    if until is not None:
        inner += f"<RetainUntilDate>{until}</RetainUntilDate>"
    return (
        f'<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</Retention>'.encode()
    )


def hold_xml(status: str) -> bytes:
    return f"<LegalHold><Status>{status}</Status></LegalHold>".encode()


def lock_config_xml(rule: str = "", enabled: str = "Enabled") -> bytes:
    return (
        f"<ObjectLockConfiguration><ObjectLockEnabled>{enabled}</ObjectLockEnabled>{rule}"
        "</ObjectLockConfiguration>"
    ).encode()


def rule_xml(mode: str = "GOVERNANCE", **period: str | int) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in period.items())
    return f"<Rule><DefaultRetention><Mode>{mode}</Mode>{inner}</DefaultRetention></Rule>"


BYPASS = {"x-amz-bypass-governance-retention": "true"}


class LockTestCase(SynchronousTestCase):
    """A memory server with a lock bucket ``locked`` and a plain bucket ``plain``."""

    def setUp(self) -> None:
        self.wall = Wall()
        self.s3 = MemoryS3(store_clock=Clock(wall=self.wall))
        self.addCleanup(self.s3.close)
        got = self.s3.request(
            "PUT", "/locked", headers={"x-amz-bucket-object-lock-enabled": "true"}
        )
        self.assertEqual(got.status, 200, repr(got.body))
        self.assertEqual(self.s3.request("PUT", "/plain").status, 200)

    # -- helpers -----------------------------------------------------------------

    def put(
        self, target: str, body: bytes = b"data", headers: dict[str, str] | None = None
    ) -> MemoryResponse:
        got = self.s3.request("PUT", target, body, {**md5_header(body), **(headers or {})})
        return got

    def put_version(self, key: str, body: bytes = b"data", **headers: str) -> str:
        got = self.put(f"/locked/{key}", body, headers)
        self.assertEqual(got.status, 200, repr(got.body))
        version = got.header("x-amz-version-id")
        assert version is not None
        return version

    def retention(
        self,
        key: str,
        version: str | None,
        mode: str | None,
        until: datetime | None,
        headers: dict[str, str] | None = None,
    ) -> MemoryResponse:
        target = f"/locked/{key}?retention" + (f"&versionId={version}" if version else "")
        body = retention_xml(mode, iso(until) if until else None)
        return self.s3.request("PUT", target, body, headers)

    def hold(self, key: str, version: str | None, status: str) -> MemoryResponse:
        target = f"/locked/{key}?legal-hold" + (f"&versionId={version}" if version else "")
        return self.s3.request("PUT", target, hold_xml(status))

    def delete_version(
        self, key: str, version: str, headers: dict[str, str] | None = None
    ) -> MemoryResponse:
        return self.s3.request("DELETE", f"/locked/{key}?versionId={version}", headers=headers)

    def versions(self, bucket: str = "locked") -> list[tuple[str, str]]:
        body = self.s3.request("GET", f"/{bucket}?versions").body.decode()
        return re.findall(
            r"<(?:Version|DeleteMarker)><Key>([^<]*)</Key><VersionId>([^<]*)</VersionId>", body
        )

    def assertError(self, got: MemoryResponse, status: int, code: str) -> None:
        self.assertEqual((got.status, got.code()), (status, code), repr(got.body))

    def assertOk(self, got: MemoryResponse, status: int = 200) -> None:
        self.assertEqual(got.status, status, repr(got.body))


class BucketConfigurationTests(LockTestCase):
    def test_create_with_lock_enables_versioning_for_good(self) -> None:
        got = self.s3.request("GET", "/locked?versioning")
        self.assertIn(b"<Status>Enabled</Status>", got.body)
        got = self.s3.request("GET", "/locked?object-lock")
        self.assertOk(got)
        self.assertIn(b"<ObjectLockEnabled>Enabled</ObjectLockEnabled>", got.body)
        self.assertNotIn(b"<Rule>", got.body)
        suspend = b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"
        self.assertError(
            self.s3.request("PUT", "/locked?versioning", suspend), 409, "InvalidBucketState"
        )
        self.assertIn(b"Enabled", self.s3.request("GET", "/locked?versioning").body)
        enabled = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        self.assertOk(self.s3.request("PUT", "/locked?versioning", enabled))

    def test_lock_header_values(self) -> None:
        got = self.s3.request(
            "PUT", "/other", headers={"x-amz-bucket-object-lock-enabled": "maybe"}
        )
        self.assertError(got, 400, "InvalidArgument")
        self.assertEqual(self.s3.request("HEAD", "/other").status, 404)
        got = self.s3.request(
            "PUT", "/other", headers={"x-amz-bucket-object-lock-enabled": "False"}
        )
        self.assertOk(got)
        self.assertError(
            self.s3.request("GET", "/other?object-lock"),
            404,
            "ObjectLockConfigurationNotFoundError",
        )
        got = self.s3.request("PUT", "/third", headers={"x-amz-bucket-object-lock-enabled": "True"})
        self.assertOk(got)
        self.assertOk(self.s3.request("GET", "/third?object-lock"))
        got = self.s3.request("PUT", "/fourth", headers={"x-amz-object-lock-mode": "GOVERNANCE"})
        self.assertError(got, 400, "InvalidRequest")

    def test_default_retention_round_trip(self) -> None:
        for rule in (rule_xml("GOVERNANCE", Days=1), rule_xml("COMPLIANCE", Years=2)):
            self.assertOk(self.s3.request("PUT", "/locked?object-lock", lock_config_xml(rule)))
            got = self.s3.request("GET", "/locked?object-lock")
            self.assertIn(rule.encode(), got.body)
        # a configuration without a rule clears the default retention
        self.assertOk(self.s3.request("PUT", "/locked?object-lock", lock_config_xml()))
        self.assertNotIn(b"<Rule>", self.s3.request("GET", "/locked?object-lock").body)

    def test_invalid_configurations(self) -> None:
        cases = [
            (lock_config_xml(rule_xml(Days=1, Years=1)), "MalformedXML"),
            (lock_config_xml(rule_xml()), "MalformedXML"),
            (lock_config_xml(rule_xml("governance", Days=1)), "MalformedXML"),
            (lock_config_xml(rule_xml("abc", Years=1)), "MalformedXML"),
            (lock_config_xml(rule_xml(Days="one")), "MalformedXML"),
            (lock_config_xml(rule_xml(Days=1), enabled="Disabled"), "MalformedXML"),
            (lock_config_xml("<Rule></Rule>"), "MalformedXML"),
            (b"<ObjectLockConfiguration/>", "MalformedXML"),
            (b"<Other/>", "MalformedXML"),
            (lock_config_xml(rule_xml(Days=0)), "InvalidRetentionPeriod"),
            (lock_config_xml(rule_xml(Years=-1)), "InvalidRetentionPeriod"),
            (lock_config_xml(rule_xml(Days=36501)), "InvalidRetentionPeriod"),
            (lock_config_xml(rule_xml(Years=101)), "InvalidRetentionPeriod"),
        ]
        for body, code in cases:
            self.assertError(self.s3.request("PUT", "/locked?object-lock", body), 400, code)
        self.assertNotIn(b"<Rule>", self.s3.request("GET", "/locked?object-lock").body)
        ok = lock_config_xml(rule_xml(Days=36500))
        self.assertOk(self.s3.request("PUT", "/locked?object-lock", ok))

    def test_enabling_on_an_existing_bucket_needs_versioning(self) -> None:
        body = lock_config_xml(rule_xml(Days=1))
        self.assertError(
            self.s3.request("GET", "/plain?object-lock"),
            404,
            "ObjectLockConfigurationNotFoundError",
        )
        self.assertError(
            self.s3.request("PUT", "/plain?object-lock", body), 409, "InvalidBucketState"
        )
        suspend = b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"
        self.assertOk(self.s3.request("PUT", "/plain?versioning", suspend))
        self.assertError(
            self.s3.request("PUT", "/plain?object-lock", body), 409, "InvalidBucketState"
        )
        enabled = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        self.assertOk(self.s3.request("PUT", "/plain?versioning", enabled))
        self.assertOk(self.s3.request("PUT", "/plain?object-lock", body))
        self.assertIn(b"<Days>1</Days>", self.s3.request("GET", "/plain?object-lock").body)
        self.assertError(
            self.s3.request("PUT", "/plain?versioning", suspend), 409, "InvalidBucketState"
        )
        self.assertError(self.s3.request("PUT", "/nobucket?object-lock", body), 404, "NoSuchBucket")
        self.assertError(self.s3.request("GET", "/nobucket?object-lock"), 404, "NoSuchBucket")


class RetentionTests(LockTestCase):
    def test_governance_is_changed_only_with_the_bypass(self) -> None:
        v = self.put_version("k")
        far, farther = START + timedelta(days=30), START + timedelta(days=60)
        self.assertOk(self.retention("k", None, "GOVERNANCE", far))
        got = self.s3.request("GET", "/locked/k?retention")
        self.assertIn(b"<Mode>GOVERNANCE</Mode>", got.body)
        self.assertIn(f"<RetainUntilDate>{iso(far)}</RetainUntilDate>".encode(), got.body)
        # extending needs no bypass; shortening, removing or a new mode do
        self.assertOk(self.retention("k", v, "GOVERNANCE", farther))
        self.assertError(self.retention("k", v, "GOVERNANCE", far), 403, "AccessDenied")
        self.assertError(self.retention("k", v, None, None), 403, "AccessDenied")
        self.assertError(self.retention("k", v, "COMPLIANCE", farther), 403, "AccessDenied")
        self.assertError(self.delete_version("k", v), 403, "AccessDenied")
        self.assertIn(iso(farther).encode(), self.s3.request("GET", "/locked/k?retention").body)
        self.assertOk(self.retention("k", v, "GOVERNANCE", far, BYPASS))
        self.assertIn(iso(far).encode(), self.s3.request("GET", "/locked/k?retention").body)
        self.assertOk(self.retention("k", v, None, None, BYPASS))
        self.assertError(
            self.s3.request("GET", "/locked/k?retention"), 404, "NoSuchObjectLockConfiguration"
        )
        self.assertOk(self.delete_version("k", v), 204)
        self.assertEqual(self.versions(), [])

    def test_governance_to_compliance_with_the_bypass(self) -> None:
        v = self.put_version("k")
        until = START + timedelta(days=1)
        self.assertOk(self.retention("k", v, "GOVERNANCE", until))
        self.assertOk(self.retention("k", v, "COMPLIANCE", until, BYPASS))
        self.assertError(self.delete_version("k", v, BYPASS), 403, "AccessDenied")

    def test_compliance_is_never_shortened(self) -> None:
        v = self.put_version("k")
        until = START + timedelta(days=30)
        self.assertOk(self.retention("k", v, "COMPLIANCE", until))
        for mode, when in (
            ("COMPLIANCE", until - timedelta(seconds=1)),
            ("GOVERNANCE", until + timedelta(days=1)),
            (None, None),
        ):
            for headers in (None, BYPASS):
                self.assertError(self.retention("k", v, mode, when, headers), 403, "AccessDenied")
        self.assertError(self.delete_version("k", v, BYPASS), 403, "AccessDenied")
        later = until + timedelta(days=1)
        self.assertOk(self.retention("k", v, "COMPLIANCE", later))
        self.assertOk(self.retention("k", v, "COMPLIANCE", later))  # the same date: fine
        self.assertIn(iso(later).encode(), self.s3.request("GET", "/locked/k?retention").body)
        # one millisecond before the end it is still locked; at the end it may go
        self.wall.now = later.timestamp() - 0.001
        self.assertError(self.delete_version("k", v), 403, "AccessDenied")
        self.wall.now = later.timestamp()
        self.assertOk(self.retention("k", v, "GOVERNANCE", later + timedelta(days=1)))
        self.assertOk(self.retention("k", v, None, None, BYPASS))
        self.assertOk(self.delete_version("k", v), 204)

    def test_run_out_retention_may_be_changed_and_removed(self) -> None:
        v = self.put_version("k")
        self.assertOk(self.retention("k", v, "COMPLIANCE", START + timedelta(seconds=10)))
        self.wall.advance(10)
        self.assertOk(self.retention("k", v, None, None))
        self.assertOk(self.delete_version("k", v), 204)

    def test_invalid_requests(self) -> None:
        v = self.put_version("k")
        future = iso(START + timedelta(days=1))
        cases = [
            (retention_xml("governance", future), 400, "MalformedXML"),
            (retention_xml("abc", future), 400, "MalformedXML"),
            (retention_xml("GOVERNANCE"), 400, "MalformedXML"),
            (retention_xml(None, future), 400, "MalformedXML"),
            (retention_xml("GOVERNANCE", "next tuesday"), 400, "MalformedXML"),
            (b"<Other/>", 400, "MalformedXML"),
            (retention_xml("GOVERNANCE", iso(START)), 400, "InvalidArgument"),
            (retention_xml("GOVERNANCE", "2020-01-01T00:00:00Z"), 400, "InvalidArgument"),
        ]
        for body, status, code in cases:
            got = self.s3.request("PUT", f"/locked/k?retention&versionId={v}", body)
            self.assertError(got, status, code)
        self.assertError(
            self.s3.request("GET", "/locked/k?retention"), 404, "NoSuchObjectLockConfiguration"
        )
        got = self.s3.request(
            "PUT", "/locked/k?retention&versionId=" + "0" * 32, retention_xml("GOVERNANCE", future)
        )
        self.assertError(got, 404, "NoSuchVersion")
        got = self.s3.request("PUT", "/locked/nope?retention", retention_xml("GOVERNANCE", future))
        self.assertError(got, 404, "NoSuchKey")
        got = self.s3.request(
            "PUT", "/locked/k?retention&versionId=bad", retention_xml("GOVERNANCE", future)
        )
        self.assertError(got, 400, "InvalidArgument")
        bad_bypass = {"x-amz-bypass-governance-retention": "yes"}
        got = self.s3.request(
            "PUT", "/locked/k?retention", retention_xml("GOVERNANCE", future), bad_bypass
        )
        self.assertError(got, 400, "InvalidArgument")

    def test_bucket_without_object_lock(self) -> None:
        self.assertOk(self.put("/plain/k"))
        future = retention_xml("GOVERNANCE", iso(START + timedelta(days=1)))
        for method, sub, body in (
            ("PUT", "retention", future),
            ("GET", "retention", b""),
            ("PUT", "legal-hold", hold_xml("ON")),
            ("GET", "legal-hold", b""),
        ):
            got = self.s3.request(method, f"/plain/k?{sub}", body)
            self.assertError(got, 400, "InvalidRequest")

    def test_per_version(self) -> None:
        old = self.put_version("k", b"old")
        new = self.put_version("k", b"new")
        until = START + timedelta(days=3)
        self.assertOk(self.retention("k", old, "COMPLIANCE", until))
        self.assertError(
            self.s3.request("GET", "/locked/k?retention"), 404, "NoSuchObjectLockConfiguration"
        )
        got = self.s3.request("GET", f"/locked/k?retention&versionId={old}")
        self.assertIn(b"<Mode>COMPLIANCE</Mode>", got.body)
        head = self.s3.request("HEAD", f"/locked/k?versionId={old}")
        self.assertEqual(head.header("x-amz-object-lock-mode"), "COMPLIANCE")
        self.assertEqual(head.header("x-amz-object-lock-retain-until-date"), iso(until))
        self.assertIsNone(head.header("x-amz-object-lock-legal-hold"))
        self.assertIsNone(self.s3.request("HEAD", "/locked/k").header("x-amz-object-lock-mode"))
        self.assertOk(self.delete_version("k", new), 204)
        self.assertError(self.delete_version("k", old), 403, "AccessDenied")


class LegalHoldTests(LockTestCase):
    def test_on_and_off(self) -> None:
        v = self.put_version("k")
        self.assertError(
            self.s3.request("GET", "/locked/k?legal-hold"), 404, "NoSuchObjectLockConfiguration"
        )
        self.assertOk(self.hold("k", None, "ON"))
        self.assertIn(b"<Status>ON</Status>", self.s3.request("GET", "/locked/k?legal-hold").body)
        self.assertEqual(
            self.s3.request("GET", "/locked/k").header("x-amz-object-lock-legal-hold"), "ON"
        )
        # a legal hold is not governance retention: the bypass does not lift it
        self.assertError(self.delete_version("k", v, BYPASS), 403, "AccessDenied")
        self.wall.advance(100 * 365 * DAY)
        self.assertError(self.delete_version("k", v, BYPASS), 403, "AccessDenied")
        self.assertOk(self.hold("k", v, "OFF"))
        self.assertIn(b"<Status>OFF</Status>", self.s3.request("GET", "/locked/k?legal-hold").body)
        self.assertOk(self.delete_version("k", v), 204)

    def test_invalid_status(self) -> None:
        self.put_version("k")
        for status in ("abc", "on", ""):
            self.assertError(self.hold("k", None, status), 400, "MalformedXML")
        got = self.s3.request("PUT", "/locked/k?legal-hold", b"<Other><Status>ON</Status></Other>")
        self.assertError(got, 400, "MalformedXML")


class EnforcementTests(LockTestCase):
    def locked_version(self, key: str = "k", mode: str = "GOVERNANCE") -> str:
        v = self.put_version(key)
        self.assertOk(self.retention(key, v, mode, START + timedelta(days=1)))
        return v

    def test_delete_marker_on_a_locked_object(self) -> None:
        v = self.locked_version(mode="COMPLIANCE")
        got = self.s3.request("DELETE", "/locked/k")
        self.assertOk(got, 204)
        self.assertEqual(got.header("x-amz-delete-marker"), "true")
        marker = got.header("x-amz-version-id")
        assert marker is not None
        self.assertEqual(self.s3.request("GET", "/locked/k").status, 404)
        self.assertError(self.delete_version("k", v), 403, "AccessDenied")
        self.assertOk(self.delete_version("k", marker), 204)  # markers carry no lock
        self.assertEqual(self.s3.request("GET", "/locked/k").body, b"data")
        self.assertEqual(self.versions(), [("k", v)])

    def test_delete_objects_reports_locked_versions(self) -> None:
        governed = self.locked_version("g")
        complied = self.locked_version("c", "COMPLIANCE")
        free = self.put_version("f")
        body = (
            "<Delete><Quiet>true</Quiet>"
            + "".join(
                f"<Object><Key>{k}</Key><VersionId>{v}</VersionId></Object>"
                for k, v in (("g", governed), ("c", complied), ("f", free))
            )
            + "</Delete>"
        ).encode()
        got = self.s3.request("POST", "/locked?delete", body, md5_header(body))
        self.assertOk(got)
        errors = re.findall(
            rb"<Error><Key>([^<]*)</Key><VersionId>([^<]*)</VersionId><Code>([^<]*)</Code>",
            got.body,
        )
        self.assertEqual(
            sorted(errors),
            [
                (b"c", complied.encode(), b"AccessDenied"),
                (b"g", governed.encode(), b"AccessDenied"),
            ],
        )
        self.assertNotIn(b"<Deleted>", got.body)  # quiet
        self.assertEqual(sorted(self.versions()), [("c", complied), ("g", governed)])
        got = self.s3.request("POST", "/locked?delete", body, {**md5_header(body), **BYPASS})
        errors = re.findall(rb"<Error><Key>([^<]*)</Key>", got.body)
        self.assertEqual(errors, [b"c"])
        self.assertEqual(self.versions(), [("c", complied)])

    def test_bucket_with_a_locked_version_is_not_empty(self) -> None:
        v = self.locked_version()
        marker = self.s3.request("DELETE", "/locked/k").header("x-amz-version-id")
        self.assertError(self.s3.request("DELETE", "/locked"), 409, "BucketNotEmpty")
        self.assertOk(self.delete_version("k", marker or ""), 204)
        self.assertError(self.s3.request("DELETE", "/locked"), 409, "BucketNotEmpty")
        self.assertEqual(self.versions(), [("k", v)])
        self.assertOk(self.delete_version("k", v, BYPASS), 204)
        self.assertOk(self.s3.request("DELETE", "/locked"), 204)

    def rename(
        self, source: str, destination: str, headers: dict[str, str] | None = None
    ) -> MemoryResponse:
        return self.s3.request(
            "PUT",
            f"/locked/{quote(destination)}?renameObject",
            headers={"x-amz-rename-source": f"locked/{quote(source)}", **(headers or {})},
        )

    def test_rename_never_takes_a_locked_version_away(self) -> None:
        v = self.locked_version("dir/k")
        self.put_version("dir/free")
        self.assertError(self.rename("dir/k", "moved"), 403, "AccessDenied")
        self.assertError(self.rename("dir/", "other/"), 403, "AccessDenied")
        self.assertEqual(self.versions(), [("dir/free", self.versions()[0][1]), ("dir/k", v)])
        self.assertOk(self.rename("dir/free", "elsewhere"))
        # GOVERNANCE gives way to the bypass, as for a delete
        self.assertOk(self.rename("dir/", "other/", BYPASS))
        self.assertEqual([k for k, _ in self.versions()], ["elsewhere", "other/k"])
        held = self.put_version("h/k")
        self.assertOk(self.hold("h/k", held, "ON"))
        self.assertError(self.rename("h/", "h2/", BYPASS), 403, "AccessDenied")
        self.assertError(self.rename("h/k", "h2/k", BYPASS), 403, "AccessDenied")
        self.assertOk(self.hold("h/k", held, "OFF"))
        self.assertOk(self.rename("h/", "h2/"))

    def test_rename_over_a_locked_null_version(self) -> None:
        """A moved ``null`` version would replace the destination's, which is locked."""
        self.assertOk(self.put("/plain/k", b"kept"))
        self.assertOk(self.put("/plain/src", b"src"))
        enabled = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        self.assertOk(self.s3.request("PUT", "/plain?versioning", enabled))
        self.assertOk(self.s3.request("PUT", "/plain?object-lock", lock_config_xml()))
        body = retention_xml("GOVERNANCE", iso(START + timedelta(days=1)))
        self.assertOk(self.s3.request("PUT", "/plain/k?retention&versionId=null", body))
        self.assertOk(self.s3.request("DELETE", "/plain/k"), 204)  # a marker on top of it
        got = self.s3.request(
            "PUT", "/plain/k?renameObject", headers={"x-amz-rename-source": "plain/src"}
        )
        self.assertError(got, 403, "AccessDenied")
        got = self.s3.request("GET", "/plain/k?versionId=null")
        self.assertEqual(got.body, b"kept")
        self.assertEqual(self.s3.request("GET", "/plain/src").body, b"src")

    def test_time_unlocks(self) -> None:
        v = self.locked_version(mode="COMPLIANCE")
        self.wall.advance(DAY - 1)
        self.assertError(self.delete_version("k", v), 403, "AccessDenied")
        self.wall.advance(1)
        self.assertOk(self.delete_version("k", v), 204)


class LockHeadersTests(LockTestCase):
    def refused_before_body(self, target: str, headers: dict[str, str], code: str) -> None:
        conn = self.s3.connect()
        conn.send(self.s3.head_block("PUT", target, {**headers, "content-length": "4"}))
        got = conn.response()
        assert got is not None, "no answer before the body"
        self.assertEqual((got.status, got.code()), (400, code), repr(got.body))
        self.assertTrue(conn.transport.disconnecting)

    def test_put_with_lock_headers(self) -> None:
        until = START + timedelta(days=2)
        headers = {
            "x-amz-object-lock-mode": "GOVERNANCE",
            "x-amz-object-lock-retain-until-date": iso(until),
            "x-amz-object-lock-legal-hold": "ON",
        }
        v = self.put_version("k", **headers)
        for method in ("HEAD", "GET"):
            got = self.s3.request(method, "/locked/k")
            for name, value in headers.items():
                self.assertEqual(got.header(name), value)
        self.assertError(self.delete_version("k", v, BYPASS), 403, "AccessDenied")
        # a checksum header declares the body as well as Content-MD5 does
        got = self.s3.request(
            "PUT", "/locked/c", b"data", {**headers, "x-amz-checksum-crc32": "rfPzYw=="}
        )
        self.assertOk(got)

    def test_malformed_headers_are_refused_before_the_body(self) -> None:
        future = iso(START + timedelta(days=1))
        md5 = md5_header(b"data")
        cases = [
            (
                {
                    "x-amz-object-lock-mode": "GOVERNANCE",
                    "x-amz-object-lock-retain-until-date": future,
                },
                "InvalidRequest",
            ),
            ({**md5, "x-amz-object-lock-mode": "GOVERNANCE"}, "InvalidArgument"),
            ({**md5, "x-amz-object-lock-retain-until-date": future}, "InvalidArgument"),
            (
                {
                    **md5,
                    "x-amz-object-lock-mode": "governance",
                    "x-amz-object-lock-retain-until-date": future,
                },
                "InvalidArgument",
            ),
            (
                {
                    **md5,
                    "x-amz-object-lock-mode": "GOVERNANCE",
                    "x-amz-object-lock-retain-until-date": "soon",
                },
                "InvalidArgument",
            ),
            ({**md5, "x-amz-object-lock-legal-hold": "on"}, "InvalidArgument"),
            ({**md5, "x-amz-bucket-object-lock-enabled": "true"}, "InvalidRequest"),
        ]
        for headers, code in cases:
            self.refused_before_body("/locked/new", headers, code)
        self.assertEqual(self.s3.request("HEAD", "/locked/new").status, 404)
        # operations that take no lock refuse the headers too
        got = self.s3.request(
            "GET", "/locked?versions", headers={"x-amz-object-lock-legal-hold": "ON"}
        )
        self.assertError(got, 400, "InvalidRequest")

    def test_past_date_and_bucket_without_lock(self) -> None:
        past = {
            "x-amz-object-lock-mode": "GOVERNANCE",
            "x-amz-object-lock-retain-until-date": iso(START),
        }
        self.assertError(self.put("/locked/k", headers=past), 400, "InvalidArgument")
        self.assertError(
            self.put("/plain/k", headers={"x-amz-object-lock-legal-hold": "OFF"}),
            400,
            "InvalidRequest",
        )
        self.assertEqual(self.versions(), [])
        self.assertEqual(self.s3.request("HEAD", "/plain/k").status, 404)

    def test_copy(self) -> None:
        until = START + timedelta(days=5)
        self.put_version("src", **{"x-amz-object-lock-legal-hold": "ON"})
        got = self.s3.request(
            "PUT",
            "/locked/dst",
            headers={
                "x-amz-copy-source": "/locked/src",
                "x-amz-object-lock-mode": "COMPLIANCE",
                "x-amz-object-lock-retain-until-date": iso(until),
            },
        )
        self.assertOk(got)
        head = self.s3.request("HEAD", "/locked/dst")
        self.assertEqual(head.header("x-amz-object-lock-mode"), "COMPLIANCE")
        self.assertIsNone(head.header("x-amz-object-lock-legal-hold"))  # never copied
        got = self.s3.request("PUT", "/plain/dst", headers={"x-amz-copy-source": "/locked/src"})
        self.assertOk(got)
        head = self.s3.request("HEAD", "/plain/dst")
        self.assertIsNone(head.header("x-amz-object-lock-legal-hold"))
        got = self.s3.request(
            "PUT",
            "/plain/dst2",
            headers={"x-amz-copy-source": "/locked/src", "x-amz-object-lock-legal-hold": "ON"},
        )
        self.assertError(got, 400, "InvalidRequest")

    def complete(self, bucket: str, key: str, headers: dict[str, str]) -> MemoryResponse:
        got = self.s3.request("POST", f"/{bucket}/{key}?uploads", headers=headers)
        if got.status != 200:
            return got
        upload = re.search(rb"<UploadId>([^<]+)</UploadId>", got.body)
        assert upload is not None
        uid = upload.group(1).decode()
        part = self.s3.request("PUT", f"/{bucket}/{key}?partNumber=1&uploadId={uid}", b"abc")
        etag = part.header("etag")
        body = (
            f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
            "</Part></CompleteMultipartUpload>"
        ).encode()
        return self.s3.request("POST", f"/{bucket}/{key}?uploadId={uid}", body)

    def test_multipart(self) -> None:
        until = START + timedelta(days=7)
        headers = {
            "x-amz-object-lock-mode": "GOVERNANCE",
            "x-amz-object-lock-retain-until-date": iso(until),
        }
        got = self.complete("locked", "mp", headers)
        self.assertOk(got)
        version = got.header("x-amz-version-id")
        head = self.s3.request("HEAD", "/locked/mp")
        self.assertEqual(head.header("x-amz-object-lock-retain-until-date"), iso(until))
        self.assertError(self.delete_version("mp", version or ""), 403, "AccessDenied")
        self.assertError(self.complete("plain", "mp", headers), 400, "InvalidRequest")
        past = {**headers, "x-amz-object-lock-retain-until-date": iso(START)}
        self.assertError(self.complete("locked", "mp2", past), 400, "InvalidArgument")
        got = self.complete("locked", "held", {"x-amz-object-lock-legal-hold": "ON"})
        self.assertOk(got)
        self.assertEqual(
            self.s3.request("HEAD", "/locked/held").header("x-amz-object-lock-legal-hold"), "ON"
        )


class DefaultRetentionTests(LockTestCase):
    def setUp(self) -> None:
        super().setUp()
        rule = lock_config_xml(rule_xml("GOVERNANCE", Days=3))
        self.assertOk(self.s3.request("PUT", "/locked?object-lock", rule))
        self.until = iso(START + timedelta(days=3))

    def test_every_writer_applies_it(self) -> None:
        v = self.put_version("put")
        self.assertOk(
            self.s3.request("PUT", "/locked/copy", headers={"x-amz-copy-source": "/locked/put"})
        )
        self.assertOk(LockHeadersTests.complete(self, "locked", "mp", {}))  # type: ignore[arg-type]
        for key in ("put", "copy", "mp"):
            head = self.s3.request("HEAD", f"/locked/{key}")
            self.assertEqual(head.header("x-amz-object-lock-mode"), "GOVERNANCE", key)
            self.assertEqual(head.header("x-amz-object-lock-retain-until-date"), self.until, key)
        self.assertError(self.delete_version("put", v), 403, "AccessDenied")
        self.assertOk(self.delete_version("put", v, BYPASS), 204)

    def test_explicit_headers_win(self) -> None:
        until = iso(START + timedelta(days=1))
        self.put_version(
            "k",
            **{
                "x-amz-object-lock-mode": "COMPLIANCE",
                "x-amz-object-lock-retain-until-date": until,
            },
        )
        head = self.s3.request("HEAD", "/locked/k")
        self.assertEqual(head.header("x-amz-object-lock-mode"), "COMPLIANCE")
        self.assertEqual(head.header("x-amz-object-lock-retain-until-date"), until)
        # a legal hold alone still gets the default retention beside it
        self.put_version("h", **{"x-amz-object-lock-legal-hold": "ON"})
        head = self.s3.request("HEAD", "/locked/h")
        self.assertEqual(head.header("x-amz-object-lock-retain-until-date"), self.until)
        self.assertEqual(head.header("x-amz-object-lock-legal-hold"), "ON")

    def test_a_put_without_a_digest_is_refused(self) -> None:
        got = self.s3.request("PUT", "/locked/k", b"data")
        self.assertError(got, 400, "InvalidRequest")
        self.assertEqual(self.versions(), [])
        # with no default retention, no digest is needed
        self.assertOk(self.s3.request("PUT", "/locked?object-lock", lock_config_xml()))
        self.assertOk(self.s3.request("PUT", "/locked/k", b"data"))
        self.assertIsNone(self.s3.request("HEAD", "/locked/k").header("x-amz-object-lock-mode"))

    def test_years(self) -> None:
        rule = lock_config_xml(rule_xml("COMPLIANCE", Years=1))
        self.assertOk(self.s3.request("PUT", "/locked?object-lock", rule))
        self.put_version("k")
        head = self.s3.request("HEAD", "/locked/k")
        self.assertEqual(
            head.header("x-amz-object-lock-retain-until-date"), iso(START.replace(year=2027))
        )


class RuleTests(SynchronousTestCase):
    """The rules as plain functions."""

    def version(self, **lock: object) -> ObjectVersion:
        return ObjectVersion("v" * 32, 1, 1, "e", 0, lock=ObjectLock(**lock))  # type: ignore[arg-type]

    def test_may_remove(self) -> None:
        now = 1_000_000
        cases = [
            ({}, False, True),
            ({"mode": "GOVERNANCE", "until_ms": now + 1}, False, False),
            ({"mode": "GOVERNANCE", "until_ms": now + 1}, True, True),
            ({"mode": "GOVERNANCE", "until_ms": now}, False, True),
            ({"mode": "COMPLIANCE", "until_ms": now + 1}, True, False),
            ({"mode": "COMPLIANCE", "until_ms": now}, False, True),
            ({"legal_hold": True}, True, False),
            ({"legal_hold": False}, False, True),
            ({"legal_hold": True, "mode": "GOVERNANCE", "until_ms": 0}, True, False),
        ]
        for lock, bypass, expected in cases:
            self.assertEqual(
                fl.may_remove(self.version(**lock), now, bypass), expected, (lock, bypass)
            )
        marker = ObjectVersion("m" * 32, 2, 0, "", 0, delete_marker=True)
        self.assertTrue(fl.may_remove(marker, now))

    def test_retention_changes(self) -> None:
        now, later = 1000, 5000
        governance = ObjectLock("GOVERNANCE", later)
        compliance = ObjectLock("COMPLIANCE", later)
        allowed = [
            (governance, "GOVERNANCE", later + 1, False),
            (governance, "GOVERNANCE", later, False),
            (governance, "GOVERNANCE", later - 1, True),
            (governance, None, None, True),
            (governance, "COMPLIANCE", later, True),
            (compliance, "COMPLIANCE", later + 1, False),
            (ObjectLock("COMPLIANCE", now), "GOVERNANCE", later, False),
            (ObjectLock(), "COMPLIANCE", later, False),
        ]
        for old, mode, until, bypass in allowed:
            fl.check_retention_change(old, mode, until, now, bypass)
        refused = [
            (governance, "GOVERNANCE", later - 1, False),
            (governance, None, None, False),
            (governance, "COMPLIANCE", later, False),
            (compliance, "COMPLIANCE", later - 1, True),
            (compliance, "GOVERNANCE", later + 1, True),
            (compliance, None, None, True),
        ]
        for old, mode, until, bypass in refused:
            with self.assertRaises(S3Error) as caught:
                fl.check_retention_change(old, mode, until, now, bypass)
            self.assertEqual(caught.exception.code, "AccessDenied")

    def test_default_until(self) -> None:
        leap = int(datetime(2028, 2, 29, 10, tzinfo=UTC).timestamp() * 1000)
        self.assertEqual(
            fl.default_until(DefaultRetention("GOVERNANCE", years=1), leap),
            int(datetime(2029, 2, 28, 10, tzinfo=UTC).timestamp() * 1000),
        )
        self.assertEqual(
            fl.default_until(DefaultRetention("GOVERNANCE", days=2), 5), 5 + 2 * fl.DAY_MS
        )

    def test_records_round_trip(self) -> None:
        v = self.version(mode="COMPLIANCE", until_ms=123, legal_hold=False)
        self.assertEqual(
            ObjectVersion.decode(v.encode()).lock, ObjectLock("COMPLIANCE", 123, False)
        )
        plain = ObjectVersion("null", 1, 3, "e", 5)
        self.assertNotIn("lk", plain.encode())
        self.assertEqual(ObjectVersion.decode(plain.encode()).lock, ObjectLock())
        b = Bucket(
            "b", 1, 2, 3, object_lock=True, lock_default=DefaultRetention("GOVERNANCE", years=2)
        )
        again = Bucket.decode("b", b.encode())
        self.assertEqual((again.object_lock, again.lock_default), (True, b.lock_default))
        old = Bucket.decode("b", Bucket("b", 1, 2, 3).encode())
        self.assertEqual((old.object_lock, old.lock_default), (False, None))

    def test_dates(self) -> None:
        self.assertEqual(parse_retain_until("2030-01-01T00:00:00Z"), 1893456000000)
        self.assertEqual(parse_retain_until("2030-01-01T00:00:00.000Z"), 1893456000000)
        self.assertEqual(parse_retain_until("2030-01-01T01:00:00+01:00"), 1893456000000)
        self.assertEqual(parse_retain_until("2030-01-01T00:00:00.0001Z"), 1893456000001)
        self.assertIsNone(parse_retain_until("2030-13-01T00:00:00Z"))
        self.assertIsNone(parse_retain_until("tomorrow"))
        self.assertEqual(render_retain_until(1893456000001), "2030-01-01T00:00:00.001Z")
