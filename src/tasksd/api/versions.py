"""The registry of API versions: what a ``Version`` holds, and the RPC and REST-method tables
that every version shares, which each version's package (``api/v2beta2``, ``api/v2``,
``api/v2beta3``) completes with its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from tasksd.model.names import QueueName
from tasksd.model.queue import Queue, QueueStats
from tasksd.model.task import Task, TaskView


@dataclass(frozen=True)
class Version:
    """What makes one API version: its RPCs' messages, how its queues and tasks map onto the
    model, how it spells the model's field names, and its REST methods. ``CloudTasksApi``
    serves one Version; the versions differ only in these tables."""

    name: str
    service: str
    """Full gRPC service name, e.g. google.cloud.tasks.v2.CloudTasks."""
    messages: dict[str, tuple[type[Message], type[Message]]]
    """RPC name → (request type, response type), for every RPC the version has."""
    queue_type: type[Message]
    queue_from_pb: Callable[[Message, QueueName], Queue]
    queue_to_pb: Callable[[Queue, QueueStats | None], Message]
    task_from_pb: Callable[[Message, QueueName], Task]
    task_to_pb: Callable[[Task, TaskView], Message]
    view_from_pb: Callable[[int], TaskView]
    queue_mask_paths: Callable[[list[str]], list[str]]
    field_names: dict[str, str]
    """Model field names this version spells differently, for error messages."""
    rest_methods: dict[str, tuple[str, str]]
    """Discovery method id → (gRPC service, RPC name)."""
    rest_aliases: dict[str, list[str]] = field(default_factory=dict)
    rest_only: frozenset[str] = frozenset()
    transports: frozenset[str] = frozenset({"grpc", "rest"})
    """Where the version's RPCs are served: v2beta2 serves its published messages over gRPC
    and the discovery document's over REST, as two Versions."""
    sees_queue: Callable[[Queue], bool] = lambda queue: True
    """Whether the version can see a queue at all (v2 has no pull queues)."""
    types: dict[str, type[Message]] = field(default_factory=dict)
    """More message types the handlers build, by name: what operations hold."""


OPERATIONS = "google.longrunning.Operations"

_QUEUE_VERBS = {
    "list": "ListQueues",
    "get": "GetQueue",
    "create": "CreateQueue",
    "patch": "UpdateQueue",
    "delete": "DeleteQueue",
    "purge": "PurgeQueue",
    "pause": "PauseQueue",
    "resume": "ResumeQueue",
    "getIamPolicy": "GetIamPolicy",
    "setIamPolicy": "SetIamPolicy",
    "testIamPermissions": "TestIamPermissions",
}
_TASK_VERBS = {
    "list": "ListTasks",
    "get": "GetTask",
    "create": "CreateTask",
    "delete": "DeleteTask",
    "run": "RunTask",
    "buffer": "BufferTask",
}


def standard_messages(
    messages: ModuleType, queue: type[Message], task: type[Message]
) -> dict[str, tuple[type[Message], type[Message]]]:
    """RPC name → (request, response) for the RPCs every version has; ``messages`` is the
    version's cloudtasks types module."""
    table: dict[str, tuple[type[Message], type[Message]]] = {
        "ListQueues": (messages.ListQueuesRequest.pb(), messages.ListQueuesResponse.pb()),
        "ListTasks": (messages.ListTasksRequest.pb(), messages.ListTasksResponse.pb()),
        "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
        "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
        "TestIamPermissions": (
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
        ),
    }
    for rpc, response in [
        ("GetQueue", queue),
        ("CreateQueue", queue),
        ("UpdateQueue", queue),
        ("DeleteQueue", empty_pb2.Empty),
        ("PurgeQueue", queue),
        ("PauseQueue", queue),
        ("ResumeQueue", queue),
        ("GetTask", task),
        ("CreateTask", task),
        ("DeleteTask", empty_pb2.Empty),
        ("RunTask", task),
    ]:
        table[rpc] = (getattr(messages, f"{rpc}Request").pb(), response)
    return table


BATCH_TYPES = ("BatchCreateTasksResponse", "BatchCreateTasksMetadata", "BatchDeleteTasksMetadata")
"""The messages the operations of the batch RPCs hold (a Version's ``types``)."""


def batch_and_cmek_messages(
    types: dict[str, type[Message]],
) -> dict[str, tuple[type[Message], type[Message]]]:
    """RPC name → (request, response) for the batch and CMEK RPCs, from their messages by name."""
    operation = operations_pb2.Operation
    return {
        "BatchCreateTasks": (types["BatchCreateTasksRequest"], operation),
        "BatchDeleteTasks": (types["BatchDeleteTasksRequest"], operation),
        "GetCmekConfig": (types["GetCmekConfigRequest"], types["CmekConfig"]),
        "UpdateCmekConfig": (types["UpdateCmekConfigRequest"], types["CmekConfig"]),
    }


def batch_and_cmek_rest_methods(service: str) -> dict[str, tuple[str, str]]:
    """Discovery method ids → RPCs for the batch and CMEK methods."""
    prefix = "cloudtasks.projects.locations"
    return {
        f"{prefix}.queues.tasks.batchCreate": (service, "BatchCreateTasks"),
        f"{prefix}.queues.tasks.batchDelete": (service, "BatchDeleteTasks"),
        f"{prefix}.getCmekConfig": (service, "GetCmekConfig"),
        f"{prefix}.updateCmekConfig": (service, "UpdateCmekConfig"),
    }


def standard_rest_methods(
    service: str, more_task_verbs: dict[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """Discovery method ids → RPCs for the methods every version has (and ``more_task_verbs``)."""
    prefix = "cloudtasks.projects.locations"
    locations = "google.cloud.location.Locations"
    methods = {
        f"{prefix}.list": (locations, "ListLocations"),
        f"{prefix}.get": (locations, "GetLocation"),
        f"{prefix}.operations.get": (OPERATIONS, "GetOperation"),
    }
    methods |= {f"{prefix}.queues.{verb}": (service, rpc) for verb, rpc in _QUEUE_VERBS.items()}
    task_verbs = _TASK_VERBS | (more_task_verbs or {})
    methods |= {f"{prefix}.queues.tasks.{verb}": (service, rpc) for verb, rpc in task_verbs.items()}
    return methods
