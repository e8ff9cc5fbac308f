"""Fuzzing the signature verifiers: SigV4 and SigV2, headers and presigned queries.

Strategy: two kinds of input per verifier. Arbitrary ones (random targets,
header names and values, random ``Authorization`` text) test that nothing but
:class:`~s4d.errors.S3Error` comes out. Structure-aware ones start from a
request this project's own signer (or SigV2's string to sign) has signed
correctly, check that it verifies, then mutate the bytes on the wire (the
target, one header value, a dropped or repeated header, one query value swapped
for odd text such as digits ``int()`` refuses) and verify again: the answer may
be success or an S3 error, nothing else. The clock is fixed so signatures stay
valid across examples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth import sigv2, sigv4
from s4d.auth.request import SignedRequest, wire_bytes, wire_text
from s4d.errors import S3Error
from tests.fuzz._support import edits, fuzz, mutate, odd_text, s3_only

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AK = "AKIDFUZZ"
SK = "fuzz/secret+key"


class Creds:
    """One key pair, plus a key whose secret is empty (it must still be handled)."""

    def secret_for(self, access_key_id: str) -> str | None:
        return {AK: SK, "EMPTY": ""}.get(access_key_id)


CREDS = Creds()
HOST = "127.0.0.1:9000"

path_text = st.one_of(
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?"),
        max_size=30,
    ).map(lambda t: "/" + t),
    st.sampled_from(["/", "/bkt", "/bkt/", "/bkt/a//b/", "/bkt/%2F", "/bkt/../x", "/bkt/%ff"]),
)
query_pairs = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=4)
header_names = st.one_of(
    st.sampled_from(
        ["content-type", "content-md5", "x-amz-meta-a", "x-amz-acl", "range", "date", "expect"]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
payload_hashes = st.sampled_from(
    [sigv4.EMPTY_SHA256, sigv4.UNSIGNED_PAYLOAD, *sigv4.STREAMING_MODES, "a" * 64]
)


def wire(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The request target and header pairs as they would be on the wire."""
    target = wire_bytes(path)
    if query:
        target += b"?" + sigv4.encode_query(query).encode("ascii")
    return target, [(k.encode("latin-1"), wire_bytes(v)) for k, v in headers.items()]


def on_wire(method: str, target: bytes, pairs: list[tuple[bytes, bytes]]) -> SignedRequest:
    return SignedRequest.from_wire(method, target, pairs)


@st.composite
def signed_v4(draw: st.DrawFn) -> tuple[str, bytes, list[tuple[bytes, bytes]]]:
    """A request correctly signed with a SigV4 Authorization header."""
    method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]))
    path = draw(path_text)
    query = draw(query_pairs)
    headers = {"host": HOST}
    headers.update(draw(st.dictionaries(header_names, header_values, max_size=3)))
    headers.pop("date", None)
    headers.update(
        sigv4.sign_request(
            method, path, query, headers, AK, SK, now=NOW, payload_hash=draw(payload_hashes)
        )
    )
    target, pairs = wire(method, path, query, headers)
    return method, target, pairs


@st.composite
def mutated_wire(
    draw: st.DrawFn, base: st.SearchStrategy[tuple[str, bytes, list[tuple[bytes, bytes]]]]
) -> tuple[str, bytes, list[tuple[bytes, bytes]]]:
    """A signed request with its target or headers damaged."""
    method, target, pairs = draw(base)
    pairs = list(pairs)
    choice = draw(st.integers(0, 4))
    if choice == 0:
        target = mutate(target, draw(edits))
    elif choice == 1 and pairs:
        at = draw(st.integers(0, len(pairs) - 1))
        name, value = pairs[at]
        pairs[at] = (name, mutate(value, draw(edits)))
    elif choice == 2 and pairs:
        del pairs[draw(st.integers(0, len(pairs) - 1))]
    elif choice == 3 and pairs:
        pairs.append(pairs[draw(st.integers(0, len(pairs) - 1))])
    else:
        pairs.append((draw(header_names).encode(), draw(odd_text).encode("utf-8")))
    return method, target, pairs


def _authorization(credential: str, signed: str, signature: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}"
    )


