"""Task rules: names, schedule time, payload kind, sizes, URLs, methods and headers."""

from __future__ import annotations

import functools
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from tasksd.clock import to_us
from tasksd.model.admission import NewTask, Stage
from tasksd.model.errors import InvalidArgument, TasksError
from tasksd.model.names import QueueName
from tasksd.model.network import ANY_ADDRESS, TargetNetworks
from tasksd.model.queue import HttpMethod, with_host
from tasksd.model.task import AppEngineHttpRequest, HttpRequest, PullMessage, Task, TaskStatus
from tasksd.service.queues import check_header, complete_retry_config
from tasksd.targets.appengine import app_engine_user_agent
from tasksd.targets.http import USER_AGENT as HTTP_USER_AGENT

MAX_SCHEDULE_AHEAD = timedelta(days=30)
MAX_URL_LENGTH = 2083
MAX_TAG_LENGTH = 500
MAX_HEADERS_BYTES = 80 * 1024
MAX_APP_ENGINE_TASK_BYTES = 100 * 1024
MAX_TASK_BYTES = 1024 * 1024
HTTP_DEADLINE = (timedelta(seconds=15), timedelta(minutes=30))
APP_ENGINE_DEADLINE = (timedelta(seconds=15), timedelta(hours=24, seconds=15))

_BODY_METHODS_HTTP = {HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH}
_BODY_METHODS_APP_ENGINE = {HttpMethod.POST, HttpMethod.PUT}
_RESERVED_HEADER_PREFIXES = ("x-google-", "x-appengine-")
_SPACE = re.compile(r"\s")


class TaskIds:
    """Generated task ids, shaped like the service's (a 20-digit decimal number) and ordered by
    time: the microsecond of ``now`` followed by four random digits, and never below the last id
    this process made.

    Ordered ids keep a queue's new tasks, and later their tombstones, together at the end of the
    store's indexes, where random ids would scatter them over every page. Another process may
    make the same id in the same microsecond (one chance in 10,000); the service then tries a
    new one (``create_task``)."""

    BASE = 10**19

    def __init__(self, randbelow: Callable[[int], int] | None = None) -> None:
        """``randbelow(n)``: a random integer in [0, n), the random source (tests seed one).
        By default a generator seeded from the system's randomness: the digits only spread
        the ids of processes that make one in the same microsecond, and reading the system's
        randomness for each (``secrets``) costs more than the rest of the id."""
        if randbelow is None:
            bits = random.Random(secrets.randbits(128)).getrandbits  # randrange costs 3 times this
            randbelow = lambda n: bits(32) % n  # noqa: E731 (a bias of n / 2**32 spreads ids as well)
        self._randbelow = randbelow
        self._last = 0

    def next(self, now: datetime) -> str:
        candidate = self.BASE + max(to_us(now), 0) * 10_000 + self._randbelow(10_000)
        self._last = max(candidate, self._last + 1)
        return str(self._last)


GENERATED_ID_TRIES = 5


def prepare_task(
    parent: QueueName, given: Task, now: datetime, ids: TaskIds, networks: TargetNetworks = ANY_ADDRESS
) -> NewTask:
    """The task to store for a CreateTask request, validated as far as it can be without its
    queue; the store checks the rest against the stored queue (``tasksd.model.admission``).

    A broken rule is not raised here but carried in the answer, so that the store answers
    QueueNotFound first and the queue's own checks keep their place among the others.
    """
    stage = Stage.BEFORE_KIND
    try:
        if given.name is None:
            name = parent.task(ids.next(now))
        elif given.name.queue_name != parent:
            raise InvalidArgument(
                f"The queue name from request ('{parent.path}') must be the same as the queue name in the "
                f"named task ('{given.name.queue_name.path}')."
            )
        else:
            name = given.name
        schedule = given.schedule_time
        if schedule is None or schedule < now:
            schedule = now
        elif schedule - now > MAX_SCHEDULE_AHEAD:
            raise InvalidArgument(
                f"task.schedule_time must be at most 30 days in the future, got {schedule.isoformat()}."
            )
        payload = given.payload
        deadline = given.dispatch_deadline
        if payload is None:
            raise InvalidArgument(
                "The task has no payload: set one of pull_message, app_engine_http_request or http_request."
            )
        stage = Stage.BEFORE_TARGET
        if isinstance(payload, PullMessage):
            _check_pull_message(payload)
            if deadline is not None:
                raise InvalidArgument("task.dispatch_deadline cannot be set on a pull task.")
        elif isinstance(payload, AppEngineHttpRequest):
            payload = _check_app_engine_request(payload, parent.project)
            _check_deadline(deadline, APP_ENGINE_DEADLINE)
        else:
            payload = _check_http_request(payload)
            refusal = networks.literal_refusal(_url_host(payload.url) or "")
            if refusal is not None:
                raise InvalidArgument(f"task.http_request.url: {refusal}")
            stage = Stage.LAST
            _check_deadline(deadline, HTTP_DEADLINE)
        stage = Stage.LAST
        retry = complete_retry_config(given.retry_config) if given.retry_config is not None else None
    except TasksError as broken:
        return NewTask(given, None, networks, broken, stage)
    task = Task(
        name=name,
        payload=payload,
        schedule_time=schedule,
        create_time=now.replace(microsecond=0),
        status=TaskStatus(),
        dispatch_deadline=deadline,
        retry_config=retry,
    )
    return NewTask(given, task, networks)


def _check_pull_message(message: PullMessage) -> None:
    if len(message.tag) >= MAX_TAG_LENGTH:
        raise InvalidArgument(
            f"task.pull_message.tag must be less than {MAX_TAG_LENGTH} characters, got {len(message.tag)}."
        )
    size = len(message.payload) + len(message.tag.encode())
    if size > MAX_TASK_BYTES:
        raise InvalidArgument(
            f"task.pull_message is too large: {size} bytes; pull tasks may be at most {MAX_TASK_BYTES} bytes."
        )


