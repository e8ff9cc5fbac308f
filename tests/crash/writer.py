"""The child process of the crash tests: writes, overwrites and deletes until killed.

Run as ``python -m tests.crash.writer DATA_DIR SEED ROUND``. It opens a durable
store (``fsync=True``, the threaded group committer), prints ``READY``, and then
runs :data:`THREADS` writer threads forever. Each thread owns a few keys, so the
operations on one key are strictly sequential, and reports every operation on
stdout, one flushed line each (a single ``write`` below ``PIPE_BUF``, so lines
never tear or interleave)::

    TRY put <key> <sha256>    before any byte of the put is written
    ACK put <key> <sha256>    after the commit is durable
    TRY del <key>             before the delete is submitted
    ACK del <key>             after it is durable
    ERR <op> <key> <error>    the operation failed (it did not happen)

Keys are URL-quoted in these lines so they never contain spaces.
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import threading
import time
import traceback
from urllib.parse import quote

from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.store.store import Store, StoreConfig

THREADS = 8
KEYS_PER_THREAD = 6
CHUNK = 1 << 20
MAX_SIZE = 3 << 20
BUCKET = "crash"

_out_lock = threading.Lock()


def emit(line: str) -> None:
    """Write one whole line to stdout and flush it."""
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def key_names(round_no: int, thread: int) -> list[str]:
    """The keys one thread of one round writes (some with awkward characters)."""
    return [
        f"r{round_no}/t{thread}/" + ("k", "dir/k", "ü k", "a//b", "k%", "x")[j] + str(j)
        for j in range(KEYS_PER_THREAD)
    ]


def random_size(rng: random.Random) -> int:
    """Log-uniform between 1 byte and 3 MiB: many small objects, some multi-chunk ones."""
    return max(1, min(MAX_SIZE, int(math.exp(rng.uniform(0, math.log(MAX_SIZE))))))


def put(store: Store, key: str, data: bytes) -> None:
    """Store ``data`` under ``key``, as the engine does.

    A chunk that was deduplicated against an indexed copy can lose its last
    reference to a concurrent delete before this put commits; the commit then
    fails with ``InternalError`` and nothing happened. Writing the chunks again
    (now really written, as their digests are gone from the index) and
    committing again is the cure; small objects hit this often here, because
    1-byte objects have only 256 possible contents.
    """
    new = fo.NewObject(size=len(data), etag=hashlib.md5(data).hexdigest())
    for attempt in range(10):
        chunks = [store.put_chunk(data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]
        segments = frozenset(c.location.segment for c in chunks if c.location is not None)
        try:
            store.commit(
                lambda t, chunks=chunks: fo.put_object(
                    t, BUCKET, key, new, chunks, fo.WriteConditions(), time.time_ns()
                ),
                segments,
            )
            return
        except S3Error as e:
            if e.code != "InternalError" or attempt == 9:
                raise


def writer(store: Store, rng: random.Random, keys: list[str]) -> None:
    """Put, overwrite and delete ``keys`` at random until the process dies."""
    while True:
        key = rng.choice(keys)
        shown = quote(key, safe="/")
        if rng.random() < 0.25:
            emit(f"TRY del {shown}")
            try:
                store.commit(lambda t, key=key: fo.delete_object(t, BUCKET, key, None, 0))
            except Exception as e:  # noqa: BLE001 - reported to the parent
                emit(f"ERR del {shown} {e!r}")
                traceback.print_exc()
                continue
            emit(f"ACK del {shown}")
            continue
        data = rng.randbytes(random_size(rng))
        digest = hashlib.sha256(data).hexdigest()
        emit(f"TRY put {shown} {digest}")
        try:
            put(store, key, data)
        except Exception as e:  # noqa: BLE001 - reported to the parent
            emit(f"ERR put {shown} {e!r}")
            traceback.print_exc()
            continue
        emit(f"ACK put {shown} {digest}")


def main(argv: list[str]) -> None:
    """Open the store, start the writers, and wait to be killed."""
    data_dir, seed, round_no = argv[0], int(argv[1]), int(argv[2])
    store = Store(
        StoreConfig(data_dir, map_size=8 << 30, fsync=True, chunk_size=CHUNK, segment_size=64 << 20)
    )
    try:
        store.commit(lambda t: fo.create_bucket(t, BUCKET, "us-east-1", 0))
    except S3Error as e:
        if e.code != "BucketAlreadyOwnedByYou":
            raise
    emit("READY")
    for thread in range(THREADS):
        rng = random.Random(seed * 1000 + thread)
        threading.Thread(
            target=writer, args=(store, rng, key_names(round_no, thread)), daemon=True
        ).start()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1:])
