"""The Store contract, one suite typed to ``Store``, run against every backend: here the
memory store, an SQLite file and SQLite in memory; tests/integration/test_store_contract_postgres.py
runs it on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasksd.model.admission import NewTask
from tasksd.model.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    QueueChanged,
    QueueNotFound,
    QueueTombstoned,
    ResourceExhausted,
    TaskNotFound,
    TaskTombstoned,
)
from tasksd.model.iam import Binding, Policy
from tasksd.model.leases import LeaseRequest
from tasksd.model.names import LocationName, QueueName
from tasksd.model.network import ANY_ADDRESS
from tasksd.model.queue import Queue, QueueKind, QueueState, RateLimits, RetryConfig
from tasksd.model.task import Attempt, AttemptResult, HttpRequest, PullMessage, ResponseStatus, Task
from tasksd.service.queues import complete_queue
from tasksd.store import UnsupportedDatabase, open_store
from tasksd.store.base import Claim, Finished, Store
from tasksd.store.memory import MemoryStore
from tasksd.store.sqlite import SqliteStore
from tests.stores import new_store

NOW = datetime(2030, 1, 1, tzinfo=UTC)
Q = QueueName("p", "l", "q")
SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
Run = Callable[[Awaitable[Any]], Any]


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, run: Run) -> Iterator[Store]:
    """Every backend that needs no server, in turn."""
    store = new_store(request.param, tmp_path)
    run(store.open())
    yield store
    run(store.close())


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


def add(store: Store, task: Task, now: datetime) -> Awaitable[Task]:
    return store.insert_task(Q, new(task), now)


def create(store: Store, run: Run, queue: Queue | None = None, now: datetime = NOW) -> Queue:
    """Create the queue, or replace the one stored."""
    queue = queue or make_queue()
    stored = run(store.find_queue(queue.name, now))
    return run(store.put_queue(queue.name, queue, now, stored))  # type: ignore[no-any-return]


def test_queue_put_get_list(store: Store, run: Run) -> None:
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


def test_put_queue_replaces_only_the_queue_it_was_computed_from(store: Store, run: Run) -> None:
    assert run(store.find_queue(Q, NOW)) is None
    with pytest.raises(QueueChanged):  # it is not there
        run(store.put_queue(Q, make_queue(), NOW, make_queue()))
    first = create(store, run)
    assert run(store.find_queue(Q, NOW)) == first
    with pytest.raises(QueueChanged):  # it is there
        run(store.put_queue(Q, make_queue(), NOW, None))
    paused = run(store.put_queue(Q, replace(first, state=QueueState.PAUSED), NOW, first))
    with pytest.raises(QueueChanged):  # computed from the queue before the pause
        run(store.put_queue(Q, replace(first, task_ttl=timedelta(days=1)), NOW, first))
    assert run(store.get_queue(Q)) == paused


def test_deleted_queue_name_is_reserved_for_the_delay(store: Store, run: Run) -> None:
    create(store, run)
    run(add(store, make_task("t"), NOW))
    run(store.delete_queue(Q, NOW, timedelta(seconds=60)))
    with pytest.raises(QueueNotFound):
        run(store.get_queue(Q))
    with pytest.raises(QueueTombstoned):
        run(store.find_queue(Q, NOW + timedelta(seconds=59)))
    with pytest.raises(QueueTombstoned):
        run(store.put_queue(Q, make_queue(), NOW + timedelta(seconds=59), None))
    assert run(store.find_queue(Q, NOW + timedelta(seconds=61))) is None
    create(store, run, now=NOW + timedelta(seconds=61))
    # The new queue starts empty, with no tombstones of the old one's tasks.
    assert run(store.list_tasks(Q, "", 10, NOW)) == []
    run(add(store, make_task("t"), NOW + timedelta(seconds=62)))


def test_task_dedup_tombstones_and_ttl(store: Store, run: Run) -> None:
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


def test_purge_and_stats(store: Store, run: Run) -> None:
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


def test_policy_etag(store: Store, run: Run) -> None:
    create(store, run)
    assert run(store.get_policy(Q)) == Policy()
    first = run(store.set_policy(Q, Policy(bindings=[Binding("roles/viewer", ["user:a@b"])], etag=bytes(8))))
    assert first.etag and first.etag != bytes(8)
    with pytest.raises(Aborted):
        run(store.set_policy(Q, Policy(etag=bytes(8))))
    second = run(store.set_policy(Q, Policy(etag=first.etag)))
    assert second.etag != first.etag and run(store.get_policy(Q)) == second
    assert run(store.set_policy(Q, Policy())).etag != second.etag  # no etag: unconditional


def test_concurrent_writes_share_commits_and_fail_alone(store: Store, run: Run) -> None:
    create(store, run)

    async def many() -> list[Any]:
        jobs = [add(store, make_task(f"t{i % 300}"), NOW) for i in range(600)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = run(many())
    assert sum(isinstance(r, Task) for r in results) == 300
    assert sum(isinstance(r, AlreadyExists) for r in results) == 300
    stored = run(store.list_tasks(Q, "", 1000, NOW))
    assert sorted(t.name.task for t in stored) == sorted(f"t{i}" for i in range(300))


def test_jobs_of_one_transaction_see_the_queue_changes_before_them(store: Store, run: Run) -> None:
    create(store, run)
    http = Task(name=Q.task("h"), payload=HttpRequest(url="http://x"), schedule_time=NOW, create_time=NOW)

    async def together() -> list[Any]:
        return await asyncio.gather(
            add(store, make_task("a"), NOW),
            store.put_queue(Q, replace(make_queue(), kind=QueueKind.PUSH), NOW, make_queue()),
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


def test_round_trip_of_a_task(store: Store, run: Run) -> None:
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


def test_processes_opening_a_new_file_at_once_all_open(tmp_path: Path) -> None:
    """``tasksd serve --processes N`` on a new file: the processes open it at once. SQLite
    answers two switches of a new file to WAL at once with "database is locked", without
    waiting, unless they take turns (as the writers' transactions do, on the lock file)."""

    async def open_and_close(path: str) -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    failed = 0
    for attempt in range(60):  # each round alone loses the race ~1 time in 10 when they do not
        path = str(tmp_path / f"new-{attempt}.db")
        go_read, go_write = os.pipe()
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:  # the child: open when told, and answer by its exit status
                code = 1
                try:
                    os.read(go_read, 1)
                    asyncio.run(open_and_close(path))
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        os.write(go_write, b"go")
        deadline = time.monotonic() + 60
        for pid in children:
            while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.005)
            failed += os.waitstatus_to_exitcode(done[1]) != 0
        os.close(go_read)
        os.close(go_write)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert failed == 0


