"""A TasksError as the ``google.rpc.Status`` both wires carry: its message cut to what gRPC
trailers hold, and its details as protobuf messages (gRPC's status details trailer, REST's
``error.details`` with ``@type``). How REST renders it is ``api/rest/errors.py``."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from tasksd.model.errors import Detail, ErrorInfo, Help, TasksError

MAX_MESSAGE_BYTES = 1024
"""The longest message, in UTF-8 bytes, an error carries on either wire. gRPC sends it in the
``grpc-message`` trailer, percent-encoded (up to three bytes for one), and again inside
``grpc-status-details-bin``; clients refuse trailers over 8 KiB (the call then fails with
RESOURCE_EXHAUSTED instead of the error), so a message that echoes a long input is cut, and
REST carries the same cut text."""


def wire_message(error: TasksError) -> str:
    """The error's message as both wires carry it: cut to MAX_MESSAGE_BYTES, marked with "…"."""
    return _cut(error.message)


def _cut(text: str) -> str:
    """``text`` cut to MAX_MESSAGE_BYTES of UTF-8, marked with "…" (gRPC trailers are small)."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return text
    return encoded[: MAX_MESSAGE_BYTES - len("…".encode())].decode("utf-8", "ignore") + "…"


def detail_pb(detail: Detail) -> any_pb2.Any:
    """A detail of the model as the google.rpc message it stands for, packed."""
    message: Any
    if isinstance(detail, Help):
        message = error_details_pb2.Help(
            links=[error_details_pb2.Help.Link(description=k.description, url=k.url) for k in detail.links]
        )
    else:
        assert isinstance(detail, ErrorInfo)
        message = error_details_pb2.ErrorInfo(
            reason=detail.reason,
            domain=detail.domain,
            metadata={key: _cut(value) for key, value in detail.metadata},
        )
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_pb(error: TasksError) -> status_pb2.Status:
    """The google.rpc.Status of an error, details included."""
    return status_pb2.Status(
        code=int(error.code), message=wire_message(error), details=[detail_pb(d) for d in error.details]
    )
