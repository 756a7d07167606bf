"""The dispatcher on a fake clock, with a sender that holds every attempt until the test answers
it: the concurrency cap, the token bucket (burst, refill, a fractional rate), the dispatch
deadline handed to the sender and a missed deadline retried by the schedule, and congestion
control (503 halves the rate, Retry-After pauses the queue)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasksd.clock import FakeClock
from tasksd.engine.dispatcher import Dispatcher
from tasksd.model.errors import Code
from tasksd.model.names import LocationName, QueueName
from tasksd.model.queue import HttpTarget, Queue, QueueKind, RateLimits, RetryConfig
from tasksd.model.task import DEFAULT_DISPATCH_DEADLINE, HttpRequest, Task
from tasksd.service import ServiceSettings, TasksService
from tasksd.store.base import Claim
from tasksd.store.memory import MemoryStore
from tasksd.targets.appengine import AppEngineUrls
from tasksd.targets.outbound import Outbound
from tasksd.targets.sender import Reply
from tasksd.targets.tokens import TokenIssuer, new_signing_key

PARENT = LocationName("p", "l")
OK = Reply(200, "OK")
SETTLE_TURNS = 200


async def settle() -> None:
    """Let every task of the event loop run until it waits (on the fake clock, the sender)."""
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)


@dataclass
class Held:
    request: Outbound
    deadline_s: float
    done: Callable[[Reply], object]


class HoldingSender:
    """Keeps each attempt until ``answer`` gives it a reply."""

    def __init__(self) -> None:
        self.held: list[Held] = []
        self.sent = 0

    def submit(self, request: Outbound, deadline_s: float, done: Callable[[Reply], object]) -> None:
        self.held.append(Held(request, deadline_s, done))
        self.sent += 1

    def answer(self, reply: Reply, count: int = 1) -> None:
        for _ in range(count):
            self.held.pop(0).done(reply)

    async def stop_sending(self) -> None:
        self.held.clear()


@dataclass
class Rig:
    clock: FakeClock
    sender: HoldingSender
    service: TasksService
    dispatcher: Dispatcher

    async def queue(self, name: str, limits: RateLimits, retry: RetryConfig | None = None) -> QueueName:
        queue = QueueName(PARENT.project, PARENT.location, name)
        await self.service.create_queue(
            PARENT,
            Queue(
                queue,
                kind=QueueKind.PUSH,
                http_target=HttpTarget(),
                rate_limits=limits,
                retry_config=retry or RetryConfig(),
            ),
        )
        return queue

    async def add(self, queue: QueueName, count: int = 1, **fields: object) -> list[Task]:
        request = HttpRequest(url="http://127.0.0.1:9/x")
        return [
            await self.service.create_task(queue, Task(None, payload=request, **fields)) for _ in range(count)
        ]

    async def sent(self, count: int) -> None:
        """Let the dispatcher run until ``count`` attempts in all were handed to the sender,
        then a while longer, so that one too many would have been handed over too. No time
        passes meanwhile: the dispatcher waits on the fake clock, the memory store never."""
        for _ in range(SETTLE_TURNS):
            if self.sender.sent >= count:
                break
            await asyncio.sleep(0)
        await settle()
        assert self.sender.sent == count

    async def tick(self, seconds: float, queue: QueueName) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.dispatcher.notify(queue)


@contextlib.asynccontextmanager
async def rigged(
    store_of: Callable[[FakeClock], MemoryStore] = lambda _: MemoryStore(),
) -> AsyncIterator[Rig]:
    clock, sender = FakeClock(), HoldingSender()
    store = store_of(clock)
    await store.open()
    dispatcher = Dispatcher(
        store,
        clock,
        sender,  # type: ignore[arg-type]
        TokenIssuer(new_signing_key(), "http://tasksd.test"),
        AppEngineUrls("http://127.0.0.1:9", {}),
        poll_interval_s=0.05,
    )
    service = TasksService(store, clock, ServiceSettings(), dispatcher)
    await dispatcher.start()
    try:
        yield Rig(clock, sender, service, dispatcher)
    finally:
        await dispatcher.stop()
        await store.close()


def test_at_most_max_concurrent_attempts_in_flight(run: Callable[[Awaitable[None]], None]) -> None:
    async def scenario() -> None:
        async with rigged() as rig:
            queue = await rig.queue("cap", RateLimits(500, 100, 3))
            await rig.add(queue, 10)
            await rig.sent(3)  # the bucket has 100 tokens, but only 3 may be in flight
            rig.sender.answer(OK)
            await rig.sent(4)
            rig.sender.answer(OK, 3)
            await rig.sent(7)
            assert len(rig.sender.held) == 3
            rig.sender.answer(OK, 3)
            await rig.sent(10)

    run(scenario())


def test_burst_then_refill_at_the_rate(run: Callable[[Awaitable[None]], None]) -> None:
    async def scenario() -> None:
        async with rigged() as rig:
            queue = await rig.queue("burst", RateLimits(10, 4, 1000))
            await rig.add(queue, 12)
            await rig.sent(4)  # the burst
            await rig.tick(0.1, queue)
            await rig.sent(5)  # one token per 0.1 s at 10/s
            await rig.tick(0.35, queue)
            await rig.sent(8)  # 3.5 more: three whole tokens
            await rig.tick(10, queue)
            await rig.sent(12)  # never more than the burst at once: 4 left, 4 sent

    run(scenario())


def test_fractional_rate(run: Callable[[Awaitable[None]], None]) -> None:
    async def scenario() -> None:
        async with rigged() as rig:
            queue = await rig.queue("half", RateLimits(0.5, 1, 1000))
            await rig.add(queue, 3)
            await rig.sent(1)
            await rig.tick(1, queue)
            await rig.sent(1)  # half a token is not enough
            await rig.tick(1, queue)
            await rig.sent(2)
            await rig.tick(1.9, queue)
            await rig.sent(2)
            await rig.tick(0.1, queue)
            await rig.sent(3)

    run(scenario())


def test_deadline_is_handed_to_the_sender_and_a_missed_one_is_retried(
    run: Callable[[Awaitable[None]], None],
) -> None:
    async def scenario() -> None:
        async with rigged() as rig:
            retry = RetryConfig(
                max_attempts=3,
                max_retry_duration=timedelta(0),
                min_backoff=timedelta(seconds=2),
                max_backoff=timedelta(seconds=60),
                max_doublings=4,
            )
            queue = await rig.queue("deadline", RateLimits(500, 100, 1000), retry)
            (own,) = await rig.add(queue, 1, dispatch_deadline=timedelta(seconds=20))
            await rig.add(queue, 1)
            await rig.sent(2)
            assert sorted(h.deadline_s for h in rig.sender.held) == [
                20.0,
                DEFAULT_DISPATCH_DEADLINE.total_seconds(),
            ]

            # No response within the deadline: recorded as DEADLINE_EXCEEDED and retried after
            # min_backoff, on the fake clock.
            missed = Reply(0, "No response within the dispatch deadline (20s).")
            rig.sender.answer(missed, 2)
            assert own.name is not None
            for _ in range(500):
                task = await rig.service.get_task(own.name)
                if task.status.last_attempt and task.status.last_attempt.response_status:
                    break
                await asyncio.sleep(0)
            last = task.status.last_attempt
            assert last is not None and last.response_status is not None
            assert last.response_status.code == Code.DEADLINE_EXCEEDED
            assert task.status.dispatch_count == 1 and task.status.response_count == 0
            assert task.schedule_time == last.response_time + timedelta(seconds=2)

            await rig.tick(1.9, queue)
            await rig.sent(2)  # not due yet
            await rig.tick(0.1, queue)
            await rig.sent(4)
            retry_counts = sorted(
                dict(h.request.headers)["X-CloudTasks-TaskRetryCount"] for h in rig.sender.held
            )
            assert retry_counts == ["1", "1"]

    run(scenario())


def test_503_halves_the_rate_and_retry_after_pauses_the_queue(run: Callable[[Awaitable[None]], None]) -> None:
    once = RetryConfig(
        max_attempts=1,
        max_retry_duration=timedelta(0),
        min_backoff=timedelta(seconds=1),
        max_backoff=timedelta(seconds=1),
        max_doublings=0,
    )

    async def scenario() -> None:
        async with rigged() as rig:
            queue = await rig.queue("congested", RateLimits(10, 1, 1000), once)
            await rig.add(queue, 6)
            await rig.sent(1)
            rig.sender.answer(Reply(503, "Service Unavailable"))  # the queue now runs at 5/s
            await rig.tick(0.1, queue)
            await rig.sent(1)  # half a token
            await rig.tick(0.1, queue)
            await rig.sent(2)
            rig.sender.answer(Reply(429, "Too Many Requests", retry_after_s=5))  # 2.5/s, paused 5 s
            await rig.tick(4.9, queue)
            await rig.sent(2)  # tokens enough, but paused
            await rig.tick(0.2, queue)
            await rig.sent(3)

    run(scenario())


class SlowClaims(MemoryStore):
    """A store whose claims take ``round_trip`` of the fake clock's time, as PostgreSQL's do."""

    def __init__(self, clock: FakeClock, round_trip: timedelta) -> None:
        super().__init__()
        self.clock, self.round_trip = clock, round_trip

    async def claim_tasks(self, queue: QueueName, limit: int, now: datetime) -> Claim:
        await self.clock.sleep(self.round_trip.total_seconds())
        return await super().claim_tasks(queue, limit, now)


def test_the_rate_holds_when_claims_take_longer_than_a_token(run: Callable[[Awaitable[None]], None]) -> None:
    """500/s with a burst of 1, claims taking 6 ms (three tokens' worth): the tokens that come
    during a claim are claimed ahead, and each task is sent when its token arrives."""

    async def scenario() -> None:
        async with rigged(lambda clock: SlowClaims(clock, timedelta(milliseconds=6))) as rig:
            clock, sender = rig.clock, rig.sender
            queue = await rig.queue("fast", RateLimits(500, 1, 1000))
            await rig.add(queue, 1200)
            rig.dispatcher.notify(queue)
            await settle()
            started, sent_before = clock.now(), sender.sent
            while clock.now() - started < timedelta(seconds=1):
                clock.advance(timedelta(milliseconds=0.5))
                await settle()
                sender.answer(OK, len(sender.held))
            elapsed = (clock.now() - started).total_seconds()
            rate = (sender.sent - sent_before) / elapsed
            assert 485 <= rate <= 515, rate

    run(scenario())


class CountedClaims(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    async def claim_tasks(self, queue: QueueName, limit: int, now: datetime) -> Claim:
        self.claims += 1
        return await super().claim_tasks(queue, limit, now)


def test_tasks_due_after_the_next_one_do_not_wake_the_worker(run: Callable[[Awaitable[None]], None]) -> None:
    """A worker asleep until its queue's next task is due is not woken by each new task due no
    earlier (each wake would be a claim that finds nothing due); one due earlier is sent at once."""

    async def scenario() -> None:
        store = CountedClaims()
        async with rigged(lambda _: store) as rig:
            queue = await rig.queue("later", RateLimits(500, 100, 1000))
            tomorrow = rig.clock.now() + timedelta(days=1)
            await rig.add(queue, 1, schedule_time=tomorrow)
            await settle()
            before = store.claims
            await rig.add(queue, 50, schedule_time=tomorrow + timedelta(seconds=1))
            await settle()
            assert store.claims == before
            await rig.add(queue, 1, schedule_time=rig.clock.now())
            await rig.sent(1)
            assert store.claims > before

    run(scenario())
