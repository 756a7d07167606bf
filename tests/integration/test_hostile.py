"""Hostile clients: deep nesting, huge heads, slow senders and idle connections each meet a
bound (``limits:`` in the config) and a clear answer, and the server keeps serving others."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.api_core import exceptions

from tests.integration.conftest import PARENT, Server, gapic_client, gapic_grpc_client

LIMITS = {"header_timeout_s": 1, "body_timeout_s": 1, "max_connections": 20}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("hostile")
    config = folder / "tasksd.yaml"
    config.write_text(json.dumps({"limits": LIMITS}))
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", config=config).start()
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (or a reset ends it)."""
    sock.settimeout(timeout_s)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def send_all(sock: socket.socket, data: bytes) -> None:
    """Send as much of ``data`` as the server takes; it may refuse and close half-way."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def error_of(response: bytes) -> tuple[int, dict[str, Any], bytes]:
    """(status, the JSON error, the head) of a raw HTTP response that ends the connection."""
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), response[:200]
    assert b"connection: close" in head.lower() and b"application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)["error"], head


def queue_exists(server: Server, name: str) -> bool:
    status = httpx.get(f"{server.url}/v2beta2/{name}").status_code
    assert status in (200, 404)
    return status == 200


def new_queue() -> str:
    return f"{PARENT}/queues/hostile-{uuid.uuid4().hex[:10]}"


# Nesting


def test_deeply_nested_json_is_invalid_argument(hostile: Server) -> None:
    body = "[" * 10_000 + "]" * 10_000
    for payload in (body, '{"name": ' + body + "}", '{"a":' * 10_000 + "1" + "}" * 10_000):
        reply = httpx.post(
            f"{hostile.url}/v2beta2/{PARENT}/queues",
            content=payload,
            headers={"content-type": "application/json"},
        )
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"] == {
            "code": 400,
            "message": "Invalid JSON payload received. Nesting too deep (more than 100 levels).",
            "status": "INVALID_ARGUMENT",
        }
    # 101 levels are refused too, 100 are read (and then judged as a Queue)
    deep = httpx.post(f"{hostile.url}/v2beta2/{PARENT}/queues", content='{"a":' * 101 + "1" + "}" * 101)
    assert "Nesting too deep" in deep.json()["error"]["message"]
    fine = httpx.post(f"{hostile.url}/v2beta2/{PARENT}/queues", content='{"a":' * 100 + "1" + "}" * 100)
    assert fine.status_code == 400 and 'has no field named "a"' in fine.json()["error"]["message"]


def test_deeply_nested_json_in_a_batch_part(hostile: Server) -> None:
    name = new_queue()
    nested = '{"name": "' + name + '", "pullTarget": {}, "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    boundary = "hostile"
    part = (
        f"--{boundary}\r\nContent-Type: application/http\r\n\r\n"
        f"POST /v2beta2/{PARENT}/queues HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{nested}\r\n"
    )
    reply = httpx.post(
        f"{hostile.url}/batch",
        content=(part + f"--{boundary}--\r\n").encode(),
        headers={"content-type": f"multipart/mixed; boundary={boundary}"},
    )
    assert reply.status_code == 200, reply.text
    assert "HTTP/1.1 400 Bad Request" in reply.text
    assert "Nesting too deep (more than 100 levels)" in reply.text
    assert not queue_exists(hostile, name)


@pytest.mark.parametrize("text", ["(" * 5000, "NOT " * 5000 + "state = PAUSED", "- " * 5000 + "state: *"])
@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_deeply_nested_filter_is_invalid_argument(hostile: Server, transport: str, text: str) -> None:
    client = gapic_client(hostile.url) if transport == "rest" else gapic_grpc_client(hostile)
    expected = exceptions.BadRequest if transport == "rest" else exceptions.InvalidArgument
    with pytest.raises(expected) as raised:
        list(client.list_queues(request={"parent": PARENT, "filter": text}))
    message = raised.value.message
    assert "Invalid filter" in message and "nest more than 100 deep" in message
    assert "…': NOT" in message  # the filter is quoted, cut short
    hundred = "(" * 100 + "state = PAUSED" + ")" * 100  # 100 deep is fine
    assert all(
        q.state == q.State.PAUSED for q in client.list_queues(request={"parent": PARENT, "filter": hundred})
    )


def test_deeply_nested_protobuf_over_grpc_is_invalid_argument(hostile: Server) -> None:
    """Unknown groups nested 10,000 deep: upb stops at its depth limit (100), and that is a
    bad request, not an internal error. (A guard: the gRPC server answered so already.)"""
    start, end = b"\x9b\x06", b"\x9c\x06"  # the tags of field 99 as a group: start, end
    with grpc.insecure_channel(f"127.0.0.1:{hostile.grpc_port}") as channel:
        call = channel.unary_unary("/google.cloud.tasks.v2beta2.CloudTasks/ListQueues")
        with pytest.raises(grpc.RpcError) as raised:
            call(start * 10_000 + end * 10_000, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
        assert "ListQueuesRequest" in (raised.value.details() or "")
        assert call(b"\x0a" + bytes([len(PARENT)]) + PARENT.encode(), timeout=10) is not None


# Request heads


def test_a_huge_header_is_431_and_the_server_still_answers(hostile: Server) -> None:
    with connect(hostile) as sock:
        send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        status, error, _ = error_of(read_until_closed(sock))
    assert status == 431 and error["status"] == "INVALID_ARGUMENT"
    assert "65536 bytes" in error["message"] and "max_header_bytes" in error["message"]
    assert httpx.get(f"{hostile.url}/healthz").status_code == 200


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v2beta2/" + b"p" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a long URL
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(3000)),
    ],
    ids=["url", "many-headers"],
)
def test_a_long_url_or_many_headers_are_431(hostile: Server, head: bytes) -> None:
    with connect(hostile) as sock:
        send_all(sock, head)
        status, _, _ = error_of(read_until_closed(sock))
    assert status == 431


def test_huge_trailers_are_431_and_nothing_runs(hostile: Server) -> None:
    name = new_queue()
    body = json.dumps({"name": name, "pullTarget": {}}).encode()
    with connect(hostile) as sock:
        send_all(
            sock,
            f"POST /v2beta2/{PARENT}/queues HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: application/json\r\n\r\n{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\nX-Trailer: "
            + b"t" * (1 << 20)
            + b"\r\n\r\n",
        )
        status, _, _ = error_of(read_until_closed(sock))
    assert status == 431
    assert not queue_exists(hostile, name)


def test_heads_under_the_limit_and_pipelined_requests_are_served(hostile: Server) -> None:
    """A guard: the bounds keep what uvicorn did (a 60 KB head, two requests in one write)."""
    with connect(hostile) as sock:
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n"
        sock.sendall(big + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        replies = read_until_closed(sock)
    assert replies.count(b"HTTP/1.1 200 OK") == 2 and replies.count(b'"SERVING"') == 2


# Slow senders


def test_a_head_sent_byte_by_byte_is_408_after_header_timeout(hostile: Server) -> None:
    head = f"POST /v2beta2/{PARENT}/queues HTTP/1.1\r\nHost: x\r\nX-Slow: {'s' * 100}\r\n\r\n".encode()
    with connect(hostile) as sock:
        started = time.monotonic()
        for byte in head:
            send_all(sock, bytes([byte]))
            if select.select([sock], [], [], 0.05)[0]:  # the server answered (or closed)
                break
        response = read_until_closed(sock, timeout_s=5)
        elapsed = time.monotonic() - started
    status, error, _ = error_of(response)
    assert status == 408 and error["status"] == "DEADLINE_EXCEEDED" and "header_timeout_s" in error["message"]
    assert 0.9 < elapsed < 3.5


def send_short_create(sock: socket.socket, name: str) -> None:
    """A CreateQueue whose JSON arrives whole, but not the 100 more bytes its Content-Length
    promises."""
    body = json.dumps({"name": name, "pullTarget": {}}).encode()
    sock.sendall(
        f"POST /v2beta2/{PARENT}/queues HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 100}\r\n\r\n".encode()
        + body
    )


def test_a_stalled_body_is_408_and_nothing_is_created(hostile: Server) -> None:
    name = new_queue()
    with connect(hostile) as sock:
        send_short_create(sock, name)
        started = time.monotonic()
        status, error, _ = error_of(read_until_closed(sock, timeout_s=5))
        elapsed = time.monotonic() - started
    assert status == 408 and error["status"] == "DEADLINE_EXCEEDED" and "body_timeout_s" in error["message"]
    assert 0.9 < elapsed < 3.5
    assert not queue_exists(hostile, name)


def test_a_client_gone_mid_body_runs_nothing(hostile: Server) -> None:
    name = new_queue()
    with connect(hostile) as sock:
        send_short_create(sock, name)
        time.sleep(0.2)
    time.sleep(0.3)
    assert not queue_exists(hostile, name)


# Connections


def test_beyond_max_connections_new_ones_get_503_and_healthz_still_answers(hostile: Server) -> None:
    idle = [connect(hostile) for _ in range(30)]
    try:
        with connect(hostile) as sock:
            sock.sendall(f"GET /v2beta2/{PARENT}/queues HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, error, _ = error_of(read_until_closed(sock))
        assert status == 503 and error["status"] == "UNAVAILABLE"
        assert error["message"].startswith("Too many connections") and "20" in error["message"]
        with connect(hostile) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            healthz = read_until_closed(sock)  # answered, and closed: it does not hold a place
        assert healthz.startswith(b"HTTP/1.1 200 OK") and b'"SERVING"' in healthz
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the server sees the idle ones go at once, but give it a moment
        reply = httpx.get(f"{hostile.url}/v2beta2/{PARENT}/queues")
        if reply.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert reply.status_code == 200, reply.text
    list(gapic_client(hostile.url).list_queues(parent=PARENT))  # raises unless served
