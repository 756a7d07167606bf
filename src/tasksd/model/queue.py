"""Queues: targets, rate limits, retry configuration, state and statistics.

Field names follow the v2 API (``max_dispatches_per_second``); each wire version maps its
own names onto these. ``None`` in a field means "not given" in a request; a stored queue has
every field filled in by the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from urllib.parse import urlsplit, urlunsplit

from tasksd.model.names import QueueName


class QueueKind(Enum):
    """Push queues dispatch App Engine and HTTP tasks; pull queues hold tasks for LeaseTasks."""

    PUSH = "PUSH"
    PULL = "PULL"


class QueueState(Enum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class HttpMethod(Enum):
    POST = "POST"
    GET = "GET"
    HEAD = "HEAD"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    OPTIONS = "OPTIONS"


class Scheme(Enum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"


class UriOverrideEnforceMode(Enum):
    IF_NOT_EXISTS = "IF_NOT_EXISTS"
    ALWAYS = "ALWAYS"


@dataclass(slots=True)
class RateLimits:
    max_dispatches_per_second: float | None = None
    max_burst_size: int | None = None
    max_concurrent_dispatches: int | None = None


@dataclass(slots=True)
class RetryConfig:
    """How failed attempts are retried; ``max_attempts == -1`` means unlimited attempts."""

    max_attempts: int | None = None
    max_retry_duration: timedelta | None = None
    min_backoff: timedelta | None = None
    max_backoff: timedelta | None = None
    max_doublings: int | None = None


@dataclass(slots=True)
class AppEngineRouting:
    service: str = ""
    version: str = ""
    instance: str = ""
    host: str = ""


def with_host(routing: AppEngineRouting, project: str) -> AppEngineRouting:
    """The routing with its output-only ``host`` computed as the API documents:
    ``[instance.][version.][service.]PROJECT.appspot.com``."""
    parts = [p for p in (routing.instance, routing.version, routing.service) if p]
    return replace(routing, host=".".join([*parts, f"{project}.appspot.com"]))


@dataclass(slots=True)
class OAuthToken:
    service_account_email: str = ""
    scope: str = ""


@dataclass(slots=True)
class OidcToken:
    service_account_email: str = ""
    audience: str = ""


@dataclass(slots=True)
class UriOverride:
    """Parts of an HTTP task's URL that the queue replaces; ``None`` leaves a part alone."""

    scheme: Scheme | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    query: str | None = None
    enforce_mode: UriOverrideEnforceMode | None = None


@dataclass(slots=True)
class Header:
    key: str
    value: str


@dataclass(slots=True)
class HttpTarget:
    uri_override: UriOverride | None = None
    http_method: HttpMethod | None = None
    header_overrides: list[Header] = field(default_factory=list)
    oauth_token: OAuthToken | None = None
    oidc_token: OidcToken | None = None


@dataclass(slots=True)
class Queue:
    name: QueueName
    kind: QueueKind | None = None
    app_engine_routing_override: AppEngineRouting | None = None
    http_target: HttpTarget | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    retry_config: RetryConfig = field(default_factory=RetryConfig)
    state: QueueState = QueueState.RUNNING
    purge_time: datetime | None = None
    task_ttl: timedelta | None = None
    tombstone_ttl: timedelta | None = None
    logging_sampling_ratio: float | None = None


@dataclass(slots=True)
class QueueStats:
    tasks_count: int = 0
    oldest_estimated_arrival_time: datetime | None = None
    executed_last_minute_count: int = 0
    concurrent_dispatches_count: int = 0
    effective_execution_rate: float = 0.0
    failed_last_minute_count: int = 0
    """Attempts that ended in the last minute without a 2xx answer (no API field: the console's)."""


def apply_uri_override(url: str, override: UriOverride | None) -> str:
    """The task URL with the queue's override applied (ALWAYS unless IF_NOT_EXISTS)."""
    if override is None:
        return url
    parts = urlsplit(url)
    only_missing = override.enforce_mode is UriOverrideEnforceMode.IF_NOT_EXISTS
    scheme = parts.scheme
    if override.scheme is not None and not (only_missing and scheme):
        scheme = override.scheme.value.lower()
    host = parts.hostname or ""
    if override.host is not None and not (only_missing and host):
        host = override.host
    port = parts.port
    if override.port is not None and not (only_missing and port):
        port = override.port or None
    path = parts.path
    if override.path is not None and not (only_missing and path):
        path = override.path
    query = parts.query
    if override.query is not None and not (only_missing and query):
        query = override.query
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((scheme, netloc, path, query, ""))
