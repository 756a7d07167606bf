"""TasksService: every API operation, in the model's terms, over a Store and a Clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from tasksd.clock import Clock
from tasksd.engine.dispatcher import Dispatcher
from tasksd.model.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LocationNotFound,
    NotFound,
    QueueChanged,
    QueueNotFound,
    QueueTombstoned,
    TasksError,
    outcomes_of,
)
from tasksd.model.iam import Policy
from tasksd.model.leases import LeaseRequest
from tasksd.model.location import Location
from tasksd.model.names import LocationName, OperationName, ProjectName, QueueName, TaskName
from tasksd.model.network import ANY_ADDRESS, TargetNetworks
from tasksd.model.queue import HttpMethod, Queue, QueueKind, QueueState, QueueStats, apply_uri_override
from tasksd.model.task import HttpRequest, PullMessage, Task
from tasksd.observe.metrics import METRICS
from tasksd.service import iam, leases
from tasksd.service.batches import (
    OPERATION_KEEP,
    RUNNING_OPERATION_KEEP,
    BatchResult,
    check_kms_key,
    cmek_meta_key,
)
from tasksd.service.paging import check_page_size, make_token, read_token
from tasksd.service.queues import _UPDATABLE, apply_mask, complete_queue
from tasksd.service.tasks import GENERATED_ID_TRIES, TaskIds, prepare_task
from tasksd.store.base import Store

T = TypeVar("T")

MAX_QUEUE_PAGE = 9800
MAX_TASK_PAGE = 1000
MAX_LOCATION_PAGE = 1000

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Settings of the service; each has a key in the config file and a serve flag or env var."""

    default_locations: tuple[str, ...] = ("us-central1", "us-east1", "europe-west1", "asia-northeast1")
    # LeaseTasks calls allowed per second per queue (the real service allows 10); 0: no limit.
    lease_calls_per_second: float = 10.0
    # The real service reserves a deleted queue's name for up to 7 days; test suites re-create
    # queues, so locally the default is no reservation.
    queue_reuse_delay: timedelta = timedelta(0)
    # Where tasks may be sent (``allowed_target_networks``): CreateTask refuses URLs naming
    # other addresses.
    target_networks: TargetNetworks = ANY_ADDRESS


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""


