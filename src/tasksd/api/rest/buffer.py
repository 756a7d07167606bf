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
        request = file.message_type.add(name="BufferTaskRequest")
        _add_field(request, "queue", 1, "queue")
        _add_field(request, "task_id", 2, "taskId")
        _add_field(request, "body", 3, "body", "google.api.HttpBody")
        response = file.message_type.add(name="BufferTaskResponse")
        _add_field(response, "task", 1, "task", task_type.DESCRIPTOR.full_name)
        pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.BufferTaskRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.BufferTaskResponse")),
    )


def _add_field(
    message: descriptor_pb2.DescriptorProto, name: str, number: int, json_name: str, message_type: str = ""
) -> None:
    """An optional field of ``message``: a string, or a message of the type ``message_type``
    (a full name)."""
    field = message.field.add(name=name, number=number, label=_TYPE.LABEL_OPTIONAL, json_name=json_name)
    if message_type:
        field.type, field.type_name = _TYPE.TYPE_MESSAGE, f".{message_type}"
    else:
        field.type = _TYPE.TYPE_STRING
