"""The v2 API (push queues only), and the factory for the v2 family (v2beta3 too)."""

from __future__ import annotations

from functools import partial
from types import ModuleType

from google.cloud.tasks_v2.types import cloudtasks as ct

from tasksd.api.buffer import buffer_messages
from tasksd.api.cloudtasks import (
    BATCH_TYPES,
    Version,
    batch_and_cmek_messages,
    batch_and_cmek_rest_methods,
    standard_messages,
    standard_rest_methods,
)
from tasksd.api.v2 import mapping as m


def family_version(name: str, messages: ModuleType, shape: m.Shape, field_names: dict[str, str]) -> Version:
    """The Version of a v2-family API whose request messages live in ``messages``."""
    service = f"google.cloud.tasks.{name}.CloudTasks"
    queue, task = shape.queue_pb, shape.task_pb
    requests = (
        "BatchCreateTasksRequest",
        "BatchDeleteTasksRequest",
        "GetCmekConfigRequest",
        "UpdateCmekConfigRequest",
    )
    types = {kind: getattr(messages, kind).pb() for kind in (*BATCH_TYPES, *requests)}
    types["CmekConfig"] = messages.gct_cmek_config.CmekConfig.pb()
    return Version(
        name=name,
        service=service,
        messages=standard_messages(messages, queue, task)
        | {"BufferTask": buffer_messages(task, name)}
        | batch_and_cmek_messages(types),
        types=types,
        queue_type=queue,
        queue_from_pb=partial(m.queue_from_pb, shape),
        queue_to_pb=partial(m.queue_to_pb, shape),
        task_from_pb=partial(m.task_from_pb, shape),
        task_to_pb=partial(m.task_to_pb, shape),
        view_from_pb=partial(m.view_from_pb, shape),
        queue_mask_paths=partial(m.queue_mask_paths, shape),
        field_names=field_names,
        rest_methods=standard_rest_methods(service) | batch_and_cmek_rest_methods(service),
        # "To create the task with an automatically generated ID, use …/tasks:buffer."
        rest_aliases={
            "cloudtasks.projects.locations.queues.tasks.buffer": [f"{name}/{{+queue}}/tasks:buffer"]
        },
        rest_only=frozenset({"BufferTask"}),
        shows=partial(m.shows, shape),
    )


VERSION = family_version("v2", ct, m.V2, m.FIELD_NAMES)
