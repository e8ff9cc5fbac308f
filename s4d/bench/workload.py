"""A mixed S3 workload with an exact model of what every acknowledged write left behind.

Used by the crash campaign (``tests/crash/test_crash_http.py``), the disk-full
and corruption tests and the soak (:mod:`s4d.bench.soak`). It has three parts:

* :class:`S3Http`: one keep-alive HTTP connection that SigV4-signs its requests
  and never retries (a retry would hide what the server acknowledged);
* :class:`ServerGroup`: ``twistd -n s4`` started in a session of its own, so that
  SIGKILL of its process group takes the worker processes (``S4_WORKERS``) along;
* :class:`MixedWorker`: a thread owning the keys under one prefix, doing PUTs of
  new keys, overwrites, DELETEs, multipart uploads, CopyObject, RenameObject of
  keys and of prefixes, and reads checked against its :class:`KeyModel`.

The model: a worker's operations are sequential and it is the only writer of
its prefix, so after each acknowledged operation the state of its keys (key ->
SHA-256 of the content) is known exactly. Before an operation is sent it is
recorded as *pending* (the set of key changes it makes); once its answer
arrives it is folded into the state. After a crash the keys under the prefix
must equal either the state or the state with the pending operation applied as
a whole (renames of prefixes are atomic): anything else is a loss. An error
answer, or a connection that broke while the server was up, leaves the
operation undecided too; the worker then reads the keys it touches and takes
whichever of the two states it finds (:meth:`MixedWorker.resolve`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from s4d import config as s4config
from s4d.auth.sigv4 import sign_request

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
#: Non-last multipart parts must be at least this big (S3's rule, kept by s4d).
MIN_PART = 5 << 20
ABSENT = None


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Response:
    """One answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def error_text(self) -> str:
        """``Code`` of an S3 error document, and for a 5xx its ``Message`` too."""
        code = self.error_code()
        if self.status >= 500 and code:
            try:
                message = ET.fromstring(self.body).findtext("Message") or ""
            except ET.ParseError:
                message = ""
            return f"{code} ({message})" if message else code
        return code

    def error_code(self) -> str:
        """The ``<Code>`` of an S3 error document ('' if there is none)."""
        if b"<Error>" not in self.body:
            return ""
        try:
            return ET.fromstring(self.body).findtext("Code") or ""
        except ET.ParseError:
            return "?"


