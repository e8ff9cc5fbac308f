"""Plain data types the store hands out and takes in."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import Any

NULL_VERSION = "null"

_CHUNK_ENTRY = struct.Struct(">32sQ")


def encode_chunks(chunks: list[ChunkRef]) -> str:
    """A chunk list as one base64 string of (digest, size) entries (compact, fast)."""
    return base64.b64encode(b"".join(_CHUNK_ENTRY.pack(c.digest, c.size) for c in chunks)).decode()


def decode_chunks(value: dict[str, Any]) -> list[ChunkRef]:
    """The chunk list of a stored record, in either the compact or the older list form."""
    packed = value.get("cb")
    if packed is not None:
        return [ChunkRef(d, n) for d, n in _CHUNK_ENTRY.iter_unpack(base64.b64decode(packed))]
    return [ChunkRef(bytes.fromhex(h), n) for h, n in value.get("ch", ())]


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of an object: its content address and decoded size."""

    digest: bytes
    size: int


@dataclass(frozen=True)
class ChunkLocation:
    """Where a chunk's record lives, as read from the chunk index."""

    digest: bytes
    segment: int
    offset: int
    length: int  # stored payload length
    size: int  # decoded size
    flags: int


#: Objects up to this many bytes are kept in their version record (see docs/storage.rst):
#: no segment record, no chunk index entry, no deduplication. Above about 600 bytes an
#: inline record costs more LMDB page space than a chunk entry plus its segment record.
INLINE_MAX = 512


@dataclass(frozen=True)
class InlineLocation(ChunkLocation):
    """The "location" of an inline object's bytes: the bytes themselves.

    Readers that go through :meth:`s4d.store.store.Store.read_chunk` get
    ``data`` back; there is no segment (``segment`` is -1) and no digest.
    """

    data: bytes = b""

    @classmethod
    def of(cls, data: bytes) -> InlineLocation:
        """The location of ``data`` held inline."""
        return cls(b"", -1, 0, len(data), len(data), 0, data)


@dataclass(frozen=True)
class DefaultRetention:
    """A bucket's default retention (object lock): a mode and a period in days or in years."""

    mode: str  # "GOVERNANCE" or "COMPLIANCE"
    days: int | None = None
    years: int | None = None

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        value: dict[str, Any] = {"m": self.mode}
        if self.days is not None:
            value["d"] = self.days
        if self.years is not None:
            value["y"] = self.years
        return value

    @classmethod
    def decode(cls, value: dict[str, Any] | None) -> DefaultRetention | None:
        """Build from the stored form (None stays None)."""
        if value is None:
            return None
        return cls(value["m"], value.get("d"), value.get("y"))


@dataclass(frozen=True)
class ObjectLock:
    """A version's object lock: its retention (mode, retain-until) and its legal hold.

    Every field may be unset: a version without retention has no ``mode`` (and
    no ``until_ms``); ``legal_hold`` is None until a legal hold was ever set
    (``True`` for ON, ``False`` for OFF). As a write's request (the
    ``x-amz-object-lock-*`` headers) the same value says what was asked for.
    """

    mode: str | None = None  # "GOVERNANCE" or "COMPLIANCE"
    #: retain until this instant, in milliseconds since the Unix epoch
    until_ms: int | None = None
    legal_hold: bool | None = None

    def is_empty(self) -> bool:
        """Nothing set (nothing asked for)."""
        return self.mode is None and self.until_ms is None and self.legal_hold is None

    def encode(self) -> dict[str, Any]:
        """The stored form (only what is set)."""
        value: dict[str, Any] = {}
        if self.mode is not None:
            value["m"] = self.mode
        if self.until_ms is not None:
            value["u"] = self.until_ms
        if self.legal_hold is not None:
            value["h"] = int(self.legal_hold)
        return value

    @classmethod
    def decode(cls, value: dict[str, Any] | None) -> ObjectLock:
        """Build from the stored form (None or empty: :data:`NO_LOCK`)."""
        if not value:
            return NO_LOCK
        hold = value.get("h")
        return cls(value.get("m"), value.get("u"), None if hold is None else bool(hold))


#: No retention and no legal hold.
NO_LOCK = ObjectLock()


@dataclass
class Bucket:
    """A bucket's record."""

    name: str
    bucket_id: int
    root_dir: int
    created_ns: int
    region: str = "us-east-1"
    versioning: str | None = None  # None (never enabled), "Enabled", "Suspended"
    extra: dict[str, Any] = field(default_factory=dict)
    #: object lock is enabled (it never is disabled again; versioning stays Enabled)
    object_lock: bool = False
    #: the default retention of new versions (object lock's configuration rule)
    lock_default: DefaultRetention | None = None
    #: the id of the user who owns the bucket ("": none recorded; the root user's)
    owner: str = ""

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        value: dict[str, Any] = {
            "id": self.bucket_id,
            "root": self.root_dir,
            "created": self.created_ns,
            "region": self.region,
        }
        if self.owner:
            value["owner"] = self.owner
        if self.versioning:
            value["versioning"] = self.versioning
        if self.extra:
            value["extra"] = self.extra
        if self.object_lock:
            value["lock"] = 1
        if self.lock_default is not None:
            value["lockdef"] = self.lock_default.encode()
        return value

    @classmethod
    def decode(cls, name: str, value: dict[str, Any]) -> Bucket:
        """Build from the stored form."""
        return cls(
            name=name,
            bucket_id=value["id"],
            root_dir=value["root"],
            created_ns=value["created"],
            region=value.get("region", "us-east-1"),
            versioning=value.get("versioning"),
            extra=value.get("extra", {}),
            object_lock=bool(value.get("lock")),
            lock_default=DefaultRetention.decode(value.get("lockdef")),
            owner=value.get("owner", ""),
        )


