"""v2 (and v2beta3) messages ⇄ the model. v2 is the model's own spelling, so this is mostly
shape; v2beta3 differs in a few places, which its ``Shape`` names.

LIMITATIONS (differences from the real service):
- Pull queues (created through v2beta2/v2beta3) are not visible through v2: ListQueues leaves
  them out and GetQueue answers NOT_FOUND, as v2 has no way to show them.
- ``max_doublings``, ``max_burst_size`` and ``max_concurrent_dispatches`` have no presence in
  proto3, so 0 means "use the default"; ``max_attempts`` 0 too (-1 is unlimited).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from google.cloud.tasks_v2.types import queue as queue_types
from google.cloud.tasks_v2.types import task as task_types
from google.protobuf.message import Message

from tasksd.api import common_mapping, protobuf_util
from tasksd.model.errors import InvalidArgument
from tasksd.model.names import QueueName, TaskName
from tasksd.model.queue import Queue, QueueKind, QueueStats, RateLimits, RetryConfig
from tasksd.model.task import (
    DEFAULT_DISPATCH_DEADLINE,
    AppEngineHttpRequest,
    HttpRequest,
    PullMessage,
    Task,
    TaskView,
)

FIELD_NAMES = {
    "relative_url": "relative_uri",
    "logging_sampling_ratio": "stackdriver_logging_config.sampling_ratio",
}


@dataclass(frozen=True)
class Shape:
    """Where a v2-family version keeps what v2 keeps elsewhere, or has more than v2."""

    queue_pb: type[Message]
    task_pb: type[Message]
    routing_holder: str | None = None
    """The message that holds app_engine_routing_override (v2beta3: app_engine_http_queue)."""
    typed: bool = False
    """Queue.type says PULL or PUSH (v2beta3)."""
    ttls: bool = False
    """Queue.task_ttl and tombstone_ttl exist (v2beta3)."""
    stats: bool = False
    payload_oneof: str = "message_type"
    pull: bool = False
    """Pull queues and pull tasks exist."""

    @functools.cached_property
    def view_numbers(self) -> dict[TaskView, int]:
        """Task.View's number of each view (looked up by name: each version has its enum)."""
        return {view: self.task_pb.View.Value(view.value) for view in TaskView}

    @property
    def all_queue_paths(self) -> list[str]:
        """Every queue field the version can update (an empty update mask means all of them)."""
        paths = [
            "app_engine_routing_override",
            "http_target",
            "rate_limits",
            "retry_config",
            "logging_sampling_ratio",
        ]
        return paths + (["task_ttl", "tombstone_ttl"] if self.ttls else [])


V2 = Shape(queue_types.Queue.pb(), task_types.Task.pb())


def sees_queue(shape: Shape, queue: Queue) -> bool:
    """Whether a version of this shape can see the queue at all (v2 has no pull queues)."""
    return shape.pull or queue.kind is not QueueKind.PULL


def retry_config_from_pb(message: Message, field: str) -> RetryConfig:
    attempts = message.max_attempts
    if attempts < -1:
        raise InvalidArgument(
            f"{field}.max_attempts must be greater than 0 (or -1 for unlimited), got {attempts}."
        )
    return RetryConfig(
        max_attempts=attempts or None,
        max_doublings=message.max_doublings or None,
        **common_mapping.retry_durations_of(message, field),  # type: ignore[arg-type]
    )


def set_retry_config(target: Message, config: RetryConfig) -> None:
    target.SetInParent()
    target.max_attempts = config.max_attempts or 0
    common_mapping.set_retry_durations(target, config)
    target.max_doublings = config.max_doublings or 0


def queue_from_pb(shape: Shape, message: Message, name: QueueName) -> Queue:
    holder = getattr(message, shape.routing_holder) if shape.routing_holder else message
    has_holder = shape.routing_holder is None or message.HasField(shape.routing_holder)
    kind = None  # a new queue is a push queue; an update keeps what the queue is
    if shape.typed and message.type_:
        kind = QueueKind[message.Type.Name(message.type_)]
    elif shape.routing_holder and message.HasField(shape.routing_holder):
        kind = QueueKind.PUSH
    limits = message.rate_limits
    return Queue(
        name=name,
        kind=kind,
        app_engine_routing_override=common_mapping.routing_of(holder.app_engine_routing_override)
        if has_holder and holder.HasField("app_engine_routing_override")
        else None,
        http_target=common_mapping.http_target_of(message.http_target)
        if message.HasField("http_target")
        else None,
        rate_limits=RateLimits(
            limits.max_dispatches_per_second or None,
            limits.max_burst_size or None,
            limits.max_concurrent_dispatches or None,
        ),
        retry_config=retry_config_from_pb(message.retry_config, "queue.retry_config"),
        task_ttl=protobuf_util.optional_duration(message, "task_ttl", "queue.task_ttl")
        if shape.ttls
        else None,
        tombstone_ttl=protobuf_util.optional_duration(message, "tombstone_ttl", "queue.tombstone_ttl")
        if shape.ttls
        else None,
        logging_sampling_ratio=message.stackdriver_logging_config.sampling_ratio
        if message.HasField("stackdriver_logging_config")
        else None,
    )


