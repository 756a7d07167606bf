"""Queue rules: defaults, limits and the validation of a queue given by a caller."""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import fields, is_dataclass, replace
from datetime import timedelta
from typing import Any

from tasksd.model.errors import InvalidArgument
from tasksd.model.queue import (
    HttpTarget,
    Queue,
    QueueKind,
    RateLimits,
    RetryConfig,
    with_host,
)

MAX_DISPATCHES_PER_SECOND = 500.0
MAX_BURST_SIZE = 500
MAX_CONCURRENT_DISPATCHES = 5000
DEFAULT_DISPATCHES_PER_SECOND = 500.0
DEFAULT_CONCURRENT_DISPATCHES = 1000
DEFAULT_RETRY = RetryConfig(
    max_attempts=100,
    max_retry_duration=timedelta(0),
    min_backoff=timedelta(seconds=0.1),
    max_backoff=timedelta(seconds=3600),
    max_doublings=16,
)
DEFAULT_TASK_TTL = timedelta(days=31)
MAX_TASK_TTL = timedelta(days=31)
DEFAULT_TOMBSTONE_TTL = timedelta(hours=1)
MAX_TOMBSTONE_TTL = timedelta(days=9)
MAX_BACKOFF = timedelta(days=7)

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def default_burst_size(rate: float) -> int:
    """The burst size the service picks from the rate (500/s gives 100, as observed)."""
    return max(1, min(100, math.ceil(rate)))


def complete_queue(queue: Queue, previous: Queue | None) -> Queue:
    """Validate a queue from a caller and fill in every default.

    ``previous`` is the stored queue when this is an update.

    Raises:
        InvalidArgument: a field breaks a documented rule; the message names the field.
    """
    kind = queue.kind or QueueKind.PUSH
    if previous is not None and previous.kind is not None and previous.kind != kind:
        raise InvalidArgument(
            f"The queue type cannot be changed (the queue is a {previous.kind.value.lower()} "
            f"queue; the request would make it a {kind.value.lower()} queue)."
        )
    rate_limits = _complete_rate_limits(kind, queue.rate_limits)
    retry_config = complete_retry_config(queue.retry_config, pull=kind is QueueKind.PULL)
    # A stored task_ttl stays valid: a queue from queue.yaml keeps the longest Duration.
    unchanged = previous is not None and queue.task_ttl == previous.task_ttl
    task_ttl = (
        queue.task_ttl
        if unchanged
        else _duration_in(queue.task_ttl, "task_ttl", timedelta(seconds=1), MAX_TASK_TTL)
    )
    tombstone_ttl = _duration_in(queue.tombstone_ttl, "tombstone_ttl", timedelta(0), MAX_TOMBSTONE_TTL)
    ratio = queue.logging_sampling_ratio
    if ratio is not None and not 0.0 <= ratio <= 1.0:
        raise InvalidArgument(f"must be between 0.0 and 1.0, got {ratio}.", field="logging_sampling_ratio")
    routing = queue.app_engine_routing_override
    http_target = queue.http_target
    if kind is QueueKind.PULL and (routing is not None or http_target is not None):
        raise InvalidArgument("A pull queue cannot have an App Engine or HTTP target.")
    if http_target is not None:
        _check_http_target(http_target)
    return replace(
        queue,
        kind=kind,
        rate_limits=rate_limits,
        retry_config=retry_config,
        task_ttl=task_ttl if queue.task_ttl is not None else DEFAULT_TASK_TTL,
        tombstone_ttl=tombstone_ttl if queue.tombstone_ttl is not None else DEFAULT_TOMBSTONE_TTL,
        app_engine_routing_override=with_host(routing, queue.name.project) if routing else None,
    )


def _complete_rate_limits(kind: QueueKind, given: RateLimits) -> RateLimits:
    if kind is QueueKind.PULL:
        # Output only for pull queues: what a caller sends is ignored.
        return RateLimits(
            DEFAULT_DISPATCHES_PER_SECOND, default_burst_size(DEFAULT_DISPATCHES_PER_SECOND), -1
        )
    rate = given.max_dispatches_per_second
    if rate is None or rate == 0:
        rate = DEFAULT_DISPATCHES_PER_SECOND
    elif not (0 < rate <= MAX_DISPATCHES_PER_SECOND) or math.isnan(rate):
        raise InvalidArgument(
            f"must be greater than 0 and at most {MAX_DISPATCHES_PER_SECOND:g}, got {rate}.",
            field="rate_limits.max_dispatches_per_second",
        )
    burst = given.max_burst_size
    if burst is None or burst == 0:
        burst = default_burst_size(rate)
    elif not 0 < burst <= MAX_BURST_SIZE:
        raise InvalidArgument(
            f"rate_limits.max_burst_size must be between 1 and {MAX_BURST_SIZE}, got {burst}."
        )
    concurrent = given.max_concurrent_dispatches
    if concurrent is None or concurrent == 0:
        concurrent = DEFAULT_CONCURRENT_DISPATCHES
    elif not 0 < concurrent <= MAX_CONCURRENT_DISPATCHES:
        raise InvalidArgument(
            f"must be between 1 and {MAX_CONCURRENT_DISPATCHES}, got {concurrent}.",
            field="rate_limits.max_concurrent_dispatches",
        )
    return RateLimits(float(rate), burst, concurrent)


