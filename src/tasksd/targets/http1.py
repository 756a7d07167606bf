"""One HTTP/1.1 exchange on a kept-alive connection: the request head written, the response
parsed by httptools (the parser uvicorn serves with), its body read and dropped.

This is what the sender sends with instead of aiohttp's client: on this machine aiohttp costs
~90-110 µs of CPU per request against ~14 µs for a protocol like this one on the same event
loop (bench/dispatch.py's bare loops), and push dispatch is bound by that CPU. What aiohttp did
besides (pooling, the address check, TLS, redirects, deadlines) is the sender's, in a few lines
each. What is kept of a response: its status, reason, Retry-After and Location; the body is
read (so the connection can be used again) but not kept, so its size costs no memory.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from dataclasses import dataclass
from typing import cast

import httptools
import yarl

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods whose requests carry a Content-Length even when they have no body (as aiohttp's)."""


MAX_HEAD_BYTES = 1 << 16
"""A response's status line and headers may be this long (aiohttp's limit was 8190 bytes a line)."""


class ProtocolError(OSError):
    """The target's answer was not HTTP/1.1, or the connection ended before a response."""


class DeadlineExceeded(Exception):
    """No response came by the attempt's deadline."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's request goes: the connection's origin and the request's target."""

    origin: str
    """scheme://host[:port], the key connections are kept by."""
    tls: bool
    host: str
    """The host as allowed_hosts names it (lower case, IPv6 without brackets)."""
    port: int
    host_header: str
    path: str
    """The request target: path and query, percent-encoded as aiohttp (yarl) encodes them."""
    authorization: str | None = None
    """Basic credentials of the URL's user information, if it has any (as aiohttp sent them)."""


@functools.lru_cache(maxsize=4096)
def target_of(url: str) -> Target:
    """The target of an absolute http(s) URL (tasks share a few URLs: parsed once each).

    Raises: ValueError for a URL that cannot be sent to."""
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.port is None:
        raise ValueError(f"Cannot send a request to {url!r}.")
    authority = parsed.host_port_subcomponent or parsed.host
    credentials = None
    if parsed.user is not None:
        pair = f"{parsed.user}:{parsed.password or ''}".encode()
        credentials = f"Basic {base64.b64encode(pair).decode()}"
    return Target(
        f"{parsed.scheme}://{authority}",
        parsed.scheme == "https",
        parsed.host,
        parsed.port,
        authority,
        parsed.raw_path_qs or "/",
        credentials,
    )


def request_head(method: str, target: Target, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The request line and headers: Host first (the URL's, unless ``headers`` name one), the
    headers in their order, the URL's credentials unless ``headers`` hold an Authorization,
    and Content-Length for a body (or ``BODY_METHODS``).

    Raises: ValueError for a header name or value with a line break in it."""
    host = target.host_header
    lines = [f"{method} {target.path} HTTP/1.1", ""]
    for key, value in headers:
        if key.lower() == "host":
            host = value
        else:
            lines.append(f"{key}: {value}")
    lines[1] = f"Host: {host}"
    if target.authorization is not None and not any(k.lower() == "authorization" for k, _ in headers):
        lines.append(f"Authorization: {target.authorization}")
    if body or method in BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        raise ValueError("A header name or value holds a line break.")
    return f"{text}\r\n\r\n".encode()


class Connection(asyncio.Protocol):
    """A client connection that sends one request at a time (``exchange``)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.deadline = 0.0
        """The event loop's time by which the exchange under way must have ended (``expire``)."""
        self.keep = False
        """Whether the last exchange left the connection usable for another."""
        self._waiter: asyncio.Future[None] | None = None
        self._head_only = False
        self._until_close = False
        self._head_left = MAX_HEAD_BYTES
        self.status = 0
        self.reason = ""
        self.retry_after: str | None = None
        self.location: str | None = None

    @property
    def usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def exchange(self, data: bytes, head_only: bool) -> asyncio.Future[None]:
        """Send a whole request; the future is done once its response has come (``status``,
        ``reason``, ``retry_after`` and ``location`` then tell it), or fails with an OSError.
        A response to HEAD (``head_only``) ends with its headers."""
        assert self.transport is not None and self._waiter is None
        self.status, self.reason, self.retry_after, self.location = 0, "", None, None
        self.keep = False
        self._head_only = head_only
        self._until_close = True
        self._head_left = MAX_HEAD_BYTES
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return waiter

    def expire(self) -> None:
        """The exchange ran out of time: it fails with DeadlineExceeded and the connection,
        out of step now, is closed."""
        self._fail(DeadlineExceeded())
        self.close()

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked: the connection is out of step
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"The target's response is not HTTP/1.1 ({exc})."))
            self.close()
            return
        if self.status == 0:  # still in the status line and headers, which httptools keeps
            self._head_left -= len(data)
            if self._head_left < 0:
                self._fail(ProtocolError(f"The target's response headers exceed {MAX_HEAD_BYTES} bytes."))
                self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._waiter is not None:
            if self.status >= 200 and self._until_close:  # its body lasted until the close
                self._complete(keep=False)
            else:
                self._fail(ProtocolError("The target closed the connection before its response ended."))

    # httptools callbacks

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif lower == b"location":
            self.location = value.decode("latin-1")
        elif lower in (b"content-length", b"transfer-encoding"):
            self._until_close = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self._head_only and self.status >= 200:
            self._complete(keep=False)  # httptools would wait for the body a HEAD has not

    def on_message_complete(self) -> None:
        if self.status < 200:  # an interim response (100 Continue, 103): the real one follows
            self.status, self.reason = 0, ""
            return
        self._complete(keep=self.parser.should_keep_alive())

    def _complete(self, *, keep: bool) -> None:
        waiter, self._waiter = self._waiter, None
        self.keep = keep
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
