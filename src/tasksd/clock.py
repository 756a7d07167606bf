"""Time, injected: the engine and service read a Clock and wait on it; tests drive a FakeClock,
whose waits end when the test advances it, so that no test sleeps in real time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch."""
    return duration_us(value - EPOCH)


def duration_us(value: timedelta) -> int:
    """A duration in whole microseconds (negative for a negative one)."""
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC, microsecond precision."""

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` of this clock's time have passed."""

    async def wait_for(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait until ``event`` is set or ``seconds`` of this clock's time have passed.

        Returns: whether ``event`` is set.
        """


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


class FakeClock:
    """A clock that moves only when told to; its sleepers wake when ``advance`` reaches them."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        waiting = []
        for due, future in self._sleepers:
            if due <= self._now and not future.done():
                future.set_result(None)
            elif not future.done():
                waiting.append((due, future))
        self._sleepers = waiting

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        """A future that ``advance`` resolves once ``seconds`` from now have passed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            future.set_result(None)
        else:
            self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        return future

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._timer(seconds)

    async def wait_for(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        timer = self._timer(seconds)  # from now, not from when a task would first run
        waiter = asyncio.ensure_future(event.wait())
        waits: set[asyncio.Future[Any]] = {timer, waiter}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            waiter.cancel()
        return event.is_set()