def test_acknowledgements_of_one_call_succeed_or_fail_alone(store: Store, run: Run) -> None:
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


def test_many_acknowledgements_of_one_call_each_as_if_alone(store: Store, run: Run) -> None:
    # Many rows go in statements of several (SQLite: 64, 32, 4 for 100); one that removes
    # nothing undoes the others of its call, and each acknowledgement then runs alone.
    create(store, run)
    ids = [f"t{i:03}" for i in range(170)]
    answers = run(store.insert_tasks(Q, [new(make_task(task_id)) for task_id in ids], NOW))
    assert all(isinstance(a, Task) for a in answers)
    assert run(store.acknowledge_tasks([(Q.task(i), NOW) for i in ids[:100]], NOW)) == [None] * 100
    held = [(Q.task(i), NOW) for i in ids[100:169]] + [(Q.task(ids[100]), NOW)]  # the first again
    outcomes = run(store.acknowledge_tasks(held, NOW))
    assert outcomes[:-1] == [None] * 69 and isinstance(outcomes[-1], TaskTombstoned)
    assert [t.name.task for t in run(store.list_tasks(Q, "", 500, NOW)) if t.name] == [ids[169]]
    again = run(store.insert_tasks(Q, [new(make_task(i)) for i in ids[:20]], NOW))
    assert all(isinstance(a, AlreadyExists) for a in again)  # their tombstones hold the names


