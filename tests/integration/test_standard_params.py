"""Google's standard query parameters through a real server: fields, prettyPrint, alt=proto,
$.xgafv, callback (JSONP), quotaUser/uploadType/upload_protocol, alone and in a batch part."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from google.cloud import tasks_v2beta2
from google.rpc import status_pb2

from tests.integration.conftest import PARENT, Server


@pytest.fixture
def client(server: Server) -> Any:
    with httpx.Client(base_url=server.url) as http:
        yield http


def _task(client: httpx.Client, queue: str, **query: str) -> httpx.Response:
    return client.post(
        f"/v2beta2/{queue}/tasks", params=query, json={"task": {"pullMessage": {"payload": "aGk="}}}
    )


def _tasks(client: httpx.Client, queue: str) -> list[Any]:
    return list(client.get(f"/v2beta2/{queue}/tasks").json().get("tasks", []))


def test_fields_on_list_get_and_create(api: Any, client: httpx.Client, pull_queue: str) -> None:
    queues = api.projects().locations().queues()
    listed = queues.list(parent=PARENT, fields="queues(name)").execute()
    assert listed["queues"] and all(set(q) == {"name"} for q in listed["queues"])
    got = queues.get(name=pull_queue, fields="name,state").execute()
    assert got == {"name": pull_queue, "state": "RUNNING"}
    created = _task(client, pull_queue, fields="name,scheduleTime")
    assert created.status_code == 200
    assert set(created.json()) == {"name", "scheduleTime"}
    page = client.get(
        f"/v2beta2/{pull_queue}/tasks",
        params={"fields": "tasks(name,scheduleTime),nextPageToken", "pageSize": 1},
    ).json()
    assert set(page) <= {"tasks", "nextPageToken"} and set(page["tasks"][0]) == {"name", "scheduleTime"}


def test_nested_and_wildcard_selectors(client: httpx.Client, pull_queue: str) -> None:
    nested = client.get(
        f"/v2beta2/{pull_queue}", params={"fields": "rateLimits/maxConcurrentTasks,name"}
    ).json()
    assert set(nested) == {"rateLimits", "name"} and set(nested["rateLimits"]) == {"maxConcurrentTasks"}
    star = client.get(f"/v2beta2/{PARENT}/queues", params={"fields": "queues(*)"}).json()
    full = client.get(f"/v2beta2/{PARENT}/queues").json()
    assert star == {"queues": full["queues"]}
    ints = client.get(f"/v2beta2/{pull_queue}", params={"fields": "state", "$alt": "json;enum-encoding=int"})
    assert ints.json() == {"state": 1}


@pytest.mark.parametrize("selector", ["name(", "name,,state", "name)", "nope", "name/x", "task(name"])
def test_a_bad_selector_is_refused_and_nothing_is_created(
    client: httpx.Client, pull_queue: str, selector: str
) -> None:
    reply = _task(client, pull_queue, fields=selector)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert _tasks(client, pull_queue) == []


def test_errors_are_not_filtered(client: httpx.Client) -> None:
    reply = client.get(f"/v2beta2/{PARENT}/queues/missing-q", params={"fields": "name"})
    assert reply.status_code == 404 and set(reply.json()["error"]) >= {"code", "message", "status"}


def test_pretty_print(api: Any, client: httpx.Client, pull_queue: str) -> None:
    pretty = client.get(f"/v2beta2/{pull_queue}", params={"prettyPrint": "true"})
    compact = client.get(f"/v2beta2/{pull_queue}", params={"prettyPrint": "false"})
    default = client.get(f"/v2beta2/{pull_queue}")
    assert "\n  " in pretty.text and "\n" not in compact.text and "\n" not in default.text
    assert pretty.json() == compact.json() == default.json()
    assert (
        api.projects().locations().queues().get(name=pull_queue, prettyPrint=True).execute()["name"]
        == pull_queue
    )
    error = client.get(f"/v2beta2/{PARENT}/queues/missing-q", params={"prettyPrint": "true"})
    assert error.status_code == 404 and "\n  " in error.text
    assert client.get(f"/v2beta2/{pull_queue}", params={"prettyPrint": "yes"}).status_code == 400


def test_alt_proto(client: httpx.Client, pull_queue: str) -> None:
    reply = client.get(f"/v2beta2/{pull_queue}", params={"alt": "proto"})
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/x-protobuf"
    queue = tasks_v2beta2.Queue.pb().FromString(reply.content)
    assert queue.name == pull_queue and queue.HasField("pull_target")
    created = _task(client, pull_queue, alt="proto")
    task = tasks_v2beta2.Task.pb().FromString(created.content)
    assert task.name.startswith(pull_queue + "/tasks/") and task.HasField("pull_message")
    listed = client.get(f"/v2beta2/{pull_queue}/tasks", params={"alt": "proto", "fields": "nextPageToken"})
    assert [t.name for t in tasks_v2beta2.ListTasksResponse.pb().FromString(listed.content).tasks] == [
        task.name
    ]
    missing = client.get(f"/v2beta2/{PARENT}/queues/missing-q", params={"alt": "proto"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(missing.content)
    assert status.code == 5 and "Queue does not exist" in status.message


def test_alt_media_and_unknown_alt_are_refused(client: httpx.Client, pull_queue: str) -> None:
    for alt in ("media", "xml"):
        reply = _task(client, pull_queue, alt=alt)
        assert reply.status_code == 400 and reply.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert _tasks(client, pull_queue) == []


def test_xgafv_error_formats(client: httpx.Client) -> None:
    url = f"/v2beta2/{PARENT}/queues/missing-q"
    v1 = client.get(url, params={"$.xgafv": "1"})
    assert v1.status_code == 404
    error = v1.json()["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND"
    assert error["errors"] == [{"message": error["message"], "domain": "global", "reason": "notFound"}]
    v2 = client.get(url, params={"$.xgafv": "2"})
    assert v2.status_code == 404 and "errors" not in v2.json()["error"]
    assert v2.json() == client.get(url).json()
    bad = client.get(url, params={"$.xgafv": "3"})
    assert bad.status_code == 400 and "xgafv" in bad.json()["error"]["message"]
    unrouted = client.get("/v2beta2/nowhere", params={"$.xgafv": "1"})
    assert unrouted.status_code == 404 and unrouted.json()["error"]["errors"][0]["reason"] == "notFound"


def test_jsonp_callback(client: httpx.Client, pull_queue: str) -> None:
    reply = client.get(f"/v2beta2/{pull_queue}", params={"callback": "my.handler_1$"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/javascript")
    prefix, suffix = "// API callback\nmy.handler_1$(", ");"
    assert reply.text.startswith(prefix) and reply.text.endswith(suffix)
    assert json.loads(reply.text[len(prefix) : -len(suffix)])["name"] == pull_queue
    error = client.get(f"/v2beta2/{PARENT}/queues/missing-q", params={"callback": "cb"})
    assert error.status_code == 404 and error.text.startswith("// API callback\ncb({")
    for bad in ("alert(1)", "1abc", "a..b", "", "a b"):
        refused = _task(client, pull_queue, callback=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert _tasks(client, pull_queue) == []


def test_ignored_parameters_are_accepted(api: Any, client: httpx.Client, pull_queue: str) -> None:
    reply = _task(client, pull_queue, quotaUser="someone", uploadType="multipart", upload_protocol="raw")
    assert reply.status_code == 200 and reply.json()["name"].startswith(pull_queue)
    assert (
        api.projects().locations().queues().get(name=pull_queue, quotaUser="u").execute()["name"]
        == pull_queue
    )


def _batch(server: Server, targets: list[str]) -> list[tuple[int, bytes]]:
    boundary = "b0undary"
    parts = b"".join(
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{i}>\r\n\r\n"
        f"GET {target} HTTP/1.1\r\n\r\n\r\n".encode()
        for i, target in enumerate(targets)
    )
    reply = httpx.post(
        f"{server.url}/batch",
        content=parts + f"--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/mixed; boundary={boundary}"},
    )
    assert reply.status_code == 200
    out_boundary = reply.headers["content-type"].split("boundary=")[1]
    answers = []
    for part in reply.content.split(f"--{out_boundary}".encode())[1:-1]:
        _mime, _, http = part.partition(b"\r\n\r\n")
        head, _, body = http.partition(b"\r\n\r\n")
        answers.append((int(head.split(b" ")[1]), body.removesuffix(b"\r\n")))
    return answers


def test_in_a_batch_part(server: Server, pull_queue: str) -> None:
    base = f"/v2beta2/{pull_queue}"
    answers = _batch(
        server,
        [
            f"{base}?fields=name",
            f"{base}?prettyPrint=true&quotaUser=x",
            f"/v2beta2/{PARENT}/queues/missing-q?%24.xgafv=1",
            f"{base}?fields=name(",
            f"{base}?alt=proto",
            f"{base}",
        ],
    )
    assert answers[0] == (200, json.dumps({"name": pull_queue}, separators=(",", ":")).encode())
    assert answers[1][0] == 200 and b"\n  " in answers[1][1]
    assert answers[2][0] == 404 and json.loads(answers[2][1])["error"]["errors"][0]["reason"] == "notFound"
    assert answers[3][0] == 400
    assert answers[4][0] == 400 and b"batch" in answers[4][1]
    assert answers[5][0] == 200 and len(json.loads(answers[5][1])) > 2
