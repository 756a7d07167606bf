"""Access tokens tasksd issues for its own API, and the token endpoint that grants them.

``POST /token`` takes an RFC 7523 JWT-bearer grant: an assertion signed with a service
account key listed in the config (what google-auth sends to a key file's ``token_uri``). It
answers an access token: an RS256 JWT signed with tasksd's own key (the one kept in the
store, so every node verifies what any node issued), typed ``at+jwt`` and with an audience
of its own, so that no OIDC token tasksd attaches to a push task is ever taken for one.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ACCESS_TOKEN_LIFETIME_S = 3600
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_AUDIENCE = "tasksd-api"
_TYPE = "at+jwt"


class ApiTokens:
    """Issues and verifies the access tokens of tasksd's API."""

    def __init__(self, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self._public = key.public_key()

    def issue(self, principal: str, scope: str) -> tuple[str, int]:
        """(token, seconds it lasts) for ``principal``."""
        now = int(time.time())
        claims = {
            "iss": "tasksd",
            "aud": _AUDIENCE,
            "sub": principal,
            "scope": scope,
            "iat": now,
            "exp": now + ACCESS_TOKEN_LIFETIME_S,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"typ": _TYPE})
        return token, ACCESS_TOKEN_LIFETIME_S

    def verify(self, token: str) -> tuple[str, float] | None:
        """(principal, expiry) of a token this server's key issued; None for any other."""
        try:
            if jwt.get_unverified_header(token).get("typ") != _TYPE:
                return None
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=_AUDIENCE,
                issuer="tasksd",
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        return str(claims["sub"]), float(claims["exp"])


def is_api_token(claims: dict[str, Any]) -> bool:
    return claims.get("aud") == _AUDIENCE and claims.get("iss") == "tasksd"
