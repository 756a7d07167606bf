"""Who the caller is: the principal a request's credentials prove.

Credentials are a bearer token (``Authorization: Bearer`` or ``access_token``/``oauth_token``
parameters) and/or an API key (``key`` or ``x-goog-api-key``). A bearer token is one of:
- a static token of the config;
- an access token of tasksd's own token endpoint (``auth.tokens.ApiTokens``);
- a JWT a service account signed itself with a key file of the config (google-auth's
  self-signed JWT access: ``aud`` the API, or a ``scope`` claim);
- an OIDC ID token of a configured issuer, checked against its JWKS (PyJWT's JWKS client,
  which caches the key set).
A token is verified once, then remembered (by its text) until it expires. Every failure is
the same UNAUTHENTICATED error, so nothing tells a caller which principals exist.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from tasksd.auth.config import AuthConfig, OidcIssuer, ServiceAccountKey
from tasksd.auth.tokens import GOOGLE_TOKEN_URI, JWT_BEARER, ApiTokens
from tasksd.model.errors import InvalidArgument, InvalidCredentials, Unauthenticated

log = logging.getLogger(__name__)

API_AUDIENCES = ("https://cloudtasks.googleapis.com/", "https://cloudtasks.googleapis.com")
MAX_SELF_SIGNED_LIFETIME_S = 3600
LEEWAY_S = 60
_CACHE_SIZE = 50_000


CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("tasksd_caller", default=None)
"""The authenticated principal of the call being served (set by the transport that
authenticated it; None when authentication is off)."""

Authenticate = Callable[["Credentials", tuple[str, ...]], Awaitable[str]]
"""What a transport calls with a request's credentials and the server's own URLs: the principal."""


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer …`` value. Raises InvalidCredentials for
    another scheme or an empty token."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidCredentials()
    return token


class InvalidApiKey(InvalidArgument):
    default_message = "API key not valid. Please pass a valid API key."


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request carried: a bearer token and/or an API key (None when absent)."""

    bearer: str | None = None
    api_key: str | None = None


