"""Messages for ``tasks.buffer``, which the discovery documents have and the published protos
lack: built from descriptors (once per version), so the REST transcoder treats them like any
other (``{"body": {"contentType": …, "data": base64}}`` in, the new Task out)."""

from __future__ import annotations

from google.api import httpbody_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_TYPE = descriptor_pb2.FieldDescriptorProto


def buffer_messages(task_type: type[Message], version: str) -> tuple[type[Message], type[Message]]:
    """(BufferTaskRequest, BufferTaskResponse) whose response holds a ``task_type``."""
    package = f"tasksd.rest.{version}"
    pool = descriptor_pool.Default()
    name = f"tasksd/rest/{version}/buffer.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name=name,
            package=package,
            syntax="proto3",
            dependency=[httpbody_pb2.DESCRIPTOR.name, task_type.DESCRIPTOR.file.name],
        )
        optional = _TYPE.LABEL_OPTIONAL
        request = file.message_type.add(name="BufferTaskRequest")
        request.field.add(name="queue", number=1, type=_TYPE.TYPE_STRING, label=optional, json_name="queue")
        request.field.add(
            name="task_id", number=2, type=_TYPE.TYPE_STRING, label=optional, json_name="taskId"
        )
        request.field.add(
            name="body",
            number=3,
            type=_TYPE.TYPE_MESSAGE,
            label=optional,
            json_name="body",
            type_name=".google.api.HttpBody",
        )
        response = file.message_type.add(name="BufferTaskResponse")
        response.field.add(
            name="task",
            number=1,
            type=_TYPE.TYPE_MESSAGE,
            label=optional,
            json_name="task",
            type_name=f".{task_type.DESCRIPTOR.full_name}",
        )
        pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.BufferTaskRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.BufferTaskResponse")),
    )