class S3Http:
    """A keep-alive connection to one server; requests are SigV4-signed and never retried."""

    def __init__(
        self,
        host: str,
        port: int,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        timeout: float = 60.0,
    ) -> None:
        self.host, self.port = host, port
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Response:
        """Send one request and read the whole answer.

        Connection errors propagate (``OSError``, ``http.client.HTTPException``)
        and drop the connection; the caller decides what they mean.
        """
        path = "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/~") if key else "")
        query = query or []
        sent = {"host": f"{self.host}:{self.port}", **(headers or {})}
        sent.update(
            sign_request(
                method,
                path,
                query,
                sent,
                self.access_key,
                self.secret_key,
                region=self.region,
                now=datetime.now(UTC),
                payload_hash=sha256(body),
            )
        )
        if body or method in ("PUT", "POST"):
            sent["content-length"] = str(len(body))
        target = path
        if query:
            target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in sent.items():
                self.conn.putheader(name, value)
            self.conn.endheaders(body if body else None)
            answer = self.conn.getresponse()
            data = answer.read()
        except BaseException:
            self.close()
            raise
        found = {k.lower(): v for k, v in answer.getheaders()}
        if found.get("connection", "").lower() == "close":
            self.close()
        return Response(answer.status, found, data)

    # -- operations ------------------------------------------------------------------

    def put(
        self, bucket: str, key: str, data: bytes, headers: dict[str, str] | None = None
    ) -> Response:
        """PutObject."""
        return self.request("PUT", bucket, key, headers=headers, body=data)

    def get(self, bucket: str, key: str) -> Response:
        """GetObject (the whole body)."""
        return self.request("GET", bucket, key)

    def delete(self, bucket: str, key: str) -> Response:
        """DeleteObject."""
        return self.request("DELETE", bucket, key)

    def copy(self, bucket: str, src: str, dst: str) -> Response:
        """CopyObject within ``bucket``."""
        source = "/" + quote(f"{bucket}/{src}", safe="/~")
        return self.request("PUT", bucket, dst, headers={"x-amz-copy-source": source})

    def rename(self, bucket: str, src: str, dst: str) -> Response:
        """RenameObject of a key or (both ending in ``/``) a prefix."""
        source = quote(f"{bucket}/{src}", safe="/~")
        return self.request(
            "PUT", bucket, dst, [("renameObject", "")], {"x-amz-rename-source": source}
        )

    def create_multipart(self, bucket: str, key: str) -> tuple[Response, str]:
        """CreateMultipartUpload; the response and the upload id ('' on failure)."""
        r = self.request("POST", bucket, key, [("uploads", "")])
        upload_id = ""
        if r.status == 200:
            upload_id = ET.fromstring(r.body).findtext(f"{S3_NS}UploadId") or ""
        return r, upload_id

    def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, data: bytes
    ) -> Response:
        """UploadPart."""
        query = [("partNumber", str(number)), ("uploadId", upload_id)]
        return self.request("PUT", bucket, key, query, body=data)

    def complete_multipart(
        self, bucket: str, key: str, upload_id: str, etags: list[tuple[int, str]]
    ) -> Response:
        """CompleteMultipartUpload (a 200 carrying an ``<Error>`` is turned into a 500)."""
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in etags
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        r = self.request("POST", bucket, key, [("uploadId", upload_id)], body=body)
        if r.status == 200 and b"<Error>" in r.body:
            r.status = 500
        return r

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (ListObjectsV2, all pages); raises on an error answer."""
        keys: list[str] = []
        token = ""
        while True:
            query = [("list-type", "2"), ("prefix", prefix)]
            if token:
                query.append(("continuation-token", token))
            r = self.request("GET", bucket, "", query)
            if r.status != 200:
                raise RuntimeError(f"listing {prefix!r} failed: {r.status} {r.body[:200]!r}")
            root = ET.fromstring(r.body)
            keys += [c.findtext(f"{S3_NS}Key") or "" for c in root.iter(f"{S3_NS}Contents")]
            if root.findtext(f"{S3_NS}IsTruncated") != "true":
                return keys
            token = root.findtext(f"{S3_NS}NextContinuationToken") or ""


# -- the server in a process group of its own ---------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerGroup:
    """``twistd -n s4`` in a new session (its own process group), workers included.

    :param env: ``S4_*`` settings on top of the address, data directory and keys.
    """

    ACCESS_KEY = "AKIDS4DRELIABILITY"
    SECRET_KEY = "reliability/secret+KEY0123456789abcdef"

    def __init__(self, data_dir: str, log_path: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def client(self, timeout: float = 60.0) -> S3Http:
        """A new connection to this server."""
        return S3Http("127.0.0.1", self.port, self.ACCESS_KEY, self.SECRET_KEY, timeout=timeout)

    def start(self, timeout: float = 30.0) -> ServerGroup:
        """Start the server and wait until ``/health`` answers."""
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for _attempt in range(3):
            self.port = free_port()
            env = s4config.child_environment(drop_prefixes=("S4_", "AWS_"))
            env.update(
                PYTHONPATH=repo + os.pathsep + env.get("PYTHONPATH", ""),
                S4_BIND=f"127.0.0.1:{self.port}",
                S4_DATA_DIR=self.data_dir,
                S4_ACCESS_KEY_ID=self.ACCESS_KEY,
                S4_SECRET_ACCESS_KEY=self.SECRET_KEY,
                PYTHONUNBUFFERED="1",  # the log is read while the server runs
            )
            env.update(self.extra_env)
            twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
            if os.access(twistd, os.X_OK):
                command = [twistd]
            else:
                command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
            command += ["-n", "--pidfile=", "--logfile=-", "s4"]
            with open(self.log_path, "ab") as log:
                log.write(f"--- start on port {self.port}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=os.path.dirname(self.data_dir) or ".",
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_healthy(timeout):
                return self
            self.kill()
            if "Address already in use" not in self.log_tail(4000):
                break
        raise RuntimeError(f"s4d did not start; its log:\n{self.log_tail()}")

    def _wait_healthy(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                url = f"http://127.0.0.1:{self.port}/health"
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200 and self._workers_up():
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _workers_up(self) -> bool:
        wanted = int(self.extra_env.get("S4_WORKERS", "0")) or s4config.available_cores()
        return len(self.pids()) >= wanted

    def pids(self) -> list[int]:
        """Every live process of the group (the main one first)."""
        if self.process is None:
            return []
        pgid = self.process.pid
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(name))
        return sorted(found, key=lambda pid: (pid != pgid, pid))

    def kill(self) -> None:
        """SIGKILL the whole process group and wait until none of it is left."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)
        raise RuntimeError(f"processes of group {process.pid} survived SIGKILL")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the group, SIGKILL it if it lingers; the main process's exit status."""
        process = self.process
        if process is None:
            return None
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.process = None
        return status

    def log_tail(self, size: int = 20000) -> str:
        """The end of the server's log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - size))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# -- the model ------------------------------------------------------------------------------


Changes = dict[str, str | None]


@dataclass
class KeyModel:
    """The known state of one worker's keys and the operation whose outcome is open."""

    prefix: str
    state: dict[str, str] = field(default_factory=dict)
    pending: Changes | None = None
    pending_op: str = ""

    def after(self) -> dict[str, str]:
        """The state if the pending operation took effect."""
        out = dict(self.state)
        for key, value in (self.pending or {}).items():
            if value is ABSENT:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def begin(self, op: str, changes: Changes) -> None:
        assert self.pending is None, f"{self.prefix}: two operations in flight"
        self.pending, self.pending_op = changes, op

    def ack(self) -> None:
        self.state = self.after()
        self.pending, self.pending_op = None, ""

    def settle(self, found: dict[str, str]) -> list[str]:
        """Take the state found on the server; return what it contradicts (empty if nothing).

        ``found`` must equal the state before or after the pending operation;
        otherwise each differing key is reported (and ``found`` is adopted, so one
        loss is counted once).
        """
        candidates = [self.state] + ([self.after()] if self.pending is not None else [])
        problems: list[str] = []
        if found not in candidates:
            before, after = candidates[0], candidates[-1]
            for key in sorted(set(found) | set(before) | set(after)):
                got = found.get(key)
                if got != before.get(key) and got != after.get(key):
                    problems.append(
                        f"{key}: found {_short(got)}, acknowledged {_short(before.get(key))}"
                        + (
                            f", in flight ({self.pending_op}) {_short(after.get(key))}"
                            if self.pending is not None
                            else ""
                        )
                    )
            if not problems:
                problems.append(
                    f"{self.prefix}: the in-flight {self.pending_op} was applied partly: "
                    f"{sorted(self.pending or {})}"
                )
        self.state = dict(found)
        self.pending, self.pending_op = None, ""
        return problems


