"""Fuzzing the small request parsers: ranges, addressing, query strings, upload and lock headers.

Strategy: each parser gets arbitrary input and input shaped like what it
expects with odd parts (digits ``int()`` refuses, enormous numbers, NULs,
invalid UTF-8, ``..`` segments). Beyond "a result or an S3 error", each test
checks the property the parser exists for: a range lies inside the object,
an accepted bucket name obeys every naming rule, a resolved key never holds a
NUL, and so on.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import request as auth_request
from s4d.errors import S3Error
from s4d.s3 import objectlock
from s4d.s3.addressing import check_bucket_name, resolve
from s4d.s3.body import BodySink
from s4d.s3.call import S3Call
from s4d.s3.handlers.common import int_param
from s4d.s3.handlers.multipart import parse_copy_range
from s4d.s3.handlers.objects import parse_copy_source
from s4d.s3.headers import CallHeaders
from s4d.s3.ranges import parse_range
from s4d.s3.request import parse_query
from s4d.util import checksums as ck
from tests.fuzz._support import INTERESTING, fuzz, odd_text, s3_only

numbers = st.one_of(
    st.integers(0, 1 << 70).map(str),
    st.sampled_from(["", "0", "00", "9" * 30, "9" * 5000, "\u00b2", "\u0661", "-0", "+5", " 3"]),
)


class RangeFuzz(SynchronousTestCase):
    def check(self, header: str, size: int) -> None:
        result = s3_only(parse_range, header, size)
        if isinstance(result, S3Error):
            self.assertEqual(result.code, "InvalidRange")
        elif result is not None:
            first, last = result
            self.assertTrue(0 <= first <= last < size, (header, size, result))

    @fuzz(300)
    @given(st.text(max_size=40), st.integers(0, 1 << 40))
    def test_arbitrary(self, header: str, size: int) -> None:
        self.check(header, size)

    @fuzz(500)
    @given(
        st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]),
        numbers,
        st.sampled_from(["-", "--", "", " - "]),
        numbers,
        st.sampled_from(["", ",0-1", " ", ","]),
        st.integers(0, 1 << 40),
    )
    def test_shaped(
        self, unit: str, first: str, dash: str, last: str, tail: str, size: int
    ) -> None:
        self.check(f"{unit}={first}{dash}{last}{tail}", size)


#: AWS's rules, stated independently of the implementation.
_RULE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)


def obeys_rules(name: str) -> bool:
    return bool(
        _RULE.fullmatch(name)
        and ".." not in name
        and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name, re.ASCII)
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
        and ".-" not in name
        and "-." not in name
    )


class AddressingFuzz(SynchronousTestCase):
    @fuzz(500)
    @given(
        st.one_of(
            st.text(max_size=70),
            st.text(alphabet="abc019.-_A\n\u00e9", min_size=1, max_size=70),
            st.sampled_from(["xn--a", "sthree-x", "abc--x-s3", "a.mrap", "1.2.3.4", "abc\n"]),
        )
    )
    def test_bucket_names(self, name: str) -> None:
        result = s3_only(check_bucket_name, name)
        self.assertEqual(result is None, obeys_rules(name), repr(name))

    @fuzz(400)
    @given(
        st.one_of(
            st.binary(max_size=60),
            st.lists(st.sampled_from([b"/", b"bkt", b"..", b".", b"%2e", b"%2F", b"%00", b"%ff",
                                      b"%", b"%e2%82", b"\xff", b"k", b"//"]), max_size=10)
            .map(b"".join),
        ),
        st.one_of(
            st.none(), st.text(max_size=30), st.sampled_from(["b.s4.test", "S4.TEST:9", "[::1]"])
        ),
        st.sampled_from([None, "s4.test"]),
    )  # fmt: skip
    def test_resolve(self, raw_path: bytes, host: str | None, domain: str | None) -> None:
        target = s3_only(resolve, raw_path, host, domain)
        if not isinstance(target, S3Error):
            self.assertNotIn("\0", target.bucket + target.key)
            target.key.encode("utf-8")  # always valid text


class QueryFuzz(SynchronousTestCase):
    @fuzz(300)
    @given(
        st.one_of(
            st.binary(max_size=200),
            st.lists(
                st.sampled_from([b"a", b"=", b"&", b"%", b"%ff", b"+", b"%2B", b";", b"x-id"])
            ).map(b"".join),
        )
    )
    def test_parse_query(self, raw: bytes) -> None:
        pairs = s3_only(parse_query, raw)
        if not isinstance(pairs, S3Error):
            self.assertLessEqual(len(pairs), 1000)
        auth_request.parse_query(raw)  # the signing view never fails

    def test_too_many_parameters(self) -> None:
        error = s3_only(parse_query, b"&".join(b"p%d=1" % i for i in range(10_000)))
        self.assertIsInstance(error, S3Error)


def _req(params: dict[str, str] | None = None, **headers: str) -> S3Call:
    return S3Call(
        method="PUT",
        bucket="bkt",
        key="k",
        params=params or {},
        subresources=frozenset(),
        headers=CallHeaders({k.replace("_", "-"): [v] for k, v in headers.items()}),
        identity=None,
    )


class _Upload:
    def write(self, data: bytes) -> None:
        return None

    def abort(self) -> None:
        pass


class _Engine:
    def upload(self, hashers: list[Any]) -> _Upload:
        return _Upload()


upload_headers = st.fixed_dictionaries(
    {},
    optional={
        "content_md5": odd_text,
        "x_amz_decoded_content_length": st.one_of(numbers, odd_text),
        "content_length": numbers,
        "x_amz_trailer": st.one_of(
            st.sampled_from(["x-amz-checksum-crc32", "x-amz-checksum-crc32,x-amz-checksum-sha1"]),
            odd_text,
        ),
        "x_amz_sdk_checksum_algorithm": st.one_of(st.sampled_from(list(ck.ALGORITHMS)), odd_text),
        "x_amz_checksum_crc32": odd_text,
        "x_amz_checksum_sha256": odd_text,
    },
)


class UploadHeaderFuzz(SynchronousTestCase):
    """The body sink reads its framing and digests from headers before any byte arrives."""

    @fuzz(400)
    @given(
        upload_headers,
        st.sampled_from(
            ["UNSIGNED-PAYLOAD", "a" * 64, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
             "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"]
        ),
        st.lists(st.sampled_from(INTERESTING), max_size=5),
    )  # fmt: skip
    def test_sink_headers(self, headers: dict[str, str], payload: str, body: list[bytes]) -> None:
        auth = SimpleNamespace(
            payload_hash=payload,
            signing_key=b"k" * 32,
            seed_signature="0" * 64,
            amz_date="20240501T120000Z",
            scope="20240501/us-east-1/s3/aws4_request",
        )
        sink = s3_only(BodySink, _Engine(), _req(**headers).headers, auth, 1 << 20)  # type: ignore[arg-type]
        if isinstance(sink, S3Error):
            return
        for piece in body:
            sink.feed(piece, None)
        s3_only(sink._trailers)

    @fuzz(300)
    @given(
        st.dictionaries(st.sampled_from(["max-keys", "max-parts", "part-number-marker"]), numbers)
    )
    def test_int_params(self, params: dict[str, str]) -> None:
        for name in params:
            value = s3_only(int_param, _req(params), name, 1000, 0, 1000)
            if not isinstance(value, S3Error):
                self.assertTrue(0 <= value <= 1000)

    @fuzz(300)
    @given(
        st.one_of(st.none(), odd_text, st.builds(lambda a, b: f"bytes={a}-{b}", numbers, numbers))
    )
    def test_copy_source_range(self, header: str | None) -> None:
        s3_only(parse_copy_range, header)

    @fuzz(300)
    @given(
        st.one_of(
            st.text(max_size=40),
            st.builds(lambda p, q: f"{p}?{q}", st.text(max_size=20), st.text(max_size=20)),
        )
    )
    def test_copy_source(self, header: str) -> None:
        source = s3_only(parse_copy_source, header)
        if not isinstance(source, S3Error):
            self.assertTrue(source.bucket and source.key)


LOCK_VALUES = st.one_of(
    odd_text,
    st.sampled_from(
        [
            "GOVERNANCE", "COMPLIANCE", "governance", "ON", "OFF", "", "true", "TRUE",
            "2030-01-01T00:00:00Z", "2030-01-01T00:00:00.123456789Z", "0001-01-01",
            "9999-12-31T23:59:59+14:00", "2030-01-01T00:00:00-23:59", "2030-W01-1",
            "\u0662\u0660\u0663\u0660-01-01",
        ]
    ),
)  # fmt: skip


class LockHeaderFuzz(SynchronousTestCase):
    """Object lock headers: a checked lock or an S3 error, whatever the values."""

    @fuzz(400)
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "x-amz-object-lock-mode",
                    "x-amz-object-lock-retain-until-date",
                    "x-amz-object-lock-legal-hold",
                    "x-amz-bucket-object-lock-enabled",
                    "x-amz-bypass-governance-retention",
                    "content-md5",
                ]
            ),
            LOCK_VALUES,
        ),
        st.sampled_from(
            ["PutObject", "CopyObject", "CreateMultipartUpload", "CreateBucket", "GetObject"]
        ),
    )
    def test_lock_headers(self, values: dict[str, str], operation: str) -> None:
        headers = CallHeaders({k: [v] for k, v in values.items()})
        s3_only(objectlock.screen_lock_headers, operation, headers)
        s3_only(objectlock.bypass_governance, headers)
        lock = s3_only(objectlock.requested_lock, headers)
        if not isinstance(lock, S3Error):
            self.assertEqual(lock.mode is None, lock.until_ms is None)
            self.assertIn(lock.mode, (None, "GOVERNANCE", "COMPLIANCE"))
            if lock.until_ms is not None:
                objectlock.render_retain_until(lock.until_ms)  # never fails on a parsed date
