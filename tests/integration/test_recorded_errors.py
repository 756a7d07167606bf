"""Errors as production answers them (FACTS.md, "Recorded errors"): code, message and
google.rpc details, the same over REST and gRPC in every version."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.protobuf import json_format

from tests.integration.conftest import PARENT, Server, versioned_client

VERSIONS = ["v2", "v2beta3", "v2beta2"]
TRANSPORTS = ["rest", "grpc"]
QUEUE_FORMAT = (
    'Queue name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/<QUEUE_ID>".'
)
QUEUE_HELP = (
    "https://cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues#Queue.FIELDS.name"
)
TASK_HELP = (
    "https://cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues.tasks#Task.FIELDS.name"
)
GENERIC_NOT_FOUND = "Requested entity was not found."
QUEUE_MISSING = (
    "Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize."
)


def _queue(version: str) -> dict[str, Any]:
    name = f"{PARENT}/queues/err-{uuid.uuid4().hex[:10]}"
    return {"name": name, "app_engine_http_target": {}} if version == "v2beta2" else {"name": name}


def _task(version: str, name: str | None = None) -> dict[str, Any]:
    if version == "v2beta2":
        task: dict[str, Any] = {"app_engine_http_request": {"relative_url": "/x"}}
    else:
        task = {"app_engine_http_request": {"relative_uri": "/x"}}
    if name is not None:
        task["name"] = name
    return task


def _raises(call: Callable[[], Any]) -> exceptions.GoogleAPICallError:
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        call()
    return caught.value


def _details(error: exceptions.GoogleAPICallError, kind: str) -> list[dict[str, Any]]:
    """The error's google.rpc details of one type, as JSON: google-api-core hands REST details
    on as JSON and gRPC ones as messages."""
    found = []
    for detail in error.details:
        if isinstance(detail, dict):
            if detail.get("@type") == f"type.googleapis.com/google.rpc.{kind}":
                found.append({k: v for k, v in detail.items() if k != "@type"})
        elif type(detail).DESCRIPTOR.name == kind:
            found.append(json_format.MessageToDict(detail))
    return found


def _helps(error: exceptions.GoogleAPICallError) -> list[str]:
    return [link["url"] for help_ in _details(error, "Help") for link in help_["links"]]


@pytest.fixture(params=[(v, t) for v in VERSIONS for t in TRANSPORTS], ids=lambda p: "-".join(p))
def client(request: pytest.FixtureRequest, server: Server) -> tuple[str, Any]:
    version, transport = request.param
    return version, versioned_client(server, version, transport)


def test_not_found_wordings(client: tuple[str, Any]) -> None:
    version, tasks = client
    queue = tasks.create_queue(parent=PARENT, queue=_queue(version))
    missing_queue = f"{PARENT}/queues/never-{uuid.uuid4().hex[:8]}"
    error = _raises(lambda: tasks.delete_queue(name=missing_queue))
    assert isinstance(error, exceptions.NotFound) and error.message.endswith(GENERIC_NOT_FOUND)
    error = _raises(lambda: tasks.get_queue(name=missing_queue))
    assert error.message.endswith(QUEUE_MISSING)
    error = _raises(lambda: tasks.create_task(parent=missing_queue, task=_task(version)))
    assert isinstance(error, exceptions.NotFound) and "Queue does not exist." in error.message
    never = f"{queue.name}/tasks/never"
    for call in (tasks.get_task, tasks.delete_task, tasks.run_task):
        error = _raises(lambda call=call: call(name=never))
        assert isinstance(error, exceptions.NotFound) and error.message.endswith(GENERIC_NOT_FOUND), error
    gone = tasks.create_task(parent=queue.name, task=_task(version, f"{queue.name}/tasks/gone"))
    tasks.delete_task(name=gone.name)
    error = _raises(lambda: tasks.get_task(name=gone.name))
    assert error.message.endswith(
        "The task no longer exists, though a task with this name existed recently. "
        "The task either successfully completed or was deleted."
    )


def test_already_exists_wordings(client: tuple[str, Any]) -> None:
    version, tasks = client
    body = _queue(version)
    queue = tasks.create_queue(parent=PARENT, queue=body)
    error = _raises(lambda: tasks.create_queue(parent=PARENT, queue=body))
    assert isinstance(error, exceptions.Conflict) and error.message.endswith("Queue already exists")
    name = f"{queue.name}/tasks/once"
    tasks.create_task(parent=queue.name, task=_task(version, name))
    error = _raises(lambda: tasks.create_task(parent=queue.name, task=_task(version, name)))
    assert isinstance(error, exceptions.Conflict)
    assert error.message.endswith("Requested entity already exists")


def test_invalid_names_carry_help_links(client: tuple[str, Any]) -> None:
    version, tasks = client
    before = {q.name for q in tasks.list_queues(parent=PARENT)}
    error = _raises(lambda: tasks.create_queue(parent=PARENT, queue={"name": f"{PARENT}/queues/not a queue"}))
    assert isinstance(error, exceptions.BadRequest) and error.message.endswith(QUEUE_FORMAT)
    assert _helps(error) == [QUEUE_HELP]
    queue = tasks.create_queue(parent=PARENT, queue=_queue(version))
    error = _raises(
        lambda: tasks.create_task(
            parent=queue.name, task=_task(version, f"{queue.name}/tasks/not a valid id")
        )
    )
    assert isinstance(error, exceptions.BadRequest)
    assert error.message.endswith(
        'Task ID "not a valid id" can contain only letters ([A-Za-z]), numbers ([0-9]), hyphens (-), or '
        "underscores (_). Task ID must between 1 and 500 characters."
    )
    assert _helps(error) == [TASK_HELP]
    other = f"{PARENT}/queues/elsewhere"
    error = _raises(lambda: tasks.create_task(parent=queue.name, task=_task(version, f"{other}/tasks/t1")))
    assert error.message.endswith(
        f"The queue name from request ('{queue.name}') must be the same as the queue name in the named task "
        f"('{other}')."
    )
    assert {q.name for q in tasks.list_queues(parent=PARENT)} == before | {queue.name}
    assert list(tasks.list_tasks(parent=queue.name)) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_parent_that_is_no_name_is_permission_denied(server: Server, version: str) -> None:
    """Over gRPC (the REST clients cannot even send such a parent: it is part of the path)."""
    tasks = versioned_client(server, version, "grpc")
    error = _raises(lambda: tasks.create_queue(parent="not-a-valid-parent", queue=_queue(version)))
    assert isinstance(error, exceptions.Forbidden)
    assert error.message.endswith("Permission denied on resource project not-a-valid-parent.")
    infos = _details(error, "ErrorInfo")
    assert [(i["reason"], i["domain"]) for i in infos] == [("CONSUMER_INVALID", "googleapis.com")]


def test_rest_error_details_are_typed(server: Server) -> None:
    """REST renders details as google.rpc messages with their @type."""
    answer = httpx.post(f"{server.url}/v2/{PARENT}/queues", json={"name": f"{PARENT}/queues/bad name"})
    error = answer.json()["error"]
    assert (
        answer.status_code == 400
        and error["status"] == "INVALID_ARGUMENT"
        and error["message"] == QUEUE_FORMAT
    )
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Definition of queue name", "url": QUEUE_HELP}],
        }
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("version", ["v2", "v2beta3"])
def test_a_batch_where_every_request_fails_is_aborted(server: Server, version: str, transport: str) -> None:
    tasks = versioned_client(server, version, transport)
    queue = tasks.create_queue(parent=PARENT, queue=_queue(version))
    name = f"{queue.name}/tasks/dup"
    tasks.create_task(parent=queue.name, task=_task(version, name))
    requests = [{"parent": queue.name, "task": _task(version, name)} for _ in range(2)]
    created = tasks.batch_create_tasks(parent=queue.name, requests=requests)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        created.result(timeout=30)
    assert isinstance(caught.value, exceptions.Aborted)
    assert "None of the requests succeeded, refer to BatchCreateTasksMetadata.failed_requests" in str(
        caught.value
    )
    assert created.metadata.state.name == "FAILED"
    assert [s.code for s in created.metadata.failed_requests.values()] == [6, 6]
    deleted = tasks.batch_delete_tasks(
        parent=queue.name, names=[f"{queue.name}/tasks/none-{i}" for i in range(3)]
    )
    with pytest.raises(exceptions.Aborted, match=r"BatchDeleteTasksMetadata\.failed_requests"):
        deleted.result(timeout=30)
    # One success is enough for a result.
    mixed = tasks.batch_create_tasks(
        parent=queue.name, requests=[*requests, {"parent": queue.name, "task": _task(version)}]
    )
    assert len(mixed.result(timeout=30).tasks) == 1