def test_operations_are_begun_once_and_forgotten_when_they_expire(store: Store, run: Run) -> None:
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


def test_meta_values(store: Store, run: Run) -> None:
    assert run(store.get_meta("cmek/projects/p/locations/l")) is None
    run(store.put_meta("cmek/projects/p/locations/l", b"key-1"))
    run(store.put_meta("cmek/projects/p/locations/l", b"key-2"))
    assert run(store.get_meta("cmek/projects/p/locations/l")) == b"key-2"
    assert run(store.get_or_add_meta("cmek/projects/p/locations/l", lambda: b"other")) == b"key-2"


def _push_queue(name: QueueName, **changes: Any) -> Queue:
    limits = RateLimits(max_dispatches_per_second=10.0, max_burst_size=10, max_concurrent_dispatches=10)
    return complete_queue(Queue(name=name, kind=QueueKind.PUSH, rate_limits=limits, **changes), None)


def _answered(
    task: Task, at: datetime, status: int, again: datetime | None = None, executed: bool = True
) -> Finished:
    assert task.name is not None and task.status.last_attempt is not None
    started = task.status.last_attempt.dispatch_time
    assert started is not None
    return Finished(task.name, started, AttemptResult(at, status, ResponseStatus(0), executed, again))


def test_stats_count_attempts_in_flight_and_of_the_last_minute(store: Store, run: Run) -> None:
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


def test_stats_effective_rate_follows_the_owner_and_state(store: Store, run: Run) -> None:
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
    create(store, run, replace(_push_queue(Q), state=QueueState.PAUSED))
    assert run(store.queue_stats(Q, NOW)).effective_execution_rate == 0.0
    create(store, run, make_queue(QueueName("p", "l", "pull")))
    assert run(store.queue_stats(QueueName("p", "l", "pull"), NOW)).effective_execution_rate == 0.0


def _pull(task_id: str, when: datetime, tag: str = "tag", payload: bytes = b"x") -> Task:
    return Task(name=Q.task(task_id), payload=PullMessage(payload, tag), schedule_time=when, create_time=NOW)


def _http(name: QueueName, task_id: str, when: datetime = NOW) -> Task:
    task = Task(name=name.task(task_id), payload=HttpRequest(url="http://x"), schedule_time=when)
    task.create_time = NOW
    return task


def _lease(until: datetime, max_tasks: int = 10, **changes: Any) -> LeaseRequest:
    return LeaseRequest(until, max_tasks, 32 * 1024 * 1024, **changes)


def test_lease_tasks_oldest_first_until_the_lease_ends(store: Store, run: Run) -> None:
    create(store, run)
    run(add(store, _pull("late", NOW + timedelta(hours=1)), NOW))
    run(add(store, _pull("b", NOW - timedelta(seconds=1)), NOW))
    run(add(store, _pull("a", NOW - timedelta(seconds=2)), NOW))
    until = NOW + timedelta(minutes=1)
    leased = run(store.lease_tasks(Q, _lease(until), NOW))
    assert [(t.name.task, t.schedule_time, t.status.dispatch_count) for t in leased] == [
        ("a", until, 1),
        ("b", until, 1),
    ]
    assert run(store.get_task(Q.task("a"), NOW)) == leased[0]
    assert run(store.lease_tasks(Q, _lease(until), NOW)) == []  # leased: not due until the lease ends
    again = run(store.lease_tasks(Q, _lease(until + MINUTE, max_tasks=1), until))
    assert [t.status.dispatch_count for t in again] == [2]


def test_lease_tasks_by_tag_oldest_tag_and_reply_size(store: Store, run: Run) -> None:
    create(store, run)
    for i, tag in enumerate(["red", "blue", "red", "blue"]):
        run(add(store, _pull(f"t{i}", NOW - timedelta(seconds=10 - i), tag, b"p" * 3000), NOW))
    until = NOW + MINUTE
    blue = run(store.lease_tasks(Q, _lease(until, tag="blue"), NOW))
    assert [t.name.task for t in blue] == ["t1", "t3"]
    oldest = run(store.lease_tasks(Q, _lease(until, oldest_tag=True), NOW))
    assert [t.name.task for t in oldest] == ["t0", "t2"]  # red: t0's tag
    assert run(store.lease_tasks(Q, _lease(until, oldest_tag=True), NOW)) == []  # nothing due
    # A reply stops before its estimated size passes max_bytes (3000 bytes → about 4400 each).
    later = until + timedelta(seconds=1)
    small = run(store.lease_tasks(Q, LeaseRequest(later + MINUTE, 10, 9000), later))
    assert len(small) == 2  # of the four, all leased until the same time


