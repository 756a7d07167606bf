"""The jobs of the relational stores: every Store operation written once, as a job on a
``Db`` that the group-commit writer (``store/writer.py``) runs in its transaction, or a reader
runs on its own connection. Within one transaction a queue's row is read once (``Db.memo``),
until a statement that writes the queues table or a rolled-back job forgets it. The SQL of
each dialect lives in ``store/sql/<dialect>/``; the rules the jobs apply are the model's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tasksd.model import attempts
from tasksd.model.admission import NewTask, admit
from tasksd.model.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    Internal,
    QueueChanged,
    QueueNotFound,
    QueueTombstoned,
    TaskNotFound,
    TasksError,
    TaskTombstoned,
)
from tasksd.model.iam import Policy, next_etag
from tasksd.model.leases import LeaseRequest, attempts_exhausted, check_leasable, estimated_reply_bytes
from tasksd.model.names import LocationName, QueueName, TaskName
from tasksd.model.queue import Queue, QueueKind, QueueState, QueueStats
from tasksd.model.ratelimit import Bucket, take_lease_call
from tasksd.model.task import PullMessage, Task
from tasksd.store import codec
from tasksd.store.base import STATS_WINDOW_US, SWEEP_BATCH, Claim, Finished
from tasksd.store.writer import Db, GroupCommitDb

_EARLIEST_US = -(2**63)  # the least BIGINT: no bound


def _find_queue(conn: Db, name: QueueName) -> tuple[int, bytes, bytes | None] | None:
    """The queue's (id, config, policy) row, or None."""
    memo = conn.memo
    if memo is not None and name in memo:
        found: tuple[int, bytes, bytes | None] | None = memo[name]
        return found
    row: tuple[int, bytes, bytes | None] | None = conn.run(
        "get_queue", (name.project, name.location, name.queue)
    ).fetchone()
    if memo is not None:
        memo[name] = row
    return row


def _queue_row(conn: Db, name: QueueName) -> tuple[int, bytes, bytes | None]:
    row = _find_queue(conn, name)
    if row is None:
        raise QueueNotFound()
    return row


def _insert(
    conn: Db, queue_id: int, stored: Queue, news: list[tuple[NewTask, int]]
) -> list[Task | TasksError]:
    """Store the tasks ``stored`` admits for ``news`` (each with the time of its call), in
    order, with one statement: each answered as its task, or the error it alone failed with
    (InvalidArgument from ``admit``; AlreadyExists for an id the queue has or still holds)."""
    answers: list[Task | TasksError] = []
    rows: list[tuple[Any, ...]] = []
    admitted: list[int] = []
    task_ttl_us = codec.ttls_us(stored)[0]
    for new, now_us in news:
        try:
            task = admit(stored, new)
        except TasksError as error:
            answers.append(error)
            continue
        assert task.name is not None and task.schedule_time and task.create_time
        kind, payload, attempts, options = codec.encode_task_columns(task)
        create_us = codec.to_us(task.create_time)
        tag = task.payload.tag if isinstance(task.payload, PullMessage) else None
        schedule_us = codec.to_us(task.schedule_time)
        status = task.status
        rows.append(
            (
                queue_id,
                task.name.task,
                kind,
                schedule_us,
                create_us,
                create_us + task_ttl_us,
                tag,
                status.dispatch_count,
                status.response_count,
                payload,
                attempts,
                options,
                now_us,
            )
        )
        admitted.append(len(answers))
        answers.append(task)
    for index, inserted in zip(admitted, conn.affected("insert_new_task", rows), strict=True):
        if not inserted:
            answers[index] = AlreadyExists()
    return answers


