"""The v2beta2 API: the version with pull queues and leasing."""

from __future__ import annotations

from google.cloud.tasks_v2beta2.types import cloudtasks as ct
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from tasksd.api.buffer import buffer_messages
from tasksd.api.cloudtasks import Version
from tasksd.api.locations import SERVICE as LOCATIONS
from tasksd.api.v2beta2 import mapping as m

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"
_PREFIX = "cloudtasks.projects.locations"

VERSION = Version(
    name="v2beta2",
    service=SERVICE,
    messages={
        "ListQueues": (ct.ListQueuesRequest.pb(), ct.ListQueuesResponse.pb()),
        "GetQueue": (ct.GetQueueRequest.pb(), m.QueuePb),
        "CreateQueue": (ct.CreateQueueRequest.pb(), m.QueuePb),
        "UpdateQueue": (ct.UpdateQueueRequest.pb(), m.QueuePb),
        "DeleteQueue": (ct.DeleteQueueRequest.pb(), empty_pb2.Empty),
        "PurgeQueue": (ct.PurgeQueueRequest.pb(), m.QueuePb),
        "PauseQueue": (ct.PauseQueueRequest.pb(), m.QueuePb),
        "ResumeQueue": (ct.ResumeQueueRequest.pb(), m.QueuePb),
        "UploadQueueYaml": (ct.UploadQueueYamlRequest.pb(), empty_pb2.Empty),
        "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
        "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
        "TestIamPermissions": (
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
        ),
        "ListTasks": (ct.ListTasksRequest.pb(), ct.ListTasksResponse.pb()),
        "GetTask": (ct.GetTaskRequest.pb(), m.TaskPb),
        "CreateTask": (ct.CreateTaskRequest.pb(), m.TaskPb),
        "DeleteTask": (ct.DeleteTaskRequest.pb(), empty_pb2.Empty),
        "LeaseTasks": (ct.LeaseTasksRequest.pb(), ct.LeaseTasksResponse.pb()),
        "AcknowledgeTask": (ct.AcknowledgeTaskRequest.pb(), empty_pb2.Empty),
        "RenewLease": (ct.RenewLeaseRequest.pb(), m.TaskPb),
        "CancelLease": (ct.CancelLeaseRequest.pb(), m.TaskPb),
        "RunTask": (ct.RunTaskRequest.pb(), m.TaskPb),
        "BufferTask": buffer_messages(m.TaskPb, "v2beta2"),
    },
    queue_type=m.QueuePb,
    queue_from_pb=m.queue_from_pb,
    queue_to_pb=m.queue_to_pb,
    task_from_pb=m.task_from_pb,
    task_to_pb=m.task_to_pb,
    view_from_pb=m.view_from_pb,
    queue_mask_paths=m.queue_mask_paths,
    field_names=m.FIELD_NAMES,
    rest_methods={
        f"{_PREFIX}.list": (LOCATIONS, "ListLocations"),
        f"{_PREFIX}.get": (LOCATIONS, "GetLocation"),
        **{
            f"{_PREFIX}.queues.{verb}": (SERVICE, rpc)
            for verb, rpc in {
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
            }.items()
        },
        **{
            f"{_PREFIX}.queues.tasks.{verb}": (SERVICE, rpc)
            for verb, rpc in {
                "list": "ListTasks",
                "get": "GetTask",
                "create": "CreateTask",
                "delete": "DeleteTask",
                "lease": "LeaseTasks",
                "acknowledge": "AcknowledgeTask",
                "renewLease": "RenewLease",
                "cancelLease": "CancelLease",
                "run": "RunTask",
                "buffer": "BufferTask",
            }.items()
        },
        "cloudtasks.api.queue.update": (SERVICE, "UploadQueueYaml"),
    },
    # "To create the task with an automatically generated ID, use …/tasks:buffer."
    rest_aliases={f"{_PREFIX}.queues.tasks.buffer": ["v2beta2/{+queue}/tasks:buffer"]},
    rest_only=frozenset({"BufferTask"}),
)
