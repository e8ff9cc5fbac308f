"""Secrets sealed at rest: AES-256-GCM under a server key kept in the data directory.

SigV4 needs an S3 secret key in the clear to check a signature, so secret keys
cannot be hashed like passwords; they are encrypted instead. :class:`SecretBox`
holds the 32-byte server key (``DATA_DIR/server.key``, mode 0600, created on
first use) and seals each secret with a fresh 96-bit nonce; the access key id is
bound to the ciphertext as associated data, so a sealed secret moved onto
another key's record fails to open. A copy of the metadata database alone
reveals no secret key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from s4d.util.keyfiles import KeyFileError, read_or_create

#: version byte of a sealed value (room for another cipher or key later)
SEALED_V1 = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


class SealingError(ValueError):
    """A sealed value does not open with this server key (damaged, or another key)."""


class SecretBox:
    """Seals and opens small secrets with the server key at ``path`` (loaded on first use)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._aead: AESGCM | None = None

    @classmethod
    def with_key(cls, key: bytes) -> SecretBox:
        """A box over a key held in memory (tests)."""
        box = cls("")
        box._aead = AESGCM(key)
        return box

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            key = read_or_create(self.path, lambda: os.urandom(KEY_BYTES))
            if len(key) != KEY_BYTES:
                raise KeyFileError(f"{self.path} must hold {KEY_BYTES} bytes, not {len(key)}")
            self._aead = AESGCM(key)
        return self._aead

    def seal(self, secret: str, bound_to: str) -> bytes:
        """``secret`` encrypted, bound to ``bound_to`` (the access key id)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, secret.encode(), bound_to.encode())
        return SEALED_V1 + nonce + sealed

    def open(self, sealed: bytes, bound_to: str) -> str:
        """The secret :meth:`seal` sealed for ``bound_to``; :class:`SealingError` otherwise."""
        if sealed[:1] != SEALED_V1 or len(sealed) < 1 + NONCE_BYTES + 16:
            raise SealingError("not a sealed secret")
        nonce = sealed[1 : 1 + NONCE_BYTES]
        try:
            plain = self._cipher().decrypt(nonce, sealed[1 + NONCE_BYTES :], bound_to.encode())
        except InvalidTag:
            raise SealingError("the sealed secret does not open with this server key") from None
        return plain.decode()
