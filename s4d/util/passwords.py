"""Password hashes: scrypt with a per-password salt, parameters kept in the hash.

A hash reads ``scrypt$<log2 n>$<r>$<p>$<salt>$<digest>`` (base64 without padding),
so a hash made with other parameters still verifies after the defaults change.
:data:`DEFAULT_COST` (n = 2**14, r = 8, p = 1: 16 MiB and about 0.1 s of one core)
is the interactive-login setting; tests pass a lower cost to stay fast.
Verification compares digests in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import NamedTuple


class ScryptCost(NamedTuple):
    """scrypt's work factors."""

    log2_n: int = 14
    r: int = 8
    p: int = 1


DEFAULT_COST = ScryptCost()
SALT_BYTES = 16
DIGEST_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    n = 1 << cost.log2_n
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=cost.r,
        p=cost.p,
        maxmem=256 * n * cost.r + (1 << 20),
        dklen=DIGEST_BYTES,
    )


def hash_password(password: str, cost: ScryptCost = DEFAULT_COST) -> str:
    """A new salted hash of ``password`` (blocking: call it off the reactor)."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, cost)
    return f"scrypt${cost.log2_n}${cost.r}${cost.p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """``password`` matches ``stored`` (False for an empty or malformed hash)."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        cost = ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return False
    if not (1 <= cost.log2_n <= 20 and 1 <= cost.r <= 32 and 1 <= cost.p <= 16):
        return False
    return hmac.compare_digest(_scrypt(password, salt, cost), expected)


def decoy_hash(cost: ScryptCost = DEFAULT_COST) -> str:
    """A valid hash of a random password nobody knows.

    A login for an unknown user (or one without a password) is checked against
    it, so that a failed login takes as long whatever the reason.
    """
    return hash_password(_b64(os.urandom(24)), cost)
