"""The CloudTasks service of every API version: each RPC parses its request, calls the
service, and maps the answer back, through the tables of one ``Version``. REST and gRPC
both call these handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from tasksd.api import protobuf_util
from tasksd.api.filters import parse_filter
from tasksd.api.iam import policy_from_pb, policy_to_pb
from tasksd.api.rpc import Handler, ManyHandler, Rpc
from tasksd.api.status import status_pb
from tasksd.api.versions import Version
from tasksd.model.errors import InvalidArgument, QueueNotFound, TasksError, Unimplemented, outcomes_of
from tasksd.model.names import LocationName, OperationName, QueueName, TaskName, config_location
from tasksd.model.queue import Queue
from tasksd.model.task import Task, TaskView
from tasksd.service import TasksService
from tasksd.service.batches import MAX_BATCH_CREATE, MAX_BATCH_DELETE, BatchResult, check_batch_size
from tasksd.service.operations import BatchOutcome, BatchState, batch_outcome, operation_name, run_once
from tasksd.service.queueyaml import app_location, apply_queue_yaml, parse_queue_yaml

_EMPTY = empty_pb2.Empty()


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
    held = protobuf_util.optional_timestamp(request, "schedule_time", "schedule_time")
    return _task_name(request.name), held


def _location_name(value: str, field_name: str = "parent") -> LocationName:
    return LocationName.parse(_required(value, field_name), field_name)


class CloudTasksApi:
    """One API version's CloudTasks service over a TasksService: a handler per RPC, named as
    the RPC (``CreateTask``), that takes the version's request message and answers its
    response message. A handler parses the request (names, masks, durations) with the
    Version's tables, calls the service in model terms and maps the answer back; ``rpcs()``
    hands every handler to the transports as an ``Rpc``, with InvalidArgument messages
    spelled in the version's field names. An RPC the version has and tasksd does not serve
    answers UNIMPLEMENTED."""

    def __init__(self, service: TasksService, version: Version) -> None:
        self.service = service
        self.version = version

    def _response(self, rpc: str) -> type[Message]:
        return self.version.messages[rpc][1]

    # -- queues ------------------------------------------------------------------------

    async def _visible_queue(self, name: QueueName) -> Queue:
        queue = await self.service.get_queue(name)
        if not self.version.sees_queue(queue):
            raise QueueNotFound()
        return queue

    async def _render_queue(self, queue: Queue, mask: FieldMask | None) -> Message:
        wants_stats = mask is not None and any(p == "stats" or p.startswith("stats.") for p in mask.paths)
        stats = await self.service.queue_stats(queue.name) if wants_stats else None
        message = self.version.queue_to_pb(queue, stats)
        return protobuf_util.apply_read_mask(message, mask) if mask is not None else message

    def _read_mask(self, request: Message) -> FieldMask | None:
        if "read_mask" not in request.DESCRIPTOR.fields_by_name or not request.HasField("read_mask"):
            return None
        if not request.read_mask.paths:
            return None
        protobuf_util.mask_paths(request.read_mask, self.version.queue_type(), "read_mask")
        return request.read_mask

    async def ListQueues(self, request: Message) -> Message:
        parent = _location_name(request.parent)
        mask = self._read_mask(request)
        predicate = parse_filter(request.filter, self.version.queue_type)
        page = await self.service.list_queues(
            parent,
            request.page_size,
            request.page_token,
            request.filter,
            lambda queue: self.version.sees_queue(queue) and predicate(self.version.queue_to_pb(queue, None)),
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
        queue = await self.service.create_queue(parent, self.version.queue_from_pb(request.queue, name))
        return self.version.queue_to_pb(queue, None)

    async def UpdateQueue(self, request: Message) -> Message:
        if not request.HasField("queue"):
            raise InvalidArgument("queue is required.")
        name = _queue_name(request.queue.name, "queue.name")
        paths = protobuf_util.mask_paths(request.update_mask, self.version.queue_type(), "update_mask")
        queue = await self.service.update_queue(
            self.version.queue_from_pb(request.queue, name), self.version.queue_mask_paths(paths)
        )
        return self.version.queue_to_pb(queue, None)

    async def DeleteQueue(self, request: Message) -> Message:
        await self.service.delete_queue(_queue_name(request.name, "name"))
        return _EMPTY

    async def PurgeQueue(self, request: Message) -> Message:
        queue = await self.service.purge_queue(_queue_name(request.name, "name"))
        return self.version.queue_to_pb(queue, None)

    async def PauseQueue(self, request: Message) -> Message:
        queue = await self.service.pause_queue(_queue_name(request.name, "name"))
        return self.version.queue_to_pb(queue, None)

    async def ResumeQueue(self, request: Message) -> Message:
        queue = await self.service.resume_queue(_queue_name(request.name, "name"))
        return self.version.queue_to_pb(queue, None)

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
        policy_version = request.options.requested_policy_version
        return policy_to_pb(await self.service.get_iam_policy(name, policy_version))

    async def SetIamPolicy(self, request: iam_policy_pb2.SetIamPolicyRequest) -> Message:
        name = _queue_name(request.resource, "resource")
        if not request.HasField("policy"):
            raise InvalidArgument("policy is required.")
        protobuf_util.mask_paths(request.update_mask, policy_pb2.Policy(), "update_mask")
        return policy_to_pb(await self.service.set_iam_policy(name, policy_from_pb(request.policy)))

    async def TestIamPermissions(self, request: iam_policy_pb2.TestIamPermissionsRequest) -> Message:
        name = _queue_name(request.resource, "resource")
        allowed = await self.service.test_iam_permissions(name, list(request.permissions))
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=allowed)

    # -- tasks -------------------------------------------------------------------------

    async def ListTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        view = self.version.view_from_pb(request.response_view)
        page = await self.service.list_tasks(parent, request.page_size, request.page_token)
        tasks = [self.version.task_to_pb(t, view) for t in page.items]
        return self._response("ListTasks")(tasks=tasks, next_page_token=page.next_page_token)

    async def GetTask(self, request: Message) -> Message:
        task = await self.service.get_task(_task_name(request.name))
        return self.version.task_to_pb(task, self.version.view_from_pb(request.response_view))

    async def CreateTask(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        if not request.HasField("task"):
            raise InvalidArgument("task is required.")
        task = await self.service.create_task(parent, self.version.task_from_pb(request.task, parent))
        return self.version.task_to_pb(task, self.version.view_from_pb(request.response_view))

    async def DeleteTask(self, request: Message) -> Message:
        await self.service.delete_task(_task_name(request.name))
        return _EMPTY

    async def RunTask(self, request: Message) -> Message:
        task = await self.service.run_task(_task_name(request.name))
        return self.version.task_to_pb(task, self.version.view_from_pb(request.response_view))

    async def BufferTask(self, request: Message) -> Message:
        queue = _queue_name(request.queue, "queue")
        task_id = request.task_id if request.task_id not in ("", "-") else ""
        if task_id:
            TaskName.parse(f"{queue.path}/tasks/{task_id}", "task_id")
        task = await self.service.buffer_task(queue, task_id, request.body.data, request.body.content_type)
        return self._response("BufferTask")(task=self.version.task_to_pb(task, TaskView.BASIC))

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
                    tasks.append(self.version.task_from_pb(inner.task, parent))
                except TasksError as error:
                    tasks.append(error)
            result = await self.service.batch_create_tasks(parent, tasks)
            created = [
                self.version.task_to_pb(task, self.version.view_from_pb(inner.response_view))
                for task, inner in zip(result.results, request.requests, strict=True)
                if not isinstance(task, TasksError)
            ]
            return result, self.version.types["BatchCreateTasksResponse"](tasks=created)

        return await self._batch(
            parent, request.request_id, self.version.types["BatchCreateTasksMetadata"], run
        )

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

        return await self._batch(
            parent, request.request_id, self.version.types["BatchDeleteTasksMetadata"], run
        )

    async def _batch(
        self,
        parent: QueueName,
        request_id: str,
        metadata_type: type[Message],
        run: Callable[[], Awaitable[tuple[BatchResult[Task] | BatchResult[None], Message]]],
    ) -> operations_pb2.Operation:
        """Run a batch as a long-running operation (``service/operations.py``), whose messages
        are this version's. A batch for a queue this version does not see is NOT_FOUND."""
        name = operation_name(parent.parent, request_id)

        async def check() -> None:
            await self._visible_queue(parent)

        def running() -> bytes:
            metadata = metadata_type(state=metadata_type.State.Value(BatchState.RUNNING.value))
            protobuf_util.set_timestamp(metadata.start_time, self.service.clock.now())
            operation = operations_pb2.Operation(name=name.path)
            operation.metadata.Pack(metadata)
            encoded: bytes = operation.SerializeToString()
            return encoded

        async def run_and_pack() -> bytes:
            result, response = await run()
            outcome = batch_outcome(result, metadata_type.DESCRIPTOR.name)
            encoded: bytes = self._done(name, outcome, metadata_type, response).SerializeToString()
            return encoded

        return operations_pb2.Operation.FromString(
            await run_once(self.service, name, check, running, run_and_pack, named=bool(request_id))
        )

    def _done(
        self, name: OperationName, outcome: BatchOutcome, metadata_type: type[Message], response: Message
    ) -> operations_pb2.Operation:
        """The done operation of a batch: its response (or its error, when none of its requests
        succeeded), and metadata with the batch's times, its state and each failed request's
        status by index."""
        metadata = metadata_type()
        protobuf_util.set_timestamp(metadata.start_time, outcome.start_time)
        protobuf_util.set_timestamp(metadata.end_time, outcome.end_time)
        metadata.state = metadata_type.State.Value(outcome.state.value)
        for index, error in outcome.failed.items():
            metadata.failed_requests[index].CopyFrom(status_pb(self._in_version_words(error)))
        operation = operations_pb2.Operation(name=name.path, done=True)
        operation.metadata.Pack(metadata)
        if outcome.error is not None:
            operation.error.CopyFrom(status_pb(outcome.error))
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
        paths = protobuf_util.mask_paths(request.update_mask, config, "update_mask")
        if any(path != "kms_key" for path in paths):
            raise InvalidArgument(f"update_mask may name only kms_key, got {', '.join(paths)}.")
        key = await self.service.set_cmek_key(location, config.kms_key)
        return self._response("UpdateCmekConfig")(name=f"{location.path}/cmekConfig", kms_key=key)

    # -- leases (pull queues) ----------------------------------------------------------

    async def LeaseTasks(self, request: Message) -> Message:
        parent = _queue_name(request.parent, "parent")
        duration = protobuf_util.optional_duration(request, "lease_duration", "lease_duration")
        tasks = await self.service.lease_tasks(parent, request.max_tasks, duration, request.filter)
        view = self.version.view_from_pb(request.response_view)
        return self._response("LeaseTasks")(tasks=[self.version.task_to_pb(t, view) for t in tasks])

    async def AcknowledgeTask(self, request: Message) -> Message:
        await self.service.acknowledge_task(*_held_lease(request))
        return _EMPTY

    async def acknowledge_tasks(self, requests: list[Message]) -> list[Message | TasksError]:
        """AcknowledgeTask for many requests at once (one HTTP batch): one store transaction."""
        outcomes = await outcomes_of(requests, _held_lease, self.service.acknowledge_tasks)
        return [_EMPTY if outcome is None else outcome for outcome in outcomes]

    async def RenewLease(self, request: Message) -> Message:
        held = protobuf_util.optional_timestamp(request, "schedule_time", "schedule_time")
        duration = protobuf_util.optional_duration(request, "lease_duration", "lease_duration")
        task = await self.service.renew_lease(_task_name(request.name), held, duration)
        return self.version.task_to_pb(task, self.version.view_from_pb(request.response_view))

    async def CancelLease(self, request: Message) -> Message:
        held = protobuf_util.optional_timestamp(request, "schedule_time", "schedule_time")
        task = await self.service.cancel_lease(_task_name(request.name), held)
        return self.version.task_to_pb(task, self.version.view_from_pb(request.response_view))

    async def unimplemented(self, request: Message) -> Message:
        raise Unimplemented(
            f"{type(request).DESCRIPTOR.name.removesuffix('Request')} is not implemented in tasksd yet."
        )

    def rpcs(self) -> dict[str, Rpc]:
        """Every RPC of the version, by name."""
        rpcs = {}
        for name, (request, response) in self.version.messages.items():
            handler = getattr(self, name, None) or self.unimplemented
            handle_many = self.acknowledge_tasks if name == "AcknowledgeTask" else None
            rpcs[name] = Rpc(
                self.version.service,
                name,
                request,
                response,
                self._speaking_version(handler),
                grpc="grpc" in self.version.transports and name not in self.version.rest_only,
                rest="rest" in self.version.transports,
                handle_many=self._speaking_version_many(handle_many) if handle_many is not None else None,
            )
        return rpcs

    def _speaking_version(self, handler: Handler) -> Handler:
        """The handler, with field names in its InvalidArgument messages spelled as in this version."""
        if not self.version.field_names:
            return handler

        async def call(request: Message) -> Message:
            try:
                return await handler(request)
            except InvalidArgument as error:
                raise self._in_version_words(error) from None

        return call

    def _speaking_version_many(self, handler: ManyHandler) -> ManyHandler:
        """``_speaking_version`` for a handler of many requests, whose errors are answers."""
        if not self.version.field_names:
            return handler

        async def call(requests: list[Message]) -> list[Message | TasksError]:
            return [
                self._in_version_words(o) if isinstance(o, TasksError) else o for o in await handler(requests)
            ]

        return call

    def _in_version_words(self, error: TasksError) -> TasksError:
        """An InvalidArgument with the field it names spelled as in this version; any other
        error as it is."""
        return error.spelled(self._field_path) if isinstance(error, InvalidArgument) else error

    def _field_path(self, path: str) -> str:
        """A model field path as this version names it (its names for the model's fields)."""
        for model_name, wire_name in self.version.field_names.items():
            path = path.replace(model_name, wire_name)
        return path