def test_lease_tasks_deletes_tasks_out_of_attempts(store: Store, run: Run) -> None:
    create(store, run, make_queue(retry_config=RetryConfig(max_attempts=1)))
    run(add(store, _pull("once", NOW), NOW))
    own = replace(_pull("twice", NOW), retry_config=RetryConfig(max_attempts=2))
    run(add(store, own, NOW))
    assert len(run(store.lease_tasks(Q, _lease(NOW + MINUTE), NOW))) == 2
    later = NOW + 2 * MINUTE
    assert [t.name.task for t in run(store.lease_tasks(Q, _lease(later + MINUTE), later))] == ["twice"]
    with pytest.raises(TaskTombstoned):
        run(store.get_task(Q.task("once"), later))
    with pytest.raises(AlreadyExists):
        run(add(store, _pull("once", later), later))


def test_lease_tasks_checks_the_stored_queue_and_its_call_rate(store: Store, run: Run) -> None:
    with pytest.raises(QueueNotFound):
        run(store.lease_tasks(Q, _lease(NOW + MINUTE), NOW))
    create(store, run, _push_queue(QueueName("p", "l", "push")))
    with pytest.raises(FailedPrecondition, match="not a pull queue"):
        run(store.lease_tasks(QueueName("p", "l", "push"), _lease(NOW + MINUTE), NOW))
    create(store, run, make_queue(state=QueueState.PAUSED))
    with pytest.raises(FailedPrecondition, match="paused"):
        run(store.lease_tasks(Q, _lease(NOW + MINUTE), NOW))
    create(store, run)
    limited = _lease(NOW + MINUTE, calls_per_second=2.0)
    run(store.lease_tasks(Q, limited, NOW))
    run(store.lease_tasks(Q, limited, NOW))
    with pytest.raises(ResourceExhausted, match="at most 2 per second"):
        run(store.lease_tasks(Q, limited, NOW))
    run(store.lease_tasks(Q, limited, NOW + timedelta(seconds=0.5)))  # one token came back
    run(store.lease_tasks(Q, _lease(NOW + MINUTE), NOW))  # no limit asked: no token taken


def test_reschedule_leased_task_needs_the_lease(store: Store, run: Run) -> None:
    create(store, run)
    run(add(store, _pull("a", NOW), NOW))
    assert len(run(store.lease_tasks(Q, _lease(NOW + MINUTE), NOW))) == 1
    with pytest.raises(FailedPrecondition, match="does not hold"):
        run(store.reschedule_leased_task(Q.task("a"), NOW, NOW + 2 * MINUTE, NOW))
    renewed = run(store.reschedule_leased_task(Q.task("a"), NOW + MINUTE, NOW + 5 * MINUTE, NOW))
    assert renewed.schedule_time == NOW + 5 * MINUTE and renewed.status.dispatch_count == 1
    assert run(store.get_task(Q.task("a"), NOW)) == renewed
    cancelled = run(store.reschedule_leased_task(Q.task("a"), NOW + 5 * MINUTE, NOW, NOW))
    assert cancelled.schedule_time == NOW
    assert [t.name.task for t in run(store.lease_tasks(Q, _lease(NOW + MINUTE), NOW))] == ["a"]
    with pytest.raises(TaskNotFound):
        run(store.reschedule_leased_task(Q.task("never"), NOW, NOW, NOW))
    run(store.delete_task(Q.task("a"), NOW))
    with pytest.raises(TaskTombstoned):
        run(store.reschedule_leased_task(Q.task("a"), NOW + MINUTE, NOW, NOW))
    push = QueueName("p", "l", "push")
    create(store, run, _push_queue(push))
    run(store.insert_task(push, new(_http(push, "h")), NOW))
    with pytest.raises(FailedPrecondition, match="not a pull task"):
        run(store.reschedule_leased_task(push.task("h"), NOW, NOW, NOW))
    with pytest.raises(QueueNotFound):
        run(store.reschedule_leased_task(QueueName("p", "l", "gone").task("a"), NOW, NOW, NOW))


