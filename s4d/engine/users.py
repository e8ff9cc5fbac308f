"""Users and access keys, asynchronously: what the admin API calls.

Every change is one transaction through the group committer (so it is durable
and ordered with everything else); every read is a short read transaction in
a worker thread; password hashing and checking (scrypt, about 0.1 s of CPU) run
in worker threads too, never on the reactor. A new secret key is generated and
sealed here and returned once, in :class:`NewKey`; nothing else ever hands a
secret key or a password hash out.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from s4d.engine.core import EngineCore
from s4d.features import iam as fi
from s4d.store.txn import MetaTxn
from s4d.store.views.iam import KeyRecord, UserRecord
from s4d.util.passwords import DEFAULT_COST, ScryptCost, decoy_hash, hash_password, verify_password
from s4d.util.sealing import SecretBox

ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class KeyInfo:
    """An access key as the admin API shows it (never its secret)."""

    access_key: str
    created_ns: int
    #: the root's key from the configuration (S4_ACCESS_KEY_ID): not stored, not revocable
    configured: bool = False


@dataclass(frozen=True)
class UserInfo:
    """A user as the admin API shows it (never its password hash)."""

    user_id: str
    username: str
    role: str
    active: bool
    created_ns: int
    updated_ns: int
    keys: tuple[KeyInfo, ...] = ()
    is_root: bool = False

    @property
    def access_key(self) -> str | None:
        """The newest key (S4's one ``access_key`` per user), or None."""
        if not self.keys:
            return None
        return max(self.keys, key=lambda k: (not k.configured, k.created_ns)).access_key


@dataclass(frozen=True)
class NewKey:
    """A key just made: the only time its secret is handed out."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"NewKey(access_key={self.access_key!r}, secret_key=<hidden>)"


@dataclass(frozen=True)
class LoginUser:
    """Who logged in (the token names these)."""

    user_id: str
    username: str
    role: str
    password_version: int


def new_access_key() -> str:
    """A new access key id: ``S4AK`` and 16 random capitals or digits."""
    return "S4AK" + "".join(secrets.choice(ACCESS_KEY_ALPHABET) for _ in range(16))


def new_secret_key() -> str:
    """A new secret key: 40 random URL-safe characters (240 bits)."""
    return secrets.token_urlsafe(30)[:40]


class UsersFacade:
    """Users and keys over one :class:`~s4d.engine.core.EngineCore`.

    :param box: seals new secret keys.
    :param cost: scrypt's work factors for new password hashes.
    :param configured_keys: the root's key ids from the configuration (listed, not stored).
    """

    def __init__(
        self,
        core: EngineCore,
        box: SecretBox,
        cost: ScryptCost = DEFAULT_COST,
        configured_keys: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self._core = core
        self._box = box
        self._cost = cost
        self._configured_keys = configured_keys
        self._decoy: str | None = None

    # -- reading ------------------------------------------------------------------------------

    def all(self) -> Deferred[list[UserInfo]]:
        """Every user, by name."""

        def read(t: MetaTxn) -> list[UserInfo]:
            root = t.iam.root_id()
            return [self._info(u, keys, root) for u, keys in fi.list_users(t)]

        return self._core.read(read)

    def get(self, user_id: str) -> Deferred[UserInfo]:
        """One user (:class:`~s4d.features.iam.IdentityError` not_found if absent)."""

        def read(t: MetaTxn) -> UserInfo:
            user, keys = fi.get_user(t, user_id)
            return self._info(user, keys, t.iam.root_id())

        return self._core.read(read)

    def _info(self, user: UserRecord, keys: list[KeyRecord], root: str | None) -> UserInfo:
        shown = [KeyInfo(k.access_key, k.created_ns) for k in keys]
        is_root = user.user_id == root
        if is_root:
            shown += [KeyInfo(ak, 0, True) for ak in sorted(self._configured_keys())]
        return UserInfo(
            user.user_id,
            user.username,
            user.role,
            user.active,
            user.created_ns,
            user.updated_ns,
            tuple(shown),
            is_root,
        )

    # -- changing -----------------------------------------------------------------------------

    async def create(self, username: object, password: object, role: object) -> UserInfo:
        """Create a user; the request is checked before the password is hashed."""
        name = fi.check_username(username)
        checked_role = fi.check_role(role)
        hashed = await self._core.run(hash_password, fi.check_password(password), self._cost)
        now = self._core.now_ns()
        user = await self._core.commit(lambda t: fi.create_user(t, name, hashed, checked_role, now))
        return self._info(user, [], None)

    async def update(
        self,
        user_id: str,
        role: object = None,
        active: object = None,
        password: object = None,
    ) -> UserInfo:
        """Change a user's role, active state or password (None: unchanged)."""
        new_role = fi.check_role(role) if role is not None else None
        if active is not None and not isinstance(active, bool):
            raise fi.IdentityError("invalid", "is_active must be true or false")
        new_state: bool | None = active
        hashed = None
        if password is not None:
            hashed = await self._core.run(hash_password, fi.check_password(password), self._cost)
        now = self._core.now_ns()

        def change(t: MetaTxn) -> UserInfo:
            user = fi.update_user(t, user_id, now, new_role, new_state, hashed)
            return self._info(user, t.iam.keys_of(user_id), t.iam.root_id())

        return await self._core.commit(change)

    def delete(self, user_id: str) -> Deferred[None]:
        """Delete a user and its keys."""
        return self._core.commit(lambda t: fi.delete_user(t, user_id))

    async def new_key(self, user_id: str, replace: bool) -> NewKey:
        """Make a key for a user (``replace``: its stored keys are revoked in the same step)."""
        access_key, secret = new_access_key(), new_secret_key()
        sealed = await self._core.run(self._box.seal, secret, access_key)
        now = self._core.now_ns()
        await self._core.commit(lambda t: fi.add_key(t, user_id, access_key, sealed, now, replace))
        return NewKey(access_key, secret)

    def revoke(self, user_id: str, access_key: str | None = None) -> Deferred[int]:
        """Revoke one stored key of a user, or (None) all of them; how many went."""
        if access_key is not None and access_key in self._configured_keys():
            raise fi.IdentityError(
                "invalid", "this key comes from S4_ACCESS_KEY_ID: change the configuration"
            )
        names = None if access_key is None else [access_key]
        return self._core.commit(lambda t: fi.revoke_keys(t, user_id, names))

    # -- logging in ---------------------------------------------------------------------------

    async def check_password(self, username: str, password: str) -> LoginUser | None:
        """The active user ``username`` if ``password`` is theirs, else None.

        Unknown users, inactive users and users without a password take the
        same scrypt work as a wrong password.
        """

        def read(t: MetaTxn) -> UserRecord | None:
            return t.iam.user_by_name(username)

        user = await self._core.read(read)
        stored = user.password_hash if user is not None and user.password_hash else ""
        if not stored:
            if self._decoy is None:
                self._decoy = await self._core.run(decoy_hash, self._cost)
            stored = self._decoy
        matches = await self._core.run(verify_password, password, stored)
        if not matches or user is None or not user.password_hash or not user.active:
            return None
        return LoginUser(user.user_id, user.username, user.role, user.password_version)

    # -- at start -----------------------------------------------------------------------------

    def set_up_root(self, username: str, password: str | None) -> UserRecord:
        """Create or update the root user as configured (blocking: call at start only).

        The stored password is replaced only when ``password`` does not match it.
        """
        store = self._core.store
        with store.read() as t:
            current = t.iam.user(t.iam.root_id() or "")
        hashed = None
        if password:
            fi.check_password(password)
            stored = current.password_hash if current is not None else ""
            if not (stored and verify_password(password, stored)):
                hashed = hash_password(password, self._cost)
        now = self._core.now_ns()
        user: UserRecord = store.commit(lambda t: fi.set_up_root(t, username, hashed, now))
        return user
