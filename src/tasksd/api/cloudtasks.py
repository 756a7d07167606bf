"""The CloudTasks service of every API version: each RPC parses its request, calls the
service, and maps the answer back, through the tables of one ``Version``. REST and gRPC
both call these handlers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType

from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from tasksd.api import protobuf as pbx
from tasksd.api.errors import status_pb
from tasksd.api.filters import parse_filter
from tasksd.api.iam import policy_from_pb, policy_to_pb
from tasksd.api.rpc import Handler, ManyHandler, Rpc
from tasksd.model.errors import Aborted, InvalidArgument, QueueNotFound, TasksError, Unimplemented, settle
from tasksd.model.names import LocationName, OperationName, QueueName, TaskName, config_location, operation_id
from tasksd.model.queue import Queue, QueueStats
from tasksd.model.task import Task, TaskView
from tasksd.service import TasksService
from tasksd.service.batches import MAX_BATCH_CREATE, MAX_BATCH_DELETE, BatchResult, check_batch_size
from tasksd.service.queueyaml import app_location, apply_queue_yaml, parse_queue_yaml

_EMPTY = empty_pb2.Empty()


@dataclass(frozen=True)
class Version:
    """What makes one API version: its messages and how they map onto the model."""

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
    shows: Callable[[Queue], bool] = lambda queue: True
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


def _required(value: str, field_name: str) -> str:
    if not value:
        raise InvalidArgument(f"{field_name} is required.")
    return value


def _queue_name(value: str, field_name: str) -> QueueName:
    return QueueName.parse(_required(value, field_name), field_name)


def _task_name(value: str, field_name: str = "name") -> TaskName:
    return TaskName.parse(_required(value, field_name), field_name)


def _held_lease(request: Message) -> tuple[TaskName, datetime | None]:
    """The task an acknowledge request names and the schedule time that proves its lease."""
    return _task_name(request.name), pbx.optional_timestamp(request, "schedule_time", "schedule_time")


def _location_name(value: str, field_name: str = "parent") -> LocationName:
    return LocationName.parse(_required(value, field_name), field_name)


def _operation_name(location: LocationName, request_id: str) -> OperationName:
    """The operation a batch is answered with: named after the client's request_id (so that
    a retry finds it), or a new UUID."""
    operation = operation_id(request_id, "request_id") if request_id else str(uuid.uuid4())
    return OperationName(location.project, location.location, operation)


class CloudTasksApi:
    """One version's CloudTasks service over a TasksService."""

    def __init__(self, service: TasksService, version: Version) -> None:
        self.service = service
        self.v = version

    def _response(self, rpc: str) -> type[Message]:
        return self.v.messages[rpc][1]

    # -- queues ------------------------------------------------------------------------

    async def _visible_queue(self, name: QueueName) -> Queue:
        queue = await self.service.get_queue(name)
        if not self.v.shows(queue):
            raise QueueNotFound()
        return queue

    async def _render_queue(self, queue: Queue, mask: FieldMask | None) -> Message:
        wants_stats = mask is not None and any(p == "stats" or p.startswith("stats.") for p in mask.paths)
        stats = await self.service.queue_stats(queue.name) if wants_stats else None
        message = self.v.queue_to_pb(queue, stats)
        return pbx.apply_read_mask(message, mask) if mask is not None else message

    def _read_mask(self, request: Message) -> FieldMask | None:
        if "read_mask" not in request.DESCRIPTOR.fields_by_name or not request.HasField("read_mask"):
            return None
        if not request.read_mask.paths:
            return None
        pbx.mask_paths(request.read_mask, self.v.queue_type(), "read_mask")
        return request.read_mask

    async def ListQueues(self, request: Message) -> Message:
        parent = _location_name(request.parent)
        mask = self._read_mask(request)
        predicate = parse_filter(request.filter, self.v.queue_type)
        page = await self.service.list_queues(
            parent,
            request.page_size,
            request.page_token,
            request.filter,
            lambda queue: self.v.shows(queue) and predicate(self.v.queue_to_pb(queue, None)),
        )
        queues = [await self._render_queue(q, mask) for q in page.items]
        return self._response("ListQueues")(queues=queues, next_page_token=page.next_page_token)

    async def GetQueue(self, request: Message) -> Message:
        name = _queue_name(request.name, "name")
        mask = self._read_mask(request)
        return await self._render_queue(await self._visible_queue(name), mask)

    async def CreateQueue(self, request: Message) -> Message:
        parent = _location_name(request.parent)
        if not request.HasField("queue"):
            raise InvalidArgument("queue is required.")
        name = _queue_name(request.queue.name, "queue.name")
        queue = await self.service.create_queue(parent, self.v.queue_from_pb(request.queue, name))
        return self.v.queue_to_pb(queue, None)

    async def UpdateQueue(self, request: Message) -> Message:
        if not request.HasField("queue"):
            raise InvalidArgument("queue is required.")
        name = _queue_name(request.queue.name, "queue.name")
        paths = pbx.mask_paths(request.update_mask, self.v.queue_type(), "update_mask")
        queue = await self.service.update_queue(
            self.v.queue_from_pb(request.queue, name), self.v.queue_mask_paths(paths)
        )
        return self.v.queue_to_pb(queue, None)

    async def DeleteQueue(self, request: Message) -> Message:
        await self.service.delete_queue(_queue_name(request.name, "name"))
        return _EMPTY

    async def PurgeQueue(self, request: Message) -> Message:
        queue = await self.service.purge_queue(_queue_name(request.name, "name"))
        return self.v.queue_to_pb(queue, None)

    async def PauseQueue(self, request: Message) -> Message:
        queue = await self.service.pause_queue(_queue_name(request.name, "name"))
        return self.v.queue_to_pb(queue, None)

    async def ResumeQueue(self, request: Message) -> Message:
        queue = await self.service.resume_queue(_queue_name(request.name, "name"))
        return self.v.queue_to_pb(queue, None)

    async def UploadQueueYaml(self, request: Message) -> Message:
        """App Engine's queue.yaml (the raw body) applied to project ``app_id``'s queues in
        the App Engine app's location, the first of the server's ``locations``: see
        ``service/queueyaml.py``."""
        location = app_location(self.service, request.app_id)
        file = await asyncio.to_thread(parse_queue_yaml, request.http_body.data)  # not on the loop
        await apply_queue_yaml(self.service, location, file)
        return _EMPTY

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
        view = self.v.view_from_pb(request.response_view)
        page = await self.service.list_tasks(parent, request.page_size, request.page_token)
        tasks = [self.v.task_to_pb(t, view) for t in page.items]
        return self._response("ListTasks")(tasks=tasks, next_page_token=page.next_page_token)

    async def GetTask(self, request: Message) -> Message:
        task = await self.service.get_task(_task_name(request.name))
        return self.v.task_to_pb(task, self.v.view_from_pb(request.response_view))

    async def CreateTask(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        if not request.HasField("task"):
            raise InvalidArgument("task is required.")
        task = await self.service.create_task(parent, self.v.task_from_pb(request.task, parent))
        return self.v.task_to_pb(task, self.v.view_from_pb(request.response_view))

    async def DeleteTask(self, request: Message) -> Message:
        await self.service.delete_task(_task_name(request.name))
        return _EMPTY

    async def RunTask(self, request: Message) -> Message:
        task = await self.service.run_task(_task_name(request.name))
        return self.v.task_to_pb(task, self.v.view_from_pb(request.response_view))

    async def BufferTask(self, request: Message) -> Message:
        queue = _queue_name(request.queue, "queue")
        task_id = request.task_id if request.task_id not in ("", "-") else ""
        if task_id:
            TaskName.parse(f"{queue.path}/tasks/{task_id}", "task_id")
        task = await self.service.buffer_task(queue, task_id, request.body.data, request.body.content_type)
        return self._response("BufferTask")(task=self.v.task_to_pb(task, TaskView.BASIC))

    # -- batches (long-running operations) and CMEK -------------------------------------

    async def BatchCreateTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        check_batch_size(len(request.requests), MAX_BATCH_CREATE, "requests", "CreateTaskRequest")
        for index, inner in enumerate(request.requests):
            if inner.parent and inner.parent != request.parent:
                raise InvalidArgument(
                    f"requests[{index}].parent {inner.parent!r} is not the batch's parent "
                    f"{request.parent!r}: all the tasks of a batch go to one queue."
                )

        async def run() -> tuple[BatchResult[Task], Message]:
            tasks: list[Task | TasksError] = []
            for index, inner in enumerate(request.requests):
                try:
                    if not inner.HasField("task"):
                        raise InvalidArgument(f"requests[{index}].task is required.")
                    tasks.append(self.v.task_from_pb(inner.task, parent))
                except TasksError as error:
                    tasks.append(error)
            result = await self.service.batch_create_tasks(parent, tasks)
            created = [
                self.v.task_to_pb(task, self.v.view_from_pb(inner.response_view))
                for task, inner in zip(result.results, request.requests, strict=True)
                if not isinstance(task, TasksError)
            ]
            return result, self.v.types["BatchCreateTasksResponse"](tasks=created)

        return await self._batch(parent, request.request_id, self.v.types["BatchCreateTasksMetadata"], run)

    async def BatchDeleteTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        check_batch_size(len(request.names), MAX_BATCH_DELETE, "names", "task name")
        names = [_task_name(name, f"names[{index}]") for index, name in enumerate(request.names)]
        for index, task in enumerate(names):
            if task.queue_name != parent:
                raise InvalidArgument(
                    f"names[{index}] {task.path!r} is not a task of the batch's parent {parent.path!r}."
                )

        async def run() -> tuple[BatchResult[None], Message]:
            return await self.service.batch_delete_tasks(names), _EMPTY

        return await self._batch(parent, request.request_id, self.v.types["BatchDeleteTasksMetadata"], run)

    async def _batch(
        self,
        parent: QueueName,
        request_id: str,
        metadata_type: type[Message],
        run: Callable[[], Awaitable[tuple[BatchResult[Task] | BatchResult[None], Message]]],
    ) -> operations_pb2.Operation:
        """Run a batch as a long-running operation named after its request_id, and answer the
        operation done. A retry with the same request_id runs nothing: it gets the operation
        kept, done or (while the first call still runs it) running, which clients then poll
        with GetOperation. A batch for a queue this version does not see is NOT_FOUND."""
        name = _operation_name(parent.parent, request_id)
        kept = await self.service.get_operation(name)
        if kept is None:
            await self._visible_queue(parent)
            metadata = metadata_type(state=metadata_type.State.Value("RUNNING"))
            pbx.set_timestamp(metadata.start_time, self.service.clock.now())
            running = operations_pb2.Operation(name=name.path)
            running.metadata.Pack(metadata)
            kept = await self.service.begin_operation(name, running.SerializeToString())
        if kept is not None:
            return operations_pb2.Operation.FromString(kept)
        try:
            result, response = await run()
        except BaseException:
            await self.service.end_operation(name, None)
            raise
        done = self._done(name, result, metadata_type, response)
        await self.service.end_operation(name, done.SerializeToString())
        return done

    def _done(
        self,
        name: OperationName,
        result: BatchResult[Task] | BatchResult[None],
        metadata_type: type[Message],
        response: Message,
    ) -> operations_pb2.Operation:
        """The done operation of a batch: its response, and metadata with the batch's times, its
        state and each failed request's status by index."""
        metadata = metadata_type()
        pbx.set_timestamp(metadata.start_time, result.start_time)
        pbx.set_timestamp(metadata.end_time, result.end_time)
        # Every request was tried: PARTIALLY_SUCCEEDED when some failed, FAILED when all did.
        failed = result.failed
        none_succeeded = len(failed) == len(result.results)
        state = "FAILED" if none_succeeded else "PARTIALLY_SUCCEEDED" if failed else "SUCCEEDED"
        metadata.state = metadata_type.State.Value(state)
        for index, error in failed.items():
            spoken = (
                error.reworded(self._spoken(error.message)) if isinstance(error, InvalidArgument) else error
            )
            metadata.failed_requests[index].CopyFrom(status_pb(spoken))
        operation = operations_pb2.Operation(name=name.path, done=True)
        operation.metadata.Pack(metadata)
        if none_succeeded:
            # As the real service documents: the operation fails, so operation.result() raises.
            operation.error.CopyFrom(
                status_pb(
                    Aborted(
                        "None of the requests succeeded, refer to "
                        f"{metadata_type.DESCRIPTOR.name}.failed_requests for individual error details"
                    )
                )
            )
        else:
            operation.response.Pack(response)
        return operation

    async def GetCmekConfig(self, request: Message) -> Message:
        location = config_location(request.name, "name", "cmekConfig")
        key = await self.service.get_cmek_key(location)
        return self._response("GetCmekConfig")(name=f"{location.path}/cmekConfig", kms_key=key)

    async def UpdateCmekConfig(self, request: Message) -> Message:
        if not request.HasField("cmek_config"):
            raise InvalidArgument("cmek_config is required.")
        config = request.cmek_config
        location = config_location(config.name, "cmek_config.name", "cmekConfig")
        paths = pbx.mask_paths(request.update_mask, config, "update_mask")
        if any(path != "kms_key" for path in paths):
            raise InvalidArgument(f"update_mask may name only kms_key, got {', '.join(paths)}.")
        key = await self.service.set_cmek_key(location, config.kms_key)
        return self._response("UpdateCmekConfig")(name=f"{location.path}/cmekConfig", kms_key=key)

    # -- leases (pull queues) ----------------------------------------------------------

    async def LeaseTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        duration = pbx.optional_duration(request, "lease_duration", "lease_duration")
        tasks = await self.service.lease_tasks(parent, request.max_tasks, duration, request.filter)
        view = self.v.view_from_pb(request.response_view)
        return self._response("LeaseTasks")(tasks=[self.v.task_to_pb(t, view) for t in tasks])

    async def AcknowledgeTask(self, request: Message) -> Message:
        await self.service.acknowledge_task(*_held_lease(request))
        return _EMPTY

    async def acknowledge_tasks(self, requests: list[Message]) -> list[Message | TasksError]:
        """AcknowledgeTask for many requests at once (one HTTP batch): one store transaction."""
        outcomes = await settle(requests, _held_lease, self.service.acknowledge_tasks)
        return [_EMPTY if outcome is None else outcome for outcome in outcomes]

    async def RenewLease(self, request: Message) -> Message:
        held = pbx.optional_timestamp(request, "schedule_time", "schedule_time")
        duration = pbx.optional_duration(request, "lease_duration", "lease_duration")
        task = await self.service.renew_lease(_task_name(request.name), held, duration)
        return self.v.task_to_pb(task, self.v.view_from_pb(request.response_view))

    async def CancelLease(self, request: Message) -> Message:
        held = pbx.optional_timestamp(request, "schedule_time", "schedule_time")
        task = await self.service.cancel_lease(_task_name(request.name), held)
        return self.v.task_to_pb(task, self.v.view_from_pb(request.response_view))

    async def not_yet(self, request: Message) -> Message:
        raise Unimplemented(
            f"{type(request).DESCRIPTOR.name.removesuffix('Request')} is not implemented in tasksd yet."
        )

    def rpcs(self) -> dict[str, Rpc]:
        """Every RPC of the version, by name."""
        rpcs = {}
        for name, (request, response) in self.v.messages.items():
            handler = getattr(self, name, None) or self.not_yet
            many = self.acknowledge_tasks if name == "AcknowledgeTask" else None
            rpcs[name] = Rpc(
                self.v.service,
                name,
                request,
                response,
                self._speaking(handler),
                grpc="grpc" in self.v.transports and name not in self.v.rest_only,
                rest="rest" in self.v.transports,
                many=self._speaking_many(many) if many is not None else None,
            )
        return rpcs

    def _speaking(self, handler: Handler) -> Handler:
        """The handler, with field names in its InvalidArgument messages spelled as in this version."""
        if not self.v.field_names:
            return handler

        async def call(request: Message) -> Message:
            try:
                return await handler(request)
            except InvalidArgument as error:
                raise error.reworded(self._spoken(error.message)) from None

        return call

    def _speaking_many(self, handler: ManyHandler) -> ManyHandler:
        """``_speaking`` for a handler of many requests, whose errors are answers."""
        if not self.v.field_names:
            return handler

        async def call(requests: list[Message]) -> list[Message | TasksError]:
            outcomes = await handler(requests)
            return [
                o.reworded(self._spoken(o.message)) if isinstance(o, InvalidArgument) else o for o in outcomes
            ]

        return call

    def _spoken(self, message: str) -> str:
        """A message with the model's field names spelled as in this version."""
        for model_name, wire_name in self.v.field_names.items():
            message = message.replace(model_name, wire_name)
        return message
