"""Tasks: their payload (pull message, App Engine request or HTTP request) and status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from tasksd.model.names import TaskName
from tasksd.model.queue import AppEngineRouting, HttpMethod, OAuthToken, OidcToken, RetryConfig

DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)
"""How long an attempt waits for its answer when the task names no dispatch deadline."""


class TaskView(Enum):
    """BASIC leaves out payloads and bodies; FULL includes them."""

    BASIC = "BASIC"
    FULL = "FULL"


@dataclass(slots=True)
class PullMessage:
    payload: bytes = b""
    tag: str = ""


@dataclass(slots=True)
class AppEngineHttpRequest:
    http_method: HttpMethod | None = None
    app_engine_routing: AppEngineRouting | None = None
    relative_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(slots=True)
class HttpRequest:
    url: str = ""
    http_method: HttpMethod | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    oauth_token: OAuthToken | None = None
    oidc_token: OidcToken | None = None


Payload = PullMessage | AppEngineHttpRequest | HttpRequest


@dataclass(slots=True)
class ResponseStatus:
    """The google.rpc.Status of one attempt's response."""

    code: int
    message: str = ""


@dataclass(slots=True)
class Attempt:
    schedule_time: datetime | None = None
    dispatch_time: datetime | None = None
    response_time: datetime | None = None
    response_status: ResponseStatus | None = None


@dataclass(slots=True)
class TaskStatus:
    """What the API shows (counts, first and last attempt) and what dispatch headers need."""

    dispatch_count: int = 0
    response_count: int = 0
    first_attempt: Attempt | None = None
    last_attempt: Attempt | None = None
    execution_count: int = 0
    """Attempts whose response was not a 5xx (the X-CloudTasks-TaskExecutionCount header)."""
    last_http_status: int | None = None
    """HTTP status of the last attempt's response; 0 when it got none; None before any."""


@dataclass(slots=True)
class Task:
    """A task; ``name`` is None in a create request that lets the server choose the id."""

    name: TaskName | None
    payload: Payload | None = None
    schedule_time: datetime | None = None
    create_time: datetime | None = None
    status: TaskStatus = field(default_factory=TaskStatus)
    dispatch_deadline: timedelta | None = None
    retry_config: RetryConfig | None = None


@dataclass(slots=True)
class AttemptResult:
    """How a dispatched attempt ended, and what happens to the task next."""

    response_time: datetime
    http_status: int
    """The target's HTTP status; 0 when no response came (connection error, deadline)."""
    status: ResponseStatus
    executed: bool
    """Whether the attempt counts in the task's execution count (per the target's rules)."""
    next_schedule_time: datetime | None
    """When to try again; None when the task is done (it succeeded or has no retries left)."""
