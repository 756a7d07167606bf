"""App Engine targets: requests to ``--app-engine-url`` (or a per-service URL) with the
Host, X-AppEngine-* headers and defaults the API documents."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasksd.model.queue import AppEngineRouting, HttpMethod, Queue, with_host
from tasksd.model.task import AppEngineHttpRequest, Task
from tasksd.targets.outbound import History, Outbound

USER_AGENT = "AppEngine-Google; (+http://code.google.com/appengine)"
_REPLACED = {"host", "content-length"}
_RESERVED = ("x-google-", "x-appengine-")


def app_engine_user_agent(agent: str) -> str:
    """The User-Agent sent for a caller's ``agent`` (empty: none): it with the service's appended,
    once."""
    if not agent:
        return USER_AGENT
    return agent if agent.endswith(USER_AGENT) else f"{agent} {USER_AGENT}"


@dataclass(frozen=True, slots=True)
class AppEngineUrls:
    """Where App Engine tasks go: a default base URL and, optionally, one per service."""

    default: str = "http://127.0.0.1:8080"
    services: dict[str, str] = field(default_factory=dict)

    def base(self, service: str) -> str:
        return self.services.get(service, self.default).rstrip("/")


def app_engine_outbound(task: Task, queue: Queue, history: History, urls: AppEngineUrls) -> Outbound:
    request = task.payload
    assert isinstance(request, AppEngineHttpRequest) and task.name is not None
    routing = queue.app_engine_routing_override or request.app_engine_routing or AppEngineRouting()
    routing = with_host(routing, task.name.project)
    method = request.http_method or HttpMethod.POST
    # Tasks store the User-Agent and Content-Type they are sent with (tasksd.service.tasks);
    # tasks stored before tasksd did so get them here.
    headers: list[tuple[str, str]] = []
    agent = ""
    typed = False
    for key, value in request.headers.items():
        lower = key.lower()
        if lower in _REPLACED or lower.startswith(_RESERVED):
            continue
        if lower == "user-agent":
            agent = value
            continue
        if lower == "content-type":
            typed = True
        headers.append((key, value))
    headers.append(("User-Agent", app_engine_user_agent(agent)))
    body = request.body if method in (HttpMethod.POST, HttpMethod.PUT) else b""
    if body and not typed:
        headers.append(("Content-Type", "application/octet-stream"))
    headers += [
        ("Host", routing.host),
        ("X-AppEngine-QueueName", history.queue_id),
        ("X-AppEngine-TaskName", history.task_id),
        ("X-AppEngine-TaskRetryCount", str(history.retry_count)),
        ("X-AppEngine-TaskExecutionCount", str(history.execution_count)),
        ("X-AppEngine-TaskETA", history.eta_header),
    ]
    if history.previous_status is not None:
        headers.append(("X-AppEngine-TaskPreviousResponse", str(history.previous_status)))
        reason = "App Error" if history.previous_status else "Instance Unavailable"
        headers.append(("X-AppEngine-TaskRetryReason", reason))
    url = urls.base(routing.service) + (request.relative_url or "/")
    return Outbound(method.value, url, headers, body, follow_redirects=False)
