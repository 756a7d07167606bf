"""An RPC as every transport sees it: request and response message types and a handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

Handler = Callable[[Any], Awaitable[Message]]


@dataclass(frozen=True, slots=True)
class Rpc:
    service: str
    """Full name of the gRPC service, e.g. google.cloud.tasks.v2beta2.CloudTasks."""
    name: str
    request: type[Message]
    response: type[Message]
    handler: Handler
    grpc: bool = True
    """False for a method that exists only in the REST surface (not in the service's proto)."""
