"""The v2beta2 API: the version with pull queues and leasing.

Two surfaces of one API: gRPC serves the published protobuf (``VERSION``), REST serves the
discovery document (``REST_VERSION``), which has more: a task-level ``retryConfig``, batches
and the CMEK config. Both run the same handlers on the same service."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from google.cloud.tasks_v2beta2.types import cloudtasks as ct
from google.protobuf import empty_pb2

from tasksd.api.buffer import buffer_messages
from tasksd.api.cloudtasks import (
    BATCH_TYPES,
    Version,
    batch_and_cmek_messages,
    batch_and_cmek_rest_methods,
    standard_messages,
    standard_rest_methods,
)
from tasksd.api.v2beta2 import mapping as m
from tasksd.api.v2beta2 import rest

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"

VERSION = Version(
    name="v2beta2",
    service=SERVICE,
    messages=standard_messages(ct, m.QueuePb, m.TaskPb)
    | {
        "UploadQueueYaml": (ct.UploadQueueYamlRequest.pb(), empty_pb2.Empty),
        "LeaseTasks": (ct.LeaseTasksRequest.pb(), ct.LeaseTasksResponse.pb()),
        "AcknowledgeTask": (ct.AcknowledgeTaskRequest.pb(), empty_pb2.Empty),
        "RenewLease": (ct.RenewLeaseRequest.pb(), m.TaskPb),
        "CancelLease": (ct.CancelLeaseRequest.pb(), m.TaskPb),
    },
    queue_type=m.QueuePb,
    queue_from_pb=m.queue_from_pb,
    queue_to_pb=m.queue_to_pb,
    task_from_pb=m.task_from_pb,
    task_to_pb=m.task_to_pb,
    view_from_pb=m.view_from_pb,
    queue_mask_paths=m.queue_mask_paths,
    field_names=m.FIELD_NAMES,
    rest_methods={},
    transports=frozenset({"grpc"}),
)


def _rest_version() -> Version:
    types = rest.messages()
    task = types["Task"]
    # Every RPC that takes or answers a Task does so with REST's Task.
    with_task = {
        name: (request, task if response is m.TaskPb else response)
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
        | batch_and_cmek_messages(types),
        types={name: types[name] for name in BATCH_TYPES},
        task_to_pb=partial(m.task_to_pb, task_type=task),
        rest_methods={
            **standard_rest_methods(
                SERVICE,
                {
                    "lease": "LeaseTasks",
                    "acknowledge": "AcknowledgeTask",
                    "renewLease": "RenewLease",
                    "cancelLease": "CancelLease",
                },
            ),
            **batch_and_cmek_rest_methods(SERVICE),
            "cloudtasks.api.queue.update": (SERVICE, "UploadQueueYaml"),
        },
        # "To create the task with an automatically generated ID, use …/tasks:buffer."
        rest_aliases={"cloudtasks.projects.locations.queues.tasks.buffer": ["v2beta2/{+queue}/tasks:buffer"]},
        rest_only=frozenset({"BufferTask"}),
        transports=frozenset({"rest"}),
    )


REST_VERSION = _rest_version()
