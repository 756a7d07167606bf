"""v2beta2 messages ⇄ the model: the field names and shapes of this version, nothing else.

LIMITATIONS (differences from the real service):
- ``max_doublings``, ``max_burst_size``, ``max_concurrent_tasks`` and
  ``max_tasks_dispatched_per_second`` have no presence in proto3, so 0 means "use the default".
- The task-level ``retryConfig`` that the discovery document lists is not in the published
  v2beta2 protobuf; a REST request carrying it is rejected as an unknown field.
"""

from __future__ import annotations

from google.cloud.tasks_v2beta2.types import queue as queue_types
from google.cloud.tasks_v2beta2.types import target as target_types
from google.cloud.tasks_v2beta2.types import task as task_types
from google.protobuf.message import Message

from tasksd.api import protobuf as pbx
from tasksd.model.errors import InvalidArgument
from tasksd.model.names import QueueName, TaskName
from tasksd.model.queue import (
    AppEngineRouting,
    Header,
    HttpMethod,
    HttpTarget,
    OAuthToken,
    OidcToken,
    Queue,
    QueueKind,
    QueueStats,
    RateLimits,
    RetryConfig,
    Scheme,
    UriOverride,
    UriOverrideEnforceMode,
)
from tasksd.model.task import (
    AppEngineHttpRequest,
    Attempt,
    HttpRequest,
    PullMessage,
    Task,
    TaskView,
)

QueuePb = queue_types.Queue.pb()
TaskPb = task_types.Task.pb()
_HTTP_METHOD = target_types.HttpRequest.pb().DESCRIPTOR.fields_by_name["http_method"].enum_type
_ViewPb = task_types.Task.pb().View

# Queue field paths of this version → the model's field paths (for update masks). A target
# names the queue's kind too, so that a mask cannot change what a queue is unnoticed.
QUEUE_MASK_PATHS: dict[str, tuple[str, ...]] = {
    "pull_target": ("kind",),
    "app_engine_http_target": ("kind", "app_engine_routing_override"),
    "app_engine_http_target.app_engine_routing_override": ("kind", "app_engine_routing_override"),
    "http_target": ("kind", "http_target"),
    "rate_limits.max_tasks_dispatched_per_second": ("rate_limits.max_dispatches_per_second",),
    "rate_limits.max_concurrent_tasks": ("rate_limits.max_concurrent_dispatches",),
    "retry_config.unlimited_attempts": ("retry_config.max_attempts",),
}
OUTPUT_ONLY_QUEUE_PATHS = {"name", "state", "purge_time", "stats"}

# The model's field names that this version spells differently, for error messages.
FIELD_NAMES: dict[str, str] = {
    "max_dispatches_per_second": "max_tasks_dispatched_per_second",
    "max_concurrent_dispatches": "max_concurrent_tasks",
    "queue.app_engine_routing_override": "queue.app_engine_http_target.app_engine_routing_override",
    "task.app_engine_http_request.body": "task.app_engine_http_request.payload",
}


# -- small helpers -----------------------------------------------------------------------


def _method(value: int) -> HttpMethod | None:
    return (
        HttpMethod[_HTTP_METHOD.values_by_number[value].name]
        if value in _HTTP_METHOD.values_by_number and value
        else None
    )


def _method_pb(value: HttpMethod | None) -> int:
    return _HTTP_METHOD.values_by_name[value.value].number if value is not None else 0


def _routing(message: Message) -> AppEngineRouting:
    return AppEngineRouting(message.service, message.version, message.instance, message.host)


def _set_routing(target: Message, routing: AppEngineRouting) -> None:
    target.service, target.version = routing.service, routing.version
    target.instance, target.host = routing.instance, routing.host


def _tokens(message: Message) -> tuple[OAuthToken | None, OidcToken | None]:
    which = message.WhichOneof("authorization_header")
    oauth = message.oauth_token if which == "oauth_token" else None
    oidc = message.oidc_token if which == "oidc_token" else None
    return (
        OAuthToken(oauth.service_account_email, oauth.scope) if oauth is not None else None,
        OidcToken(oidc.service_account_email, oidc.audience) if oidc is not None else None,
    )


def _set_tokens(target: Message, oauth: OAuthToken | None, oidc: OidcToken | None) -> None:
    if oauth is not None:
        target.oauth_token.service_account_email = oauth.service_account_email
        target.oauth_token.scope = oauth.scope
    if oidc is not None:
        target.oidc_token.service_account_email = oidc.service_account_email
        target.oidc_token.audience = oidc.audience


# -- queues ------------------------------------------------------------------------------