def test_claim_tasks_next_due_is_the_earliest_task_left(store: Store, run: Run) -> None:
    """After a claim, the next due time is the earliest schedule of the tasks it left (not in
    flight): one due already when the claim took as many as it asked for, one of the same
    schedule as the last it took among them, or the next one in the future."""
    create(store, run, _push_queue(Q))
    schedules = {"a": NOW - MINUTE, "b": NOW - SECOND, "c": NOW - SECOND, "d": NOW, "e": NOW + MINUTE}
    for task_id, when in schedules.items():
        run(store.insert_task(Q, new(_http(Q, task_id, when)), NOW))
    assert run(store.claim_tasks(Q, 0, NOW)).next_due == NOW - MINUTE
    first = run(store.claim_tasks(Q, 2, NOW))
    assert [t.name.task for t in first.tasks] == ["a", "b"] and first.next_due == NOW - SECOND
    second = run(store.claim_tasks(Q, 1, NOW))
    assert [t.name.task for t in second.tasks] == ["c"] and second.next_due == NOW
    third = run(store.claim_tasks(Q, 5, NOW))
    assert [t.name.task for t in third.tasks] == ["d"] and third.next_due == NOW + MINUTE
    assert run(store.claim_tasks(Q, 5, NOW + MINUTE)).next_due is None


def test_claim_tasks_starts_attempts_once_until_they_finish(store: Store, run: Run) -> None:
    create(store, run, _push_queue(Q))
    for task_id, when in (("t0", NOW), ("t1", NOW - timedelta(seconds=1)), ("later", NOW + 10 * SECOND)):
        run(store.insert_task(Q, new(_http(Q, task_id, when)), NOW))
    claim = run(store.claim_tasks(Q, 5, NOW))
    assert claim.queue == run(store.get_queue(Q)) and claim.next_due == NOW + 10 * SECOND
    assert [t.name.task for t in claim.tasks] == ["t1", "t0"]
    first = claim.tasks[0]
    assert first.status.dispatch_count == 1
    assert first.status.first_attempt == Attempt(None, NOW)
    assert first.status.last_attempt == Attempt(NOW - SECOND, NOW)
    assert run(store.get_task(first.name, NOW)).status == first.status
    # In flight: neither is claimed again, nor counts for the next due time.
    again = run(store.claim_tasks(Q, 5, NOW + SECOND))
    assert again.tasks == [] and again.next_due == NOW + 10 * SECOND
    # Limit 0 answers the queue and the next due time alone.
    assert run(store.claim_tasks(Q, 0, NOW + 20 * SECOND)).tasks == []
    t1, t0 = claim.tasks
    retry_at = NOW + 5 * SECOND
    run(
        store.finish_attempts(
            [_answered(t0, NOW + SECOND, 200), _answered(t1, NOW + SECOND, 503, retry_at, executed=True)],
            NOW + SECOND,
        )
    )
    with pytest.raises(TaskTombstoned):
        run(store.get_task(t0.name, NOW + SECOND))
    retried = run(store.get_task(t1.name, NOW + SECOND))
    assert retried.schedule_time == retry_at
    assert (retried.status.response_count, retried.status.execution_count) == (1, 1)
    assert retried.status.last_http_status == 503
    assert retried.status.last_attempt == Attempt(NOW - SECOND, NOW, NOW + SECOND, ResponseStatus(0))
    claim = run(store.claim_tasks(Q, 5, retry_at))
    assert [t.name.task for t in claim.tasks] == ["t1"]
    second = claim.tasks[0].status
    assert second.dispatch_count == 2 and second.first_attempt == Attempt(None, NOW)
    assert second.last_attempt == Attempt(retry_at, retry_at)
    # An attempt that is no longer its task's (an older one) changes nothing.
    run(store.finish_attempts([_answered(t1, retry_at, 200)], retry_at))
    assert run(store.get_task(t1.name, retry_at)).status == second


