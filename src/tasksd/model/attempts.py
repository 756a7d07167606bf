"""Attempt bookkeeping as pure functions of a task's status: what starting an attempt and
recording its result change, and what the next attempt's headers report.

Every store records attempts with these, so the counts and history the API shows are
computed in one place.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from tasksd.model.task import Attempt, AttemptResult, TaskStatus


def start_attempt(status: TaskStatus, schedule_time: datetime, now: datetime) -> TaskStatus:
    """The status of a task whose attempt, due at ``schedule_time``, is dispatched at ``now``:
    one more dispatch, and that attempt as the last one (and the first, when it is)."""
    return replace(
        status,
        dispatch_count=status.dispatch_count + 1,
        first_attempt=status.first_attempt or Attempt(None, now),
        last_attempt=Attempt(schedule_time, now),
    )


def record_result(status: TaskStatus, result: AttemptResult) -> TaskStatus:
    """The status of a task whose last attempt ended with ``result`` (and is retried)."""
    last = status.last_attempt or Attempt()
    return replace(
        status,
        last_attempt=Attempt(last.schedule_time, last.dispatch_time, result.response_time, result.status),
        response_count=status.response_count + (result.http_status != 0),
        execution_count=status.execution_count + result.executed,
        last_http_status=result.http_status,
    )


def retries_before(status: TaskStatus) -> int:
    """Attempts before the one just started (failures included)."""
    return max(0, status.dispatch_count - 1)


def previous_http_status(status: TaskStatus) -> int | None:
    """HTTP status of the attempt before the one just started (0: it got no response);
    None on a first attempt."""
    return (status.last_http_status or 0) if retries_before(status) else None
