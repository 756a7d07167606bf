"""Encoding of model objects into the bytes and integers that stores keep.

Times are integer microseconds since the epoch (UTC) so that SQL can compare and index
them; structured values are msgpack, which keeps bytes, enums and durations exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from tasksd.clock import EPOCH
from tasksd.clock import duration_us as duration_us  # codec.duration_us: the store's durations
from tasksd.clock import to_us as to_us  # codec.to_us: the store's time columns
from tasksd.model.iam import Policy
from tasksd.model.names import QueueName
from tasksd.model.queue import Queue, RetryConfig
from tasksd.model.task import (
    AppEngineHttpRequest,
    Attempt,
    HttpRequest,
    Payload,
    PullMessage,
    Task,
    TaskStatus,
)

KIND_PULL, KIND_APP_ENGINE, KIND_HTTP = 0, 1, 2
_PAYLOAD_TYPES: dict[int, type[PullMessage] | type[AppEngineHttpRequest] | type[HttpRequest]] = {
    KIND_PULL: PullMessage,
    KIND_APP_ENGINE: AppEngineHttpRequest,
    KIND_HTTP: HttpRequest,
}


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(0, 0, value)


def ttls_us(queue: Queue) -> tuple[int, int]:
    """(task TTL, tombstone TTL) of a stored queue (complete: both are set)."""
    assert queue.task_ttl is not None and queue.tombstone_ttl is not None
    return duration_us(queue.task_ttl), duration_us(queue.tombstone_ttl)


def tombstone_until_us(queue: Queue, now: datetime) -> int:
    """When the tombstone of a task of ``queue`` deleted at ``now`` ends."""
    return to_us(now) + ttls_us(queue)[1]


@dataclass(slots=True)
class _Attempts:
    first: Attempt | None = None
    last: Attempt | None = None
    execution_count: int = 0
    last_http_status: int | None = None


@dataclass(slots=True)
class _Options:
    dispatch_deadline: timedelta | None = None
    retry_config: RetryConfig | None = None


_NO_ATTEMPTS = _Attempts()
_NO_OPTIONS = _Options()
"""Read, never changed: what a task without attempts or options decodes with."""

_encoder = msgspec.msgpack.Encoder()
_queue_decoder = msgspec.msgpack.Decoder(Queue)
_policy_decoder = msgspec.msgpack.Decoder(Policy)
_attempts_decoder = msgspec.msgpack.Decoder(_Attempts)
_options_decoder = msgspec.msgpack.Decoder(_Options)
_payload_decoders = {kind: msgspec.msgpack.Decoder(cls) for kind, cls in _PAYLOAD_TYPES.items()}


def encode_queue(queue: Queue) -> bytes:
    return _encoder.encode(queue)


@functools.lru_cache(maxsize=4096)
def decode_queue(data: bytes) -> Queue:
    """The queue a stored configuration holds.

    Cached by content, as every task write reads its queue: callers must treat the result
    as immutable (the service only ever derives new queues with ``dataclasses.replace``).
    """
    return _queue_decoder.decode(data)


def encode_policy(policy: Policy) -> bytes:
    return _encoder.encode(policy)


def decode_policy(data: bytes | None) -> Policy:
    return _policy_decoder.decode(data) if data else Policy()


def payload_kind(payload: Payload | None) -> int:
    if isinstance(payload, PullMessage):
        return KIND_PULL
    if isinstance(payload, AppEngineHttpRequest):
        return KIND_APP_ENGINE
    if isinstance(payload, HttpRequest):
        return KIND_HTTP
    raise TypeError(f"task without a payload: {payload!r}")


def encode_task_columns(task: Task) -> tuple[int, bytes, bytes | None, bytes | None]:
    """(kind, payload, attempts, options) columns of a task."""
    status = task.status
    attempts = encode_attempts(status)
    options = None
    if task.dispatch_deadline is not None or task.retry_config is not None:
        options = _encoder.encode(_Options(task.dispatch_deadline, task.retry_config))
    return payload_kind(task.payload), _encoder.encode(task.payload), attempts, options


def encode_attempts(status: TaskStatus) -> bytes | None:
    """The ``attempts`` column of a task status (None before any attempt)."""
    if not (status.first_attempt or status.last_attempt or status.last_http_status is not None):
        return None
    return _encoder.encode(
        _Attempts(status.first_attempt, status.last_attempt, status.execution_count, status.last_http_status)
    )


def max_attempts(options: bytes | None, queue_max_attempts: int) -> int:
    """A task's limit on attempts (-1: none): its own retry config's, which overrides its
    queue's, else ``queue_max_attempts``."""
    own = _options_decoder.decode(options).retry_config if options else None
    if own is None or own.max_attempts is None:
        return queue_max_attempts
    return own.max_attempts


def decode_task(
    queue: QueueName,
    task_id: str,
    kind: int,
    schedule_us: int,
    create_us: int,
    dispatch_count: int,
    response_count: int,
    payload: bytes,
    attempts: bytes | None,
    options: bytes | None,
) -> Task:
    """The task a row of (task_id, kind, schedule_us, …, options) holds."""
    tried = _attempts_decoder.decode(attempts) if attempts else _NO_ATTEMPTS
    extra = _options_decoder.decode(options) if options else _NO_OPTIONS
    return Task(
        name=queue.task(task_id),
        payload=_payload_decoders[kind].decode(payload),
        schedule_time=from_us(schedule_us),
        create_time=from_us(create_us),
        status=TaskStatus(
            dispatch_count,
            response_count,
            tried.first,
            tried.last,
            tried.execution_count,
            tried.last_http_status,
        ),
        dispatch_deadline=extra.dispatch_deadline,
        retry_config=extra.retry_config,
    )
