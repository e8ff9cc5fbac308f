"""A real ``twistd -n s4`` server in a subprocess, and helpers to drive real clients at it.

Each test class gets its own server (started by the class's first test, stopped
after its last one, or at exit when trial runs only part of a class), on a free
loopback port with a temporary data directory, over HTTP or over HTTPS with a
self-signed certificate made here. Client programs run from the same virtualenv
as the test interpreter, with ``HOME`` and every configuration file in a
temporary directory, so the real home is never read or written. When a test
fails, the part of the server log written during that test is printed.
"""

from __future__ import annotations

import atexit
import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest as pyunit
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, ClassVar

from twisted.trial.unittest import SkipTest, SynchronousTestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(sys.executable)
ACCESS_KEY = "AKIDS4DCLIENTS"
SECRET_KEY = "client/tests+secret/KEY0123456789abcdef"
REGION = "us-east-1"
START_TIMEOUT = 20.0
#: Base domain for virtual-host style tests; its names resolve to 127.0.0.1 only inside tests
#: that patch name resolution (see ``test_virtual_host``).
VHOST_DOMAIN = "s4.test"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def md5_hex(data: bytes) -> str:
    """Hex MD5 of ``data`` (a single-part object's ETag, unquoted)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's content."""
    with open(path, "rb") as f:
        return sha256(f.read())


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` deterministic, incompressible-looking bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tls_cert(directory: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, localhost, ``*.s4.test``: ``(cert, key)`` paths.

    It is its own CA (basic constraints, key identifiers), so clients can take
    the certificate file as their trust bundle.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s4d test server")])
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName(VHOST_DOMAIN),
                    x509.DNSName("*." + VHOST_DOMAIN),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the server if the test process dies without stopping it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def server_command() -> list[str]:
    """``twistd -n s4`` from this interpreter's virtualenv (or the same through ``-c``)."""
    options = ["-n", "--pidfile=", "--logfile=-", "s4"]
    twistd = os.path.join(BIN_DIR, "twistd")
    if os.access(twistd, os.X_OK):
        return [twistd, *options]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", *options]


class ServerProcess:
    """One s4d server process on a loopback port with a temporary data directory."""

    def __init__(self, tls: bool = False, env: dict[str, str] | None = None) -> None:
        self.tls = tls
        self.extra_env = dict(env or {})
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.workdir = tempfile.mkdtemp(prefix="s4d-clients-")
        self.data_dir = os.path.join(self.workdir, "data")
        self.log_path = os.path.join(self.workdir, "server.log")
        self.cert_path: str | None = None
        self.key_path: str | None = None
        if tls:
            self.cert_path, self.key_path = make_tls_cert(self.workdir)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        """``http`` or ``https``."""
        return "https" if self.tls else "http"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients are given."""
        return f"{self.scheme}://{self.host}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting this server's certificate (None over HTTP)."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.cert_path)

    def start(self) -> ServerProcess:
        """Start the server and wait until ``/health`` answers; retry if the port was taken."""
        for attempt in range(3):
            self.port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("S4_", "AWS_"))}
            pythonpath = env.get("PYTHONPATH")
            env.update(
                PYTHONPATH=REPO_ROOT + (os.pathsep + pythonpath if pythonpath else ""),
                S4_BIND=self.host,
                S4_DATA_DIR=self.data_dir,
                S4_ACCESS_KEY_ID=self.access_key,
                S4_SECRET_ACCESS_KEY=self.secret_key,
                S4_FSYNC="false",
            )
            if self.tls:
                assert self.cert_path is not None and self.key_path is not None
                env.update(S4_TLS_CERT=self.cert_path, S4_TLS_KEY=self.key_path)
            env.update(self.extra_env)
            with open(self.log_path, "ab") as log:
                log.write(f"--- start attempt {attempt + 1} on port {self.port}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    server_command(),
                    cwd=self.workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            if self._wait_healthy():
                return self
            self._terminate()
            if "Address already in use" not in self.log():
                break
        raise RuntimeError(f"s4d did not start; its log:\n{self.log()}")

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        context = None
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(
                    f"{self.endpoint}/health", timeout=2, context=context
                ) as r:
                    if r.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        return False

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; remove the temporary directory."""
        self._terminate()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self, start: int = 0) -> str:
        """The server's log from byte offset ``start``."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        """The current length of the log (to show only what a test caused)."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0


_running: dict[type, ServerProcess] = {}
_pending: dict[type, set[str]] = {}


@atexit.register
def _stop_all() -> None:
    for server in list(_running.values()):
        server.stop()
    _running.clear()


class _LogOnFailure:
    """A result proxy that prints the server log of a failing test."""

    def __init__(self, result: Any, test: ServerTestCase) -> None:
        self._result = result
        self._test = test

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def _dump(self) -> None:
        server = self._test.server
        if server is None:
            return
        text = server.log(self._test.log_mark)
        sys.stderr.write(
            f"\n--- s4d log during {self._test.id()} ---\n{text}--- end of s4d log ---\n"
        )

    def addFailure(self, test: Any, failure: Any) -> None:  # noqa: N802 - unittest API
        self._dump()
        self._result.addFailure(test, failure)

    def addError(self, test: Any, error: Any) -> None:  # noqa: N802 - unittest API
        self._dump()
        self._result.addError(test, error)


class ServerTestCase(SynchronousTestCase):
    """A test case with one s4d server for its class (``self.server``)."""

    tls: ClassVar[bool] = False
    server_env: ClassVar[dict[str, str]] = {}
    server: ServerProcess | None = None
    log_mark = 0

    def run(self, result: Any) -> None:
        """Run the test; print the server log if it fails."""
        super().run(_LogOnFailure(result, self))

    def setUp(self) -> None:
        cls = type(self)
        if cls not in _running:
            _pending[cls] = set(pyunit.TestLoader().getTestCaseNames(cls))
            _running[cls] = ServerProcess(tls=cls.tls, env=cls.server_env).start()
        self.server = _running[cls]
        self.log_mark = self.server.log_size()
        self.addCleanup(self._release_server)
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)

    def _release_server(self) -> None:
        cls = type(self)
        pending = _pending.get(cls)
        if pending is None:
            return
        pending.discard(self._testMethodName)
        if not pending:
            _pending.pop(cls, None)
            server = _running.pop(cls, None)
            if server is not None:
                server.stop()

    # -- helpers for tests --------------------------------------------------

    def bucket_name(self, tag: str = "") -> str:
        """A bucket name unique to this test."""
        name = self._testMethodName.lower().replace("_", "-").strip("-")
        return f"{name}{'-' + tag if tag else ''}"[:50].strip("-") + "-" + os.urandom(3).hex()

    def write_tree(self, root: str, files: dict[str, bytes]) -> None:
        """Create files (relative paths) under ``root``."""
        for rel, data in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def age_tree(self, root: str, seconds: float) -> None:
        """Set every file's mtime under ``root`` to ``seconds`` ago."""
        when = time.time() - seconds
        for dirpath, _, names in os.walk(root):
            for name in names:
                os.utime(os.path.join(dirpath, name), (when, when))

    def tree_digests(self, root: str) -> dict[str, str]:
        """``{relative path: sha256}`` of every file under ``root``."""
        out: dict[str, str] = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                out[os.path.relpath(path, root).replace(os.sep, "/")] = file_sha256(path)
        return out

    def urlopen(self, url: str) -> tuple[int, bytes]:
        """GET ``url`` with urllib (trusting the server's certificate); status and body."""
        assert self.server is not None
        try:
            with urllib.request.urlopen(url, timeout=30, context=self.server.ssl_context()) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def client_binary(name: str) -> str:
    """The path of a client program in this virtualenv; SkipTest if it is not installed."""
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        raise SkipTest(
            f"{name} is not installed next to {sys.executable} (pip install -e '.[test]')"
        )
    return path


def isolated_env(home: str, **extra: str) -> dict[str, str]:
    """An environment for a client program whose home and configs are all under ``home``."""
    os.makedirs(home, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "S4_", "RCLONE_", "S3CMD_", "MINIO_", "BOTO_"))
    }
    env.update(
        HOME=home,
        XDG_CONFIG_HOME=os.path.join(home, ".config"),
        XDG_CACHE_HOME=os.path.join(home, ".cache"),
        PATH=BIN_DIR + os.pathsep + env.get("PATH", ""),
        AWS_CONFIG_FILE=os.path.join(home, "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


def run_client(
    testcase: SynchronousTestCase,
    argv: Sequence[str],
    env: dict[str, str],
    check: bool = True,
    timeout: float = 120,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client program; fail the test with its output if it exits non-zero (``check``)."""
    started = time.monotonic()
    raw = subprocess.run(
        list(argv),
        env=env,
        cwd=env["HOME"],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    done = subprocess.CompletedProcess(
        raw.args,
        raw.returncode,
        raw.stdout.decode("utf-8", "replace"),
        raw.stderr.decode("utf-8", "replace"),
    )
    if os.environ.get("S4D_CLIENT_TIMES"):
        sys.stderr.write(f"[{time.monotonic() - started:6.2f}s] {' '.join(argv[:6])}\n")
    if check and done.returncode != 0:
        testcase.fail(
            f"{' '.join(argv)} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return base64.b64encode(data).decode()


def boto3_client(
    server: ServerProcess,
    home: str,
    access_key: str | None = None,
    secret_key: str | None = None,
    endpoint: str | None = None,
    **config: Any,
) -> Any:
    """A boto3 S3 client for ``server``, reading config files only from ``home``.

    The credentials and endpoint are the server's unless given. Checksum settings are
    boto3's defaults unless ``config`` (botocore ``Config`` options) says otherwise.
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    os.makedirs(home, exist_ok=True)
    core = botocore.session.Session()
    core.set_config_variable("config_file", os.path.join(home, "aws-config"))
    core.set_config_variable("credentials_file", os.path.join(home, "aws-credentials"))
    session = boto3.session.Session(botocore_session=core)
    # botocore's defaults, spelled out so that AWS_* variables of the caller cannot change them
    options: dict[str, Any] = {
        "retries": {"max_attempts": 1},
        "request_checksum_calculation": "when_supported",
        "response_checksum_validation": "when_supported",
    }
    options.update(config)
    return session.client(
        "s3",
        endpoint_url=endpoint or server.endpoint,
        aws_access_key_id=access_key or server.access_key,
        aws_secret_access_key=secret_key or server.secret_key,
        region_name=server.region,
        verify=server.cert_path if server.tls else None,
        config=Config(**options),
    )
