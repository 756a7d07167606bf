"""google.cloud.tasks.v2beta2.CloudTasks: each RPC parses its request, calls the service,
and maps the answer back; REST and gRPC both call these."""

from __future__ import annotations

from google.cloud.tasks_v2beta2.types import cloudtasks as ct
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from tasksd.api import protobuf as pbx
from tasksd.api.filters import parse_filter
from tasksd.api.iam import policy_from_pb, policy_to_pb
from tasksd.api.rpc import Handler, Rpc
from tasksd.api.v2beta2 import mapping as m
from tasksd.api.v2beta2.buffer import BufferTaskRequest, BufferTaskResponse
from tasksd.model.errors import InvalidArgument, Unimplemented
from tasksd.model.names import LocationName, QueueName, TaskName
from tasksd.model.queue import Queue
from tasksd.model.task import TaskView
from tasksd.service import TasksService

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"
_EMPTY = empty_pb2.Empty()


def _queue_name(value: str, field: str) -> QueueName:
    if not value:
        raise InvalidArgument(f"{field} is required.")
    return QueueName.parse(value, field)


def _task_name(value: str, field: str = "name") -> TaskName:
    if not value:
        raise InvalidArgument(f"{field} is required.")
    return TaskName.parse(value, field)


def _location_name(value: str, field: str = "parent") -> LocationName:
    if not value:
        raise InvalidArgument(f"{field} is required.")
    return LocationName.parse(value, field)


