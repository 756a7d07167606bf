"""Push dispatch: one worker per running push queue sends due tasks to their targets.

A worker claims due tasks only as the queue's token bucket (``max_dispatches_per_second``,
``max_burst_size``) and concurrency cap (``max_concurrent_dispatches``) allow. Each claim
records the attempt in the store before it is sent, so a crash can repeat an attempt but
never lose a task. An attempt that fails is scheduled again by the retry policy (task-level
retry config first), or the task is deleted when retries are exhausted. 503 from App
Engine, and 429/503 from HTTP targets, slow the whole queue down for a while (congestion
control) and Retry-After is honoured.

Each queue is dispatched by one node at a time: the node whose ownership of it in the store
is live, renewed every heartbeat. When a node dies, its queues are taken over once its
ownership runs out, and the attempts it left in flight are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from tasksd.clock import Clock
from tasksd.engine.retry import next_attempt_time
from tasksd.model.errors import Code, TasksError
from tasksd.model.names import QueueName, TaskName
from tasksd.model.queue import Queue, QueueKind, QueueState
from tasksd.model.ratelimit import Bucket, refill
from tasksd.model.task import (
    DEFAULT_DISPATCH_DEADLINE,
    AppEngineHttpRequest,
    AttemptResult,
    HttpRequest,
    ResponseStatus,
    Task,
)
from tasksd.observe.metrics import METRICS
from tasksd.store.base import Finished, Store
from tasksd.targets.appengine import AppEngineUrls, app_engine_outbound
from tasksd.targets.http import http_outbound
from tasksd.targets.outbound import History, Outbound
from tasksd.targets.sender import Reply, Sender
from tasksd.targets.tokens import TokenIssuer

log = logging.getLogger(__name__)

MAX_CLAIM = 500
CLAIM_INTERVAL_S = 0.01
"""At high rates, tokens are gathered this long and claimed together: one store transaction
per claim, not per token."""
MAX_LOOKAHEAD_S = 0.25
"""Tokens are claimed ahead of their arrival by at most this long (see _QueueWorker)."""
MIN_THROTTLE = 1 / 64
_UNRECORDED = "attempt of %s failed unexpectedly; it is retried after a restart"
RECOVERY_PER_SUCCESS = 1.05

_HTTP_TO_CODE = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    409: Code.ABORTED,
    412: Code.FAILED_PRECONDITION,
    416: Code.OUT_OF_RANGE,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    500: Code.INTERNAL,
    501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


def attempt_outcome(reply: Reply) -> str:
    """How an attempt ended, as the metrics count it (one of metrics.OUTCOMES)."""
    if reply.status == 0:
        return "timeout" if "deadline" in reply.reason else "connection_error"
    if 200 <= reply.status < 300:
        return "2xx"
    return "5xx" if reply.status >= 500 else "4xx"


def response_status(reply: Reply) -> ResponseStatus:
    """The google.rpc.Status an attempt's reply is recorded as."""
    if reply.refused:
        return ResponseStatus(int(Code.PERMISSION_DENIED), reply.reason)
    if reply.status == 0:
        code = Code.DEADLINE_EXCEEDED if "deadline" in reply.reason else Code.UNAVAILABLE
        return ResponseStatus(int(code), reply.reason)
    if 200 <= reply.status < 300:
        return ResponseStatus(int(Code.OK), reply.reason)
    code = _HTTP_TO_CODE.get(reply.status, Code.UNKNOWN if reply.status >= 500 else Code.FAILED_PRECONDITION)
    return ResponseStatus(int(code), f"HTTP {reply.status} {reply.reason}".strip())


