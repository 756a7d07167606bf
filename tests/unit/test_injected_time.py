"""Time and chance are injected into the token issuer and the sender's Retry-After reading:
a fake clock and a fixed random source decide what they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from tasksd.clock import FakeClock
from tasksd.targets.sender import _retry_after
from tasksd.targets.tokens import TOKEN_LIFETIME_S, TokenIssuer, new_signing_key

KEY = new_signing_key()


def test_oidc_tokens_are_dated_by_the_clock() -> None:
    clock = FakeClock(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))
    issuer = TokenIssuer(KEY, "https://tasksd.test", clock)
    claims = jwt.decode(
        issuer.oidc_token("a@p.iam.gserviceaccount.com", "aud"), options={"verify_signature": False}
    )
    assert claims["iat"] == int(clock.now().timestamp())
    assert claims["exp"] == claims["iat"] + TOKEN_LIFETIME_S


def test_access_tokens_come_from_the_random_source_and_expire_on_the_clock() -> None:
    clock = FakeClock()
    issuer = TokenIssuer(KEY, "https://tasksd.test", clock, token_urlsafe=lambda n: "x" * n)
    token = issuer.access_token("a@p.iam.gserviceaccount.com", "")
    assert token == "ya29.tasksd-" + "x" * 32
    info = issuer.token_info(token)
    assert info is not None and info["expires_in"] == str(TOKEN_LIFETIME_S)
    clock.advance(timedelta(seconds=TOKEN_LIFETIME_S - 10))
    info = issuer.token_info(token)
    assert info is not None and info["expires_in"] == "10"
    clock.advance(timedelta(seconds=10))
    assert issuer.token_info(token) is None


def test_retry_after_dates_count_from_the_given_now() -> None:
    now = datetime(2031, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert _retry_after("Wed, 01 Jan 2031 12:00:30 GMT", now) == 30.0
    assert _retry_after("Wed, 01 Jan 2031 11:59:00 GMT", now) == 0.0
    assert _retry_after("120", now) == 120.0
    assert _retry_after("soon", now) is None and _retry_after(None, now) is None
