"""The gRPC surface: every RPC of the table on a grpc.aio server, plus the standard health
service and server reflection (so grpcurl works).

Handlers are the same pb-in/pb-out functions the REST transcoder calls; a TasksError becomes
the status code of the same name with its message.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tasksd.api.observed import record
from tasksd.api.rpc import Rpc
from tasksd.api.status import status_pb, wire_message
from tasksd.auth.credentials import CALLER, Authenticate, Credentials, bearer_token
from tasksd.model.errors import Cancelled, Code, Internal, InvalidArgument, TasksError

log = logging.getLogger(__name__)

_STATUS = {status.value[0]: status for status in grpc.StatusCode}


def grpc_status(code: Code) -> grpc.StatusCode:
    return _STATUS[int(code)]


class _Undecodable:
    """What the deserializer hands on when the bytes are not a message of the RPC's type."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _deserializer(message_type: type[Message]) -> Any:
    def parse(data: bytes) -> Message | _Undecodable:
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return _Undecodable(f"The request is not a valid {message_type.DESCRIPTOR.full_name}: {exc}.")

    return parse


def _credentials(context: grpc.aio.ServicerContext[Any, Any]) -> Credentials:
    bearer = api_key = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            bearer = bearer_token(value)
        elif key == "x-goog-api-key" and isinstance(value, str):
            api_key = value
    return Credentials(bearer, api_key)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: TasksError) -> None:
    """End the call with the error's status; its details travel in the status details trailer
    (``grpc-status-details-bin``), as Google's servers send them."""
    if error.details:
        context.set_trailing_metadata([("grpc-status-details-bin", status_pb(error).SerializeToString())])
    await context.abort(grpc_status(error.code), wire_message(error))


def _method_handler(rpc: Rpc, authenticate: Authenticate | None) -> grpc.RpcMethodHandler:
    async def call(request: Message | _Undecodable, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        started = time.perf_counter()
        error: TasksError | None = Cancelled()  # until it ends otherwise
        try:
            if authenticate is not None:
                CALLER.set(await authenticate(_credentials(context), ()))
            if isinstance(request, _Undecodable):
                raise InvalidArgument(request.reason)
            response = await rpc.handler(request)
            error = None
            return response
        except TasksError as exc:
            error = exc
        except Exception:  # a bug: log it, never send a traceback
            log.exception("unhandled error in %s/%s", rpc.service, rpc.name)
            error = Internal()
        finally:
            record(rpc.name, "grpc", started, error, None if isinstance(request, _Undecodable) else request)
        await _abort(context, error)
        raise AssertionError("context.abort always raises")

    return grpc.unary_unary_rpc_method_handler(
        call,
        request_deserializer=_deserializer(rpc.request),
        response_serializer=rpc.response.SerializeToString,
    )


def _register_service_descriptors(services: dict[str, list[Rpc]]) -> None:
    """Add the services' descriptors to the default pool (the shipped packages register only
    their messages), so that reflection can describe them."""
    pool = descriptor_pool.Default()
    for service, rpcs in services.items():
        package, _, name = service.rpartition(".")
        try:
            pool.FindServiceByName(service)
            continue  # registered already (by its package, or by an earlier start)
        except KeyError:
            pass
        file_name = f"tasksd/services/{service}.proto"
        file = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
        dependencies = sorted({m.DESCRIPTOR.file.name for rpc in rpcs for m in (rpc.request, rpc.response)})
        file.dependency.extend(dependencies)
        proto = file.service.add(name=name)
        for rpc in rpcs:
            proto.method.add(
                name=rpc.name,
                input_type=f".{rpc.request.DESCRIPTOR.full_name}",
                output_type=f".{rpc.response.DESCRIPTOR.full_name}",
            )
        pool.Add(file)


async def start_grpc(
    rpcs: list[Rpc],
    host: str,
    port: int,
    authenticate: Authenticate | None = None,
    tls: grpc.ServerCredentials | None = None,
) -> grpc.aio.Server:
    """A started gRPC server on ``host:port`` serving ``rpcs``, health and reflection; with
    ``authenticate``, every call of ``rpcs`` is authenticated first (health and reflection
    stay open); with ``tls``, over TLS.

    Each RPC whose ``Rpc.grpc`` is set is registered under its service and name with the
    request's own deserializer (bytes that are no such message are INVALID_ARGUMENT); a
    TasksError aborts the call with the status code of the same name, its message cut as
    ``api/status.py`` says and its details in ``grpc-status-details-bin``.

    Raises:
        OSError: the port cannot be bound.
    """
    services: dict[str, list[Rpc]] = defaultdict(list)
    for rpc in rpcs:
        if rpc.grpc:
            services[rpc.service].append(rpc)
    _register_service_descriptors(services)
    server = grpc.aio.server(
        options=[
            # A connection that never finishes its HTTP/2 handshake, or sits idle, holds a file
            # descriptor the REST port needs too: bound both, as the REST port does.
            ("grpc.server_handshake_timeout_ms", 30_000),
            ("grpc.max_connection_idle_ms", 620_000),
        ]
    )
    for service, items in services.items():
        handlers = {rpc.name: _method_handler(rpc, authenticate) for rpc in items}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    checker = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    names = [*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, tls) if tls is not None else server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    for name in ["", *services]:
        result = checker.set(name, health_pb2.HealthCheckResponse.SERVING)
        if result is not None:
            await result
    return server
