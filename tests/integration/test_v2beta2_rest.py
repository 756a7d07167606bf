"""v2beta2 REST serves its whole discovery document (issue 17, item 3): the task-level
``retryConfig``, ``tasks.batchCreate``/``batchDelete``, ``operations.get`` and the CMEK config,
through google-api-python-client (the bundled document and the one tasksd serves), on the
same engine as v2 and v2beta3."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import grpc
import httpx
import pytest
from google.cloud import tasks_v2beta2
from googleapiclient.errors import HttpError

from tests.integration.conftest import (
    PARENT,
    Server,
    discovery_client,
    served_discovery_client,
    versioned_client,
)
from tests.integration.sink import Sink

FAST_RETRY = {"minBackoff": "0.1s", "maxBackoff": "0.2s", "maxDoublings": 1}


def tasks(api: Any) -> Any:
    return api.projects().locations().queues().tasks()


def new_queue(api: Any, **body: Any) -> str:
    name = f"{PARENT}/queues/r-{uuid.uuid4().hex[:10]}"
    api.projects().locations().queues().create(parent=PARENT, body={"name": name, **body}).execute()
    return name


@pytest.fixture(scope="module", params=["bundled", "served"])
def client(server: Server, request: pytest.FixtureRequest) -> Any:
    """google-api-python-client from its own copy of the document, and from tasksd's."""
    return discovery_client(server.url) if request.param == "bundled" else served_discovery_client(server.url)


def test_task_retry_config_round_trips_in_every_view(client: Any, server: Server) -> None:
    queue = new_queue(client, appEngineHttpTarget={})
    retry = {
        "maxAttempts": 3,
        "minBackoff": "2s",
        "maxBackoff": "20s",
        "maxDoublings": 2,
        "maxRetryDuration": "60s",
    }
    body = {"task": {"name": f"{queue}/tasks/a", "appEngineHttpRequest": {}, "retryConfig": retry}}
    created = tasks(client).create(parent=queue, body=body).execute()
    assert created["retryConfig"] == retry
    assert tasks(client).get(name=f"{queue}/tasks/a", responseView="FULL").execute()["retryConfig"] == retry
    listed = tasks(client).list(parent=queue).execute()["tasks"]
    assert [t["retryConfig"] for t in listed] == [retry]
    # The same task on the same engine, seen through v2 (whose published proto has the field).
    v2 = versioned_client(server, "v2", "grpc")
    seen = v2.get_task(name=f"{queue}/tasks/a")
    assert seen.retry_config.max_attempts == 3 and seen.retry_config.min_backoff.total_seconds() == 2
    # v2beta2 gRPC serves the published proto, which has no task-level retry config.
    published = versioned_client(server, "v2beta2", "grpc").get_task(name=f"{queue}/tasks/a")
    assert "retry_config" not in tasks_v2beta2.Task.pb(published).DESCRIPTOR.fields_by_name


def test_task_retry_config_unlimited_and_defaults(client: Any) -> None:
    queue = new_queue(client, appEngineHttpTarget={})
    body = {"task": {"appEngineHttpRequest": {}, "retryConfig": {"unlimitedAttempts": True}}}
    created = tasks(client).create(parent=queue, body=body).execute()
    # Unset fields take the service's defaults, as a queue's retry config does.
    assert created["retryConfig"]["unlimitedAttempts"] is True
    assert created["retryConfig"]["minBackoff"] == "0.100s" and created["retryConfig"]["maxDoublings"] == 16


def test_bad_task_retry_config_is_invalid_argument_and_stores_nothing(client: Any) -> None:
    queue = new_queue(client, appEngineHttpTarget={})
    for retry, words in [
        ({"maxAttempts": -2}, "task.retry_config.max_attempts must be greater than 0"),
        ({"minBackoff": "-1s"}, "retry_config.min_backoff must not be negative, got -1s."),
        ({"maxAttempts": "many"}, "maxAttempts"),
    ]:
        with pytest.raises(HttpError) as info:
            tasks(client).create(
                parent=queue, body={"task": {"appEngineHttpRequest": {}, "retryConfig": retry}}
            ).execute()
        assert info.value.status_code == 400 and words in info.value.reason, info.value.reason
    assert tasks(client).list(parent=queue).execute().get("tasks", []) == []


