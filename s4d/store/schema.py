"""The LMDB environment: its named sub-databases and how keys are laid out.

========== =============================================== ===========================
database   key                                             value
========== =============================================== ===========================
buckets    bucket name (UTF-8)                             codec: :class:`model.Bucket`
ns         dir id (8, BE) + entry name (UTF-8 bytes)       b"D"|b"C"+dir id | b"O"+obj id
versions   object id (8) + inverted seq (8)                codec: :class:`model.ObjectVersion`
chunks     BLAKE3 digest (32)                              :data:`CHUNK` struct
segments   segment id (8)                                  codec: size, dead bytes
counters   counter name                                    u64 (8, BE)
bconf      bucket id (8) + config name                     raw config bytes
multipart  upload id                                       codec (multipart issue)
iam        free form                                       codec (IAM issue)
config     setting name                                    free form
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
"""

from __future__ import annotations

import struct

import lmdb

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
)
SCHEMA_VERSION = 1

U64 = struct.Struct(">Q")
#: chunk record: format, segment, offset, stored length, decoded size, flags, refs
CHUNK = struct.Struct("<BIQIIBI")
CHUNK_FORMAT = 1

ENTRY_DIR = b"D"
ENTRY_CONT = b"C"
ENTRY_OBJECT = b"O"
#: The longest entry name (8 + this stays well under LMDB's 511-byte key limit).
NAME_PIECE = 400


def u64(n: int) -> bytes:
    """Big-endian 8-byte encoding (sorts like the number)."""
    return U64.pack(n)


def version_key(object_id: int, seq: int) -> bytes:
    """Versions of one object sort newest first."""
    return U64.pack(object_id) + U64.pack((1 << 64) - 1 - seq)


def open_environment(path: str, map_size: int, sync: bool = True) -> lmdb.Environment:
    """Open (creating if needed) the metadata environment."""
    env = lmdb.open(
        path,
        map_size=map_size,
        max_dbs=len(DATABASES) + 4,
        max_readers=1024,
        sync=sync,
        metasync=sync,
        readahead=False,
        subdir=True,
    )
    return env


class Databases:
    """Handles of every named sub-database of one environment."""

    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        handles = {}
        with env.begin(write=True) as txn:
            for name in DATABASES:
                handles[name] = env.open_db(name, txn=txn)
            config = handles[b"config"]
            stored = txn.get(b"schema", db=config)
            if stored is None:
                txn.put(b"schema", str(SCHEMA_VERSION).encode(), db=config)
            elif int(stored) > SCHEMA_VERSION:
                raise RuntimeError(f"data directory schema {int(stored)} is newer than this s4d")
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
