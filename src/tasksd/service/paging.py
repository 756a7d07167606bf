"""Opaque page tokens: the last key returned, bound to the filter and valid for 2 hours."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta

from tasksd.model.errors import InvalidArgument

TOKEN_LIFETIME = timedelta(hours=2)


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def make_token(last_key: str, scope: str, now: datetime) -> str:
    """A token that resumes after ``last_key``; ``scope`` is what must not change between pages."""
    raw = json.dumps({"k": last_key, "s": _fingerprint(scope), "t": int(now.timestamp())})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_token(token: str, scope: str, now: datetime) -> str:
    """The key to resume after; "" for the first page.

    Raises:
        InvalidArgument: the token is malformed, expired, or was made for another filter.
    """
    if not token:
        return ""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, fingerprint, issued = raw["k"], raw["s"], raw["t"]
        if not isinstance(key, str) or not isinstance(issued, int):
            raise ValueError(key)
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(f"Invalid page_token {token!r}: it was not returned by this API.") from None
    if fingerprint != _fingerprint(scope):
        raise InvalidArgument(
            "Invalid page_token: the filter changed while iterating through pages; start again "
            "without a page_token."
        )
    if now.timestamp() - issued > TOKEN_LIFETIME.total_seconds():
        raise InvalidArgument("The page_token has expired (page tokens are valid for 2 hours).")
    return key


def check_page_size(page_size: int, maximum: int) -> int:
    """The page size to use: 0 means the maximum; negative ones are rejected."""
    if page_size < 0:
        raise InvalidArgument(f"page_size must not be negative, got {page_size}.")
    return maximum if page_size == 0 else min(page_size, maximum)
