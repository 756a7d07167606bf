"""An RPC as every transport sees it: request and response message types and a handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from tasksd.model.errors import TasksError

Handler = Callable[[Any], Awaitable[Message]]
ManyHandler = Callable[[list[Any]], Awaitable[list[Message | TasksError]]]
"""Runs many requests of one RPC together (the inner requests of an HTTP batch) and answers
each: its reply, or the error it alone failed with."""


@dataclass(frozen=True, slots=True)
class Rpc:
    """One RPC of one API version as the transports serve it: the gRPC service and method it
    is, its request and response message types, and the handler that answers a request
    message with a response message (or raises a TasksError). The gRPC server registers it
    under ``service``/``name``; the REST app routes a discovery method to it and transcodes
    JSON to ``request`` and ``response`` back. ``authz.Guard.wrap`` gives a copy whose
    handlers authorize the caller first."""

    service: str
    """Full name of the gRPC service, e.g. google.cloud.tasks.v2beta2.CloudTasks."""
    name: str
    request: type[Message]
    response: type[Message]
    handler: Handler
    grpc: bool = True
    """False for a method that exists only in the REST surface (not in the service's proto)."""
    rest: bool = True
    """False for an RPC of the gRPC surface only (v2beta2's published messages: REST serves
    the discovery document's)."""
    handle_many: ManyHandler | None = None
    """For an RPC whose requests can share one store transaction (acknowledge): runs the
    inner requests of an HTTP batch for it together."""
