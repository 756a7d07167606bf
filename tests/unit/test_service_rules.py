"""Service rules that depend on time, driven by a fake clock (no sleeping, no sockets)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tasksd.clock import FakeClock, to_us
from tasksd.model.errors import AlreadyExists, InvalidArgument, QueueTombstoned, TaskNotFound
from tasksd.model.names import LocationName, QueueName
from tasksd.model.queue import HttpTarget, OidcToken, Queue, QueueKind, RateLimits, RetryConfig
from tasksd.model.task import HttpRequest, PullMessage, Task
from tasksd.service import ServiceSettings, TasksService
from tasksd.service import tasks as tasks_rules
from tasksd.service.queues import apply_mask, complete_queue, default_burst_size

Run = Callable[[Awaitable[Any]], Any]
PARENT = LocationName("p", "l")
Q = QueueName("p", "l", "q")


def pull_queue(**changes: Any) -> Queue:
    return Queue(name=Q, kind=QueueKind.PULL, **changes)


def test_schedule_time_defaults_to_now_and_is_capped(
    service: TasksService, clock: FakeClock, run: Run
) -> None:
    run(service.create_queue(PARENT, pull_queue()))
    task = run(service.create_task(Q, Task(name=None, payload=PullMessage())))
    assert task.schedule_time == clock.now()
    past = run(
        service.create_task(
            Q, Task(name=None, payload=PullMessage(), schedule_time=clock.now() - timedelta(days=1))
        )
    )
    assert past.schedule_time == clock.now()
    ahead = clock.now() + timedelta(days=30)
    assert (
        run(service.create_task(Q, Task(name=None, payload=PullMessage(), schedule_time=ahead))).schedule_time
        == ahead
    )
    with pytest.raises(InvalidArgument, match="schedule_time"):
        run(
            service.create_task(
                Q, Task(name=None, payload=PullMessage(), schedule_time=ahead + timedelta(seconds=1))
            )
        )


def test_tombstone_expires_after_the_queues_ttl(service: TasksService, clock: FakeClock, run: Run) -> None:
    run(service.create_queue(PARENT, pull_queue()))
    task = Task(name=Q.task("dup"), payload=PullMessage())
    run(service.create_task(Q, task))
    run(service.delete_task(Q.task("dup")))
    clock.advance(timedelta(minutes=59))
    with pytest.raises(AlreadyExists):
        run(service.create_task(Q, task))
    clock.advance(timedelta(minutes=2))
    run(service.create_task(Q, task))


def test_task_ttl_applies_and_follows_updates(service: TasksService, clock: FakeClock, run: Run) -> None:
    run(service.create_queue(PARENT, pull_queue(task_ttl=timedelta(hours=2))))
    run(service.create_task(Q, Task(name=Q.task("old"), payload=PullMessage())))
    clock.advance(timedelta(hours=1))
    run(service.update_queue(pull_queue(task_ttl=timedelta(minutes=30)), ["task_ttl"]))
    with pytest.raises(TaskNotFound):
        run(service.get_task(Q.task("old")))
    assert run(service.sweep()) == 1


def test_page_tokens_expire_after_two_hours(service: TasksService, clock: FakeClock, run: Run) -> None:
    for queue_id in "abc":
        run(service.create_queue(PARENT, replace(pull_queue(), name=QueueName("p", "l", queue_id))))
    page = run(service.list_queues(PARENT, 1, ""))
    assert [q.name.queue for q in page.items] == ["a"]
    clock.advance(timedelta(hours=1, minutes=59))
    assert [q.name.queue for q in run(service.list_queues(PARENT, 1, page.next_page_token)).items] == ["b"]
    clock.advance(timedelta(minutes=2))
    with pytest.raises(InvalidArgument, match="expired"):
        run(service.list_queues(PARENT, 1, page.next_page_token))


def test_filtered_listing_fills_pages(service: TasksService, run: Run) -> None:
    for i in range(10):
        kind = QueueKind.PULL if i % 3 == 0 else QueueKind.PUSH
        run(service.create_queue(PARENT, Queue(name=QueueName("p", "l", f"q{i}"), kind=kind)))
    is_pull = lambda q: q.kind is QueueKind.PULL  # noqa: E731
    first = run(service.list_queues(PARENT, 2, "", "pull", is_pull))
    assert [q.name.queue for q in first.items] == ["q0", "q3"]
    second = run(service.list_queues(PARENT, 2, first.next_page_token, "pull", is_pull))
    assert [q.name.queue for q in second.items] == ["q6", "q9"]
    assert second.next_page_token == ""
    with pytest.raises(InvalidArgument, match="filter changed"):
        run(service.list_queues(PARENT, 2, first.next_page_token, "other", is_pull))


def test_queue_name_reuse_delay(store: Any, clock: FakeClock, run: Run) -> None:
    service = TasksService(store, clock, ServiceSettings(queue_reuse_delay=timedelta(days=7)))
    run(service.create_queue(PARENT, pull_queue()))
    run(service.delete_queue(Q))
    with pytest.raises(QueueTombstoned):
        run(service.create_queue(PARENT, pull_queue()))
    clock.advance(timedelta(days=7, seconds=1))
    run(service.create_queue(PARENT, pull_queue()))


def test_kind_of_task_must_match_queue(service: TasksService, run: Run) -> None:
    run(service.create_queue(PARENT, pull_queue()))
    with pytest.raises(InvalidArgument, match="pull queue"):
        run(service.create_task(Q, Task(name=None, payload=HttpRequest(url="http://x"))))


def test_defaults_and_burst() -> None:
    queue = complete_queue(Queue(name=Q, kind=QueueKind.PUSH), None)
    assert queue.rate_limits == RateLimits(500.0, 100, 1000)
    assert queue.retry_config == RetryConfig(
        100, timedelta(0), timedelta(seconds=0.1), timedelta(seconds=3600), 16
    )
    assert queue.task_ttl == timedelta(days=31) and queue.tombstone_ttl == timedelta(hours=1)
    assert [default_burst_size(r) for r in (0.5, 1, 7.5, 100, 500)] == [1, 1, 8, 100, 100]


def test_update_mask_applies_only_named_fields() -> None:
    stored = complete_queue(Queue(name=Q, kind=QueueKind.PUSH), None)
    given = Queue(
        name=Q,
        kind=QueueKind.PUSH,
        rate_limits=RateLimits(max_dispatches_per_second=2),
        retry_config=RetryConfig(max_attempts=3),
    )
    merged = apply_mask(stored, given, ["rate_limits.max_dispatches_per_second"])
    assert merged.rate_limits.max_dispatches_per_second == 2
    assert merged.rate_limits.max_concurrent_dispatches == 1000
    assert merged.retry_config.max_attempts == 100
    with pytest.raises(InvalidArgument, match="colour"):
        apply_mask(stored, given, ["colour"])


def test_update_mask_paths_go_as_deep_as_the_model() -> None:
    token = OidcToken("robot@p.iam.gserviceaccount.com", "https://old")
    stored = complete_queue(
        Queue(name=Q, kind=QueueKind.PUSH, http_target=HttpTarget(oidc_token=token)), None
    )
    given = Queue(
        name=Q, kind=QueueKind.PUSH, http_target=HttpTarget(oidc_token=OidcToken(audience="https://new"))
    )
    merged = apply_mask(stored, given, ["http_target.oidc_token.audience"])
    assert merged.http_target is not None
    assert merged.http_target.oidc_token == OidcToken("robot@p.iam.gserviceaccount.com", "https://new")
    # A field the request leaves out is cleared, at any depth.
    cleared = apply_mask(merged, Queue(name=Q, kind=QueueKind.PUSH), ["http_target.oidc_token.audience"])
    assert cleared.http_target is not None and cleared.http_target.oidc_token is not None
    assert cleared.http_target.oidc_token.audience == ""
    for bad in (
        "http_target.oidc_token.colour",
        "http_target.header_overrides.key",
        "rate_limits.max_burst_size.x",
    ):
        with pytest.raises(InvalidArgument, match="not a field of Queue"):
            apply_mask(stored, given, [bad])


def test_generated_ids_are_twenty_digits_in_creation_order(
    service: TasksService, clock: FakeClock, run: Run
) -> None:
    run(service.create_queue(PARENT, pull_queue()))
    ids = []
    for step in range(50):
        if step % 10 == 0:
            clock.advance(timedelta(microseconds=1))  # several ids share a microsecond
        ids.append(run(service.create_task(Q, Task(name=None, payload=PullMessage()))).name.task)
    assert all(len(task_id) == 20 and task_id.isdigit() for task_id in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    listed = run(service.list_tasks(Q, 100, ""))
    assert [task.name.task for task in listed.items] == ids


def test_a_generated_id_made_elsewhere_too_is_replaced(
    service: TasksService, clock: FakeClock, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(service.create_queue(PARENT, pull_queue()))
    taken = run(service.create_task(Q, Task(name=None, payload=PullMessage()))).name.task
    deleted = run(service.create_task(Q, Task(name=None, payload=PullMessage()))).name.task
    run(service.delete_task(Q.task(deleted)))
    # Another node's ids: the live one, then the tombstoned one, then a free one.
    offered = iter([taken, deleted, "1" + "0" * 19])
    monkeypatch.setattr(service.task_ids, "next", lambda now: next(offered))
    created = run(service.create_task(Q, Task(name=None, payload=PullMessage())))
    assert created.name.task == "1" + "0" * 19
    # A name the caller chose is never replaced.
    with pytest.raises(AlreadyExists):
        run(service.create_task(Q, Task(name=Q.task(taken), payload=PullMessage())))
    monkeypatch.setattr(service.task_ids, "next", lambda now: taken)
    with pytest.raises(AlreadyExists):
        run(service.create_task(Q, Task(name=None, payload=PullMessage())))


def test_generated_ids_follow_the_clock_and_the_random_source(store: Any, clock: FakeClock, run: Run) -> None:
    service = TasksService(store, clock, ServiceSettings(), task_ids=tasks_rules.TaskIds(lambda n: n - 1))
    run(service.create_queue(PARENT, pull_queue()))
    first, second = (run(service.create_task(Q, Task(None, payload=PullMessage(b"x")))) for _ in range(2))
    stamp = tasks_rules.TaskIds.BASE + to_us(clock.now()) * 10_000
    # The same microsecond and the same random digits: the next id is one more.
    assert [first.name.task, second.name.task] == [str(stamp + 9_999), str(stamp + 10_000)]
    clock.advance(timedelta(seconds=1))
    third = run(service.create_task(Q, Task(None, payload=PullMessage(b"x"))))
    assert third.name.task == str(stamp + 1_000_000 * 10_000 + 9_999)
