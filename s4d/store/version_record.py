"""The stored form of a version record: a compact binary layout, or the older JSON one.

The first byte of a value says which form it is in. ``0x01`` is the JSON
mapping of :mod:`s4d.store.codec` (what every record was before schema version
3; still read, never written). ``0x02`` is the binary layout below, which is
what :func:`encode_version` writes::

    tag      0x02
    flags    varint, see the F_* constants
    seq      varint
    mtime    8 bytes, little-endian (nanoseconds since the epoch)
    vid      nothing if F_NULL_VID ("null"); 16 bytes if F_HEX_VID (32 hex digits);
             else varint length + UTF-8
    --- the rest only for a version that is not a delete marker ---
    size     varint (absent with F_INLINE: the length of the inline bytes)
    etag     nothing if F_ETAG_MD5 (the MD5 of the inline bytes, as a simple PUT's is);
             16 bytes + varint part count (0: none) if F_HEX_ETAG ("<32 hex>[-N]");
             else varint length + UTF-8
    ctype    varint length + UTF-8, if F_CTYPE
    sums     if F_CHECKSUMS: count (1 byte) + count × (algorithm id (1 byte) + raw digest)
    body     F_INLINE: varint length + the object's bytes;
             else varint count + count × (32-byte BLAKE3 digest + varint size)
    --- then, for either ---
    rest     if F_REST: the JSON mapping (codec's compact form, no tag byte) of every
             other field (metadata, headers, checksums, tags, lock, parts ...), to the end

Varints are unsigned LEB128. Fields that are rare stay in the JSON tail, so a
new field needs no new layout: :meth:`ObjectVersion.encode` names it and the tail
carries it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from typing import Any

from s4d.store import codec
from s4d.store.model import (
    NO_LOCK,
    NULL_VERSION,
    ChunkRef,
    ListedVersion,
    ObjectLock,
    ObjectVersion,
)

FORMAT_BINARY = 0x02

# flags (a varint: the common ones fit in its first byte)
F_NULL_VID = 0x01
F_HEX_VID = 0x02
F_INLINE = 0x04
F_HEX_ETAG = 0x08
F_ETAG_MD5 = 0x10
F_CTYPE = 0x20
F_REST = 0x40
F_DELETE_MARKER = 0x80
F_CHECKSUMS = 0x100

#: Checksum algorithms the binary form holds as raw digests: (id, name, digest size).
_CHECKSUMS = (("CRC32", 4), ("CRC32C", 4), ("CRC64NVME", 8), ("SHA1", 20), ("SHA256", 32))
_CHECKSUM_ID = {name: (i, size) for i, (name, size) in enumerate(_CHECKSUMS)}

_MTIME = struct.Struct("<Q")
_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX_ETAG = re.compile(r"([0-9a-f]{32})(?:-([1-9][0-9]{0,8}))?\Z")
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _varint(n: int, out: bytearray) -> None:
    if n < 0:
        raise ValueError("varints are unsigned")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    byte = raw[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = 0
    shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _text(value: str, out: bytearray) -> None:
    data = value.encode("utf-8")
    _varint(len(data), out)
    out += data


def _read_text(raw: bytes, pos: int) -> tuple[str, int]:
    length, pos = _read_varint(raw, pos)
    end = pos + length
    return raw[pos:end].decode("utf-8"), end


def encode_version(version: ObjectVersion) -> bytes:
    """The binary stored form of ``version`` (without its key: the namespace holds names)."""
    flags = 0
    out = bytearray()
    _varint(version.seq, out)
    out += _MTIME.pack(version.mtime_ns)
    vid = version.version_id
    if vid == NULL_VERSION:
        flags |= F_NULL_VID
    elif _HEX32.match(vid):
        flags |= F_HEX_VID
        out += bytes.fromhex(vid)
    else:
        _text(vid, out)
    if version.delete_marker:
        flags |= F_DELETE_MARKER
    else:
        inline = version.inline
        if inline is None:
            _varint(version.size, out)
        else:
            if len(inline) != version.size:
                raise ValueError("inline bytes do not match the version's size")
            flags |= F_INLINE
        hex_etag = _HEX_ETAG.match(version.etag)
        if inline is not None and version.etag == _md5_hex(inline):
            flags |= F_ETAG_MD5
        elif hex_etag:
            flags |= F_HEX_ETAG
            out += bytes.fromhex(hex_etag.group(1))
            _varint(int(hex_etag.group(2) or 0), out)
        else:
            _text(version.etag, out)
        if version.content_type is not None:
            flags |= F_CTYPE
            _text(version.content_type, out)
        sums = _binary_checksums(version.checksums)
        if sums is not None:
            flags |= F_CHECKSUMS
            out += sums
        if inline is not None:
            _varint(len(inline), out)
            out += inline
        else:
            _varint(len(version.chunks), out)
            for chunk in version.chunks:
                out += chunk.digest
                _varint(chunk.size, out)
    rest = version.rest_fields()
    if flags & F_CHECKSUMS:
        del rest["ck"]
    if rest:
        flags |= F_REST
        out += _json.encode(rest).encode("utf-8")
    head = bytearray((FORMAT_BINARY,))
    _varint(flags, head)
    return bytes(head + out)


def _binary_checksums(checksums: dict[str, str]) -> bytes | None:
    """The raw form of ``checksums``, or None if one is not a plain known digest."""
    if not checksums or len(checksums) > 0xFF:
        return None
    out = bytearray((len(checksums),))
    for name, value in checksums.items():
        known = _CHECKSUM_ID.get(name)
        if known is None or not isinstance(value, str):
            return None
        try:
            digest = base64.b64decode(value, validate=True)
        except ValueError:
            return None
        if len(digest) != known[1] or base64.b64encode(digest).decode() != value:
            return None
        out.append(known[0])
        out += digest
    return bytes(out)


def decode_version(data: bytes | memoryview, key: str = "", chunks: bool = True) -> ObjectVersion:
    """A version record from its stored form, binary or JSON.

    ``chunks=False`` skips the chunk list and the inline bytes (listings).
    """
    raw = bytes(data)
    if not raw:
        raise codec.CodecError("empty version record")
    if raw[0] != FORMAT_BINARY:
        return ObjectVersion.decode(codec.decode(raw), key, chunks)
    try:
        return _decode_binary(raw, key, chunks)
    except (IndexError, ValueError, struct.error) as e:
        raise codec.CodecError(f"damaged version record: {e}") from e


def listed_version(data: bytes) -> ListedVersion | None:
    """What a key listing shows of a stored version (None for a delete marker).

    A JSON record is read without building the version
    (:meth:`ObjectVersion.listed`); a binary one is decoded without its chunks.
    """
    if data[:1] != bytes((FORMAT_BINARY,)):
        return ObjectVersion.listed(codec.decode(data))
    version = decode_version(data, chunks=False)
    if version.delete_marker:
        return None
    checksums = version.checksums
    return (
        version.etag,
        version.size,
        version.mtime_ns,
        version.storage_class,
        next(iter(checksums)) if checksums else "",
    )


def _decode_binary(raw: bytes, key: str, chunks: bool) -> ObjectVersion:
    flags, pos = _read_varint(raw, 1)
    seq, pos = _read_varint(raw, pos)
    (mtime_ns,) = _MTIME.unpack_from(raw, pos)
    pos += 8
    if flags & F_NULL_VID:
        vid = NULL_VERSION
    elif flags & F_HEX_VID:
        vid = raw[pos : pos + 16].hex()
        pos += 16
    else:
        vid, pos = _read_text(raw, pos)
    size = 0
    etag = ""
    content_type = None
    refs: list[ChunkRef] = []
    inline = None
    checksums: dict[str, str] | None = None
    if not flags & F_DELETE_MARKER:
        if not flags & F_INLINE:
            size, pos = _read_varint(raw, pos)
        if flags & F_ETAG_MD5:
            pass  # computed from the inline bytes below
        elif flags & F_HEX_ETAG:
            etag = raw[pos : pos + 16].hex()
            parts, pos = _read_varint(raw, pos + 16)
            if parts:
                etag = f"{etag}-{parts}"
        else:
            etag, pos = _read_text(raw, pos)
        if flags & F_CTYPE:
            content_type, pos = _read_text(raw, pos)
        if flags & F_CHECKSUMS:
            checksums = {}
            algorithms = raw[pos]
            pos += 1
            for _ in range(algorithms):
                name, length = _CHECKSUMS[raw[pos]]
                digest = raw[pos + 1 : pos + 1 + length]
                if len(digest) != length:
                    raise ValueError("truncated checksum")
                checksums[name] = base64.b64encode(digest).decode()
                pos += 1 + length
        count, pos = _read_varint(raw, pos)
        if flags & F_INLINE:
            size = count
            data = raw[pos : pos + count]
            if len(data) != count:
                raise ValueError("truncated inline bytes")
            if chunks:
                inline = data
            if flags & F_ETAG_MD5:
                etag = _md5_hex(data)
            pos += count
        else:
            for _ in range(count):
                digest = raw[pos : pos + 32]
                chunk_size, pos = _read_varint(raw, pos + 32)
                if chunks:
                    refs.append(ChunkRef(digest, chunk_size))
    rest: dict[str, Any] = {}
    if flags & F_REST:
        rest = codec.decode(bytes((codec.FORMAT_JSON,)) + raw[pos:])
    elif pos != len(raw):
        raise ValueError("trailing bytes")
    lk = rest.get("lk")
    return ObjectVersion(
        version_id=vid,
        seq=seq,
        size=size,
        etag=etag,
        mtime_ns=mtime_ns,
        content_type=content_type,
        metadata=rest.get("meta", {}),
        headers=rest.get("hdr", {}),
        storage_class=rest.get("sc", "STANDARD"),
        checksums=rest.get("ck", {}) if checksums is None else checksums,
        chunks=refs,
        delete_marker=bool(flags & F_DELETE_MARKER),
        parts=rest.get("parts"),
        extra=rest.get("x", {}),
        key=key,
        tags={k: v for k, v in rest.get("tg", ())},
        lock=ObjectLock.decode(lk) if lk else NO_LOCK,
        part_checksums=rest.get("pck"),
        inline=inline,
    )
