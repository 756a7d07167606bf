"""The HTTP/1.1 connection: uvicorn's httptools protocol, bounded against hostile clients.

uvicorn and httptools put no limit on a request's head (httptools gathers a header of any
size, by repeated concatenation), no deadline on a request that arrives slowly and no cap on
connections, so one client could hold the server's memory, its connections or its file
descriptors. Here, each bound from the ``limits:`` mapping of the config (``Limits``):

- a request line and headers (or trailers) larger than ``max_header_bytes`` are answered 431
  as soon as that many bytes are in, without reading the rest into memory;
- a request whose head takes longer than ``header_timeout_s`` from its first byte, or whose
  body takes longer than ``body_timeout_s`` once the head is in, is answered 408 (a body cut
  short this way reaches the app as a disconnect, so nothing runs on part of it); time in
  which uvicorn itself stopped reading (the app has not taken the body yet, or an earlier
  pipelined request is still being answered) does not count;
- a connection idle before its first request is closed after the keep-alive timeout, as one
  idle between requests is;
- beyond ``max_connections`` open connections, a new one is still accepted and its request
  head read (for at most ``min(header_timeout_s, 5)`` seconds from the accept): ``/healthz``
  is answered as usual and anything else 503 UNAVAILABLE, and the connection is closed.
  Connections are held to be refused only as far as the open-file limit leaves room (at least
  ``MIN_REFUSING``); those beyond are closed at once, so that refusals cannot use up the file
  descriptors.

These refusals end the connection: the JSON error (Google's shape) is written, the sending
side shut down, and whatever the client still sends read and dropped for a moment (a
lingering close, so that the reply is not lost to a TCP reset) before the socket is closed.
Requests the connection received earlier are answered first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tasksd.config import Limits

log = logging.getLogger(__name__)

RESERVED_FDS = 256
"""File descriptors counted, besides connections, for the store, gRPC and outgoing attempts."""
MIN_REFUSING = 64
"""Connections over the cap that are held to be answered (503, or /healthz) even when the
open-file limit leaves no room for them."""
REFUSING_HEAD_TIMEOUT_S = 5.0
LINGER_S = 2.0
"""How long a refused connection's further input is read and dropped before it is closed."""
_REFUSED_WARNING_EVERY_S = 60.0

_IDLE, _HEAD, _BODY = 0, 1, 2
"""Where the parser is in the connection's current request."""


class _Refused(Exception):
    """Raised in a parser callback to stop parsing: the request has been refused."""


@dataclass(slots=True)
class _Connections:
    """Open connections of one server, shared by its protocol instances."""

    admitted: int = 0
    refusing: int = 0
    warned_at: float = float("-inf")


def http_protocol(limits: Limits) -> type[BoundedHttpProtocol]:
    """A protocol class for ``uvicorn.Config(http=…)`` bound by ``limits``; the connections
    of the server that uses it are counted together."""

    class Protocol(BoundedHttpProtocol):
        pass

    Protocol.limits = limits
    Protocol.connections_open = _Connections()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        Protocol.max_refusing = max(soft - limits.max_connections - RESERVED_FDS, MIN_REFUSING)
    return Protocol


