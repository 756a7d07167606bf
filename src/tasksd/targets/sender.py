"""Sending one attempt over HTTP, bounded by its dispatch deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from tasksd.targets.outbound import Outbound


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: an HTTP status, or 0 with the reason no response came."""

    status: int
    reason: str
    retry_after_s: float | None = None


class Sender:
    def __init__(self, *, verify_tls: bool = True, allowed_hosts: frozenset[str] | None = None) -> None:
        # trust_env=False: proxy variables of the server's environment must not redirect tasks.
        self._client = httpx.AsyncClient(
            verify=verify_tls,
            trust_env=False,
            timeout=None,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=1000),
        )
        self._allowed = allowed_hosts

    async def send(self, request: Outbound, deadline_s: float) -> Reply:
        host = urlsplit(request.url).hostname or ""
        if self._allowed is not None and host not in self._allowed:
            return Reply(0, f"The target host {host!r} is not in the allowed list of this server.")
        try:
            response = await asyncio.wait_for(
                self._client.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.body or None,
                    follow_redirects=request.follow_redirects,
                ),
                timeout=deadline_s,
            )
        except TimeoutError:
            return Reply(0, f"No response within the dispatch deadline ({deadline_s:g}s).")
        except httpx.HTTPError as exc:
            return Reply(0, f"{type(exc).__name__}: {exc}".rstrip(": "))
        return Reply(
            response.status_code, response.reason_phrase, _retry_after(response.headers.get("retry-after"))
        )

    async def close(self) -> None:
        await self._client.aclose()


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
