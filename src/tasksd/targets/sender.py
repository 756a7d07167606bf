"""Sending one attempt over HTTP (aiohttp), bounded by its dispatch deadline.

aiohttp rather than httpx: httpx's pool checks every pooled connection on every request,
which made dispatch to one busy host quadratic (measured: ~110 attempts/s at 500/s).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from tasksd.targets.outbound import Outbound

CONNECTIONS_PER_HOST = 256


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: an HTTP status, or 0 with the reason no response came."""

    status: int
    reason: str
    retry_after_s: float | None = None


class Sender:
    def __init__(self, *, verify_tls: bool = True, allowed_hosts: frozenset[str] | None = None) -> None:
        self._verify = verify_tls
        self._allowed = allowed_hosts
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env=False: proxy variables of the server's environment must not redirect tasks.
            # Connections are reused per host; beyond this many at once, attempts wait for one
            # (opening thousands of connections to one host cost more than the requests).
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_HOST, ssl=self._verify)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def send(self, request: Outbound, deadline_s: float) -> Reply:
        if self._allowed is not None:
            host = urlsplit(request.url).hostname or ""
            if host not in self._allowed:
                return Reply(0, f"The target host {host!r} is not in the allowed list of this server.")
        try:
            async with self._client().request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                allow_redirects=request.follow_redirects,
                timeout=aiohttp.ClientTimeout(total=deadline_s),
            ) as response:
                await response.read()
                return Reply(
                    response.status, response.reason or "", _retry_after(response.headers.get("Retry-After"))
                )
        except TimeoutError:
            return Reply(0, f"No response within the dispatch deadline ({deadline_s:g}s).")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Reply(0, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)


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