def raise_open_file_limit(limits: Limits) -> None:
    """Raise this process's soft limit of open files to its hard limit, so that
    ``max_connections``, not the file descriptors, is what binds; warn when it does not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    needed = limits.max_connections + MIN_REFUSING + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and needed > soft:
        log.warning(
            "limits.max_connections is %d, but the open-file limit (%d) leaves room for about %d "
            "connections besides the store, gRPC and outgoing attempts: clients may be refused "
            "before the cap is reached. Raise the limit (ulimit -n, LimitNOFILE=) or lower "
            "limits.max_connections.",
            limits.max_connections,
            soft,
            max(soft - MIN_REFUSING - RESERVED_FDS, 0),
        )


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of ``limits`` (see the module docstring)."""

    limits: ClassVar[Limits] = Limits()
    connections_open: ClassVar[_Connections] = _Connections()
    max_refusing: ClassVar[int] = MIN_REFUSING
    """Connections over the cap held at once to be refused with an answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.limits
        self._max_head = limits.max_header_bytes
        self._head_timeout = limits.header_timeout_s
        self._admitted = True
        """Within ``max_connections``; otherwise the connection is held only to be refused."""
        self._counted: str | None = None
        """Which count of ``connections_open`` holds this connection, if any."""
        self._phase = _IDLE
        self._begun = 0
        """Requests begun on this connection."""
        self._now = 0.0
        """The loop's time when the data being parsed arrived."""
        self._head_since: float | None = None
        """When the first byte of the request being received arrived (None: none has)."""
        self._body_since = 0.0
        self._chunk_len = 0
        """The length of the data being parsed."""
        self._head_run = 0
        """Bytes of the data received wholly inside the request's head (at most the head's size):
        what httptools may be holding of a header it has not finished."""
        self._head_prior = 0
        """Bytes of the data received before, while the request's head was arriving (at least
        the head's size before the data being parsed)."""
        self._bodyless = 0
        """Bytes received since the last body byte, while a body is due (trailers, say)."""
        self._body_seen = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._ending = False
        """A refusal is written or due: whatever else arrives is dropped."""
        self._refusal: bytes | None = None
        """The refusal to write once the earlier requests are answered."""

    # Connections

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        count = self.connections_open
        if count.admitted < self.limits.max_connections:
            count.admitted += 1
            self._counted = "admitted"
            # An idle new connection is closed as an idle kept-alive one is.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            return
        self._admitted = False
        if count.refusing >= self.max_refusing:
            self._ending = True
            transport.close()
        else:
            count.refusing += 1
            self._counted = "refusing"
            self._head_timeout = min(self._head_timeout, REFUSING_HEAD_TIMEOUT_S)
            self._head_since = self.loop.time()
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)
        now = self.loop.time()
        if now - count.warned_at >= _REFUSED_WARNING_EVERY_S:
            count.warned_at = now
            log.warning(
                "%d connections are open (limits.max_connections): new ones are refused with 503",
                count.admitted,
            )

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._counted == "admitted":
            self.connections_open.admitted -= 1
        elif self._counted == "refusing":
            self.connections_open.refusing -= 1
        self._counted = None
        self._ending = True
        self._cancel_timers()

    def shutdown(self) -> None:
        """Stop serving the connection as the server stops. An idle TLS connection is aborted:
        closing it waits (up to 30 s) for a close_notify that an idle client never sends."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_extra_info("sslcontext") is not None:
            self.transport.abort()
            return
        super().shutdown()

    def _cancel_timers(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    # Data

    def data_received(self, data: bytes) -> None:
        if self._ending:
            return
        self._unset_keepalive_if_required()
        self._now = now = self.loop.time()
        self._chunk_len = len(data)
        phase, begun = self._phase, self._begun
        if phase == _IDLE and self._head_since is None:
            self._head_since = now
        self._body_seen = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if not self._ending:  # not a refusal of ours: uvicorn's answer to a malformed request
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        if self._phase == _BODY:
            if phase == _BODY and self._begun == begun:
                self._bodyless = 0 if self._body_seen else self._bodyless + len(data)
                if self._bodyless > self._max_head:
                    self._refuse(self._too_large())
                    return
            if self._body_timer is None:
                deadline = self._body_since + self.limits.body_timeout_s
                self._body_timer = self.loop.call_at(deadline, self._body_timed_out)
        elif self._head_since is not None:  # a head has begun (or only blank lines so far)
            whole = self._begun == begun if phase != _IDLE else self._begun <= begun + 1
            self._head_run = self._head_run + len(data) if whole else 0
            self._head_prior += len(data)
            if self._head_run > self._max_head:
                self._refuse(self._too_large())
                return
            if self._head_timer is None:
                deadline = self._head_since + self._head_timeout
                self._head_timer = self.loop.call_at(deadline, self._head_timed_out)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._begun += 1
        if self._head_since is None:
            self._head_since = self._now

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        # Most heads arrive whole in data shorter than the limit, and need no counting.
        if self._head_prior + self._chunk_len > self._max_head and self._head_size() > self._max_head:
            self._refuse(self._too_large())
            raise _Refused
        self._head_since = None
        self._head_run = self._head_prior = 0
        if not self._admitted and httptools.parse_url(self.url).path != b"/healthz":
            self._refuse(
                self._error(
                    503,
                    "UNAVAILABLE",
                    f"Too many connections: this server serves at most {self.limits.max_connections} "
                    "at once (limits.max_connections). Retry later.",
                )
            )
            raise _Refused
        self._phase = _BODY
        self._body_since = self._now
        self._bodyless = 0
        super().on_headers_complete()
        if not self._admitted:
            self.cycle.keep_alive = False

    def _head_size(self) -> int:
        """The bytes of the request line and headers just parsed (give or take the spaces)."""
        line = len(self.parser.get_method()) + len(self.url) + len(" HTTP/1.1\r\n") + 1
        return line + sum(len(name) + len(value) + 4 for name, value in self.headers) + 2

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _IDLE
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal is not None and self.cycle.response_complete and not self.transport.is_closing():
            refusal, self._refusal = self._refusal, None
            self._end(refusal)

    # Deadlines

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._ending:
            return
        if self.flow.read_paused:  # not the client's delay: uvicorn is not reading
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)
            return
        if self._phase == _IDLE:  # nothing but blank lines, or nothing at all: just close
            self._ending = True
            self.transport.close()
            return
        self._refuse(
            self._error(
                408,
                "DEADLINE_EXCEEDED",
                f"The request's line and headers did not arrive within {self._head_timeout:g} s "
                "(limits.header_timeout_s).",
            )
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self._ending or self._phase != _BODY:
            return
        if self.flow.read_paused:  # not the client's delay: the app has not taken the body yet
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_timed_out)
            return
        self._refuse(
            self._error(
                408,
                "DEADLINE_EXCEEDED",
                f"The request body did not arrive within {self.limits.body_timeout_s:g} s "
                "(limits.body_timeout_s).",
            )
        )

    # Refusals

    def _too_large(self) -> bytes:
        return self._error(
            431,
            "INVALID_ARGUMENT",
            "Request header fields too large: the request line and headers exceed "
            f"{self._max_head} bytes (limits.max_header_bytes).",
        )

    def _error(self, status: int, code: str, message: str) -> bytes:
        """A complete HTTP response holding a google.rpc.Status JSON error, ending the connection."""
        log.debug("refused a request from %s: %s", self.client, message)
        body = json.dumps({"error": {"code": status, "message": message, "status": code}}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json; charset=UTF-8\r\nconnection: close\r\n")
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        return b"".join(head) + body

    def _refuse(self, reply: bytes) -> None:
        """Write ``reply`` (if any) once earlier requests are answered, and close."""
        self._ending = True
        self._cancel_timers()
        cycle = self.cycle
        if self._phase == _BODY:  # the app may be waiting for a body that will not come
            if cycle.response_complete:
                reply = b""  # answered already (early, without the whole body)
            elif cycle.response_started or any(waiting is cycle for waiting, _ in self.pipeline):
                self.transport.close()  # a reply is being written, or earlier requests' replies
                return
            else:  # the app sees a disconnect: it runs nothing on part of a body
                cycle.disconnected = True
                cycle.message_event.set()
            self._end(reply)
        elif (cycle is not None and not cycle.response_complete) or self.pipeline:
            self._refusal = reply
            self.flow.pause_reading()
        else:
            self._end(reply)

    def _end(self, reply: bytes) -> None:
        """Write ``reply``, then close after a lingering read of what the client still sends."""
        transport = self.transport
        if transport.is_closing():
            return
        if reply:
            transport.write(reply)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER_S, transport.close)
