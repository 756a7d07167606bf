"""Retry policy as pure functions of (config, attempts, times).

The interval starts at ``min_backoff``, doubles ``max_doublings`` times, then grows linearly by
``2**max_doublings * min_backoff`` per attempt, and never exceeds ``max_backoff``: for
(10s, 300s, 3) the retries come 10, 20, 40, 80, 160, 240, 300, 300 … seconds apart. Retrying
stops only when both ``max_attempts`` attempts were made (-1: never) and ``max_retry_duration``
has passed since the first attempt (0: no time limit).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tasksd.model.queue import RetryConfig
from tasksd.model.task import TaskStatus


def retry_delay(failed_attempts: int, config: RetryConfig) -> timedelta:
    """The wait before the next attempt, after ``failed_attempts`` (≥ 1) failures."""
    assert config.min_backoff is not None and config.max_backoff is not None
    doublings = config.max_doublings or 0
    step = max(1, failed_attempts) - 1
    if step <= doublings:
        delay = config.min_backoff * (1 << step)
    else:
        delay = config.min_backoff * (1 << doublings) * (1 + step - doublings)
    return min(delay, config.max_backoff)


def should_retry(config: RetryConfig, attempts: int, first_attempt: datetime | None, now: datetime) -> bool:
    """Whether a task that failed its ``attempts``-th attempt gets another one."""
    limit = config.max_attempts if config.max_attempts is not None else 100
    attempts_left = limit == -1 or attempts < limit
    duration = config.max_retry_duration or timedelta(0)
    if duration == timedelta(0):  # no time limit: the attempt count alone decides
        return attempts_left
    time_left = first_attempt is not None and now - first_attempt < duration
    return attempts_left or time_left


def next_attempt_time(
    config: RetryConfig, status: TaskStatus, now: datetime, retry_after_s: float | None = None
) -> datetime | None:
    """When a task whose attempt (counted in ``status``) failed at ``now`` is tried again:
    after the policy's delay, or the target's Retry-After (at most an hour) when longer;
    None when it has no retries left."""
    first = status.first_attempt.dispatch_time if status.first_attempt else None
    attempts = status.dispatch_count
    if not should_retry(config, attempts, first, now):
        return None
    delay = retry_delay(attempts, config)
    if retry_after_s is not None:
        delay = max(delay, timedelta(seconds=min(retry_after_s, 3600)))
    return now + delay
