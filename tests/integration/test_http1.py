"""The sender's HTTP/1.1 on the wire, against a raw server that answers scripted bytes: the
response framings a target may use, connections kept or closed, and what is refused."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from tasksd.targets import sender as sender_module
from tasksd.targets.outbound import Outbound
from tasksd.targets.sender import Reply, Sender


class RawServer:
    """Answers each request on a path with the bytes scripted for it (after reading the
    request's head and Content-Length body); ``close`` paths close the connection after."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[bytes, bool]] = {}
        self.requests: list[bytes] = []
        self.connections = 0
        self.ended = 0
        """Connections the client closed."""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def script(self, path: str, answer: bytes, close: bool = False) -> str:
        self.answers[path] = (answer, close)
        return self.url + path

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        self.ended += 1
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                path = head.split(b" ")[1].decode()
                answer, close = self.answers.get(
                    path, (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False)
                )
                conn.sendall(answer)
                if close:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def send_all(*requests: Outbound, sender: Sender | None = None, deadline_s: float = 5) -> list[Reply]:
    async def go() -> list[Reply]:
        using = sender or Sender()
        try:
            return [await using.send(r, deadline_s) for r in requests]
        finally:
            await using.close()

    return asyncio.run(go())


def post(url: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> Outbound:
    return Outbound("POST", url, headers or [], body, follow_redirects=True)


def test_response_framings_and_their_connections(raw: RawServer) -> None:
    """Content-Length, chunked, a body until the close (HTTP/1.0), an interim 100 and a HEAD
    answer whose Content-Length has no body after it: each read whole, its status and reason
    kept; a connection is used again unless the response ended it."""
    body = b"x" * 300_000
    length = raw.script("/length", b"HTTP/1.1 201 Made\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    chunked = raw.script(
        "/chunked", b"HTTP/1.1 202 Later\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    interim = raw.script("/interim", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    until_close = raw.script("/old", b"HTTP/1.0 200 Fine\r\n\r\nall of it", close=True)
    head = raw.script("/head", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    before = raw.connections
    replies = send_all(
        post(length),
        post(chunked),
        post(interim),
        post(length),
        post(until_close),
        Outbound("HEAD", head, [], b"", follow_redirects=False),
        post(length),
    )
    assert [(r.status, r.reason) for r in replies] == [
        (201, "Made"),
        (202, "Later"),
        (204, "No Content"),
        (201, "Made"),
        (200, "Fine"),
        (200, "OK"),
        (201, "Made"),
    ]
    # one connection until the HTTP/1.0 answer closed it, a second until the HEAD, a third
    assert raw.connections - before == 3


def test_a_closed_idle_connection_is_not_used(raw: RawServer) -> None:
    """A target that closes a kept connection after answering (without saying so): the next
    attempt opens a new one instead of failing on the closed one."""
    url = raw.script("/bye", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", close=True)

    async def go() -> list[Reply]:
        sender = Sender()
        try:
            first = await sender.send(post(url), 5)
            await asyncio.sleep(0.2)  # the close reaches the client
            return [first, await sender.send(post(url), 5)]
        finally:
            await sender.close()

    assert [r.status for r in asyncio.run(go())] == [200, 200]


def test_broken_responses_fail_the_attempt(raw: RawServer) -> None:
    garbage = raw.script("/garbage", b"SMTP ready\r\n\r\n")
    cut = raw.script("/cut", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close=True)
    silent = raw.script("/silent", b"", close=True)
    endless = raw.script("/endless-header", b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * 100_000)
    replies = send_all(post(garbage), post(cut), post(silent), post(endless), post(raw.url + "/fine"))
    assert [r.status for r in replies] == [0, 0, 0, 0, 200]
    assert "not HTTP/1.1" in replies[0].reason
    assert "before its response ended" in replies[1].reason and "before" in replies[2].reason
    assert "headers exceed 65536 bytes" in replies[3].reason


def test_the_deadline_cuts_a_response_that_never_ends(raw: RawServer) -> None:
    url = raw.script("/endless", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this")
    (reply,) = send_all(post(url), deadline_s=0.3)
    assert reply.status == 0 and "deadline (0.3s)" in reply.reason


def test_request_head_and_body_as_sent(raw: RawServer) -> None:
    """Host first (or the caller's), the headers in their order, Content-Length for a body
    and for a POST without one, none for GET; the URL's path and query encoded as before,
    its user information sent as Basic credentials unless the request has its own."""
    raw.requests.clear()
    send_all(
        post(raw.url + "/a%41/é?q=1 2", b"data", [("X-One", "1"), ("x-two", "2")]),
        post(raw.url + "/empty"),
        Outbound("GET", raw.url + "/get", [("Host", "elsewhere"), ("X-Three", "3")], b"", False),
        Outbound("GET", raw.url.replace("//", "//us%20er:p%40ss@") + "/user", [], b"", False),
        Outbound(
            "GET", raw.url.replace("//", "//me:pw@") + "/own", [("Authorization", "Bearer x")], b"", False
        ),
    )
    port = raw.url.rsplit(":", 1)[1]
    assert raw.requests == [
        f"POST /aA/%C3%A9?q=1+2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-One: 1\r\nx-two: 2\r\n"
        "Content-Length: 4\r\n\r\ndata".encode(),
        f"POST /empty HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode(),
        b"GET /get HTTP/1.1\r\nHost: elsewhere\r\nX-Three: 3\r\n\r\n",
        f"GET /user HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Authorization: Basic dXMgZXI6cEBzcw==\r\n\r\n".encode(),  # "us er:p@ss"
        f"GET /own HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer x\r\n\r\n".encode(),
    ]


def test_a_header_with_a_line_break_is_not_sent(raw: RawServer) -> None:
    raw.requests.clear()
    (reply,) = send_all(post(raw.url + "/inject", headers=[("X-A", "1\r\nX-Injected: yes")]))
    assert reply.status == 0 and "line break" in reply.reason
    assert raw.requests == []


def test_redirects_as_aiohttp_followed_them(raw: RawServer) -> None:
    """303 (and 301/302 of a POST) go on as GET without the body, 307 keeps both; the
    Authorization header does not leave the origin; a loop ends after 10 redirects."""
    raw.requests.clear()
    other = RawServer()
    try:
        see_other = raw.script(
            "/303", b"HTTP/1.1 303 See Other\r\nLocation: /landed\r\nContent-Length: 0\r\n\r\n"
        )
        temporary = raw.script(
            "/307", b"HTTP/1.1 307 Again\r\nLocation: /landed\r\nContent-Length: 0\r\n\r\n"
        )
        away = raw.script(
            "/away",
            b"HTTP/1.1 302 Found\r\nLocation: %s/there\r\nContent-Length: 0\r\n\r\n" % other.url.encode(),
        )
        loop = raw.script("/loop", b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n")
        auth = [("Authorization", "Bearer secret")]
        replies = send_all(
            post(see_other, b"body", auth),
            post(temporary, b"body", auth),
            post(away, b"body", auth),
            post(loop),
        )
        assert [r.status for r in replies[:3]] == [200, 200, 200]
        assert replies[3].status == 0 and "TooManyRedirects" in replies[3].reason
        first, landed, second, landed_again, third = raw.requests[:5]
        assert landed.startswith(b"GET /landed ") and b"Content-Length" not in landed
        assert b"Authorization: Bearer secret" in landed
        assert landed_again.startswith(b"POST /landed ") and landed_again.endswith(b"\r\n\r\nbody")
        assert (
            first.startswith(b"POST /303")
            and second.startswith(b"POST /307")
            and third.startswith(b"POST /away")
        )
        (there,) = other.requests
        assert there.startswith(b"GET /there ") and b"Authorization" not in there
        assert len(raw.requests) == 5 + 11  # the loop: the first request and 10 redirects
    finally:
        other.close()


def test_retry_after_is_read(raw: RawServer) -> None:
    url = raw.script("/busy", b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")
    (reply,) = send_all(post(url))
    assert (reply.status, reply.reason, reply.retry_after_s) == (503, "Busy", 7.0)


def test_idle_connections_are_closed_after_the_keepalive(
    raw: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "KEEPALIVE_S", 0.3)

    async def go() -> tuple[int, int, int]:
        sender = Sender()
        try:
            await sender.send(post(raw.url + "/kept"), 5)
            await sender.send(post(raw.url + "/kept"), 5)
            opened, ended = raw.connections, raw.ended
            await asyncio.sleep(0.8)  # two sweeps: the connection has been idle for longer
            closed = raw.ended - ended
            await sender.send(post(raw.url + "/kept"), 5)
            return opened, closed, raw.connections - opened
        finally:
            await sender.close()

    before = raw.connections
    opened, closed, reopened = asyncio.run(go())
    assert (opened - before, closed, reopened) == (1, 1, 1)
