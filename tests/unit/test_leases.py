"""Leases on a fake clock: expiry, max attempts, held-lease proofs, the 10/s limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tasksd.clock import FakeClock
from tasksd.model.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, TaskTombstoned
from tasksd.model.names import LocationName, QueueName
from tasksd.model.queue import Queue, QueueKind, RetryConfig
from tasksd.model.task import PullMessage, Task
from tasksd.service import TasksService
from tasksd.service.leases import parse_lease_filter

Run = Callable[[Awaitable[Any]], Any]
PARENT = LocationName("p", "l")
Q = QueueName("p", "l", "q")
MINUTE = timedelta(minutes=1)


def setup(service: TasksService, run: Run, count: int = 1, **queue: Any) -> None:
    run(service.create_queue(PARENT, Queue(name=Q, kind=QueueKind.PULL, **queue)))
    for i in range(count):
        run(service.create_task(Q, Task(name=Q.task(f"t{i}"), payload=PullMessage(b"x", f"g{i % 2}"))))


def test_lease_expiry_makes_tasks_leasable_again(service: TasksService, clock: FakeClock, run: Run) -> None:
    setup(service, run, 2)
    first = run(service.lease_tasks(Q, 10, MINUTE, ""))
    assert [t.schedule_time for t in first] == [clock.now() + MINUTE] * 2
    clock.advance(timedelta(seconds=59))
    assert run(service.lease_tasks(Q, 10, MINUTE, "")) == []
    clock.advance(timedelta(seconds=1))
    again = run(service.lease_tasks(Q, 10, MINUTE, ""))
    assert [t.status.dispatch_count for t in again] == [2, 2]
    with pytest.raises(FailedPrecondition):
        run(service.acknowledge_task(Q.task("t0"), first[0].schedule_time))
    run(service.acknowledge_task(Q.task("t0"), again[0].schedule_time))


def test_max_attempts(service: TasksService, clock: FakeClock, run: Run) -> None:
    setup(service, run, 1, retry_config=RetryConfig(max_attempts=3))
    for _ in range(3):
        assert len(run(service.lease_tasks(Q, 10, MINUTE, ""))) == 1
        clock.advance(MINUTE)
    assert run(service.lease_tasks(Q, 10, MINUTE, "")) == []
    with pytest.raises(TaskTombstoned):
        run(service.get_task(Q.task("t0")))


def test_unlimited_attempts(service: TasksService, clock: FakeClock, run: Run) -> None:
    setup(service, run, 1, retry_config=RetryConfig(max_attempts=-1))
    for _ in range(150):
        assert len(run(service.lease_tasks(Q, 10, MINUTE, ""))) == 1
        clock.advance(MINUTE)


def test_renew_and_cancel_move_the_schedule(service: TasksService, clock: FakeClock, run: Run) -> None:
    setup(service, run, 1)
    leased = run(service.lease_tasks(Q, 1, MINUTE, ""))[0]
    clock.advance(timedelta(seconds=30))
    renewed = run(service.renew_lease(Q.task("t0"), leased.schedule_time, timedelta(minutes=5)))
    assert renewed.schedule_time == clock.now() + timedelta(minutes=5)
    cancelled = run(service.cancel_lease(Q.task("t0"), renewed.schedule_time))
    assert cancelled.schedule_time == clock.now()
    assert len(run(service.lease_tasks(Q, 1, MINUTE, ""))) == 1
    with pytest.raises(InvalidArgument, match="schedule_time is required"):
        run(service.acknowledge_task(Q.task("t0"), None))


def test_ten_lease_calls_per_second(service: TasksService, clock: FakeClock, run: Run) -> None:
    setup(service, run, 0)
    for _ in range(10):
        run(service.lease_tasks(Q, 1, MINUTE, ""))
    with pytest.raises(ResourceExhausted):
        run(service.lease_tasks(Q, 1, MINUTE, ""))
    clock.advance(timedelta(milliseconds=100))
    run(service.lease_tasks(Q, 1, MINUTE, ""))


def test_reply_size_cap(service: TasksService, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasksd.service import leases

    monkeypatch.setattr(leases, "MAX_LEASE_REPLY_BYTES", 3000)
    setup(service, run, 0)
    for i in range(5):
        run(service.create_task(Q, Task(name=Q.task(f"big{i}"), payload=PullMessage(b"x" * 1000))))
    assert len(run(service.lease_tasks(Q, 100, MINUTE, ""))) == 1
    assert len(run(service.lease_tasks(Q, 100, MINUTE, ""))) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (None, False)),
        ("tag=a", ("a", False)),
        (" tag = a b ", ("a b", False)),
        ('tag="x\\"y"', ('x"y', False)),
        ("tag=", ("", False)),
        ("tag_function=oldest_tag()", (None, True)),
    ],
)
def test_lease_filter_grammar(text: str, expected: tuple[str | None, bool]) -> None:
    assert parse_lease_filter(text) == expected


@pytest.mark.parametrize("text", ["tag", "tags=a", "tag_function=oldest()", "tag=a AND tag=b" * 100])
def test_bad_lease_filters(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_lease_filter(text)