authorization_text = st.one_of(
    st.text(max_size=80),
    st.text(max_size=80).map(lambda t: "AWS4-HMAC-SHA256 " + t),
    st.builds(
        _authorization,
        st.one_of(
            st.text(max_size=40),
            st.builds(
                lambda a, d, r, s, t: f"{a}/{d}/{r}/{s}/{t}",
                st.sampled_from([AK, "EMPTY", "", "x/y"]),
                st.one_of(st.just("20240501"), odd_text),
                st.one_of(
                    st.just("us-east-1"),
                    st.text(max_size=8),
                    st.binary(max_size=6).map(lambda b: b.decode("utf-8", "surrogateescape")),
                ),
                st.one_of(st.just("s3"), st.text(max_size=4)),
                st.one_of(st.just("aws4_request"), st.text(max_size=4)),
            ),
        ),
        st.one_of(st.just("host;x-amz-date"), st.text(max_size=30)),
        st.one_of(st.text(alphabet="0123456789abcdef", max_size=64), st.text(max_size=70)),
    ),
)


class SigV4HeaderFuzz(SynchronousTestCase):
    @fuzz(300)
    @given(authorization_text)
    def test_parse_authorization(self, value: str) -> None:
        result = s3_only(sigv4.parse_authorization, value)
        if not isinstance(result, S3Error):
            credential, signed, signature = result
            self.assertIn("host", signed)

    @fuzz(150)
    @given(signed_v4())
    def test_signed_requests_verify(
        self, request: tuple[str, bytes, list[tuple[bytes, bytes]]]
    ) -> None:
        method, target, pairs = request
        result = s3_only(sigv4.verify_header, on_wire(method, target, pairs), CREDS, NOW)
        self.assertFalse(isinstance(result, S3Error), str(result))

    @fuzz(400)
    @given(mutated_wire(signed_v4()))
    def test_mutated(self, request: tuple[str, bytes, list[tuple[bytes, bytes]]]) -> None:
        method, target, pairs = request
        s3_only(sigv4.verify_header, on_wire(method, target, pairs), CREDS, NOW)

    @fuzz(300)
    @given(
        st.dictionaries(
            st.integers(0, 6),
            st.one_of(odd_text, st.binary(max_size=8).map(wire_text)),
            min_size=1,
            max_size=2,
        )
    )
    def test_authorization_fields(self, replacements: dict[int, str]) -> None:
        """A well-formed header with one or two fields replaced by odd text or raw bytes."""
        valid = [AK, "20240501", "us-east-1", "s3", "aws4_request", "host;x-amz-date", "0" * 64]
        a, d, r, s, t, signed, signature = (replacements.get(i, v) for i, v in enumerate(valid))
        pairs = [
            (b"host", HOST.encode()),
            (
                b"authorization",
                wire_bytes(_authorization(f"{a}/{d}/{r}/{s}/{t}", signed, signature)),
            ),
            (b"x-amz-date", b"20240501T120000Z"),
            (b"x-amz-content-sha256", b"UNSIGNED-PAYLOAD"),
        ]
        s3_only(sigv4.verify_header, SignedRequest.from_wire("GET", b"/b/k", pairs), CREDS, NOW)

    @fuzz(300)
    @given(
        st.binary(max_size=60),
        authorization_text,
        st.lists(st.tuples(header_names, odd_text), max_size=4),
        st.sampled_from(["20240501T120000Z", "", "20240501T120000", "\u00b2" * 16]),
    )
    def test_arbitrary(
        self, target: bytes, authorization: str, extra: list[tuple[str, str]], amz_date: str
    ) -> None:
        pairs = [
            (b"authorization", wire_bytes(authorization)),
            (b"x-amz-date", wire_bytes(amz_date)),
            (b"x-amz-content-sha256", b"UNSIGNED-PAYLOAD"),
        ]
        pairs += [(k.encode(), wire_bytes(v)) for k, v in extra]
        s3_only(sigv4.verify_header, SignedRequest.from_wire("GET", target, pairs), CREDS, NOW)


@st.composite
def presigned_v4(draw: st.DrawFn) -> tuple[str, bytes, list[tuple[bytes, bytes]]]:
    method = draw(st.sampled_from(["GET", "PUT"]))
    path = draw(path_text)
    # (the signer's own parameters come last; a client's earlier copy would win)
    query = [(k, v) for k, v in draw(query_pairs) if not k.startswith("X-Amz-")]
    target = sigv4.presign_url(
        method, path, query, HOST, AK, SK, now=NOW, expires=draw(st.integers(1, 604800))
    )
    return method, wire_bytes(target), [(b"host", HOST.encode())]


presign_params = st.sampled_from(
    ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
     "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Content-Sha256"]
)  # fmt: skip


