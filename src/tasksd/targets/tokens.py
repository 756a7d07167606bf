"""Tokens attached to HTTP attempts.

OIDC: an RS256 JWT (iss, aud, sub/email of the service account, iat, exp) signed with a key
that tasksd keeps in its store, so tokens stay verifiable across restarts; handlers verify it
against the JWKS published at ``/.well-known/jwks.json`` (``/.well-known/openid-configuration``
names it). OAuth: an opaque bearer token that the tokeninfo endpoint can introspect.

LIMITATIONS: OAuth tokens are remembered by the process that issued them (one node).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tasksd.clock import Clock, SystemClock

TOKEN_LIFETIME_S = 3600
DEFAULT_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def new_signing_key() -> bytes:
    """A fresh RSA-2048 private key, PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class AccessToken:
    email: str
    scope: str
    expires_at: float


class TokenIssuer:
    """Signs the OIDC tokens and issues the OAuth tokens push attempts carry, with the time
    of ``clock`` and the randomness of ``token_urlsafe`` (injected, so tests fix both)."""

    def __init__(
        self,
        private_key_pem: bytes,
        issuer: str,
        clock: Clock | None = None,
        token_urlsafe: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._token_urlsafe = token_urlsafe
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self.issuer = issuer
        numbers = key.public_key().public_numbers()
        self.key_id = hashlib.sha256(_b64(numbers.n).encode()).hexdigest()[:16]
        self._jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.key_id,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }
        self._access: dict[str, AccessToken] = {}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def oidc_token(self, email: str, audience: str) -> str:
        now = int(self._now())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": email,
            "email": email,
            "email_verified": True,
            "azp": email,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def access_token(self, email: str, scope: str) -> str:
        token = "ya29.tasksd-" + self._token_urlsafe(32)
        now = self._now()
        self._access = {k: v for k, v in self._access.items() if v.expires_at > now}
        self._access[token] = AccessToken(email, scope or DEFAULT_SCOPE, now + TOKEN_LIFETIME_S)
        return token

    def token_info(self, token: str) -> dict[str, Any] | None:
        """What tokeninfo answers for a live access token; None for an unknown or expired one."""
        found = self._access.get(token)
        now = self._now()
        if found is None or found.expires_at <= now:
            return None
        return {
            "azp": found.email,
            "aud": found.email,
            "email": found.email,
            "email_verified": "true",
            "scope": found.scope,
            "expires_in": str(int(found.expires_at - now)),
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer.rstrip('/')}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
        }
