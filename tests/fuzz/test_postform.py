"""Fuzzing POST Object: the streaming multipart/form-data parser and the policy checks.

Strategy: policies are real ones, signed with SigV4 (or SigV2) over random
policy documents (random JSON, random conditions with odd operands such as
huge or infinite numbers), so the fuzzer gets past the signature to the
condition checks; fields and documents are also thrown at
:func:`s4d.auth.postpolicy.verify` unsigned and arbitrary. Form bodies are
built around such policies, damaged by random edits and fed to
:class:`~s4d.s3.postform.FormUploadSink` in random pieces. The sink must never
raise while fed, and must end in a verified upload or an S3 error.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import succeed
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import postpolicy, sigv2, sigv4
from s4d.errors import S3Error
from s4d.s3.postform import FormUploadSink
from tests.fuzz._support import edits, fuzz, mutate, odd_text, s3_only, split_at

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AK = "AKIDFUZZ"
SK = "fuzz/secret+key"
BOUNDARY = "----fuzzboundary"


class Creds:
    def secret_for(self, access_key_id: str) -> str | None:
        return SK if access_key_id == AK else None


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
operand = st.one_of(
    json_values, odd_text, st.sampled_from(["$key", "$Content-Type", "$bucket", "$x-amz-meta-a"])
)
numeric = st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(), st.booleans(), operand)
conditions = st.lists(
    st.one_of(
        st.builds(
            lambda a, b: [a, "$key", b], st.sampled_from(["eq", "starts-with", "EQ", "x"]), operand
        ),
        st.builds(lambda a, b: ["content-length-range", a, b], numeric, numeric),
        st.builds(lambda a, b, c: [a, b, c], operand, operand, operand),
        st.dictionaries(st.sampled_from(["bucket", "key", "acl", "$key"]), operand, max_size=2),
        json_values,
    ),
    max_size=5,
)
expirations = st.one_of(
    st.just("2030-01-01T00:00:00Z"),
    st.just("2030-01-01T00:00:00.000+00:00"),
    st.just("2000-01-01T00:00:00.000Z"),
    st.one_of(json_values, odd_text),
)


def signed_fields(document: Any, key: str, v2: bool, extra: dict[str, str]) -> dict[str, str]:
    """Form fields carrying ``document`` as a correctly signed policy."""
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    fields = {"key": key, "policy": encoded, **extra}
    if v2:
        fields.update(awsaccesskeyid=AK, signature=sigv2.sign(SK, encoded))
    else:
        fields.update(
            {
                "x-amz-algorithm": "AWS4-HMAC-SHA256",
                "x-amz-credential": f"{AK}/20240501/us-east-1/s3/aws4_request",
                "x-amz-date": "20240501T120000Z",
                "x-amz-signature": sigv4.hmac_hex(
                    sigv4.signing_key(SK, "20240501", "us-east-1"), encoded
                ),
            }
        )
    return fields


policies = st.builds(
    signed_fields,
    st.one_of(
        st.fixed_dictionaries({"expiration": expirations, "conditions": conditions}),
        json_values,
    ),
    st.one_of(st.just("uploads/${filename}"), st.text(max_size=10)),
    st.booleans(),
    st.dictionaries(
        st.sampled_from(
            ["content-type", "x-amz-meta-a", "acl", "success_action_status", "x-ignore-a"]
        ),
        st.text(max_size=8),
        max_size=3,
    ),
)


class PolicyFuzz(SynchronousTestCase):
    @fuzz(400)
    @given(policies)
    def test_signed_policies(self, fields: dict[str, str]) -> None:
        s3_only(postpolicy.verify, fields, "bkt", Creds(), NOW)

    @fuzz(300)
    @given(
        policies,
        st.sampled_from(["x-amz-signature", "signature", "x-amz-credential", "x-amz-date",
                         "x-amz-algorithm", "awsaccesskeyid", "policy"]),
        st.one_of(odd_text, st.text(max_size=70)),
    )  # fmt: skip
    def test_one_field_replaced(self, fields: dict[str, str], name: str, value: str) -> None:
        s3_only(postpolicy.verify, {**fields, name: value}, "bkt", Creds(), NOW)

    @fuzz(300)
    @given(
        st.dictionaries(
            st.sampled_from(["policy", "x-amz-signature", "x-amz-algorithm", "x-amz-credential",
                             "x-amz-date", "awsaccesskeyid", "signature", "key"]),
            st.one_of(odd_text, st.text(max_size=30)),
        )
    )  # fmt: skip
    def test_arbitrary_fields(self, fields: dict[str, str]) -> None:
        s3_only(postpolicy.verify, fields, "bkt", Creds(), NOW)


class _Upload:
    def __init__(self) -> None:
        self.size = 0
        self.aborted = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)

    def abort(self) -> None:
        self.aborted += 1

    def close(self) -> Any:
        return succeed([])


def _objects(uploads: list[_Upload]) -> Any:
    def upload(hashers: list[Any]) -> _Upload:
        uploads.append(_Upload())
        return uploads[-1]

    return SimpleNamespace(upload=upload, discard=lambda c: None)


def form_body(fields: dict[str, str], data: bytes, filename: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


class FormFuzz(SynchronousTestCase):
    def post(self, content_type: str, pieces: list[bytes]) -> Any:
        uploads: list[_Upload] = []
        sink = s3_only(FormUploadSink, _objects(uploads), Creds(), lambda: NOW, "bkt", content_type)
        if isinstance(sink, S3Error):
            return sink
        for piece in pieces:
            sink.feed(piece, None)
        outcome: list[Any] = []
        sink.finish().addBoth(outcome.append)
        result = outcome[0]
        if isinstance(result, Failure):
            result.trap(S3Error)
            for upload in uploads:
                self.assertLessEqual(upload.aborted, 1, "an upload was discarded twice")
        return result

    @fuzz(300)
    @given(
        policies,
        st.binary(max_size=200),
        st.text(max_size=10),
        edits,
        st.lists(st.integers(0, 3000), max_size=8),
    )
    def test_damaged_forms(
        self,
        fields: dict[str, str],
        data: bytes,
        filename: str,
        damage: list[tuple[int, int, bytes]],
        cuts: list[int],
    ) -> None:
        body = mutate(form_body(fields, data, filename), damage)
        self.post(f"multipart/form-data; boundary={BOUNDARY}", split_at(body, cuts))

    @fuzz(200)
    @given(
        st.one_of(odd_text, st.just("multipart/form-data; boundary=")),
        st.binary(max_size=300),
        st.lists(st.integers(0, 300), max_size=5),
    )
    def test_arbitrary(self, content_type: str, body: bytes, cuts: list[int]) -> None:
        self.post(content_type, split_at(body, cuts))