class Dispatcher:
    """Push dispatch for one node: a supervisor takes ownership of running push queues in the
    store (renewed every heartbeat, given up on stop) and runs a worker for each; a worker
    claims due tasks as its queue's rate and concurrency allow, hands them to ``sender`` and
    records each result with ``store.finish_attempts``. All waiting goes through ``clock``."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: Sender,
        tokens: TokenIssuer,
        app_engine: AppEngineUrls,
        *,
        poll_interval_s: float = 1.0,
        node: str | None = None,
        ownership_ttl: timedelta = timedelta(seconds=5),
    ) -> None:
        self.store = store
        self.clock = clock
        self.sender = sender
        self.tokens = tokens
        self.app_engine = app_engine
        self.poll_interval_s = poll_interval_s
        self.node = node or uuid.uuid4().hex
        self.ownership_ttl = ownership_ttl
        self._workers: dict[str, _QueueWorker] = {}
        self._acquiring: dict[str, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._finished: list[Finished] = []
        self._recording: set[asyncio.Task[None]] = set()
        self.elsewhere: Callable[[QueueName, datetime | None], None] | None = None
        """Tells the other processes of this server of a queue this one does not dispatch."""

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        tasks = [t for t in (self._supervisor, *(w.task for w in self._workers.values())) if t]
        tasks += [*self._acquiring.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.sender.stop_sending()
        self._record()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._recording)
        # Hand the queues back at once, so that another node (or this one restarted) need
        # not wait for the ownership to run out; their cancelled attempts are sent again.
        for worker in self._workers.values():
            with contextlib.suppress(Exception):
                await self.store.release_queue(worker.name, self.node)
        self._workers.clear()

    def notify(self, queue: QueueName, due: datetime | None = None) -> None:
        """A task of the queue may have fallen due (one due at ``due`` was added), or the
        queue resumed: look now. A worker asleep until a task due no later than ``due`` is
        left asleep: it claims in schedule order, and each claim looks again. A queue this
        node does not dispatch is told ``elsewhere`` (the other processes of this server),
        and taken over if no node dispatches it."""
        if self.wake(queue, due):
            return
        if self.elsewhere is not None:
            self.elsewhere(queue, due)
        if queue.path not in self._acquiring:
            self._acquiring[queue.path] = asyncio.create_task(self._acquire(queue))

    def wake(self, queue: QueueName, due: datetime | None = None) -> bool:
        """``notify`` for a queue this node dispatches (told by another process): whether it
        does."""
        worker = self._workers.get(queue.path)
        if worker is None or worker.task.done():
            return False
        waiting_for = worker.waiting_for
        if due is None or waiting_for is None or due < waiting_for:
            worker.wake.set()
        return True

    async def _acquire(self, queue: QueueName) -> None:
        try:
            if await self.store.own_queue(queue, self.node, self.clock.now(), self.ownership_ttl):
                self._start_worker(queue)
        except Exception:
            log.exception("could not take over dispatch of %s", queue.path)
        finally:
            self._acquiring.pop(queue.path, None)

    def _start_worker(self, queue: QueueName) -> None:
        worker = self._workers.get(queue.path)
        if worker is None or worker.task.done():
            self._workers[queue.path] = _QueueWorker(self, queue)
        else:
            worker.wake.set()

    async def run_task(self, name: TaskName) -> Task:
        """Dispatch one task now, whatever its queue's state and rate limits (RunTask)."""
        queue, task = await self.store.start_attempt(name, self.clock.now())
        self._spawn(queue, task, None)
        return task

    async def backlogs(self) -> dict[str, tuple[int, float]]:
        """The queues whose gauges this node reports, each as (tasks, seconds its oldest due
        task has waited): those it dispatches, and those no node dispatches (pull, paused and
        disabled queues), which every node reads alike from the one store."""
        now = self.clock.now()
        reported = [
            queue.name
            for queue in await self.store.queue_configs()
            if queue.kind is not QueueKind.PUSH
            or queue.state is not QueueState.RUNNING
            or queue.name.path in self._workers
        ]

        async def backlog(name: QueueName) -> tuple[str, int, float] | None:
            try:
                stats = await self.store.queue_stats(name, now)
            except TasksError:  # deleted meanwhile
                return None
            oldest = stats.oldest_estimated_arrival_time
            age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
            return name.path, stats.tasks_count, age

        found = await asyncio.gather(*map(backlog, reported))
        return {path: (tasks, age) for path, tasks, age in filter(None, found)}

    async def _supervise(self) -> None:
        """Each heartbeat: renew (or take) ownership of every running push queue; a queue
        another live node owns is left to it, and a worker whose ownership was lost stops."""
        while True:
            try:
                for queue in await self.store.queue_configs():
                    if queue.kind is not QueueKind.PUSH or queue.state is not QueueState.RUNNING:
                        continue
                    now = self.clock.now()
                    # The renewal stores the worker's congestion factor for queue statistics.
                    worker = self._workers.get(queue.name.path)
                    throttle = worker.throttle if worker is not None and not worker.task.done() else 1.0
                    if await self.store.own_queue(queue.name, self.node, now, self.ownership_ttl, throttle):
                        self._start_worker(queue.name)
                    else:
                        lost = self._workers.pop(queue.name.path, None)
                        if lost is not None:
                            lost.task.cancel()
            except Exception:
                log.exception("dispatch supervisor failed; retrying")
            await self.clock.sleep(self.poll_interval_s)

    def _spawn(self, queue: Queue, task: Task, worker: _QueueWorker | None) -> None:
        """Hand the claimed task's attempt to the sender; ``_replied`` records how it ended."""
        assert task.name is not None
        replied = functools.partial(self._replied, queue, task, worker)
        try:
            outbound = self._outbound(queue, task)
        except Exception:
            log.exception(_UNRECORDED, task.name.path)
            if worker is not None:
                worker.attempt_done()
            return
        if outbound is None:
            asyncio.get_running_loop().call_soon(replied, Reply(0, "Pull tasks are not dispatched."))
            return
        self.sender.submit(
            outbound, (task.dispatch_deadline or DEFAULT_DISPATCH_DEADLINE).total_seconds(), replied
        )

    def _outbound(self, queue: Queue, task: Task) -> Outbound | None:
        history = History.of(task)
        if isinstance(task.payload, HttpRequest):
            return http_outbound(task, queue, history, self.tokens)
        if isinstance(task.payload, AppEngineHttpRequest):
            return app_engine_outbound(task, queue, history, self.app_engine)
        return None

    def _replied(self, queue: Queue, task: Task, worker: _QueueWorker | None, reply: Reply) -> None:
        assert task.name is not None and task.status.last_attempt is not None
        started = task.status.last_attempt.dispatch_time
        assert started is not None
        try:
            now = self.clock.now()
            result = self._result(queue, task, reply, now)
            self._finish(Finished(task.name, started, result))
            if worker is not None:
                worker.observe(task, reply)
            outcome = attempt_outcome(reply)
            retried = result.next_schedule_time is not None
            METRICS.attempt(queue.name.path, outcome, (now - started).total_seconds(), retried)
            if log.isEnabledFor(logging.DEBUG):
                attempt = {"task": task.name.path, "attempt": task.status.dispatch_count, "outcome": outcome}
                log.debug("attempt ended", extra=attempt | {"status": reply.status})
        except Exception:
            log.exception(_UNRECORDED, task.name.path)
        finally:
            if worker is not None:
                worker.attempt_done()

    def _finish(self, finished: Finished) -> None:
        """Have the attempt's end recorded: the ends of all attempts that finish in one turn
        of the event loop are recorded together, in one store transaction. Until it is
        durable the task stays claimed, so it is neither claimed again nor lost."""
        if not self._finished:
            asyncio.get_running_loop().call_soon(self._record)
        self._finished.append(finished)

    def _record(self) -> None:
        if not self._finished:
            return
        batch, self._finished = self._finished, []
        recording = asyncio.create_task(self._store_finished(batch))
        self._recording.add(recording)
        recording.add_done_callback(self._recording.discard)

    async def _store_finished(self, batch: list[Finished]) -> None:
        try:
            await self.store.finish_attempts(batch, self.clock.now())
        except Exception:
            log.exception(
                "could not record %d finished attempts; they are sent again after a restart", len(batch)
            )

    @staticmethod
    def _result(queue: Queue, task: Task, reply: Reply, now: datetime) -> AttemptResult:
        http_target = isinstance(task.payload, HttpRequest)
        executed = reply.status != 0 and (reply.status < 500 or not http_target)
        status = response_status(reply)
        if 200 <= reply.status < 300:
            return AttemptResult(now, reply.status, status, executed, None)
        config = task.retry_config or queue.retry_config
        retry_at = next_attempt_time(config, task.status, now, reply.retry_after_s)
        return AttemptResult(now, reply.status, status, executed, retry_at)