def queue_from_pb(message: Message, name: QueueName) -> Queue:
    """The queue a request describes (``name`` already parsed by the caller)."""
    which = message.WhichOneof("target_type")
    kind = {"pull_target": QueueKind.PULL, None: None}.get(which, QueueKind.PUSH)
    routing = None
    if which == "app_engine_http_target" and message.app_engine_http_target.HasField(
        "app_engine_routing_override"
    ):
        routing = _routing(message.app_engine_http_target.app_engine_routing_override)
    http_target = _http_target(message.http_target) if which == "http_target" else None
    limits = message.rate_limits
    return Queue(
        name=name,
        kind=kind,
        app_engine_routing_override=routing,
        http_target=http_target,
        rate_limits=RateLimits(
            limits.max_tasks_dispatched_per_second or None,
            limits.max_burst_size or None,
            limits.max_concurrent_tasks or None,
        ),
        retry_config=retry_config_from_pb(message.retry_config),
        task_ttl=pbx.optional_duration(message, "task_ttl", "queue.task_ttl"),
        tombstone_ttl=pbx.optional_duration(message, "tombstone_ttl", "queue.tombstone_ttl"),
    )


def retry_config_from_pb(message: Message) -> RetryConfig:
    attempts: int | None
    if message.WhichOneof("num_attempts") == "unlimited_attempts" and message.unlimited_attempts:
        attempts = -1
    else:
        attempts = message.max_attempts or None
        if attempts is not None and attempts < 0:
            raise InvalidArgument(
                f"retry_config.max_attempts must be greater than 0, got {attempts}; set "
                "unlimited_attempts for no limit."
            )
    field = "queue.retry_config"
    return RetryConfig(
        max_attempts=attempts,
        max_retry_duration=pbx.optional_duration(
            message, "max_retry_duration", f"{field}.max_retry_duration"
        ),
        min_backoff=pbx.optional_duration(message, "min_backoff", f"{field}.min_backoff"),
        max_backoff=pbx.optional_duration(message, "max_backoff", f"{field}.max_backoff"),
        max_doublings=message.max_doublings or None,
    )


def _http_target(message: Message) -> HttpTarget:
    override = None
    if message.HasField("uri_override"):
        uri = message.uri_override
        override = UriOverride(
            scheme=Scheme[uri.Scheme.Name(uri.scheme)] if uri.HasField("scheme") and uri.scheme else None,
            host=uri.host if uri.HasField("host") else None,
            port=uri.port if uri.HasField("port") else None,
            path=uri.path_override.path if uri.HasField("path_override") else None,
            query=uri.query_override.query_params if uri.HasField("query_override") else None,
            enforce_mode=(
                UriOverrideEnforceMode[uri.UriOverrideEnforceMode.Name(uri.uri_override_enforce_mode)]
                if uri.uri_override_enforce_mode
                else None
            ),
        )
    oauth, oidc = _tokens(message)
    return HttpTarget(
        uri_override=override,
        http_method=_method(message.http_method),
        header_overrides=[Header(h.header.key, h.header.value) for h in message.header_overrides],
        oauth_token=oauth,
        oidc_token=oidc,
    )


def queue_to_pb(queue: Queue, stats: QueueStats | None = None) -> Message:
    message = QueuePb(name=queue.name.path)
    if queue.kind is QueueKind.PULL:
        message.pull_target.SetInParent()
    elif queue.http_target is not None:
        _set_http_target(message.http_target, queue.http_target)
    else:
        message.app_engine_http_target.SetInParent()
        if queue.app_engine_routing_override is not None:
            _set_routing(
                message.app_engine_http_target.app_engine_routing_override,
                queue.app_engine_routing_override,
            )
    limits = queue.rate_limits
    message.rate_limits.max_tasks_dispatched_per_second = limits.max_dispatches_per_second or 0.0
    message.rate_limits.max_burst_size = limits.max_burst_size or 0
    message.rate_limits.max_concurrent_tasks = limits.max_concurrent_dispatches or 0
    _set_retry_config(message.retry_config, queue.retry_config, pull=queue.kind is QueueKind.PULL)
    message.state = QueuePb.State.Value(queue.state.value)
    if queue.purge_time is not None:
        pbx.set_timestamp(message.purge_time, queue.purge_time)
    if queue.task_ttl is not None:
        pbx.set_duration(message.task_ttl, queue.task_ttl)
    if queue.tombstone_ttl is not None:
        pbx.set_duration(message.tombstone_ttl, queue.tombstone_ttl)
    if stats is not None:
        out = message.stats
        out.tasks_count = stats.tasks_count
        if stats.oldest_estimated_arrival_time is not None:
            pbx.set_timestamp(out.oldest_estimated_arrival_time, stats.oldest_estimated_arrival_time)
        out.executed_last_minute_count = stats.executed_last_minute_count
        out.concurrent_dispatches_count = stats.concurrent_dispatches_count
        out.effective_execution_rate = stats.effective_execution_rate
    return message


def _set_retry_config(target: Message, config: RetryConfig, *, pull: bool) -> None:
    if config.max_attempts == -1:
        target.unlimited_attempts = True
    else:
        target.max_attempts = config.max_attempts or 0
    if pull:
        return
    for name in ("max_retry_duration", "min_backoff", "max_backoff"):
        value = getattr(config, name)
        if value is not None:
            pbx.set_duration(getattr(target, name), value)
    target.max_doublings = config.max_doublings or 0


