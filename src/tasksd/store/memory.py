"""The reference store: the whole Store protocol in plain Python, in one process's memory.

It keeps what the relational stores keep, row for row (a task's columns encoded by
``store.codec``, tombstones, TTLs, leases, attempts in flight, owners, per-second attempt
counts, operations, meta values, policies), and applies the same rules from the model and
engine, so the contract suite (tests/unit/test_store_contract.py) holds it to the same
answers. Every operation runs to its end without awaiting, so each is atomic, and calls made
together run in the order they were made, as the SQL stores' group commit runs them.
Nothing outlives the process; ``open_store("memory://")`` opens one.

LIMITATIONS: one process only (no ownership is shared with other nodes); memory grows with
the backlog, so it is no store for production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tasksd.model import attempts
from tasksd.model.admission import NewTask, admit
from tasksd.model.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
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

_QueueKey = tuple[str, str, str]


@dataclass(slots=True)
class _Queue:
    id: int
    config: bytes
    policy: bytes | None = None

    @property
    def queue(self) -> Queue:
        return codec.decode_queue(self.config)


@dataclass(slots=True)
class _Task:
    """A task as the ``tasks`` table holds it."""

    id: int
    task_id: str
    kind: int
    schedule_us: int
    create_us: int
    expire_us: int
    tag: str | None
    dispatch_count: int
    response_count: int
    payload: bytes
    attempts: bytes | None
    options: bytes | None
    attempt_us: int | None = None

    def task(self, queue: QueueName) -> Task:
        return codec.decode_task(
            queue,
            self.task_id,
            self.kind,
            self.schedule_us,
            self.create_us,
            self.dispatch_count,
            self.response_count,
            self.payload,
            self.attempts,
            self.options,
        )


@dataclass(slots=True)
class _Owner:
    node: str
    expire_us: int
    throttle: float


class MemoryStore:
    """The Store protocol in plain Python (see the module docstring)."""

    def __init__(self) -> None:
        self._ids = 0
        self._queues: dict[_QueueKey, _Queue] = {}
        self._queue_tombstones: dict[_QueueKey, int] = {}
        self._tasks: dict[int, dict[str, _Task]] = {}  # queue id → task id → task
        self._tombstones: dict[int, dict[str, int]] = {}  # queue id → task id → until
        self._attempt_seconds: dict[tuple[int, int], list[int]] = {}  # → [answered, failed]
        self._owners: dict[int, _Owner] = {}
        self._lease_buckets: dict[int, Bucket] = {}
        self._meta: dict[str, bytes] = {}
        self._operations: dict[str, tuple[bytes, int]] = {}  # name → (body, until)

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # -- queues ------------------------------------------------------------------------

    def _find(self, name: QueueName) -> _Queue | None:
        return self._queues.get((name.project, name.location, name.queue))

    def _row(self, name: QueueName) -> _Queue:
        found = self._find(name)
        if found is None:
            raise QueueNotFound()
        return found

    def _check_tombstone(self, key: _QueueKey, now: datetime) -> None:
        held = self._queue_tombstones.get(key)
        if held is not None and held > codec.to_us(now):
            raise QueueTombstoned()

    async def find_queue(self, name: QueueName, now: datetime) -> Queue | None:
        key = (name.project, name.location, name.queue)
        row = self._queues.get(key)
        if row is None:
            self._check_tombstone(key, now)
            return None
        return row.queue

    async def put_queue(self, name: QueueName, queue: Queue, now: datetime, replaces: Queue | None) -> Queue:
        key = (name.project, name.location, name.queue)
        row = self._queues.get(key)
        if row is None:
            if replaces is not None:
                raise QueueChanged()
            self._check_tombstone(key, now)
            codec.ttls_us(queue)
            queue_id = self._next_id()
            self._queues[key] = _Queue(queue_id, codec.encode_queue(queue))
            self._tasks[queue_id] = {}
            self._tombstones[queue_id] = {}
            return queue
        old = row.queue
        if old != replaces:
            raise QueueChanged()
        task_ttl_us, _ = codec.ttls_us(queue)
        row.config = codec.encode_queue(queue)
        if queue.task_ttl != old.task_ttl:
            for task in self._tasks[row.id].values():
                task.expire_us = task.create_us + task_ttl_us
        return queue

    async def get_queue(self, name: QueueName) -> Queue:
        return self._row(name).queue

    async def list_queues(self, parent: LocationName, after: str, limit: int) -> list[Queue]:
        found = sorted(
            (key for key in self._queues if key[:2] == (parent.project, parent.location) and key[2] > after),
            key=lambda key: key[2],
        )
        return [self._queues[key].queue for key in found[:limit]]

    async def delete_queue(self, name: QueueName, now: datetime, reuse_delay: timedelta) -> None:
        key = (name.project, name.location, name.queue)
        row = self._row(name)
        del self._tasks[row.id], self._tombstones[row.id], self._queues[key]
        for second in [s for s in self._attempt_seconds if s[0] == row.id]:
            del self._attempt_seconds[second]
        if reuse_delay > timedelta(0):
            self._queue_tombstones[key] = codec.to_us(now + reuse_delay)

    async def purge_queue(self, name: QueueName, now: datetime) -> Queue:
        row = self._row(name)
        queue = replace(row.queue, purge_time=now)
        until = codec.tombstone_until_us(queue, now)
        tombstones = self._tombstones[row.id]
        for task_id in self._tasks[row.id]:
            tombstones[task_id] = until
        self._tasks[row.id] = {}
        row.config = codec.encode_queue(queue)
        return queue

    async def queue_stats(self, name: QueueName, now: datetime) -> QueueStats:
        row = self._row(name)
        queue = row.queue
        now_us = codec.to_us(now)
        minute_ago_us = now_us - STATS_WINDOW_US
        minute_ago_s = minute_ago_us // 1_000_000
        live = [t for t in self._tasks[row.id].values() if t.expire_us > now_us]
        in_flight = [t for t in live if t.attempt_us is not None]
        recent = sum(1 for t in in_flight if t.attempt_us is not None and t.attempt_us > minute_ago_us)
        counts = [
            c for (q, second), c in self._attempt_seconds.items() if q == row.id and second > minute_ago_s
        ]
        owner = self._owners.get(row.id)
        rate = 0.0
        if queue.kind is QueueKind.PUSH and queue.state is QueueState.RUNNING:
            factor = owner.throttle if owner is not None and owner.expire_us > now_us else 1.0
            rate = (queue.rate_limits.max_dispatches_per_second or 0.0) * factor
        oldest = min((t.schedule_us for t in live), default=None)
        return QueueStats(
            tasks_count=len(live),
            oldest_estimated_arrival_time=codec.from_us(oldest) if oldest is not None else None,
            executed_last_minute_count=recent + sum(answered for answered, _ in counts),
            concurrent_dispatches_count=len(in_flight),
            effective_execution_rate=rate,
            failed_last_minute_count=sum(failed for _, failed in counts),
        )

    async def locations_in_use(self, project: str) -> list[str]:
        return sorted({location for p, location, _ in self._queues if p == project})

    # -- tasks -------------------------------------------------------------------------

    async def insert_task(self, queue: QueueName, new: NewTask, now: datetime) -> Task:
        return self._insert(self._row(queue), new, now)

    async def insert_tasks(
        self, queue: QueueName, news: list[NewTask], now: datetime
    ) -> list[Task | TasksError]:
        row = self._row(queue)
        answers: list[Task | TasksError] = []
        for new in news:
            try:
                answers.append(self._insert(row, new, now))
            except TasksError as error:
                answers.append(error)
        return answers

    def _insert(self, row: _Queue, new: NewTask, now: datetime) -> Task:
        stored = row.queue
        task = admit(stored, new)
        assert task.name is not None and task.schedule_time and task.create_time
        held = self._tombstones[row.id].get(task.name.task)
        tasks = self._tasks[row.id]
        if (held is not None and held > codec.to_us(now)) or task.name.task in tasks:
            raise AlreadyExists()
        kind, payload, tried, options = codec.encode_task_columns(task)
        create_us = codec.to_us(task.create_time)
        tasks[task.name.task] = _Task(
            self._next_id(),
            task.name.task,
            kind,
            codec.to_us(task.schedule_time),
            create_us,
            create_us + codec.ttls_us(stored)[0],
            task.payload.tag if isinstance(task.payload, PullMessage) else None,
            task.status.dispatch_count,
            task.status.response_count,
            payload,
            tried,
            options,
        )
        return task

    def _live(self, queue_id: int, name: TaskName, now: datetime) -> _Task:
        """The live task, or raises why it is not there (TaskTombstoned, TaskNotFound)."""
        found = self._tasks[queue_id].get(name.task)
        now_us = codec.to_us(now)
        if found is not None and found.expire_us > now_us:
            return found
        held = self._tombstones[queue_id].get(name.task)
        if held is not None and held > now_us:
            raise TaskTombstoned()
        raise TaskNotFound()

    async def get_task(self, name: TaskName, now: datetime) -> Task:
        row = self._row(name.queue_name)
        return self._live(row.id, name, now).task(name.queue_name)

    async def list_tasks(self, queue: QueueName, after: str, limit: int, now: datetime) -> list[Task]:
        row = self._row(queue)
        now_us = codec.to_us(now)
        found = sorted(
            (t for t in self._tasks[row.id].values() if t.task_id > after and t.expire_us > now_us),
            key=lambda t: t.task_id,
        )
        return [t.task(queue) for t in found[:limit]]

    async def delete_task(self, name: TaskName, now: datetime) -> None:
        row = self._row(name.queue_name)
        self._live(row.id, name, now)
        del self._tasks[row.id][name.task]
        self._tombstones[row.id][name.task] = codec.tombstone_until_us(row.queue, now)

    # -- leases ------------------------------------------------------------------------

    def _due(
        self, queue_id: int, now_us: int, tag: str | None = None, *, claimable: bool = False
    ) -> list[_Task]:
        """Due live tasks, oldest schedule time first (then oldest row)."""
        due = [
            t
            for t in self._tasks[queue_id].values()
            if t.schedule_us <= now_us
            and t.expire_us > now_us
            and (tag is None or t.tag == tag)
            and not (claimable and t.attempt_us is not None)
        ]
        due.sort(key=lambda t: (t.schedule_us, t.id))
        return due

    async def lease_tasks(self, queue: QueueName, lease: LeaseRequest, now: datetime) -> list[Task]:
        now_us, until_us = codec.to_us(now), codec.to_us(lease.until)
        row = self._row(queue)
        stored = row.queue
        check_leasable(stored)
        if lease.calls_per_second > 0:
            bucket = self._lease_buckets.get(row.id)
            self._lease_buckets[row.id] = take_lease_call(
                bucket, now, rate=lease.calls_per_second, queue=queue
            )
        max_attempts = stored.retry_config.max_attempts or -1
        tombstone_until = codec.tombstone_until_us(stored, now)
        tag = lease.tag
        if lease.oldest_tag:
            oldest = self._due(row.id, now_us)
            if not oldest:
                return []
            tag = oldest[0].tag
        leased: list[Task] = []
        size = 0
        tasks = self._tasks[row.id]
        for found in self._due(row.id, now_us, tag):
            if len(leased) >= lease.max_tasks:
                break
            limit = codec.max_attempts(found.options, max_attempts) if found.options else max_attempts
            if attempts_exhausted(found.dispatch_count, limit):
                del tasks[found.task_id]
                self._tombstones[row.id][found.task_id] = tombstone_until
                continue
            size += estimated_reply_bytes(found.task_id, found.payload)
            if size > lease.max_bytes:
                break
            task = found.task(queue)
            found.schedule_us = until_us
            found.dispatch_count += 1
            task.schedule_time = lease.until
            task.status.dispatch_count += 1
            leased.append(task)
        return leased

    def _held(self, name: TaskName, schedule_time: datetime, now: datetime) -> tuple[_Queue, _Task]:
        """A pull task whose lease the caller proves to hold with its schedule time."""
        row = self._row(name.queue_name)
        found = self._live(row.id, name, now)
        if found.kind != codec.KIND_PULL:
            raise FailedPrecondition(f"{name.path} is not a pull task: only tasks of pull queues are leased.")
        if found.schedule_us != codec.to_us(schedule_time):
            raise FailedPrecondition(
                f"The schedule_time given ({schedule_time.isoformat()}) is not the task's current one "
                f"({codec.from_us(found.schedule_us).isoformat()}): the caller does not hold the task's "
                "lease."
            )
        return row, found

    async def acknowledge_tasks(
        self, held: list[tuple[TaskName, datetime]], now: datetime
    ) -> list[TasksError | None]:
        outcomes: list[TasksError | None] = []
        for name, schedule_time in held:
            try:
                row, found = self._held(name, schedule_time, now)
            except TasksError as error:
                outcomes.append(error)
                continue
            del self._tasks[row.id][found.task_id]
            self._tombstones[row.id][found.task_id] = codec.tombstone_until_us(row.queue, now)
            outcomes.append(None)
        return outcomes

    async def reschedule_leased_task(
        self, name: TaskName, schedule_time: datetime, new_schedule_time: datetime, now: datetime
    ) -> Task:
        _, found = self._held(name, schedule_time, now)
        task = found.task(name.queue_name)
        found.schedule_us = codec.to_us(new_schedule_time)
        task.schedule_time = new_schedule_time
        return task

    # -- push dispatch -----------------------------------------------------------------

    @staticmethod
    def _start(queue: QueueName, found: _Task, now: datetime) -> Task:
        task = found.task(queue)
        assert task.schedule_time is not None
        task.status = attempts.start_attempt(task.status, task.schedule_time, now)
        found.attempt_us = codec.to_us(now)
        found.dispatch_count += 1
        found.attempts = codec.encode_attempts(task.status)
        return task

    async def claim_tasks(self, queue: QueueName, limit: int, now: datetime) -> Claim:
        row = self._find(queue)
        if row is None:
            return Claim(None, [], None)
        stored = row.queue
        if stored.kind is not QueueKind.PUSH or stored.state is not QueueState.RUNNING:
            return Claim(stored, [], None)
        now_us = codec.to_us(now)
        claimed = []
        if limit > 0:
            claimed = [self._start(queue, t, now) for t in self._due(row.id, now_us, claimable=True)[:limit]]
        waiting = (
            t.schedule_us
            for t in self._tasks[row.id].values()
            if t.expire_us > now_us and t.attempt_us is None
        )
        next_due = min(waiting, default=None)
        return Claim(stored, claimed, codec.from_us(next_due) if next_due is not None else None)

    async def start_attempt(self, name: TaskName, now: datetime) -> tuple[Queue, Task]:
        row = self._row(name.queue_name)
        found = self._live(row.id, name, now)
        if found.kind == codec.KIND_PULL:
            raise FailedPrecondition("RunTask cannot be called on a pull task.")
        return row.queue, self._start(name.queue_name, found, now)

    async def finish_attempts(self, finished: list[Finished], now: datetime) -> None:
        for one in finished:
            name, result = one.name, one.result
            row = self._find(name.queue_name)
            if row is None:
                continue
            second = (row.id, codec.to_us(result.response_time) // 1_000_000)
            counts = self._attempt_seconds.setdefault(second, [0, 0])
            counts[0] += 1
            counts[1] += not 200 <= result.http_status < 300
            found = self._tasks[row.id].get(name.task)
            if found is None or found.attempt_us != codec.to_us(one.started):
                continue  # deleted, purged or re-run meanwhile: this attempt no longer counts
            if result.next_schedule_time is None:
                del self._tasks[row.id][name.task]
                self._tombstones[row.id][name.task] = codec.tombstone_until_us(row.queue, now)
                continue
            status = attempts.record_result(found.task(name.queue_name).status, result)
            found.schedule_us = codec.to_us(result.next_schedule_time)
            found.attempt_us = None
            found.response_count = status.response_count
            found.attempts = codec.encode_attempts(status)

    async def own_queue(
        self, queue: QueueName, node: str, now: datetime, ttl: timedelta, throttle: float = 1.0
    ) -> bool:
        row = self._find(queue)
        if row is None:
            return False
        now_us = codec.to_us(now)
        owner = self._owners.get(row.id)
        if owner is not None and owner.node != node and owner.expire_us > now_us:
            return False  # a live node has it
        if owner is None or owner.node != node:
            for task in self._tasks[row.id].values():
                task.attempt_us = None
        self._owners[row.id] = _Owner(node, now_us + codec.duration_us(ttl), throttle)
        return True

    async def release_queue(self, queue: QueueName, node: str) -> None:
        row = self._find(queue)
        if row is not None and (owner := self._owners.get(row.id)) is not None and owner.node == node:
            del self._owners[row.id]

    async def queue_configs(self) -> list[Queue]:
        return [row.queue for row in self._queues.values()]

    # -- meta --------------------------------------------------------------------------

    async def get_or_add_meta(self, key: str, make: Callable[[], bytes]) -> bytes:
        if key not in self._meta:
            self._meta[key] = make()
        return self._meta[key]

    async def get_meta(self, key: str) -> bytes | None:
        return self._meta.get(key)

    async def put_meta(self, key: str, value: bytes) -> None:
        self._meta[key] = value

    # -- long-running operations -------------------------------------------------------

    async def begin_operation(self, name: str, body: bytes, now: datetime, keep: timedelta) -> bytes | None:
        kept = self._operations.get(name)
        if kept is not None and kept[1] > codec.to_us(now):
            return kept[0]
        self._operations[name] = (body, codec.to_us(now + keep))
        return None

    async def end_operation(self, name: str, body: bytes | None, now: datetime, keep: timedelta) -> None:
        if body is None:
            self._operations.pop(name, None)
        elif name in self._operations:
            self._operations[name] = (body, codec.to_us(now + keep))

    async def get_operation(self, name: str, now: datetime) -> bytes | None:
        kept = self._operations.get(name)
        return kept[0] if kept is not None and kept[1] > codec.to_us(now) else None

    # -- IAM ---------------------------------------------------------------------------

    async def get_policy(self, name: QueueName) -> Policy:
        return codec.decode_policy(self._row(name).policy)

    async def set_policy(self, name: QueueName, policy: Policy) -> Policy:
        row = self._row(name)
        current = codec.decode_policy(row.policy)
        # A queue without a policy shows the zero etag (see service.iam.present).
        if policy.etag and policy.etag != (current.etag or bytes(8)):
            raise Aborted(
                "There were concurrent policy changes. Please retry the whole "
                "read-modify-write with exponential backoff."
            )
        new = replace(policy, etag=next_etag(current.etag))
        row.policy = codec.encode_policy(new)
        return new

    # -- housekeeping ------------------------------------------------------------------

    async def sweep(self, now: datetime) -> int:
        now_us = codec.to_us(now)
        tasks = [
            (q, t) for q, ts in self._tasks.items() for t, task in ts.items() if task.expire_us <= now_us
        ]
        for queue_id, task_id in tasks[:SWEEP_BATCH]:
            del self._tasks[queue_id][task_id]
        ends = [(q, t) for q, ts in self._tombstones.items() for t, until in ts.items() if until <= now_us]
        for queue_id, task_id in ends[:SWEEP_BATCH]:
            del self._tombstones[queue_id][task_id]
        for key in [k for k, until in self._queue_tombstones.items() if until <= now_us]:
            del self._queue_tombstones[key]
        for name in [n for n, (_, until) in self._operations.items() if until <= now_us]:
            del self._operations[name]
        oldest_second = (now_us - 2 * STATS_WINDOW_US) // 1_000_000
        for second in [s for s in self._attempt_seconds if s[1] < oldest_second]:
            del self._attempt_seconds[second]
        return len(tasks[:SWEEP_BATCH]) + len(ends[:SWEEP_BATCH])
