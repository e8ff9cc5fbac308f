"""Plain data types the store hands out and takes in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NULL_VERSION = "null"


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

    def encode(self) -> dict[str, Any]:
        """The stored form."""
        value: dict[str, Any] = {
            "id": self.bucket_id,
            "root": self.root_dir,
            "created": self.created_ns,
            "region": self.region,
        }
        if self.versioning:
            value["versioning"] = self.versioning
        if self.extra:
            value["extra"] = self.extra
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

    def encode(self) -> dict[str, Any]:
        """The stored form (without ``key``: the namespace tree holds names)."""
        value: dict[str, Any] = {"vid": self.version_id, "seq": self.seq, "mt": self.mtime_ns}
        if self.delete_marker:
            value["dm"] = 1
            return value
        value["sz"] = self.size
        value["etag"] = self.etag
        if self.content_type is not None:
            value["ct"] = self.content_type
        if self.metadata:
            value["meta"] = self.metadata
        if self.headers:
            value["hdr"] = self.headers
        if self.storage_class != "STANDARD":
            value["sc"] = self.storage_class
        if self.checksums:
            value["ck"] = self.checksums
        value["ch"] = [[c.digest.hex(), c.size] for c in self.chunks]
        if self.parts is not None:
            value["parts"] = self.parts
        if self.extra:
            value["x"] = self.extra
        return value

    @classmethod
    def decode(cls, value: dict[str, Any], key: str = "") -> ObjectVersion:
        """Build from the stored form."""
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
            chunks=[ChunkRef(bytes.fromhex(h), n) for h, n in value.get("ch", ())],
            delete_marker=bool(value.get("dm")),
            parts=value.get("parts"),
            extra=value.get("x", {}),
            key=key,
        )


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
