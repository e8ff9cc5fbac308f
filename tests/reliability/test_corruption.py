"""Damaged chunks: GET answers an error or a cut-short body, never wrong bytes; fsck and the
scrubber name the keys.

Strategy: a real server (fsync on, 1 MiB chunks, ``S4_COMPRESSION=auto``, no
background jobs) stores a set of objects: single-chunk ones (read in one trip
with the metadata), a multi-chunk one (streamed), a compressed one, two keys
sharing one deduplicated chunk, and some that are left intact. The server is
stopped, the chunk locations are read from the store (LMDB) and bytes are
flipped in the segment files at those records: in the payload, and in one
case in the header. Then:

* set A, read live: a restarted server must answer every GET of a damaged
  object with an S3 error (``500 InternalError``) before any byte, or, when the
  damaged chunk is not the first and headers are out already, abort the
  connection after a prefix of correct bytes; ranges that avoid the damaged
  chunk still read correctly, a second GET fails at once (the read marked the
  chunk damaged), and intact objects read back byte-exact. ``s4d fsck`` must
  then exit 1 naming every damaged object's key;
* set B, found by the scrubber first: ``s4d scrub`` must exit 1 naming every
  key (both keys of the shared chunk), after which GETs fail before any byte;
* set C, found by the server's background scrubber (every second): its log
  names the keys.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench.workload import S3Http, ServerGroup, sha256
from s4d.features import objects as fo
from s4d.store import records
from s4d.store.model import ChunkLocation
from s4d.store.store import Store, StoreConfig
from tests.reliability._support import ROOT

BUCKET = "rot"
CHUNK = 1 << 20
SERVER_ENV = {
    "S4_FSYNC": "true",
    "S4_CHUNK_SIZE": "1MB",
    "S4_COMPRESSION": "auto",
    "S4_COMPACTION_ENABLED": "false",
    "S4_SCRUB_ENABLED": "false",
}


def random_bytes(size: int, seed: str) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def text_bytes(size: int, seed: str) -> bytes:
    line = f"{seed}: the quick brown fox jumps over the lazy dog\n".encode()
    return (line * (size // len(line) + 1))[:size]


def s4d_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s4d.cli", *args],
        env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )


def flip(path: str, offset: int) -> None:
    """Invert one byte of a file."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def get(client: S3Http, key: str, byte_range: str | None = None) -> tuple[int, bytes, bool]:
    """Status, body and whether the body was cut short (connection aborted mid-body)."""
    headers = {"range": byte_range} if byte_range else None
    try:
        r = client.request("GET", BUCKET, key, headers=headers)
    except http.client.IncompleteRead as e:
        client.close()
        return 200, bytes(e.partial), True
    except (ConnectionError, http.client.RemoteDisconnected):
        client.close()
        return 0, b"", True
    return r.status, r.body, False


