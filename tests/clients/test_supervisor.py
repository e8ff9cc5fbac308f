"""Every core by default: the worker processes, their supervisor, the duties, stopping.

Real ``twistd s4`` servers with several processes on one port. Which process
served a request is read from ``/proc``: the process that holds the server end
of the client's TCP connection (:func:`serving_pid`), so the tests can show
that more than one process took part, and which one to kill.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from s4d.auth.sigv4 import sign_request
from s4d.bench.s3 import UNSIGNED, Client
from s4d.config import available_cores
from s4d.util.duties import duty_holder
from tests.clients.harness import REPO_ROOT, ServerProcess, ServerTestCase, payload, sha256
from tests.clients.test_workers import alive, worker_pids


def _hex_address(port: int) -> str:
    return f"0100007F:{port:04X}"


def socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the loopback TCP socket from ``local_port`` to ``remote_port``."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == _hex_address(local_port) and fields[2] == _hex_address(remote_port):
                return int(fields[9])
    return None


def serving_pid(sock: socket.socket, server_port: int) -> int | None:
    """The pid of the server process holding the other end of the client socket ``sock``."""
    client_port = sock.getsockname()[1]
    inode = None
    deadline = time.monotonic() + 2
    while inode is None and time.monotonic() < deadline:
        inode = socket_inode(server_port, client_port)
        if inode is None:
            time.sleep(0.01)
    if not inode:
        return None
    wanted = f"socket:[{inode}]"
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") == wanted:
                    return int(name)
            except OSError:
                continue
    return None


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it is true; its value (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


def can_bind(port: int) -> bool:
    """Nobody listens on ``127.0.0.1:port`` any more (it can be bound, as s4d binds it)."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        return True
    except OSError:
        return False
    finally:
        sock.close()


