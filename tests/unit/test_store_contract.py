"""The Store contract, run against every backend (here: SQLite file and in-memory)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasksd.model.admission import NewTask
from tasksd.model.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    QueueNotFound,
    QueueTombstoned,
    TaskNotFound,
    TaskTombstoned,
)
from tasksd.model.iam import Binding, Policy
from tasksd.model.names import LocationName, QueueName
from tasksd.model.network import ANY_ADDRESS
from tasksd.model.queue import Queue, QueueKind, QueueState, RateLimits
from tasksd.model.task import AttemptResult, HttpRequest, PullMessage, ResponseStatus, Task
from tasksd.service.queues import complete_queue
from tasksd.store.base import Finished
from tasksd.store.sqlite import SqliteStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)
Q = QueueName("p", "l", "q")
Run = Callable[[Awaitable[Any]], Any]


def make_queue(name: QueueName = Q, **changes: Any) -> Queue:
    return complete_queue(Queue(name=name, kind=QueueKind.PULL, **changes), None)


def make_task(task_id: str, when: datetime = NOW, payload: bytes = b"x") -> Task:
    return Task(
        name=Q.task(task_id),
        payload=PullMessage(payload, "tag"),
        schedule_time=when,
        create_time=when.replace(microsecond=0),
    )


def new(task: Task) -> NewTask:
    """An insert request for a task made as the service makes them."""
    return NewTask(task, task, ANY_ADDRESS)


def add(store: SqliteStore, task: Task, now: datetime) -> Awaitable[Task]:
    return store.insert_task(Q, new(task), now)


def create(store: SqliteStore, run: Run, queue: Queue | None = None) -> Queue:
    queue = queue or make_queue()
    return run(store.put_queue(queue.name, lambda stored: queue, NOW))  # type: ignore[no-any-return]


def test_queue_put_get_list(store: SqliteStore, run: Run) -> None:
    for queue_id in ("b", "a", "c"):
        create(store, run, make_queue(QueueName("p", "l", queue_id)))
    create(store, run, make_queue(QueueName("p", "other", "z")))
    assert run(store.get_queue(QueueName("p", "l", "a"))).name.queue == "a"
    listed = run(store.list_queues(LocationName("p", "l"), "", 10))
    assert [q.name.queue for q in listed] == ["a", "b", "c"]
    assert [q.name.queue for q in run(store.list_queues(LocationName("p", "l"), "a", 1))] == ["b"]
    assert run(store.locations_in_use("p")) == ["l", "other"]
    with pytest.raises(QueueNotFound):
        run(store.get_queue(QueueName("p", "l", "nope")))


def test_put_queue_sees_stored_and_failures_change_nothing(store: SqliteStore, run: Run) -> None:
    create(store, run)
    seen: list[Queue | None] = []

    def refuse(stored: Queue | None) -> Queue:
        seen.append(stored)
        raise AlreadyExists()

    with pytest.raises(AlreadyExists):
        run(store.put_queue(Q, refuse, NOW))
    assert seen[0] is not None and seen[0].name == Q
    assert run(store.get_queue(Q)) == make_queue()


def test_deleted_queue_name_is_reserved_for_the_delay(store: SqliteStore, run: Run) -> None:
    create(store, run)
    run(add(store, make_task("t"), NOW))
    run(store.delete_queue(Q, NOW, timedelta(seconds=60)))
    with pytest.raises(QueueNotFound):
        run(store.get_queue(Q))
    with pytest.raises(QueueTombstoned):
        run(store.put_queue(Q, lambda s: make_queue(), NOW + timedelta(seconds=59)))
    run(store.put_queue(Q, lambda s: make_queue(), NOW + timedelta(seconds=61)))
    # The new queue starts empty, with no tombstones of the old one's tasks.
    assert run(store.list_tasks(Q, "", 10, NOW)) == []
    run(add(store, make_task("t"), NOW + timedelta(seconds=62)))


def test_task_dedup_tombstones_and_ttl(store: SqliteStore, run: Run) -> None:
    create(store, run, make_queue(tombstone_ttl=timedelta(minutes=10), task_ttl=timedelta(hours=1)))
    run(add(store, make_task("a"), NOW))
    with pytest.raises(AlreadyExists):
        run(add(store, make_task("a"), NOW))
    run(store.delete_task(Q.task("a"), NOW))
    with pytest.raises(TaskTombstoned):
        run(store.get_task(Q.task("a"), NOW))
    with pytest.raises(AlreadyExists):
        run(add(store, make_task("a"), NOW + timedelta(minutes=9)))
    later = NOW + timedelta(minutes=11)
    with pytest.raises(TaskNotFound):
        run(store.get_task(Q.task("a"), later))
    run(add(store, make_task("a", later), later))
    # Past the task TTL the task is gone even before a sweep, and a sweep deletes it.
    expired = later + timedelta(hours=1, seconds=1)
    with pytest.raises(TaskNotFound):
        run(store.get_task(Q.task("a"), expired))
    assert run(store.list_tasks(Q, "", 10, expired)) == []
    assert run(store.sweep(expired)) >= 1


def test_purge_and_stats(store: SqliteStore, run: Run) -> None:
    create(store, run)
    for i in range(5):
        run(add(store, make_task(f"t{i}", NOW + timedelta(seconds=i)), NOW))
    stats = run(store.queue_stats(Q, NOW))
    assert stats.tasks_count == 5 and stats.oldest_estimated_arrival_time == NOW
    purged = run(store.purge_queue(Q, NOW + timedelta(seconds=1)))
    assert purged.purge_time == NOW + timedelta(seconds=1)
    assert run(store.queue_stats(Q, NOW)).tasks_count == 0
    with pytest.raises(AlreadyExists):
        run(add(store, make_task("t1"), NOW + timedelta(seconds=2)))


def test_policy_etag(store: SqliteStore, run: Run) -> None:
    create(store, run)
    assert run(store.get_policy(Q)) == Policy()
    first = run(store.set_policy(Q, Policy(bindings=[Binding("roles/viewer", ["user:a@b"])], etag=bytes(8))))
    assert first.etag and first.etag != bytes(8)
    with pytest.raises(Aborted):
        run(store.set_policy(Q, Policy(etag=bytes(8))))
    second = run(store.set_policy(Q, Policy(etag=first.etag)))
    assert second.etag != first.etag and run(store.get_policy(Q)) == second
    assert run(store.set_policy(Q, Policy())).etag != second.etag  # no etag: unconditional


def test_concurrent_writes_share_commits_and_fail_alone(store: SqliteStore, run: Run) -> None:
    create(store, run)

    async def many() -> list[Any]:
        jobs = [add(store, make_task(f"t{i % 300}"), NOW) for i in range(600)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = run(many())
    assert sum(isinstance(r, Task) for r in results) == 300
    assert sum(isinstance(r, AlreadyExists) for r in results) == 300
    stored = run(store.list_tasks(Q, "", 1000, NOW))
    assert sorted(t.name.task for t in stored) == sorted(f"t{i}" for i in range(300))


def test_jobs_of_one_transaction_see_the_queue_changes_before_them(store: SqliteStore, run: Run) -> None:
    create(store, run)
    http = Task(name=Q.task("h"), payload=HttpRequest(url="http://x"), schedule_time=NOW, create_time=NOW)

    async def together() -> list[Any]:
        return await asyncio.gather(
            add(store, make_task("a"), NOW),
            store.put_queue(Q, lambda stored: replace(stored, kind=QueueKind.PUSH), NOW),  # type: ignore[arg-type]
            add(store, make_task("b"), NOW),  # a pull task: the queue is a push queue now
            add(store, http, NOW),
            add(store, http, NOW),
            store.delete_queue(Q, NOW, timedelta(0)),
            add(store, make_task("c"), NOW),
            return_exceptions=True,
        )

    results = run(together())
    assert [type(r).__name__ for r in results] == [
        "Task",
        "Queue",
        "InvalidArgument",
        "Task",
        "AlreadyExists",
        "NoneType",
        "QueueNotFound",
    ]


def test_round_trip_of_a_task(store: SqliteStore, run: Run) -> None:
    create(store, run)
    task = make_task("rt", NOW + timedelta(microseconds=123457), payload=bytes(range(256)))
    run(add(store, task, NOW))
    assert run(store.get_task(Q.task("rt"), NOW)) == task


def test_reopen_keeps_everything(tmp_path: Any, run: Run) -> None:
    path = str(tmp_path / "again.db")
    first = SqliteStore(path)
    run(first.open())
    create(first, run)
    run(add(first, make_task("kept"), NOW))
    run(first.close())
    second = SqliteStore(path)
    run(second.open())
    assert run(second.get_task(Q.task("kept"), NOW)).name == Q.task("kept")
    run(second.close())


def test_acknowledgements_of_one_call_succeed_or_fail_alone(store: SqliteStore, run: Run) -> None:
    create(store, run)
    for task_id in ("a", "b", "c"):
        run(add(store, make_task(task_id), NOW))
    held = [
        (Q.task("a"), NOW),
        (Q.task("a"), NOW),  # again: its tombstone answers
        (Q.task("b"), NOW - timedelta(seconds=1)),  # not the holder's schedule time
        (QueueName("p", "l", "missing").task("a"), NOW),
        (Q.task("never"), NOW),
        (Q.task("c"), NOW),
    ]
    outcomes = run(store.acknowledge_tasks(held, NOW))
    kinds = [type(outcome) if outcome is not None else None for outcome in outcomes]
    assert kinds == [None, TaskTombstoned, FailedPrecondition, QueueNotFound, TaskNotFound, None]
    assert "does not hold" in str(outcomes[2])
    assert [t.name.task for t in run(store.list_tasks(Q, "", 10, NOW))] == ["b"]
    for task_id in ("a", "c"):
        with pytest.raises(AlreadyExists):  # their tombstones hold the names
            run(add(store, make_task(task_id), NOW))


def test_operations_are_begun_once_and_forgotten_when_they_expire(store: SqliteStore, run: Run) -> None:
    name = "projects/p/locations/l/operations/op"
    running, keep = timedelta(minutes=10), timedelta(days=1)
    assert run(store.get_operation(name, NOW)) is None
    assert run(store.begin_operation(name, b"first running", NOW, running)) is None
    # A second operation of the same name (a retry) is not begun: the first one is answered.
    assert run(store.begin_operation(name, b"second running", NOW, running)) == b"first running"
    run(store.end_operation(name, b"first done", NOW, keep))
    assert run(store.begin_operation(name, b"third running", NOW, running)) == b"first done"
    assert run(store.get_operation(name, NOW + keep - timedelta(seconds=1))) == b"first done"
    assert run(store.get_operation(name, NOW + keep)) is None
    # Expired but not swept yet: a new one of that name begins.
    assert run(store.begin_operation(name, b"fourth running", NOW + keep, running)) is None
    assert run(store.get_operation(name, NOW + keep)) == b"fourth running"
    # One that failed as a whole is forgotten at once.
    run(store.end_operation(name, None, NOW + keep, keep))
    assert run(store.get_operation(name, NOW + keep)) is None
    assert run(store.begin_operation(name, b"fifth running", NOW + keep, running)) is None
    run(store.sweep(NOW + keep + running))
    assert run(store.get_operation(name, NOW + keep + running)) is None


def test_meta_values(store: SqliteStore, run: Run) -> None:
    assert run(store.get_meta("cmek/projects/p/locations/l")) is None
    run(store.put_meta("cmek/projects/p/locations/l", b"key-1"))
    run(store.put_meta("cmek/projects/p/locations/l", b"key-2"))
    assert run(store.get_meta("cmek/projects/p/locations/l")) == b"key-2"
    assert run(store.get_or_add_meta("cmek/projects/p/locations/l", lambda: b"other")) == b"key-2"


def _push_queue(name: QueueName, **changes: Any) -> Queue:
    limits = RateLimits(max_dispatches_per_second=10.0, max_burst_size=10, max_concurrent_dispatches=10)
    return complete_queue(Queue(name=name, kind=QueueKind.PUSH, rate_limits=limits, **changes), None)


def _answered(task: Task, at: datetime, status: int, again: datetime | None = None) -> Finished:
    assert task.name is not None and task.status.last_attempt is not None
    started = task.status.last_attempt.dispatch_time
    assert started is not None
    return Finished(task.name, started, AttemptResult(at, status, ResponseStatus(0), True, again))


def test_stats_count_attempts_in_flight_and_of_the_last_minute(store: SqliteStore, run: Run) -> None:
    create(store, run, _push_queue(Q))
    for i in range(4):
        task = Task(
            name=Q.task(f"t{i}"), payload=HttpRequest(url="http://x"), schedule_time=NOW, create_time=NOW
        )
        run(add(store, task, NOW))
    claimed = run(store.claim_tasks(Q, 3, NOW)).tasks
    stats = run(store.queue_stats(Q, NOW))
    assert (stats.tasks_count, stats.concurrent_dispatches_count, stats.executed_last_minute_count) == (
        4,
        3,
        3,
    )
    # One succeeds, one is retried later: neither is in flight, both still count.
    later = NOW + timedelta(seconds=1)
    run(
        store.finish_attempts(
            [
                _answered(claimed[0], later, 200),
                _answered(claimed[1], later, 500, NOW + timedelta(minutes=5)),
            ],
            later,
        )
    )
    stats = run(store.queue_stats(Q, later))
    assert (stats.tasks_count, stats.concurrent_dispatches_count, stats.executed_last_minute_count) == (
        3,
        1,
        3,
    )
    assert stats.failed_last_minute_count == 1  # the 500
    # An attempt that ends after its task was deleted still counts (it was dispatched).
    assert claimed[2].name is not None
    run(store.delete_task(claimed[2].name, later))
    assert run(store.queue_stats(Q, later)).concurrent_dispatches_count == 0
    run(store.finish_attempts([_answered(claimed[2], NOW + timedelta(seconds=2), 200)], later))
    assert run(store.queue_stats(Q, NOW + timedelta(seconds=30))).executed_last_minute_count == 3
    # A minute after they ended nothing counts any more, and the sweep forgets the counts.
    assert run(store.queue_stats(Q, NOW + timedelta(seconds=63))).executed_last_minute_count == 0
    assert run(store.queue_stats(Q, NOW + timedelta(seconds=63))).failed_last_minute_count == 0
    run(store.sweep(NOW + timedelta(minutes=10)))
    assert run(store.queue_stats(Q, NOW + timedelta(seconds=30))).executed_last_minute_count == 0
    # An attempt in flight counts for the minute after its dispatch, and while in flight.
    other = QueueName("p", "l", "other")
    create(store, run, _push_queue(other))
    run(
        store.insert_task(
            other,
            new(
                Task(
                    name=other.task("o"),
                    payload=HttpRequest(url="http://x"),
                    schedule_time=NOW,
                    create_time=NOW,
                )
            ),
            NOW,
        )
    )
    run(store.claim_tasks(other, 1, NOW))
    assert run(store.queue_stats(other, NOW + timedelta(seconds=59))).executed_last_minute_count == 1
    late = run(store.queue_stats(other, NOW + timedelta(seconds=61)))
    assert (late.executed_last_minute_count, late.concurrent_dispatches_count) == (0, 1)


def test_stats_effective_rate_follows_the_owner_and_state(store: SqliteStore, run: Run) -> None:
    create(store, run, _push_queue(Q))
    assert run(store.queue_stats(Q, NOW)).effective_execution_rate == 10.0
    assert run(store.own_queue(Q, "node-a", NOW, timedelta(seconds=5), 0.5))
    assert run(store.queue_stats(Q, NOW)).effective_execution_rate == 5.0
    assert not run(store.own_queue(Q, "node-b", NOW, timedelta(seconds=5)))  # a live owner keeps it
    assert run(store.queue_stats(Q, NOW)).effective_execution_rate == 5.0
    assert run(store.own_queue(Q, "node-a", NOW + timedelta(seconds=1), timedelta(seconds=5), 0.25))
    assert run(store.queue_stats(Q, NOW)).effective_execution_rate == 2.5
    # Once the ownership ran out no node slows the queue down.
    assert run(store.queue_stats(Q, NOW + timedelta(seconds=7))).effective_execution_rate == 10.0
    run(store.put_queue(Q, lambda stored: replace(_push_queue(Q), state=QueueState.PAUSED), NOW))
    assert run(store.queue_stats(Q, NOW)).effective_execution_rate == 0.0
    create(store, run, make_queue(QueueName("p", "l", "pull")))
    assert run(store.queue_stats(QueueName("p", "l", "pull"), NOW)).effective_execution_rate == 0.0
