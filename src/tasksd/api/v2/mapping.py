"""v2 messages ⇄ the model. v2 is the model's own spelling, so this is mostly shape.

LIMITATIONS (differences from the real service):
- Pull queues (created through v2beta2/v2beta3) are not visible through v2: ListQueues leaves
  them out and GetQueue answers NOT_FOUND, as v2 has no way to show them.
- ``max_doublings``, ``max_burst_size`` and ``max_concurrent_dispatches`` have no presence in
  proto3, so 0 means "use the default"; ``max_attempts`` 0 too (-1 is unlimited).
"""

from __future__ import annotations

from datetime import timedelta

from google.cloud.tasks_v2.types import queue as queue_types
from google.cloud.tasks_v2.types import task as task_types
from google.protobuf.message import Message

from tasksd.api import protobuf as pbx
from tasksd.api import shared
from tasksd.model.errors import InvalidArgument
from tasksd.model.names import QueueName, TaskName
from tasksd.model.queue import Queue, QueueKind, QueueStats, RateLimits, RetryConfig
from tasksd.model.task import AppEngineHttpRequest, HttpRequest, PullMessage, Task, TaskView

QueuePb = queue_types.Queue.pb()
TaskPb = task_types.Task.pb()
_VIEW = TaskPb.View
DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)

# Every queue field v2 can update (an empty update mask means all of them).
ALL_QUEUE_PATHS = [
    "app_engine_routing_override",
    "http_target",
    "rate_limits",
    "retry_config",
    "logging_sampling_ratio",
]
OUTPUT_ONLY_QUEUE_PATHS = {"name", "state", "purge_time"}
FIELD_NAMES = {
    "relative_url": "relative_uri",
    "logging_sampling_ratio": "stackdriver_logging_config.sampling_ratio",
}


def shows(queue: Queue) -> bool:
    return queue.kind is not QueueKind.PULL


def retry_config_from_pb(message: Message, field: str) -> RetryConfig:
    attempts = message.max_attempts
    if attempts < -1:
        raise InvalidArgument(
            f"{field}.max_attempts must be greater than 0 (or -1 for unlimited), got {attempts}."
        )
    return RetryConfig(
        max_attempts=attempts or None,
        max_doublings=message.max_doublings or None,
        **shared.retry_durations_of(message, field),  # type: ignore[arg-type]
    )


def set_retry_config(target: Message, config: RetryConfig) -> None:
    target.SetInParent()
    target.max_attempts = config.max_attempts or 0
    shared.set_retry_durations(target, config)
    target.max_doublings = config.max_doublings or 0


def queue_from_pb(message: Message, name: QueueName) -> Queue:
    limits = message.rate_limits
    return Queue(
        name=name,
        kind=None,  # a new queue is a push queue; an update keeps what the queue is
        app_engine_routing_override=shared.routing_of(message.app_engine_routing_override)
        if message.HasField("app_engine_routing_override")
        else None,
        http_target=shared.http_target_of(message.http_target) if message.HasField("http_target") else None,
        rate_limits=RateLimits(
            limits.max_dispatches_per_second or None,
            limits.max_burst_size or None,
            limits.max_concurrent_dispatches or None,
        ),
        retry_config=retry_config_from_pb(message.retry_config, "queue.retry_config"),
        logging_sampling_ratio=message.stackdriver_logging_config.sampling_ratio
        if message.HasField("stackdriver_logging_config")
        else None,
    )


def queue_to_pb(queue: Queue, stats: QueueStats | None = None) -> Message:
    message = QueuePb(name=queue.name.path, state=QueuePb.State.Value(queue.state.value))
    if queue.app_engine_routing_override is not None:
        shared.set_routing(message.app_engine_routing_override, queue.app_engine_routing_override)
    if queue.http_target is not None:
        shared.set_http_target(message.http_target, queue.http_target)
    limits = queue.rate_limits
    message.rate_limits.max_dispatches_per_second = limits.max_dispatches_per_second or 0.0
    message.rate_limits.max_burst_size = limits.max_burst_size or 0
    message.rate_limits.max_concurrent_dispatches = limits.max_concurrent_dispatches or 0
    set_retry_config(message.retry_config, queue.retry_config)
    if queue.purge_time is not None:
        pbx.set_timestamp(message.purge_time, queue.purge_time)
    if queue.logging_sampling_ratio is not None:
        message.stackdriver_logging_config.sampling_ratio = queue.logging_sampling_ratio
    return message