def test_claim_tasks_of_no_running_push_queue(store: Store, run: Run) -> None:
    assert run(store.claim_tasks(Q, 5, NOW)) == Claim(None, [], None)
    create(store, run, _push_queue(Q, state=QueueState.PAUSED))
    run(store.insert_task(Q, new(_http(Q, "t")), NOW))
    paused = run(store.claim_tasks(Q, 5, NOW))
    assert paused == Claim(run(store.get_queue(Q)), [], None)
    pull = QueueName("p", "l", "pull")
    create(store, run, make_queue(pull))
    assert run(store.claim_tasks(pull, 5, NOW)).tasks == []


def test_start_attempt_runs_a_push_task_whatever_its_queue(store: Store, run: Run) -> None:
    create(store, run, _push_queue(Q, state=QueueState.PAUSED))
    run(store.insert_task(Q, new(_http(Q, "t", NOW + timedelta(hours=1))), NOW))
    queue, task = run(store.start_attempt(Q.task("t"), NOW))
    assert queue == run(store.get_queue(Q))
    assert task.status.dispatch_count == 1 and task.status.last_attempt == Attempt(
        NOW + timedelta(hours=1), NOW
    )
    assert run(store.get_task(Q.task("t"), NOW)).status == task.status
    with pytest.raises(TaskNotFound):
        run(store.start_attempt(Q.task("never"), NOW))
    with pytest.raises(QueueNotFound):
        run(store.start_attempt(QueueName("p", "l", "gone").task("t"), NOW))
    pull = QueueName("p", "l", "pull")
    create(store, run, make_queue(pull))
    run(store.insert_task(pull, new(replace(make_task("p"), name=pull.task("p"))), NOW))
    with pytest.raises(FailedPrecondition, match="pull task"):
        run(store.start_attempt(pull.task("p"), NOW))
    run(store.delete_task(Q.task("t"), NOW))
    with pytest.raises(TaskTombstoned):
        run(store.start_attempt(Q.task("t"), NOW))


def test_own_queue_one_node_at_a_time_and_takeover_resends(store: Store, run: Run) -> None:
    ttl = timedelta(seconds=5)
    assert not run(store.own_queue(Q, "a", NOW, ttl))  # no such queue
    create(store, run, _push_queue(Q))
    run(store.insert_task(Q, new(_http(Q, "t")), NOW))
    assert run(store.own_queue(Q, "a", NOW, ttl))
    [claimed] = run(store.claim_tasks(Q, 5, NOW)).tasks
    assert not run(store.own_queue(Q, "b", NOW + SECOND, ttl))  # a is alive
    assert run(store.own_queue(Q, "a", NOW + SECOND, ttl))  # renewed: its attempt stays in flight
    assert run(store.claim_tasks(Q, 5, NOW + SECOND)).tasks == []
    assert not run(store.own_queue(Q, "b", NOW + 5 * SECOND, ttl))
    # a's time ran out (renewed until NOW + 6s): b takes over and sends a's attempt again.
    assert run(store.own_queue(Q, "b", NOW + 6 * SECOND, ttl))
    [again] = run(store.claim_tasks(Q, 5, NOW + 6 * SECOND)).tasks
    assert again.name == claimed.name and again.status.dispatch_count == 2
    run(store.release_queue(Q, "a"))  # not a's any more: nothing happens
    assert not run(store.own_queue(Q, "a", NOW + 7 * SECOND, ttl))
    run(store.release_queue(Q, "b"))
    assert run(store.own_queue(Q, "a", NOW + 7 * SECOND, ttl))
    run(store.release_queue(QueueName("p", "l", "gone"), "a"))


