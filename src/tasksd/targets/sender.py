"""Sending one attempt over HTTP (aiohttp), bounded by its dispatch deadline.

Each target host (scheme, host and port) gets at most ``connections_per_host`` attempts at
once; the others wait here for a free connection before they are sent. Their dispatch
deadline starts when they are sent, so an attempt is not cut short, and counted as failed,
for time it spent waiting behind others.

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


class _Slots:
    """The free connections to one host, and how many attempts use or wait for one."""

    __slots__ = ("free", "users")

    def __init__(self, size: int) -> None:
        self.free = asyncio.Semaphore(size)
        self.users = 0


class Sender:
    def __init__(
        self,
        *,
        verify_tls: bool = True,
        allowed_hosts: frozenset[str] | None = None,
        connections_per_host: int = CONNECTIONS_PER_HOST,
    ) -> None:
        self._verify = verify_tls
        self._allowed = allowed_hosts
        self._per_host = connections_per_host
        self._hosts: dict[str, _Slots] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env=False: proxy variables of the server's environment must not redirect tasks.
            # Connections are reused per host; beyond this many at once, attempts wait for one
            # (opening thousands of connections to one host cost more than the requests).
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self._per_host, ssl=self._verify)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def send(self, request: Outbound, deadline_s: float) -> Reply:
        if self._allowed is not None:
            host = urlsplit(request.url).hostname or ""
            if host not in self._allowed:
                return Reply(0, f"The target host {host!r} is not in the allowed list of this server.")
        origin = _origin(request.url)
        slots = self._hosts.get(origin)
        if slots is None:
            slots = self._hosts[origin] = _Slots(self._per_host)
        slots.users += 1
        try:
            async with slots.free:
                return await self._send(request, deadline_s)
        finally:
            slots.users -= 1
            if not slots.users:
                del self._hosts[origin]

    async def _send(self, request: Outbound, deadline_s: float) -> Reply:
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


def _origin(url: str) -> str:
    """The scheme, host and port part of an absolute URL (what its connections are kept by)."""
    end = url.find("/", url.find("//") + 2)
    return (url if end < 0 else url[:end]).lower()


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
