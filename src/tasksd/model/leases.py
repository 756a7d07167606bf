"""What a LeaseTasks call asks of the store, and the pull-queue rules the store applies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tasksd.model.errors import FailedPrecondition
from tasksd.model.queue import Queue, QueueKind, QueueState


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """Lease up to ``max_tasks`` due tasks (of one tag, or of the oldest due task's tag) until
    ``until``, in a reply of at most ``max_bytes``; at most ``calls_per_second`` such calls
    per queue (0: no limit)."""

    until: datetime
    max_tasks: int
    max_bytes: int
    tag: str | None = None
    oldest_tag: bool = False
    calls_per_second: float = 0.0


def check_leasable(queue: Queue) -> None:
    """Raises FailedPrecondition unless tasks can be leased from the queue now."""
    if queue.kind is not QueueKind.PULL:
        raise FailedPrecondition(
            f"{queue.name.path} is not a pull queue: tasks can only be leased from pull queues."
        )
    if queue.state is not QueueState.RUNNING:
        raise FailedPrecondition(
            f"{queue.name.path} is {queue.state.value.lower()}: tasks cannot be leased until "
            "the queue is resumed."
        )


def estimated_reply_bytes(task_id: str, payload: bytes) -> int:
    """About how many bytes a leased task takes in a reply (base64 payload, name, times)."""
    return len(payload) * 4 // 3 + len(task_id) + 400


def attempts_exhausted(dispatch_count: int, max_attempts: int) -> bool:
    """Whether a task dispatched ``dispatch_count`` times may be leased no more (-1: no limit);
    it is then deleted instead."""
    return max_attempts != -1 and dispatch_count >= max_attempts
