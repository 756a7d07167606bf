"""Sending attempts over HTTP (aiohttp), each bounded by its dispatch deadline.

Each target host (scheme, host and port) gets at most ``connections_per_host`` attempts at
once; the others wait in the host's lane for a free connection before they are sent. Their
dispatch deadline starts when they are sent, so an attempt is not cut short, and counted as
failed, for time it spent waiting behind others.

A lane is served by up to ``connections_per_host`` runners, each sending one attempt after
another while the lane has any, as a client loop would; an attempt is handed over with the
callback that gets its reply. This costs less per attempt than a task of its own waiting on a
semaphore (measured in ``bench/dispatch.py``, where thousands of attempts wait at once).

aiohttp rather than httpx: httpx's pool checks every pooled connection on every request,
which made dispatch to one busy host quadratic (measured: ~110 attempts/s at 500/s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from tasksd.targets.outbound import Outbound

log = logging.getLogger(__name__)

CONNECTIONS_PER_HOST = 256


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: an HTTP status, or 0 with the reason no response came."""

    status: int
    reason: str
    retry_after_s: float | None = None


class _Lane:
    """The attempts waiting to be sent to one host, and how many runners send them."""

    __slots__ = ("pending", "runners")

    def __init__(self) -> None:
        self.pending: deque[tuple[Outbound, float, Callable[[Reply], object]]] = deque()
        self.runners = 0


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
        self._lanes: dict[str, _Lane] = {}
        self._runners: set[asyncio.Task[None]] = set()
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

    def submit(self, request: Outbound, deadline_s: float, done: Callable[[Reply], object]) -> None:
        """Send ``request`` as soon as its host has a free connection; ``done`` gets the reply
        (on the event loop, never before this returns)."""
        if self._allowed is not None:
            host = urlsplit(request.url).hostname or ""
            if host not in self._allowed:
                reply = Reply(0, f"The target host {host!r} is not in the allowed list of this server.")
                asyncio.get_running_loop().call_soon(done, reply)
                return
        origin = _origin(request.url)
        lane = self._lanes.get(origin)
        if lane is None:
            lane = self._lanes[origin] = _Lane()
        lane.pending.append((request, deadline_s, done))
        if lane.runners < self._per_host:
            lane.runners += 1
            runner = asyncio.create_task(self._run(origin, lane))
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)

    async def send(self, request: Outbound, deadline_s: float) -> Reply:
        """``submit``, awaiting the reply."""
        replied: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

        def done(reply: Reply) -> None:
            if not replied.done():  # the caller may have given up
                replied.set_result(reply)

        self.submit(request, deadline_s, done)
        return await replied

    async def _run(self, origin: str, lane: _Lane) -> None:
        try:
            while lane.pending:
                request, deadline_s, done = lane.pending.popleft()
                try:
                    reply = await self.request(request, deadline_s)
                except Exception as exc:  # a fault of the client stack: the attempt failed
                    log.exception("sending to %s failed unexpectedly", request.url)
                    reply = Reply(0, f"{type(exc).__name__}: {exc}".rstrip(": "))
                try:
                    done(reply)
                except Exception:
                    log.exception("recording the reply of %s failed", request.url)
        finally:
            lane.runners -= 1
            if not lane.runners and not lane.pending and self._lanes.get(origin) is lane:
                del self._lanes[origin]

    async def stop_sending(self) -> None:
        """Abandon every attempt waiting or in flight; their callbacks are not called."""
        runners = list(self._runners)
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._lanes.clear()

    async def request(self, request: Outbound, deadline_s: float) -> Reply:
        """Send ``request`` now, outside its host's lane (what a bare client loop does)."""
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
        await self.stop_sending()
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
