"""The ``s4d`` command: version, the configuration reference, a reader that leaves early.

Strategy: run the installed entry point's module (``python -m s4d.cli``) as a
subprocess, as a shell pipeline would; a closed pipe is made by closing the
read end before the command writes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

import s4d
from s4d import config as s4config
from s4d.store.store import Store, StoreConfig


def s4d_command(*args: str) -> list[str]:
    """``s4d ARGS`` through this interpreter."""
    return [sys.executable, "-m", "s4d.cli", *args]


class CliTests(SynchronousTestCase):
    def test_version(self) -> None:
        result = subprocess.run(s4d_command("--version"), capture_output=True, text=True)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, f"s4d {s4d.__version__}"))

    def test_config_reference(self) -> None:
        result = subprocess.run(s4d_command("config-reference"), capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, s4config.reference_rst())

    def test_closed_pipe_is_quiet(self) -> None:
        with tempfile.TemporaryDirectory() as data:
            Store(StoreConfig(data, fsync=False, map_size=1 << 26)).close()
            process = subprocess.Popen(
                s4d_command("stats", "--json", data),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()  # like `| head -1` once it has its line
            error = process.stderr.read().decode()
            process.stderr.close()
            process.wait(60)
        self.assertNotIn("Traceback", error)
        self.assertNotIn("BrokenPipeError", error)
        self.assertEqual(error, "")
