"""One attempt on the wire: deadline, allowed hosts and networks, and how replies are recorded."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from tasksd.engine.dispatcher import response_status
from tasksd.model.errors import Code
from tasksd.targets.network import TargetNetworks
from tasksd.targets.outbound import Outbound
from tasksd.targets.sender import RefusedAddress, Reply, Sender, allowed_addresses
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
    """allowed_hosts holds for every hop: a redirect from an allowed host to another is not
    followed."""
    sink.script("/away", Answer(302, {"Location": sink.url.replace("127.0.0.1", "localhost") + "/x"}))

    async def attempts() -> tuple[Reply, Reply, Reply]:
        sender = Sender(allowed_hosts=frozenset({"localhost"}))
        hop_sender = Sender(allowed_hosts=frozenset({"127.0.0.1"}))
        open_sender = Sender()
        try:
            refused = await sender.send(post(sink.url + "/x"), deadline_s=5)
            redirected = await hop_sender.send(post(sink.url + "/away"), deadline_s=5)
            nobody = await open_sender.send(post("http://127.0.0.1:9/nothing"), deadline_s=5)
            return refused, redirected, nobody
        finally:
            await sender.close()
            await hop_sender.close()
            await open_sender.close()

    refused, redirected, nobody = asyncio.run(attempts())
    assert refused.status == 0 and "'127.0.0.1' is not in the allowed list" in refused.reason
    assert response_status(refused).code == Code.PERMISSION_DENIED
    assert redirected.refused and "'localhost' is not in the allowed list" in redirected.reason
    assert len(sink.on("/away")) == 1
    assert nobody.status == 0 and response_status(nobody).code == Code.UNAVAILABLE
    assert sink.on("/x") == []


def test_allowed_networks_hold_for_every_connection(sink: Sink) -> None:
    """The address connected to is checked, on each hop: an IP literal, a name's address, and
    where a redirect leads; pooled connections to an allowed address keep being used."""
    sink.script("/to-other", Answer(302, {"Location": "http://127.0.0.2:9/other"}))
    sink.script("/to-self", Answer(302, {"Location": "/fine"}))

    async def attempts() -> list[Reply]:
        sender = Sender(allowed_networks=("127.0.0.1/32",))
        try:
            return [
                await sender.send(post(sink.url + "/to-self"), deadline_s=5),
                await sender.send(post(sink.url + "/to-other"), deadline_s=5),
                await sender.send(post("http://127.0.0.2:9/direct"), deadline_s=5),
                await sender.send(post("http://[::ffff:169.254.169.254]/"), deadline_s=5),
                await sender.send(post(sink.url + "/fine"), deadline_s=5),
            ]
        finally:
            await sender.close()

    to_self, to_other, direct, mapped, again = asyncio.run(attempts())
    assert to_self.status == 200 and again.status == 200 and len(sink.on("/fine")) == 2
    for reply, address in ((to_other, "127.0.0.2"), (direct, "127.0.0.2"), (mapped, "a9fe:a9fe")):
        assert reply.refused and address in reply.reason and "is not allowed by this server" in reply.reason
        assert response_status(reply).code == Code.PERMISSION_DENIED


def test_the_resolver_keeps_only_allowed_addresses() -> None:
    """A name whose every address is refused fails with the refusal (not a summary of several
    connection errors); allowed addresses of a name are kept."""

    async def resolve(networks: tuple[str, ...]) -> list[str]:
        found = await allowed_addresses(TargetNetworks.parse(networks), "localhost", 80)
        return sorted({str(info[4][0]) for info in found})

    assert asyncio.run(resolve(("127.0.0.0/8",))) == ["127.0.0.1"]  # ::1, if any, is dropped
    with pytest.raises(RefusedAddress, match=re.escape("127.0.0.1 is not allowed by this server")):
        asyncio.run(resolve(("10.0.0.0/8",)))


def test_unusable_tls_settings_are_refused_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("no certificate here\n")
    for path in (junk, tmp_path / "missing.pem", tmp_path):
        with pytest.raises(ValueError, match=re.escape(f"target_ca_file '{path}' cannot be used")):
            Sender(ca_file=str(path))
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/40' is not a network")):
        Sender(allowed_networks=("10.0.0.0/40",))


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


def test_a_refused_reply_is_permission_denied() -> None:
    status = response_status(
        Reply(0, "The target address 169.254.169.254 is not allowed by this server.", refused=True)
    )
    assert status.code == Code.PERMISSION_DENIED and "169.254.169.254" in status.message
