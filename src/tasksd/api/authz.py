"""Authorization of every RPC: the permission each method needs, on which resource, checked
before the method runs (so a denied call changes nothing).

The transports authenticate a call and put its principal in ``auth.credentials.CALLER``;
``Guard.wrap`` turns an RPC into one that refuses callers without the permission its discovery
text names (or, where it names none, the one named after it in Google's list). A caller who may not see a
queue is PERMISSION_DENIED whether or not the queue exists, so existence does not leak.

LIMITATIONS: Google publishes no permission for the pull methods; here LeaseTasks,
RenewLease and CancelLease need ``cloudtasks.tasks.run`` and AcknowledgeTask
``cloudtasks.tasks.delete``. UpdateQueue of a missing queue (which creates it) needs
``cloudtasks.queues.update`` only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from tasksd.api.rpc import Rpc
from tasksd.auth.credentials import CALLER
from tasksd.auth.policy import LOCATION_TYPE, QUEUE_TYPE, Iam
from tasksd.auth.roles import ACT_AS
from tasksd.model.errors import PermissionDenied, QueueNotFound, TasksError, Unauthenticated
from tasksd.model.iam import Policy
from tasksd.model.names import QueueName, TaskName
from tasksd.service import TasksService

FULL_VIEW = "cloudtasks.tasks.fullView"
_FULL = 2  # Task.View.FULL in every version

# RPC → (the permissions it needs, the request field naming the resource they are checked on).
REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ListLocations": (("cloudtasks.locations.list",), "name"),
    "GetLocation": (("cloudtasks.locations.get",), "name"),
    "GetOperation": (("cloudtasks.operations.get",), "name"),
    "ListQueues": (("cloudtasks.queues.list",), "parent"),
    "GetQueue": (("cloudtasks.queues.get",), "name"),
    "CreateQueue": (("cloudtasks.queues.create",), "queue.name"),  # "on the specified queue"
    "UpdateQueue": (("cloudtasks.queues.update",), "queue.name"),
    "DeleteQueue": (("cloudtasks.queues.delete",), "name"),
    "PurgeQueue": (("cloudtasks.queues.purge",), "name"),
    "PauseQueue": (("cloudtasks.queues.pause",), "name"),
    "ResumeQueue": (("cloudtasks.queues.resume",), "name"),
    "GetIamPolicy": (("cloudtasks.queues.getIamPolicy",), "resource"),
    "SetIamPolicy": (("cloudtasks.queues.setIamPolicy",), "resource"),
    "TestIamPermissions": ((), "resource"),
    "UploadQueueYaml": (("cloudtasks.queues.create", "cloudtasks.queues.update"), "app_id"),
    "ListTasks": (("cloudtasks.tasks.list",), "parent"),
    "GetTask": (("cloudtasks.tasks.get",), "name"),
    "CreateTask": (("cloudtasks.tasks.create",), "parent"),
    "DeleteTask": (("cloudtasks.tasks.delete",), "name"),
    "RunTask": (("cloudtasks.tasks.run",), "name"),
    "BufferTask": (("cloudtasks.tasks.create",), "queue"),
    "BatchCreateTasks": (("cloudtasks.tasks.create",), "parent"),
    "BatchDeleteTasks": (("cloudtasks.tasks.delete",), "parent"),
    "LeaseTasks": (("cloudtasks.tasks.run",), "parent"),
    "AcknowledgeTask": (("cloudtasks.tasks.delete",), "name"),
    "RenewLease": (("cloudtasks.tasks.run",), "name"),
    "CancelLease": (("cloudtasks.tasks.run",), "name"),
    "GetCmekConfig": (("cloudtasks.cmekConfig.get",), "name"),
    "UpdateCmekConfig": (("cloudtasks.cmekConfig.update",), "cmek_config.name"),
}
# The RPCs whose request may name service accounts that push tasks will carry tokens of.
_ACTING = frozenset({"CreateTask", "BatchCreateTasks", "CreateQueue", "UpdateQueue"})
_TOKEN_FIELDS = frozenset({"oidc_token", "oauth_token"})
# The fields on the way from a request to its tokens (a task's or a queue's HTTP target).
_TOWARD_TOKENS = frozenset({"task", "requests", "queue", "http_request", "http_target"})


def caller() -> str:
    principal = CALLER.get()
    if principal is None:  # a transport that did not authenticate: refuse rather than allow
        raise Unauthenticated()
    return principal


class Guard:
    """Checks callers against IAM: the config's project bindings and each queue's policy."""

    def __init__(self, iam: Iam, service: TasksService) -> None:
        self.iam = iam
        self.service = service

    def wrap(self, rpc: Rpc) -> Rpc:
        """``rpc``, refusing callers who lack what it needs."""
        permissions, path = REQUIREMENTS[rpc.name]
        handler = rpc.handler
        acting = rpc.name in _ACTING
        read = _reader(path)

        async def call(request: Message) -> Message:
            principal = caller()
            resource = read(request)
            await self.authorize(
                principal, permissions + _extra(request), resource, request if acting else None
            )
            return await handler(request)

        async def test_permissions(request: Message) -> Message:
            principal = caller()
            response = await handler(request)
            held = await self.held(principal, list(response.permissions), read(request))
            del response.permissions[:]
            response.permissions.extend(held)
            return response

        handle_many = rpc.handle_many
        if handle_many is not None:
            run_many = handle_many

            async def call_many(requests: list[Message]) -> list[Message | TasksError]:
                principal = caller()
                outcomes: list[Message | TasksError | None] = []
                allowed: list[Message] = []
                for request in requests:
                    try:
                        await self.authorize(principal, permissions + _extra(request), read(request), None)
                    except TasksError as error:
                        outcomes.append(error)
                        continue
                    outcomes.append(None)
                    allowed.append(request)
                answers = iter(await run_many(allowed) if allowed else [])
                return [next(answers) if outcome is None else outcome for outcome in outcomes]

            return replace(rpc, handler=call, handle_many=call_many)
        return replace(rpc, handler=test_permissions if rpc.name == "TestIamPermissions" else call)

    async def authorize(
        self, principal: str, permissions: tuple[str, ...], resource: str, acting: Message | None
    ) -> None:
        """Raises PermissionDenied unless ``principal`` holds every permission on ``resource``
        and may act as every service account ``acting`` (a request) names."""
        scope = _Scope(resource)
        for permission in permissions:
            if not await self._holds(principal, permission, scope):
                raise PermissionDenied.lacking(permission, resource)
        if acting is not None:
            for email in sorted(service_accounts(acting)):
                if not self.iam.may_act_as(principal, email, self.service.clock.now()):
                    raise PermissionDenied.lacking(ACT_AS, email)

    async def held(self, principal: str, permissions: list[str], resource: str) -> list[str]:
        """The ones of ``permissions`` that ``principal`` holds on ``resource``."""
        scope = _Scope(resource)
        return [p for p in permissions if await self._holds(principal, p, scope)]

    async def _holds(self, principal: str, permission: str, scope: _Scope) -> bool:
        if permission in self.iam.project_permissions(principal, scope.project):
            return True
        now = self.service.clock.now()
        kind = QUEUE_TYPE if scope.queue is not None else LOCATION_TYPE
        name = scope.queue.path if scope.queue is not None else scope.resource
        if self.iam.has_conditions() and permission in self.iam.conditional_permissions(
            principal, scope.project, name, kind, now
        ):
            return True
        if scope.queue is None:
            return False
        policy = await scope.policy(self.service)
        return policy is not None and permission in self.iam.policy_permissions(principal, policy, name, now)


class _Scope:
    """The resource of one check: its project, its queue (for queue and task names), and
    the queue's policy, read at most once."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        if resource.startswith("projects/"):
            self.project = resource[len("projects/") :].partition("/")[0]
        else:
            self.project = resource
        self._policy: Policy | None = None
        self._read = False

    @functools.cached_property
    def queue(self) -> QueueName | None:
        """The queue of a queue's or a task's name (read only when the project's bindings do
        not decide)."""
        parts = self.resource.split("/")
        try:
            if len(parts) == 6:
                return QueueName.parse(self.resource, "name")
            if len(parts) == 8:
                return TaskName.parse(self.resource, "name").queue_name
        except TasksError:
            pass
        return None

    async def policy(self, service: TasksService) -> Policy | None:
        if not self._read and self.queue is not None:
            self._read = True
            try:
                self._policy = await service.queue_policy(self.queue)
            except QueueNotFound:
                self._policy = None
        return self._policy


