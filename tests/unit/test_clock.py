"""The fake clock owns waiting: sleepers and waits end when the test advances it, not before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from tasksd.clock import FakeClock, SystemClock

Run = Callable[[Awaitable[Any]], Any]


def test_advance_wakes_the_sleepers_it_reaches(run: Run) -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    async def scenario() -> None:
        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("two", 2.0), ("one", 1.0), ("ten", 10.0))]
        await asyncio.sleep(0)
        clock.advance(timedelta(seconds=0.9))
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(timedelta(seconds=1.1))  # 2 s in all
        for _ in range(3):
            await asyncio.sleep(0)
        assert sorted(woke) == ["one", "two"]
        clock.advance(timedelta(seconds=8))
        await asyncio.gather(*tasks)
        assert sorted(woke) == ["one", "ten", "two"]

    run(scenario())


def test_wait_for_ends_when_the_event_is_set_or_the_time_passes(run: Run) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        event = asyncio.Event()
        waiting = asyncio.create_task(clock.wait_for(event, 5.0))
        await asyncio.sleep(0)
        event.set()
        assert await waiting is True
        event.clear()
        waiting = asyncio.create_task(clock.wait_for(event, 5.0))
        await asyncio.sleep(0)
        clock.advance(timedelta(seconds=4.9))
        await asyncio.sleep(0)
        assert not waiting.done()
        clock.advance(timedelta(seconds=0.1))
        assert await waiting is False
        assert await SystemClock().wait_for(event, 0.001) is False

    run(scenario())