class CorruptionTests(SynchronousTestCase):
    def setUp(self) -> None:
        work = os.path.abspath(self.mktemp())
        self.data_dir = os.path.join(work, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(work, "server.log")
        self.server: ServerGroup | None = None
        self.addCleanup(self.stop)

    def start(self, env: dict[str, str] | None = None) -> S3Http:
        self.server = ServerGroup(self.data_dir, self.log_path, {**SERVER_ENV, **(env or {})})
        self.server.start()
        return self.server.client()

    def stop(self) -> None:
        if self.server is not None:
            self.assertIn(self.server.stop(), (0, -signal.SIGTERM))
            self.server = None

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def locations(self, keys: list[str]) -> dict[str, list[ChunkLocation]]:
        """Where each key's chunks are (read from the store while no server runs)."""
        store = Store(StoreConfig(self.data_dir, chunk_size=CHUNK), inline_commit=True)
        try:
            found = {}
            with store.read() as t:
                bucket = t.buckets.require(BUCKET)
                for key in keys:
                    version = fo.find_version(t, bucket, key, None)[1]
                    found[key] = store.locate(t, version.chunks)
            return found
        finally:
            store.close()

    def damage(self, loc: ChunkLocation, where: str = "payload") -> None:
        path = os.path.join(self.data_dir, "segments", f"{loc.segment:08d}.seg")
        if where == "header":
            flip(path, loc.offset + 20)  # inside the stored-length field
        else:
            flip(path, loc.offset + records.HEADER_SIZE + loc.length // 2)

    def test_damaged_chunks_are_never_served(self) -> None:
        objects = {
            "a/small": random_bytes(200_000, "small"),
            "a/multi": random_bytes(3 * CHUNK + 12345, "multi"),
            "a/zipped": text_bytes(600_000, "zipped"),
            "a/header": random_bytes(150_000, "header"),
            "b/shared-1": random_bytes(300_000, "shared"),
            "b/shared-2": random_bytes(300_000, "shared"),
            "b/multi": random_bytes(2 * CHUNK + 99, "b-multi"),
            "c/one": random_bytes(250_000, "c-one"),
            "c/two": text_bytes(700_000, "c-two"),
            "ok/1": random_bytes(123_456, "ok1"),
            "ok/2": random_bytes(2 * CHUNK + 5, "ok2"),
            "ok/3": text_bytes(400_000, "ok3"),
        }
        client = self.start()
        self.assertEqual(client.request("PUT", BUCKET).status, 200)
        for key, data in objects.items():
            self.assertEqual(client.put(BUCKET, key, data).status, 200, key)
        client.close()
        self.stop()
        where = self.locations(sorted(objects))
        self.assertEqual(len(where["a/multi"]), 4)
        self.assertEqual(where["b/shared-1"], where["b/shared-2"])
        self.assertTrue(where["a/zipped"][0].flags & records.FLAG_ZSTD, "not compressed")
        set_a = ["a/header", "a/multi", "a/small", "a/zipped"]
        set_b = ["b/multi", "b/shared-1", "b/shared-2"]
        set_c = ["c/one", "c/two"]
        # Each set is damaged just before its check: known damage is not reported again.

        # Set B: the offline scrubber finds and names it (before anything read it).
        self.damage(where["b/shared-1"][0])
        self.damage(where["b/multi"][1])
        scrub = s4d_command("scrub", self.data_dir)
        self.assertEqual(scrub.returncode, 1, scrub.stdout + scrub.stderr)
        for key in set_b:
            self.assertIn(f"{BUCKET}/{key}", scrub.stdout, scrub.stdout)

        # Set A: read live.
        outcomes: dict[str, str] = {}
        self.damage(where["a/small"][0])
        self.damage(where["a/multi"][2])
        self.damage(where["a/zipped"][0])
        self.damage(where["a/header"][0], "header")
        client = self.start()
        for key in set_a:
            status, body, cut = get(client, key)
            expected = objects[key]
            outcomes[key] = "error" if not cut else "cut" if body else "aborted"
            if cut:
                # Aborted after the headers (status 200) or before anything arrived (0):
                # whatever came must be a correct prefix.
                self.assertIn(status, (0, 200), key)
                self.assertLess(len(body), len(expected), key)
                self.assertEqual(body, expected[: len(body)], f"{key}: wrong bytes before the cut")
            else:
                self.assertEqual(status, 500, f"{key}: {status} {body[:200]!r}")
                self.assertIn(b"<Code>InternalError</Code>", body)
            self.assertNotEqual(sha256(body), sha256(expected))
        # The multi-chunk object's headers were out: cut after two good chunks at most.
        status, body, cut = get(client, "a/multi", f"bytes=0-{CHUNK - 1}")
        self.assertEqual(status, 500, "the read marked the chunk damaged: refused before any byte")
        for key in set_a + set_b:
            status, body, cut = get(client, key)
            self.assertEqual((status, cut), (500, False), key)
            self.assertIn(b"<Code>InternalError</Code>", body)
        for key in ("ok/1", "ok/2", "ok/3"):
            status, body, cut = get(client, key)
            self.assertEqual((status, sha256(body)), (200, sha256(objects[key])), key)
        client.close()
        self.stop()

        report = s4d_command("fsck", "--json", self.data_dir)
        self.assertEqual(report.returncode, 1, report.stdout)
        problems = json.loads(report.stdout)["problems"]
        named = {k["key"] for p in problems for k in p.get("keys", ())}
        for key in set_a + set_b:
            self.assertIn(key, named, json.dumps(problems, indent=1))
        self.assertFalse(named & {"ok/1", "ok/2", "ok/3"}, "intact objects reported")

        # Set C: the server's own scrubber finds it and logs the keys.
        self.damage(where["c/one"][0])
        self.damage(where["c/two"][0])
        client = self.start({"S4_SCRUB_ENABLED": "true", "S4_SCRUB_INTERVAL_SECS": "1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log()
            if all(f"{BUCKET}/{key}" in text for key in set_c):
                break
            time.sleep(0.2)
        else:
            self.fail("the background scrubber did not report " + repr(set_c) + self.log()[-3000:])
        for key in set_c:
            status, body, cut = get(client, key)
            self.assertEqual((status, cut), (500, False), key)
        client.close()
        self.stop()
        report = s4d_command("fsck", "--json", self.data_dir)
        problems = json.loads(report.stdout)["problems"]
        named = {k["key"] for p in problems for k in p.get("keys", ())}
        self.assertEqual(named, set(set_a + set_b + set_c), json.dumps(problems, indent=1))
        sys.stderr.write(
            f"\ncorruption: {len(set_a + set_b + set_c)} damaged objects, none served; "
            f"fsck named {len(named)} keys in {len(problems)} problems; "
            f"first GETs: {outcomes}\n"
        )