def test_pull_task_retry_config_limits_its_leases(client: Any) -> None:
    """A pull task's own max_attempts overrides its queue's: leased once, then gone."""
    queue = new_queue(client, pullTarget={})
    for task_id, retry in [("own", {"maxAttempts": 1}), ("queue", None)]:
        task: dict[str, Any] = {"name": f"{queue}/tasks/{task_id}", "pullMessage": {"payload": "aGk="}}
        if retry is not None:
            task["retryConfig"] = retry
        shown = tasks(client).create(parent=queue, body={"task": task}).execute()
        assert shown.get("retryConfig") == retry  # a pull task shows max_attempts only, like its queue
    lease = {"maxTasks": 10, "leaseDuration": "60s"}
    first = tasks(client).lease(parent=queue, body=lease).execute()["tasks"]
    assert sorted(t["name"].rsplit("/", 1)[1] for t in first) == ["own", "queue"]
    for task in first:  # each back in the queue at once, its lease counted
        tasks(client).cancelLease(name=task["name"], body={"scheduleTime": task["scheduleTime"]}).execute()
    second = tasks(client).lease(parent=queue, body=lease).execute()["tasks"]
    assert [t["name"].rsplit("/", 1)[1] for t in second] == ["queue"]


def test_push_task_retry_config_overrides_the_queue(sink: Sink, dispatching: Server) -> None:
    client = served_discovery_client(dispatching.url)
    queue = new_queue(client, appEngineHttpTarget={}, retryConfig={**FAST_RETRY, "maxAttempts": 5})
    mine, theirs = f"/r/{uuid.uuid4().hex[:8]}", f"/r/{uuid.uuid4().hex[:8]}"
    sink.script(mine, 500, 500, 500, 500, 500)
    sink.script(theirs, 500, 500, 500, 500, 500)
    own = {"appEngineHttpRequest": {"relativeUrl": mine}, "retryConfig": {**FAST_RETRY, "maxAttempts": 2}}
    tasks(client).create(parent=queue, body={"task": own}).execute()
    tasks(client).create(
        parent=queue, body={"task": {"appEngineHttpRequest": {"relativeUrl": theirs}}}
    ).execute()
    sink.wait(lambda: len(sink.on(theirs)) == 5)
    assert len(sink.on(mine)) == 2  # its own two attempts, not the queue's five


def test_batch_create_delete_and_operation(client: Any, server: Server) -> None:
    queue = new_queue(client, pullTarget={})
    body = {
        "requestId": f"req-{uuid.uuid4().hex[:8]}",
        "requests": [
            {
                "task": {
                    "name": f"{queue}/tasks/one",
                    "pullMessage": {"payload": "aGk="},
                    "retryConfig": {"maxAttempts": 4},
                }
            },
            {"task": {"name": f"{queue}/tasks/two", "pullMessage": {}}, "responseView": "FULL"},
            {"task": {"appEngineHttpRequest": {}}},  # a push task in a pull queue: fails alone
        ],
    }
    operation = tasks(client).batchCreate(parent=queue, body=body).execute()
    assert operation["done"] is True
    metadata = operation["metadata"]
    assert metadata["@type"] == "type.googleapis.com/google.cloud.tasks.v2beta2.BatchCreateTasksMetadata"
    assert metadata["state"] == "PARTIALLY_SUCCEEDED" and list(metadata["failedRequests"]) == ["2"]
    assert metadata["failedRequests"]["2"]["code"] == 3
    response = operation["response"]
    assert response["@type"] == "type.googleapis.com/google.cloud.tasks.v2beta2.BatchCreateTasksResponse"
    assert [t["name"] for t in response["tasks"]] == [f"{queue}/tasks/one", f"{queue}/tasks/two"]
    assert response["tasks"][0]["retryConfig"] == {"maxAttempts": 4}
    assert response["tasks"][1]["view"] == "FULL"
    # operations.get answers the same operation; a retry with the requestId runs nothing again.
    fetched = client.projects().locations().operations().get(name=operation["name"]).execute()
    assert fetched == operation
    assert tasks(client).batchCreate(parent=queue, body=body).execute() == operation
    # The same operation through v2's published Operations client (one engine).
    v2 = versioned_client(server, "v2", "grpc")
    assert v2.get_operation(request={"name": operation["name"]}).done

    deleted = (
        tasks(client)
        .batchDelete(parent=queue, body={"names": [f"{queue}/tasks/one", f"{queue}/tasks/nope"]})
        .execute()
    )
    assert (
        deleted["metadata"]["@type"]
        == "type.googleapis.com/google.cloud.tasks.v2beta2.BatchDeleteTasksMetadata"
    )
    assert deleted["metadata"]["state"] == "PARTIALLY_SUCCEEDED"
    assert deleted["metadata"]["failedRequests"]["1"] == {
        "code": 5,
        "message": "Requested entity was not found.",
    }
    assert [t["name"] for t in tasks(client).list(parent=queue).execute()["tasks"]] == [f"{queue}/tasks/two"]