class PoolCase(ServerTestCase):
    """Helpers over a server of several processes."""

    def main_pid(self) -> int:
        assert self.server is not None and self.server.process is not None
        return self.server.process.pid

    def workers(self) -> set[int]:
        return alive(worker_pids(self.main_pid()))

    def client(self) -> Client:
        assert self.server is not None
        s = self.server
        return Client("127.0.0.1", s.port, s.access_key, s.secret_key)

    def all_serving(self, workers: int) -> set[int]:
        """Wait until the main process and ``workers`` workers all accept; their pids."""
        pids = wait_for(lambda: len(self.workers()) == workers and self.workers(), 30, "workers")
        everyone = {self.main_pid(), *pids}  # type: ignore[misc]
        for pid in everyone:
            self.connection_on({pid}).close()
        return everyone

    def connection_on(self, pids: set[int], tries: int = 200) -> http.client.HTTPConnection:
        """A keep-alive connection that one of ``pids`` serves."""
        assert self.server is not None
        for _ in range(tries):
            c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            c.request("GET", "/health")
            c.getresponse().read()
            assert c.sock is not None
            if serving_pid(c.sock, self.server.port) in pids:
                return c
            c.close()
        raise AssertionError(f"no connection landed on {pids} in {tries} tries")

    def signed_put_head(self, bucket: str, key: str, length: int) -> bytes:
        """The request head of an unsigned-payload PUT of ``length`` bytes (body sent apart)."""
        assert self.server is not None
        s = self.server
        path = f"/{bucket}/{key}"
        headers = {"host": f"127.0.0.1:{s.port}"}
        headers.update(
            sign_request(
                "PUT", path, [], headers, s.access_key, s.secret_key,
                now=datetime.now(UTC), payload_hash=UNSIGNED,
            )
        )  # fmt: skip
        headers["content-length"] = str(length)
        lines = [f"PUT {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class DefaultWorkersTests(PoolCase):
    """No S4_WORKERS: one process per core."""

    def test_one_process_per_core(self) -> None:
        expected = available_cores()
        wait_for(lambda: len(self.workers()) == expected - 1, 30, "the workers")
        self.assertEqual(1 + len(self.workers()), expected)
        self.assertEqual(expected, len(os.sched_getaffinity(0)))


class CrossProcessTests(PoolCase):
    """Three processes: what one writes, every other reads, lists and deletes at once."""

    server_env = {"S4_WORKERS": "3"}

    def test_strict_consistency_across_processes(self) -> None:
        assert self.server is not None
        port = self.server.port
        wait_for(lambda: len(self.workers()) == 2, 30, "the workers")
        bucket = self.bucket_name()
        status, _ = self.client().request("PUT", f"/{bucket}")
        self.assertEqual(status, 200)
        served: list[tuple[str, int | None]] = []
        crossed = 0

        def on_new_connection(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
            client = self.client()
            target, _, query = path.partition("?")
            pairs = [tuple(q.split("=", 1)) for q in query.split("&")] if query else []
            status, answer = client.request(method, target, body, query=pairs)  # type: ignore[arg-type]
            # the connection is still open: see who holds its server end
            assert client.conn.sock is not None
            served.append((method, serving_pid(client.conn.sock, port)))
            client.conn.close()
            return status, answer

        for i in range(30):
            body = payload(500 + i, seed=i)
            key = f"k{i}"
            status, _ = on_new_connection("PUT", f"/{bucket}/{key}", body)
            self.assertEqual(status, 200)
            writer = served[-1][1]
            status, got = on_new_connection("GET", f"/{bucket}/{key}")
            self.assertEqual((status, sha256(got)), (200, sha256(body)))
            status, listing = on_new_connection("GET", f"/{bucket}?list-type=2&prefix={key}")
            self.assertEqual(status, 200)
            self.assertIn(f"<Key>{key}</Key>".encode(), listing)
            status, _ = on_new_connection("DELETE", f"/{bucket}/{key}")
            self.assertEqual(status, 204)
            status, _ = on_new_connection("HEAD", f"/{bucket}/{key}")
            self.assertEqual(status, 404)
            if any(pid != writer for _, pid in served[-4:]):
                crossed += 1
        pids = {pid for _, pid in served}
        self.assertNotIn(None, pids)
        self.assertGreater(len(pids), 1, f"one process served everything: {pids}")
        self.assertGreater(crossed, 0, "no write was read through another process")

    def test_keep_alive_connections_spread(self) -> None:
        """Eight keep-alive connections opened at once do not all land on one process."""
        assert self.server is not None
        port = self.server.port
        everyone = self.all_serving(2)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(8)]
        for c in connections:
            c.connect()
        for c in connections:
            c.request("GET", "/health")
            c.getresponse().read()
        pids = [serving_pid(c.sock, port) for c in connections]  # type: ignore[arg-type]
        for c in connections:
            c.close()
        self.assertLessEqual(set(pids), everyone)
        self.assertGreater(len(set(pids)), 1, f"all eight connections on one process: {pids}")


class WorkerKillTests(PoolCase):
    """SIGKILL of a worker in the middle of an upload: no acknowledged write lost, a new worker."""

    server_env = {"S4_WORKERS": "2"}

    def test_killed_worker_loses_nothing_and_is_replaced(self) -> None:
        assert self.server is not None
        wait_for(lambda: len(self.workers()) == 1, 30, "the worker")
        victim = next(iter(self.workers()))
        bucket = self.bucket_name()
        self.assertEqual(self.client().request("PUT", f"/{bucket}")[0], 200)
        acked: dict[str, str] = {}
        failures: list[str] = []
        stop = threading.Event()

        def write(tag: str) -> None:
            i = 0
            while not stop.is_set():
                key, body = f"{tag}-{i}", payload(2000 + i % 50, seed=i)
                try:
                    client = self.client()
                    status, _ = client.request("PUT", f"/{bucket}/{key}", body)
                    client.conn.close()
                except OSError:
                    failures.append(key)  # cut off: not acknowledged
                else:
                    if status == 200:
                        acked[key] = sha256(body)
                i += 1

        writers = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(2)]
        for t in writers:
            t.start()
        # an upload in flight on the victim: its head and half its body
        upload = self.connection_on({victim})
        assert upload.sock is not None
        upload.sock.sendall(self.signed_put_head(bucket, "half", 100_000) + b"x" * 50_000)
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.0)
        stop.set()
        for t in writers:
            t.join(60)
        upload.close()
        replaced = wait_for(lambda: self.workers() - {victim}, 30, "a new worker")
        self.assertNotIn(victim, self.workers())
        self.assertTrue(replaced)
        self.assertGreater(len(acked), 0)
        reader = self.client()
        for key, digest in acked.items():
            status, got = reader.request("GET", f"/{bucket}/{key}")
            self.assertEqual((key, status, sha256(got)), (key, 200, digest))
        # the upload cut off by the kill left nothing behind
        self.assertEqual(reader.request("HEAD", f"/{bucket}/half")[0], 404)
        # the new worker got the configuration (the keys) through its pipe, not its
        # command line or environment, and serves signed requests
        for pid in replaced:  # type: ignore[attr-defined]
            for name in ("cmdline", "environ"):
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    self.assertNotIn(self.server.secret_key.encode(), f.read())
        client = self.client()
        client.conn = self.connection_on(set(replaced))  # type: ignore[arg-type]
        self.assertEqual(client.request("PUT", f"/{bucket}/after", b"new worker")[0], 200)
        self.assertEqual(client.request("GET", f"/{bucket}/after"), (200, b"new worker"))
        self.assertIn("starting it again", self.server.log(self.log_mark))