class Authenticator:
    def __init__(self, config: AuthConfig, api_tokens: ApiTokens) -> None:
        self._tokens = config.tokens
        self._api_keys = config.api_keys
        self._api_tokens = api_tokens
        self._by_key_id = {k.key_id: k for k in config.service_account_keys}
        self._by_email = {k.email: k for k in config.service_account_keys}
        self._issuers = {i.issuer: i for i in config.oidc_issuers}
        self._jwks: dict[str, jwt.PyJWKClient | jwt.PyJWKSet] = {}
        self._verified: dict[str, tuple[str, float]] = {}

    async def authenticate(self, credentials: Credentials, audiences: tuple[str, ...] = ()) -> str:
        """The principal the credentials prove. ``audiences``: this server's own URLs, which a
        self-signed JWT may name as well as the Cloud Tasks API.

        Raises:
            Unauthenticated: no credential, or one that proves nobody.
            InvalidApiKey: an API key that is not in the config.
        """
        key_principal = None
        if credentials.api_key is not None:
            key_principal = self._api_keys.get(credentials.api_key)
            if key_principal is None:
                raise InvalidApiKey()
        if credentials.bearer is None:
            if key_principal is None:
                raise Unauthenticated()
            return key_principal
        token = credentials.bearer
        remembered = self._verified.get(token)
        now = time.time()
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        principal = self._static(token)
        if principal is not None:
            return principal
        proven = self._api_tokens.verify(token) or await self._jwt(token, audiences, now)
        if proven is None:
            raise InvalidCredentials()
        if len(self._verified) >= _CACHE_SIZE:
            self._verified = {t: p for t, p in self._verified.items() if p[1] > now}
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
        self._verified[token] = proven
        return proven[0]

    def grant(self, form: dict[str, str], own_urls: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer (HTTP status, JSON) to an RFC 7523 JWT-bearer grant."""
        if form.get("grant_type") != JWT_BEARER:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"Only {JWT_BEARER} is supported.",
            }
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: malformed assertion."}
        key = self._by_key_id.get(str(header.get("kid"))) or self._by_email.get(str(unverified.get("iss")))
        claims = (
            None
            if key is None
            else verify_self_signed(assertion, key, token_audiences(own_urls), scope_allowed=False)
        )
        if key is None or claims is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        scope = claims.get("scope") if isinstance(claims.get("scope"), str) else ""
        token, lifetime = self._api_tokens.issue(f"serviceAccount:{key.email}", scope or "")
        return 200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}

    def _static(self, token: str) -> str | None:
        for secret, principal in self._tokens.items():
            if hmac.compare_digest(secret.encode(), token.encode()):
                return principal
        return None

    async def _jwt(self, token: str, audiences: tuple[str, ...], now: float) -> tuple[str, float] | None:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        issuer = self._issuers.get(str(claims.get("iss")))
        if issuer is not None:
            return await self._id_token(token, issuer)
        key = self._by_key_id.get(str(header.get("kid"))) or self._by_email.get(str(claims.get("iss")))
        if key is None:
            return None
        verified = verify_self_signed(token, key, (*API_AUDIENCES, *audiences), scope_allowed=True)
        if verified is None:
            return None
        return f"serviceAccount:{key.email}", float(verified["exp"])

    async def _id_token(self, token: str, issuer: OidcIssuer) -> tuple[str, float] | None:
        try:
            source = self._jwks.get(issuer.issuer)
            if source is None:
                if issuer.jwks_file is not None:
                    with open(issuer.jwks_file) as file:
                        source = jwt.PyJWKSet.from_json(file.read())
                else:
                    assert issuer.jwks_uri is not None
                    source = jwt.PyJWKClient(issuer.jwks_uri, cache_jwk_set=True, lifespan=300, timeout=10)
                self._jwks[issuer.issuer] = source
            if isinstance(source, jwt.PyJWKClient):
                # The client fetches the key set with urllib: not on the event loop.
                signing = await asyncio.to_thread(source.get_signing_key_from_jwt, token)
            else:
                kid = jwt.get_unverified_header(token).get("kid")
                signing = next(k for k in source.keys if kid is None or k.key_id == kid)
            claims = jwt.decode(
                token,
                signing.key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except (jwt.PyJWTError, StopIteration, OSError, ValueError) as exc:
            log.debug("an ID token of %s was refused: %s", issuer.issuer, type(exc).__name__)
            return None
        return id_token_principal(claims, issuer.issuer), float(claims["exp"])


def id_token_principal(claims: dict[str, Any], issuer: str) -> str:
    """``serviceAccount:EMAIL`` for service accounts, ``user:EMAIL`` for other emails, else
    ``principal://ISSUER/subject/SUB``."""
    email = claims.get("email")
    if isinstance(email, str) and email:
        kind = "serviceAccount" if email.lower().endswith(".gserviceaccount.com") else "user"
        return f"{kind}:{email}"
    host = issuer.split("://", 1)[-1].rstrip("/")
    return f"principal://{host}/subject/{claims.get('sub', '')}"


def verify_self_signed(
    token: str, key: ServiceAccountKey, audiences: tuple[str, ...], *, scope_allowed: bool
) -> dict[str, Any] | None:
    """The claims of a JWT that ``key`` signed for one of ``audiences`` (or, when
    ``scope_allowed``, with a ``scope`` claim instead of an audience), issued by the key's
    account, lasting at most an hour; None otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key_pem,
            algorithms=["RS256"],
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "iss"], "verify_aud": False},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("iss") != key.email or claims.get("sub", key.email) != key.email:
        return None
    if float(claims["exp"]) - float(claims["iat"]) > MAX_SELF_SIGNED_LIFETIME_S + LEEWAY_S:
        return None
    audience = claims.get("aud")
    if audience is None:
        return claims if scope_allowed and isinstance(claims.get("scope"), str) and claims["scope"] else None
    named = audience if isinstance(audience, list) else [audience]
    return claims if any(a in audiences for a in named) else None


def token_audiences(own_urls: tuple[str, ...]) -> tuple[str, ...]:
    """The audiences a token-endpoint assertion may name: Google's endpoint, or this one."""
    return (GOOGLE_TOKEN_URI, *(f"{url.rstrip('/')}/token" for url in own_urls))
