"""The Store protocol: the narrow set of operations the service and engine need.

Time-dependent operations take ``now``; no backend reads a clock. Every write is durable
when its coroutine returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tasksd.model.admission import NewTask
from tasksd.model.errors import TasksError
from tasksd.model.iam import Policy
from tasksd.model.leases import LeaseRequest
from tasksd.model.names import LocationName, QueueName, TaskName
from tasksd.model.queue import Queue, QueueStats
from tasksd.model.task import AttemptResult, Task

STATS_WINDOW_US = 60_000_000
"""executedLastMinuteCount counts the attempts of this last stretch of time."""
SWEEP_BATCH = 5000
"""A sweep deletes at most this many tasks, and as many tombstones, at a time."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Tasks whose attempts were started, and when the queue's next task falls due."""

    queue: Queue | None
    tasks: list[Task]
    next_due: datetime | None


@dataclass(slots=True)
class Finished:
    """How one attempt ended: the task, when its attempt started, and the result."""

    name: TaskName
    started: datetime
    result: AttemptResult


class Store(Protocol):
    """Where queues, tasks, tombstones, attempts, policies and queue ownership are kept.

    Every operation takes and returns the model's data; the rules are applied by the caller or
    by the model's pure functions the store imports (``admission``, ``attempts``, ``leases``),
    never by calling back into the service. Backends: ``MemoryStore`` (the reference), and
    the SQL jobs of ``sqlstore`` on SQLite and PostgreSQL; ``tests/unit/test_store_contract.py``
    holds all of them to the same behaviour."""

    async def open(self) -> None:
        """Create or migrate the schema and start any worker threads or pools."""

    async def close(self) -> None:
        """Finish pending writes and release every resource."""

    async def find_queue(self, name: QueueName, now: datetime) -> Queue | None:
        """The stored queue, or None when there is none (what a change is computed from).

        Raises:
            QueueTombstoned: there is none and its name is still reserved by a deletion (see
                ``delete_queue``).
        """

    async def put_queue(self, name: QueueName, queue: Queue, now: datetime, replaces: Queue | None) -> Queue:
        """Create or replace the queue ``name`` with ``queue``, provided the stored queue is
        still ``replaces`` (None: there is none), as ``find_queue`` answered it.

        Raises:
            QueueChanged: the stored queue is not ``replaces`` (another change came first).
            QueueTombstoned: the queue does not exist and its name is still reserved.
        """

    async def get_queue(self, name: QueueName) -> Queue:
        """Raises: QueueNotFound."""

    async def list_queues(self, parent: LocationName, after: str, limit: int) -> list[Queue]:
        """Queues of ``parent`` whose id sorts after ``after``, in id order, at most ``limit``."""

    async def delete_queue(self, name: QueueName, now: datetime, reuse_delay: timedelta) -> None:
        """Delete a queue with its tasks and tombstones; reserve its name for ``reuse_delay``.

        Raises: QueueNotFound.
        """

    async def purge_queue(self, name: QueueName, now: datetime) -> Queue:
        """Delete every task of the queue (leaving tombstones) and set its purge time.

        Raises: QueueNotFound.
        """

    async def queue_stats(self, name: QueueName, now: datetime) -> QueueStats:
        """The queue's realtime statistics, from the store alone (alike on every node): live
        tasks, attempts in flight, attempts dispatched or ended in the minute before ``now``,
        and the effective rate (0 unless a running push queue; lowered by the owner's
        congestion control, see ``own_queue``).

        Raises: QueueNotFound."""

    async def locations_in_use(self, project: str) -> list[str]:
        """Location ids holding at least one queue of ``project``, sorted."""

    async def insert_task(self, queue: QueueName, new: NewTask, now: datetime) -> Task:
        """Store the task ``admit(stored_queue, new)`` answers (``tasksd.model.admission``).

        Raises:
            QueueNotFound: the queue does not exist.
            InvalidArgument: what ``admit`` raises (a rule the request broke).
            AlreadyExists: a live task or an unexpired tombstone has the same name.
        """

    async def insert_tasks(
        self, queue: QueueName, news: list[NewTask], now: datetime
    ) -> list[Task | TasksError]:
        """``insert_task`` for each of ``news`` in order, in one transaction, reading the queue
        once: each answers its stored task or the InvalidArgument or AlreadyExists it alone
        failed with (a later task of the same name as an earlier one is AlreadyExists).

        Raises: QueueNotFound (nothing is stored).
        """

    async def get_task(self, name: TaskName, now: datetime) -> Task:
        """Raises: QueueNotFound, TaskTombstoned, TaskNotFound."""

    async def list_tasks(self, queue: QueueName, after: str, limit: int, now: datetime) -> list[Task]:
        """Live tasks of ``queue`` whose id sorts after ``after``, in id order.

        Raises: QueueNotFound.
        """

    async def delete_task(self, name: TaskName, now: datetime) -> None:
        """Delete a task, leaving a tombstone for the queue's tombstone TTL.

        Raises: QueueNotFound, TaskTombstoned, TaskNotFound.
        """

    async def lease_tasks(self, queue: QueueName, lease: LeaseRequest, now: datetime) -> list[Task]:
        """Lease the queue's due tasks, oldest schedule time first.

        The stored queue must be leasable (``model.leases.check_leasable``), and when
        ``lease.calls_per_second`` is set the call takes a token from the queue's LeaseTasks
        bucket, stored with the queue (``model.ratelimit.take_lease_call``).

        Each leased task's schedule time becomes ``lease.until`` and its dispatch count grows
        by one. A due task already dispatched ``max_attempts`` times (the queue's retry
        config; -1 is unlimited) is deleted, leaving a tombstone, instead of being leased.
        Tasks stop being added before their estimated reply size would pass
        ``lease.max_bytes``.

        Raises:
            QueueNotFound: the queue does not exist.
            FailedPrecondition: the queue is not a running pull queue.
            ResourceExhausted: no LeaseTasks call is left this second.
        """

    async def acknowledge_tasks(
        self, held: list[tuple[TaskName, datetime]], now: datetime
    ) -> list[TasksError | None]:
        """Delete leased tasks, each leaving a tombstone, in one transaction: (name, schedule
        time) pairs, where the schedule time proves the caller holds the task's lease.

        Answers, for each pair in order, None (acknowledged) or why not, without failing
        the others: QueueNotFound, TaskTombstoned or TaskNotFound (the task is not there),
        FailedPrecondition (``schedule_time`` is not the task's: the lease is not held).
        """

    async def reschedule_leased_task(
        self, name: TaskName, schedule_time: datetime, new_schedule_time: datetime, now: datetime
    ) -> Task:
        """Move a leased task's schedule time (renew: now + lease; cancel: now).

        Raises: what ``acknowledge_tasks`` answers.
        """

    async def claim_tasks(self, queue: QueueName, limit: int, now: datetime) -> Claim:
        """Start attempts of up to ``limit`` due tasks of a running push queue.

        Each claimed task's attempt is recorded as dispatched at ``now`` (one more dispatch,
        first/last attempt history) and durable before this returns; until it is finished
        the task is not claimed again. A paused, pull or missing queue yields no tasks.
        """

    async def start_attempt(self, name: TaskName, now: datetime) -> tuple[Queue, Task]:
        """Start an attempt of one push task now, whatever its queue's state (RunTask).

        Raises: QueueNotFound, TaskTombstoned, TaskNotFound, FailedPrecondition (pull task).
        """

    async def finish_attempts(self, finished: list[Finished], now: datetime) -> None:
        """Record how each attempt ended, in one transaction: delete the task (leaving a
        tombstone) when ``result.next_schedule_time`` is None, else schedule it again.
        Nothing happens for an attempt that is no longer its task's (deleted, purged, re-run)."""

    async def own_queue(
        self, queue: QueueName, node: str, now: datetime, ttl: timedelta, throttle: float = 1.0
    ) -> bool:
        """Take or renew ``node``'s ownership of the queue's dispatch until ``now + ttl``,
        storing ``throttle``: the factor (0 < throttle <= 1) by which the owner's congestion
        control lowers the queue's rate now, which ``queue_stats`` reports.

        True when ``node`` owns it now: it did already, or nobody did, or the owner's time ran
        out (a node that died). A node that takes a queue over makes every attempt the previous
        owner left in flight due to be sent again (at-least-once).
        """

    async def release_queue(self, queue: QueueName, node: str) -> None:
        """Give ``node``'s ownership of the queue's dispatch up (when stopping cleanly)."""

    async def queue_configs(self) -> list[Queue]:
        """Every queue's configuration (for the dispatcher)."""

    async def get_or_add_meta(self, key: str, make: Callable[[], bytes]) -> bytes:
        """A server-wide value; ``make()`` gives it when there is none yet."""

    async def get_meta(self, key: str) -> bytes | None:
        """A server-wide value, or None."""

    async def put_meta(self, key: str, value: bytes) -> None:
        """Set a server-wide value."""

    async def begin_operation(self, name: str, body: bytes, now: datetime, keep: timedelta) -> bytes | None:
        """Keep a long-running operation just started (its encoded
        ``google.longrunning.Operation``) for ``keep``, unless one of that name is kept already:
        None when this one was kept (the caller runs it), else the one kept."""

    async def end_operation(self, name: str, body: bytes | None, now: datetime, keep: timedelta) -> None:
        """Replace a begun operation with its finished form, kept for ``keep``; None forgets it
        (it failed as a whole, so that a retry runs it again)."""

    async def get_operation(self, name: str, now: datetime) -> bytes | None:
        """A kept operation, or None."""

    async def get_policy(self, name: QueueName) -> Policy:
        """The queue's IAM policy (empty when none was set). Raises: QueueNotFound."""

    async def set_policy(self, name: QueueName, policy: Policy) -> Policy:
        """Replace the policy, giving it a new etag.

        Raises:
            QueueNotFound: the queue does not exist.
            Aborted: ``policy.etag`` is set and differs from the stored policy's etag.
        """

    async def sweep(self, now: datetime) -> int:
        """Delete tasks past their queue's TTL and expired tombstones (at most SWEEP_BATCH of
        each), queue reservations and operations past their time, and attempt counts too old
        for the statistics; return how many tasks and tombstones went."""
