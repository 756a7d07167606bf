"""The v2 API (push queues only), and the factory for the v2 family (v2beta3 too)."""

from __future__ import annotations

from functools import partial
from types import ModuleType

from google.cloud.tasks_v2.types import cloudtasks as ct
from google.longrunning import operations_pb2

from tasksd.api.buffer import buffer_messages
from tasksd.api.cloudtasks import Version, standard_messages, standard_rest_methods
from tasksd.api.v2 import mapping as m

_BATCH_VERBS = {"batchCreate": "BatchCreateTasks", "batchDelete": "BatchDeleteTasks"}


def family_version(name: str, messages: ModuleType, shape: m.Shape, field_names: dict[str, str]) -> Version:
    """The Version of a v2-family API whose request messages live in ``messages``."""
    service = f"google.cloud.tasks.{name}.CloudTasks"
    cmek_config = messages.gct_cmek_config.CmekConfig.pb()
    queue, task = shape.queue_pb, shape.task_pb
    return Version(
        name=name,
        service=service,
        messages=standard_messages(messages, queue, task)
        | {
            "BufferTask": buffer_messages(task, name),
            "BatchCreateTasks": (messages.BatchCreateTasksRequest.pb(), operations_pb2.Operation),
            "BatchDeleteTasks": (messages.BatchDeleteTasksRequest.pb(), operations_pb2.Operation),
            "GetCmekConfig": (messages.GetCmekConfigRequest.pb(), cmek_config),
            "UpdateCmekConfig": (messages.UpdateCmekConfigRequest.pb(), cmek_config),
        },
        types={
            kind: getattr(messages, kind).pb()
            for kind in ("BatchCreateTasksResponse", "BatchCreateTasksMetadata", "BatchDeleteTasksMetadata")
        },
        queue_type=queue,
        queue_from_pb=partial(m.queue_from_pb, shape),
        queue_to_pb=partial(m.queue_to_pb, shape),
        task_from_pb=partial(m.task_from_pb, shape),
        task_to_pb=partial(m.task_to_pb, shape),
        view_from_pb=partial(m.view_from_pb, shape),
        queue_mask_paths=partial(m.queue_mask_paths, shape),
        field_names=field_names,
        rest_methods=standard_rest_methods(
            service, {"batchCreate": "BatchCreateTasks", "batchDelete": "BatchDeleteTasks"}
        )
        | {
            "cloudtasks.projects.locations.getCmekConfig": (service, "GetCmekConfig"),
            "cloudtasks.projects.locations.updateCmekConfig": (service, "UpdateCmekConfig"),
        },
        # "To create the task with an automatically generated ID, use …/tasks:buffer."
        rest_aliases={
            "cloudtasks.projects.locations.queues.tasks.buffer": [f"{name}/{{+queue}}/tasks:buffer"]
        },
        rest_only=frozenset({"BufferTask"}),
        shows=partial(m.shows, shape),
    )


VERSION = family_version("v2", ct, m.V2, m.FIELD_NAMES)