def _set_http_target(target: Message, http: HttpTarget) -> None:
    target.SetInParent()
    uri = http.uri_override
    if uri is not None:
        out = target.uri_override
        out.SetInParent()
        if uri.scheme is not None:
            out.scheme = out.Scheme.Value(uri.scheme.value)
        if uri.host is not None:
            out.host = uri.host
        if uri.port is not None:
            out.port = uri.port
        if uri.path is not None:
            out.path_override.path = uri.path
        if uri.query is not None:
            out.query_override.query_params = uri.query
        if uri.enforce_mode is not None:
            out.uri_override_enforce_mode = out.UriOverrideEnforceMode.Value(uri.enforce_mode.value)
    target.http_method = _method_pb(http.http_method)
    for header in http.header_overrides:
        item = target.header_overrides.add()
        item.header.key, item.header.value = header.key, header.value
    _set_tokens(target, http.oauth_token, http.oidc_token)


def queue_mask_paths(paths: list[str]) -> list[str]:
    """An update mask of this version in the model's field paths.

    Raises:
        InvalidArgument: a path names an output-only field.
    """
    out: list[str] = []
    for path in paths:
        if path.split(".")[0] in OUTPUT_ONLY_QUEUE_PATHS:
            raise InvalidArgument(
                f"update_mask: {path!r} is output only; queue state changes through PauseQueue "
                "and ResumeQueue, and the name cannot change."
            )
        mapped = QUEUE_MASK_PATHS.get(path)
        if mapped is None and path.startswith("app_engine_http_target."):
            mapped = QUEUE_MASK_PATHS["app_engine_http_target"]
        if mapped is None and path.startswith("http_target."):
            mapped = ("kind", path)
        for model_path in mapped or (path,):
            if model_path not in out:
                out.append(model_path)
    return out


# -- tasks -------------------------------------------------------------------------------


def task_from_pb(message: Message, parent: QueueName) -> Task:
    """The task a CreateTask request describes."""
    name = TaskName.parse(message.name, "task.name") if message.name else None
    which = message.WhichOneof("payload_type")
    payload: PullMessage | AppEngineHttpRequest | HttpRequest | None = None
    if which == "pull_message":
        payload = PullMessage(message.pull_message.payload, message.pull_message.tag)
    elif which == "app_engine_http_request":
        request = message.app_engine_http_request
        payload = AppEngineHttpRequest(
            http_method=_method(request.http_method),
            app_engine_routing=_routing(request.app_engine_routing)
            if request.HasField("app_engine_routing")
            else None,
            relative_url=request.relative_url,
            headers=dict(request.headers),
            body=request.payload,
        )
    elif which == "http_request":
        request = message.http_request
        oauth, oidc = _tokens(request)
        payload = HttpRequest(
            url=request.url,
            http_method=_method(request.http_method),
            headers=dict(request.headers),
            body=request.body,
            oauth_token=oauth,
            oidc_token=oidc,
        )
    return Task(
        name=name,
        payload=payload,
        schedule_time=pbx.optional_timestamp(message, "schedule_time", "task.schedule_time"),
    )


def view_from_pb(value: int) -> TaskView:
    return TaskView.FULL if value == _ViewPb.Value("FULL") else TaskView.BASIC


def task_to_pb(task: Task, view: TaskView) -> Message:
    assert task.name is not None
    message = TaskPb(name=task.name.path, view=_ViewPb.Value(view.value))
    full = view is TaskView.FULL
    payload = task.payload
    if isinstance(payload, PullMessage):
        message.pull_message.tag = payload.tag
        if full:
            message.pull_message.payload = payload.payload
        message.pull_message.SetInParent()
    elif isinstance(payload, AppEngineHttpRequest):
        out = message.app_engine_http_request
        out.SetInParent()
        out.http_method = _method_pb(payload.http_method)
        if payload.app_engine_routing is not None:
            _set_routing(out.app_engine_routing, payload.app_engine_routing)
        out.relative_url = payload.relative_url
        out.headers.update(payload.headers)
        if full:
            out.payload = payload.body
    elif isinstance(payload, HttpRequest):
        http = message.http_request
        http.SetInParent()
        http.url = payload.url
        http.http_method = _method_pb(payload.http_method)
        http.headers.update(payload.headers)
        if full:
            http.body = payload.body
        _set_tokens(http, payload.oauth_token, payload.oidc_token)
    if task.schedule_time is not None:
        pbx.set_timestamp(message.schedule_time, task.schedule_time)
    if task.create_time is not None:
        pbx.set_timestamp(message.create_time, task.create_time)
    status = task.status
    message.status.attempt_dispatch_count = status.dispatch_count
    message.status.attempt_response_count = status.response_count
    if status.first_attempt is not None:
        _set_attempt(message.status.first_attempt_status, status.first_attempt)
    if status.last_attempt is not None:
        _set_attempt(message.status.last_attempt_status, status.last_attempt)
    return message


def _set_attempt(target: Message, attempt: Attempt) -> None:
    target.SetInParent()
    for name in ("schedule_time", "dispatch_time", "response_time"):
        value = getattr(attempt, name)
        if value is not None:
            pbx.set_timestamp(getattr(target, name), value)
    if attempt.response_status is not None:
        target.response_status.code = attempt.response_status.code
        target.response_status.message = attempt.response_status.message
