"""The v2beta2 messages of the REST surface, which is the discovery document, not the
published protobuf: the document gives ``Task`` a task-level ``retryConfig`` and has
``tasks.batchCreate``, ``tasks.batchDelete``, ``locations.getCmekConfig`` and
``updateCmekConfig``, which the published v2beta2 protos lack.

Built once from descriptors: the published ``Task`` (and the messages that hold one) copied
into ``tasksd.rest.v2beta2`` with the ``retry_config`` field added, and the batch and CMEK
messages copied from v2 (whose fields the document lists for v2beta2 too) into the v2beta2
package, so that an operation's metadata names ``google.cloud.tasks.v2beta2.…`` as the real
service's would. gRPC keeps the published messages: these serve REST only.
"""

from __future__ import annotations

from google.cloud.tasks_v2.types import cloudtasks as v2_cloudtasks
from google.cloud.tasks_v2.types import cmek_config as v2_cmek
from google.cloud.tasks_v2beta2.types import cloudtasks as ct
from google.cloud.tasks_v2beta2.types import queue as queue_types
from google.cloud.tasks_v2beta2.types import task as task_types
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

_PUBLISHED = "google.cloud.tasks.v2beta2"
_COPIES = "tasksd.rest.v2beta2"
_V2 = "google.cloud.tasks.v2"
_FIELD = descriptor_pb2.FieldDescriptorProto

# Published v2beta2 messages that hold a Task: copied so that they hold the REST Task.
_HOLDERS = (ct.CreateTaskRequest, ct.ListTasksResponse, ct.LeaseTasksResponse)
# v2 messages the document has for v2beta2 too (BatchCreateTasksRequest, …, and what the
# operations of the batches hold).
_FROM_V2 = (
    "BatchCreateTasksRequest",
    "BatchDeleteTasksRequest",
    "BatchCreateTasksResponse",
    "BatchCreateTasksMetadata",
    "BatchDeleteTasksMetadata",
    "GetCmekConfigRequest",
    "UpdateCmekConfigRequest",
)
_TASK_FILE = "tasksd/rest/v2beta2/task.proto"
_MORE_FILE = "tasksd/rest/v2beta2/cloudtasks.proto"


def _copy(descriptor: Descriptor, renames: dict[str, str]) -> descriptor_pb2.DescriptorProto:
    """A message's descriptor, with the message types it names renamed (full names, dotted)."""
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)

    def rename(message: descriptor_pb2.DescriptorProto) -> None:
        for field in message.field:
            if field.type_name in renames:
                field.type_name = renames[field.type_name]
        for nested in message.nested_type:
            rename(nested)

    rename(proto)
    return proto


def _build(pool: descriptor_pool.DescriptorPool) -> None:
    task = task_types.Task.pb().DESCRIPTOR
    renames = {f".{_PUBLISHED}.Task": f".{_COPIES}.Task", f".{_PUBLISHED}.Task.View": f".{_COPIES}.Task.View"}
    copies = descriptor_pb2.FileDescriptorProto(
        name=_TASK_FILE,
        package=_COPIES,
        syntax="proto3",
        dependency=sorted(
            {task.file.name, queue_types.Queue.pb().DESCRIPTOR.file.name}
            | {d.name for d in task.file.dependencies}
            | {d.name for h in _HOLDERS for d in h.pb().DESCRIPTOR.file.dependencies}
        ),
    )
    rest_task = _copy(task, renames)
    # "Optional. Specifies the task-level retry config. If present, this overrides the
    # queue-level retry config for this task." (the document's Task.retryConfig)
    rest_task.field.add(
        name="retry_config",
        number=max(f.number for f in rest_task.field) + 1,
        type=_FIELD.TYPE_MESSAGE,
        label=_FIELD.LABEL_OPTIONAL,
        type_name=f".{queue_types.RetryConfig.pb().DESCRIPTOR.full_name}",
        json_name="retryConfig",
    )
    copies.message_type.append(rest_task)
    for holder in _HOLDERS:
        descriptor = holder.pb().DESCRIPTOR
        copies.message_type.append(_copy(descriptor, renames))
        renames[f".{descriptor.full_name}"] = f".{_COPIES}.{descriptor.name}"
    pool.Add(copies)

    # The v2 messages, in the v2beta2 package (where the real service has them), naming the
    # REST Task and CreateTaskRequest, and a v2beta2 CmekConfig.
    from_v2 = {
        f".{_V2}.Task": f".{_COPIES}.Task",
        f".{_V2}.CreateTaskRequest": f".{_COPIES}.CreateTaskRequest",
    }
    package = _more_package(pool)
    from_v2 |= {f".{_V2}.{name}": f".{package}.{name}" for name in (*_FROM_V2, "CmekConfig")}
    for name in ("BatchCreateTasksMetadata", "BatchDeleteTasksMetadata"):
        from_v2[f".{_V2}.{name}.State"] = f".{package}.{name}.State"
        from_v2[f".{_V2}.{name}.FailedRequestsEntry"] = f".{package}.{name}.FailedRequestsEntry"
    v2_file = v2_cloudtasks.BatchCreateTasksRequest.pb().DESCRIPTOR.file
    more = descriptor_pb2.FileDescriptorProto(
        name=_MORE_FILE,
        package=package,
        syntax="proto3",
        dependency=[_TASK_FILE]
        + [d.name for d in v2_file.dependencies if not d.name.startswith("google/cloud/tasks_v2/")],
    )
    more.message_type.append(_copy(v2_cmek.CmekConfig.pb().DESCRIPTOR, from_v2))
    for name in _FROM_V2:
        more.message_type.append(_copy(getattr(v2_cloudtasks, name).pb().DESCRIPTOR, from_v2))
    pool.Add(more)


def _more_package(pool: descriptor_pool.DescriptorPool) -> str:
    """The v2beta2 package, unless a newer published v2beta2 proto already has the messages
    (then the copies, which still hold the REST Task, go beside it)."""
    try:
        pool.FindMessageTypeByName(f"{_PUBLISHED}.BatchCreateTasksRequest")
    except KeyError:
        return _PUBLISHED
    return _COPIES


def _message(pool: descriptor_pool.DescriptorPool, full_name: str) -> type[Message]:
    found: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    return found


def messages() -> dict[str, type[Message]]:
    """The REST messages by name: Task and its holders, the batch and CMEK messages."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_TASK_FILE)
    except KeyError:
        _build(pool)
    names = {"Task": _COPIES} | {h.pb().DESCRIPTOR.name: _COPIES for h in _HOLDERS}
    more = pool.FindFileByName(_MORE_FILE).package
    names |= {name: more for name in (*_FROM_V2, "CmekConfig")}
    return {name: _message(pool, f"{package}.{name}") for name, package in names.items()}