class _QueueWorker:
    """Claims and sends one queue's due tasks within its rate and concurrency limits."""

    def __init__(self, dispatcher: Dispatcher, name: QueueName) -> None:
        self.dispatcher = dispatcher
        self.name = name
        self.wake = asyncio.Event()
        self.in_flight = 0
        self.bucket: Bucket | None = None
        self.throttle = 1.0
        self.paused_until: datetime | None = None
        self.waiting_for: datetime | None = None
        """While the worker sleeps: the earliest schedule time of its queue's tasks not yet
        claimed, as its last claim saw it (None when it saw none, or is awake)."""
        self.delay = 0.0
        """Seconds a claim takes, from the wake it was meant to start at to its answer (the
        store's round trip plus the timer's lateness): rises at once, decays slowly."""
        self._pacing: set[asyncio.Task[None]] = set()
        self.task = asyncio.create_task(self._run())

    def attempt_done(self) -> None:
        self.in_flight -= 1
        self.wake.set()

    def observe(self, task: Task, reply: Reply) -> None:
        """Congestion control: back off on 503 (App Engine) or 429/503 (HTTP targets)."""
        http_target = isinstance(task.payload, HttpRequest)
        congested = reply.status == 503 or (http_target and reply.status == 429)
        if congested:
            self.throttle = max(MIN_THROTTLE, self.throttle / 2)
            if reply.retry_after_s:
                pause = timedelta(seconds=min(reply.retry_after_s, 60))
                self.paused_until = self.dispatcher.clock.now() + pause
        elif reply.status != 0 and reply.status < 500:
            self.throttle = min(1.0, self.throttle * RECOVERY_PER_SUCCESS)

    @property
    def lookahead(self) -> float:
        """How long ahead of their arrival tokens are claimed. Tokens are capped at the burst
        size, so those that come while a claim is on its way are lost unless claimed before
        they come: a queue of 500/s with a burst of 1 would lose most of them to a round trip
        of a few milliseconds. Claimed ahead, a task is sent when its token arrives."""
        return min(MAX_LOOKAHEAD_S, 2 * self.delay)

    async def _run(self) -> None:
        store, clock = self.dispatcher.store, self.dispatcher.clock
        queue: Queue | None = None
        next_due: datetime | None = None
        woke_late = 0.0
        try:
            while True:
                self.wake.clear()
                now = clock.now()
                wanted = self._wanted(queue, now) if queue is not None else 0
                if queue is None or wanted > 0:
                    # One store call answers the queue's configuration, due tasks and next due time.
                    claim = await store.claim_tasks(self.name, wanted, now)
                    queue, next_due = claim.queue, claim.next_due
                    if (
                        queue is None
                        or queue.kind is not QueueKind.PUSH
                        or queue.state is not QueueState.RUNNING
                    ):
                        return  # the supervisor or a notify starts a new worker when it runs again
                    took = (clock.now() - now).total_seconds() + woke_late
                    self.delay = max(took, self.delay * 0.95)
                    self._send(queue, claim.tasks, now)
                    if claim.tasks:
                        woke_late = 0.0
                        continue
                    if wanted == 0:
                        continue  # the configuration is known now: work out what may be claimed
                woke_late = await self._sleep(queue, now, next_due)
        except asyncio.CancelledError:
            for pacing in self._pacing:
                pacing.cancel()
            raise

    def _send(self, queue: Queue, tasks: list[Task], claimed_at: datetime) -> None:
        """Send the claimed tasks, each once its token has arrived: at once for the tokens
        the bucket held at ``claimed_at``, then one per 1/rate seconds."""
        if not tasks:
            return
        self.in_flight += len(tasks)
        if self.bucket is None:
            for task in tasks:
                self.dispatcher._spawn(queue, task, self)
            return
        held = self.bucket.tokens
        self.bucket = replace(self.bucket, tokens=held - len(tasks))
        rate = self._limits(queue)[0]
        ready = len(tasks) if rate <= 0 else max(0, min(len(tasks), int(held)))
        for task in tasks[:ready]:
            self.dispatcher._spawn(queue, task, self)
        if ready < len(tasks):
            later = [
                (claimed_at + timedelta(seconds=(i + 1 - held) / rate), task)
                for i, task in enumerate(tasks[ready:], start=ready)
            ]
            pacing = asyncio.create_task(self._pace(queue, later))
            self._pacing.add(pacing)
            pacing.add_done_callback(self._pacing.discard)

    async def _pace(self, queue: Queue, later: list[tuple[datetime, Task]]) -> None:
        clock = self.dispatcher.clock
        for at, task in later:
            wait = (at - clock.now()).total_seconds()
            if wait > 0:
                await clock.sleep(wait)
            self.dispatcher._spawn(queue, task, self)

    def _limits(self, queue: Queue) -> tuple[float, float, int]:
        """(effective rate, burst, free concurrency slots) of the queue for this worker now."""
        limits = queue.rate_limits
        rate = (limits.max_dispatches_per_second or 0.0) * self.throttle
        free = (limits.max_concurrent_dispatches or 1) - self.in_flight
        return rate, float(limits.max_burst_size or 1), free

    def _paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def _wanted(self, queue: Queue, now: datetime) -> int:
        """How many tasks the rate and concurrency limits let this worker claim now."""
        if self._paused(now):
            return 0
        rate, burst, free = self._limits(queue)
        self.bucket = (
            refill(self.bucket, now, rate=rate, capacity=burst) if self.bucket else Bucket(burst, now)
        )
        tokens = self.bucket.tokens + rate * self.lookahead
        if tokens < _claim_size(rate, burst):
            return 0
        return max(0, min(int(tokens), free, MAX_CLAIM))

    async def _sleep(self, queue: Queue, now: datetime, next_due: datetime | None) -> float:
        """Wait for a wake, the next due task or token, or the poll interval.

        Returns: how late the wait ended after its time (0 when woken)."""
        waits = [self.dispatcher.poll_interval_s]
        rate, burst, free = self._limits(queue)
        if self.paused_until is not None and self._paused(now):
            waits.append((self.paused_until - now).total_seconds())
        elif next_due is not None and free > 0:
            due_in = (next_due - now).total_seconds()
            tokens = (self.bucket.tokens if self.bucket else 0.0) + rate * self.lookahead
            need = _claim_size(rate, burst)
            token_in = (need - tokens) / rate if tokens < need and rate > 0 else 0.0
            waits.append(max(due_in, token_in))
        wait = max(0.0005, min(waits))
        clock = self.dispatcher.clock
        self.waiting_for = next_due
        started = clock.now()  # after the claim that ``now`` preceded, which ``delay`` counts
        try:
            if await clock.wait_for(self.wake, wait):
                return 0.0
        finally:
            self.waiting_for = None
        return max(0.0, (clock.now() - started).total_seconds() - wait)


def _claim_size(rate: float, burst: float) -> float:
    """How many tokens to gather before claiming: one, or CLAIM_INTERVAL_S worth at high rates."""
    return max(1.0, min(burst, float(int(rate * CLAIM_INTERVAL_S))))
