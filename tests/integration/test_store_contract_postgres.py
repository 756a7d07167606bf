"""The Store contract suite (tests/unit/test_store_contract.py) on PostgreSQL: the same test
functions, with a fresh database of the session's server for each."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tasksd.model.errors import AlreadyExists, QueueChanged
from tasksd.model.leases import LeaseRequest
from tasksd.model.queue import QueueState
from tasksd.store import codec
from tasksd.store.base import Store
from tasksd.store.postgres import PostgresStore, postgres_dialect
from tasksd.store.writer import Db, GroupCommitDb
from tests.postgres import PostgresServer
from tests.stores import loop, new_store, run
from tests.unit import test_store_contract as contract

__all__ = ["loop", "run"]

# Every test of the suite that takes the ``store`` fixture (not those of one backend alone).
globals().update(
    {
        name: test
        for name, test in vars(contract).items()
        if name.startswith("test_") and "store" in inspect.signature(test).parameters
    }
)


@pytest.fixture
def store(
    postgres_server: PostgresServer, tmp_path: Path, run: Callable[[Awaitable[Any]], Any]
) -> Iterator[Store]:
    store = new_store("postgres", tmp_path, postgres_server.new_database())
    run(store.open())
    yield store
    run(store.close())


# -- several writers: each node has a few, and several nodes share the database --------


@pytest.fixture
def two_nodes(
    postgres_server: PostgresServer, run: Callable[[Awaitable[Any]], Any]
) -> Iterator[tuple[str, PostgresStore, PostgresStore]]:
    """Two stores on one database, as two nodes have: (its URL, one, the other)."""
    url = postgres_server.new_database()
    stores = PostgresStore(url), PostgresStore(url)
    for store in stores:
        run(store.open())
    yield url, *stores
    for store in stores:
        run(store.close())


def _hold_until_waited_on(url: str, statement: str, waiters: int) -> Callable[[], Awaitable[None]]:
    """A transaction that runs ``statement`` (taking a row lock) and commits once ``waiters``
    other sessions wait for that lock; answered as a coroutine function to gather beside them."""
    holder = psycopg.connect(url)
    holder.execute(statement)

    async def release() -> None:
        with holder:
            while True:
                waiting = holder.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> %s",
                    (holder.info.backend_pid,),
                ).fetchone()
                if waiting is not None and waiting[0] >= waiters:
                    break
                await asyncio.sleep(0.01)
        # leaving the with block commits

    return release


def test_concurrent_changes_of_one_queue_never_lose_one(
    two_nodes: tuple[str, PostgresStore, PostgresStore], run: Callable[[Awaitable[Any]], Any]
) -> None:
    """Two updates computed from the same stored queue, written at once through two nodes:
    one is stored, the other is told the queue changed (it is computed again), none lost."""
    url, one, other = two_nodes
    first = contract.create(one, run)
    paused = replace(first, state=QueueState.PAUSED)
    longer = replace(first, task_ttl=timedelta(days=2))
    release = _hold_until_waited_on(url, "UPDATE queues SET config = config", waiters=2)

    async def both() -> list[Any]:
        return await asyncio.gather(
            one.put_queue(contract.Q, paused, contract.NOW, first),
            other.put_queue(contract.Q, longer, contract.NOW, first),
            release(),
            return_exceptions=True,
        )

    outcomes = run(both())[:2]
    assert sorted(type(o).__name__ for o in outcomes) == ["Queue", "QueueChanged"]
    assert run(one.get_queue(contract.Q)) in (paused, longer)


def test_a_queue_created_at_once_through_two_nodes(
    two_nodes: tuple[str, PostgresStore, PostgresStore], run: Callable[[Awaitable[Any]], Any]
) -> None:
    """Both creations find the queue another transaction stored meanwhile: QueueChanged (the
    service answers AlreadyExists), not a failed transaction for every job beside them."""
    url, one, other = two_nodes
    queue = contract.make_queue()
    release = _hold_until_waited_on(
        url,
        "INSERT INTO queues (project, location, queue_id, task_ttl_us, tombstone_ttl_us, config) "
        f"VALUES ('{contract.Q.project}', '{contract.Q.location}', '{contract.Q.queue}', 1, 1, "
        f"'\\x{codec.encode_queue(queue).hex()}')",
        waiters=2,
    )

    async def both() -> list[Any]:
        return await asyncio.gather(
            one.put_queue(contract.Q, queue, contract.NOW, None),
            other.put_queue(contract.Q, queue, contract.NOW, None),
            release(),
            return_exceptions=True,
        )

    outcomes = run(both())[:2]
    assert [type(o) for o in outcomes] == [QueueChanged, QueueChanged]
    assert run(one.get_queue(contract.Q)) == queue


def test_writers_of_one_node_share_the_work(
    postgres_server: PostgresServer, run: Callable[[Awaitable[Any]], Any]
) -> None:
    """Many callers at once through a store of four writers: every task stored once and
    leased once."""
    store = PostgresStore(postgres_server.new_database(), writers=4)
    run(store.open())
    try:
        contract.create(store, run)

        async def work() -> list[Any]:
            added = await asyncio.gather(
                *(contract.add(store, contract.make_task(f"t{i}"), contract.NOW) for i in range(400)),
                *(contract.add(store, contract.make_task(f"t{i}"), contract.NOW) for i in range(0, 400, 40)),
                return_exceptions=True,
            )
            lease = LeaseRequest(until=contract.NOW + contract.MINUTE, max_tasks=50, max_bytes=10**8)
            leased = await asyncio.gather(
                *(store.lease_tasks(contract.Q, lease, contract.NOW) for _ in range(10))
            )
            return [added, leased]

        added, leased = run(work())
        assert sum(isinstance(a, AlreadyExists) for a in added) == 10
        assert not [a for a in added if isinstance(a, Exception) and not isinstance(a, AlreadyExists)]
        names = [task.name.task for tasks in leased for task in tasks]
        assert len(names) == len(set(names)) == 400
    finally:
        run(store.close())


def test_a_job_whose_statements_sent_without_waiting_fail_is_undone_alone(
    postgres_server: PostgresServer, run: Callable[[Awaitable[Any]], Any]
) -> None:
    """Statements for many rows are sent without waiting (the job goes on meanwhile): one that
    fails still fails its own job, after the job's function returned, and only that job of its
    transaction is undone; the control statements that went with them in one round trip
    (BEGIN, SAVEPOINT, RELEASE, COMMIT) did their part."""
    dialect = postgres_dialect(postgres_server.new_database(), writers=1)
    strict = "INSERT INTO meta (key, value) VALUES (%s, %s)"  # fails on a key already there
    db = GroupCommitDb(replace(dialect, queries={**dialect.queries, "strict_meta": strict}))
    run(db.open())
    blocking, go = threading.Event(), threading.Event()

    def first(conn: Db) -> str:  # holds the writer while the others queue: one transaction
        blocking.set()
        go.wait(10)
        conn.run("put_meta", ("first", b"1"))
        return "first"

    def failing(conn: Db) -> str:
        conn.run_many("strict_meta", [("twice", b"1"), ("twice", b"2")])
        conn.run_many("strict_meta", [("after-the-failure", b"3")])
        return "returned"

    def fine(conn: Db) -> bytes:
        conn.run_many("strict_meta", [("fine", b"4"), ("also", b"5")])
        conn.run_many("strict_meta", [("third", b"6")])
        return bytes(conn.run("get_meta", ("also",)).fetchone()[0])

    async def jobs() -> list[Any]:
        held = asyncio.ensure_future(db._write(first))
        await asyncio.to_thread(blocking.wait, 10)
        rest = [asyncio.ensure_future(db._write(job)) for job in (failing, fine)]
        await asyncio.sleep(0.05)
        go.set()
        return await asyncio.gather(held, *rest, return_exceptions=True)

    try:
        outcomes = run(jobs())
        assert outcomes[0] == "first"
        assert isinstance(outcomes[1], psycopg.errors.UniqueViolation)
        assert outcomes[2] == b"5"
        stored = run(db._read(lambda conn: sorted(r[0] for r in conn.raw("SELECT key FROM meta"))))
        assert set(stored) >= {"first", "fine", "also", "third"}
        assert not {"twice", "after-the-failure"} & set(stored)
    finally:
        run(db.close())


def test_statements_for_many_rows_do_what_one_a_row_does(postgres_server: PostgresServer) -> None:
    """Each NAME_many statement (Db.run_many, Db.affected) leaves the tables as NAME run for
    each row in turn does, and answers the same rows as changed, rows that repeat a key included."""
    url = postgres_server.new_database()
    dialect = postgres_dialect(url)
    db = Db(dialect.connect(), dialect)
    try:
        db.raw("BEGIN")
        dialect.migrate(db)
        db.raw("COMMIT")
        for task_id in ("a", "b", "c"):
            db.run("insert_new_task", (1, task_id, 1, 0, 0, 10**15, None, 0, 0, b"p", None, None, 0))
        ids = [row[0] for row in db.raw("SELECT id FROM tasks ORDER BY task_id")]
        db.raw("UPDATE tasks SET attempt_us = 7 WHERE task_id IN ('a', 'c')")
        rows_of = {
            "put_tombstone": [(1, "a", 10), (1, "b", 20), (1, "a", 30)],
            "lease_task": [(100, ids[0]), (200, ids[1])],
            "start_attempt": [(5, b"h", ids[0]), (6, None, ids[1])],
            "end_attempted": [(1, "a", 7, 40), (1, "c", 7, 50), (1, "b", 99, 60), (1, "a", 7, 70)],
            "count_answered": [(1, 5, 1, 0), (1, 6, 2, 1), (1, 5, 3, 1)],
        }
        db.raw("INSERT INTO task_tombstones VALUES (1, 'held', 50), (1, 'free', 5)")
        new = (1, 0, 0, 10**15, "x", 0, 0, b"q", None, b"o", 10)  # after queue and id
        affected_rows = {
            "insert_new_task": [
                (1, "a", *new),  # the queue has it
                (1, "d", *new),
                (1, "held", *new),  # tombstoned until 50, after 10
                (1, "free", *new),  # its tombstone ended at 5
                (1, "e", *new),
                (1, "d", *new),  # the same id twice in a call
                (2, "a", *new),  # another queue
            ],
            "acknowledge_task": [
                (1, "a", 0, 1, 0),
                (1, "b", 0, 1, 5),  # not its schedule time
                (1, "b", 0, 1, 0),
                (1, "a", 0, 1, 0),  # twice
                (1, "c", 0, 2, 0),  # not of that kind
                (1, "zz", 0, 1, 0),
            ],
        }
        assert {name.removesuffix("_many") for name in dialect.queries if name.endswith("_many")} == set(
            rows_of
        ) | set(affected_rows)

        def tables() -> list[list[tuple[Any, ...]]]:
            # Rows as they are but for the ids of tasks, which rolled back inserts still use up.
            columns = {
                "tasks": "queue, task_id, kind, schedule_us, create_us, expire_us, tag, "
                "dispatch_count, response_count, payload, attempts, options, attempt_us"
            }
            return [
                db.raw(f"SELECT {columns.get(table, '*')} FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("tasks", "task_tombstones", "attempt_seconds")
            ]

        for name, rows in rows_of.items():
            after = []
            for together in (True, False):
                db.raw("BEGIN")
                if together:
                    db.run_many(name, rows)
                else:
                    for row in rows:
                        db.run(name, row)
                after.append(tables())
                db.raw("ROLLBACK")
            assert after[0] == after[1], name
        for name, rows in affected_rows.items():
            after, answers = [], []
            for together in (True, False):
                db.raw("BEGIN")
                if together:
                    answers.append(db.affected(name, rows))
                else:
                    answers.append([db.run(name, row).rowcount > 0 for row in rows])
                after.append(tables())
                db.raw("ROLLBACK")
            assert after[0] == after[1], name
            assert answers[0] == answers[1], (name, answers)
            assert any(answers[0]) and not all(answers[0]), name
    finally:
        db.close()