@dataclass
class ObjectVersion:
    """One version of an object (or a delete marker)."""

    version_id: str
    seq: int
    size: int
    etag: str
    mtime_ns: int
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksums: dict[str, str] = field(default_factory=dict)
    chunks: list[ChunkRef] = field(default_factory=list)
    delete_marker: bool = False
    parts: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    #: the object's tags (PutObjectTagging, ``x-amz-tagging``), in the order given
    tags: dict[str, str] = field(default_factory=dict)
    #: retention and legal hold (object lock)
    lock: ObjectLock = NO_LOCK
    #: a multipart object's part checksums (of its one checksum algorithm), one per part
    part_checksums: list[str] | None = None
    #: a small object's bytes, kept in the record itself (then ``chunks`` is empty)
    inline: bytes | None = None

    def encode(self) -> dict[str, Any]:
        """The JSON stored form (without ``key``: the namespace tree holds names).

        Records are written in the binary form of :mod:`s4d.store.version_record`,
        which keeps :meth:`rest_fields` as its JSON tail; this whole-JSON form is
        what schema versions before 3 wrote (still read).
        """
        value: dict[str, Any] = {"vid": self.version_id, "seq": self.seq, "mt": self.mtime_ns}
        if self.delete_marker:
            value["dm"] = 1
            return value
        value["sz"] = self.size
        value["etag"] = self.etag
        if self.content_type is not None:
            value["ct"] = self.content_type
        value["cb"] = encode_chunks(self.chunks)
        if self.inline is not None:
            value["in"] = base64.b64encode(self.inline).decode()
        value.update(self.rest_fields())
        return value

    def rest_fields(self) -> dict[str, Any]:
        """The stored form of the fields beyond the common ones (empty for most records)."""
        value: dict[str, Any] = {}
        if self.delete_marker:
            return value
        if self.metadata:
            value["meta"] = self.metadata
        if self.headers:
            value["hdr"] = self.headers
        if self.storage_class != "STANDARD":
            value["sc"] = self.storage_class
        if self.checksums:
            value["ck"] = self.checksums
        if self.parts is not None:
            value["parts"] = self.parts
        if self.part_checksums is not None:
            value["pck"] = self.part_checksums
        if self.extra:
            value["x"] = self.extra
        if self.tags:
            value["tg"] = [[k, v] for k, v in self.tags.items()]
        if not self.lock.is_empty():
            value["lk"] = self.lock.encode()
        return value

    @staticmethod
    def listed(value: dict[str, Any]) -> ListedVersion | None:
        """What a key listing shows of a stored version; None for a delete marker.

        ``(etag, size, mtime_ns, storage class, checksum algorithm or "")``, read
        from the stored form without building the version: a listing page reads
        a thousand of them.
        """
        if value.get("dm"):
            return None
        checksums = value.get("ck")
        return (
            value.get("etag", ""),
            value.get("sz", 0),
            value["mt"],
            value.get("sc", "STANDARD"),
            next(iter(checksums)) if checksums else "",
        )

    @classmethod
    def decode(cls, value: dict[str, Any], key: str = "", chunks: bool = True) -> ObjectVersion:
        """Build from the stored form (``chunks=False`` skips the chunk list, for listings)."""
        return cls(
            version_id=value["vid"],
            seq=value["seq"],
            size=value.get("sz", 0),
            etag=value.get("etag", ""),
            mtime_ns=value["mt"],
            content_type=value.get("ct"),
            metadata=value.get("meta", {}),
            headers=value.get("hdr", {}),
            storage_class=value.get("sc", "STANDARD"),
            checksums=value.get("ck", {}),
            chunks=decode_chunks(value) if chunks else [],
            delete_marker=bool(value.get("dm")),
            parts=value.get("parts"),
            extra=value.get("x", {}),
            key=key,
            tags={k: v for k, v in value.get("tg", ())},
            lock=ObjectLock.decode(lk) if (lk := value.get("lk")) else NO_LOCK,
            part_checksums=value.get("pck"),
            inline=base64.b64decode(packed) if chunks and (packed := value.get("in")) else None,
        )


#: A listed key's current version: etag, size, mtime_ns, storage class, checksum algorithm.
ListedVersion = tuple[str, int, int, str, str]


