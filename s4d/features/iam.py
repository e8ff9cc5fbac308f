"""Users and access keys as transaction functions: the rules of who exists and holds what.

Each function runs inside one LMDB write transaction (from the committer) or
a read transaction (the getters) and raises :class:`IdentityError` for a
request that breaks a rule. Passwords arrive already hashed and secrets already
sealed: nothing slow or secret-handling happens inside a transaction. Every
change raises the ``iam`` generation, which tells every server process to drop
what it cached about users and keys before its next request.

The rules: user names are 3 to 32 letters, digits or ``_`` and unique; roles
are ``Reader``, ``Writer`` and ``SuperUser``; the root user (named by the
server's configuration) can be neither demoted, deactivated nor deleted; a user
who still owns buckets cannot be deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from s4d.store.schema import new_user_id
from s4d.store.txn import MetaTxn
from s4d.store.views.iam import KeyRecord, UserRecord

ROLES = ("Reader", "Writer", "SuperUser")
USERNAME = re.compile(r"[A-Za-z0-9_]{3,32}")
#: password lengths accepted (characters)
PASSWORD_LENGTH = (8, 1024)


class IdentityError(Exception):
    """A request about users or keys that breaks a rule.

    :ivar kind: ``invalid`` (the request cannot be done) or ``not_found``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def check_username(username: object) -> str:
    """``username`` if it is a valid user name; :class:`IdentityError` otherwise."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise IdentityError("invalid", "username must be 3 to 32 characters: letters, digits or _")
    return username


def check_role(role: object) -> str:
    """``role`` if it is one of :data:`ROLES`."""
    if role not in ROLES:
        raise IdentityError("invalid", f"role must be one of {', '.join(ROLES)}")
    return str(role)


def check_password(password: object) -> str:
    """``password`` if it is text of an acceptable length."""
    low, high = PASSWORD_LENGTH
    if not isinstance(password, str) or not low <= len(password) <= high:
        raise IdentityError("invalid", f"password must be {low} to {high} characters")
    return password


def require_user(t: MetaTxn, user_id: str) -> UserRecord:
    """The user with this id; :class:`IdentityError` (not_found) otherwise."""
    user = t.iam.user(user_id) if user_id else None
    if user is None:
        raise IdentityError("not_found", "user not found")
    return user


def root_id(t: MetaTxn) -> str | None:
    """The root user's id (None before the server first set it up)."""
    return t.iam.root_id()


def list_users(t: MetaTxn) -> list[tuple[UserRecord, list[KeyRecord]]]:
    """Every user with its keys, by user name."""
    users = sorted(t.iam.users(), key=lambda u: u.username)
    return [(u, t.iam.keys_of(u.user_id)) for u in users]


def get_user(t: MetaTxn, user_id: str) -> tuple[UserRecord, list[KeyRecord]]:
    """One user and its keys."""
    user = require_user(t, user_id)
    return user, t.iam.keys_of(user_id)


def create_user(
    t: MetaTxn, username: str, password_hash: str, role: str, now_ns: int
) -> UserRecord:
    """Create a user (active, no keys); ``invalid`` if the name is taken."""
    check_username(username)
    check_role(role)
    if t.iam.user_id_by_name(username) is not None:
        raise IdentityError("invalid", f"user {username} already exists")
    user_id = new_user_id()
    while t.iam.user(user_id) is not None:  # pragma: no cover - a UUID collision
        user_id = new_user_id()
    user = UserRecord(
        user_id=user_id,
        username=username,
        role=role,
        password_hash=password_hash,
        created_ns=now_ns,
        updated_ns=now_ns,
    )
    t.iam.put_user(user)
    t.iam.bump()
    return user


def update_user(
    t: MetaTxn,
    user_id: str,
    now_ns: int,
    role: str | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> UserRecord:
    """Change a user's role, state or password (a new password ends its tokens)."""
    user = require_user(t, user_id)
    is_root = user_id == t.iam.root_id()
    if role is not None:
        check_role(role)
        if is_root and role != "SuperUser":
            raise IdentityError("invalid", "the root user stays a SuperUser")
        user.role = role
    if active is not None:
        if is_root and not active:
            raise IdentityError("invalid", "the root user cannot be deactivated")
        user.active = active
    if password_hash is not None:
        user.password_hash = password_hash
        user.password_version += 1
    user.updated_ns = now_ns
    t.iam.put_user(user)
    t.iam.bump()
    return user


def delete_user(t: MetaTxn, user_id: str) -> None:
    """Delete a user and its keys (not the root, not a user who owns buckets)."""
    user = require_user(t, user_id)
    if user_id == t.iam.root_id():
        raise IdentityError("invalid", "the root user cannot be deleted")
    owned = [b.name for b in t.buckets.all() if b.owner == user_id]
    if owned:
        shown = ", ".join(owned[:5]) + (" ..." if len(owned) > 5 else "")
        raise IdentityError(
            "invalid", f"the user owns {len(owned)} bucket(s) ({shown}): delete them first"
        )
    for key in t.iam.keys_of(user_id):
        t.iam.delete_key(key)
    t.iam.delete_user(user)
    t.iam.bump()


def add_key(
    t: MetaTxn, user_id: str, access_key: str, sealed_secret: bytes, now_ns: int, replace: bool
) -> KeyRecord:
    """Give a user a new access key; with ``replace``, its other keys are revoked."""
    require_user(t, user_id)
    if t.iam.key(access_key) is not None:  # pragma: no cover - 100 random bits collided
        raise IdentityError("invalid", "access key id collision; try again")
    if replace:
        for old in t.iam.keys_of(user_id):
            t.iam.delete_key(old)
    key = KeyRecord(access_key, user_id, sealed_secret, now_ns)
    t.iam.put_key(key)
    t.iam.bump()
    return key


def revoke_keys(t: MetaTxn, user_id: str, access_keys: Iterable[str] | None = None) -> int:
    """Revoke some (``access_keys``) or all of a user's keys; how many went.

    Naming a key the user does not have is ``not_found``.
    """
    require_user(t, user_id)
    held = {k.access_key: k for k in t.iam.keys_of(user_id)}
    names = list(held) if access_keys is None else list(access_keys)
    for name in names:
        if name not in held:
            raise IdentityError("not_found", "access key not found")
        t.iam.delete_key(held[name])
    t.iam.bump()
    return len(names)


def set_up_root(t: MetaTxn, username: str, password_hash: str | None, now_ns: int) -> UserRecord:
    """Make sure the root user exists as configured; returns it.

    The root's id is assigned once (by the schema upgrade of an older directory,
    or here); its name follows the configuration; ``password_hash`` (None: keep
    what is stored) replaces its password.
    """
    check_username(username)
    root_user_id = t.iam.root_id()
    if root_user_id is None:
        root_user_id = new_user_id()
        t.iam.set_root_id(root_user_id)
    holder = t.iam.user_id_by_name(username)
    if holder is not None and holder != root_user_id:
        raise IdentityError(
            "invalid",
            f"S4_ROOT_USERNAME names {username}, which is another user: choose another name",
        )
    user = t.iam.user(root_user_id)
    old_name = None
    if user is None:
        user = UserRecord(root_user_id, username, "SuperUser", created_ns=now_ns)
    else:
        old_name = user.username
    changed = user.username != username or user.role != "SuperUser" or not user.active
    user.username, user.role, user.active = username, "SuperUser", True
    if password_hash is not None:
        user.password_hash = password_hash
        user.password_version += 1
        changed = True
    if changed or old_name is None:
        user.updated_ns = now_ns
        t.iam.put_user(user, old_name)
        t.iam.bump()
    return user
