"""Admin API tokens: what is accepted, and the attacks that must be refused.

Strategy: a :class:`TokenIssuer` with a clock that is a plain variable; tokens
are made by the issuer, and hostile ones by hand (``alg: none``, another
algorithm, another key, a flipped signature byte, claims taken out, an
``exp`` reached) with PyJWT or raw base64, as an attacker would.
"""

from __future__ import annotations

import base64
import json

import jwt
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.tokens import Claims, TokenIssuer, TokenRefused

KEY = b"unit-test-token-signing-key-0123456789"


def b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


class TokenTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.now = 1_800_000_000.0
        self.issuer = TokenIssuer(KEY, 3600, lambda: self.now)
        self.claims = self.issuer.issue("uid-1", "alice", "SuperUser", 3)
        self.token = self.issuer.encode(self.claims)

    def payload(self, **changes: object) -> dict[str, object]:
        value: dict[str, object] = {
            "sub": "uid-1", "username": "alice", "role": "SuperUser",
            "exp": int(self.now) + 60, "pv": 3,
        }  # fmt: skip
        value.update(changes)
        return {k: v for k, v in value.items() if v is not None}

    def test_round_trip_and_s4_claims(self) -> None:
        self.assertEqual(self.issuer.decode(self.token), self.claims)
        self.assertEqual(self.claims, Claims("uid-1", "alice", "SuperUser", 1_800_003_600, 3))
        body = jwt.decode(self.token, options={"verify_signature": False})
        self.assertEqual(
            {k: body[k] for k in ("sub", "username", "role", "exp")},
            {"sub": "uid-1", "username": "alice", "role": "SuperUser", "exp": 1_800_003_600},
        )
        self.assertEqual(jwt.get_unverified_header(self.token)["alg"], "HS256")

    def test_expired(self) -> None:
        self.now += 3599
        self.issuer.decode(self.token)
        self.now += 1
        self.assertIn(
            "expired", str(self.assertRaises(TokenRefused, self.issuer.decode, self.token))
        )

    def test_alg_none(self) -> None:
        unsigned = b64({"alg": "none", "typ": "JWT"}) + "." + b64(self.payload()) + "."
        self.assertRaises(TokenRefused, self.issuer.decode, unsigned)
        with_sig = unsigned + self.token.rsplit(".", 1)[1]
        self.assertRaises(TokenRefused, self.issuer.decode, with_sig)

    def test_other_algorithms_even_with_our_key(self) -> None:
        for alg in ("HS384", "HS512"):
            other = jwt.encode(self.payload(), KEY, algorithm=alg)
            self.assertRaises(TokenRefused, self.issuer.decode, other)

    def test_wrong_key(self) -> None:
        forged = jwt.encode(self.payload(), b"x" * 40, algorithm="HS256")
        self.assertRaises(TokenRefused, self.issuer.decode, forged)

    def test_bad_signature(self) -> None:
        head, body, signature = self.token.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        self.assertRaises(TokenRefused, self.issuer.decode, f"{head}.{body}.{flipped}")
        # a payload changed under the old signature (role raised)
        raised = b64(self.payload(role="SuperUser", username="mallory"))
        self.assertRaises(TokenRefused, self.issuer.decode, f"{head}.{raised}.{signature}")

    def test_missing_or_malformed_claims(self) -> None:
        for missing in ("sub", "exp", "pv", "role", "username"):
            token = jwt.encode(self.payload(**{missing: None}), KEY, algorithm="HS256")
            self.assertRaises(TokenRefused, self.issuer.decode, token)
        token = jwt.encode(self.payload(pv="three"), KEY, algorithm="HS256")
        self.assertRaises(TokenRefused, self.issuer.decode, token)

    def test_garbage(self) -> None:
        for text in ("", "a.b", "a.b.c", "....", "eyJ.eyJ.x", "\u00e9.\u00e9.\u00e9"):
            self.assertRaises(TokenRefused, self.issuer.decode, text)

    def test_short_keys_are_refused(self) -> None:
        self.assertRaises(ValueError, TokenIssuer, b"short", 60, lambda: 0.0)
