"""Secrets at rest: key files, sealed secret keys, password hashes.

Strategy: everything runs on real files in a temporary directory. Key files
are checked for their mode, for surviving a second reader, and for refusing
a file others can read; sealing is checked for round trips, for a fresh nonce
each time, for binding to the access key id, and for refusing another server
key; password hashes for verifying, for salts, for the parameters they carry
and for malformed input.
"""

from __future__ import annotations

import os
import stat

from twisted.trial.unittest import SynchronousTestCase

from s4d.util.keyfiles import KeyFileError, read_or_create
from s4d.util.passwords import ScryptCost, decoy_hash, hash_password, verify_password
from s4d.util.sealing import SealingError, SecretBox

CHEAP = ScryptCost(4, 8, 1)


class KeyFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())

    def test_created_once_with_mode_0600(self) -> None:
        path = os.path.join(self.dir, "server.key")
        first = read_or_create(path, lambda: b"first")
        second = read_or_create(path, lambda: b"second")
        self.assertEqual((first, second), (b"first", b"first"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".key-")], [])

    def test_a_file_others_can_read_is_refused(self) -> None:
        path = os.path.join(self.dir, "server.key")
        read_or_create(path, lambda: b"k")
        os.chmod(path, 0o644)
        error = self.assertRaises(KeyFileError, read_or_create, path, lambda: b"x")
        self.assertIn("chmod 600", str(error))

    def test_an_empty_file_is_refused(self) -> None:
        os.makedirs(self.dir)
        path = os.path.join(self.dir, "server.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        self.assertRaises(KeyFileError, read_or_create, path, lambda: b"x")


class SealingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.join(os.path.abspath(self.mktemp()), "server.key")
        self.box = SecretBox(self.path)

    def test_round_trip_with_a_key_made_on_first_use(self) -> None:
        self.assertFalse(os.path.exists(self.path))
        sealed = self.box.seal("secret/KEY+1", "AKID1")
        with open(self.path, "rb") as f:
            self.assertEqual(len(f.read()), 32)
        self.assertNotIn(b"secret/KEY+1", sealed)
        self.assertEqual(SecretBox(self.path).open(sealed, "AKID1"), "secret/KEY+1")

    def test_each_seal_is_different(self) -> None:
        self.assertNotEqual(self.box.seal("s", "AK"), self.box.seal("s", "AK"))

    def test_bound_to_the_access_key(self) -> None:
        sealed = self.box.seal("s", "AKID1")
        self.assertRaises(SealingError, self.box.open, sealed, "AKID2")

    def test_another_server_key_cannot_open(self) -> None:
        sealed = self.box.seal("s", "AK")
        other = SecretBox.with_key(os.urandom(32))
        self.assertRaises(SealingError, other.open, sealed, "AK")

    def test_damage_is_detected(self) -> None:
        sealed = bytearray(self.box.seal("s", "AK"))
        sealed[-1] ^= 1
        self.assertRaises(SealingError, self.box.open, bytes(sealed), "AK")
        self.assertRaises(SealingError, self.box.open, b"\x02" + bytes(sealed[1:]), "AK")
        self.assertRaises(SealingError, self.box.open, b"\x01short", "AK")


class PasswordTests(SynchronousTestCase):
    def test_verify(self) -> None:
        stored = hash_password("correct horse", CHEAP)
        self.assertTrue(verify_password("correct horse", stored))
        self.assertFalse(verify_password("correct horsE", stored))
        self.assertFalse(verify_password("", stored))
        self.assertNotIn("correct horse", stored)

    def test_salted_and_parameters_kept(self) -> None:
        a, b = hash_password("pw", CHEAP), hash_password("pw", CHEAP)
        self.assertNotEqual(a, b)
        self.assertTrue(a.startswith("scrypt$4$8$1$"))
        stronger = hash_password("pw", ScryptCost(5, 8, 1))
        self.assertTrue(verify_password("pw", stronger))

    def test_default_cost_is_the_interactive_setting(self) -> None:
        self.assertTrue(hash_password("pw").startswith("scrypt$14$8$1$"))

    def test_malformed_hashes_never_match(self) -> None:
        for stored in ("", "scrypt$", "argon2$x", "scrypt$4$8$1$!!$!!", "scrypt$40$8$1$AA$AA",
                       "scrypt$x$8$1$AA$AA"):  # fmt: skip
            self.assertFalse(verify_password("pw", stored), stored)

    def test_decoy_matches_nothing_known(self) -> None:
        decoy = decoy_hash(CHEAP)
        self.assertFalse(verify_password("", decoy))
        self.assertTrue(decoy.startswith("scrypt$4$"))