class DutyMoveTests(PoolCase):
    """The background duties move to another process when their holder dies."""

    server_env = {"S4_WORKERS": "3", "S4_SCRUB_INTERVAL_SECS": "1"}

    def holder(self) -> int | None:
        assert self.server is not None
        return duty_holder(self.server.data_dir)

    def scrubbed_by(self, pid: int) -> bool:
        """``pid`` has published a scrub pass in its figures."""
        assert self.server is not None
        path = os.path.join(self.server.data_dir, "run", "figures", f"{pid}.json")
        try:
            with open(path) as f:
                return json.load(f).get("last_scrub") is not None
        except (OSError, ValueError):
            return False

    def test_duties_move_when_their_holder_dies(self) -> None:
        assert self.server is not None
        wait_for(lambda: len(self.workers()) == 2, 30, "the workers")
        first = wait_for(self.holder, 30, "a duty holder")
        self.assertIn(first, self.workers(), "the duties are not in a worker")
        wait_for(lambda: self.scrubbed_by(first), 30, "a scrub pass by the holder")  # type: ignore[arg-type]
        os.kill(first, signal.SIGKILL)  # type: ignore[arg-type]
        second = wait_for(lambda: self.holder() not in (None, first) and self.holder(), 30,
                          "another duty holder")  # fmt: skip
        self.assertNotEqual(second, first)
        self.assertTrue(alive({second}))  # type: ignore[arg-type]
        wait_for(lambda: self.scrubbed_by(second), 30, "a scrub pass by the new holder")  # type: ignore[arg-type]
        self.assertIn(f"This process (pid {second}) runs the background duties",
                      self.server.log(self.log_mark))  # fmt: skip


