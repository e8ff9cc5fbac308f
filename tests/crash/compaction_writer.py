"""The child process of the compaction crash test: writes, reads and compacts until killed.

Run as ``python -m tests.crash.compaction_writer DATA_DIR SEED ROUND``. It opens
a durable store with small segments (so that there is always something to
compact), prints ``READY``, then runs at once:

* writer threads doing exactly what :mod:`tests.crash.writer` does (puts,
  overwrites, deletes of this round's keys, logged ``TRY``/``ACK``);
* reader threads reading the keys of earlier rounds, which nothing writes any
  more, and checking them against the contents the parent recorded in
  ``DATA_DIR.stable.json`` (``ERR read ...`` on any difference or failure);
* a compactor thread running passes back to back with no grace period and a low
  threshold, printing ``PASS <segments deleted>`` after each.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import threading
import time
import traceback
from urllib.parse import quote

from s4d.errors import S3Error
from s4d.features import objects as fo
from s4d.store.compaction import Compactor
from s4d.store.store import Store, StoreConfig
from tests.crash.writer import BUCKET, emit, key_names, writer

WRITERS = 4
READERS = 2


def reader(store: Store, stable: dict[str, str | None], rng: random.Random) -> None:
    """Read stable keys forever; any difference from the record is an error."""
    keys = sorted(stable)
    while keys:
        key = rng.choice(keys)
        try:
            with store.read() as t:
                try:
                    _, version = fo.find_version(t, t.buckets.require(BUCKET), key, None)
                except S3Error as e:
                    if e.code != "NoSuchKey":
                        raise
                    version = None
                locations = store.locate(t, version.chunks) if version else []
            if version is None:
                found = None
            else:
                digest = hashlib.sha256()
                for loc in locations:
                    digest.update(store.read_chunk(loc))
                found = digest.hexdigest()
        except Exception as e:  # noqa: BLE001 - reported to the parent
            traceback.print_exc()
            emit(f"ERR read {quote(key, safe='/')} {e!r}")
            return
        if found != stable[key]:
            emit(f"ERR read {quote(key, safe='/')} found {found} expected {stable[key]}")
            return


def compactor(store: Store) -> None:
    while True:
        try:
            report = Compactor(store, threshold=0.2, grace=0, batch_bytes=1 << 20).run()
        except Exception as e:  # noqa: BLE001 - reported to the parent
            traceback.print_exc()
            emit(f"ERR compact - {e!r}")
            return
        emit(f"PASS {len(report.compacted)}")
        time.sleep(0.02)


def main(argv: list[str]) -> None:
    data_dir, seed, round_no = argv[0], int(argv[1]), int(argv[2])
    with open(data_dir + ".stable.json") as f:
        stable = json.load(f)
    store = Store(
        StoreConfig(
            data_dir, map_size=8 << 30, fsync=True, chunk_size=1 << 20, segment_size=2 << 20
        )
    )
    try:
        store.commit(lambda t: fo.create_bucket(t, BUCKET, "us-east-1", 0))
    except S3Error as e:
        if e.code != "BucketAlreadyOwnedByYou":
            raise
    emit("READY")
    threads = []
    for i in range(WRITERS):
        rng = random.Random(seed * 1000 + i)
        threads.append(threading.Thread(target=writer, args=(store, rng, key_names(round_no, i))))
    for i in range(READERS):
        threads.append(
            threading.Thread(target=reader, args=(store, stable, random.Random(seed + 77 + i)))
        )
    threads.append(threading.Thread(target=compactor, args=(store,)))
    for thread in threads:
        thread.daemon = True
        thread.start()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1:])
