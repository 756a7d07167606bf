"""Messages for ``tasks.buffer``, which the discovery document has and the published
v2beta2 protos lack: built at start-up from descriptors, so the REST transcoder treats
them like any other (``{"body": {"contentType": …, "data": base64}}`` in, a Task out)."""

from __future__ import annotations

from google.api import httpbody_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from tasksd.api.v2beta2.mapping import TaskPb

_PACKAGE = "tasksd.rest.v2beta2"


def _build() -> tuple[type[Message], type[Message]]:
    pool = descriptor_pool.Default()
    name = "tasksd/rest/v2beta2/buffer.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name=name,
            package=_PACKAGE,
            syntax="proto3",
            dependency=[httpbody_pb2.DESCRIPTOR.name, TaskPb.DESCRIPTOR.file.name],
        )
        request = file.message_type.add(name="BufferTaskRequest")
        string, message = (
            descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        )
        optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        request.field.add(name="queue", number=1, type=string, label=optional, json_name="queue")
        request.field.add(name="task_id", number=2, type=string, label=optional, json_name="taskId")
        request.field.add(
            name="body",
            number=3,
            type=message,
            label=optional,
            json_name="body",
            type_name=".google.api.HttpBody",
        )
        response = file.message_type.add(name="BufferTaskResponse")
        response.field.add(
            name="task",
            number=1,
            type=message,
            label=optional,
            json_name="task",
            type_name=f".{TaskPb.DESCRIPTOR.full_name}",
        )
        pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.BufferTaskRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.BufferTaskResponse")),
    )


BufferTaskRequest, BufferTaskResponse = _build()