class OfflineCompactionTests(PoolCase):
    """``s4d compact`` refuses to run beside a live server, which holds the duty lock."""

    server_env = {"S4_WORKERS": "2"}

    def compact(self) -> subprocess.CompletedProcess[str]:
        assert self.server is not None
        return subprocess.run(
            [sys.executable, "-m", "s4d.cli", "compact", self.server.data_dir, "--json"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": REPO_ROOT},
        )  # fmt: skip

    def test_refused_while_the_server_runs(self) -> None:
        assert self.server is not None
        holder = wait_for(lambda: duty_holder(self.server.data_dir), 30, "a duty holder")  # type: ignore[union-attr]
        done = self.compact()
        self.assertEqual(done.returncode, 75, done.stderr)
        self.assertIn(f"a running server (pid {holder}) holds the background duties", done.stderr)
        self.assertEqual(done.stdout, "")
        self.assertEqual(duty_holder(self.server.data_dir), holder)  # the server keeps them
        assert self.server.process is not None
        workers = self.workers()
        self.server.process.send_signal(signal.SIGTERM)
        self.assertIn(self.server.process.wait(30), (0, -signal.SIGTERM))
        wait_for(lambda: not alive(workers), 10, "the worker to exit")
        done = self.compact()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn('"compacted"', done.stdout)


class MainKillTests(PoolCase):
    """SIGKILL of the main process: the workers go too, and the port is free at once."""

    server_env = {"S4_WORKERS": "3"}

    def test_port_free_after_main_is_killed(self) -> None:
        assert self.server is not None and self.server.process is not None
        workers = wait_for(lambda: len(self.workers()) == 2 and self.workers(), 30, "the workers")
        port = self.server.port
        self.assertFalse(can_bind(port))
        # an idle keep-alive connection on every process must not hold the port either
        idle = [self.connection_on({pid}) for pid in workers]  # type: ignore[union-attr]
        self.server.process.kill()
        killed = time.monotonic()
        self.server.process.wait(10)
        wait_for(lambda: can_bind(port), 3, "the port to be free")
        freed = time.monotonic() - killed
        wait_for(lambda: not alive(workers), 10, "the workers to exit")  # type: ignore[arg-type]
        for c in idle:
            c.close()
        self.assertLess(freed, 3.0)


class SigtermDrainTests(PoolCase):
    """SIGTERM: no new connections, and uploads in flight (in the main process and in a
    worker) finish with 200 before the processes exit."""

    server_env = {"S4_WORKERS": "2"}

    def test_sigterm_lets_uploads_in_flight_finish(self) -> None:
        assert self.server is not None and self.server.process is not None
        server: ServerProcess = self.server
        workers = wait_for(lambda: len(self.workers()) == 1 and self.workers(), 30, "the worker")
        main = self.main_pid()
        bucket = self.bucket_name()
        self.assertEqual(self.client().request("PUT", f"/{bucket}")[0], 200)
        size = 300_000
        bodies = {who: payload(size, seed=n) for n, who in enumerate(("main", "worker"))}
        uploads = {
            "main": self.connection_on({main}),
            "worker": self.connection_on(workers),  # type: ignore[arg-type]
        }
        for who, c in uploads.items():
            assert c.sock is not None
            c.sock.sendall(self.signed_put_head(bucket, who, size) + bodies[who][: size // 2])
        time.sleep(0.3)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        # the port is closed to new connections while the uploads finish
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        for who, c in uploads.items():
            assert c.sock is not None
            c.sock.sendall(bodies[who][size // 2 :])
        for who, c in uploads.items():
            response = http.client.HTTPResponse(c.sock)  # type: ignore[arg-type]
            response.begin()
            response.read()
            self.assertEqual((who, response.status), (who, 200))
            # the answer tells the client not to reuse the connection, which then closes
            self.assertEqual((who, response.getheader("Connection")), (who, "close"))
            self.assertTrue(response.will_close, who)
            assert c.sock is not None
            c.sock.settimeout(10)
            self.assertEqual((who, c.sock.recv(1)), (who, b""))
        assert server.process is not None
        # twistd ends by the signal that stopped it, after a clean shutdown
        self.assertIn(server.process.wait(30), (0, -signal.SIGTERM))
        self.assertIn("Server Shut Down", server.log(self.log_mark))
        wait_for(lambda: not alive(workers), 10, "the worker to exit")  # type: ignore[arg-type]
        # both uploads are in the store
        server.start()
        reader = self.client()
        for who, body in bodies.items():
            status, got = reader.request("GET", f"/{bucket}/{who}")
            self.assertEqual((who, status, sha256(got)), (who, 200, sha256(body)))
