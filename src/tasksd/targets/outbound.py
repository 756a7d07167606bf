"""The request an attempt sends, and the task history its headers report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tasksd.model.attempts import previous_http_status, retries_before
from tasksd.model.task import Task


@dataclass(slots=True)
class Outbound:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    follow_redirects: bool


@dataclass(slots=True)
class History:
    """What the X-CloudTasks-* / X-AppEngine-* headers of one attempt say."""

    queue_id: str
    task_id: str
    retry_count: int
    """Attempts before this one (failures included)."""
    execution_count: int
    eta: datetime
    previous_status: int | None
    """HTTP status of the previous attempt (0: it got no response); None on a first attempt."""

    @classmethod
    def of(cls, task: Task) -> History:
        """The history of a task whose attempt has just been started."""
        assert task.name is not None and task.schedule_time is not None
        status, name = task.status, task.name
        retries, previous = retries_before(status), previous_http_status(status)
        return cls(name.queue, name.task, retries, status.execution_count, task.schedule_time, previous)

    @property
    def eta_header(self) -> str:
        return f"{self.eta.timestamp():.6f}"


def without(headers: dict[str, str], names: set[str], prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """The headers whose lower-cased name is neither in ``names`` nor starts with a prefix."""
    return [
        (k, v) for k, v in headers.items() if k.lower() not in names and not k.lower().startswith(prefixes)
    ]
