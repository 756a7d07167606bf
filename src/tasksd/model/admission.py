"""What a queue admits: the CreateTask rules that depend on the stored queue, as a pure
function the store applies inside the transaction that adds the task.

The service checks everything else first (``tasksd.service.tasks.prepare_task``) and hands
the store a ``NewTask``: the task it made, or the first rule the request broke. A broken
rule keeps its place among the queue's checks (``Stage``), so that a request breaking several
rules is answered with the same error whichever rules depend on the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import urlsplit

from tasksd.model.errors import InvalidArgument, TasksError
from tasksd.model.network import TargetNetworks
from tasksd.model.queue import Queue, QueueKind, apply_uri_override
from tasksd.model.task import AppEngineHttpRequest, HttpRequest, PullMessage, Task


class Stage(IntEnum):
    """Where, among the queue's checks, the service found a broken rule."""

    BEFORE_KIND = 0
    """Before the payload is checked against the queue's kind (names, schedule, no payload)."""
    BEFORE_TARGET = 1
    """After that, before the URL is checked with the queue's URI override (the payload)."""
    LAST = 2
    """After every check of the queue (the deadline, the retry config)."""


@dataclass(frozen=True, slots=True)
class NewTask:
    """A CreateTask request, checked as far as it can be without the stored queue."""

    given: Task
    """The task as the caller sent it: its payload says which kind of queue it needs."""
    task: Task | None
    """The task to store (name, times and payload completed); None when a rule is broken."""
    networks: TargetNetworks
    """Where tasks may be sent: the URL the queue's URI override makes must be allowed."""
    broken: TasksError | None = None
    broken_at: Stage = Stage.LAST


def admit(queue: Queue, new: NewTask) -> Task:
    """The task to add to ``queue`` for ``new``.

    Raises:
        InvalidArgument: the payload does not suit the queue's kind, the queue's URI override
            sends it to an address that is not allowed, or ``new.broken``.
    """
    if new.broken is not None and new.broken_at is Stage.BEFORE_KIND:
        raise new.broken
    payload = new.given.payload
    path = queue.name.path
    if isinstance(payload, PullMessage):
        if queue.kind is not QueueKind.PULL:
            raise InvalidArgument(
                f"task.pull_message can only be used in a pull queue; {path} is a push queue."
            )
    elif queue.kind is QueueKind.PULL:
        kind = "app_engine_http_request" if isinstance(payload, AppEngineHttpRequest) else "http_request"
        raise InvalidArgument(
            f"task.{kind} cannot be used in a pull queue; {path} accepts only pull_message tasks."
        )
    if new.broken is not None and new.broken_at is Stage.BEFORE_TARGET:
        raise new.broken
    if isinstance(payload, HttpRequest):
        _check_override(payload, queue, new.networks)
    if new.broken is not None:
        raise new.broken
    assert new.task is not None
    return new.task


def _check_override(request: HttpRequest, queue: Queue, networks: TargetNetworks) -> None:
    """The queue's URI override must not send the task to an address that is not allowed (a
    host name is checked on the address it connects to)."""
    override = queue.http_target.uri_override if queue.http_target is not None else None
    if override is None or not override.host:
        return
    try:
        sent = urlsplit(apply_uri_override(request.url, override)).hostname or ""
    except ValueError:
        raise InvalidArgument(
            f"The queue's http_target.uri_override.host {override.host[:100]!r} makes no valid URL."
        ) from None
    refusal = networks.literal_refusal(sent)
    if refusal is not None:
        raise InvalidArgument(f"The queue's http_target.uri_override.host: {refusal}")