def test_queue_configs_and_task_ttl_changes(store: Store, run: Run) -> None:
    assert run(store.queue_configs()) == []
    created = [
        create(store, run, make_queue(QueueName("p", loc, "q"), task_ttl=timedelta(hours=1))) for loc in "ab"
    ]
    assert sorted(run(store.queue_configs()), key=lambda q: q.name.path) == created
    first = created[0].name
    run(store.insert_task(first, new(replace(make_task("t"), name=first.task("t"))), NOW))
    later = NOW + timedelta(minutes=90)
    with pytest.raises(TaskNotFound):
        run(store.get_task(first.task("t"), later))
    # A longer task TTL applies to the tasks there already.
    create(store, run, replace(created[0], task_ttl=timedelta(hours=2)))
    assert run(store.get_task(first.task("t"), later)).name == first.task("t")
    assert run(store.get_or_add_meta("fresh", lambda: b"made")) == b"made"
    assert run(store.get_or_add_meta("fresh", lambda: b"other")) == b"made"


def test_open_store_opens_the_backend_a_url_names(tmp_path: Path, run: Run) -> None:
    for url, kind in (("memory://", MemoryStore), ("sqlite:///:memory:", SqliteStore)):
        opened = run(open_store(url))
        assert isinstance(opened, kind)
        create(opened, run)
        assert run(opened.get_queue(Q)) == make_queue()
        run(opened.close())
    with pytest.raises(UnsupportedDatabase, match="memory://"):
        run(open_store("mysql://nope"))


def test_insert_tasks_of_many_rows_answers_each_as_if_alone(store: Store, run: Run) -> None:
    # Many rows go in statements of several (SQLite: chunks of 64, 32, 4 for 100); a row that
    # inserts nothing, in the last chunk, undoes the chunks before it and each row runs alone.
    create(store, run)
    run(add(store, make_task("t099"), NOW))
    answers = run(store.insert_tasks(Q, [new(make_task(f"t{i:03}")) for i in range(100)], NOW))
    assert [type(a).__name__ for a in answers] == ["Task"] * 99 + ["AlreadyExists"]
    stored = run(store.list_tasks(Q, "", 500, NOW))
    assert [t.name.task for t in stored if t.name] == [f"t{i:03}" for i in range(100)]
    assert stored[:99] == answers[:99]
    more = run(store.insert_tasks(Q, [new(make_task(f"u{i:03}")) for i in range(71)], NOW))
    assert all(isinstance(a, Task) for a in more)
    assert len(run(store.list_tasks(Q, "", 500, NOW))) == 171
    # Equal ids in one batch: the first is created.
    twice = [new(make_task(f"v{i % 5}")) for i in range(10)]
    answers = run(store.insert_tasks(Q, twice, NOW))
    assert [isinstance(a, Task) for a in answers] == [True] * 5 + [False] * 5
    assert len(run(store.list_tasks(Q, "", 500, NOW))) == 176


def test_insert_tasks_answers_each_task_on_its_own(store: Store, run: Run) -> None:
    create(store, run)
    run(add(store, make_task("gone"), NOW))
    run(store.delete_task(Q.task("gone"), NOW))
    run(add(store, make_task("live"), NOW))
    push = _http(Q, "push")  # an HTTP task for a pull queue: admit refuses it
    batch = [make_task("a"), make_task("live"), make_task("gone"), new(push), make_task("a"), make_task("b")]
    answers = run(store.insert_tasks(Q, [b if isinstance(b, NewTask) else new(b) for b in batch], NOW))
    assert [type(a).__name__ for a in answers] == [
        "Task",
        "AlreadyExists",
        "AlreadyExists",
        "InvalidArgument",
        "AlreadyExists",  # the second "a" of the batch
        "Task",
    ]
    stored = run(store.list_tasks(Q, "", 10, NOW))
    assert [t.name.task for t in stored if t.name] == ["a", "b", "live"]
    assert stored[0] == answers[0]
    assert run(store.insert_tasks(Q, [], NOW)) == []
    with pytest.raises(QueueNotFound):
        run(store.insert_tasks(QueueName("p", "l", "nowhere"), [new(make_task("c"))], NOW))
