"""Hostile and malformed requests against a real server in this process.

Strategy: a table. Each row builds the exact bytes of one request (signed with
SigV4 where that matters, so the server gets past authentication to the part
under test), sends them over a raw socket, and names the HTTP status and S3
error code that must come back. Before each row the bucket ``bkt`` holds one
object (``keep``) and one multipart upload (``mp``); after it, the store must
hold exactly that (plus the keys a row stores on purpose, such as ``..``
segments, which are legal key names), no other bucket, an unchanged
versioning state, and fsck must find no problem. A rejected upload may leave
orphan bytes at a segment's end (reclaimed by compaction, never referenced);
what it must not leave is anything a client or the index can see.

Rows that need time or several connections (slow senders, a body cut short,
pipelined garbage, the connection limit) are ordinary tests below the table.
Timeouts are configured to a second or less so they run quickly.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from s4d.auth import sigv2
from s4d.auth.chunked import encode_aws_chunked
from s4d.auth.request import SignedRequest
from s4d.auth.sigv4 import presign_url
from s4d.s3.request import ConnectionLimits
from s4d.store.fsck import check_store
from tests.s3 import rawhttp
from tests.s3.server import ACCESS_KEY, SECRET_KEY, InProcessServer, boto3_client

KEEP = b"0123456789"
MAX_UPLOAD = 10 << 20
LIMITS = ConnectionLimits(
    idle_timeout=3.0,
    header_timeout=1.0,
    body_timeout=0.5,
    body_min_rate=1024,
    max_header_bytes=64 << 10,
    max_connections=8,
)


class Wire:
    """Builds raw requests for one server (``t.port``)."""

    def __init__(self, port: int, upload_id: str) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.upload_id = upload_id

    def __call__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        sign: bool = True,
        payload_hash: str | None = None,
        length: bool = True,
        raw_headers: list[bytes] | None = None,
        close: bool = True,
    ) -> bytes:
        """One request; ``raw_headers`` are added as they are, after signing."""
        hdrs = dict(headers or {})
        if sign:
            hdrs = rawhttp.signed_headers(
                self.host, method, path, query, hdrs, body=body, payload_hash=payload_hash
            )
        else:
            hdrs.setdefault("host", self.host)
        target = path
        if query:
            target += "?" + "&".join(
                f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" if v else quote(k, safe="-_.~")
                for k, v in query
            )
        lines = [f"{method} {target} HTTP/1.1".encode()]
        lines += [f"{k}: {v}".encode() for k, v in hdrs.items()]
        names = {k.lower() for k in hdrs}
        if length and body and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(b"content-length: %d" % len(body))
        lines += raw_headers or []
        if close:
            lines.append(b"connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def v2(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> bytes:
        """A request with header values as raw bytes (not UTF-8), signed with SigV2 over them."""
        pairs = [
            (b"host", self.host.encode()),
            (b"date", formatdate(usegmt=True).encode()),
            *headers,
        ]
        if body:
            pairs.append((b"content-length", b"%d" % len(body)))
        request = SignedRequest.from_wire(method, path.encode(), pairs)
        authorization = sigv2.sign_header(request, ACCESS_KEY, SECRET_KEY, path.encode())
        pairs += [(b"authorization", authorization.encode()), (b"connection", b"close")]
        lines = [f"{method} {path} HTTP/1.1".encode()] + [k + b": " + v for k, v in pairs]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def presigned(self, method: str, path: str, expires: int = 3600) -> str:
        return presign_url(
            method, path, [], self.host, ACCESS_KEY, SECRET_KEY,
            now=datetime.now(UTC), expires=expires,
        )  # fmt: skip

    def raw_get(self, target: str, close: bool = True) -> bytes:
        tail = "connection: close\r\n" if close else ""
        return f"GET {target} HTTP/1.1\r\nhost: {self.host}\r\n{tail}\r\n".encode()


@dataclass
class Row:
    """One bad request and the answer it must get."""

    name: str
    build: Callable[[Wire], bytes]
    status: int
    code: str | None = None
    #: keys this row stores on purpose, with their bytes
    stores: dict[str, bytes] = field(default_factory=dict)
    #: part of the body of a successful answer
    body: bytes | None = None


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- XML bodies ---------------------------------------------------------------------------


def laughs(root: str) -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE {root} [{entities}]><{root}>&lol9;</{root}>'.encode()


def external_entity(root: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f"<{root}>&x;</{root}>"
    ).encode()


def malformed(root: str) -> bytes:
    return f"<{root}><Object><Key>k</Key></Object".encode()


#: operation -> (method, path, query (with the upload id filled in), root element, needs MD5)
XML_OPERATIONS: dict[str, tuple[str, str, list[tuple[str, str]], str, bool]] = {
    "create_bucket": ("PUT", "/newbucket", [], "CreateBucketConfiguration", False),
    "put_versioning": ("PUT", "/bkt", [("versioning", "")], "VersioningConfiguration", False),
    "delete_objects": ("POST", "/bkt", [("delete", "")], "Delete", True),
    "complete_multipart": (
        "POST", "/bkt/mp", [("uploadId", "{upload}")], "CompleteMultipartUpload", False
    ),
    "put_bucket_acl": ("PUT", "/bkt", [("acl", "")], "AccessControlPolicy", False),
    "put_object_acl": ("PUT", "/bkt/keep", [("acl", "")], "AccessControlPolicy", False),
}  # fmt: skip


def xml_row(operation: str, kind: str, make: Callable[[str], bytes]) -> Row:
    method, path, query, root, needs_md5 = XML_OPERATIONS[operation]

    def build(w: Wire) -> bytes:
        body = make(root)
        q = [(k, v.replace("{upload}", w.upload_id)) for k, v in query]
        headers = {"content-md5": md5_b64(body)} if needs_md5 else {}
        return w(method, path, q, headers, body)

    return Row(f"{operation}_{kind}", build, 400, "MalformedXML")


XML_ROWS = [
    xml_row(operation, kind, make)
    for operation in XML_OPERATIONS
    for kind, make in (
        ("malformed", malformed),
        ("billion_laughs", laughs),
        ("external_entity", external_entity),
    )
]


# -- the other rows -------------------------------------------------------------------------


def _aws_chunked(w: Wire, declared: str, body: bytes | None = None) -> bytes:
    data = os.urandom(5000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if body is None:
        body = encode_aws_chunked(
            [data], "STREAMING-UNSIGNED-PAYLOAD-TRAILER", trailers={"x-amz-checksum-crc32": crc}
        )
    headers = {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": declared,
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    return w(
        "PUT",
        "/bkt/chunked",
        None,
        headers,
        body,
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )


def _aws_chunked_v2(w: Wire, declared: bytes) -> bytes:
    """As :func:`_aws_chunked`, with the declared length as raw bytes (SigV2-signed)."""
    data = os.urandom(5000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = encode_aws_chunked(
        [data], "STREAMING-UNSIGNED-PAYLOAD-TRAILER", trailers={"x-amz-checksum-crc32": crc}
    )
    headers = [
        (b"content-encoding", b"aws-chunked"),
        (b"x-amz-content-sha256", b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        (b"x-amz-decoded-content-length", declared),
        (b"x-amz-trailer", b"x-amz-checksum-crc32"),
    ]
    return w.v2("PUT", "/bkt/chunked", headers, body)


def _presigned_with(w: Wire, name: str, value: str) -> bytes:
    target = w.presigned("GET", "/bkt/keep")
    path, _, query = target.partition("?")
    pairs = [p.split("=", 1) for p in query.split("&")]
    query = "&".join(f"{k}={quote(value, safe='') if k == name else v}" for k, v in pairs)
    return w.raw_get(f"{path}?{query}")


def _bad_region(w: Wire) -> bytes:
    wire = w("GET", "/bkt/keep")
    return wire.replace(b"/us-east-1/s3/aws4_request", b"/us-east-\xff/s3/aws4_request", 1)


def _form(w: Wire, key: str, bucket: str = "bkt") -> bytes:
    s3 = boto3_client(f"http://{w.host}")
    post = s3.generate_presigned_post(bucket, key, Conditions=[["starts-with", "$key", ""]])
    boundary = "----s4dbadform"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in post["fields"].items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'.encode()
        + b"\r\n"
        + os.urandom(100_000)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    body = b"".join(parts)
    content_type = f"multipart/form-data; boundary={boundary}"
    return w("POST", f"/{bucket}", None, {"content-type": content_type}, body, sign=False)


def _complete(w: Wire, part_number: str, headers: dict[str, str] | None = None) -> bytes:
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>{part_number}</PartNumber>"
        '<ETag>"0"</ETag></Part></CompleteMultipartUpload>'
    ).encode()
    return w("POST", "/bkt/mp", [("uploadId", w.upload_id)], headers, body)


def _create_bucket(name: str) -> Callable[[Wire], bytes]:
    return lambda w: w("PUT", "/" + name)


BUCKET_NAMES = {
    "too_short": "ab",
    "too_long": "a" * 64,
    "upper_case": "Upper",
    "underscore": "under_score",
    "starts_with_hyphen": "-start",
    "ends_with_hyphen": "end-",
    "starts_with_dot": ".start",
    "ends_with_dot": "end.",
    "two_dots": "a..b",
    "ip_address": "192.168.1.1",
    "xn_prefix": "xn--abc",
    "sthree_prefix": "sthree-abc",
    "demo_prefix": "amzn-s3-demo-abc",
    "s3alias_suffix": "abc-s3alias",
    "ol_s3_suffix": "abc--ol-s3",
    "mrap_suffix": "abc.mrap",
    "x_s3_suffix": "abc--x-s3",
    "table_s3_suffix": "abc--table-s3",
    "dot_hyphen": "a.-b",
    "hyphen_dot": "a-.b",
    "trailing_newline": "abc%0A",
    "space": "ab%20c",
    "non_ascii": "b%C3%BCcket",
}

R = Row
ROWS: list[Row] = [
    *XML_ROWS,
    R(
        "xml_over_2mb",
        lambda w: w(
            "POST", "/bkt", [("delete", "")], None, b"<Delete>" + b" " * (3 << 20) + b"</Delete>"
        ),
        400,
        "MalformedXML",
    ),  # fmt: skip
    R(
        "xml_doctype_only",
        lambda w: w(
            "PUT",
            "/bkt",
            [("versioning", "")],
            None,
            b"<!DOCTYPE x><VersioningConfiguration><Status>Enabled</Status>"
            b"</VersioningConfiguration>",
        ),
        400,
        "MalformedXML",
    ),  # fmt: skip
    R(
        "xml_unknown_encoding",
        lambda w: w(
            "PUT",
            "/bkt",
            [("versioning", "")],
            None,
            b'<?xml version="1.0" encoding="F-8"?><VersioningConfiguration/>',
        ),
        400,
        "MalformedXML",
    ),
    R("complete_part_number_superscript", lambda w: _complete(w, "\u00b2"), 400, "MalformedXML"),
    R(
        "complete_object_size_superscript",
        lambda w: _complete(w, "1", {"x-amz-mp-object-size": "\u00b2"}),
        400,
        "InvalidArgument",
    ),
    R(
        "sigv2_header_not_utf8",
        lambda w: w.v2("GET", "/bkt/keep", [(b"x-amz-meta-a", b"\xff\xfe")]).replace(
            b"authorization: AWS " + ACCESS_KEY.encode() + b":",
            b"authorization: AWS " + ACCESS_KEY.encode() + b":0",
        ),
        403,
        "SignatureDoesNotMatch",
    ),
    # the header block
    R(
        "header_block_1mb",
        lambda w: w(
            "GET", "/bkt", raw_headers=[b"x-pad-%d: %s" % (i, b"a" * 1000) for i in range(1024)]
        ),
        400,
        "RequestHeaderSectionTooLarge",
    ),  # fmt: skip
    R(
        "header_line_100kb",
        lambda w: w("GET", "/bkt", raw_headers=[b"x-big: " + b"a" * 100_000]),
        400,
        "RequestHeaderSectionTooLarge",
    ),
    R(
        "request_line_100kb",
        lambda w: w.raw_get("/bkt/" + "k" * 100_000),
        400,
        "RequestHeaderSectionTooLarge",
    ),
    R(
        "600_headers",
        lambda w: w("GET", "/bkt", raw_headers=[b"x-h%d: 1" % i for i in range(600)]),
        400,
        "RequestHeaderSectionTooLarge",
    ),
    R(
        "10000_query_parameters",
        lambda w: w.raw_get("/bkt?" + "&".join(["a="] * 10_000)),
        400,
        "InvalidArgument",
    ),
    R(
        "10000_named_query_parameters",
        lambda w: w.raw_get("/bkt?" + "&".join(f"p{i}=1" for i in range(10_000))),
        400,
        "RequestHeaderSectionTooLarge",
    ),
    R(
        "nul_in_header_value",
        lambda w: w("GET", "/bkt", raw_headers=[b"x-amz-meta-a: a\x00b"]),
        400,
        "InvalidRequest",
    ),
    R("not_http", lambda w: b"HELLO THERE\r\n\r\n", 400, "InvalidRequest"),
    R("http_2_request_line", lambda w: b"GET / HTTP/2.0\r\n\r\n", 400, "InvalidRequest"),
    # keys
    R(
        "key_1025_bytes",
        lambda w: w("PUT", "/bkt/" + "k" * 1025, body=os.urandom(200_000)),
        400,
        "KeyTooLongError",
    ),
    R(
        "key_1025_bytes_multibyte",
        lambda w: w("PUT", "/bkt/" + quote("\u00e9" * 512 + "k"), body=b"x"),
        400,
        "KeyTooLongError",
    ),  # fmt: skip
    R(
        "key_1024_bytes",
        lambda w: w("PUT", "/bkt/" + "k" * 1024, body=b"long"),
        200,
        stores={"k" * 1024: b"long"},
    ),
    R("invalid_utf8_key", lambda w: w("PUT", "/bkt/%ff%fe", body=b"x"), 400, "InvalidURI"),
    R("invalid_utf8_get", lambda w: w("GET", "/bkt/%c3%28"), 400, "InvalidURI"),
    R("truncated_utf8_escape", lambda w: w("GET", "/bkt/%e2%82"), 400, "InvalidURI"),
    R("invalid_utf8_query", lambda w: w.raw_get("/bkt?prefix=%ff"), 400, "InvalidArgument"),
    R("nul_in_key", lambda w: w("PUT", "/bkt/a%00b", body=b"x"), 400, "InvalidURI"),
    R(
        "raw_nul_in_target",
        lambda w: b"PUT /bkt/a\x00b HTTP/1.1\r\nhost: x\r\n\r\n",
        400,
        "InvalidRequest",
    ),
    # dot segments are names, never paths
    R(
        "dotdot_key",
        lambda w: w("PUT", "/bkt/../escape-s4d-dotdot", body=b"dd"),
        200,
        stores={"../escape-s4d-dotdot": b"dd"},
    ),
    R(
        "dot_segments",
        lambda w: w("PUT", "/bkt/a/./b/../c", body=b"ds"),
        200,
        stores={"a/./b/../c": b"ds"},
    ),
    R(
        "deep_dotdot",
        lambda w: w("PUT", "/bkt/" + "../" * 12 + "tmp/escape-s4d-deep", body=b"dp"),
        200,
        stores={"../" * 12 + "tmp/escape-s4d-deep": b"dp"},
    ),
    R(
        "encoded_dotdot",
        lambda w: w("PUT", "/bkt/%2e%2e/%2E/x", body=b"ed"),
        200,
        stores={".././x": b"ed"},
    ),
    R("dot_key", lambda w: w("PUT", "/bkt/.", body=b"d1"), 200, stores={".": b"d1"}),
    R("dotdot_only_key", lambda w: w("PUT", "/bkt/..", body=b"d2"), 200, stores={"..": b"d2"}),
    R("dotdot_bucket", lambda w: w("PUT", "/../x", body=b"x"), 404, "NoSuchBucket"),
    # bucket names
    *[
        R(
            f"bucket_name_{rule}",
            _create_bucket(name),
            400,
            "InvalidBucketName",
        )
        for rule, name in BUCKET_NAMES.items()
    ],  # fmt: skip
    # lengths and framing
    R(
        "content_length_negative",
        lambda w: w("PUT", "/bkt/cl", raw_headers=[b"content-length: -1"]),
        400,
        "InvalidArgument",
    ),
    R(
        "content_length_text",
        lambda w: w("PUT", "/bkt/cl", raw_headers=[b"content-length: ten"]),
        400,
        "InvalidArgument",
    ),
    R(
        "content_length_over_max_upload",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            payload_hash="UNSIGNED-PAYLOAD",
            raw_headers=[b"content-length: %d" % (MAX_UPLOAD + 1)],
        ),
        400,
        "EntityTooLarge",
    ),  # fmt: skip
    R(
        "content_length_absurd",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            payload_hash="UNSIGNED-PAYLOAD",
            raw_headers=[b"content-length: " + b"9" * 30],
        ),
        400,
        "EntityTooLarge",
    ),  # fmt: skip
    R(
        "content_length_5000_digits",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            payload_hash="UNSIGNED-PAYLOAD",
            raw_headers=[b"content-length: " + b"9" * 5000],
        ),
        400,
        "EntityTooLarge",
    ),  # fmt: skip
    R(
        "content_length_huge_for_xml",
        lambda w: w(
            "POST",
            "/bkt",
            [("delete", "")],
            payload_hash="UNSIGNED-PAYLOAD",
            raw_headers=[b"content-length: 104857600"],
        ),
        400,
        "MaxMessageLengthExceeded",
    ),  # fmt: skip
    R(
        "two_content_lengths",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            body=b"hello",
            length=False,
            raw_headers=[b"content-length: 5", b"content-length: 6"],
        ),
        400,
        "InvalidRequest",
    ),
    R(
        "transfer_encoding_and_content_length",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            length=False,
            body=b"5\r\nhello\r\n0\r\n\r\n",
            payload_hash="UNSIGNED-PAYLOAD",
            raw_headers=[b"transfer-encoding: chunked", b"content-length: 5"],
        ),
        400,
        "InvalidRequest",
    ),
    R(
        "unknown_transfer_encoding",
        lambda w: w(
            "PUT", "/bkt/cl", length=False, body=b"hello", raw_headers=[b"transfer-encoding: gzip"]
        ),
        501,
        "NotImplemented",
    ),
    R(
        "transfer_encoding_list",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            length=False,
            body=b"hello",
            raw_headers=[b"transfer-encoding: gzip, chunked"],
        ),
        501,
        "NotImplemented",
    ),
    R(
        "malformed_chunked_body",
        lambda w: w(
            "PUT",
            "/bkt/cl",
            length=False,
            payload_hash="UNSIGNED-PAYLOAD",
            body=b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
            raw_headers=[b"transfer-encoding: chunked"],
        ),
        400,
        "InvalidRequest",
    ),
    R(
        "chunked_xml_over_cap",
        lambda w: w(
            "POST",
            "/bkt",
            [("delete", "")],
            length=False,
            payload_hash="UNSIGNED-PAYLOAD",
            raw_headers=[b"transfer-encoding: chunked"],
            body=b"100000\r\n"
            + b" " * 0x100000
            + b"\r\n" * 1
            + (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 4
            + b"0\r\n\r\n",
        ),
        400,
        "MaxMessageLengthExceeded",
    ),  # fmt: skip
    R("decoded_length_too_big", lambda w: _aws_chunked(w, "5010"), 400, "IncompleteBody"),
    R("decoded_length_too_small", lambda w: _aws_chunked(w, "4990"), 400, "IncompleteBody"),
    R("decoded_length_negative", lambda w: _aws_chunked(w, "-5"), 400, "InvalidArgument"),
    R("decoded_length_superscript", lambda w: _aws_chunked(w, "\u00b2"), 400, "InvalidArgument"),
    R(
        "decoded_length_latin1_superscript",
        lambda w: _aws_chunked_v2(w, b"\xb2"),
        400,
        "InvalidArgument",
    ),
    R(
        "decoded_length_5000_digits",
        lambda w: _aws_chunked_v2(w, b"9" * 5000),
        400,
        "EntityTooLarge",
    ),
    R(
        "decoded_length_over_max",
        lambda w: _aws_chunked(w, str(MAX_UPLOAD + 1)),
        400,
        "EntityTooLarge",
    ),
    R(
        "aws_chunked_garbage",
        lambda w: _aws_chunked(w, "5", b"zz\r\nhello\r\n0\r\n\r\n"),
        400,
        "InvalidRequest",
    ),
    R(
        "streaming_signed_without_decoded_length",
        lambda w: w("PUT", "/bkt/cl", body=b"x", payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        411,
        "MissingContentLength",
    ),
    # uploads refused after their body arrived: discarded, not left behind
    R(
        "metadata_too_large",
        lambda w: w("PUT", "/bkt/meta", None, {"x-amz-meta-a": "a" * 3000}, os.urandom(200_000)),
        400,
        "MetadataTooLarge",
    ),  # fmt: skip
    R(
        "bad_storage_class",
        lambda w: w("PUT", "/bkt/sc", None, {"x-amz-storage-class": "BOGUS"}, os.urandom(200_000)),
        400,
        "InvalidStorageClass",
    ),  # fmt: skip
    R(
        "put_to_missing_bucket",
        lambda w: w("PUT", "/nobucket/k", body=os.urandom(200_000)),
        404,
        "NoSuchBucket",
    ),
    R(
        "content_md5_invalid",
        lambda w: w("PUT", "/bkt/md5", None, {"content-md5": "nope"}, b"x"),
        400,
        "InvalidDigest",
    ),
    R(
        "content_sha256_mismatch",
        lambda w: w(
            "PUT", "/bkt/sha", body=b"actual", payload_hash=hashlib.sha256(b"claimed").hexdigest()
        ),
        400,
        "XAmzContentSHA256Mismatch",
    ),
    R(
        "upload_part_unknown_upload",
        lambda w: w(
            "PUT", "/bkt/mp", [("partNumber", "1"), ("uploadId", "nope")], body=os.urandom(100_000)
        ),
        404,
        "NoSuchUpload",
    ),
    R(
        "upload_part_number_superscript",
        lambda w: w(
            "PUT",
            "/bkt/mp",
            [("partNumber", "\u00b2"), ("uploadId", w.upload_id)],
            body=os.urandom(100_000),
        ),
        400,
        "InvalidArgument",
    ),  # fmt: skip
    R(
        "copy_source_range_5000_digits",
        lambda w: w(
            "PUT",
            "/bkt/mp",
            [("partNumber", "1"), ("uploadId", w.upload_id)],
            {"x-amz-copy-source": "bkt/keep", "x-amz-copy-source-range": "bytes=0-" + "9" * 5000},
        ),
        416,
        "InvalidRange",
    ),  # fmt: skip  (outside the source: was 400 InvalidArgument)
    # ranges and listing parameters
    R(
        "range_garbage",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=abc"}),
        200,
        body=KEEP,
    ),
    R(
        "range_reversed",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=5-1"}),
        200,
        body=KEEP,
    ),
    R(
        "range_multiple",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=0-1,3-4"}),
        200,
        body=KEEP,
    ),
    R(
        "range_other_unit",
        lambda w: w("GET", "/bkt/keep", None, {"range": "items=0-1"}),
        200,
        body=KEEP,
    ),
    R(
        "range_superscript",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=\u00b2-"}),
        200,
        body=KEEP,
    ),
    R(
        "range_latin1_superscript",
        lambda w: w.v2("GET", "/bkt/keep", [(b"range", b"bytes=\xb2-")]),
        200,
        body=KEEP,
    ),
    R(
        "range_latin1_superscript_end",
        lambda w: w.v2("GET", "/bkt/keep", [(b"range", b"bytes=1-\xb9")]),
        200,
        body=KEEP,
    ),
    R(
        "range_past_end",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=10-"}),
        416,
        "InvalidRange",
    ),
    R(
        "range_empty_suffix",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=-0"}),
        416,
        "InvalidRange",
    ),
    R(
        "range_5000_digits",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=" + "9" * 5000 + "-"}),
        416,
        "InvalidRange",
    ),
    R(
        "range_end_enormous",
        lambda w: w("GET", "/bkt/keep", None, {"range": "bytes=2-" + "9" * 30}),
        206,
        body=KEEP[2:],
    ),
    R("max_keys_text", lambda w: w("GET", "/bkt", [("max-keys", "x")]), 400, "InvalidArgument"),
    R(
        "max_keys_negative",
        lambda w: w("GET", "/bkt", [("max-keys", "-1")]),
        400,
        "InvalidArgument",
    ),
    R(
        "max_keys_5000_digits",
        lambda w: w("GET", "/bkt", [("max-keys", "9" * 5000)]),
        400,
        "InvalidArgument",
    ),
    R(
        "max_keys_superscript",
        lambda w: w("GET", "/bkt", [("max-keys", "\u00b2")]),
        400,
        "InvalidArgument",
    ),
    R("max_keys_enormous", lambda w: w("GET", "/bkt", [("max-keys", "9" * 25)]), 200),
    R(
        "part_number_superscript",
        lambda w: w("GET", "/bkt/keep", [("partNumber", "\u00b2")]),
        400,
        "InvalidArgument",
    ),
    # methods
    R("method_patch", lambda w: w("PATCH", "/bkt/keep", body=b"x"), 405, "MethodNotAllowed"),
    R("method_propfind", lambda w: w("PROPFIND", "/bkt"), 405, "MethodNotAllowed"),
    R("method_trace", lambda w: w("TRACE", "/"), 405, "MethodNotAllowed"),
    R("method_invented", lambda w: w("FROB", "/bkt/keep"), 405, "MethodNotAllowed"),
    # authentication
    R(
        "presign_expires_over_a_week",
        lambda w: w.raw_get(w.presigned("GET", "/bkt/keep", 604801)),
        400,
        "AuthorizationQueryParametersError",
    ),
    R(  # valid for no time: expired when signed (was 400 AuthorizationQueryParametersError)
        "presign_expires_zero",
        lambda w: _presigned_with(w, "X-Amz-Expires", "0"),
        403,
        "AccessDenied",
    ),
    R(
        "presign_expires_negative",
        lambda w: _presigned_with(w, "X-Amz-Expires", "-1"),
        403,
        "AccessDenied",
    ),
    R(
        "presign_expires_superscript",
        lambda w: _presigned_with(w, "X-Amz-Expires", "\u00b2"),
        400,
        "AuthorizationQueryParametersError",
    ),
    R(
        "presign_expires_5000_digits",
        lambda w: _presigned_with(w, "X-Amz-Expires", "9" * 5000),
        400,
        "AuthorizationQueryParametersError",
    ),
    R(
        "presign_date_garbage",
        lambda w: _presigned_with(w, "X-Amz-Date", "\u00b2" * 16),
        400,
        "AuthorizationQueryParametersError",
    ),
    R(
        "sigv2_expires_superscript",
        lambda w: w.raw_get(f"/bkt/keep?AWSAccessKeyId={ACCESS_KEY}&Expires=%C2%B2&Signature=x"),
        403,
        "AccessDenied",
    ),
    R(
        "sigv2_expires_5000_digits",
        lambda w: w.raw_get(
            f"/bkt/keep?AWSAccessKeyId={ACCESS_KEY}&Expires={'9' * 5000}&Signature=x"
        ),
        403,
        "AccessDenied",
    ),  # fmt: skip
    R("sigv4_region_not_utf8", _bad_region, 403, "SignatureDoesNotMatch"),
    R(
        "sigv4_garbage_authorization",
        lambda w: w(
            "GET", "/bkt", sign=False, raw_headers=[b"authorization: AWS4-HMAC-SHA256 \xff\xfe,,,="]
        ),
        400,
        "AuthorizationHeaderMalformed",
    ),  # fmt: skip
    R("unsigned", lambda w: w("PUT", "/bkt/anon", sign=False, body=b"x"), 403, "AccessDenied"),
    # POST Object forms
    R(
        "form_without_boundary",
        lambda w: w(
            "POST", "/bkt", None, {"content-type": "multipart/form-data"}, b"--x\r\n", sign=False
        ),
        400,
        "MalformedPOSTRequest",
    ),
    R(
        "form_garbage",
        lambda w: w(
            "POST",
            "/bkt",
            None,
            {"content-type": "multipart/form-data; boundary=x"},
            os.urandom(5000),
            sign=False,
        ),
        400,
        "InvalidArgument",
    ),  # fmt: skip
    R("form_key_with_nul", lambda w: _form(w, "a\x00b"), 400, "InvalidArgument"),
    R("form_key_1025_bytes", lambda w: _form(w, "k" * 1025), 400, "KeyTooLongError"),
    R("form_to_missing_bucket", lambda w: _form(w, "k", "nobucket"), 404, "NoSuchBucket"),
]


def _read_reply(port: int, data: bytes, wait: float = 5.0) -> bytes:
    return rawhttp.send_raw(port, data, wait=wait)


class StoreFixture(TestCase):
    """A server whose bucket holds ``keep`` and the upload ``mp``; checks nothing else appears."""

    def setUp(self) -> Any:
        self.server = InProcessServer(limits=LIMITS, max_upload_size=MAX_UPLOAD)
        self.server.start()
        self.port = self.server.port.getHost().port
        return deferToThread(self._fill)

    def _fill(self) -> None:
        s3 = boto3_client(self.server.url)
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="keep", Body=KEEP)
        self.upload_id = s3.create_multipart_upload(Bucket="bkt", Key="mp")["UploadId"]
        self.wire = Wire(self.port, self.upload_id)

    def tearDown(self) -> Any:
        return self.server.stop()

    async def state(self) -> dict[str, Any]:
        """What a client or the index could see."""
        engine = self.server.engine
        buckets = sorted(b.name for b in await engine.buckets.list_all())
        listing = await engine.objects.list_page("bkt", "", None, None, 1000)
        uploads = await engine.multipart.list_uploads("bkt")
        bucket = await engine.buckets.get("bkt")
        return {
            "buckets": buckets,
            "keys": sorted(e.key for e in listing.entries),
            "uploads": sorted((u.key, u.upload_id) for u in uploads.uploads),
            "versioning": bucket.versioning,
        }

    async def settle(self) -> None:
        """Give discarded uploads and their bookkeeping a moment to finish."""
        await deferLater(reactor, 0.05, lambda: None)

    async def check_store(self, stores: dict[str, bytes] | None = None) -> None:
        await self.settle()
        state = await self.state()
        expected_keys = sorted({"keep", *(stores or {})})
        self.assertEqual(state["buckets"], ["bkt"])
        self.assertEqual(state["keys"], expected_keys)
        self.assertEqual(state["uploads"], [("mp", self.upload_id)])
        self.assertIsNone(state["versioning"])
        for key, data in {"keep": KEEP, **(stores or {})}.items():
            opened = await self.server.engine.objects.open("bkt", key, None, True)
            self.assertEqual(opened.version.size, len(data), key)
            self.assertEqual(opened.version.etag, hashlib.md5(data).hexdigest(), key)
        report = check_store(self.server.store)
        self.assertTrue(report.ok, report.render())
        self.assertEqual(report.stats.objects, len(expected_keys))
        self.assertEqual(report.stats.uploads, 1)
        self.assertEqual(report.stats.parts, 0)

    async def run_row(self, row: Row) -> None:
        wire = row.build(self.wire)
        reply = await deferToThread(_read_reply, self.port, wire)
        answers = [r for r in rawhttp.parse_responses(reply) if r[0] != 100]
        self.assertTrue(answers, f"no answer: {reply[:300]!r}")
        status, headers, body = answers[0]
        self.assertEqual(status, row.status, body[:500])
        if row.code is not None:
            self.assertIn(f"<Code>{row.code}</Code>".encode(), body)
            self.assertIn(b"<RequestId>", body)
            self.assertEqual(headers.get("content-type"), "application/xml")
        if row.body is not None:
            self.assertEqual(body, row.body)
        await self.check_store(row.stores)


class BadRequestTests(StoreFixture):
    """Generated from :data:`ROWS`: one test per row (see the module docstring)."""


def _make_test(row: Row) -> Callable[[BadRequestTests], Any]:
    async def test(self: BadRequestTests) -> None:
        await self.run_row(row)

    test.__name__ = f"test_{row.name}"
    test.__doc__ = f"{row.name}: {row.status} {row.code or ''}".strip()
    return test


for _row in ROWS:
    assert not hasattr(BadRequestTests, f"test_{_row.name}"), _row.name
    setattr(BadRequestTests, f"test_{_row.name}", _make_test(_row))


class ConnectionTests(StoreFixture):
    """Requests that need time, several connections or a half-sent body."""

    def open(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def put_head(self, key: str, length: int, *, expect: bool = False) -> bytes:
        headers = {"content-length": str(length)}
        if expect:
            headers["expect"] = "100-continue"
        return self.wire("PUT", f"/bkt/{key}", None, headers, payload_hash="UNSIGNED-PAYLOAD")

    async def test_body_shorter_than_content_length(self) -> None:
        """The client sends half its body and hangs up: nothing is stored."""

        def send() -> None:
            with self.open() as sock:
                sock.sendall(self.put_head("short", 300_000) + os.urandom(150_000))

        await deferToThread(send)
        await deferLater(reactor, 0.3, lambda: None)
        await self.check_store()

    async def test_body_longer_than_content_length(self) -> None:
        """Bytes past Content-Length are the next request: garbage there gets its own 400."""
        data = os.urandom(1000)
        wire = self.wire("PUT", "/bkt/exact", body=data).replace(b"connection: close\r\n", b"")
        reply = await deferToThread(_read_reply, self.port, wire + b"GARBAGE" * 100 + b"\r\n\r\n")
        answers = rawhttp.parse_responses(reply)
        self.assertEqual([a[0] for a in answers], [200, 400], reply[:500])
        self.assertIn(b"<Code>InvalidRequest</Code>", answers[1][2])
        await self.check_store({"exact": data})

    async def test_slow_sender(self) -> None:
        """A body trickled a byte at a time is abandoned with RequestTimeout; nothing is stored."""

        def trickle() -> bytes:
            with self.open() as sock:
                sock.sendall(self.put_head("slow", 2000))
                started = time.monotonic()
                reply = b""
                sock.settimeout(0.1)
                while time.monotonic() - started < 5:
                    try:
                        sock.sendall(b"x")
                    except OSError:
                        break
                    try:
                        chunk = sock.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    reply += chunk
                return reply

        started = time.monotonic()
        reply = await deferToThread(trickle)
        self.assertLess(time.monotonic() - started, 4)
        answers = rawhttp.parse_responses(reply)
        self.assertEqual(answers[0][0], 400, reply[:300])
        self.assertIn(b"<Code>RequestTimeout</Code>", answers[0][2])
        self.assertEqual(answers[0][1].get("connection"), "close")
        await self.check_store()

    async def test_body_that_stops(self) -> None:
        """A body that stops arriving (the client stays connected) is abandoned too."""

        def stall() -> bytes:
            with self.open() as sock:
                sock.sendall(self.put_head("stall", 100_000, expect=True))
                sock.sendall(os.urandom(10_000))
                sock.settimeout(4)
                reply = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return reply
                    reply += chunk

        reply = await deferToThread(stall)
        answers = [a for a in rawhttp.parse_responses(reply) if a[0] != 100]
        self.assertEqual(answers[0][0], 400, reply[:300])
        self.assertIn(b"<Code>RequestTimeout</Code>", answers[0][2])
        await self.check_store()

    async def test_slow_headers(self) -> None:
        """A header block trickled a line at a time (slowloris) gets RequestTimeout."""

        def slowloris() -> tuple[bytes, float]:
            with self.open() as sock:
                sock.sendall(b"GET /bkt HTTP/1.1\r\n")
                started = time.monotonic()
                sock.settimeout(0.2)
                reply = b""
                for i in range(40):
                    try:
                        sock.sendall(b"x-slow-%d: 1\r\n" % i)
                        chunk = sock.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    reply += chunk
                return reply, time.monotonic() - started

        reply, took = await deferToThread(slowloris)
        self.assertLess(took, 3)
        answers = rawhttp.parse_responses(reply)
        self.assertEqual(answers[0][0], 400, reply[:300])
        self.assertIn(b"<Code>RequestTimeout</Code>", answers[0][2])
        await self.check_store()

    async def test_idle_connection_closed(self) -> None:
        """A connection that sends nothing is closed after the idle timeout, silently."""

        def idle() -> tuple[bytes, float]:
            with self.open() as sock:
                started = time.monotonic()
                sock.settimeout(6)
                data = sock.recv(100)
                return data, time.monotonic() - started

        data, took = await deferToThread(idle)
        self.assertEqual(data, b"")
        self.assertTrue(2.5 < took < 5, took)

    async def test_keep_alive_pause_is_not_slow_headers(self) -> None:
        """The header clock starts at a request's first byte, not when the last one ended."""

        def two_requests() -> list[Any]:
            with self.open() as sock:
                sock.sendall(self.wire("GET", "/bkt/keep", close=False))
                time.sleep(1.5)  # longer than the header timeout, shorter than the idle one
                sock.sendall(self.wire("GET", "/bkt/keep"))
                sock.settimeout(5)
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
                return rawhttp.parse_responses(reply)

        answers = await deferToThread(two_requests)
        self.assertEqual([(a[0], a[2]) for a in answers], [(200, KEEP), (200, KEEP)])

    async def test_connection_limit(self) -> None:
        """Beyond max_connections a request gets 503 SlowDown and the connection closes."""

        def crowd() -> tuple[list[Any], list[Any]]:
            held = [self.open() for _ in range(LIMITS.max_connections)]
            try:
                time.sleep(0.2)
                reply = _read_reply(self.port, self.wire("GET", "/bkt/keep"))
                refused = rawhttp.parse_responses(reply)
            finally:
                for sock in held:
                    sock.close()
            time.sleep(0.3)
            reply = _read_reply(self.port, self.wire("GET", "/bkt/keep"))
            return refused, rawhttp.parse_responses(reply)

        refused, later = await deferToThread(crowd)
        status, headers, body = refused[0]
        self.assertEqual(status, 503)
        self.assertIn(b"<Code>SlowDown</Code>", body)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual((later[0][0], later[0][2]), (200, KEEP))

    async def test_upload_refused_at_the_limit_stores_nothing(self) -> None:
        """A PUT over the limit is refused before its body is read (no 100 Continue)."""

        def crowd() -> bytes:
            held = [self.open() for _ in range(LIMITS.max_connections)]
            try:
                time.sleep(0.2)
                return _read_reply(self.port, self.put_head("crowded", 100_000, expect=True))
            finally:
                for sock in held:
                    sock.close()

        reply = await deferToThread(crowd)
        self.assertTrue(reply.startswith(b"HTTP/1.1 503"), reply[:200])
        await self.check_store()

    async def test_dot_segments_never_touch_the_filesystem(self) -> None:
        """Keys full of ``..`` are names in the index: no file appears for them anywhere."""
        for row in ROWS:
            if row.name in ("dotdot_key", "deep_dotdot"):
                await deferToThread(_read_reply, self.port, row.build(self.wire))
        parent = os.path.dirname(self.server.data_dir)
        for root, _, files in os.walk(self.server.data_dir):
            self.assertFalse([f for f in files if "escape-s4d" in f], root)
        self.assertFalse(os.path.exists(os.path.join(parent, "escape-s4d-dotdot")))
        self.assertFalse(os.path.exists("/tmp/escape-s4d-deep"))
        top = sorted(os.listdir(self.server.data_dir))
        self.assertNotIn("..", top)
        self.assertFalse([t for t in top if t.startswith("escape")])
        await self.check_store(
            {"../escape-s4d-dotdot": b"dd", "../" * 12 + "tmp/escape-s4d-deep": b"dp"}
        )
