"""BatchCreateTasks, BatchDeleteTasks (long-running operations), GetOperation and the CMEK
configuration, through google-cloud-tasks v2 and v2beta3 over REST and gRPC."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2, tasks_v2beta3
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from tests.integration.conftest import PARENT, Server

Metadata = tasks_v2.BatchCreateTasksMetadata


def _http_task(url: str, name: str | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {"http_request": {"url": url}}
    if name:
        task["name"] = name
    return task


@pytest.fixture
def paused_queue(gapic_v2: Any, queue_name: str) -> str:
    gapic_v2.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=queue_name))
    gapic_v2.pause_queue(name=queue_name)  # the tasks stay where they are
    return queue_name


def test_batch_create_tasks(gapic_v2: Any, paused_queue: str) -> None:
    requests = [
        {"parent": paused_queue, "task": _http_task(f"https://example.com/{i}")} for i in range(5)
    ] + [
        {
            "parent": paused_queue,
            "task": _http_task("https://example.com/named", f"{paused_queue}/tasks/named"),
            "response_view": tasks_v2.Task.View.FULL,
        }
    ]
    operation = gapic_v2.batch_create_tasks(request={"parent": paused_queue, "requests": requests})
    result = operation.result(timeout=30)
    assert len(result.tasks) == 6
    assert result.tasks[-1].name == f"{paused_queue}/tasks/named"
    assert result.tasks[-1].http_request.url == "https://example.com/named"  # FULL view
    metadata = operation.metadata
    assert metadata.state == Metadata.State.SUCCEEDED and not metadata.failed_requests
    assert metadata.start_time <= metadata.end_time
    stored = {t.name for t in gapic_v2.list_tasks(parent=paused_queue)}
    assert stored == {t.name for t in result.tasks}
    # The operation can be fetched again by name.
    fetched = gapic_v2.get_operation(request={"name": operation.operation.name})
    assert fetched.done and fetched.name == operation.operation.name
    assert fetched.name.startswith(f"{PARENT}/operations/")


def test_batch_create_reports_each_failed_request(gapic_v2: Any, paused_queue: str) -> None:
    gapic_v2.create_task(
        parent=paused_queue, task=_http_task("https://example.com/", f"{paused_queue}/tasks/taken")
    )
    requests = [
        {"parent": paused_queue, "task": _http_task("https://example.com/a")},
        {"parent": paused_queue, "task": _http_task("https://example.com/b", f"{paused_queue}/tasks/taken")},
        {"parent": paused_queue, "task": _http_task("ftp://example.com/c")},
        {"parent": paused_queue, "task": _http_task("https://example.com/d")},
        {"parent": paused_queue, "task": _http_task("https://example.com/e", f"{paused_queue}/tasks/twice")},
        {"parent": paused_queue, "task": _http_task("https://example.com/f", f"{paused_queue}/tasks/twice")},
    ]
    operation = gapic_v2.batch_create_tasks(request={"parent": paused_queue, "requests": requests})
    result = operation.result(timeout=30)
    assert [t.http_request.url for t in result.tasks] == [
        "https://example.com/a",
        "https://example.com/d",
        "https://example.com/e",
    ]
    metadata = operation.metadata
    assert metadata.state == Metadata.State.PARTIALLY_SUCCEEDED
    assert sorted(metadata.failed_requests) == [1, 2, 5]
    assert metadata.failed_requests[1].code == 6  # ALREADY_EXISTS
    assert metadata.failed_requests[2].code == 3 and "url" in metadata.failed_requests[2].message
    assert metadata.failed_requests[5].code == 6  # the batch named that task already
    assert len(list(gapic_v2.list_tasks(parent=paused_queue))) == 4


def test_batch_create_retry_with_the_same_request_id_creates_nothing_more(
    gapic_v2: Any, paused_queue: str
) -> None:
    request_id = str(uuid.uuid4())
    request = {
        "parent": paused_queue,
        "requests": [{"parent": paused_queue, "task": _http_task("https://example.com/x")}],
        "request_id": request_id,
    }
    first = gapic_v2.batch_create_tasks(request=request)
    again = gapic_v2.batch_create_tasks(request=request)
    assert first.operation.name == again.operation.name == f"{PARENT}/operations/{request_id}"
    assert [t.name for t in first.result(timeout=30).tasks] == [
        t.name for t in again.result(timeout=30).tasks
    ]
    assert len(list(gapic_v2.list_tasks(parent=paused_queue))) == 1


def test_racing_retries_with_the_same_request_id_run_the_batch_once(gapic_v2: Any, paused_queue: str) -> None:
    """Retries sent while the first call still runs get its operation (running, which the client
    polls until done) instead of creating the tasks again under new generated names."""
    request = {
        "parent": paused_queue,
        "requests": [
            {"parent": paused_queue, "task": _http_task(f"https://example.com/{i}")} for i in range(100)
        ],
        "request_id": str(uuid.uuid4()),
    }
    with ThreadPoolExecutor(6) as pool:
        operations = list(pool.map(lambda _: gapic_v2.batch_create_tasks(request=request), range(6)))
        results = list(pool.map(lambda operation: operation.result(timeout=30), operations))
    names = [t.name for t in results[0].tasks]
    assert len(names) == 100
    assert all([t.name for t in result.tasks] == names for result in results)
    assert len(list(gapic_v2.list_tasks(request={"parent": paused_queue, "page_size": 1000}))) == 100


def test_batch_create_refuses_a_bad_batch_whole(gapic_v2: Any, paused_queue: str) -> None:
    other = f"{PARENT}/queues/elsewhere"
    one = {"parent": paused_queue, "task": _http_task("https://example.com/")}
    bad_batches = [
        ([], "requests is required"),
        ([one] * 101, "at most 100"),
        ([one, {"parent": other, "task": _http_task("https://example.com/")}], "requests[1].parent"),
    ]
    for requests, words in bad_batches:
        with pytest.raises(exceptions.BadRequest) as caught:
            gapic_v2.batch_create_tasks(request={"parent": paused_queue, "requests": requests})
        assert words in caught.value.message
    with pytest.raises(exceptions.BadRequest):
        gapic_v2.batch_create_tasks(
            request={"parent": paused_queue, "requests": [one], "request_id": "not/an/id"}
        )
    with pytest.raises(exceptions.NotFound):
        gapic_v2.batch_create_tasks(
            request={"parent": other, "requests": [{"parent": other, "task": one["task"]}]}
        )
    assert list(gapic_v2.list_tasks(parent=paused_queue)) == []


def test_batch_delete_tasks(gapic_v2: Any, paused_queue: str) -> None:
    names = [
        gapic_v2.create_task(parent=paused_queue, task=_http_task("https://example.com/")).name
        for _ in range(3)
    ]
    missing = f"{paused_queue}/tasks/missing"
    operation = gapic_v2.batch_delete_tasks(request={"parent": paused_queue, "names": [*names, missing]})
    operation.result(timeout=30)
    metadata = operation.metadata
    assert metadata.state == tasks_v2.BatchDeleteTasksMetadata.State.PARTIALLY_SUCCEEDED
    assert list(metadata.failed_requests) == [3] and metadata.failed_requests[3].code == 5  # NOT_FOUND
    assert list(gapic_v2.list_tasks(parent=paused_queue)) == []
    with pytest.raises(exceptions.BadRequest) as caught:
        gapic_v2.batch_delete_tasks(request={"parent": paused_queue, "names": [f"{PARENT}/queues/x/tasks/y"]})
    assert "names[0]" in caught.value.message
    with pytest.raises(exceptions.BadRequest):
        gapic_v2.batch_delete_tasks(request={"parent": paused_queue, "names": ["nonsense"]})
    with pytest.raises(exceptions.BadRequest):
        gapic_v2.batch_delete_tasks(request={"parent": paused_queue, "names": [missing] * 1001})


def test_get_operation_of_an_unknown_name(gapic_v2: Any) -> None:
    with pytest.raises(exceptions.NotFound):
        gapic_v2.get_operation(request={"name": f"{PARENT}/operations/{uuid.uuid4()}"})
    with pytest.raises((exceptions.BadRequest, ValueError)):
        gapic_v2.get_operation(request={"name": "projects/p/operations/x"})


def test_cmek_config(gapic_v2: Any) -> None:
    location = f"projects/cmek-{uuid.uuid4().hex[:8]}/locations/us-central1"
    name = f"{location}/cmekConfig"
    assert gapic_v2.get_cmek_config(name=name) == tasks_v2.CmekConfig(name=name)
    key = f"{location}/keyRings/ring/cryptoKeys/key"
    updated = gapic_v2.update_cmek_config(
        cmek_config=tasks_v2.CmekConfig(name=name, kms_key=key),
        update_mask=field_mask_pb2.FieldMask(paths=["kms_key"]),
    )
    assert updated == tasks_v2.CmekConfig(name=name, kms_key=key)
    assert gapic_v2.get_cmek_config(name=name).kms_key == key
    with pytest.raises(exceptions.BadRequest) as caught:
        gapic_v2.update_cmek_config(cmek_config=tasks_v2.CmekConfig(name=name, kms_key="my-key"))
    assert "kms_key" in caught.value.message
    with pytest.raises(exceptions.BadRequest):
        gapic_v2.update_cmek_config(
            cmek_config=tasks_v2.CmekConfig(name=name, kms_key=key),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    assert gapic_v2.get_cmek_config(name=name).kms_key == key  # the refused updates changed nothing
    cleared = gapic_v2.update_cmek_config(cmek_config=tasks_v2.CmekConfig(name=name, kms_key=""))
    assert cleared.kms_key == "" and gapic_v2.get_cmek_config(name=name).kms_key == ""


def test_v2beta3_batches(gapic_v2beta3: Any, queue_name: str) -> None:
    gapic_v2beta3.create_queue(parent=PARENT, queue=tasks_v2beta3.Queue(name=queue_name))
    gapic_v2beta3.pause_queue(name=queue_name)
    operation = gapic_v2beta3.batch_create_tasks(
        request={
            "parent": queue_name,
            "requests": [
                {"parent": queue_name, "task": _http_task("https://example.com/")} for _ in range(2)
            ],
        }
    )
    created = operation.result(timeout=30).tasks
    assert (
        len(created) == 2
        and operation.metadata.state == tasks_v2beta3.BatchCreateTasksMetadata.State.SUCCEEDED
    )
    deleted = gapic_v2beta3.batch_delete_tasks(
        request={"parent": queue_name, "names": [t.name for t in created]}
    )
    deleted.result(timeout=30)
    assert deleted.metadata.state == tasks_v2beta3.BatchDeleteTasksMetadata.State.SUCCEEDED
    assert list(gapic_v2beta3.list_tasks(parent=queue_name)) == []


def test_operations_over_plain_rest_and_grpc(
    server: Server, api: Any, gapic_v2: Any, paused_queue: str
) -> None:
    """The JSON of an operation names its metadata and response types; the gRPC Operations
    service answers the same operation."""
    request_id = f"plain-{uuid.uuid4().hex}"
    reply = httpx.post(
        f"{server.url}/v2/{paused_queue}/tasks:batchCreate",
        json={
            "requests": [{"task": {"httpRequest": {"url": "https://example.com/"}}}],
            "requestId": request_id,
        },
    )
    assert reply.status_code == 200, reply.text
    operation = reply.json()
    assert operation["name"] == f"{PARENT}/operations/{request_id}" and operation["done"] is True
    assert (
        operation["metadata"]["@type"] == "type.googleapis.com/google.cloud.tasks.v2.BatchCreateTasksMetadata"
    )
    assert operation["metadata"]["state"] == "SUCCEEDED"
    assert (
        operation["response"]["@type"] == "type.googleapis.com/google.cloud.tasks.v2.BatchCreateTasksResponse"
    )
    assert operation["response"]["tasks"][0]["name"].startswith(f"{paused_queue}/tasks/")
    again = httpx.get(f"{server.url}/v2/{PARENT}/operations/{request_id}").json()
    assert again == operation
    # The v2beta2 discovery document has operations.get too (google-api-python-client).
    assert api.projects().locations().operations().get(name=operation["name"]).execute() == operation
    fetched = gapic_v2.get_operation(request={"name": operation["name"]})
    assert isinstance(fetched, operations_pb2.Operation) and fetched.done
    missing = httpx.get(f"{server.url}/v2beta3/{PARENT}/operations/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_v2_batches_do_not_see_pull_queues(api: Any, gapic_v2: Any, queue_name: str) -> None:
    api.projects().locations().queues().create(
        parent=PARENT, body={"name": queue_name, "pullTarget": {}}
    ).execute()
    with pytest.raises(exceptions.NotFound):
        gapic_v2.batch_create_tasks(
            request={"parent": queue_name, "requests": [{"task": _http_task("https://example.com/")}]}
        )
    with pytest.raises(exceptions.NotFound):
        gapic_v2.batch_delete_tasks(request={"parent": queue_name, "names": [f"{queue_name}/tasks/t"]})
