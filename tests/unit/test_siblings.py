"""The wake-ups between the processes of one ``tasksd serve --processes N`` (engine/siblings.py),
here within one process: what one link tells, the others hear, once per queue and turn of
the loop with the earliest due time, and what is not such a message is ignored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tasksd.engine.siblings import Siblings
from tasksd.model.names import QueueName

QUEUE = QueueName.parse("projects/p/locations/l/queues/q", "queue")
OTHER = QueueName.parse("projects/p/locations/l/queues/other", "queue")


async def _heard(wakes: list[tuple[QueueName, datetime | None]], count: int) -> None:
    for _ in range(200):
        if len(wakes) >= count:
            return
        await asyncio.sleep(0.01)


def test_what_one_process_tells_each_other_one_hears_once_per_queue_and_turn() -> None:
    asyncio.run(_tells())


def test_a_message_that_names_no_queue_is_ignored() -> None:
    asyncio.run(_junk())


async def _tells() -> None:
    siblings = Siblings(3)
    links = [siblings.link(index) for index in range(3)]
    heard: list[list[tuple[QueueName, datetime | None]]] = [[], [], []]
    loop = asyncio.get_running_loop()
    for link, wakes in zip(links, heard, strict=True):
        link.listen(loop, lambda queue, due, wakes=wakes: wakes.append((queue, due)))
    try:
        later = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        sooner = datetime(2030, 1, 2, 3, 4, 5, 1, tzinfo=UTC)
        links[0].tell(QUEUE, later)
        links[0].tell(QUEUE, sooner)  # the same turn: one message, the earlier time
        links[0].tell(OTHER, None)
        await _heard(heard[1], 2)
        await _heard(heard[2], 2)
        await asyncio.sleep(0.05)
        for wakes in heard[1:]:
            assert sorted(wakes, key=lambda w: w[0].path) == [(OTHER, None), (QUEUE, sooner)]
        assert heard[0] == []  # not told itself
        links[2].tell(QUEUE, later)
        links[2].tell(QUEUE, None)  # None is now: earlier than any time
        await _heard(heard[0], 1)
        assert heard[0] == [(QUEUE, None)]
    finally:
        for link in links:
            link.close()


async def _junk() -> None:
    siblings = Siblings(2)
    inbox, outbox = siblings.link(0), siblings.link(1)
    wakes: list[tuple[QueueName, datetime | None]] = []
    inbox.listen(asyncio.get_running_loop(), lambda queue, due: wakes.append((queue, due)))
    try:
        sender = outbox._others[0]
        for junk in (b"", b"\xff\xfe", b"not-a-queue 12", b"projects/p/locations/l/queues/q x", b"x" * 5000):
            sender.send(junk)
        outbox.tell(QUEUE, None)
        await _heard(wakes, 1)
        assert wakes == [(QUEUE, None)]
    finally:
        inbox.close()
        outbox.close()