def complete_retry_config(given: RetryConfig, *, pull: bool = False) -> RetryConfig:
    """Validate a retry configuration and fill in the defaults.

    For pull queues only ``max_attempts`` is taken from the caller; the rest is output only.
    """
    attempts = given.max_attempts
    if attempts is None or attempts == 0:
        attempts = DEFAULT_RETRY.max_attempts
    elif attempts < -1:
        raise InvalidArgument(
            f"retry_config.max_attempts must be greater than 0 (or -1 for unlimited), got {attempts}."
        )
    if pull:
        return replace(DEFAULT_RETRY, max_attempts=attempts)
    values: dict[str, Any] = {"max_attempts": attempts}
    for name in ("max_retry_duration", "min_backoff", "max_backoff"):
        value = getattr(given, name)
        if value is None:
            value = getattr(DEFAULT_RETRY, name)
        elif value < timedelta(0):
            raise InvalidArgument(
                f"retry_config.{name} must not be negative, got {value.total_seconds():g}s."
            )
        elif name != "max_retry_duration" and value > MAX_BACKOFF:
            raise InvalidArgument(
                f"retry_config.{name} must be at most 7 days, got {value.total_seconds():g}s."
            )
        values[name] = value
    doublings = given.max_doublings
    if doublings is not None and doublings < 0:
        raise InvalidArgument(f"retry_config.max_doublings must not be negative, got {doublings}.")
    values["max_doublings"] = doublings if doublings is not None else DEFAULT_RETRY.max_doublings
    if values["min_backoff"] > values["max_backoff"]:
        raise InvalidArgument(
            "retry_config.min_backoff must not be greater than retry_config.max_backoff "
            f"({values['min_backoff']} > {values['max_backoff']})."
        )
    return RetryConfig(**values)


def _duration_in(value: timedelta | None, field: str, low: timedelta, high: timedelta) -> timedelta | None:
    if value is not None and not low <= value <= high:
        raise InvalidArgument(
            f"{field} must be between {int(low.total_seconds())}s and "
            f"{int(high.total_seconds())}s, got {value.total_seconds():g}s."
        )
    return value


def _check_http_target(target: HttpTarget) -> None:
    override = target.uri_override
    if override is not None:
        if override.host is not None and override.host == "":
            raise InvalidArgument("http_target.uri_override.host must not be an empty string.")
        if override.port is not None and not 0 <= override.port <= 65535:
            raise InvalidArgument(
                f"http_target.uri_override.port must be between 0 and 65535, got {override.port}."
            )
        if override.path is not None and override.path and not override.path.startswith("/"):
            raise InvalidArgument("http_target.uri_override.path_override.path must begin with '/'.")
    for index, header in enumerate(target.header_overrides):
        check_header(header.key, header.value, f"http_target.header_overrides[{index}]")
    if target.oauth_token is not None and target.oidc_token is not None:
        raise InvalidArgument("http_target may set oauth_token or oidc_token, not both.")
    if target.oauth_token is not None and not (
        target.oauth_token.service_account_email and target.oauth_token.scope
    ):
        raise InvalidArgument(
            "http_target.oauth_token needs both service_account_email and scope at queue level."
        )
    if target.oidc_token is not None and not (
        target.oidc_token.service_account_email and target.oidc_token.audience
    ):
        raise InvalidArgument(
            "http_target.oidc_token needs both service_account_email and audience at queue level."
        )


def check_header(key: str, value: str, field: str) -> None:
    """Raises InvalidArgument when a header name is not an HTTP token or a value holds CR/LF."""
    if not _HEADER_NAME.fullmatch(key):
        raise InvalidArgument(f"{field}: {key!r} is not a valid HTTP header name.")
    if "\r" in value or "\n" in value or "\0" in value:
        raise InvalidArgument(f"{field}: the value of header {key!r} contains a line break.")


def apply_mask(stored: Queue, given: Queue, paths: list[str]) -> Queue:
    """``stored`` with the fields that ``paths`` name (model field paths, as deep as the
    model goes: ``http_target.oidc_token.audience``) taken from ``given``; a field that
    ``given`` leaves out is set to its default (cleared).

    Raises:
        InvalidArgument: a path names no updatable field.
    """
    result = stored
    for path in paths:
        parts = path.split(".")
        if parts[0] not in _UPDATABLE:
            raise InvalidArgument(f"update_mask: {path!r} is not a field of Queue that can be updated.")
        result = _merged(Queue, result, given, parts, path)
    return result


def _merged(cls: type[Any], stored: Any, given: Any, parts: list[str], path: str) -> Any:
    """``stored`` (a ``cls``, or None) with the field ``parts`` names taken from ``given``."""
    name = parts[0]
    if name not in {f.name for f in fields(cls)}:
        raise InvalidArgument(f"update_mask: {path!r} is not a field of Queue that can be updated.")
    value = getattr(given, name) if given is not None else getattr(cls(), name)
    if len(parts) > 1:
        inner = _dataclass_of(cls, name)
        if inner is None:
            raise InvalidArgument(f"update_mask: {path!r} is not a field of Queue that can be updated.")
        value = _merged(inner, getattr(stored, name) if stored is not None else None, value, parts[1:], path)
    return replace(stored if stored is not None else cls(), **{name: value})


def _dataclass_of(cls: type[Any], name: str) -> type[Any] | None:
    """The dataclass a field of ``cls`` holds (``X | None`` included), or None."""
    hint = typing.get_type_hints(cls)[name]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    for candidate in typing.get_args(hint) if optional else (hint,):
        if is_dataclass(candidate):
            return candidate  # type: ignore[return-value]
    return None


_UPDATABLE = {
    "kind",
    "app_engine_routing_override",
    "http_target",
    "rate_limits",
    "retry_config",
    "task_ttl",
    "tombstone_ttl",
    "logging_sampling_ratio",
}
