"""Starting ``twistd s4`` for real: the plugin is found, and what the log says at start.

Strategy: each test runs ``twistd`` from this virtualenv's ``bin`` directory as
a subprocess, in a temporary working directory, with no ``PYTHONPATH`` and no
``S4_*`` or ``AWS_*`` variable inherited, so the plugin must be found the way a
user's shell finds it (see README: the editable install must be in ``compat``
mode). A server is stopped with SIGTERM once its log says it serves.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

import s4d
from s4d import config as s4config

BIN_DIR = os.path.dirname(sys.executable)


def twistd() -> list[str]:
    """The twistd of this virtualenv."""
    path = os.path.join(BIN_DIR, "twistd")
    if os.access(path, os.X_OK):
        return [path]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH, S4_* and AWS_* variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("S4_", "AWS_"))
    }
    env.update(extra)
    return env


class StartupTestCase(SynchronousTestCase):
    """A temporary working directory for a subprocess."""

    def setUp(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="s4d-startup-")
        self.addCleanup(shutil.rmtree, self.workdir, True)

    def run_twistd(
        self, *args: str, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``twistd ARGS`` to its end."""
        return subprocess.run(
            [*twistd(), *args],
            cwd=self.workdir,
            env=clean_environment(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def serve_once(self, **env: str) -> str:
        """Start a server, wait until it serves, stop it; its log."""
        log_path = os.path.join(self.workdir, "server.log")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [*twistd(), "-n", "--pidfile=", "--logfile=-", "s4"],
                cwd=self.workdir,
                env=clean_environment(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                with open(log_path) as f:
                    if "s4d serving S3" in f.read():
                        break
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(30)
        with open(log_path) as f:
            return f.read()


class PluginTests(StartupTestCase):
    def test_help_lists_the_plugin_options(self) -> None:
        result = self.run_twistd("s4", "--help")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("Unknown command", result.stdout + result.stderr)
        for setting in s4config.SETTINGS:
            if setting.implemented and setting.option:
                self.assertIn(f"--{setting.option}", result.stdout)
        self.assertIn("--check", result.stdout)
        self.assertIn(f"s4d {s4d.__version__}", result.stdout)

    def test_version(self) -> None:
        result = self.run_twistd("s4", "--version")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, f"s4d {s4d.__version__}"))

    def test_listed_among_twistd_commands(self) -> None:
        result = self.run_twistd("--help")
        self.assertIn("s4", result.stdout.split("Commands:", 1)[-1].split())


class PortInUseTests(StartupTestCase):
    """A port another program holds: one plain line, no traceback, no "serving", status 1."""

    def check_port_in_use(self, workers: str) -> None:
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = self.run_twistd(
            "-n", "--pidfile=", "--logfile=-", "s4",
            S4_BIND=f"127.0.0.1:{port}",
            S4_DATA_DIR=os.path.join(self.workdir, "data"),
            S4_WORKERS=workers,
        )  # fmt: skip
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0, output)
        message = f"cannot listen on 127.0.0.1:{port}: address already in use"
        self.assertEqual(output.count(message), 1, output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("serving", output)

    def test_one_process(self) -> None:
        self.check_port_in_use("1")

    def test_workers(self) -> None:
        self.check_port_in_use("2")


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CredentialsMessageTests(StartupTestCase):
    """ "generated" only on the start that generated the keys."""

    def test_generated_then_kept(self) -> None:
        data = os.path.join(self.workdir, "data")
        kept = os.path.join(data, "credentials.json")
        first = self.serve_once(S4_BIND=f"127.0.0.1:{free_port()}", S4_DATA_DIR=data)
        self.assertIn("s4d serving S3", first)
        self.assertIn(f"Credentials generated and kept in {kept}", first)
        second = self.serve_once(S4_BIND=f"127.0.0.1:{free_port()}", S4_DATA_DIR=data)
        self.assertIn("s4d serving S3", second)
        self.assertNotIn("generated", second)
        self.assertIn(f"Using the credentials kept in {kept}", second)

    def test_configured(self) -> None:
        log = self.serve_once(
            S4_BIND=f"127.0.0.1:{free_port()}",
            S4_DATA_DIR=os.path.join(self.workdir, "data"),
            S4_ACCESS_KEY_ID="AKSTARTUP",
            S4_SECRET_ACCESS_KEY="startup-secret",
        )
        self.assertIn("Using the configured credentials (access key AKSTARTUP)", log)
        self.assertNotIn("startup-secret", log)
        self.assertNotIn("generated", log)
