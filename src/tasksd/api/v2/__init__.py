"""The v2 API (push queues only), and the factory for the v2 family (v2beta3 too)."""

from __future__ import annotations

from functools import partial
from types import ModuleType

from google.cloud.tasks_v2.types import cloudtasks as ct

from tasksd.api import versions
from tasksd.api.rest.buffer import buffer_messages
from tasksd.api.v2 import mapping
from tasksd.api.versions import Version


def family_version(
    name: str, messages: ModuleType, shape: mapping.Shape, field_names: dict[str, str]
) -> Version:
    """The Version of a v2-family API whose request messages live in ``messages``."""
    service = f"google.cloud.tasks.{name}.CloudTasks"
    queue, task = shape.queue_pb, shape.task_pb
    requests = (
        "BatchCreateTasksRequest",
        "BatchDeleteTasksRequest",
        "GetCmekConfigRequest",
        "UpdateCmekConfigRequest",
    )
    types = {kind: getattr(messages, kind).pb() for kind in (*versions.BATCH_TYPES, *requests)}
    types["CmekConfig"] = messages.gct_cmek_config.CmekConfig.pb()
    return Version(
        name=name,
        service=service,
        messages=versions.standard_messages(messages, queue, task)
        | {"BufferTask": buffer_messages(task, name)}
        | versions.batch_and_cmek_messages(types),
        types=types,
        queue_type=queue,
        queue_from_pb=partial(mapping.queue_from_pb, shape),
        queue_to_pb=partial(mapping.queue_to_pb, shape),
        task_from_pb=partial(mapping.task_from_pb, shape),
        task_to_pb=partial(mapping.task_to_pb, shape),
        view_from_pb=partial(mapping.view_from_pb, shape),
        queue_mask_paths=partial(mapping.queue_mask_paths, shape),
        field_names=field_names,
        rest_methods=versions.standard_rest_methods(service) | versions.batch_and_cmek_rest_methods(service),
        # "To create the task with an automatically generated ID, use …/tasks:buffer."
        rest_aliases={
            "cloudtasks.projects.locations.queues.tasks.buffer": [f"{name}/{{+queue}}/tasks:buffer"]
        },
        rest_only=frozenset({"BufferTask"}),
        sees_queue=partial(mapping.sees_queue, shape),
    )


VERSION = family_version("v2", ct, mapping.V2, mapping.FIELD_NAMES)
