"""Token buckets as pure functions of (state, now).

A bucket holds up to ``capacity`` tokens and refills continuously at ``rate`` tokens per
second; taking a token succeeds when at least one is there. The same algorithm limits
LeaseTasks calls per queue (its state kept in the store, shared by every node) and push
dispatches per queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tasksd.model.errors import ResourceExhausted
from tasksd.model.names import QueueName


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated: datetime


def refill(bucket: Bucket, now: datetime, *, rate: float, capacity: float) -> Bucket:
    """The bucket at ``now``: tokens added for the time passed, never above capacity."""
    elapsed_s = max(0.0, (now - bucket.updated).total_seconds())
    return Bucket(min(capacity, bucket.tokens + elapsed_s * rate), max(now, bucket.updated))


def take(bucket: Bucket | None, now: datetime, *, rate: float, capacity: float) -> tuple[bool, Bucket]:
    """(taken, new state): take one token if there is one; a new bucket starts full."""
    current = refill(bucket, now, rate=rate, capacity=capacity) if bucket else Bucket(capacity, now)
    if current.tokens >= 1.0:
        return True, Bucket(current.tokens - 1.0, current.updated)
    return False, current


def take_lease_call(bucket: Bucket | None, now: datetime, *, rate: float, queue: QueueName) -> Bucket:
    """The queue's LeaseTasks bucket (as stored, or None for a new one) after one call at
    ``now``; it holds up to a second's worth of calls, and at least one.

    Raises: ResourceExhausted when no call is left.
    """
    taken, after = take(bucket, now, rate=rate, capacity=max(rate, 1.0))
    if not taken:
        raise ResourceExhausted(
            f"Too many LeaseTasks calls for {queue.path}: at most {rate:g} per second are allowed per queue."
        )
    return after