@dataclass
class KeysPage:
    """A page of a key listing in the form S3's ListObjects renders it.

    :ivar rows: ``(key, etag, size, mtime_ns, storage class, checksum algorithm or "")``
        per key, in order: plain tuples, no objects per key.
    """

    rows: list[tuple[str, str, int, int, str, str]]
    common_prefixes: list[str]
    is_truncated: bool
    #: The last key or common prefix of this page (the next marker).
    last: str | None


@dataclass(frozen=True)
class ListEntry:
    """One key of a listing with its current version."""

    key: str
    version: ObjectVersion


@dataclass
class ListResult:
    """A page of a listing."""

    entries: list[ListEntry]
    common_prefixes: list[str]
    is_truncated: bool
    #: The last key or common prefix of this page (the next marker).
    last: str | None


@dataclass
class VersionEntry:
    """One version (or delete marker) of a versions listing."""

    key: str
    version: ObjectVersion
    #: the key's newest version (its current one, or a delete marker hiding it)
    is_latest: bool


@dataclass
class VersionsPage:
    """A page of ListObjectVersions: versions in key order, newest first per key."""

    entries: list[VersionEntry]
    common_prefixes: list[str]
    is_truncated: bool
    #: where the next page starts: the last key (or common prefix) of this page
    next_key_marker: str | None
    #: and the last version of that key listed (None after a common prefix)
    next_version_id_marker: str | None


@dataclass
class MultipartUpload:
    """A multipart upload in progress: where it will land and what the object will carry.

    The S3 layer decides what goes into ``metadata``, ``headers`` and ``extra``
    (tagging, object lock, checksum type ...); the store only keeps them.
    """

    upload_id: str
    bucket_id: int
    key: str
    initiated_ns: int
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksum_algorithm: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        value: dict[str, Any] = {
            "uid": self.upload_id,
            "b": self.bucket_id,
            "k": self.key,
            "init": self.initiated_ns,
        }
        if self.content_type is not None:
            value["ct"] = self.content_type
        if self.metadata:
            value["meta"] = self.metadata
        if self.headers:
            value["hdr"] = self.headers
        if self.storage_class != "STANDARD":
            value["sc"] = self.storage_class
        if self.checksum_algorithm:
            value["cka"] = self.checksum_algorithm
        if self.extra:
            value["x"] = self.extra
        return value

    @classmethod
    def decode(cls, value: dict[str, Any]) -> MultipartUpload:
        """Build from the stored form."""
        return cls(
            upload_id=value["uid"],
            bucket_id=value["b"],
            key=value["k"],
            initiated_ns=value["init"],
            content_type=value.get("ct"),
            metadata=value.get("meta", {}),
            headers=value.get("hdr", {}),
            storage_class=value.get("sc", "STANDARD"),
            checksum_algorithm=value.get("cka"),
            extra=value.get("x", {}),
        )


@dataclass
class PartRecord:
    """One uploaded part: its bytes are chunks, referenced like an object version's.

    A part holds one reference on each chunk it names (in the shared,
    deduplicated chunk index), so parts deduplicate against objects and each
    other, and completing an upload hands the references over to the new
    version without touching any byte.
    """

    number: int
    size: int
    md5: str  # hex; the part's ETag
    mtime_ns: int
    checksums: dict[str, str] = field(default_factory=dict)
    chunks: list[ChunkRef] = field(default_factory=list)

    def encode(self) -> dict[str, Any]:
        """The stored form (the part number is in the key)."""
        value: dict[str, Any] = {
            "sz": self.size,
            "md5": self.md5,
            "mt": self.mtime_ns,
            "cb": encode_chunks(self.chunks),
        }
        if self.checksums:
            value["ck"] = self.checksums
        return value

    @classmethod
    def decode(cls, number: int, value: dict[str, Any]) -> PartRecord:
        """Build from the stored form."""
        return cls(
            number=number,
            size=value["sz"],
            md5=value["md5"],
            mtime_ns=value["mt"],
            checksums=value.get("ck", {}),
            chunks=decode_chunks(value),
        )


@dataclass
class CompletedUpload:
    """What a completed multipart upload made, kept a while to answer a repeated Complete.

    ``parts_digest`` identifies the part list the completion named (see
    :func:`s4d.features.multipart.parts_digest`): a repeat must name the same.
    """

    upload_id: str
    bucket_id: int
    key: str
    version_id: str
    etag: str
    size: int
    parts_digest: str
    completed_ns: int
    checksums: dict[str, str] = field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        """The stored form (the upload id is in the key)."""
        value: dict[str, Any] = {
            "b": self.bucket_id,
            "k": self.key,
            "vid": self.version_id,
            "etag": self.etag,
            "sz": self.size,
            "pd": self.parts_digest,
            "done": self.completed_ns,
        }
        if self.checksums:
            value["ck"] = self.checksums
        return value

    @classmethod
    def decode(cls, upload_id: str, value: dict[str, Any]) -> CompletedUpload:
        """Build from the stored form."""
        return cls(
            upload_id=upload_id,
            bucket_id=value["b"],
            key=value["k"],
            version_id=value["vid"],
            etag=value["etag"],
            size=value["sz"],
            parts_digest=value["pd"],
            completed_ns=value["done"],
            checksums=value.get("ck", {}),
        )