class V2Beta2Api:
    """The v2beta2 CloudTasks service over a TasksService."""

    def __init__(self, service: TasksService) -> None:
        self.service = service

    # -- queues ------------------------------------------------------------------------

    async def _render_queue(self, queue: Queue, mask: FieldMask | None) -> Message:
        wants_stats = mask is not None and any(p == "stats" or p.startswith("stats.") for p in mask.paths)
        stats = await self.service.queue_stats(queue.name) if wants_stats else None
        message = m.queue_to_pb(queue, stats)
        return pbx.apply_read_mask(message, mask) if mask is not None else message

    def _read_mask(self, request: Message) -> FieldMask | None:
        if not request.HasField("read_mask") or not request.read_mask.paths:
            return None
        pbx.mask_paths(request.read_mask, m.QueuePb(), "read_mask")
        return request.read_mask

    async def ListQueues(self, request: Message) -> Message:
        parent = _location_name(request.parent)
        mask = self._read_mask(request)
        predicate = parse_filter(request.filter, m.QueuePb)
        page = await self.service.list_queues(
            parent,
            request.page_size,
            request.page_token,
            request.filter,
            lambda queue: predicate(m.queue_to_pb(queue)),
        )
        queues = [await self._render_queue(q, mask) for q in page.items]
        return ct.ListQueuesResponse.pb()(queues=queues, next_page_token=page.next_page_token)

    async def GetQueue(self, request: Message) -> Message:
        name = _queue_name(request.name, "name")
        mask = self._read_mask(request)
        return await self._render_queue(await self.service.get_queue(name), mask)

    async def CreateQueue(self, request: Message) -> Message:
        parent = _location_name(request.parent)
        if not request.HasField("queue"):
            raise InvalidArgument("queue is required.")
        name = _queue_name(request.queue.name, "queue.name")
        queue = await self.service.create_queue(parent, m.queue_from_pb(request.queue, name))
        return m.queue_to_pb(queue)

    async def UpdateQueue(self, request: Message) -> Message:
        if not request.HasField("queue"):
            raise InvalidArgument("queue is required.")
        name = _queue_name(request.queue.name, "queue.name")
        paths = pbx.mask_paths(request.update_mask, m.QueuePb(), "update_mask")
        queue = await self.service.update_queue(
            m.queue_from_pb(request.queue, name), m.queue_mask_paths(paths)
        )
        return m.queue_to_pb(queue)

    async def DeleteQueue(self, request: Message) -> Message:
        await self.service.delete_queue(_queue_name(request.name, "name"))
        return _EMPTY

    async def PurgeQueue(self, request: Message) -> Message:
        return m.queue_to_pb(await self.service.purge_queue(_queue_name(request.name, "name")))

    async def PauseQueue(self, request: Message) -> Message:
        return m.queue_to_pb(await self.service.pause_queue(_queue_name(request.name, "name")))

    async def ResumeQueue(self, request: Message) -> Message:
        return m.queue_to_pb(await self.service.resume_queue(_queue_name(request.name, "name")))

    # -- IAM ---------------------------------------------------------------------------

    async def GetIamPolicy(self, request: iam_policy_pb2.GetIamPolicyRequest) -> Message:
        name = _queue_name(request.resource, "resource")
        version = request.options.requested_policy_version
        return policy_to_pb(await self.service.get_iam_policy(name, version))

    async def SetIamPolicy(self, request: iam_policy_pb2.SetIamPolicyRequest) -> Message:
        name = _queue_name(request.resource, "resource")
        if not request.HasField("policy"):
            raise InvalidArgument("policy is required.")
        pbx.mask_paths(request.update_mask, policy_pb2.Policy(), "update_mask")
        return policy_to_pb(await self.service.set_iam_policy(name, policy_from_pb(request.policy)))

    async def TestIamPermissions(self, request: iam_policy_pb2.TestIamPermissionsRequest) -> Message:
        name = _queue_name(request.resource, "resource")
        allowed = await self.service.test_iam_permissions(name, list(request.permissions))
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=allowed)

    # -- tasks -------------------------------------------------------------------------

    async def ListTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        view = m.view_from_pb(request.response_view)
        page = await self.service.list_tasks(parent, request.page_size, request.page_token)
        return ct.ListTasksResponse.pb()(
            tasks=[m.task_to_pb(t, view) for t in page.items], next_page_token=page.next_page_token
        )

    async def GetTask(self, request: Message) -> Message:
        task = await self.service.get_task(_task_name(request.name))
        return m.task_to_pb(task, m.view_from_pb(request.response_view))

    async def CreateTask(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        if not request.HasField("task"):
            raise InvalidArgument("task is required.")
        task = await self.service.create_task(parent, m.task_from_pb(request.task, parent))
        return m.task_to_pb(task, m.view_from_pb(request.response_view))

    async def DeleteTask(self, request: Message) -> Message:
        await self.service.delete_task(_task_name(request.name))
        return _EMPTY

    # -- leases ------------------------------------------------------------------------

    async def LeaseTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        duration = pbx.optional_duration(request, "lease_duration", "lease_duration")
        tasks = await self.service.lease_tasks(parent, request.max_tasks, duration, request.filter)
        view = m.view_from_pb(request.response_view)
        return ct.LeaseTasksResponse.pb()(tasks=[m.task_to_pb(t, view) for t in tasks])

    async def AcknowledgeTask(self, request: Message) -> Message:
        held = pbx.optional_timestamp(request, "schedule_time", "schedule_time")
        await self.service.acknowledge_task(_task_name(request.name), held)
        return _EMPTY

    async def RenewLease(self, request: Message) -> Message:
        held = pbx.optional_timestamp(request, "schedule_time", "schedule_time")
        duration = pbx.optional_duration(request, "lease_duration", "lease_duration")
        task = await self.service.renew_lease(_task_name(request.name), held, duration)
        return m.task_to_pb(task, m.view_from_pb(request.response_view))

    async def CancelLease(self, request: Message) -> Message:
        held = pbx.optional_timestamp(request, "schedule_time", "schedule_time")
        task = await self.service.cancel_lease(_task_name(request.name), held)
        return m.task_to_pb(task, m.view_from_pb(request.response_view))

    async def RunTask(self, request: Message) -> Message:
        task = await self.service.run_task(_task_name(request.name))
        return m.task_to_pb(task, m.view_from_pb(request.response_view))

    async def BufferTask(self, request: Message) -> Message:
        queue = _queue_name(request.queue, "queue")
        task_id = request.task_id if request.task_id not in ("", "-") else ""
        if task_id:
            TaskName.parse(f"{queue.path}/tasks/{task_id}", "task_id")
        task = await self.service.buffer_task(queue, task_id, request.body.data, request.body.content_type)
        return BufferTaskResponse(task=m.task_to_pb(task, TaskView.BASIC))

    async def not_yet(self, request: Message) -> Message:
        raise Unimplemented(
            f"{type(request).DESCRIPTOR.name.removesuffix('Request')} is not implemented in tasksd yet."
        )

    def rpcs(self) -> dict[str, Rpc]:
        """Every RPC of the service, by name."""
        rpcs = {}
        for name, (request, response) in _MESSAGES.items():
            handler = getattr(self, name, None) or self.not_yet
            rpcs[name] = Rpc(
                SERVICE, name, request, response, speaking_v2beta2(handler), grpc=name not in _REST_ONLY
            )
        return rpcs


def speaking_v2beta2(handler: Handler) -> Handler:
    """The handler, with field names in its InvalidArgument messages spelled as in v2beta2."""

    async def call(request: Message) -> Message:
        try:
            return await handler(request)
        except InvalidArgument as error:
            message = error.message
            for model_name, wire_name in m.FIELD_NAMES.items():
                message = message.replace(model_name, wire_name)
            raise InvalidArgument(message) from None

    return call


_REST_ONLY = {"BufferTask"}
_MESSAGES: dict[str, tuple[type[Message], type[Message]]] = {
    "ListQueues": (ct.ListQueuesRequest.pb(), ct.ListQueuesResponse.pb()),
    "GetQueue": (ct.GetQueueRequest.pb(), m.QueuePb),
    "CreateQueue": (ct.CreateQueueRequest.pb(), m.QueuePb),
    "UpdateQueue": (ct.UpdateQueueRequest.pb(), m.QueuePb),
    "DeleteQueue": (ct.DeleteQueueRequest.pb(), empty_pb2.Empty),
    "PurgeQueue": (ct.PurgeQueueRequest.pb(), m.QueuePb),
    "PauseQueue": (ct.PauseQueueRequest.pb(), m.QueuePb),
    "ResumeQueue": (ct.ResumeQueueRequest.pb(), m.QueuePb),
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
    "UploadQueueYaml": (ct.UploadQueueYamlRequest.pb(), empty_pb2.Empty),
    "BufferTask": (BufferTaskRequest, BufferTaskResponse),
}

# Discovery-document method ids of the REST surface → RPC names (service, rpc).
REST_METHODS: dict[str, tuple[str, str]] = {
    "cloudtasks.projects.locations.list": ("google.cloud.location.Locations", "ListLocations"),
    "cloudtasks.projects.locations.get": ("google.cloud.location.Locations", "GetLocation"),
    "cloudtasks.projects.locations.queues.list": (SERVICE, "ListQueues"),
    "cloudtasks.projects.locations.queues.get": (SERVICE, "GetQueue"),
    "cloudtasks.projects.locations.queues.create": (SERVICE, "CreateQueue"),
    "cloudtasks.projects.locations.queues.patch": (SERVICE, "UpdateQueue"),
    "cloudtasks.projects.locations.queues.delete": (SERVICE, "DeleteQueue"),
    "cloudtasks.projects.locations.queues.purge": (SERVICE, "PurgeQueue"),
    "cloudtasks.projects.locations.queues.pause": (SERVICE, "PauseQueue"),
    "cloudtasks.projects.locations.queues.resume": (SERVICE, "ResumeQueue"),
    "cloudtasks.projects.locations.queues.getIamPolicy": (SERVICE, "GetIamPolicy"),
    "cloudtasks.projects.locations.queues.setIamPolicy": (SERVICE, "SetIamPolicy"),
    "cloudtasks.projects.locations.queues.testIamPermissions": (SERVICE, "TestIamPermissions"),
    "cloudtasks.projects.locations.queues.tasks.list": (SERVICE, "ListTasks"),
    "cloudtasks.projects.locations.queues.tasks.get": (SERVICE, "GetTask"),
    "cloudtasks.projects.locations.queues.tasks.create": (SERVICE, "CreateTask"),
    "cloudtasks.projects.locations.queues.tasks.delete": (SERVICE, "DeleteTask"),
    "cloudtasks.projects.locations.queues.tasks.lease": (SERVICE, "LeaseTasks"),
    "cloudtasks.projects.locations.queues.tasks.acknowledge": (SERVICE, "AcknowledgeTask"),
    "cloudtasks.projects.locations.queues.tasks.renewLease": (SERVICE, "RenewLease"),
    "cloudtasks.projects.locations.queues.tasks.cancelLease": (SERVICE, "CancelLease"),
    "cloudtasks.projects.locations.queues.tasks.run": (SERVICE, "RunTask"),
    "cloudtasks.projects.locations.queues.tasks.buffer": (SERVICE, "BufferTask"),
    "cloudtasks.api.queue.update": (SERVICE, "UploadQueueYaml"),
}

# Path templates that the API's documentation names besides the discovery document's own.
REST_ALIASES: dict[str, list[str]] = {
    # "To create the task with an automatically generated ID, use …/tasks:buffer."
    "cloudtasks.projects.locations.queues.tasks.buffer": ["v2beta2/{+queue}/tasks:buffer"],
}
