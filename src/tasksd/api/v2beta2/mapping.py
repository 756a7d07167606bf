"""v2beta2 messages ⇄ the model: the field names and shapes of this version, nothing else.

LIMITATIONS (differences from the real service):
- ``max_doublings``, ``max_burst_size``, ``max_concurrent_tasks`` and
  ``max_tasks_dispatched_per_second`` have no presence in proto3, so 0 means "use the default".
- The task-level ``retryConfig`` that the discovery document lists is not in the published
  v2beta2 protobuf, so gRPC neither takes nor shows it (REST, which serves the document, does).
"""

from __future__ import annotations

from google.cloud.tasks_v2beta2.types import queue as queue_types
from google.cloud.tasks_v2beta2.types import task as task_types
from google.protobuf.message import Message

from tasksd.api import common_mapping, protobuf_util
from tasksd.model.errors import InvalidArgument
from tasksd.model.names import QueueName, TaskName
from tasksd.model.queue import Queue, QueueKind, QueueStats, RateLimits, RetryConfig
from tasksd.model.task import AppEngineHttpRequest, HttpRequest, PullMessage, Task, TaskView

QueuePb = queue_types.Queue.pb()
TaskPb = task_types.Task.pb()
_VIEW = TaskPb.View
_VIEW_NUMBERS = {view: _VIEW.Value(view.value) for view in TaskView}

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

# The model's field names that this version spells differently, for error messages.
FIELD_NAMES: dict[str, str] = {
    "max_dispatches_per_second": "max_tasks_dispatched_per_second",
    "max_concurrent_dispatches": "max_concurrent_tasks",
    "queue.app_engine_routing_override": "queue.app_engine_http_target.app_engine_routing_override",
    "task.app_engine_http_request.body": "task.app_engine_http_request.payload",
}


# -- queues ------------------------------------------------------------------------------


def queue_from_pb(message: Message, name: QueueName) -> Queue:
    """The queue a request describes (``name`` already parsed by the caller)."""
    which = message.WhichOneof("target_type")
    kind = {"pull_target": QueueKind.PULL, None: None}.get(which, QueueKind.PUSH)
    routing = None
    if which == "app_engine_http_target" and message.app_engine_http_target.HasField(
        "app_engine_routing_override"
    ):
        routing = common_mapping.routing_of(message.app_engine_http_target.app_engine_routing_override)
    limits = message.rate_limits
    return Queue(
        name=name,
        kind=kind,
        app_engine_routing_override=routing,
        http_target=common_mapping.http_target_of(message.http_target) if which == "http_target" else None,
        rate_limits=RateLimits(
            limits.max_tasks_dispatched_per_second or None,
            limits.max_burst_size or None,
            limits.max_concurrent_tasks or None,
        ),
        retry_config=retry_config_from_pb(message.retry_config, "queue.retry_config"),
        task_ttl=protobuf_util.optional_duration(message, "task_ttl", "queue.task_ttl"),
        tombstone_ttl=protobuf_util.optional_duration(message, "tombstone_ttl", "queue.tombstone_ttl"),
    )


def retry_config_from_pb(message: Message, field: str) -> RetryConfig:
    """The RetryConfig at ``field`` (``queue.retry_config`` or ``task.retry_config``)."""
    attempts: int | None
    if message.WhichOneof("num_attempts") == "unlimited_attempts" and message.unlimited_attempts:
        attempts = -1
    else:
        attempts = message.max_attempts or None
        if attempts is not None and attempts < 0:
            raise InvalidArgument(
                f"{field}.max_attempts must be greater than 0, got {attempts}; set "
                "unlimited_attempts for no limit."
            )
    return RetryConfig(
        max_attempts=attempts,
        max_doublings=message.max_doublings or None,
        **common_mapping.retry_durations_of(message, field),  # type: ignore[arg-type]
    )


def set_retry_config(message: Message, config: RetryConfig, durations: bool = True) -> None:
    """``message`` (a RetryConfig) as ``config``; ``durations`` False leaves out the backoff
    fields, output only and not shown for pull queues."""
    if config.max_attempts == -1:
        message.unlimited_attempts = True
    else:
        message.max_attempts = config.max_attempts or 0
    if durations:
        common_mapping.set_retry_durations(message, config)
        message.max_doublings = config.max_doublings or 0


