"""Tasks through google-api-python-client and google-cloud-tasks (REST transport)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2beta2
from googleapiclient.errors import HttpError

from tests.integration.conftest import Server


def tasks(api: Any) -> Any:
    return api.projects().locations().queues().tasks()


def test_create_with_generated_id(api: Any, pull_queue: str) -> None:
    before = datetime.now(UTC)
    task = (
        tasks(api)
        .create(parent=pull_queue, body={"task": {"pullMessage": {"payload": "aGk=", "tag": "t"}}})
        .execute()
    )
    assert re.fullmatch(rf"{pull_queue}/tasks/\d{{19,20}}", task["name"])
    assert task["view"] == "BASIC" and task["pullMessage"] == {"tag": "t"}  # BASIC omits the payload
    created = datetime.fromisoformat(task["createTime"].replace("Z", "+00:00"))
    assert created.microsecond == 0 and created >= before.replace(microsecond=0)
    scheduled = datetime.fromisoformat(task["scheduleTime"].replace("Z", "+00:00"))
    assert before <= scheduled <= datetime.now(UTC)  # defaults to now


def test_create_with_caller_id_and_future_schedule(
    gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str
) -> None:
    when = datetime.now(UTC) + timedelta(days=2)
    task = gapic.create_task(
        request={
            "parent": pull_queue,
            "task": {
                "name": f"{pull_queue}/tasks/job-1",
                "pull_message": {"payload": b"\x00\x01"},
                "schedule_time": when,
            },
            "response_view": tasks_v2beta2.Task.View.FULL,
        }
    )
    assert task.name == f"{pull_queue}/tasks/job-1"
    assert task.pull_message.payload == b"\x00\x01" and task.view == tasks_v2beta2.Task.View.FULL
    assert task.schedule_time == when


def test_get_views(api: Any, gapic: tasks_v2beta2.CloudTasksClient, push_queue: str) -> None:
    body = {
        "task": {
            "appEngineHttpRequest": {
                "httpMethod": "PUT",
                "relativeUrl": "/work?x=1",
                "headers": {"Content-Type": "application/json"},
                "payload": base64.b64encode(b'{"a": 1}').decode(),
                "appEngineRouting": {"service": "svc"},
            }
        }
    }
    name = tasks(api).create(parent=push_queue, body=body).execute()["name"]
    basic = tasks(api).get(name=name).execute()
    assert "payload" not in basic["appEngineHttpRequest"]
    assert basic["appEngineHttpRequest"]["appEngineRouting"]["host"] == "svc.test-project.appspot.com"
    full = gapic.get_task(request={"name": name, "response_view": tasks_v2beta2.Task.View.FULL})
    assert full.app_engine_http_request.payload == b'{"a": 1}'
    assert full.app_engine_http_request.http_method == tasks_v2beta2.HttpMethod.PUT
    assert full.app_engine_http_request.headers["Content-Type"] == "application/json"


def test_http_task_round_trip(gapic: tasks_v2beta2.CloudTasksClient, push_queue: str) -> None:
    request = tasks_v2beta2.HttpRequest(
        url="https://example.com/hook",
        http_method=tasks_v2beta2.HttpMethod.PATCH,
        headers={"X-A": "b"},
        body=b"payload",
        oauth_token=tasks_v2beta2.OAuthToken(service_account_email="sa@p.iam.gserviceaccount.com"),
    )
    task = gapic.create_task(
        request={
            "parent": push_queue,
            "task": {"http_request": request},
            "response_view": tasks_v2beta2.Task.View.FULL,
        }
    )
    # The service adds User-Agent to the headers the task stores.
    request.headers["User-Agent"] = "Google-Cloud-Tasks"
    assert task.http_request == request


def test_list_pages_and_views(api: Any, gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str) -> None:
    names = set()
    for i in range(7):
        body = {"task": {"name": f"{pull_queue}/tasks/t{i}", "pullMessage": {"payload": "cA=="}}}
        names.add(tasks(api).create(parent=pull_queue, body=body).execute()["name"])
    first = tasks(api).list(parent=pull_queue, pageSize=3).execute()
    assert len(first["tasks"]) == 3 and "payload" not in first["tasks"][0]["pullMessage"]
    seen = [t["name"] for t in first["tasks"]]
    token = first["nextPageToken"]
    while token:
        page = tasks(api).list(parent=pull_queue, pageSize=3, pageToken=token, responseView="FULL").execute()
        assert all(t["pullMessage"]["payload"] == "cA==" for t in page["tasks"])
        seen += [t["name"] for t in page["tasks"]]
        token = page.get("nextPageToken")
    assert sorted(seen) == sorted(names)
    listed = gapic.list_tasks(request={"parent": pull_queue, "page_size": 2})
    assert {t.name for t in listed} == names


def test_delete_leaves_tombstone(api: Any, gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str) -> None:
    body = {"task": {"name": f"{pull_queue}/tasks/once", "pullMessage": {}}}
    tasks(api).create(parent=pull_queue, body=body).execute()
    with pytest.raises(HttpError) as info:  # a live task with that name
        tasks(api).create(parent=pull_queue, body=body).execute()
    assert info.value.status_code == 409
    assert tasks(api).delete(name=f"{pull_queue}/tasks/once").execute() == {}
    with pytest.raises(exceptions.NotFound) as got:
        gapic.get_task(name=f"{pull_queue}/tasks/once")
    assert "existed recently" in got.value.message
    with pytest.raises(exceptions.Conflict) as again:  # the tombstone holds the name
        gapic.create_task(
            request={"parent": pull_queue, "task": {"name": f"{pull_queue}/tasks/once", "pull_message": {}}}
        )
    assert "already exists" in again.value.message
    with pytest.raises(exceptions.NotFound):
        gapic.delete_task(name=f"{pull_queue}/tasks/once")
    with pytest.raises(exceptions.NotFound) as never:
        gapic.get_task(name=f"{pull_queue}/tasks/never")
    assert "existed recently" not in never.value.message


def test_tombstone_ttl_zero_allows_reuse(api: Any, queue_name: str) -> None:
    api.projects().locations().queues().create(
        parent=queue_name.rsplit("/queues/", 1)[0],
        body={"name": queue_name, "pullTarget": {}, "tombstoneTtl": "0s"},
    ).execute()
    body = {"task": {"name": f"{queue_name}/tasks/again", "pullMessage": {}}}
    tasks(api).create(parent=queue_name, body=body).execute()
    tasks(api).delete(name=f"{queue_name}/tasks/again").execute()
    assert tasks(api).create(parent=queue_name, body=body).execute()["name"].endswith("/again")


def test_missing_queue_is_not_found(api: Any, queue_name: str) -> None:
    with pytest.raises(HttpError) as info:
        tasks(api).create(parent=queue_name, body={"task": {"pullMessage": {}}}).execute()
    assert info.value.status_code == 404 and "Queue does not exist" in info.value.reason


def test_enum_encoding(server: Server, push_queue: str) -> None:
    url = f"{server.url}/v2beta2/{push_queue}"
    assert httpx.get(url).json()["state"] == "RUNNING"
    assert httpx.get(url, params={"$alt": "json;enum-encoding=int"}).json()["state"] == 1
    listed = httpx.get(f"{url}/tasks", params={"responseView": "2"})
    assert listed.status_code == 200


def test_unknown_path(server: Server, pull_queue: str) -> None:
    missing = httpx.get(f"{server.url}/v2beta2/nothing/here")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    empty = httpx.post(f"{server.url}/v2beta2/{pull_queue}/tasks:batchCreate", json={})
    assert empty.status_code == 400 and empty.json()["error"]["status"] == "INVALID_ARGUMENT"
