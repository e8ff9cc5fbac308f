"""contrib/: the systemd unit and the Dockerfile run the server the README runs.

Strategy: no systemd or docker here, so the files are read and checked for the
command (``twistd -n ... s4``), the data directory setting and the hardening
they promise.
"""

from __future__ import annotations

import configparser
import json
import os

from twisted.trial.unittest import SynchronousTestCase

CONTRIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "contrib")


def read(name: str) -> str:
    """The text of ``contrib/name``."""
    with open(os.path.join(CONTRIB, name), encoding="utf-8") as f:
        return f.read()


class SystemdUnitTests(SynchronousTestCase):
    def unit(self) -> configparser.RawConfigParser:
        parser = configparser.RawConfigParser(strict=False)
        parser.optionxform = str  # type: ignore[assignment, method-assign]
        parser.read_string(read("s4d.service"))
        return parser

    def test_runs_twistd_s4(self) -> None:
        command = self.unit()["Service"]["ExecStart"].split()
        self.assertTrue(command[0].endswith("/twistd"), command)
        self.assertIn("-n", command)
        self.assertEqual(command[-1], "s4")

    def test_settings_and_hardening(self) -> None:
        text = read("s4d.service")
        self.assertIn("Environment=S4_DATA_DIR=", text)
        service = self.unit()["Service"]
        self.assertEqual(service["NoNewPrivileges"], "yes")
        self.assertEqual(service["ProtectSystem"], "strict")
        self.assertNotEqual(service.get("User", "root"), "root")


class DockerfileTests(SynchronousTestCase):
    def test_runs_twistd_s4(self) -> None:
        lines = read("Dockerfile").splitlines()
        cmd = [line for line in lines if line.startswith("CMD ")]
        self.assertEqual(len(cmd), 1)
        command = json.loads(cmd[0].removeprefix("CMD "))
        self.assertEqual(command[:2], ["twistd", "-n"])
        self.assertEqual(command[-1], "s4")

    def test_image(self) -> None:
        text = read("Dockerfile")
        self.assertIn("FROM python:3.11-slim", text)
        self.assertIn("pip install --no-cache-dir .", text)
        self.assertIn("S4_BIND=0.0.0.0:9000", text)
        self.assertIn('VOLUME ["/data"]', text)