def queue_mask_paths(paths: list[str]) -> list[str]:
    if not paths:
        return list(ALL_QUEUE_PATHS)
    out: list[str] = []
    for path in paths:
        head = path.split(".")[0]
        if head in OUTPUT_ONLY_QUEUE_PATHS:
            raise InvalidArgument(
                f"update_mask: {path!r} is output only; queue state changes through PauseQueue and "
                "ResumeQueue, and the name cannot change."
            )
        if head == "stackdriver_logging_config":
            mapped = "logging_sampling_ratio"
        elif head == "app_engine_routing_override":
            mapped = head
        else:
            mapped = path
        if mapped not in out:
            out.append(mapped)
    return out


def task_from_pb(message: Message, parent: QueueName) -> Task:
    name = TaskName.parse(message.name, "task.name") if message.name else None
    which = message.WhichOneof("message_type")
    payload: AppEngineHttpRequest | HttpRequest | None = None
    if which == "app_engine_http_request":
        request = message.app_engine_http_request
        payload = AppEngineHttpRequest(
            http_method=shared.method_of(request),
            app_engine_routing=shared.routing_of(request.app_engine_routing)
            if request.HasField("app_engine_routing")
            else None,
            relative_url=request.relative_uri,
            headers=dict(request.headers),
            body=request.body,
        )
    elif which == "http_request":
        payload = shared.http_request_of(message.http_request)
    return Task(
        name=name,
        payload=payload,
        schedule_time=pbx.optional_timestamp(message, "schedule_time", "task.schedule_time"),
        dispatch_deadline=pbx.optional_duration(message, "dispatch_deadline", "task.dispatch_deadline"),
        retry_config=retry_config_from_pb(message.retry_config, "task.retry_config")
        if message.HasField("retry_config")
        else None,
    )


def view_from_pb(value: int) -> TaskView:
    return TaskView.FULL if value == _VIEW.Value("FULL") else TaskView.BASIC


def task_to_pb(task: Task, view: TaskView) -> Message:
    assert task.name is not None
    message = TaskPb(name=task.name.path, view=_VIEW.Value(view.value))
    full = view is TaskView.FULL
    payload = task.payload
    if isinstance(payload, AppEngineHttpRequest):
        out = message.app_engine_http_request
        out.SetInParent()
        shared.set_method(out, payload.http_method)
        if payload.app_engine_routing is not None:
            shared.set_routing(out.app_engine_routing, payload.app_engine_routing)
        out.relative_uri = payload.relative_url
        out.headers.update(payload.headers)
        if full:
            out.body = payload.body
    elif isinstance(payload, HttpRequest):
        shared.set_http_request(message.http_request, payload, with_body=full)
    if task.schedule_time is not None:
        pbx.set_timestamp(message.schedule_time, task.schedule_time)
    if task.create_time is not None:
        pbx.set_timestamp(message.create_time, task.create_time)
    if not isinstance(payload, PullMessage):
        pbx.set_duration(message.dispatch_deadline, task.dispatch_deadline or DEFAULT_DISPATCH_DEADLINE)
    status = task.status
    message.dispatch_count = status.dispatch_count
    message.response_count = status.response_count
    if status.first_attempt is not None:
        shared.set_attempt(message.first_attempt, status.first_attempt)
    if status.last_attempt is not None:
        shared.set_attempt(message.last_attempt, status.last_attempt)
    if task.retry_config is not None:
        set_retry_config(message.retry_config, task.retry_config)
    return message