class SqlStore(GroupCommitDb):
    """The Store protocol on a relational database of one dialect: the jobs, run by the
    writer and readers ``GroupCommitDb`` keeps."""

    # -- queues ------------------------------------------------------------------------

    async def find_queue(self, name: QueueName, now: datetime) -> Queue | None:
        def job(conn: Db) -> Queue | None:
            row = _find_queue(conn, name)
            if row is None:
                _check_queue_tombstone(conn, name, now)
                return None
            return codec.decode_queue(row[1])

        return await self._read(job)

    async def put_queue(self, name: QueueName, queue: Queue, now: datetime, replaces: Queue | None) -> Queue:
        def job(conn: Db) -> Queue:
            row = _find_queue(conn, name)
            if row is None:
                if replaces is not None:
                    raise QueueChanged()
                _check_queue_tombstone(conn, name, now)
                conn.run(
                    "insert_queue",
                    (
                        name.project,
                        name.location,
                        name.queue,
                        *codec.ttls_us(queue),
                        codec.encode_queue(queue),
                    ),
                )
                return queue
            old = codec.decode_queue(row[1])
            if old != replaces:
                raise QueueChanged()
            task_ttl_us, tombstone_ttl_us = codec.ttls_us(queue)
            conn.run("update_queue", (task_ttl_us, tombstone_ttl_us, codec.encode_queue(queue), row[0]))
            if queue.task_ttl != old.task_ttl:
                conn.run("retime_tasks", (task_ttl_us, row[0]))
            return queue

        return await self._write(job, checks_first=True)

    async def get_queue(self, name: QueueName) -> Queue:
        return await self._read(lambda conn: codec.decode_queue(_queue_row(conn, name)[1]))

    async def list_queues(self, parent: LocationName, after: str, limit: int) -> list[Queue]:
        def job(conn: Db) -> list[Queue]:
            rows = conn.run("list_queues", (parent.project, parent.location, after, limit))
            return [codec.decode_queue(row[0]) for row in rows]

        return await self._read(job)

    async def delete_queue(self, name: QueueName, now: datetime, reuse_delay: timedelta) -> None:
        def job(conn: Db) -> None:
            queue_id = _queue_row(conn, name)[0]
            conn.run("delete_all_tasks", (queue_id,))
            conn.run("delete_all_tombstones", (queue_id,))
            conn.run("delete_attempt_seconds", (queue_id,))
            conn.run("delete_queue", (queue_id,))
            if reuse_delay > timedelta(0):
                conn.run(
                    "put_queue_tombstone",
                    (name.project, name.location, name.queue, codec.to_us(now + reuse_delay)),
                )

        await self._write(job)

    async def purge_queue(self, name: QueueName, now: datetime) -> Queue:
        def job(conn: Db) -> Queue:
            queue_id, config, _ = _queue_row(conn, name)
            queue = replace(codec.decode_queue(config), purge_time=now)
            until = codec.tombstone_until_us(queue, now)
            conn.run("tombstone_all_tasks", (until, queue_id))
            conn.run("delete_all_tasks", (queue_id,))
            conn.run("update_queue", (*codec.ttls_us(queue), codec.encode_queue(queue), queue_id))
            return queue

        return await self._write(job)

    async def queue_stats(self, name: QueueName, now: datetime) -> QueueStats:
        """One read: the queue's row and one statement (see queue_stats in queries.sql).

        Everything comes from the database, so that every node answers alike: attempts in
        flight are the tasks claimed for an attempt (``attempt_us`` set); the last minute's
        attempts are those in flight dispatched within it plus those that ended within it
        (``attempt_seconds``, per second, so the window is exact to a second); the effective
        rate is the configured one times the factor the owner's congestion control applies,
        which the owner stores with every renewal of its ownership (so it lags by at most
        one heartbeat), and 0 for a paused, disabled or pull queue.
        """
        now_us = codec.to_us(now)
        minute_ago_us = now_us - STATS_WINDOW_US

        def job(conn: Db) -> QueueStats:
            queue_id, config, _ = _queue_row(conn, name)
            queue = codec.decode_queue(config)
            minute_ago_s = minute_ago_us // 1_000_000
            params = (
                minute_ago_us,
                queue_id,
                minute_ago_s,
                queue_id,
                minute_ago_s,
                queue_id,
                now_us,
                queue_id,
                now_us,
            )
            count, oldest, in_flight, recent, ended, failed, throttle = conn.run(
                "queue_stats", params
            ).fetchone()
            rate = 0.0
            if queue.kind is QueueKind.PUSH and queue.state is QueueState.RUNNING:
                factor = 1.0 if throttle is None else throttle
                rate = (queue.rate_limits.max_dispatches_per_second or 0.0) * factor
            return QueueStats(
                tasks_count=count,
                oldest_estimated_arrival_time=codec.from_us(oldest) if oldest is not None else None,
                executed_last_minute_count=int(recent) + int(ended),
                concurrent_dispatches_count=in_flight,
                effective_execution_rate=rate,
                failed_last_minute_count=int(failed),
            )

        return await self._read(job)

    async def locations_in_use(self, project: str) -> list[str]:
        def job(conn: Db) -> list[str]:
            return [row[0] for row in conn.run("locations_in_use", (project,))]

        return await self._read(job)

    # -- tasks -------------------------------------------------------------------------

    async def insert_task(self, queue: QueueName, new: NewTask, now: datetime) -> Task:
        now_us = codec.to_us(now)

        def many(conn: Db, news: list[tuple[NewTask, int]]) -> list[Task | TasksError]:
            # The CreateTask calls for the queue that wait together, stored with one statement.
            queue_id, config, _ = _queue_row(conn, queue)
            return _insert(conn, queue_id, codec.decode_queue(config), news)

        created: Task = await self._write_grouped(("insert_task", queue), (new, now_us), many)
        return created

    async def insert_tasks(
        self, queue: QueueName, news: list[NewTask], now: datetime
    ) -> list[Task | TasksError]:
        now_us = codec.to_us(now)

        def job(conn: Db) -> list[Task | TasksError]:
            queue_id, config, _ = _queue_row(conn, queue)
            return _insert(conn, queue_id, codec.decode_queue(config), [(new, now_us) for new in news])

        return await self._write(job, checks_first=True)

    async def get_task(self, name: TaskName, now: datetime) -> Task:
        def job(conn: Db) -> Task:
            queue_id = _queue_row(conn, name.queue_name)[0]
            row = conn.run("get_task", (queue_id, name.task, codec.to_us(now))).fetchone()
            if row is None:
                raise _missing_task(conn, queue_id, name, now)
            return codec.decode_task(name.queue_name, *row)

        return await self._read(job)

    async def list_tasks(self, queue: QueueName, after: str, limit: int, now: datetime) -> list[Task]:
        def job(conn: Db) -> list[Task]:
            queue_id = _queue_row(conn, queue)[0]
            rows = conn.run("list_tasks", (queue_id, after, codec.to_us(now), limit))
            return [codec.decode_task(queue, *row) for row in rows]

        return await self._read(job)

    async def delete_task(self, name: TaskName, now: datetime) -> None:
        def job(conn: Db) -> None:
            queue_id, config, _ = _queue_row(conn, name.queue_name)
            deleted = conn.run("delete_task", (queue_id, name.task, codec.to_us(now)))
            if deleted.rowcount == 0:
                raise _missing_task(conn, queue_id, name, now)
            until = codec.tombstone_until_us(codec.decode_queue(config), now)
            conn.run("put_tombstone", (queue_id, name.task, until))

        await self._write(job, checks_first=True)

    # -- leases ------------------------------------------------------------------------

    async def lease_tasks(self, queue: QueueName, lease: LeaseRequest, now: datetime) -> list[Task]:
        now_us, until_us = codec.to_us(now), codec.to_us(lease.until)

        def job(conn: Db) -> list[Task]:
            queue_id, config, _ = _queue_row(conn, queue)
            stored = codec.decode_queue(config)
            check_leasable(stored)
            if lease.calls_per_second > 0:
                held = conn.run("get_lease_bucket", (queue_id,)).fetchone()
                bucket = Bucket(float(held[0]), codec.from_us(held[1])) if held is not None else None
                bucket = take_lease_call(bucket, now, rate=lease.calls_per_second, queue=queue)
                conn.run("put_lease_bucket", (queue_id, bucket.tokens, codec.to_us(bucket.updated)))
            max_attempts = stored.retry_config.max_attempts or -1
            tombstone_until = codec.tombstone_until_us(stored, now)
            tag = lease.tag
            if lease.oldest_tag:
                oldest = conn.run("oldest_due_tag", (queue_id, now_us, now_us)).fetchone()
                if oldest is None:
                    return []
                tag = oldest[0]
            leased: list[Task] = []
            size = 0
            while len(leased) < lease.max_tasks:
                wanted = lease.max_tasks - len(leased)
                if tag is None:
                    rows = conn.run("due_tasks", (queue_id, now_us, now_us, wanted)).fetchall()
                else:
                    rows = conn.run("due_tasks_with_tag", (queue_id, tag, now_us, now_us, wanted)).fetchall()
                exhausted = False
                taken = []
                for row in rows:
                    row_id, task_id, dispatch_count, payload = row[0], row[1], row[5], row[7]
                    limit = codec.max_attempts(row[9], max_attempts) if row[9] else max_attempts
                    if attempts_exhausted(dispatch_count, limit):
                        conn.run("delete_task_by_id", (row_id,))
                        conn.run("put_tombstone", (queue_id, task_id, tombstone_until))
                        exhausted = True
                        continue
                    size += estimated_reply_bytes(task_id, payload)
                    if size > lease.max_bytes:
                        break
                    taken.append(row)
                # Before any new select, so that nothing is taken twice; the tasks are decoded
                # while the database updates their rows.
                conn.run_many("lease_task", [(until_us, row[0]) for row in taken])
                for row in taken:
                    task = codec.decode_task(queue, *row[1:])
                    task.schedule_time = lease.until
                    task.status.dispatch_count += 1
                    leased.append(task)
                if size > lease.max_bytes or not exhausted or len(rows) < wanted:
                    break
            return leased

        return await self._write(job, checks_first=True)

    async def acknowledge_tasks(
        self, held: list[tuple[TaskName, datetime]], now: datetime
    ) -> list[TasksError | None]:
        now_us = codec.to_us(now)

        def job(conn: Db) -> list[TasksError | None]:
            outcomes: list[TasksError | None] = [None] * len(held)
            acks: list[tuple[Any, ...]] = []
            found: list[int] = []  # the index in ``held`` of each of ``acks``
            until: dict[int, int] = {}  # queue id → when its new tombstones end
            for index, (name, schedule_time) in enumerate(held):
                try:
                    queue_id, config, _ = _queue_row(conn, name.queue_name)
                except TasksError as error:
                    outcomes[index] = error
                    continue
                if queue_id not in until:
                    until[queue_id] = codec.tombstone_until_us(codec.decode_queue(config), now)
                acks.append((queue_id, name.task, now_us, codec.KIND_PULL, codec.to_us(schedule_time)))
                found.append(index)
            done = conn.affected("acknowledge_task", acks)
            # Tombstones first: an acknowledgement repeated in the call finds its task's.
            acked = [(a[0], a[1], until[a[0]]) for a, ok in zip(acks, done, strict=True) if ok]
            conn.run_many("put_tombstone", acked)
            for index, ack, ok in zip(found, acks, done, strict=True):
                if not ok:
                    name, schedule_time = held[index]
                    try:
                        _held_task(conn, ack[0], name, schedule_time, now)  # raises why not
                        raise Internal(f"{name.path} could not be acknowledged.")
                    except TasksError as error:
                        outcomes[index] = error
            return outcomes

        return await self._write(job, checks_first=True)

    async def reschedule_leased_task(
        self, name: TaskName, schedule_time: datetime, new_schedule_time: datetime, now: datetime
    ) -> Task:
        def job(conn: Db) -> Task:
            queue_id = _queue_row(conn, name.queue_name)[0]
            row = _held_task(conn, queue_id, name, schedule_time, now)
            conn.run("reschedule_task", (codec.to_us(new_schedule_time), row[0]))
            task = codec.decode_task(name.queue_name, *row[1:])
            task.schedule_time = new_schedule_time
            return task

        return await self._write(job, checks_first=True)

    # -- push dispatch -----------------------------------------------------------------

    async def claim_tasks(self, queue: QueueName, limit: int, now: datetime) -> Claim:
        now_us = codec.to_us(now)

        def job(conn: Db) -> Claim:
            row = _find_queue(conn, queue)
            if row is None:
                return Claim(None, [], None)
            queue_id, stored = row[0], codec.decode_queue(row[1])
            if stored.kind is not QueueKind.PUSH or stored.state is not QueueState.RUNNING:
                return Claim(stored, [], None)
            claimed = []
            after = _EARLIEST_US
            if limit > 0:
                due = conn.run("due_push_tasks", (queue_id, now_us, now_us, limit)).fetchall()
                started = [_start(queue, found, now) for found in due]
                conn.run_many("start_attempt", [params for _, params in started])
                claimed = [task for task, _ in started]
                # Tasks come oldest first: every one earlier than the last claimed was claimed,
                # and if fewer came than asked for, every one due (PostgreSQL skips those
                # another transaction holds, which is changing them).
                after = due[-1][3] if len(due) == limit else now_us + 1
            next_due = conn.run("next_due_us", (queue_id, after, now_us)).fetchone()[0]
            return Claim(stored, claimed, codec.from_us(next_due) if next_due is not None else None)

        return await self._write(job, checks_first=True)

    async def start_attempt(self, name: TaskName, now: datetime) -> tuple[Queue, Task]:
        def job(conn: Db) -> tuple[Queue, Task]:
            queue_id, config, _ = _queue_row(conn, name.queue_name)
            found = conn.run("held_task", (queue_id, name.task, codec.to_us(now))).fetchone()
            if found is None:
                raise _missing_task(conn, queue_id, name, now)
            if found[2] == codec.KIND_PULL:
                raise FailedPrecondition("RunTask cannot be called on a pull task.")
            task, params = _start(name.queue_name, found, now)
            conn.run("start_attempt", params)
            return codec.decode_queue(config), task

        return await self._write(job, checks_first=True)

    async def finish_attempts(self, finished: list[Finished], now: datetime) -> None:
        def job(conn: Db) -> None:
            done: list[tuple[int, str, int, int]] = []  # (queue id, task id, attempt, tombstone end)
            # (queue id, tombstone end) of each queue, or None when it is gone; keyed by the
            # name's parts, which the batch's tasks share with no QueueName made per task.
            queues: dict[tuple[str, str, str], tuple[int, int] | None] = {}
            # Attempts that ended, per (queue id, second of the end), for the queue statistics;
            # counted whatever became of their task meanwhile: they were dispatched.
            ended: dict[tuple[int, int], tuple[int, int]] = {}  # → (ended, failed)
            for one in finished:
                name = one.name
                key = (name.project, name.location, name.queue)
                if key not in queues:
                    row = _find_queue(conn, name.queue_name)
                    queues[key] = row and (row[0], codec.tombstone_until_us(codec.decode_queue(row[1]), now))
                found = queues[key]
                if found is None:
                    continue
                queue_id, until = found
                started_us = codec.to_us(one.started)
                second = (queue_id, codec.to_us(one.result.response_time) // 1_000_000)
                answered, failed = ended.get(second, (0, 0))
                ok = 200 <= one.result.http_status < 300
                ended[second] = (answered + 1, failed + (not ok))
                if one.result.next_schedule_time is None:
                    done.append((queue_id, name.task, started_us, until))
                else:
                    _retry(conn, queue_id, one, started_us)
            # Only a task still in that attempt gets a tombstone and is deleted.
            if "end_attempted" in conn.queries:  # both in one statement
                conn.run_many("end_attempted", done)
            else:
                conn.run_many("tombstone_attempted", [(until, *attempt) for *attempt, until in done])
                conn.run_many("delete_attempted", [tuple(attempt) for *attempt, _ in done])
            conn.run_many("count_answered", [(*key, *counts) for key, counts in ended.items()])

        await self._write(job, checks_first=True)

    async def own_queue(
        self, queue: QueueName, node: str, now: datetime, ttl: timedelta, throttle: float = 1.0
    ) -> bool:
        now_us = codec.to_us(now)

        def job(conn: Db) -> bool:
            row = _find_queue(conn, queue)
            if row is None:
                return False
            owner = conn.run("get_owner", (row[0],)).fetchone()
            if owner is not None and owner[0] != node and owner[1] > now_us:
                return False  # a live node has it
            if owner is None or owner[0] != node:
                conn.run("recover_queue_attempts", (row[0],))
            try:
                conn.run("put_owner", (row[0], node, now_us + codec.duration_us(ttl), throttle))
            except conn.unique_violation:
                return False  # another node took it in the same instant
            return True

        return await self._write(job)

    async def release_queue(self, queue: QueueName, node: str) -> None:
        def job(conn: Db) -> None:
            row = _find_queue(conn, queue)
            if row is not None:
                conn.run("release_owner", (row[0], node))

        await self._write(job)

    async def queue_configs(self) -> list[Queue]:
        return await self._read(lambda conn: [codec.decode_queue(r[0]) for r in conn.run("queue_configs")])

    async def get_or_add_meta(self, key: str, make: Callable[[], bytes]) -> bytes:
        def job(conn: Db) -> bytes:
            found = conn.run("get_meta", (key,)).fetchone()
            if found is None:
                conn.run("add_meta", (key, make()))  # ignored when another node added one first
                found = conn.run("get_meta", (key,)).fetchone()
            return bytes(found[0])

        return await self._write(job)

    async def get_meta(self, key: str) -> bytes | None:
        found = await self._read(lambda conn: conn.run("get_meta", (key,)).fetchone())
        return bytes(found[0]) if found is not None else None

    async def put_meta(self, key: str, value: bytes) -> None:
        def job(conn: Db) -> None:
            conn.run("put_meta", (key, value))

        await self._write(job, checks_first=True)

    # -- long-running operations -------------------------------------------------------

    async def begin_operation(self, name: str, body: bytes, now: datetime, keep: timedelta) -> bytes | None:
        now_us = codec.to_us(now)

        def job(conn: Db) -> bytes | None:
            if conn.run("begin_operation", (name, body, codec.to_us(now + keep), now_us)).rowcount:
                return None
            return bytes(conn.run("get_operation", (name, now_us)).fetchone()[0])

        return await self._write(job, checks_first=True)

    async def end_operation(self, name: str, body: bytes | None, now: datetime, keep: timedelta) -> None:
        def job(conn: Db) -> None:
            if body is None:
                conn.run("forget_operation", (name,))
            else:
                conn.run("end_operation", (body, codec.to_us(now + keep), name))

        await self._write(job, checks_first=True)

    async def get_operation(self, name: str, now: datetime) -> bytes | None:
        found = await self._read(lambda conn: conn.run("get_operation", (name, codec.to_us(now))).fetchone())
        return bytes(found[0]) if found is not None else None

    # -- IAM ---------------------------------------------------------------------------

    async def get_policy(self, name: QueueName) -> Policy:
        return await self._read(lambda conn: codec.decode_policy(_queue_row(conn, name)[2]))

    async def set_policy(self, name: QueueName, policy: Policy) -> Policy:
        def job(conn: Db) -> Policy:
            queue_id, _, stored = _queue_row(conn, name)
            current = codec.decode_policy(stored)
            # A queue without a policy shows the zero etag (see service.iam.present).
            if policy.etag and policy.etag != (current.etag or bytes(8)):
                raise Aborted(
                    "There were concurrent policy changes. Please retry the whole "
                    "read-modify-write with exponential backoff."
                )
            new = replace(policy, etag=next_etag(current.etag))
            conn.run("set_policy", (codec.encode_policy(new), queue_id))
            return new

        return await self._write(job)

    # -- housekeeping ------------------------------------------------------------------

    async def sweep(self, now: datetime) -> int:
        now_us = codec.to_us(now)

        def job(conn: Db) -> int:
            removed: int = conn.run("sweep_tasks", (now_us, SWEEP_BATCH)).rowcount
            removed += conn.run("sweep_tombstones", (now_us, SWEEP_BATCH)).rowcount
            conn.run("sweep_queue_tombstones", (now_us,))
            conn.run("sweep_operations", (now_us,))
            conn.run("sweep_attempt_seconds", ((now_us - 2 * STATS_WINDOW_US) // 1_000_000,))
            return removed

        return await self._write(job)


def _check_queue_tombstone(conn: Db, name: QueueName, now: datetime) -> None:
    """Raises QueueTombstoned while a deleted queue's name is reserved."""
    held = conn.run("get_queue_tombstone", (name.project, name.location, name.queue)).fetchone()
    if held is not None and held[0] > codec.to_us(now):
        raise QueueTombstoned()


def _missing_task(conn: Db, queue_id: int, name: TaskName, now: datetime) -> Exception:
    held = conn.run("get_tombstone", (queue_id, name.task)).fetchone()
    if held is not None and held[0] > codec.to_us(now):
        return TaskTombstoned()
    return TaskNotFound()


def _held_task(
    conn: Db, queue_id: int, name: TaskName, schedule_time: datetime, now: datetime
) -> tuple[Any, ...]:
    """The row of a pull task whose lease the caller proves to hold with its schedule time."""
    row = conn.run("held_task", (queue_id, name.task, codec.to_us(now))).fetchone()
    if row is None:
        raise _missing_task(conn, queue_id, name, now)
    if row[2] != codec.KIND_PULL:
        raise FailedPrecondition(f"{name.path} is not a pull task: only tasks of pull queues are leased.")
    if row[3] != codec.to_us(schedule_time):
        raise FailedPrecondition(
            f"The schedule_time given ({schedule_time.isoformat()}) is not the task's current one "
            f"({codec.from_us(row[3]).isoformat()}): the caller does not hold the task's lease."
        )
    return tuple(row)


def _start(queue: QueueName, row: Any, now: datetime) -> tuple[Task, tuple[Any, ...]]:
    """The task in ``row`` (due_push_tasks columns) with an attempt started at ``now``, and
    the start_attempt parameters that record it."""
    task = codec.decode_task(queue, *row[1:])
    assert task.schedule_time is not None
    task.status = attempts.start_attempt(task.status, task.schedule_time, now)
    return task, (codec.to_us(now), codec.encode_attempts(task.status), row[0])


def _retry(conn: Db, queue_id: int, finished: Finished, started_us: int) -> None:
    """Record a failed attempt that is to be retried at ``result.next_schedule_time``."""
    name, result = finished.name, finished.result
    assert result.next_schedule_time is not None
    found = conn.run("attempt_row", (queue_id, name.task, started_us)).fetchone()
    if found is None:
        return  # deleted, purged or re-run meanwhile: this attempt no longer counts
    status = attempts.record_result(codec.decode_task(name.queue_name, *found[1:]).status, result)
    next_us = codec.to_us(result.next_schedule_time)
    conn.run("retry_task", (next_us, status.response_count, codec.encode_attempts(status), found[0]))
