"""The LMDB environment: its named sub-databases and how keys are laid out.

========== =============================================== ===========================
database   key                                             value
========== =============================================== ===========================
buckets    bucket name (UTF-8)                             codec: :class:`model.Bucket`
ns         dir id (8, BE) + entry name (UTF-8 bytes)       b"D"|b"C"+dir id[+bound (2)]
                                                           | b"O"+obj id (1-8, BE)
versions   object id (8) + inverted seq (8)                :mod:`version_record` (binary,
                                                           or codec JSON before v3)
chunks     BLAKE3 digest (32)                              :data:`CHUNK` struct
segments   segment id (8)                                  codec: size, dead bytes
counters   counter name                                    u64 (8, BE)
bconf      bucket id (8) + config name                     raw config bytes
multipart  b"L" + bucket id (8) + key form + upload id     codec: :class:`model.MultipartUpload`
           b"P" + upload id + part number (4, BE)          codec: :class:`model.PartRecord`
           b"C" + upload id                                codec: :class:`model.CompletedUpload`
           b"E" + completion time (8, BE) + upload id      b"" (expiry order)
iam        b"U"/b"N"/b"K"/b"k" + ... (users, keys), b"G", b"R"   see :mod:`s4d.store.views.iam`
config     setting name                                    free form;
           b"schema"                                       schema version (ASCII decimal)
tokens     b"K" + client token                             codec: request fingerprint, time
           b"T" + time (8, BE) + client token              b"" (expiry order)
damaged    BLAKE3 digest (32)                              codec: where and why a chunk failed
========== =============================================== ===========================

A directory entry's name carries its trailing ``/``; an object whose key ends in
``/`` is the entry with the empty name inside that directory. Sibling names in
byte order therefore walk in S3's key order.

LMDB keys are at most 511 bytes, but one component of a key may be 1024. A name
that would be longer than :data:`NAME_PIECE` is therefore split: its first
``NAME_PIECE`` bytes become a *continuation* entry (``b"C"``, a directory whose
name does not end in ``/``) holding the rest of the name, recursively. Object
names are always shorter than ``NAME_PIECE``; directory names are at most that
long (one of exactly that length ends in ``/``); continuation names are exactly
that long and never end in ``/``. No two kinds can collide, and because every
name under a continuation starts with it, the depth-first walk still yields
S3's key order. The key of an entry is the concatenation of the names on its path.

A directory or continuation entry may carry a *length bound* (2 bytes, BE):
no key below it is longer than the bound plus the length of the key prefix the
entry stands for. Creating a key raises the bounds on its path; removing one
leaves them (they stay upper bounds). A prefix rename checks the 1024-byte key
limit against the bound instead of visiting every key; an entry without a
bound (written before bounds existed) is measured by a walk once, when it is
renamed. :func:`s4d.store.views.namespace.entry_bound` reads it.

An object entry holds its object id big-endian in as few bytes as it needs
(:func:`object_entry`: 3 bytes for the first 16 million objects); before
schema version 4 it was always 8 bytes, which is the same form for an id that
needs them all, so :func:`entry_id` reads either. Directory and continuation
entries keep their 8-byte id, which the length bound follows.

Multipart uploads are indexed so that a cursor walks one bucket's uploads in
(key, upload id) order, which is ListMultipartUploads' order. A key shorter than
:data:`UPLOAD_KEY_PIECE` bytes is stored whole, followed by ``b"\\0"`` (which
sorts before any byte a key continues with); a longer key is cut to its first
``UPLOAD_KEY_PIECE`` bytes, followed by ``b"\\0"`` and 16 bytes of its SHA-256,
so every upload of keys sharing that prefix sits in one contiguous *group*, in
hash order: readers sort a group by the full key, which the record holds
(:meth:`s4d.store.views.multipart.MultipartView.uploads`). Upload ids are fixed-length ASCII and
grow with the ``upload`` counter, so uploads of one key sort by initiation.
Parts are keyed by upload id alone: they move with the upload, never with its key.
A completed upload leaves a small record (``b"C"``) so that a repeated Complete
gets the same answer, and an entry in completion-time order (``b"E"``) by which
the periodic sweep forgets it; both are written in the completion's transaction
and removed together. (Added without a schema step: older code never reads
these keys.)

Every group commit writes its own LMDB transaction id to ``counters``
``batch-txn`` (:data:`s4d.store.committer.BATCH_TXN_KEY`), so that no batch's
transaction is empty (an empty one commits nothing; see
:mod:`s4d.store.durability`). Older code never reads it.

Schema versions: ``config`` holds ``b"schema"``, the layout version of the
environment (:data:`SCHEMA_VERSION`). A new environment is stamped with it. A
directory without it (version 0, written before versions existed) or with an
older one is brought up to date on open by the steps in :data:`UPGRADES`, one
version at a time, in the same write transaction as the stamp, so an upgrade
either happens whole or not at all. A directory with a newer version is refused
(:class:`SchemaTooNew`): this code would misread it. Version 2 is the layout
described above. Version 1 had the same layout without users: buckets had no
owner; the upgrade to 2 names a root user id (``iam`` ``b"R"``) and makes it
the owner of every bucket (the root user's record itself is written when the
server starts, from its configuration). Version 0 had version 1's layout.
Version 3 writes version records in the binary form of
:mod:`s4d.store.version_record` (tag byte ``0x02``), which may hold a small
object's bytes inline; version 2 wrote them all as codec JSON (tag ``0x01``).
Both forms are read, so the upgrade to 3 rewrites nothing (a record takes the
binary form when it is next written); the stamp is what keeps an older s4d,
which would misread binary records, from opening the directory. Version 4
writes object entries in ``ns`` with their id in as few bytes as it needs
(:func:`object_entry`); version 3 always wrote 8. Both read alike
(:func:`entry_id`), so the upgrade to 4 rewrites nothing either: old entries
keep their 8 bytes until their key is written again.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Callable

import lmdb

from s4d.store import codec

DATABASES = (
    b"buckets",
    b"ns",
    b"versions",
    b"chunks",
    b"segments",
    b"counters",
    b"bconf",
    b"multipart",
    b"iam",
    b"config",
    b"tokens",
    b"damaged",
)
#: The schema version this code writes (see :func:`upgrade`); stored in ``config``.
SCHEMA_VERSION = 4
#: The ``config`` key holding the schema version (ASCII decimal).
SCHEMA_KEY = b"schema"

U64 = struct.Struct(">Q")
#: a directory entry's length bound
U16 = struct.Struct(">H")
#: chunk record: format, segment, offset, stored length, decoded size, flags, refs;
#: a released chunk (refs 0) is followed by :data:`RELEASED` (read with ``unpack_from``)
CHUNK = struct.Struct("<BIQIIBI")
CHUNK_FORMAT = 1
#: when a chunk lost its last reference (Unix seconds), after a released chunk's record
RELEASED = struct.Struct("<I")
#: prefix of the statistics kept in ``counters`` (signed 8-byte values, see s4d.store.stats)
STATS_PREFIX = b"stats/"

ENTRY_DIR = b"D"
ENTRY_CONT = b"C"
ENTRY_OBJECT = b"O"
#: The longest entry name (8 + this stays well under LMDB's 511-byte key limit).
NAME_PIECE = 400


def u64(n: int) -> bytes:
    """Big-endian 8-byte encoding (sorts like the number)."""
    return U64.pack(n)


def object_entry(object_id: int) -> bytes:
    """The ``ns`` value of an object entry: the kind, then the id in as few big-endian bytes
    as it needs (at least one, at most eight: the form before schema version 4)."""
    return ENTRY_OBJECT + object_id.to_bytes(max(1, (object_id.bit_length() + 7) // 8), "big")


def entry_id(value: bytes) -> int:
    """The id an ``ns`` entry's value points at, whatever its kind and form.

    A directory or continuation holds 8 bytes of id (then maybe a length
    bound); an object entry 1 to 8 bytes, and nothing after them.
    """
    return int.from_bytes(value[1:9], "big")


def version_key(object_id: int, seq: int) -> bytes:
    """Versions of one object sort newest first."""
    return U64.pack(object_id) + U64.pack((1 << 64) - 1 - seq)


def open_environment(path: str, map_size: int, sync: bool = True) -> lmdb.Environment:
    """Open (creating if needed) the metadata environment.

    With ``sync``, a commit ``fdatasync``\\ s the pages it wrote but not the
    meta page that makes it current (``MDB_NOMETASYNC``): the database stays
    intact across a system crash, and a commit becomes durable at the next sync
    of the file, which :class:`s4d.store.durability.SharedDurability` shares
    between every process. Whoever writes through this environment outside the
    committer syncs it (``env.sync(True)``) before relying on the write.
    Without ``sync`` nothing is synced (``S4_FSYNC=false``).
    """
    env = lmdb.open(
        path,
        map_size=map_size,
        max_dbs=len(DATABASES) + 4,
        max_readers=1024,
        sync=sync,
        metasync=False,
        readahead=False,
        subdir=True,
    )
    return env


class SchemaTooNew(RuntimeError):
    """The data directory was written by a newer s4d (a schema version this code does not know)."""

    def __init__(self, path: str, found: int) -> None:
        super().__init__(
            f"{path}: the data directory has schema version {found}, but this s4d "
            f"knows versions up to {SCHEMA_VERSION}; run a newer s4d (or restore a backup)"
        )
        self.found = found


def read_schema_version(txn: lmdb.Transaction[bytes], config: lmdb._Database) -> int:
    """The schema version stored in ``config`` (0: a directory from before versions)."""
    stored = txn.get(SCHEMA_KEY, db=config)
    return int(stored) if stored is not None else 0


def _write_schema_version(
    txn: lmdb.Transaction[bytes], config: lmdb._Database, version: int
) -> None:
    txn.put(SCHEMA_KEY, str(version).encode(), db=config)


def _upgrade_0_to_1(txn: lmdb.Transaction[bytes], handles: dict[bytes, lmdb._Database]) -> None:
    """Version 0 (no schema key) to 1: the layout is unchanged; stamping the version is all."""


#: The ``iam`` key naming the root user's id (see :mod:`s4d.store.views.iam`).
ROOT_USER_KEY = b"R"


def new_user_id() -> str:
    """A fresh user id (a random UUID, as S4 uses)."""
    return str(uuid.uuid4())


def _upgrade_1_to_2(txn: lmdb.Transaction[bytes], handles: dict[bytes, lmdb._Database]) -> None:
    """Version 1 to 2: buckets get an owner; every existing bucket belongs to the root user."""
    iam = handles[b"iam"]
    raw = txn.get(ROOT_USER_KEY, db=iam)
    if raw is None:
        root = new_user_id()
        txn.put(ROOT_USER_KEY, root.encode(), db=iam)
    else:
        root = bytes(raw).decode()
    buckets = handles[b"buckets"]
    updates = []
    for name, value in txn.cursor(db=buckets):
        record = codec.decode(value)
        if not record.get("owner"):
            record["owner"] = root
            updates.append((bytes(name), codec.encode(record)))
    for name, value in updates:
        txn.put(name, value, db=buckets)


def _upgrade_2_to_3(txn: lmdb.Transaction[bytes], handles: dict[bytes, lmdb._Database]) -> None:
    """Version 2 to 3: version records may be binary (and hold bytes); JSON ones stay readable."""


def _upgrade_3_to_4(txn: lmdb.Transaction[bytes], handles: dict[bytes, lmdb._Database]) -> None:
    """Version 3 to 4: object entries hold short ids (:func:`object_entry`); 8-byte ones stay
    readable."""


#: ``UPGRADES[n]`` turns a schema version ``n`` directory into version ``n + 1``.
UPGRADES: dict[int, Callable[[lmdb.Transaction[bytes], dict[bytes, lmdb._Database]], None]] = {
    0: _upgrade_0_to_1,
    1: _upgrade_1_to_2,
    2: _upgrade_2_to_3,
    3: _upgrade_3_to_4,
}


def upgrade(
    txn: lmdb.Transaction[bytes], handles: dict[bytes, lmdb._Database], path: str = ""
) -> tuple[int, int]:
    """Bring a data directory to :data:`SCHEMA_VERSION` (inside a write transaction).

    A new (empty) environment is stamped with the current version; an older one
    goes through each step of :data:`UPGRADES` in turn; a newer one is refused
    with :class:`SchemaTooNew`. Returns (version found, version now).
    """
    config = handles[b"config"]
    found = read_schema_version(txn, config)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(path, found)
    if found == 0 and _is_empty(txn, handles):
        _write_schema_version(txn, config, SCHEMA_VERSION)
        return SCHEMA_VERSION, SCHEMA_VERSION
    version = found
    while version < SCHEMA_VERSION:
        UPGRADES[version](txn, handles)
        version += 1
        _write_schema_version(txn, config, version)
    return found, version


def _is_empty(txn: lmdb.Transaction[bytes], handles: dict[bytes, lmdb._Database]) -> bool:
    return all(txn.stat(db)["entries"] == 0 for db in handles.values())


class Databases:
    """Handles of every named sub-database of one environment.

    Opening them upgrades the environment to :data:`SCHEMA_VERSION` (see
    :func:`upgrade`); :attr:`upgraded_from` says which version it had.
    """

    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        handles: dict[bytes, lmdb._Database] = {}
        with env.begin(write=True) as txn:
            for name in DATABASES:
                handles[name] = env.open_db(name, txn=txn)
            self.upgraded_from, self.schema_version = upgrade(txn, handles, env.path())
        self.buckets = handles[b"buckets"]
        self.ns = handles[b"ns"]
        self.versions = handles[b"versions"]
        self.chunks = handles[b"chunks"]
        self.segments = handles[b"segments"]
        self.counters = handles[b"counters"]
        self.bconf = handles[b"bconf"]
        self.multipart = handles[b"multipart"]
        self.iam = handles[b"iam"]
        self.config = handles[b"config"]
        self.tokens = handles[b"tokens"]
        self.damaged = handles[b"damaged"]


#: The multipart database's key spaces: uploads (listing order) and parts,
#: completed uploads and their expiry order.
UPLOAD_INDEX = b"L"
PART_INDEX = b"P"
COMPLETED_INDEX = b"C"
COMPLETED_EXPIRY = b"E"
#: Keys at least this long share an index group (see the module docstring).
UPLOAD_KEY_PIECE = 400
#: Upload ids are exactly this many ASCII characters.
UPLOAD_ID_LENGTH = 32
U32 = struct.Struct(">I")


def upload_bucket_prefix(bucket_id: int) -> bytes:
    """The prefix of every upload index key of one bucket."""
    return UPLOAD_INDEX + u64(bucket_id)


def upload_key(bucket_id: int, key: bytes, upload_id: str) -> bytes:
    """The index key of one upload (at most 458 bytes)."""
    uid = upload_id.encode("ascii")
    if len(key) < UPLOAD_KEY_PIECE:
        return upload_bucket_prefix(bucket_id) + key + b"\0" + uid
    digest = hashlib.sha256(key).digest()[:16]
    return upload_bucket_prefix(bucket_id) + key[:UPLOAD_KEY_PIECE] + b"\0" + digest + uid


def upload_seek(bucket_id: int, key: bytes) -> bytes:
    """An index position at or before every upload of a key >= ``key``."""
    return upload_bucket_prefix(bucket_id) + key[:UPLOAD_KEY_PIECE]


def upload_group(index_key: bytes) -> bytes | None:
    """The group (the cut key) of an index key of a long key, or None for a short key."""
    body = index_key[9:]
    if len(body) == UPLOAD_KEY_PIECE + 1 + 16 + UPLOAD_ID_LENGTH:
        return body[:UPLOAD_KEY_PIECE]
    return None


def part_prefix(upload_id: str) -> bytes:
    """The prefix of every part key of one upload."""
    return PART_INDEX + upload_id.encode("ascii")


def part_key(upload_id: str, number: int) -> bytes:
    """The key of one part (parts of an upload sort by number)."""
    return part_prefix(upload_id) + U32.pack(number)


def completed_key(upload_id: str) -> bytes:
    """The key of a completed upload's record."""
    return COMPLETED_INDEX + upload_id.encode("ascii")


def completed_expiry_key(completed_ns: int, upload_id: str) -> bytes:
    """The expiry-order entry of a completed upload (oldest completion first)."""
    return COMPLETED_EXPIRY + u64(completed_ns) + upload_id.encode("ascii")
