"""One attempt on the wire: deadline, allow-list, and how replies are recorded."""

from __future__ import annotations

import asyncio
import time

import pytest

from tasksd.engine.dispatcher import response_status
from tasksd.model.errors import Code
from tasksd.targets.outbound import Outbound
from tasksd.targets.sender import Reply, Sender
from tests.integration.sink import Answer, Sink


@pytest.fixture(scope="module")
def sink() -> Sink:
    return Sink()


def post(url: str) -> Outbound:
    return Outbound("POST", url, [("X-A", "1")], b"x", follow_redirects=True)


def test_deadline_cuts_a_slow_handler(sink: Sink) -> None:
    sink.script("/slow", Answer(200, delay_s=3))

    async def attempt() -> tuple[Reply, float]:
        sender = Sender()
        begin = time.monotonic()
        try:
            return await sender.send(post(sink.url + "/slow"), deadline_s=0.5), time.monotonic() - begin
        finally:
            await sender.close()

    reply, took = asyncio.run(attempt())
    assert reply.status == 0 and "deadline" in reply.reason
    assert took < 2.5
    assert response_status(reply).code == Code.DEADLINE_EXCEEDED


def test_deadline_starts_when_a_connection_is_free(sink: Sink) -> None:
    """More attempts to one host than it gets connections: the others wait for one before
    their deadline starts, so none fails that its handler would have answered in time."""
    sink.script("/queued", Answer(200, delay_s=0.4))

    async def attempts() -> list[Reply]:
        sender = Sender(connections_per_host=2)
        try:
            return await asyncio.gather(
                *(sender.send(post(sink.url + "/queued"), deadline_s=0.7) for _ in range(6))
            )
        finally:
            await sender.close()

    replies = asyncio.run(attempts())
    assert [r.status for r in replies] == [200] * 6
    assert len(sink.on("/queued")) == 6


def test_stop_sending_abandons_waiting_and_running_attempts(sink: Sink) -> None:
    """What a stopping dispatcher relies on: nothing waiting is sent after stop_sending, and
    no callback comes for an abandoned attempt; the sender still works afterwards."""
    sink.script("/stopped", Answer(200, delay_s=0.5))
    sink.script("/after", Answer(200))

    async def attempts() -> tuple[list[Reply], Reply]:
        sender = Sender(connections_per_host=1)
        replies: list[Reply] = []
        try:
            for _ in range(3):
                sender.submit(post(sink.url + "/stopped"), 5, replies.append)
            await asyncio.sleep(0.2)  # the first is in flight, two wait for its connection
            await sender.stop_sending()
            await asyncio.sleep(0.6)
            return replies, await sender.send(post(sink.url + "/after"), deadline_s=5)
        finally:
            await sender.close()

    abandoned, after = asyncio.run(attempts())
    assert abandoned == []
    assert len(sink.on("/stopped")) == 1
    assert after.status == 200


def test_allow_list_and_connection_errors(sink: Sink) -> None:
    async def attempts() -> tuple[Reply, Reply]:
        sender = Sender(allowed_hosts=frozenset({"localhost"}))
        open_sender = Sender()
        try:
            refused = await sender.send(post(sink.url + "/x"), deadline_s=5)
            nobody = await open_sender.send(post("http://127.0.0.1:9/nothing"), deadline_s=5)
            return refused, nobody
        finally:
            await sender.close()
            await open_sender.close()

    refused, nobody = asyncio.run(attempts())
    assert refused.status == 0 and "not in the allowed list" in refused.reason
    assert nobody.status == 0 and response_status(nobody).code == Code.UNAVAILABLE
    assert sink.on("/x") == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, Code.OK),
        (204, Code.OK),
        (404, Code.NOT_FOUND),
        (429, Code.RESOURCE_EXHAUSTED),
        (503, Code.UNAVAILABLE),
        (500, Code.INTERNAL),
        (502, Code.UNKNOWN),
        (418, Code.FAILED_PRECONDITION),
    ],
)
def test_reply_to_rpc_status(status: int, code: Code) -> None:
    assert response_status(Reply(status, "x")).code == code