def test_batches_that_fail_whole_and_all(client: Any) -> None:
    queue = new_queue(client, pullTarget={})
    with pytest.raises(HttpError) as info:
        tasks(client).batchCreate(parent=queue, body={"requests": []}).execute()
    assert info.value.status_code == 400
    with pytest.raises(HttpError) as info:
        tasks(client).batchCreate(
            parent=queue, body={"requests": [{"task": {"pullMessage": {}}}] * 101}
        ).execute()
    assert info.value.status_code == 400 and "100" in info.value.reason
    with pytest.raises(HttpError) as info:
        tasks(client).batchCreate(
            parent=f"{PARENT}/queues/missing-{uuid.uuid4().hex[:6]}",
            body={"requests": [{"task": {"pullMessage": {}}}]},
        ).execute()
    assert info.value.status_code == 404
    failed = tasks(client).batchDelete(parent=queue, body={"names": [f"{queue}/tasks/nope"]}).execute()
    assert failed["metadata"]["state"] == "FAILED" and "response" not in failed
    assert failed["error"]["code"] == 10 and failed["error"]["message"] == (
        "None of the requests succeeded, refer to BatchDeleteTasksMetadata.failed_requests for "
        "individual error details"
    )
    assert tasks(client).list(parent=queue).execute().get("tasks", []) == []


def test_cmek_config_is_shared_with_v2(client: Any, server: Server) -> None:
    location = f"projects/cmek-{uuid.uuid4().hex[:6]}/locations/us-central1"
    name = f"{location}/cmekConfig"
    locations = client.projects().locations()
    assert locations.getCmekConfig(name=name).execute() == {"name": name}
    key = f"{location}/keyRings/ring/cryptoKeys/key"
    updated = locations.updateCmekConfig(name=name, updateMask="kmsKey", body={"kmsKey": key}).execute()
    assert updated == {"name": name, "kmsKey": key}
    assert versioned_client(server, "v2", "grpc").get_cmek_config(name=name).kms_key == key
    with pytest.raises(HttpError) as info:
        locations.updateCmekConfig(name=name, updateMask="name", body={"kmsKey": ""}).execute()
    assert info.value.status_code == 400
    assert locations.getCmekConfig(name=name).execute()["kmsKey"] == key


def test_every_discovery_method_is_served(server: Server) -> None:
    """No method of the v2beta2 document answers UNIMPLEMENTED (501)."""
    document = httpx.get(f"{server.url}/$discovery/rest", params={"version": "v2beta2"}).json()

    def methods(resource: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(resource.get("methods", {}).values())
        for child in resource.get("resources", {}).values():
            found += methods(child)
        return found

    def filled(method: dict[str, Any]) -> str:
        """The method's path with each parameter a value its pattern matches."""
        path: str = method["path"]
        for name, spec in method.get("parameters", {}).items():
            if spec["location"] == "path":
                value = re.sub(r"\[\^/\]\+", "x", spec.get("pattern", "x").strip("^$"))
                path = re.sub(rf"{{\+?{name}}}", value, path)
        return path

    served = 0
    for method in methods(document):
        reply = httpx.request(method["httpMethod"], f"{server.url}/{filled(method)}", content=b"{}")
        assert reply.status_code != 501, (method["id"], reply.text)
        assert "was not found on this server" not in reply.text, (method["id"], reply.text)
        assert reply.status_code < 500, (method["id"], reply.text)
        served += 1
    assert served == 29


def test_grpc_v2beta2_is_the_published_surface(server: Server) -> None:
    """gRPC keeps the published v2beta2 service: the batch RPCs are not in it."""
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary("/google.cloud.tasks.v2beta2.CloudTasks/BatchCreateTasks")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=10)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    # …while its published RPCs are served.
    client = versioned_client(server, "v2beta2", "grpc")
    assert list(client.list_queues(parent=f"projects/none-{uuid.uuid4().hex[:6]}/locations/l")) == []


def test_batch_payload_round_trip(client: Any) -> None:
    queue = new_queue(client, pullTarget={})
    payload = base64.b64encode(b"\x00\xffbinary").decode()
    body = {
        "requests": [
            {"task": {"name": f"{queue}/tasks/bin", "pullMessage": {"payload": payload, "tag": "t"}}}
        ]
    }
    tasks(client).batchCreate(parent=queue, body=body).execute()
    leased = (
        tasks(client)
        .lease(parent=queue, body={"maxTasks": 1, "leaseDuration": "10s", "responseView": "FULL"})
        .execute()
    )
    assert leased["tasks"][0]["pullMessage"] == {"payload": payload, "tag": "t"}
