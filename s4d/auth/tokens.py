"""Admin API tokens: HS256 JSON Web Tokens, issued at login and checked on every call.

A token's claims are S4's (``sub``: the user id, ``username``, ``role``,
``exp`` in seconds since the epoch) plus ``iat`` and ``pv``, the user's
password version when the token was issued: changing a password raises it,
which ends every token issued before. Only HS256 is accepted: a token signed
with another algorithm (``none`` included), another key, a broken signature,
without the claims, or past its ``exp`` is refused. The clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
#: The shortest signing key accepted (bytes): RFC 7518 wants at least the hash size.
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ("sub", "username", "role", "exp", "pv")


class TokenRefused(Exception):
    """The token cannot be used (the message says why, without echoing it)."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    user_id: str
    username: str
    role: str
    expires: int
    password_version: int


class TokenIssuer:
    """Issues and checks tokens with one secret.

    :param secret: the signing key (``S4_JWT_SECRET``, or the one generated and kept
        in the data directory).
    :param lifetime: seconds a token is valid (``S4_JWT_LIFETIME_HOURS``).
    :param now: seconds since the epoch (the wall clock).
    """

    def __init__(self, secret: bytes, lifetime: float, now: Callable[[], float]) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a token signing key needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.lifetime = lifetime
        self.now = now

    def issue(self, user_id: str, username: str, role: str, password_version: int) -> Claims:
        """The claims of a new token (sign them with :meth:`encode`)."""
        now = self.now()
        return Claims(user_id, username, role, int(now + self.lifetime), password_version)

    def encode(self, claims: Claims) -> str:
        """The signed token of ``claims``."""
        payload: dict[str, Any] = {
            "sub": claims.user_id,
            "username": claims.username,
            "role": claims.role,
            "exp": claims.expires,
            "iat": int(self.now()),
            "pv": claims.password_version,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> Claims:
        """The claims of a valid, unexpired token; :class:`TokenRefused` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise TokenRefused("the token is not signed with HS256")
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # times are checked below against the injected clock, not PyJWT's
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": list(REQUIRED_CLAIMS),
                },
            )
        except jwt.PyJWTError:
            raise TokenRefused("the token is not valid") from None
        try:
            claims = Claims(
                str(payload["sub"]),
                str(payload["username"]),
                str(payload["role"]),
                int(payload["exp"]),
                int(payload["pv"]),
            )
        except (TypeError, ValueError):
            raise TokenRefused("the token's claims are malformed") from None
        if claims.expires <= self.now():
            raise TokenRefused("the token has expired")
        return claims
