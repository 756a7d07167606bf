"""The v2beta2 API: the version with pull queues and leasing.

Two surfaces of one API: gRPC serves the published protobuf (``VERSION``), REST serves the
discovery document (``REST_VERSION``), which has more: a task-level ``retryConfig``, batches
and the CMEK config. Both run the same handlers on the same service."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from google.cloud.tasks_v2beta2.types import cloudtasks as ct
from google.protobuf import empty_pb2

from tasksd.api import versions
from tasksd.api.rest.buffer import buffer_messages
from tasksd.api.v2beta2 import mapping, rest
from tasksd.api.versions import Version

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"

VERSION = Version(
    name="v2beta2",
    service=SERVICE,
    messages=versions.standard_messages(ct, mapping.QueuePb, mapping.TaskPb)
    | {
        "UploadQueueYaml": (ct.UploadQueueYamlRequest.pb(), empty_pb2.Empty),
        "LeaseTasks": (ct.LeaseTasksRequest.pb(), ct.LeaseTasksResponse.pb()),
        "AcknowledgeTask": (ct.AcknowledgeTaskRequest.pb(), empty_pb2.Empty),
        "RenewLease": (ct.RenewLeaseRequest.pb(), mapping.TaskPb),
        "CancelLease": (ct.CancelLeaseRequest.pb(), mapping.TaskPb),
    },
    queue_type=mapping.QueuePb,
    queue_from_pb=mapping.queue_from_pb,
    queue_to_pb=mapping.queue_to_pb,
    task_from_pb=mapping.task_from_pb,
    task_to_pb=mapping.task_to_pb,
    view_from_pb=mapping.view_from_pb,
    queue_mask_paths=mapping.queue_mask_paths,
    field_names=mapping.FIELD_NAMES,
    rest_methods={},
    transports=frozenset({"grpc"}),
)


def _rest_version() -> Version:
    types = rest.messages()
    task = types["Task"]
    # Every RPC that takes or answers a Task does so with REST's Task.
    with_task = {
        name: (request, task if response is mapping.TaskPb else response)
        for name, (request, response) in VERSION.messages.items()
    }
    return replace(
        VERSION,
        messages=with_task
        | {
            "CreateTask": (types["CreateTaskRequest"], task),
            "ListTasks": (ct.ListTasksRequest.pb(), types["ListTasksResponse"]),
            "LeaseTasks": (ct.LeaseTasksRequest.pb(), types["LeaseTasksResponse"]),
            "BufferTask": buffer_messages(task, "v2beta2"),
        }
        | versions.batch_and_cmek_messages(types),
        types={name: types[name] for name in versions.BATCH_TYPES},
        task_to_pb=partial(mapping.task_to_pb, task_type=task),
        rest_methods={
            **versions.standard_rest_methods(
                SERVICE,
                {
                    "lease": "LeaseTasks",
                    "acknowledge": "AcknowledgeTask",
                    "renewLease": "RenewLease",
                    "cancelLease": "CancelLease",
                },
            ),
            **versions.batch_and_cmek_rest_methods(SERVICE),
            "cloudtasks.api.queue.update": (SERVICE, "UploadQueueYaml"),
        },
        # "To create the task with an automatically generated ID, use …/tasks:buffer."
        rest_aliases={"cloudtasks.projects.locations.queues.tasks.buffer": ["v2beta2/{+queue}/tasks:buffer"]},
        rest_only=frozenset({"BufferTask"}),
        transports=frozenset({"rest"}),
    )


REST_VERSION = _rest_version()