@functools.cache
def _resource_reader(rpc: str) -> Callable[[Message], str] | None:
    found = REQUIREMENTS.get(rpc)
    return _reader(found[1]) if found is not None else None


def resource_of(rpc: str, request: Message) -> str:
    """The resource an RPC's request names (what its permissions are checked on), or ""."""
    read = _resource_reader(rpc)
    if read is None:
        return ""
    try:
        return read(request)
    except AttributeError:  # a request of another shape (an RPC of another service)
        return ""


def _reader(path: str) -> Callable[[Message], str]:
    names = path.split(".")

    def read(request: Message) -> str:
        value: object = request
        for name in names:
            value = getattr(value, name)
        return str(value)

    return read


def _extra(request: Message) -> tuple[str, ...]:
    """fullView when the request asks for the FULL view of tasks."""
    fields = request.DESCRIPTOR.fields_by_name
    if "response_view" in fields and request.response_view == _FULL:
        return (FULL_VIEW,)
    if "requests" in fields and any(r.response_view == _FULL for r in request.requests):
        return (FULL_VIEW,)
    return ()


def service_accounts(message: Message) -> set[str]:
    """The service accounts that the OIDC and OAuth tokens a request asks for name."""
    found: set[str] = set()
    for name, repeated, token in _token_fields(message.DESCRIPTOR):
        if repeated:
            for item in getattr(message, name):
                found |= service_accounts(item)
        elif message.HasField(name):
            value = getattr(message, name)
            if not token:
                found |= service_accounts(value)
            elif value.service_account_email:
                found.add(value.service_account_email)
    return found


@functools.cache
def _token_fields(descriptor: Descriptor) -> tuple[tuple[str, bool, bool], ...]:
    """(name, repeated, is a token) of the message fields of a type that lead to tokens."""
    return tuple(
        (
            field.name,
            field.is_repeated if hasattr(field, "is_repeated") else field.label == 3,
            field.name in _TOKEN_FIELDS,
        )
        for field in descriptor.fields
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.name in _TOKEN_FIELDS | _TOWARD_TOKENS
    )