def queue_to_pb(queue: Queue, stats: QueueStats | None = None) -> Message:
    message = QueuePb(name=queue.name.path)
    if queue.kind is QueueKind.PULL:
        message.pull_target.SetInParent()
    elif queue.http_target is not None:
        common_mapping.set_http_target(message.http_target, queue.http_target)
    else:
        message.app_engine_http_target.SetInParent()
        if queue.app_engine_routing_override is not None:
            common_mapping.set_routing(
                message.app_engine_http_target.app_engine_routing_override, queue.app_engine_routing_override
            )
    limits = queue.rate_limits
    message.rate_limits.max_tasks_dispatched_per_second = limits.max_dispatches_per_second or 0.0
    message.rate_limits.max_burst_size = limits.max_burst_size or 0
    message.rate_limits.max_concurrent_tasks = limits.max_concurrent_dispatches or 0
    set_retry_config(message.retry_config, queue.retry_config, durations=queue.kind is not QueueKind.PULL)
    message.state = QueuePb.State.Value(queue.state.value)
    if queue.purge_time is not None:
        protobuf_util.set_timestamp(message.purge_time, queue.purge_time)
    if queue.task_ttl is not None:
        protobuf_util.set_duration(message.task_ttl, queue.task_ttl)
    if queue.tombstone_ttl is not None:
        protobuf_util.set_duration(message.tombstone_ttl, queue.tombstone_ttl)
    if stats is not None:
        common_mapping.set_stats(message.stats, stats)
    return message


def queue_mask_paths(paths: list[str]) -> list[str]:
    """An update mask of this version in the model's field paths.

    Raises:
        InvalidArgument: a path names an output-only field.
    """
    out: list[str] = []
    for path in paths:
        common_mapping.reject_output_only(path)
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
        payload = common_mapping.app_engine_request_of(
            message.app_engine_http_request, "relative_url", "payload"
        )
    elif which == "http_request":
        payload = common_mapping.http_request_of(message.http_request)
    # Only REST's Task (the discovery document's) has a task-level retry_config.
    retry = message.retry_config if _has_retry_config(message) and message.HasField("retry_config") else None
    return Task(
        name=name,
        payload=payload,
        schedule_time=protobuf_util.optional_timestamp(message, "schedule_time", "task.schedule_time"),
        retry_config=retry_config_from_pb(retry, "task.retry_config") if retry is not None else None,
    )


def _has_retry_config(message: Message) -> bool:
    return "retry_config" in message.DESCRIPTOR.fields_by_name


def view_from_pb(value: int) -> TaskView:
    return TaskView.FULL if value == _VIEW_NUMBERS[TaskView.FULL] else TaskView.BASIC


def task_to_pb(task: Task, view: TaskView, task_type: type[Message] = TaskPb) -> Message:
    """The ``task_type`` message (the published Task, or REST's) of a task."""
    assert task.name is not None
    message = task_type(name=task.name.path, view=_VIEW_NUMBERS[view])
    full = view is TaskView.FULL
    payload = task.payload
    if isinstance(payload, PullMessage):
        message.pull_message.SetInParent()
        message.pull_message.tag = payload.tag
        if full:
            message.pull_message.payload = payload.payload
    elif isinstance(payload, AppEngineHttpRequest):
        common_mapping.set_app_engine_request(
            message.app_engine_http_request, payload, "relative_url", "payload", with_body=full
        )
    elif isinstance(payload, HttpRequest):
        common_mapping.set_http_request(message.http_request, payload, with_body=full)
    if task.schedule_time is not None:
        protobuf_util.set_timestamp(message.schedule_time, task.schedule_time)
    if task.create_time is not None:
        protobuf_util.set_timestamp(message.create_time, task.create_time)
    status = task.status
    message.status.attempt_dispatch_count = status.dispatch_count
    message.status.attempt_response_count = status.response_count
    if status.first_attempt is not None:
        common_mapping.set_attempt(message.status.first_attempt_status, status.first_attempt)
    if status.last_attempt is not None:
        common_mapping.set_attempt(message.status.last_attempt_status, status.last_attempt)
    if task.retry_config is not None and _has_retry_config(message):
        set_retry_config(
            message.retry_config, task.retry_config, durations=not isinstance(payload, PullMessage)
        )
    return message