class SigV4PresignedFuzz(SynchronousTestCase):
    @fuzz(100)
    @given(presigned_v4())
    def test_presigned_verify(self, request: tuple[str, bytes, list[tuple[bytes, bytes]]]) -> None:
        method, target, pairs = request
        result = s3_only(sigv4.verify_presigned, on_wire(method, target, pairs), CREDS, NOW)
        self.assertFalse(isinstance(result, S3Error), str(result))

    @fuzz(300)
    @given(mutated_wire(presigned_v4()))
    def test_mutated(self, request: tuple[str, bytes, list[tuple[bytes, bytes]]]) -> None:
        method, target, pairs = request
        s3_only(sigv4.verify_presigned, on_wire(method, target, pairs), CREDS, NOW)

    @fuzz(300)
    @given(presigned_v4(), presign_params, odd_text)
    def test_odd_parameter_values(
        self, request: tuple[str, bytes, list[tuple[bytes, bytes]]], name: str, value: str
    ) -> None:
        method, target, pairs = request
        req = on_wire(method, target, pairs)
        query = [(k, value if k == name else v) for k, v in req.query]
        if name not in dict(req.query):
            query.append((name, value))
        raw_path, _, _ = target.partition(b"?")
        target = raw_path + b"?" + sigv4.encode_query(query).encode("ascii")
        s3_only(sigv4.verify_presigned, on_wire(method, target, pairs), CREDS, NOW)


V2_DATE = format_datetime(NOW, usegmt=True)


@st.composite
def signed_v2(draw: st.DrawFn) -> tuple[str, bytes, list[tuple[bytes, bytes]], str]:
    method = draw(st.sampled_from(["GET", "PUT", "DELETE"]))
    path = draw(path_text)
    query = draw(query_pairs)
    headers = {"host": HOST, "date": V2_DATE}
    headers.update(draw(st.dictionaries(header_names, header_values, max_size=3)))
    headers["date"] = V2_DATE
    target, pairs = wire(method, path, query, headers)
    req = on_wire(method, target, pairs)
    resource = wire_bytes(path)
    auth = sigv2.sign_header(req, AK, SK, resource)
    return method, target, [*pairs, (b"authorization", wire_bytes(auth))], path


class SigV2Fuzz(SynchronousTestCase):
    @fuzz(100)
    @given(signed_v2())
    def test_signed_requests_verify(
        self, request: tuple[str, bytes, list[tuple[bytes, bytes]], str]
    ) -> None:
        method, target, pairs, path = request
        result = s3_only(sigv2.verify_header, on_wire(method, target, pairs), CREDS, NOW, path)
        self.assertFalse(isinstance(result, S3Error), str(result))

    @fuzz(300)
    @given(signed_v2(), st.data())
    def test_mutated(
        self, request: tuple[str, bytes, list[tuple[bytes, bytes]], str], data: st.DataObject
    ) -> None:
        method, target, pairs, path = request
        _, target, pairs = data.draw(mutated_wire(st.just((method, target, pairs))))
        s3_only(sigv2.verify_header, on_wire(method, target, pairs), CREDS, NOW, path)

    @fuzz(300)
    @given(st.text(max_size=60), odd_text, odd_text, st.binary(max_size=40))
    def test_arbitrary_header(self, auth: str, date: str, amz_date: str, resource: bytes) -> None:
        pairs = [(b"authorization", wire_bytes(auth)), (b"date", wire_bytes(date))]
        if amz_date:
            pairs.append((b"x-amz-date", wire_bytes(amz_date)))
        req = SignedRequest.from_wire("GET", b"/b/k", pairs)
        s3_only(sigv2.verify_header, req, CREDS, NOW, resource)

    @fuzz(300)
    @given(
        st.sampled_from([AK, "EMPTY", "nobody", ""]),
        odd_text,
        st.text(max_size=40),
        st.binary(max_size=40),
        query_pairs,
    )
    def test_presigned(
        self, key: str, expires: str, signature: str, resource: bytes, extra: list[tuple[str, str]]
    ) -> None:
        query = [("AWSAccessKeyId", key), ("Expires", expires), ("Signature", signature), *extra]
        target = b"/b/k?" + sigv4.encode_query(query).encode("ascii")
        req = SignedRequest.from_wire("GET", target, [(b"host", HOST.encode())])
        s3_only(sigv2.verify_presigned, req, CREDS, NOW, resource)