def _check_headers(headers: dict[str, str], field: str) -> int:
    size = 0
    for key, value in headers.items():
        check_header(key, value, field)
        size += len(key.encode()) + len(value.encode())
    if size >= MAX_HEADERS_BYTES:
        raise InvalidArgument(f"{field} must be smaller than 80 KB in total, got {size} bytes.")
    return size


def _check_app_engine_request(request: AppEngineHttpRequest, project: str) -> AppEngineHttpRequest:
    field = "task.app_engine_http_request"
    method = request.http_method or HttpMethod.POST
    url = request.relative_url or "/"
    if not url.startswith("/"):
        raise InvalidArgument(f"must begin with '/', got {url!r}.", field=f"{field}.relative_url")
    if _SPACE.search(url):
        raise InvalidArgument("must not contain spaces.", field=f"{field}.relative_url")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(
            f"must be at most {MAX_URL_LENGTH} characters, got {len(url)}.", field=f"{field}.relative_url"
        )
    if request.body and method not in _BODY_METHODS_APP_ENGINE:
        raise InvalidArgument(
            f"is allowed only with the POST or PUT method, not {method.value}.", field=f"{field}.body"
        )
    for key in request.headers:
        if key.lower() == "host" or key.lower().startswith(_RESERVED_HEADER_PREFIXES):
            raise InvalidArgument(f"{field}.headers: the header {key!r} cannot be set.")
    size = _check_headers(request.headers, f"{field}.headers") + len(url) + len(request.body)
    if size > MAX_APP_ENGINE_TASK_BYTES:
        raise InvalidArgument(
            f"{field} is too large: {size} bytes; App Engine tasks may be at most "
            f"{MAX_APP_ENGINE_TASK_BYTES} bytes."
        )
    routing = request.app_engine_routing
    return replace(
        request,
        http_method=method,
        relative_url=url,
        headers=_app_engine_headers(request.headers, request.body),
        app_engine_routing=with_host(routing, project) if routing is not None else None,
    )


def _app_engine_headers(given: dict[str, str], body: bytes) -> dict[str, str]:
    """The headers an App Engine task stores, and is sent with: the caller's (names as sent),
    with ``AppEngine-Google; (+http://code.google.com/appengine)`` appended to User-Agent (or as
    User-Agent) and, when there is a body, Content-Length computed and Content-Type defaulting
    to application/octet-stream."""
    headers: dict[str, str] = {}
    agent = ""
    typed = False
    for key, value in given.items():
        lower = key.lower()
        if lower == "user-agent":
            agent = value
        elif lower != "content-length":  # computed, never the caller's
            typed = typed or lower == "content-type"
            headers[key] = value
    headers["User-Agent"] = app_engine_user_agent(agent)
    if body:
        headers["Content-Length"] = str(len(body))
        if not typed:
            headers["Content-Type"] = "application/octet-stream"
    return headers


def _check_http_request(request: HttpRequest) -> HttpRequest:
    field = "task.http_request"
    method = request.http_method or HttpMethod.POST
    url = request.url
    if not url:
        raise InvalidArgument("HttpRequest.url is required.")
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument("HttpTarget.url must start with 'http://' or 'https://'.")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"{field}.url must be at most {MAX_URL_LENGTH} characters, got {len(url)}.")
    if _url_host(url) is None:
        raise InvalidArgument(f"{field}.url {url[:100]!r} is not a valid URL.")
    if request.body and method not in _BODY_METHODS_HTTP:
        raise InvalidArgument(
            f"is allowed only with the POST, PUT or PATCH method, not {method.value}.", field=f"{field}.body"
        )
    if request.oauth_token is not None and request.oidc_token is not None:
        raise InvalidArgument(f"{field} may set oauth_token or oidc_token, not both.")
    for token, name in ((request.oauth_token, "oauth_token"), (request.oidc_token, "oidc_token")):
        if token is not None and not token.service_account_email:
            raise InvalidArgument(f"{field}.{name}.service_account_email is required.")
    size = _check_headers(request.headers, f"{field}.headers") + len(url) + len(request.body)
    if size > MAX_TASK_BYTES:
        raise InvalidArgument(
            f"{field} is too large: {size} bytes; HTTP tasks may be at most {MAX_TASK_BYTES} bytes."
        )
    # The service sets User-Agent, whatever the caller gave; it adds nothing else (no Content-Type).
    headers = {k: v for k, v in request.headers.items() if k.lower() != "user-agent"}
    headers["User-Agent"] = HTTP_USER_AGENT
    return HttpRequest(
        url=url,
        http_method=method,
        headers=headers,
        body=request.body,
        oauth_token=request.oauth_token,
        oidc_token=request.oidc_token,
    )


@functools.lru_cache(maxsize=4096)
def _url_host(url: str) -> str | None:
    """The host of a task's URL; None when the URL is not a valid one. Cached: the tasks of a
    batch, and of one client, mostly share their URL."""
    try:
        parts = urlsplit(url)  # raises for "http://[::1/", an IPv6 host without its bracket
        host, _ = parts.hostname, parts.port  # .port raises for a port that is no number to 65535
    except ValueError:
        return None
    if _SPACE.search(url):
        return None
    return host or None


def _check_deadline(deadline: timedelta | None, bounds: tuple[timedelta, timedelta]) -> None:
    low, high = bounds
    if deadline is not None and not low <= deadline <= high:
        raise InvalidArgument(
            f"task.dispatch_deadline must be between {int(low.total_seconds())}s and "
            f"{int(high.total_seconds())}s, got {deadline.total_seconds():g}s."
        )
