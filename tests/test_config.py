"""The configuration table (s4d.config.SETTINGS) and everything generated from it.

Strategy: the README's configuration section is compared with the generated
text, and the source of ``s4d/`` is read for ``S4_*`` names and environment
reads, so the table, the docs and the code cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from s4d import config as s4config
from s4d.tap import Options

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO_ROOT, "s4d")
NAME = re.compile(r"\bS4_[A-Z0-9_]+")
ENVIRONMENT_READ = re.compile(r"\bos\.environ\b|\bgetenv\b|\benviron\.get\b")


def sources() -> dict[str, str]:
    """Path (relative to the repository) -> text of every Python file of ``s4d/``."""
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    found[os.path.relpath(path, REPO_ROOT)] = f.read()
    return found


class ReferenceTests(SynchronousTestCase):
    def test_readme_table_is_generated(self) -> None:
        with open(os.path.join(REPO_ROOT, "README.rst"), encoding="utf-8") as f:
            readme = f.read()
        start = readme.index(s4config.README_BEGIN)
        end = readme.index(s4config.README_END) + len(s4config.README_END) + 1
        self.assertEqual(
            readme[start:end],
            s4config.reference_rst(),
            "README.rst's configuration section is stale: run "
            "`python -m s4d.config --update README.rst`",
        )

    def test_every_name_in_the_source_is_in_the_table(self) -> None:
        known = {s.env for s in s4config.SETTINGS if s.env}
        for path, text in sources().items():
            for name in set(NAME.findall(text)):
                if name.endswith("_"):  # a prefix, like S4_COMPACTION_
                    self.assertTrue(any(k.startswith(name) for k in known), (path, name))
                else:
                    self.assertIn(name, known, f"{path} names {name}, missing from SETTINGS")

    def test_only_config_reads_the_environment(self) -> None:
        readers = [
            path
            for path, text in sources().items()
            if ENVIRONMENT_READ.search(text) and path != os.path.join("s4d", "config.py")
        ]
        self.assertEqual(readers, [])

    def test_twistd_options_come_from_the_table(self) -> None:
        options = {p[0] for p in Options.optParameters}
        self.assertEqual(
            options, {s.option for s in s4config.SETTINGS if s.implemented and s.option}
        )

    def test_table_is_consistent(self) -> None:
        envs = [s.env for s in s4config.SETTINGS if s.env]
        options = [s.option for s in s4config.SETTINGS if s.option]
        self.assertEqual(len(envs), len(set(envs)))
        self.assertEqual(len(options), len(set(options)))
        fields = {f.name for f in dataclasses.fields(s4config.Config)}
        for s in s4config.SETTINGS:
            if s.target:
                self.assertIn(s.target.partition(".")[0], fields, s.env)
            if s.default is not None:
                s.parse(s.default)  # every default parses
            if not s.implemented:
                self.assertIsNone(s.option, f"{s.env} is reserved: no twistd option")

    def test_defaults_match_the_dataclass(self) -> None:
        with tempfile.TemporaryDirectory() as data:
            built = s4config.build(env={"S4_DATA_DIR": data})
        plain = s4config.Config()
        for s in s4config.SETTINGS:
            if s.target and "." not in s.target and s.target not in ("data_dir", "workers"):
                self.assertEqual(getattr(built, s.target), getattr(plain, s.target), s.env)

    def test_workers_default_to_the_cores(self) -> None:
        """One process per core unless S4_WORKERS says (0 says the same as unset)."""
        cores = len(os.sched_getaffinity(0))
        self.assertEqual(s4config.available_cores(), cores)
        with tempfile.TemporaryDirectory() as data:
            env = {"S4_DATA_DIR": data}
            self.assertEqual(s4config.build(env=env).workers, cores)
            self.assertEqual(s4config.build(env={**env, "S4_WORKERS": "0"}).workers, cores)
            self.assertEqual(s4config.build(env={**env, "S4_WORKERS": "3"}).workers, 3)
            self.assertEqual(s4config.build({"workers": "1"}, env=env).workers, 1)
            with self.assertRaises(s4config.ConfigError):
                s4config.build(env={**env, "S4_WORKERS": "-1"})


class BuildTests(SynchronousTestCase):
    ENV = {"S4_ACCESS_KEY_ID": "AK", "S4_SECRET_ACCESS_KEY": "SK"}

    def test_option_wins_over_variable(self) -> None:
        env = dict(self.ENV, S4_REGION="eu-west-1", S4_CHUNK_SIZE="1MB")
        cfg = s4config.build({"region": "ap-south-1", "chunk-size": None}, env=env)
        self.assertEqual((cfg.region, cfg.chunk_size), ("ap-south-1", 1 << 20))

    def test_groups(self) -> None:
        env = dict(self.ENV, S4_SCRUB_RATE="1MB", S4_COMPACTION_DRY_RUN="yes")
        cfg = s4config.build(env=env)
        self.assertEqual(cfg.scrub["rate"], 1 << 20)
        self.assertIs(cfg.compaction["dry_run"], True)
        self.assertEqual(cfg.compaction["threshold"], 0.3)

    def test_multipart_ttl_in_seconds_wins(self) -> None:
        env = dict(self.ENV, S4_COMPACTION_MULTIPART_TTL_SECS="7200")
        self.assertEqual(s4config.build(env=env).multipart_ttl_hours, 2)
        self.assertEqual(s4config.build(env=self.ENV).multipart_ttl_hours, 24)

    def test_bad_values_name_the_variable(self) -> None:
        for name, value in [("S4_THREADS", "many"), ("S4_FSYNC", "maybe"), ("S4_COMPRESSION", "x")]:
            with self.assertRaises(s4config.ConfigError) as caught:
                s4config.build(env=dict(self.ENV, **{name: value}))
            self.assertIn(name, str(caught.exception))

    def test_reserved_are_not_read_but_reported(self) -> None:
        env = dict(self.ENV, S4_JWT_SECRET="k" * 32, S4_ROOT_USERNAME="admin")
        s4config.build(env=env)
        self.assertEqual(s4config.reserved_in_use(env), [])  # every setting is implemented now

    def test_users_settings(self) -> None:
        key = "k" * 32
        env = dict(self.ENV, S4_ROOT_USERNAME="admin_1", S4_ROOT_PASSWORD="longenough",
                   S4_JWT_SECRET=key, S4_JWT_LIFETIME_HOURS="2")  # fmt: skip
        cfg = s4config.build(env=env)
        self.assertEqual(
            (cfg.root_username, cfg.root_password, cfg.jwt_secret, cfg.jwt_lifetime_hours),
            ("admin_1", "longenough", key, 2.0),
        )
        self.assertNotIn("longenough", repr(cfg))
        self.assertNotIn(key, repr(cfg))
        self.assertEqual(s4config.build(env=self.ENV).root_username, "root")
        bad = [("S4_ROOT_USERNAME", "a b"), ("S4_ROOT_USERNAME", "ab"),
               ("S4_ROOT_PASSWORD", "short"), ("S4_JWT_SECRET", "x" * 31)]  # fmt: skip
        for name, value in bad:
            with self.assertRaises(s4config.ConfigError) as caught:
                s4config.build(env=dict(self.ENV, **{name: value}))
            self.assertIn(name, str(caught.exception))
            if name in s4config.SECRET_VARIABLES:
                self.assertNotIn(value, str(caught.exception).replace(name, ""))

    def test_credentials_generated_once(self) -> None:
        with tempfile.TemporaryDirectory() as data:
            first = s4config.build(env={"S4_DATA_DIR": data})
            second = s4config.build(env={"S4_DATA_DIR": data})
        self.assertTrue(first.credentials_generated)
        self.assertFalse(second.credentials_generated)
        self.assertEqual(second.credentials_file, os.path.join(data, "credentials.json"))
        self.assertEqual(
            (first.access_key, first.secret_key), (second.access_key, second.secret_key)
        )
        configured = s4config.build(env=dict(self.ENV, S4_DATA_DIR=data))
        self.assertFalse(configured.credentials_generated)
        self.assertEqual(configured.credentials_file, "")

    def test_json_round_trip(self) -> None:
        cfg = s4config.build(env=dict(self.ENV, S4_DATA_DIR=tempfile.gettempdir()))
        self.assertEqual(s4config.Config.from_json(cfg.to_json()), cfg)

    def test_child_environment_drops_secrets(self) -> None:
        os.environ["S4_SECRET_ACCESS_KEY"] = "hidden"
        self.addCleanup(os.environ.pop, "S4_SECRET_ACCESS_KEY")
        self.assertNotIn("S4_SECRET_ACCESS_KEY", s4config.child_environment())