class TasksService:
    """Every operation of the API in version-neutral terms: it validates a request against the
    rules the wire does not express, fills the service's defaults, reads the time once from
    ``clock`` and hands the store plain data (``NewTask``, ``LeaseRequest``, a queue and the one
    it replaces). The API layer maps each version's protobuf to these calls and back; the
    dispatcher is told of queue changes so push queues start, pause and stop at once."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: ServiceSettings | None = None,
        dispatcher: Dispatcher | None = None,
        task_ids: TaskIds | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings or ServiceSettings()
        self.dispatcher = dispatcher
        self.task_ids = task_ids or TaskIds()

    # -- locations ---------------------------------------------------------------------

    async def list_locations(self, project: ProjectName, page_size: int, page_token: str) -> Page[Location]:
        """Locations in use by the project plus the configured default list, in id order."""
        size = check_page_size(page_size, MAX_LOCATION_PAGE)
        now = self.clock.now()
        after = read_token(page_token, "locations", now)
        used = await self.store.locations_in_use(project.project)
        ids = sorted(set(self.settings.default_locations) | set(used))
        ids = [i for i in ids if i > after]
        page = ids[:size]
        token = make_token(page[-1], "locations", now) if len(ids) > size else ""
        return Page([Location(LocationName(project.project, i)) for i in page], token)

    async def get_location(self, name: LocationName) -> Location:
        """Raises: LocationNotFound when the location is neither in use nor a default one."""
        if name.location in self.settings.default_locations:
            return Location(name)
        if name.location in await self.store.locations_in_use(name.project):
            return Location(name)
        raise LocationNotFound(f"Location {name.path} is not found.")

    # -- queues ------------------------------------------------------------------------

    async def create_queue(self, parent: LocationName, queue: Queue) -> Queue:
        """Raises: InvalidArgument, AlreadyExists, QueueTombstoned."""
        if queue.name.parent != parent:
            raise InvalidArgument(
                f"queue.name {queue.name.path!r} is not in the location named in parent ({parent.path!r})."
            )

        def change(stored: Queue | None) -> Queue:
            if stored is not None:
                raise AlreadyExists("Queue already exists")
            return _new_queue(queue)

        return await self.change_queue(queue.name, change)

    async def update_queue(self, queue: Queue, mask: list[str] | None) -> Queue:
        """Update the fields that ``mask`` names (all when empty), creating a missing queue.

        Raises: InvalidArgument, QueueTombstoned.
        """
        paths = list(mask) if mask else sorted(_UPDATABLE)

        def change(stored: Queue | None) -> Queue:
            if stored is None:
                return _new_queue(queue)
            given = queue if queue.kind is not None else replace(queue, kind=stored.kind)
            merged = apply_mask(stored, given, paths)
            rate_set = "rate_limits" in paths or "rate_limits.max_dispatches_per_second" in paths
            if rate_set and given.rate_limits.max_burst_size is None:
                merged = replace(merged, rate_limits=replace(merged.rate_limits, max_burst_size=None))
            return complete_queue(merged, stored)

        return await self.change_queue(queue.name, change)

    async def change_queue(self, name: QueueName, change: Callable[[Queue | None], Queue]) -> Queue:
        """Create or replace a queue with ``change(stored queue or None)``: read, changed here
        and written if the stored queue is still the one read; when another change came in
        between, ``change`` runs again on the queue as it is then.

        Raises:
            QueueTombstoned: there is no such queue and its name is still reserved.
            TasksError: whatever ``change`` raises.
        """
        now = self.clock.now()
        while True:  # each round that fails, another change succeeded
            stored = await self.store.find_queue(name, now)
            try:
                return await self.store.put_queue(name, change(stored), now, stored)
            except QueueChanged:
                continue

    async def get_queue(self, name: QueueName) -> Queue:
        return await self.store.get_queue(name)

    async def queue_stats(self, name: QueueName) -> QueueStats:
        """Realtime statistics from what the engine did, as stored (the same on every node),
        in one read of the store: see ``Store.queue_stats``.

        LIMITATIONS: the effective rate is the owner's congestion factor as of its last
        ownership renewal (one dispatcher heartbeat, 1 s by default, behind); the last minute's
        count is exact to a second (attempts that ended are counted per second) and leaves
        out pull queues' leases.

        Raises: QueueNotFound.
        """
        return await self.store.queue_stats(name, self.clock.now())

    async def list_queues(
        self,
        parent: LocationName,
        page_size: int,
        page_token: str,
        filter_text: str = "",
        matches: Callable[[Queue], bool] | None = None,
    ) -> Page[Queue]:
        """A page of the location's queues in lexicographical order that satisfy ``matches``.

        Raises: InvalidArgument for a bad page size or token.
        """
        size = check_page_size(page_size, MAX_QUEUE_PAGE)
        now = self.clock.now()
        after = read_token(page_token, "queues:" + filter_text, now)
        test = matches or (lambda queue: True)
        found: list[Queue] = []
        while len(found) < size:
            batch = await self.store.list_queues(parent, after, size + 1)
            for queue in batch:
                if test(queue):
                    found.append(queue)
            if len(batch) <= size:
                break
            after = batch[-1].name.queue
        if len(found) > size:
            found = found[:size]
        more = len(found) == size and bool(await self.store.list_queues(parent, found[-1].name.queue, 1))
        token = make_token(found[-1].name.queue, "queues:" + filter_text, now) if more else ""
        return Page(found, token)

    async def delete_queue(self, name: QueueName) -> None:
        """Raises: NotFound, in production's generic words (not those of QueueNotFound)."""
        try:
            await self.store.delete_queue(name, self.clock.now(), self.settings.queue_reuse_delay)
        except QueueNotFound:
            raise NotFound() from None

    async def purge_queue(self, name: QueueName) -> Queue:
        return await self.store.purge_queue(name, self.clock.now())

    async def pause_queue(self, name: QueueName) -> Queue:
        return await self._set_state(name, QueueState.PAUSED)

    async def resume_queue(self, name: QueueName) -> Queue:
        queue = await self._set_state(name, QueueState.RUNNING)
        if self.dispatcher is not None and queue.kind is QueueKind.PUSH:
            self.dispatcher.notify(name)
        return queue

    async def _set_state(self, name: QueueName, state: QueueState) -> Queue:
        def change(stored: Queue | None) -> Queue:
            if stored is None:
                raise QueueNotFound()
            return replace(stored, state=state)

        try:
            return await self.change_queue(name, change)
        except QueueTombstoned:  # deleted recently: to a pause or resume it is simply not there
            raise QueueNotFound() from None

    # -- IAM ---------------------------------------------------------------------------

    async def get_iam_policy(self, name: QueueName, requested_version: int = 0) -> Policy:
        """Raises: QueueNotFound, InvalidArgument."""
        iam.check_requested_version(requested_version)
        return iam.present(await self.store.get_policy(name), requested_version)

    async def queue_policy(self, name: QueueName) -> Policy:
        """The queue's own policy as stored, for authorization. Raises: QueueNotFound."""
        return await self.store.get_policy(name)

    async def set_iam_policy(self, name: QueueName, policy: Policy) -> Policy:
        """Raises: QueueNotFound, InvalidArgument, Aborted (stale etag)."""
        iam.check_policy(policy)
        return iam.present(await self.store.set_policy(name, policy), 3)

    async def test_iam_permissions(self, name: QueueName, permissions: list[str]) -> list[str]:
        """The requested permissions that exist; none when the queue does not exist."""
        iam.check_permissions(permissions)
        try:
            await self.store.get_queue(name)
        except QueueNotFound:
            return []
        return [p for p in permissions if p in iam.PERMISSIONS]

    # -- tasks -------------------------------------------------------------------------

    async def create_task(self, parent: QueueName, task: Task) -> Task:
        """Raises: QueueNotFound, InvalidArgument, AlreadyExists."""
        now, networks = self.clock.now(), self.settings.target_networks
        for tries_left in reversed(range(GENERATED_ID_TRIES)):
            try:
                created = await self.store.insert_task(
                    parent, prepare_task(parent, task, now, self.task_ids, networks), now
                )
                break
            except AlreadyExists:
                # A generated id another node made too (see TaskIds): make a new one.
                if task.name is not None or not tries_left:
                    raise
        self._created(parent, [created])
        return created

    def _created(self, parent: QueueName, tasks: list[Task]) -> None:
        """Tell the dispatcher of new push tasks, and log each task."""
        if self.dispatcher is not None:
            due = [t.schedule_time for t in tasks if not isinstance(t.payload, PullMessage)]
            if due:
                self.dispatcher.notify(parent, min(filter(None, due), default=None))
        if log.isEnabledFor(logging.DEBUG):
            for task in tasks:
                log.debug("task created", extra={"task": task.name.path if task.name else None})

    async def buffer_task(self, queue: QueueName, task_id: str, body: bytes, content_type: str) -> Task:
        """A new HTTP task whose request is ``body``, sent where the queue's HTTP target says.

        Raises:
            QueueNotFound; FailedPrecondition when the queue has no HTTP target with a URI
            override naming a host; InvalidArgument, AlreadyExists as CreateTask.
        """
        stored = await self.store.get_queue(queue)
        target = stored.http_target
        if target is None or target.uri_override is None or not target.uri_override.host:
            raise FailedPrecondition(
                f"{queue.path} has no HTTP target with a uri_override host: BufferTask needs one "
                "to know where to send the task."
            )
        url = apply_uri_override("https://placeholder/", replace(target.uri_override, enforce_mode=None))
        headers = {"Content-Type": content_type} if content_type else {}
        method = target.http_method or HttpMethod.POST
        request = HttpRequest(url=url, http_method=method, headers=headers, body=body)
        name = queue.task(task_id) if task_id else None
        return await self.create_task(queue, Task(name=name, payload=request))

    async def run_task(self, name: TaskName) -> Task:
        """Dispatch a push task now, even when its queue is paused or rate-limited.

        Raises:
            NotFound: the task does not exist (or already succeeded or permanently failed).
            FailedPrecondition: a pull task, or a server without push dispatch.
        """
        if self.dispatcher is None:
            raise FailedPrecondition("This server does not dispatch tasks (push dispatch is off).")
        return await self.dispatcher.run_task(name)

    async def get_task(self, name: TaskName) -> Task:
        return await self.store.get_task(name, self.clock.now())

    async def list_tasks(self, parent: QueueName, page_size: int, page_token: str) -> Page[Task]:
        size = check_page_size(page_size, MAX_TASK_PAGE)
        now = self.clock.now()
        after = read_token(page_token, "tasks", now)
        tasks = await self.store.list_tasks(parent, after, size + 1, now)
        token = ""
        if len(tasks) > size:
            tasks = tasks[:size]
            assert tasks[-1].name is not None
            token = make_token(tasks[-1].name.task, "tasks", now)
        return Page(tasks, token)

    async def delete_task(self, name: TaskName) -> None:
        await self.store.delete_task(name, self.clock.now())
        log.debug("task deleted", extra={"task": name.path})

    # -- batches and their operations ---------------------------------------------------

    async def batch_create_tasks(
        self, parent: QueueName, tasks: list[Task | TasksError]
    ) -> BatchResult[Task]:
        """Create each task as CreateTask would, each on its own: one that fails (or came as an
        error, a request that could not be read) leaves the others created. The caller has
        checked that the queue is there (the API: that its version sees it)."""
        start = now = self.clock.now()
        networks = self.settings.target_networks
        news = [
            prepare_task(parent, task, now, self.task_ids, networks)
            for task in tasks
            if not isinstance(task, TasksError)
        ]
        answers: list[Task | TasksError]
        try:
            answers = await self.store.insert_tasks(parent, news, now) if news else []
        except QueueNotFound as missing:
            answers = [missing] * len(news)
        # A generated id another node made too (see TaskIds): that task alone is made again.
        clashed = [
            i for i, a in enumerate(answers) if isinstance(a, AlreadyExists) and news[i].given.name is None
        ]
        if clashed:
            again = await self._each([self.create_task(parent, news[i].given) for i in clashed])
            for i, answer in zip(clashed, again, strict=True):
                answers[i] = answer
        made_again = set(clashed)  # create_task told of those
        self._created(
            parent, [a for i, a in enumerate(answers) if isinstance(a, Task) and i not in made_again]
        )
        created = iter(answers)
        results = [task if isinstance(task, TasksError) else next(created) for task in tasks]
        return BatchResult(start, self.clock.now(), results)

    async def batch_delete_tasks(self, names: list[TaskName]) -> BatchResult[None]:
        """Delete each task as DeleteTask would, each on its own (not atomic). The caller has
        checked that their queue is there."""
        start = self.clock.now()
        results = await self._each([self.delete_task(name) for name in names])
        return BatchResult(start, self.clock.now(), results)

    @staticmethod
    async def _each(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T | TasksError]:
        """Run the calls together (their writes share commits); each answers its result or its
        TasksError. Any other exception is raised."""
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, TasksError):
                raise result
        return results  # type: ignore[return-value]

    async def begin_operation(self, name: OperationName, body: bytes) -> bytes | None:
        """Keep a batch's operation while it runs (for RUNNING_OPERATION_KEEP): None when the
        caller is to run the batch, else the operation of that name kept already (a retry with
        the same request_id, of a batch running or done)."""
        return await self.store.begin_operation(name.path, body, self.clock.now(), RUNNING_OPERATION_KEEP)

    async def keep_operation(self, name: OperationName, body: bytes) -> None:
        """Keep the finished operation of a batch that had no request_id (its name, a new
        UUID, is kept for the first time) for OPERATION_KEEP."""
        await self.store.begin_operation(name.path, body, self.clock.now(), OPERATION_KEEP)

    async def end_operation(self, name: OperationName, body: bytes | None) -> None:
        """Keep the finished operation for OPERATION_KEEP; None forgets it (its batch failed as a
        whole: a retry runs it again)."""
        await self.store.end_operation(name.path, body, self.clock.now(), OPERATION_KEEP)

    async def get_operation(self, name: OperationName) -> bytes | None:
        return await self.store.get_operation(name.path, self.clock.now())

    async def require_operation(self, name: OperationName) -> bytes:
        """Raises: NotFound."""
        body = await self.get_operation(name)
        if body is None:
            raise NotFound(f"Operation {name.path} was not found (operations are kept for a day).")
        return body

    # -- CMEK configuration --------------------------------------------------------------

    async def get_cmek_key(self, location: LocationName) -> str:
        """The location's Cloud KMS key name ("" when none is configured)."""
        stored = await self.store.get_meta(cmek_meta_key(location))
        return stored.decode() if stored else ""

    async def set_cmek_key(self, location: LocationName, kms_key: str) -> str:
        """Configure (or with "" clear) the location's key. tasksd keeps the name and reports it;
        it does not encrypt with it. Raises: InvalidArgument."""
        await self.store.put_meta(cmek_meta_key(location), check_kms_key(kms_key).encode())
        return kms_key

    # -- leases ------------------------------------------------------------------------

    async def lease_tasks(
        self, parent: QueueName, count: int, duration: timedelta | None, filter_text: str
    ) -> list[Task]:
        """Lease up to ``count`` due tasks of a pull queue for ``duration``.

        Raises:
            InvalidArgument: bad count, duration or filter.
            ResourceExhausted: more LeaseTasks calls per second on this queue than allowed.
            QueueNotFound, FailedPrecondition: no such queue, or not a running pull queue.
        """
        count = leases.max_tasks(count)
        length = leases.lease_duration(duration)
        tag, oldest = leases.parse_lease_filter(filter_text)
        now = self.clock.now()
        rate = self.settings.lease_calls_per_second
        lease = LeaseRequest(now + length, count, leases.MAX_LEASE_REPLY_BYTES, tag, oldest, rate)
        leased = await self.store.lease_tasks(parent, lease, now)
        METRICS.lease(parent.path, len(leased))
        if log.isEnabledFor(logging.DEBUG):
            for task in leased:
                log.debug("task leased", extra={"task": task.name.path if task.name else None})
        return leased

    async def acknowledge_task(self, name: TaskName, schedule_time: datetime | None) -> None:
        """Raises: InvalidArgument, NotFound, FailedPrecondition (the lease is not held)."""
        [outcome] = await self.acknowledge_tasks([(name, schedule_time)])
        if outcome is not None:
            raise outcome

    async def acknowledge_tasks(
        self, held: list[tuple[TaskName, datetime | None]]
    ) -> list[TasksError | None]:
        """Acknowledge many leased tasks in one store transaction (an HTTP batch of
        acknowledgements): for each, None or the error ``acknowledge_task`` would raise."""
        now = self.clock.now()
        outcomes = await outcomes_of(
            held,
            lambda one: (one[0], _required_schedule_time(one[1])),
            lambda checked: self.store.acknowledge_tasks(checked, now),
        )
        done = [name for (name, _), outcome in zip(held, outcomes, strict=True) if outcome is None]
        METRICS.acknowledge(name.queue_name.path for name in done)
        if log.isEnabledFor(logging.DEBUG):
            for name in done:
                log.debug("task acknowledged", extra={"task": name.path})
        return outcomes

    async def renew_lease(
        self, name: TaskName, schedule_time: datetime | None, duration: timedelta | None
    ) -> Task:
        """Extend a held lease to now + ``duration``."""
        held = _required_schedule_time(schedule_time)
        length = leases.lease_duration(duration)
        now = self.clock.now()
        return await self.store.reschedule_leased_task(name, held, now + length, now)

    async def cancel_lease(self, name: TaskName, schedule_time: datetime | None) -> Task:
        """Give a held lease up: the task can be leased again at once."""
        held = _required_schedule_time(schedule_time)
        now = self.clock.now()
        return await self.store.reschedule_leased_task(name, held, now, now)

    # -- housekeeping ------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete tasks past their TTL and expired tombstones."""
        return await self.store.sweep(self.clock.now())


def _required_schedule_time(value: datetime | None) -> datetime:
    if value is None:
        raise InvalidArgument(
            "schedule_time is required: send the schedule_time that LeaseTasks or RenewLease "
            "returned, which proves the caller holds the lease."
        )
    return value


def _new_queue(queue: Queue) -> Queue:
    fresh = replace(
        queue,
        kind=queue.kind or QueueKind.PUSH,
        state=QueueState.RUNNING,
        purge_time=None,
    )
    return complete_queue(fresh, None)
