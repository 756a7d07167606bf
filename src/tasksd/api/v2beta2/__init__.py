"""The v2beta2 API: the version with pull queues and leasing."""

from __future__ import annotations

from google.cloud.tasks_v2beta2.types import cloudtasks as ct
from google.protobuf import empty_pb2

from tasksd.api.buffer import buffer_messages
from tasksd.api.cloudtasks import Version, standard_messages, standard_rest_methods
from tasksd.api.v2beta2 import mapping as m

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
        **standard_rest_methods(
            SERVICE,
            {
                "lease": "LeaseTasks",
                "acknowledge": "AcknowledgeTask",
                "renewLease": "RenewLease",
                "cancelLease": "CancelLease",
            },
        ),
        "cloudtasks.api.queue.update": (SERVICE, "UploadQueueYaml"),
    },
    # "To create the task with an automatically generated ID, use …/tasks:buffer."
    rest_aliases={"cloudtasks.projects.locations.queues.tasks.buffer": ["v2beta2/{+queue}/tasks:buffer"]},
    rest_only=frozenset({"BufferTask"}),
)
