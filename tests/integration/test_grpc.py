"""The gRPC surface beyond the shared suites: health, reflection, status codes."""

from __future__ import annotations

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2beta2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.conftest import PARENT, Server, gapic_grpc_client


def test_health_and_reflection(server: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "google.cloud.tasks.v2beta2.CloudTasks"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(
            stub.ServerReflectionInfo(
                iter(
                    [
                        reflection_pb2.ServerReflectionRequest(list_services=""),
                        reflection_pb2.ServerReflectionRequest(
                            file_containing_symbol="google.cloud.tasks.v2beta2.CloudTasks"
                        ),
                    ]
                ),
                timeout=10,
            )
        )
        names = {s.name for s in answers[0].list_services_response.service}
        assert {"google.cloud.tasks.v2beta2.CloudTasks", "google.cloud.location.Locations"} <= names
        assert answers[1].file_descriptor_response.file_descriptor_proto


def test_errors_carry_status_codes(server: Server, queue_name: str) -> None:
    client = gapic_grpc_client(server)
    with pytest.raises(exceptions.NotFound) as missing:
        client.get_queue(name=queue_name)
    assert (
        missing.value.grpc_status_code == grpc.StatusCode.NOT_FOUND
        and "Queue does not exist" in missing.value.message
    )
    with pytest.raises(exceptions.InvalidArgument) as bad:
        client.create_queue(parent=PARENT, queue=tasks_v2beta2.Queue(name=f"{PARENT}/queues/bad_name"))
    assert "Queue name must be formatted" in bad.value.message
    client.create_queue(parent=PARENT, queue=tasks_v2beta2.Queue(name=queue_name, pull_target={}))
    with pytest.raises(exceptions.AlreadyExists):
        client.create_queue(parent=PARENT, queue=tasks_v2beta2.Queue(name=queue_name, pull_target={}))
    client.pause_queue(name=queue_name)
    with pytest.raises(exceptions.FailedPrecondition):
        client.lease_tasks(request={"parent": queue_name, "max_tasks": 1, "lease_duration": {"seconds": 10}})
    with pytest.raises(exceptions.InvalidArgument) as empty:
        client.upload_queue_yaml(request={"app_id": "x"})
    assert "queue.yaml is empty" in empty.value.message


def test_undecodable_request_is_invalid_argument(server: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        create = channel.unary_unary("/google.cloud.tasks.v2.CloudTasks/CreateTask")
        with pytest.raises(grpc.RpcError) as info:
            create(b"\xff\xff\xff\x0f garbage", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid google.cloud.tasks.v2.CreateTaskRequest" in info.value.details()
