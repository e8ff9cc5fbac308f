"""The child process of the rename crash test: renames prefixes back and forth until killed.

Run as ``python -m tests.crash.rename_writer DATA_DIR SEED``. It opens a durable
store (``fsync=True``, the threaded group committer), creates :data:`GROUPS`
groups of :data:`KEYS_PER_GROUP` keys on the first run, finds where each group
is now, prints ``AT <group> <name>`` for each and ``READY``, then runs one
thread per group that renames the group's prefix to another of its
:func:`names` forever, reporting each rename on stdout, one flushed line each::

    TRY <group> <from> <to>   before the rename is submitted
    ACK <group> <to>          after it is durable
    ERR <group> <error>       the rename failed (it did not happen)

Names are URL-quoted in these lines so that they never contain spaces.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from urllib.parse import quote

from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.features import rename as fr
from s4d.store.listing import list_objects
from s4d.store.store import Store, StoreConfig

BUCKET = "crash"
GROUPS = 4
KEYS_PER_GROUP = 300
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"

_out_lock = threading.Lock()


def emit(line: str) -> None:
    """Write one whole line to stdout and flush it."""
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def names(group: int) -> list[str]:
    """The prefixes a group moves between (one of them split into continuation entries)."""
    return [
        f"g{group}/a/",
        f"moved/g{group}-" + "L" * 410 + "/",
        f"x/y/z{group}/",
    ]


def relative_keys(group: int) -> list[str]:
    """The keys of a group, relative to its prefix (the empty one is the prefix itself)."""
    return (
        [""]
        + [f"{j:03d}" for j in range(KEYS_PER_GROUP // 2)]
        + [f"sub/{j}/k" for j in range(KEYS_PER_GROUP - KEYS_PER_GROUP // 2 - 1)]
    )


def keys_under(store: Store, prefix: str) -> list[str]:
    """Every key under ``prefix``, relative to it, read in one transaction."""
    with store.read() as t:
        result = list_objects(t, t.buckets.require(BUCKET), prefix.encode(), None, None, 1 << 20)
    return [e.key[len(prefix) :] for e in result.entries]


def setup(store: Store) -> None:
    """Create the bucket and every group's keys under its first name (first run only)."""
    try:
        store.commit(lambda t: fo.create_bucket(t, BUCKET, "us-east-1", 0))
    except S3Error as e:
        if e.code != "BucketAlreadyOwnedByYou":
            raise
        return
    new = fo.NewObject(size=0, etag=EMPTY_MD5)
    for group in range(GROUPS):
        prefix = names(group)[0]

        def create(t: object, prefix: str = prefix, group: int = group) -> None:
            for rel in relative_keys(group):
                fo.put_object(t, BUCKET, prefix + rel, new, [], fo.WriteConditions(), 0)  # type: ignore[arg-type]

        store.commit(create)


def where(store: Store, group: int) -> str:
    """The name a group is under now (the first one holding any of its keys)."""
    for name in names(group):
        if keys_under(store, name):
            return name
    raise RuntimeError(f"group {group} has vanished")


def renamer(store: Store, rng: random.Random, group: int, current: str) -> None:
    """Rename the group's prefix to another of its names, forever."""
    while True:
        target = rng.choice([n for n in names(group) if n != current])
        emit(f"TRY {group} {quote(current)} {quote(target)}")
        request = fr.Rename(BUCKET, target, BUCKET, current)
        try:
            store.commit(lambda t, r=request: fr.rename(t, r, time.time_ns()))
        except Exception as e:  # noqa: BLE001 - reported to the parent
            emit(f"ERR {group} {e!r}".replace("\n", " "))
            continue
        emit(f"ACK {group} {quote(target)}")
        current = target


def main(argv: list[str]) -> None:
    """Open the store, set up, start the renamers, and wait to be killed."""
    data_dir, seed = argv[0], int(argv[1])
    store = Store(StoreConfig(data_dir, map_size=1 << 30, fsync=True))
    setup(store)
    at = [where(store, group) for group in range(GROUPS)]
    for group, name in enumerate(at):
        emit(f"AT {group} {quote(name)}")
    emit("READY")
    for group in range(GROUPS):
        rng = random.Random(seed * 1000 + group)
        threading.Thread(target=renamer, args=(store, rng, group, at[group]), daemon=True).start()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1:])
