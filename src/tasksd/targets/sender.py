"""Sending attempts over HTTP/1.1 (``tasksd.targets.http1``), each bounded by its dispatch
deadline.

Each target host (scheme, host and port) gets at most ``connections_per_host`` attempts at
once; the others wait in the host's lane for a free connection before they are sent. Their
dispatch deadline starts when they are sent, so an attempt is not cut short, and counted as
failed, for time it spent waiting behind others.

A lane is served by up to ``connections_per_host`` runners, each sending one attempt after
another while the lane has any, as a client loop would; an attempt is handed over with the
callback that gets its reply. This costs less per attempt than a task of its own waiting on a
semaphore (measured in ``bench/dispatch.py``, where thousands of attempts wait at once).
Connections are kept per origin and used again; one idle for ``KEEPALIVE_S`` is closed.
Deadlines are kept by one task that looks at the attempts in flight every ``TICK_S``, not by a
timer per attempt (asyncio.timeout cost ~4 µs of CPU per attempt); opening a connection, rare
beside reusing one, has a timer of its own.

Not aiohttp's client: it cost ~100 µs of CPU per request here, against ~15 µs for
``http1.Connection`` on the same event loop (``bench/dispatch.py``'s bare loop measures the
sender); not httpx/httpcore either: their pool checks every pooled connection on every
request, which made dispatch to one busy host quadratic (~110 attempts/s at 500/s).

Where attempts may go (``tasksd.targets.network``) is checked on the address each connection
is actually opened to, never on the URL: the sender resolves the host itself, drops the
addresses the rule refuses and connects a socket to an allowed one (trying them as aiohttp
did, with aiohappyeyeballs), so neither a host name that resolves to a refused address, nor
DNS that changes between a check and the connection, nor a redirect to another host gets past
it (every hop of a redirect is a request of its own, on a connection opened or reused the same
way); the check costs nothing per request on a reused connection. A name with both allowed
and refused addresses is reached on the allowed ones; one with only refused ones fails with
the refusal. ``allowed_hosts`` (names, not addresses) is checked on every hop. A refused
attempt comes back as ``Reply(0, reason, refused=True)``: nothing was sent.

Redirects are followed as aiohttp followed them (HTTP targets; App Engine targets do not
follow them): at most ``MAX_REDIRECTS``; 303, and 301/302 of a POST, go on as GET without the
body; Authorization is dropped when the redirect leaves the origin (but for http→https on the
same host).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohappyeyeballs
import yarl

from tasksd.clock import Clock, SystemClock
from tasksd.targets.http1 import Connection, DeadlineExceeded, Target, request_head, target_of
from tasksd.targets.network import TargetNetworks
from tasksd.targets.outbound import Outbound

log = logging.getLogger(__name__)

CONNECTIONS_PER_HOST = 256
KEEPALIVE_S = 15.0
"""An idle connection is closed after this long (aiohttp's default)."""
MAX_REDIRECTS = 10
HAPPY_EYEBALLS_S = 0.25
TICK_S = 0.05
"""How often deadlines are looked at: an attempt is cut at most this long after its deadline."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


class RefusedHost(Exception):
    """A request to a host outside ``allowed_hosts`` was not made."""


class TooManyRedirects(Exception):
    """More than ``MAX_REDIRECTS`` redirects in a row."""


AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
"""One address of getaddrinfo's answer."""


class _Lane:
    """The attempts waiting to be sent to one host, and how many runners send them."""

    __slots__ = ("pending", "runners")

    def __init__(self) -> None:
        self.pending: deque[tuple[Outbound, float, Callable[[Reply], object]]] = deque()
        self.runners = 0


async def allowed_addresses(networks: TargetNetworks, host: str, port: int) -> list[AddressInfo]:
    """The addresses ``host`` resolves to that attempts may connect to, in the resolver's order.

    Raises: RefusedAddress when it resolves only to refused ones; OSError when it does not
    resolve."""
    found: list[AddressInfo]
    try:  # an address needs no resolver (whose threads a busy server may keep waiting)
        address = ipaddress.ip_address(host)
    except ValueError:
        found = list(await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM))
    else:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        where = (host, port) if address.version == 4 else (host, port, 0, 0)
        found = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", where)]
    allowed: list[AddressInfo] = [info for info in found if networks.refusal(str(info[4][0])) is None]
    if found and not allowed:
        raise RefusedAddress(networks.refusal(str(found[0][4][0])))
    return allowed


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
        self._idle: dict[str, list[tuple[Connection, float]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._in_flight: set[Connection] = set()
        self._expirer: asyncio.Task[None] | None = None

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
                except Exception as exc:  # a fault of the client: the attempt failed
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
            return await self._exchange(request, asyncio.get_running_loop().time() + deadline_s)
        except DeadlineExceeded:
            return Reply(0, f"No response within the dispatch deadline ({deadline_s:g}s).")
        except (RefusedAddress, RefusedHost) as exc:
            return Reply(0, str(exc), refused=True)
        except (OSError, ValueError, TooManyRedirects) as exc:  # ssl.SSLError is an OSError
            return Reply(0, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def _exchange(self, request: Outbound, deadline: float) -> Reply:
        """The request and the redirects it is sent on to, all by ``deadline`` (the event
        loop's time); the last response's reply."""
        method, url, headers, body = request.method, request.url, request.headers, request.body
        for _ in range(MAX_REDIRECTS + 1):
            target = target_of(url)
            if self._allowed is not None and target.host not in self._allowed:
                raise RefusedHost(
                    f"The target host {target.host!r} is not in the allowed list of this server."
                )
            data = request_head(method, target, headers, body)
            connection = await self._connection(target, deadline)
            connection.deadline = deadline
            self._in_flight.add(connection)
            if self._expirer is None:
                self._expirer = asyncio.create_task(self._expire())
            try:
                await connection.exchange(data + body if body else data, method == "HEAD")
            except BaseException:
                connection.close()
                raise
            finally:
                self._in_flight.discard(connection)
            self._release(target, connection)
            status, location = connection.status, connection.location
            if not (request.follow_redirects and status in _REDIRECTS and location):
                asked = connection.retry_after
                retry_after = _retry_after(asked, self.clock.now()) if asked is not None else None
                return Reply(status, connection.reason, retry_after)
            url, method, headers, body = _redirected(url, location, status, method, headers, body)
        raise TooManyRedirects(f"More than {MAX_REDIRECTS} redirects from {request.url}.")

    async def _expire(self) -> None:
        """Every ``TICK_S`` while attempts are in flight: fail those past their deadline.
        One timer for all of them, not one per attempt (~4 µs of CPU each)."""
        loop = asyncio.get_running_loop()
        try:
            while self._in_flight:
                await asyncio.sleep(TICK_S)
                now = loop.time()
                for connection in [c for c in self._in_flight if c.deadline <= now]:
                    connection.expire()
        finally:
            self._expirer = None

    async def _connection(self, target: Target, deadline: float) -> Connection:
        """An idle connection to the target's origin, or a new one to an allowed address
        (opened by ``deadline``)."""
        idle = self._idle.get(target.origin)
        while idle:
            connection, _ = idle.pop()
            if connection.usable:
                return connection
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                return await self._open(target)
        except TimeoutError:
            if timeout.expired():
                raise DeadlineExceeded() from None
            raise

    async def _open(self, target: Target) -> Connection:
        """A connection to one of the target's allowed addresses, tried as aiohttp tried them
        (happy eyeballs: the next address when one has not answered within 0.25 s)."""
        addresses = await allowed_addresses(self._networks, target.host, target.port)
        if not addresses:
            raise OSError(f"{target.host} has no address.")
        sock = await aiohappyeyeballs.start_connection(addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_S)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        tls = self._tls if target.tls else None
        # The event loop owns the socket from here on, and closes it when this fails.
        _, connection = await asyncio.get_running_loop().create_connection(
            Connection, sock=sock, ssl=tls, server_hostname=target.host if tls else None
        )
        return connection

    def _release(self, target: Target, connection: Connection) -> None:
        if not (connection.keep and connection.usable):
            connection.close()
            return
        self._idle.setdefault(target.origin, []).append((connection, asyncio.get_running_loop().time()))
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Close connections idle for ``KEEPALIVE_S``, while any are kept."""
        loop = asyncio.get_running_loop()
        try:
            while self._idle:
                await asyncio.sleep(KEEPALIVE_S / 3)
                oldest = loop.time() - KEEPALIVE_S
                for origin, idle in list(self._idle.items()):
                    for connection, since in idle:
                        if since < oldest:
                            connection.close()
                    idle[:] = [(c, since) for c, since in idle if since >= oldest]
                    if not idle:
                        del self._idle[origin]
        finally:
            self._sweeper = None

    async def close(self) -> None:
        await self.stop_sending()
        for task in (self._sweeper, self._expirer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for idle in self._idle.values():
            for connection, _ in idle:
                connection.close()
        self._idle.clear()
        await asyncio.sleep(0)


def _redirected(
    url: str, location: str, status: int, method: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """Where a redirect leads, as aiohttp follows one: (url, method, headers, body) of the next hop."""
    here = yarl.URL(url)
    try:
        there = yarl.URL(location, encoded=True)
        if not there.scheme:
            there = here.join(there)
        elif there.scheme not in ("http", "https"):
            raise ValueError(f"The redirect to {location!r} is not to an http(s) URL.")
        leaves = there.origin() != here.origin()
    except ValueError as exc:
        raise ValueError(f"The redirect to {location!r} cannot be followed: {exc}") from None
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", b""
    same_host_https = here.host == there.host and here.scheme == "http" and there.scheme == "https"
    if leaves and not same_host_https:
        headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
    return str(there), method, headers, body


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """What HTTPS targets are checked with: the system's CAs, those and ``ca_file``'s, or
    nothing (``verify`` False; ``ca_file`` is still read, so that a bad one stops the server)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ValueError(f"target_ca_file {ca_file!r} cannot be used: {exc}") from None
    context.set_alpn_protocols(("http/1.1",))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


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
