"""POST Object: a browser form upload, parsed as it streams in.

The multipart/form-data body is parsed incrementally: the small fields before
``file`` are kept in memory (capped); when the ``file`` part starts, the policy
is verified (so an unauthorised upload never stores a byte) and the file's bytes
flow into the engine like any other upload. Fields after ``file`` are ignored,
as AWS ignores them. A ``Content-MD5`` or ``x-amz-checksum-*`` field is checked
against the file like the header of a PUT (``BadDigest``), and the checksum kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from twisted.internet.defer import Deferred, fail

from s4d.auth import postpolicy
from s4d.auth.request import CredentialSource
from s4d.auth.sigv4 import AuthResult
from s4d.engine import BodyDigests, ObjectsFacade, StagedBody, Upload, WrittenChunk
from s4d.errors import S3Error
from s4d.s3.body import FlowControl, declared_digests
from s4d.s3.headers import CallHeaders
from s4d.util import checksums as ck

MAX_FIELDS_BYTES = 1 << 20
MAX_PART_HEADERS = 16 << 10
#: Form fields that declare the file's digests, as the headers of a PUT do (the
#: algorithm field as the SDKs' ``x-amz-sdk-checksum-algorithm`` header).
DIGEST_FIELDS = {
    "content-md5": "content-md5",
    "x-amz-checksum-algorithm": "x-amz-sdk-checksum-algorithm",
    **{ck.header_name(alg): ck.header_name(alg) for alg in ck.ALGORITHMS},
}


@dataclass
class FormUpload:
    """A finished form upload: its fields, the verified policy and the written file."""

    fields: dict[str, str]
    key: str
    filename: str
    body: StagedBody
    #: the verified policy; None for an unsigned (anonymous) upload
    policy: postpolicy.Policy | None

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return self.body.size

    @property
    def md5_hex(self) -> str:
        """The file's MD5 (its ETag)."""
        return self.body.md5_hex


#: Form fields that sign an upload (their presence asks for the policy to be verified).
SIGNATURE_FIELDS = ("x-amz-signature", "signature", "awsaccesskeyid", "x-amz-credential")


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a Content-Type header; ``MalformedPOSTRequest`` if absent."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise S3Error("MalformedPOSTRequest")


def _disposition(headers: bytes) -> tuple[str, str | None]:
    name: str | None = None
    filename: str | None = None
    for line in headers.split(b"\r\n"):
        key, _, value = line.decode("utf-8", "replace").partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        for param in value.split(";")[1:]:
            pname, _, pvalue = param.strip().partition("=")
            pvalue = pvalue.strip().strip('"')
            if pname.lower() == "name":
                name = pvalue
            elif pname.lower() == "filename":
                filename = pvalue
    if name is None:
        raise S3Error("MalformedPOSTRequest")
    return name, filename