def _short(value: str | None) -> str:
    return "absent" if value is None else value[:12]


def read_state(
    client: S3Http,
    bucket: str,
    prefix: str,
    keys: Iterable[str] | None = None,
    also: Iterable[str] = (),
) -> dict[str, str]:
    """Key -> SHA-256 of what the server holds under ``prefix`` (or for ``keys`` only).

    Without ``keys`` the prefix is listed and every listed key read; the keys in
    ``also`` are read too, and listing and reads must agree (a listed key that
    reads as absent, or a readable key the listing misses, raises ``RuntimeError``).
    """
    listed = None if keys is not None else set(client.list_keys(bucket, prefix))
    names = sorted(set(keys) if keys is not None else (listed or set()) | set(also))
    found: dict[str, str] = {}
    for key in names:
        r = client.get(bucket, key)
        if r.status == 404:
            if listed is not None and key in listed:
                raise RuntimeError(f"{key} is listed but GET answers 404")
            continue
        if r.status != 200:
            raise RuntimeError(f"GET {key} answered {r.status} {r.error_code()}")
        if "content-length" in r.headers and int(r.headers["content-length"]) != len(r.body):
            raise RuntimeError(f"GET {key}: short body")
        if listed is not None and key not in listed:
            raise RuntimeError(f"{key} reads back but the listing misses it")
        found[key] = sha256(r.body)
    return found


# -- the worker -------------------------------------------------------------------------------


class Blobs:
    """Contents shared by every worker (so that some writes deduplicate)."""

    def __init__(self, seed: int = 0, count: int = 8, max_size: int = 1_500_000) -> None:
        rng = random.Random(seed)
        self.items = [rng.randbytes(rng.randrange(1, max_size)) for _ in range(count)]
        self.digests = {sha256(b): b for b in self.items}

    def pick(self, rng: random.Random) -> bytes:
        return rng.choice(self.items)


@dataclass
class Mix:
    """Relative weights of the operations, and sizes."""

    put: int = 30
    overwrite: int = 15
    delete: int = 12
    multipart: int = 6
    copy: int = 8
    rename_key: int = 8
    rename_prefix: int = 6
    get: int = 17
    #: largest ordinary object
    max_size: int = 600_000
    #: chance that a PUT is a larger object (several chunks)
    big_chance: float = 0.05
    big_size: int = 3_000_000
    #: chance that a multipart upload has a second part (then the first is 5 MiB)
    two_parts_chance: float = 0.15
    dedup_chance: float = 0.2
    #: chance that a worker opens a new connection before an operation (with
    #: ``S4_WORKERS`` > 1 a new connection may be accepted by another process)
    reconnect_chance: float = 0.05


