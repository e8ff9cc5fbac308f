"""Users and access keys in the ``iam`` sub-database, and the rules over them.

Strategy: a real store in a temporary directory committing inline; the rules
of :mod:`s4d.features.iam` run through ``store.commit`` exactly as the engine
runs them, and the records are read back through :class:`IamView`. Every
change must raise the generation (the signal other processes drop their caches
on); the root user's protections, name uniqueness, key ownership and
revocation are checked one by one. The engine's :class:`Directory` is checked
here too, with two directories over one store standing in for two server
processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from s4d.engine.directory import Directory
from s4d.errors import S3Error
from s4d.features import buckets as fb
from s4d.features import iam as fi
from s4d.features.iam import IdentityError
from s4d.store.store import Store
from s4d.store.txn import MetaTxn
from s4d.store.views.iam import UserRecord
from s4d.util.sealing import SecretBox
from tests.store.helpers import NOW, open_store


class RulesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Store = open_store(self)
        self.root = self.store.commit(lambda t: fi.set_up_root(t, "root", "h0", NOW))

    def commit(self, f: Callable[[MetaTxn], Any]) -> Any:
        return self.store.commit(f)

    def generation(self) -> int:
        with self.store.read() as t:
            return t.iam.generation()

    def create(self, name: str, role: str = "Writer") -> UserRecord:
        return self.commit(lambda t: fi.create_user(t, name, "hash", role, NOW))

    def test_root_is_set_up_once_and_follows_the_configuration(self) -> None:
        with self.store.read() as t:
            self.assertEqual(t.iam.root_id(), self.root.user_id)
            self.assertEqual(t.iam.user_by_name("root").role, "SuperUser")
        before = self.generation()
        again = self.commit(lambda t: fi.set_up_root(t, "root", None, NOW + 1))
        self.assertEqual((again.user_id, again.password_hash), (self.root.user_id, "h0"))
        self.assertEqual(self.generation(), before)  # nothing changed, nothing bumped
        renamed = self.commit(lambda t: fi.set_up_root(t, "admin", "h1", NOW + 2))
        self.assertEqual((renamed.username, renamed.password_hash), ("admin", "h1"))
        self.assertEqual(renamed.password_version, self.root.password_version + 1)
        with self.store.read() as t:
            self.assertIsNone(t.iam.user_id_by_name("root"))
            self.assertEqual(t.iam.user_id_by_name("admin"), self.root.user_id)
        self.assertGreater(self.generation(), before)

    def test_root_name_taken_by_another_user(self) -> None:
        self.create("alice")
        error = self.assertRaises(
            IdentityError, self.commit, lambda t: fi.set_up_root(t, "alice", None, NOW)
        )
        self.assertIn("S4_ROOT_USERNAME", error.message)

    def test_create_checks_name_role_and_uniqueness(self) -> None:
        alice = self.create("alice")
        self.assertEqual((alice.role, alice.active, alice.password_version), ("Writer", True, 1))
        for name, role in [("al", "Writer"), ("a" * 33, "Writer"), ("al ice", "Writer"),
                           ("alicé", "Writer"), ("bob", "Admin"), ("bob", "reader")]:  # fmt: skip
            error = self.assertRaises(
                IdentityError,
                self.commit,
                lambda t, n=name, r=role: fi.create_user(t, n, "h", r, NOW),
            )
            self.assertEqual(error.kind, "invalid")
        error = self.assertRaises(IdentityError, self.create, "alice")
        self.assertIn("already exists", error.message)
        self.assertEqual(len(self.commit(fi.list_users)), 2)

    def test_every_change_raises_the_generation(self) -> None:
        seen = [self.generation()]
        alice = self.create("alice")
        seen.append(self.generation())
        self.commit(lambda t: fi.update_user(t, alice.user_id, NOW, role="Reader"))
        seen.append(self.generation())
        self.commit(lambda t: fi.add_key(t, alice.user_id, "AK1", b"s", NOW, replace=False))
        seen.append(self.generation())
        self.commit(lambda t: fi.revoke_keys(t, alice.user_id, ["AK1"]))
        seen.append(self.generation())
        self.commit(lambda t: fi.delete_user(t, alice.user_id))
        seen.append(self.generation())
        self.assertEqual(seen, sorted(set(seen)))

    def test_update(self) -> None:
        alice = self.create("alice")
        changed = self.commit(
            lambda t: fi.update_user(t, alice.user_id, NOW + 5, "Reader", False, "newhash")
        )
        self.assertEqual(
            (changed.role, changed.active, changed.password_hash, changed.password_version),
            ("Reader", False, "newhash", 2),
        )
        self.assertEqual(changed.updated_ns, NOW + 5)
        self.assertEqual(changed.created_ns, NOW)
        error = self.assertRaises(
            IdentityError, self.commit, lambda t: fi.update_user(t, "nobody", NOW)
        )
        self.assertEqual(error.kind, "not_found")

    def test_root_cannot_be_demoted_deactivated_or_deleted(self) -> None:
        uid = self.root.user_id
        for change in (
            lambda t: fi.update_user(t, uid, NOW, role="Writer"),
            lambda t: fi.update_user(t, uid, NOW, active=False),
            lambda t: fi.delete_user(t, uid),
        ):
            self.assertEqual(self.assertRaises(IdentityError, self.commit, change).kind, "invalid")
        self.commit(lambda t: fi.update_user(t, uid, NOW, password_hash="h2"))  # allowed

    def test_keys_several_replace_and_revoke(self) -> None:
        alice = self.create("alice")
        uid = alice.user_id
        for ak in ("AK1", "AK2"):
            self.commit(lambda t, a=ak: fi.add_key(t, uid, a, b"sealed-" + a.encode(), NOW, False))
        with self.store.read() as t:
            self.assertEqual([k.access_key for k in t.iam.keys_of(uid)], ["AK1", "AK2"])
            self.assertEqual(t.iam.key("AK2").sealed_secret, b"sealed-AK2")
        self.commit(lambda t: fi.add_key(t, uid, "AK3", b"s3", NOW, replace=True))
        with self.store.read() as t:
            self.assertEqual([k.access_key for k in t.iam.keys_of(uid)], ["AK3"])
            self.assertIsNone(t.iam.key("AK1"))
        error = self.assertRaises(
            IdentityError, self.commit, lambda t: fi.revoke_keys(t, uid, ["AK1"])
        )
        self.assertEqual(error.kind, "not_found")
        bob = self.create("bob")
        self.commit(lambda t: fi.add_key(t, bob.user_id, "AKB", b"s", NOW, False))
        # one user cannot revoke another's key through its own id
        self.assertRaises(IdentityError, self.commit, lambda t: fi.revoke_keys(t, uid, ["AKB"]))
        self.assertEqual(self.commit(lambda t: fi.revoke_keys(t, uid)), 1)
        with self.store.read() as t:
            self.assertEqual(t.iam.keys_of(uid), [])
            self.assertIsNotNone(t.iam.key("AKB"))

    def test_delete_removes_keys_but_not_a_bucket_owner(self) -> None:
        alice = self.create("alice")
        uid = alice.user_id
        self.commit(lambda t: fi.add_key(t, uid, "AK1", b"s", NOW, False))
        self.commit(lambda t: fb.create_bucket(t, "alices", "us-east-1", NOW, owner=uid))
        error = self.assertRaises(IdentityError, self.commit, lambda t: fi.delete_user(t, uid))
        self.assertIn("alices", error.message)
        self.commit(lambda t: fb.delete_bucket(t, "alices"))
        self.commit(lambda t: fi.delete_user(t, uid))
        with self.store.read() as t:
            self.assertIsNone(t.iam.user(uid))
            self.assertIsNone(t.iam.user_id_by_name("alice"))
            self.assertIsNone(t.iam.key("AK1"))
            self.assertEqual(t.iam.keys_of(uid), [])

    def test_bucket_owners(self) -> None:
        alice = self.create("alice")
        self.commit(lambda t: fb.create_bucket(t, "a", "us-east-1", NOW, owner=alice.user_id))
        self.commit(lambda t: fb.create_bucket(t, "r", "us-east-1", NOW))
        with self.store.read() as t:
            self.assertEqual(t.buckets.require("a").owner, alice.user_id)
            self.assertEqual(t.buckets.require("r").owner, self.root.user_id)
        mine = self.assertRaises(
            S3Error,
            self.commit,
            lambda t: fb.create_bucket(t, "a", "us-east-1", NOW, owner=alice.user_id),
        )
        self.assertEqual(mine.code, "BucketAlreadyOwnedByYou")
        theirs = self.assertRaises(
            S3Error, self.commit, lambda t: fb.create_bucket(t, "a", "us-east-1", NOW)
        )
        self.assertEqual(theirs.code, "BucketAlreadyExists")


class DirectoryTests(SynchronousTestCase):
    """Two directories over one store: two server processes' caches."""

    def setUp(self) -> None:
        self.store = open_store(self)
        self.box = SecretBox(os.path.join(self.store.config.data_dir, "server.key"))
        self.root = self.store.commit(lambda t: fi.set_up_root(t, "root", "", NOW))
        self.alice = self.store.commit(lambda t: fi.create_user(t, "alice", "h", "Writer", NOW))
        sealed = self.box.seal("alice-secret", "AKALICE")
        self.store.commit(
            lambda t: fi.add_key(t, self.alice.user_id, "AKALICE", sealed, NOW, False)
        )
        self.one, self.two = Directory(self.store, self.box), Directory(self.store, self.box)

    def test_key_look_up(self) -> None:
        found = self.one.key("AKALICE")
        assert found is not None
        self.assertEqual((found.secret, found.user.username, found.user.role),
                         ("alice-secret", "alice", "Writer"))  # fmt: skip
        self.assertIsNone(self.one.key("AKNOBODY"))

    def test_revocation_seen_by_every_process(self) -> None:
        self.assertIsNotNone(self.one.key("AKALICE"))
        self.assertIsNotNone(self.two.key("AKALICE"))
        self.store.commit(lambda t: fi.revoke_keys(t, self.alice.user_id))
        self.assertIsNone(self.one.key("AKALICE"))
        self.assertIsNone(self.two.key("AKALICE"))

    def test_deactivation_and_role_change_seen(self) -> None:
        self.assertEqual(self.two.key("AKALICE").user.role, "Writer")
        self.store.commit(
            lambda t: fi.update_user(t, self.alice.user_id, NOW, "Reader", active=False)
        )
        entry = self.two.key("AKALICE")
        assert entry is not None
        self.assertEqual((entry.user.role, entry.user.active), ("Reader", False))

    def test_without_refresh_the_cache_answers(self) -> None:
        self.one.key("AKALICE")
        self.store.commit(lambda t: fi.revoke_keys(t, self.alice.user_id))
        self.assertIsNotNone(self.one.key("AKALICE", refresh=False))  # same request
        self.assertIsNone(self.one.key("AKALICE"))

    def test_configured_key_is_the_roots(self) -> None:
        self.one.configure_root_key("AKCONF", "conf-secret")
        found = self.one.key("AKCONF")
        assert found is not None
        self.assertEqual((found.user.user_id, found.secret, found.configured),
                         (self.root.user_id, "conf-secret", True))  # fmt: skip
        self.assertIsNone(self.two.key("AKCONF"))  # never stored

    def test_a_secret_sealed_with_another_server_key_is_no_key(self) -> None:
        other = Directory(self.store, SecretBox.with_key(os.urandom(32)))
        self.assertIsNone(other.key("AKALICE"))

    def test_bucket_owner(self) -> None:
        self.store.commit(
            lambda t: fb.create_bucket(t, "b", "us-east-1", NOW, owner=self.alice.user_id)
        )
        self.store.commit(lambda t: fb.create_bucket(t, "r", "us-east-1", NOW))
        self.assertEqual(self.one.bucket_owner("b"), self.alice.user_id)
        self.assertEqual(self.one.bucket_owner("r"), self.root.user_id)
        self.assertIsNone(self.one.bucket_owner("missing"))

    def test_cached_bucket_owners_follow_deletion_and_creation(self) -> None:
        alice, root = self.alice.user_id, self.root.user_id
        self.store.commit(lambda t: fb.create_bucket(t, "b", "us-east-1", NOW, owner=alice))
        self.assertEqual(self.two.bucket_owner("b"), alice)
        self.assertIsNone(self.two.bucket_owner("c"))
        self.store.commit(lambda t: fb.delete_bucket(t, "b"))
        self.assertIsNone(self.two.bucket_owner("b"))
        self.store.commit(lambda t: fb.create_bucket(t, "b", "us-east-1", NOW, owner=root))
        self.store.commit(lambda t: fb.create_bucket(t, "c", "us-east-1", NOW, owner=alice))
        self.assertEqual(self.two.bucket_owner("b"), root)
        self.assertEqual(self.two.bucket_owner("c"), alice)
        # within one request (no refresh) the cache answers
        self.store.commit(lambda t: fb.delete_bucket(t, "c"))
        self.assertEqual(self.two.bucket_owner("c", refresh=False), alice)
        self.assertIsNone(self.two.bucket_owner("c"))