class FormUploadSink:
    """Receives a POST Object body chunk by chunk."""

    def __init__(
        self,
        objects: ObjectsFacade,
        credentials: CredentialSource,
        now: Callable[[], datetime],
        bucket: str,
        content_type: str,
        check_access: Callable[[AuthResult | None], None] = lambda _: None,
    ) -> None:
        """``check_access`` authorizes the policy's signer, or None for an unsigned form
        (``AccessDenied`` if not allowed)."""
        self.objects = objects
        self.check_access = check_access
        self.credentials = credentials
        self.now = now
        self.bucket = bucket
        self.delimiter = b"\r\n--" + boundary_of(content_type)
        self.buffer = bytearray(b"\r\n")
        self.state = "preamble"
        self.fields: dict[str, str] = {}
        self.field_bytes = 0
        self.part_name = ""
        self.filename = ""
        self.key = ""
        self.policy: postpolicy.Policy | None = None
        #: the form carries no policy and no signature (an anonymous upload)
        self.anonymous = False
        self.upload: Upload | None = None
        self.digests: BodyDigests | None = None
        self.error: S3Error | None = None
        self.file_done = False
        #: :meth:`finish` took the file, or it was given up: nothing more to discard
        self.consumed = False
        self._paused: FlowControl | None = None

    def feed(self, data: bytes, transport: FlowControl | None) -> None:
        """Take bytes from the socket."""
        if self.error is not None or self.state == "epilogue":
            return
        self.buffer += data
        try:
            self._parse(transport)
        except S3Error as e:
            self.error = e
            self.abort()

    def _parse(self, transport: FlowControl | None) -> None:
        while True:
            if self.state in ("preamble", "value"):
                at = self.buffer.find(self.delimiter)
                if at < 0:
                    if self.state == "value" and len(self.buffer) > MAX_FIELDS_BYTES:
                        raise S3Error("MaxPostPreDataLengthExceededError")
                    return
                if self.state == "value":
                    self._field(bytes(self.buffer[:at]))
                if not self._after_delimiter(at):
                    return
            elif self.state == "headers":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_PART_HEADERS:
                        raise S3Error("MalformedPOSTRequest")
                    return
                name, filename = _disposition(bytes(self.buffer[:end]))
                del self.buffer[: end + 4]
                self.part_name = name.lower()
                if self.part_name == "file":
                    self._start_file(filename or "")
                    self.state = "file"
                else:
                    self.state = "value"
            elif self.state == "file":
                at = self.buffer.find(self.delimiter)
                if at < 0:
                    keep = len(self.delimiter) + 2
                    if len(self.buffer) > keep:
                        self._write(bytes(self.buffer[:-keep]), transport)
                        del self.buffer[:-keep]
                    return
                self._write(bytes(self.buffer[:at]), transport)
                self.file_done = True
                self.state = "epilogue"
                self.buffer.clear()
                return
            else:
                return

    def _after_delimiter(self, at: int) -> bool:
        rest = at + len(self.delimiter)
        if len(self.buffer) < rest + 2:
            return False
        tail = bytes(self.buffer[rest : rest + 2])
        del self.buffer[: rest + 2]
        if tail == b"--":
            self.state = "epilogue"
            return False
        if tail != b"\r\n":
            raise S3Error("MalformedPOSTRequest")
        self.state = "headers"
        return True

    def _field(self, value: bytes) -> None:
        self.field_bytes += len(value)
        if self.field_bytes > MAX_FIELDS_BYTES:
            raise S3Error("MaxPostPreDataLengthExceededError")
        self.fields[self.part_name] = value.decode("utf-8", "replace")

    def _start_file(self, filename: str) -> None:
        self.filename = filename
        key = self.fields.get("key")
        if not key:
            raise S3Error(
                "InvalidArgument",
                "Bucket POST must contain a field named 'key'.",
                ArgumentName="key",
            )
        self.key = key.replace("${filename}", filename)
        checked = dict(self.fields)
        checked["key"] = self.key
        if "policy" in self.fields or any(name in self.fields for name in SIGNATURE_FIELDS):
            self.policy = postpolicy.verify(checked, self.bucket, self.credentials, self.now())
            self.check_access(self.policy.auth)
        else:
            self.check_access(None)  # unsigned: only where anonymous writes are allowed
            self.anonymous = True
        digest_fields = {
            DIGEST_FIELDS[n]: [v] for n, v in self.fields.items() if n in DIGEST_FIELDS
        }
        declared, _ = declared_digests(CallHeaders(digest_fields), "UNSIGNED-PAYLOAD")
        self.digests = BodyDigests(declared)
        self.upload = self.objects.upload(self.digests.hashers)

    def _write(self, data: bytes, transport: FlowControl | None) -> None:
        if not data or self.upload is None:
            return
        wait = self.upload.write(data)
        if wait is not None and self._paused is None and transport is not None:
            self._paused = transport
            transport.pauseProducing()
            wait.addCallback(self._resume)

    def _resume(self, _: object) -> None:
        transport, self._paused = self._paused, None
        if transport is not None:
            transport.resumeProducing()

    def abort(self) -> None:
        """The client went away, or the request failed: discard the file (once)."""
        if self.upload is not None and not self.consumed:
            self.consumed = True
            self.upload.abort()

    def finish(self) -> Deferred[FormUpload]:
        """After the body: the written file and its fields, size checked."""
        if self.error is not None:
            return fail(self.error)
        if (
            self.upload is None
            or self.digests is None
            or not self.file_done
            or (self.policy is None and not self.anonymous)
        ):
            self.abort()
            return fail(
                S3Error(
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                    ArgumentName="file",
                )
            )
        policy = self.policy
        upload = self.upload
        digests = self.digests
        self.consumed = True

        def check(chunks: list[WrittenChunk]) -> FormUpload:
            if policy is not None and policy.length_range is not None:
                low, high = policy.length_range
                if upload.size < low or upload.size > high:
                    self.objects.discard(chunks)
                    raise S3Error(
                        "EntityTooSmall" if upload.size < low else "EntityTooLarge",
                        ProposedSize=upload.size,
                    )
            try:
                md5_hex, sums = digests.verify({})
            except S3Error:
                self.objects.discard(chunks)
                raise
            body = StagedBody(chunks, upload.size, md5_hex, sums)
            return FormUpload(self.fields, self.key, self.filename, body, policy)

        return upload.close().addCallback(check)