class MixedWorker(threading.Thread):
    """One writer of one prefix, running mixed operations until stopped.

    :param stop: set to end the run (after the operation in progress).
    :param killed: set (with ``stop``) when the server was killed: connection
        errors then end the worker, leaving its pending operation open.
    :param rate: operations per second this worker aims at (None: flat out).
    """

    def __init__(
        self,
        server: Any,
        bucket: str,
        model: KeyModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event | None = None,
        blobs: Blobs | None = None,
        mix: Mix | None = None,
        rate: float | None = None,
        keys: int = 24,
        dirs: int = 8,
    ) -> None:
        super().__init__(name=f"worker {model.prefix}", daemon=True)
        self.server = server
        self.client: S3Http = server.client()
        self.bucket = bucket
        self.model = model
        self.rng = random.Random(seed)
        self.stop = stop
        self.killed = killed or threading.Event()
        self.blobs = blobs or Blobs()
        self.mix = mix or Mix()
        self.rate = rate
        self.names = [f"{model.prefix}k{i:02d}" for i in range(keys)]
        self.dirs = [f"{model.prefix}d{i}/" for i in range(dirs)]
        self.dir_names = [f"f{i}" for i in range(6)]
        #: acknowledged operations by kind
        self.acked: Counter[str] = Counter()
        #: error answers and broken connections by kind and status
        self.errors: Counter[str] = Counter()
        #: reads that returned bytes other than the acknowledged ones, and model contradictions
        self.wrong: list[str] = []
        self.latencies: list[float] = []
        self.failure: BaseException | None = None

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        ops = [
            "put",
            "overwrite",
            "delete",
            "multipart",
            "copy",
            "rename_key",
            "rename_prefix",
            "get",
        ]
        weights = [getattr(self.mix, op) for op in ops]
        started = time.monotonic()
        done = 0
        try:
            while not self.stop.is_set():
                if self.rate:
                    due = started + done / self.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        self.stop.wait(delay)
                        continue
                op = self.rng.choices(ops, weights)[0]
                if self.rng.random() < self.mix.reconnect_chance:
                    self.client.close()
                t0 = time.monotonic()
                try:
                    getattr(self, "op_" + op)()
                except (OSError, http.client.HTTPException) as e:
                    if self.killed.is_set():
                        return
                    self.errors[f"{op} connection {type(e).__name__}"] += 1
                    self.resolve()
                self.latencies.append(time.monotonic() - t0)
                done += 1
        except BaseException as e:  # noqa: BLE001 - reported by the driver
            if not self.killed.is_set():
                self.failure = e
        finally:
            self.client.close()

    # -- helpers ---------------------------------------------------------------------------

    def _content(self) -> bytes:
        if self.rng.random() < self.mix.dedup_chance:
            return self.blobs.pick(self.rng)
        if self.rng.random() < self.mix.big_chance:
            size = self.rng.randrange(self.mix.max_size, self.mix.big_size)
        else:
            size = self.rng.choice(
                [0, 1, self.rng.randrange(1, 4096), self.rng.randrange(1, self.mix.max_size)]
            )
        return self.rng.randbytes(size)

    def _all_names(self) -> list[str]:
        # Only the first half of the directories is written directly; the others
        # fill up through prefix renames only, so that there is always somewhere to
        # rename a prefix to.
        half = self.dirs[: max(1, len(self.dirs) // 2)]
        return self.names + [d + n for d in half for n in self.dir_names]

    def _existing(self) -> list[str]:
        return sorted(self.model.state)

    def _finish(self, op: str, r: Response, ok: tuple[int, ...] = (200,)) -> bool:
        """Fold an answer into the model: ack on success, resolve otherwise."""
        if r.status in ok:
            self.model.ack()
            self.acked[op] += 1
            return True
        self.errors[f"{op} {r.status} {r.error_text()}"] += 1
        self.resolve()
        return False

    def resolve(self) -> None:
        """Decide an open operation by reading the keys it touches."""
        if self.model.pending is None:
            return
        keys = set(self.model.pending) | set(self.model.state)
        for _attempt in range(20):
            try:
                found = read_state(self.client, self.bucket, self.model.prefix, keys)
                break
            except (OSError, http.client.HTTPException, RuntimeError):
                if self.killed.is_set() or self.stop.is_set():
                    return  # left open for the driver
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.model.prefix}: cannot read keys to resolve an error")
        found.update({k: v for k, v in self.model.state.items() if k not in keys})
        self.wrong += self.model.settle(found)

    # -- operations ------------------------------------------------------------------------

    def op_put(self, key: str | None = None) -> None:
        if key is None:
            free = [k for k in self._all_names() if k not in self.model.state]
            if not free:
                return self.op_delete()
            key = self.rng.choice(free)
        data = self._content()
        self.model.begin("put", {key: sha256(data)})
        self._finish("put", self.client.put(self.bucket, key, data))
        return None

    def op_overwrite(self) -> None:
        existing = self._existing()
        if not existing:
            return self.op_put()
        return self.op_put(self.rng.choice(existing))

    def op_delete(self) -> None:
        existing = self._existing()
        if existing and self.rng.random() < 0.9:
            key = self.rng.choice(existing)
        else:
            key = self.rng.choice(self._all_names())
        self.model.begin("delete", {key: ABSENT})
        self._finish("delete", self.client.delete(self.bucket, key), (204, 200))

    def op_multipart(self) -> None:
        key = self.rng.choice(self._all_names())
        r, upload_id = self.client.create_multipart(self.bucket, key)
        if not upload_id:
            self.errors[f"create-multipart {r.status} {r.error_text()}"] += 1
            return
        parts = []
        if self.rng.random() < self.mix.two_parts_chance:
            parts.append(self.rng.randbytes(MIN_PART))
        parts.append(self._content())
        etags = []
        for number, data in enumerate(parts, 1):
            if self.rng.random() < 0.1:  # upload a part twice: the second replaces the first
                self.client.upload_part(
                    self.bucket, key, upload_id, number, self.rng.randbytes(100)
                )
            r = self.client.upload_part(self.bucket, key, upload_id, number, data)
            if r.status != 200:
                self.errors[f"upload-part {r.status} {r.error_text()}"] += 1
                return
            etags.append((number, r.headers.get("etag", "")))
        self.model.begin("multipart", {key: sha256(b"".join(parts))})
        self._finish(
            "multipart", self.client.complete_multipart(self.bucket, key, upload_id, etags)
        )

    def op_copy(self) -> None:
        existing = self._existing()
        if not existing:
            return self.op_put()
        src = self.rng.choice(existing)
        dst = self.rng.choice([k for k in self._all_names() if k != src])
        self.model.begin("copy", {dst: self.model.state[src]})
        self._finish("copy", self.client.copy(self.bucket, src, dst))
        return None

    def op_rename_key(self) -> None:
        existing = self._existing()
        if not existing:
            return self.op_put()
        src = self.rng.choice(existing)
        dst = self.rng.choice([k for k in self._all_names() if k != src])
        self.model.begin("rename", {src: ABSENT, dst: self.model.state[src]})
        self._finish("rename", self.client.rename(self.bucket, src, dst))
        return None

    def op_rename_prefix(self) -> None:
        full = [d for d in self.dirs if any(k.startswith(d) for k in self.model.state)]
        empty = [d for d in self.dirs if not any(k.startswith(d) for k in self.model.state)]
        if not full or not empty:
            return self.op_put()
        src, dst = self.rng.choice(full), self.rng.choice(empty)
        changes: Changes = {}
        for key, value in self.model.state.items():
            if key.startswith(src):
                changes[key] = ABSENT
                changes[dst + key[len(src) :]] = value
        self.model.begin("rename-prefix", changes)
        self._finish("rename-prefix", self.client.rename(self.bucket, src, dst))
        return None

    def op_get(self) -> None:
        existing = self._existing()
        key = self.rng.choice(existing) if existing else self.rng.choice(self._all_names())
        r = self.client.get(self.bucket, key)
        expected = self.model.state.get(key)
        if r.status == 200:
            if expected is None or sha256(r.body) != expected:
                self.wrong.append(
                    f"GET {key}: {len(r.body)} bytes {sha256(r.body)[:12]}, "
                    f"acknowledged {_short(expected)}"
                )
            else:
                self.acked["get"] += 1
        elif r.status == 404 and expected is None:
            self.acked["get"] += 1
        elif r.status == 404:
            self.wrong.append(f"GET {key}: 404, acknowledged {_short(expected)}")
        else:
            self.errors[f"get {r.status} {r.error_text()}"] += 1
