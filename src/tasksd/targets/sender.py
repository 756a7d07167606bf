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

Where attempts may go (``tasksd.targets.network``) is checked on the address each connection
is actually opened to, never on the URL: aiohttp hands every address it is about to connect to,
whether it came from DNS or from an IP literal, to the connector's ``socket_factory``, and the
factory refuses to make a socket for an address the rule does not allow. Every hop of a
redirect that aiohttp follows opens (or reuses) a connection through the same connector, so
neither a host name that resolves to a refused address, nor DNS that changes between a check and
the connection, nor a redirect to another host gets past it; the check costs nothing per request
on a reused connection. The resolver drops refused addresses first, so that a name with both
allowed and refused addresses is reached on the allowed ones, and one with only refused ones
fails with a refusal rather than with aiohttp's summary of several connection errors.
``allowed_hosts`` (names, not addresses) is checked on every hop by a client middleware.
A refused attempt comes back as ``Reply(0, reason, refused=True)``: nothing was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from tasksd.clock import Clock, SystemClock
from tasksd.targets.network import TargetNetworks
from tasksd.targets.outbound import Outbound

log = logging.getLogger(__name__)

CONNECTIONS_PER_HOST = 256


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: an HTTP status, or 0 with the reason no response came."""

    status: int
    reason: str
    retry_after_s: float | None = None
    refused: bool = False
    """Nothing was sent: this server's rules do not allow the target (``reason`` says why)."""


class RefusedAddress(OSError):
    """A connection to an address that the target rule does not allow was not made."""


class RefusedHost(aiohttp.ClientError):
    """A request to a host outside ``allowed_hosts`` was not made."""


class _Lane:
    """The attempts waiting to be sent to one host, and how many runners send them."""

    __slots__ = ("pending", "runners")

    def __init__(self) -> None:
        self.pending: deque[tuple[Outbound, float, Callable[[Reply], object]]] = deque()
        self.runners = 0


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, without the addresses that attempts may not connect to."""

    def __init__(self, networks: TargetNetworks) -> None:
        self._resolver = aiohttp.DefaultResolver()
        self._networks = networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        hosts = await self._resolver.resolve(host, port, family)
        allowed = [h for h in hosts if self._networks.refusal(h["host"]) is None]
        if hosts and not allowed:
            raise RefusedAddress(self._networks.refusal(hosts[0]["host"]))
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


class Sender:
    """Sends attempts (``Outbound`` requests, already built by the dispatcher) and answers each
    with a ``Reply``: the HTTP status and Retry-After, or why nothing came back or nothing was
    sent. Attempts to one host share ``connections_per_host`` connections (the lanes of this
    module's docstring); the address actually connected to is checked against the outbound
    rules before anything is sent."""

    def __init__(
        self,
        *,
        verify_tls: bool = True,
        ca_file: str | None = None,
        allowed_networks: tuple[str, ...] | None = None,
        allowed_hosts: frozenset[str] | None = None,
        connections_per_host: int = CONNECTIONS_PER_HOST,
        clock: Clock | None = None,
    ) -> None:
        """``clock`` reads the time a Retry-After date is counted from.

        Raises: ValueError when ``ca_file`` or a network of ``allowed_networks`` cannot be
        used (the message names it)."""
        self.clock: Clock = clock or SystemClock()
        self._tls = _tls_context(verify_tls, ca_file)
        self._networks = TargetNetworks.parse(allowed_networks)
        self._allowed = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None
        self._per_host = connections_per_host
        self._lanes: dict[str, _Lane] = {}
        self._runners: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env=False: proxy variables of the server's environment must not redirect tasks.
            # Connections are reused per host; beyond this many at once, attempts wait for one
            # (opening thousands of connections to one host cost more than the requests).
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self._per_host,
                ssl=self._tls,
                resolver=CheckedResolver(self._networks),
                socket_factory=self._socket,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=False,
                # A target gets the headers of the attempt and nothing aiohttp would add
                # (Accept, Accept-Encoding, its User-Agent, Content-Type for a body): the
                # service sets no Content-Type on HTTP tasks.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                middlewares=(self._check_host,) if self._allowed is not None else (),
            )
        return self._session

    def _socket(
        self, addr_info: tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]
    ) -> socket.socket:
        """The socket for a connection about to be made to ``addr_info``'s address, if allowed."""
        family, kind, proto, _, address = addr_info
        refusal = self._networks.refusal(address[0])
        if refusal is not None:
            raise RefusedAddress(refusal)
        return socket.socket(family, kind, proto)

    async def _check_host(
        self,
        request: aiohttp.ClientRequest,
        handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
    ) -> aiohttp.ClientResponse:
        """Each hop (the first and every redirect) goes only to a host of ``allowed_hosts``."""
        assert self._allowed is not None
        host = request.url.host or ""
        if host not in self._allowed:
            raise RefusedHost(f"The target host {host!r} is not in the allowed list of this server.")
        return await handler(request)

    def submit(self, request: Outbound, deadline_s: float, done: Callable[[Reply], object]) -> None:
        """Send ``request`` as soon as its host has a free connection; ``done`` gets the reply
        (on the event loop, never before this returns)."""
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
                    response.status,
                    response.reason or "",
                    _retry_after(response.headers.get("Retry-After"), self.clock.now()),
                )
        except TimeoutError:
            return Reply(0, f"No response within the dispatch deadline ({deadline_s:g}s).")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                return Reply(0, refusal, refused=True)
            return Reply(0, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def close(self) -> None:
        await self.stop_sending()
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    """What the connector checks HTTPS targets with: the system's CAs (True), those and
    ``ca_file``'s, or nothing (False)."""
    if ca_file is None:
        return verify
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ValueError(f"target_ca_file {ca_file!r} cannot be used: {exc}") from None
    context.set_alpn_protocols(("http/1.1",))
    return context if verify else False


def _refusal(exc: BaseException) -> str | None:
    """The reason, when an attempt failed because the target rule refused it."""
    seen: BaseException | None = exc
    for _ in range(8):  # aiohttp wraps an OSError of the connector once or twice
        if seen is None:
            return None
        if isinstance(seen, RefusedAddress | RefusedHost):
            return str(seen)
        if isinstance(seen, aiohttp.ClientConnectorError):
            seen = seen.os_error
        else:
            seen = seen.__cause__ or seen.__context__
    return None


def _origin(url: str) -> str:
    """The scheme, host and port part of an absolute URL (what its connections are kept by)."""
    end = url.find("/", url.find("//") + 2)
    return (url if end < 0 else url[:end]).lower()


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds, or an HTTP date as of ``now``)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
