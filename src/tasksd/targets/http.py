"""HTTP targets: the task's HttpRequest with the queue's HttpTarget overrides applied."""

from __future__ import annotations

from tasksd.model.queue import HttpMethod, HttpTarget, OAuthToken, OidcToken, Queue
from tasksd.model.queue import apply_uri_override as apply_uri_override
from tasksd.model.task import HttpRequest, Task
from tasksd.targets.outbound import History, Outbound, without
from tasksd.targets.tokens import TokenIssuer

USER_AGENT = "Google-Cloud-Tasks"
_NO_TARGET = HttpTarget()
_REPLACED = {"host", "content-length", "user-agent"}
"""Computed for each attempt. Tasks store ``User-Agent: Google-Cloud-Tasks`` (tasksd.service.tasks);
it is set here too, over a queue's header overrides and for tasks stored before they did."""
_RESERVED = ("x-cloudtasks-", "x-google-", "x-appengine-")


def http_outbound(task: Task, queue: Queue, history: History, tokens: TokenIssuer) -> Outbound:
    request = task.payload
    assert isinstance(request, HttpRequest)
    target = queue.http_target or _NO_TARGET
    url = apply_uri_override(request.url, target.uri_override)
    method = target.http_method or request.http_method or HttpMethod.POST
    merged = request.headers
    if target.header_overrides:
        merged = dict(merged)
        for override in target.header_overrides:
            for key in [k for k in merged if k.lower() == override.key.lower()]:
                del merged[key]
            merged[override.key] = override.value
    headers = without(merged, _REPLACED, _RESERVED) if merged else []
    headers += [
        ("User-Agent", USER_AGENT),
        ("X-CloudTasks-QueueName", history.queue_id),
        ("X-CloudTasks-TaskName", history.task_id),
        ("X-CloudTasks-TaskRetryCount", str(history.retry_count)),
        ("X-CloudTasks-TaskExecutionCount", str(history.execution_count)),
        ("X-CloudTasks-TaskETA", history.eta_header),
    ]
    if history.previous_status is not None:
        # A previous attempt that got no response is reported as a gateway timeout; the
        # real service leaves the retry reason of HTTP targets empty.
        headers.append(("X-CloudTasks-TaskPreviousResponse", str(history.previous_status or 504)))
        headers.append(("X-CloudTasks-TaskRetryReason", ""))
    if target.oauth_token or target.oidc_token or request.oauth_token or request.oidc_token:
        authorization = _authorization(target, request, url, tokens)
        if authorization is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
            headers.append(("Authorization", authorization))
    body = request.body if method in (HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH) else b""
    return Outbound(method.value, url, headers, body, follow_redirects=True)


def _authorization(target: HttpTarget, request: HttpRequest, url: str, tokens: TokenIssuer) -> str | None:
    oauth: OAuthToken | None = target.oauth_token or (request.oauth_token if not target.oidc_token else None)
    oidc: OidcToken | None = target.oidc_token or (request.oidc_token if not target.oauth_token else None)
    if oidc is not None:
        audience = oidc.audience or url
        return f"Bearer {tokens.oidc_token(oidc.service_account_email, audience)}"
    if oauth is not None:
        return f"Bearer {tokens.access_token(oauth.service_account_email, oauth.scope)}"
    return None