def queue_to_pb(shape: Shape, queue: Queue, stats: QueueStats | None = None) -> Message:
    message = shape.queue_pb(name=queue.name.path, state=shape.queue_pb.State.Value(queue.state.value))
    if shape.typed and queue.kind is not None:
        message.type_ = message.Type.Value(queue.kind.value)
    if shape.routing_holder and queue.kind is not QueueKind.PULL:
        getattr(message, shape.routing_holder).SetInParent()
    if queue.app_engine_routing_override is not None:
        holder = getattr(message, shape.routing_holder) if shape.routing_holder else message
        common_mapping.set_routing(holder.app_engine_routing_override, queue.app_engine_routing_override)
    if queue.http_target is not None:
        common_mapping.set_http_target(message.http_target, queue.http_target)
    limits = queue.rate_limits
    message.rate_limits.max_dispatches_per_second = limits.max_dispatches_per_second or 0.0
    message.rate_limits.max_burst_size = limits.max_burst_size or 0
    message.rate_limits.max_concurrent_dispatches = limits.max_concurrent_dispatches or 0
    set_retry_config(message.retry_config, queue.retry_config)
    if queue.purge_time is not None:
        protobuf_util.set_timestamp(message.purge_time, queue.purge_time)
    if queue.logging_sampling_ratio is not None:
        message.stackdriver_logging_config.sampling_ratio = queue.logging_sampling_ratio
    if shape.ttls:
        if queue.task_ttl is not None:
            protobuf_util.set_duration(message.task_ttl, queue.task_ttl)
        if queue.tombstone_ttl is not None:
            protobuf_util.set_duration(message.tombstone_ttl, queue.tombstone_ttl)
    if shape.stats and stats is not None:
        common_mapping.set_stats(message.stats, stats)
    return message


def queue_mask_paths(shape: Shape, paths: list[str]) -> list[str]:
    if not paths:
        return shape.all_queue_paths
    out: list[str] = []
    for path in paths:
        common_mapping.reject_output_only(path)
        head = path.split(".")[0]
        mapped: tuple[str, ...] = (path,)
        if head == "stackdriver_logging_config":
            mapped = ("logging_sampling_ratio",)
        elif head == "app_engine_routing_override":
            mapped = (head,)
        elif shape.routing_holder and head == shape.routing_holder:
            mapped = ("kind", "app_engine_routing_override")
        elif shape.typed and head == "type":
            mapped = ("kind",)
        for model_path in mapped:
            if model_path not in out:
                out.append(model_path)
    return out


def task_from_pb(shape: Shape, message: Message, parent: QueueName) -> Task:
    name = TaskName.parse(message.name, "task.name") if message.name else None
    which = message.WhichOneof(shape.payload_oneof)
    payload: AppEngineHttpRequest | HttpRequest | PullMessage | None = None
    if which == "app_engine_http_request":
        payload = common_mapping.app_engine_request_of(
            message.app_engine_http_request, "relative_uri", "body"
        )
    elif which == "http_request":
        payload = common_mapping.http_request_of(message.http_request)
    elif which == "pull_message":
        payload = PullMessage(message.pull_message.payload, message.pull_message.tag)
    return Task(
        name=name,
        payload=payload,
        schedule_time=protobuf_util.optional_timestamp(message, "schedule_time", "task.schedule_time"),
        dispatch_deadline=protobuf_util.optional_duration(
            message, "dispatch_deadline", "task.dispatch_deadline"
        ),
        retry_config=retry_config_from_pb(message.retry_config, "task.retry_config")
        if message.HasField("retry_config")
        else None,
    )


def view_from_pb(shape: Shape, value: int) -> TaskView:
    return TaskView.FULL if value == shape.view_numbers[TaskView.FULL] else TaskView.BASIC


def task_to_pb(shape: Shape, task: Task, view: TaskView) -> Message:
    assert task.name is not None
    message = shape.task_pb(name=task.name.path, view=shape.view_numbers[view])
    full = view is TaskView.FULL
    payload = task.payload
    if isinstance(payload, AppEngineHttpRequest):
        common_mapping.set_app_engine_request(
            message.app_engine_http_request, payload, "relative_uri", "body", with_body=full
        )
    elif isinstance(payload, HttpRequest):
        common_mapping.set_http_request(message.http_request, payload, with_body=full)
    elif isinstance(payload, PullMessage) and shape.pull:
        message.pull_message.SetInParent()
        message.pull_message.tag = payload.tag
        if full:
            message.pull_message.payload = payload.payload
    if task.schedule_time is not None:
        protobuf_util.set_timestamp(message.schedule_time, task.schedule_time)
    if task.create_time is not None:
        protobuf_util.set_timestamp(message.create_time, task.create_time)
    if not isinstance(payload, PullMessage):
        protobuf_util.set_duration(
            message.dispatch_deadline, task.dispatch_deadline or DEFAULT_DISPATCH_DEADLINE
        )
    status = task.status
    message.dispatch_count = status.dispatch_count
    message.response_count = status.response_count
    if status.first_attempt is not None:
        common_mapping.set_attempt(message.first_attempt, status.first_attempt)
    if status.last_attempt is not None:
        common_mapping.set_attempt(message.last_attempt, status.last_attempt)
    if task.retry_config is not None:
        set_retry_config(message.retry_config, task.retry_config)
    return message
