"""The child process of the multipart crash test: uploads parts, completes, aborts until killed.

Run as ``python -m tests.crash.multipart_writer DATA_DIR SEED ROUND``. It opens a
durable store (``fsync=True``, the threaded group committer), prints ``READY``,
and runs :data:`THREADS` threads. Each thread works through one upload at a
time (a fresh key each): create it, upload one to four parts of up to 1.5 MiB
(cut into 256 KiB chunks, some contents repeated so that chunks deduplicate),
sometimes upload a part number again, then complete it (with a random
selection of its parts), abort it, or leave it. Every step is reported on
stdout, one flushed line each (one ``write`` under ``PIPE_BUF``)::

    TRY create <key>                    ACK create <key> <upload id>
    TRY part <uid> <n> <md5>            ACK part <uid> <n> <md5>
    TRY complete <uid> <sha256> <n,n>   ACK complete <uid>
    TRY abort <uid>                     ACK abort <uid>
    ERR <what> <error>                  the step failed (it did not happen)

Keys hold no spaces.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time
import traceback

from s4d.errors import S3Error
from s4d.features import multipart as fm
from s4d.features import objects as fo
from s4d.features.objects import WriteConditions
from s4d.store.model import MultipartUpload, PartRecord
from s4d.store.store import Store, StoreConfig

THREADS = 4
CHUNK = 256 << 10
MAX_PART = 3 << 19
BUCKET = "crashmp"

_out_lock = threading.Lock()


def emit(line: str) -> None:
    """Write one whole line to stdout and flush it."""
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def part_data(rng: random.Random, pool: list[bytes], small: bool) -> bytes:
    """Random bytes, sometimes built from chunk-sized blocks of a shared pool (dedup).

    ``small`` threads write parts of at most 2000 bytes, so that their time goes
    to commits and a kill often lands inside a Complete or an Abort.
    """
    if small:
        return rng.randbytes(rng.randint(1, 2000))
    if rng.random() < 0.3:
        return b"".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
    return rng.randbytes(rng.randint(1, MAX_PART))


def upload_part(store: Store, upload: MultipartUpload, number: int, data: bytes) -> None:
    """Write a part's chunks and commit it, as the engine does."""
    md5 = hashlib.md5(data).hexdigest()
    for attempt in range(10):
        chunks = [store.put_chunk(data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]
        segments = frozenset(c.location.segment for c in chunks if c.location is not None)
        part = PartRecord(number, len(data), md5, time.time_ns())
        try:
            store.commit(
                lambda t, part=part, chunks=chunks: fm.upload_part(
                    t, BUCKET, upload.key, upload.upload_id, part, chunks
                ),
                segments,
            )
            return
        except S3Error as e:
            # A deduplicated chunk can lose its record to compaction before the
            # commit; writing the chunks again is the cure.
            if e.code != "InternalError" or attempt == 9:
                raise


def worker(store: Store, rng: random.Random, round_no: int, thread: int, pool: list[bytes]) -> None:
    """Uploads one after another until the process dies."""
    for serial in range(1_000_000):
        key = f"r{round_no}/t{thread}/u{serial}"
        try:
            emit(f"TRY create {key}")
            template = MultipartUpload("", 0, key, 0)
            upload = store.commit(
                lambda t, key=key, template=template: fm.create_upload(
                    t, BUCKET, key, template, time.time_ns()
                )
            )
            uid = upload.upload_id
            emit(f"ACK create {key} {uid}")
            parts: dict[int, bytes] = {}
            numbers = rng.sample(range(1, 6), rng.randint(1, 4))
            if rng.random() < 0.4:
                numbers.append(rng.choice(numbers))  # upload one again: a replacement
            for number in numbers:
                data = part_data(rng, pool, small=thread % 2 == 0)
                md5 = hashlib.md5(data).hexdigest()
                emit(f"TRY part {uid} {number} {md5}")
                upload_part(store, upload, number, data)
                parts[number] = data
                emit(f"ACK part {uid} {number} {md5}")
            choice = rng.random()
            if choice < 0.65:
                chosen = sorted(n for n in parts if rng.random() < 0.8) or sorted(parts)[:1]
                whole = b"".join(parts[n] for n in chosen)
                requested = [fm.RequestedPart(n, hashlib.md5(parts[n]).hexdigest()) for n in chosen]
                emit(
                    f"TRY complete {uid} {hashlib.sha256(whole).hexdigest()} "
                    f"{','.join(map(str, chosen))}"
                )
                store.commit(
                    lambda t, u=upload, r=requested: fm.complete_upload(
                        t,
                        BUCKET,
                        u.key,
                        u.upload_id,
                        r,
                        WriteConditions(),
                        time.time_ns(),
                        min_part_size=0,
                    )
                )
                emit(f"ACK complete {uid}")
            elif choice < 0.9:
                emit(f"TRY abort {uid}")
                store.commit(lambda t, u=upload: fm.abort_upload(t, BUCKET, u.key, u.upload_id))
                emit(f"ACK abort {uid}")
        except Exception as e:  # noqa: BLE001 - reported to the parent
            emit(f"ERR {key} {e!r}".replace("\n", " ")[:1000])
            traceback.print_exc()


def main(argv: list[str]) -> None:
    """Open the store, start the workers, and wait to be killed."""
    data_dir, seed, round_no = argv[0], int(argv[1]), int(argv[2])
    store = Store(
        StoreConfig(data_dir, map_size=8 << 30, fsync=True, chunk_size=CHUNK, segment_size=64 << 20)
    )
    try:
        store.commit(lambda t: fo.create_bucket(t, BUCKET, "us-east-1", 0))
    except S3Error as e:
        if e.code != "BucketAlreadyOwnedByYou":
            raise
    rng = random.Random(seed)
    pool = [rng.randbytes(CHUNK) for _ in range(3)]
    emit("READY")
    for thread in range(THREADS):
        threading.Thread(
            target=worker,
            args=(store, random.Random(seed * 100 + thread), round_no, thread, pool),
            daemon=True,
        ).start()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1:])
