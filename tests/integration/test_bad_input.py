"""Every documented input rule broken once: the right status, a message naming the field,
and nothing stored."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PARENT, Server

BIG = "x" * (1024 * 1024 + 10)
FAR = (datetime.now(UTC) + timedelta(days=31)).isoformat().replace("+00:00", "Z")
B64_101K = base64.b64encode(b"x" * (101 * 1024)).decode()
B64_1M = base64.b64encode(BIG.encode()).decode()


@pytest.fixture
def queues(server: Server) -> Iterator[dict[str, str]]:
    """A pull queue and a push queue that every task case tries to add to."""
    suffix = uuid.uuid4().hex[:8]
    names = {"pull": f"{PARENT}/queues/bad-pull-{suffix}", "push": f"{PARENT}/queues/bad-push-{suffix}"}
    with httpx.Client(base_url=server.url) as client:
        client.post(
            f"/v2beta2/{PARENT}/queues", json={"name": names["pull"], "pullTarget": {}}
        ).raise_for_status()
        client.post(
            f"/v2beta2/{PARENT}/queues", json={"name": names["push"], "appEngineHttpTarget": {}}
        ).raise_for_status()
    yield names


def task_case(queue: str, task: dict[str, Any], status: int, code: str, names: str) -> tuple[Any, ...]:
    return ("POST", "{" + queue + "}/tasks", {}, {"task": task}, status, code, names)


INVALID = ("INVALID_ARGUMENT", 400)

TASK_CASES = {
    "task id with bad characters": task_case(
        "pull",
        {"name": "{pull}/tasks/bad id!", "pullMessage": {}},
        400,
        "INVALID_ARGUMENT",
        'Task ID "bad id!"',
    ),
    "task id too long": task_case(
        "pull",
        {"name": "{pull}/tasks/" + "a" * 501, "pullMessage": {}},
        400,
        "INVALID_ARGUMENT",
        "Task ID must between 1 and 500 characters",
    ),
    "task name of another queue": task_case(
        "pull",
        {"name": "{push}/tasks/x", "pullMessage": {}},
        400,
        "INVALID_ARGUMENT",
        "must be the same as the queue",
    ),
    "schedule more than 30 days ahead": task_case(
        "pull", {"pullMessage": {}, "scheduleTime": FAR}, 400, "INVALID_ARGUMENT", "schedule_time"
    ),
    "no payload": task_case("pull", {}, 400, "INVALID_ARGUMENT", "pull_message"),
    "pull message in push queue": task_case(
        "push", {"pullMessage": {}}, 400, "INVALID_ARGUMENT", "pull_message"
    ),
    "App Engine request in pull queue": task_case(
        "pull", {"appEngineHttpRequest": {}}, 400, "INVALID_ARGUMENT", "app_engine_http_request"
    ),
    "HTTP request in pull queue": task_case(
        "pull", {"httpRequest": {"url": "http://x"}}, 400, "INVALID_ARGUMENT", "http_request"
    ),
    "tag of 500 characters": task_case(
        "pull", {"pullMessage": {"tag": "t" * 500}}, 400, "INVALID_ARGUMENT", "tag"
    ),
    "pull task over 1 MB": task_case(
        "pull", {"pullMessage": {"payload": B64_1M}}, 400, "INVALID_ARGUMENT", "pull_message"
    ),
    "App Engine task over 100 KB": task_case(
        "push",
        {"appEngineHttpRequest": {"payload": B64_101K}},
        400,
        "INVALID_ARGUMENT",
        "app_engine_http_request",
    ),
    "HTTP task over 1 MB": task_case(
        "push", {"httpRequest": {"url": "http://x", "body": B64_1M}}, 400, "INVALID_ARGUMENT", "http_request"
    ),
    "HTTP body with GET": task_case(
        "push",
        {"httpRequest": {"url": "http://x", "httpMethod": "GET", "body": "eA=="}},
        400,
        "INVALID_ARGUMENT",
        "http_request.body",
    ),
    "App Engine payload with DELETE": task_case(
        "push",
        {"appEngineHttpRequest": {"httpMethod": "DELETE", "payload": "eA=="}},
        400,
        "INVALID_ARGUMENT",
        "app_engine_http_request.payload",
    ),
    "URL over 2083 characters": task_case(
        "push",
        {"httpRequest": {"url": "http://x/" + "a" * 2080}},
        400,
        "INVALID_ARGUMENT",
        "http_request.url",
    ),
    "URL not http(s)": task_case(
        "push", {"httpRequest": {"url": "ftp://x/y"}}, 400, "INVALID_ARGUMENT", "HttpTarget.url"
    ),
    "URL missing": task_case("push", {"httpRequest": {}}, 400, "INVALID_ARGUMENT", "HttpRequest.url"),
    "headers of 80 KB": task_case(
        "push",
        {"httpRequest": {"url": "http://x", "headers": {"X-Big": "v" * 82000}}},
        400,
        "INVALID_ARGUMENT",
        "http_request.headers",
    ),
    "header name with a space": task_case(
        "push",
        {"httpRequest": {"url": "http://x", "headers": {"Bad Header": "v"}}},
        400,
        "INVALID_ARGUMENT",
        "headers",
    ),
    "reserved App Engine header": task_case(
        "push",
        {"appEngineHttpRequest": {"headers": {"X-AppEngine-Foo": "v"}}},
        400,
        "INVALID_ARGUMENT",
        "app_engine_http_request.headers",
    ),
    "relative URL without slash": task_case(
        "push", {"appEngineHttpRequest": {"relativeUrl": "work"}}, 400, "INVALID_ARGUMENT", "relative_url"
    ),
    "OAuth and OIDC together": task_case(
        "push",
        {
            "httpRequest": {
                "url": "http://x",
                "oauthToken": {"serviceAccountEmail": "a@b"},
                "oidcToken": {"serviceAccountEmail": "a@b"},
            }
        },
        400,
        "INVALID_ARGUMENT",
        "authorization_header",
    ),
    "unknown task field": task_case(
        "pull", {"pullMessage": {}, "bogus": 1}, 400, "INVALID_ARGUMENT", "bogus"
    ),
    "malformed timestamp": task_case(
        "pull", {"pullMessage": {}, "scheduleTime": "yesterday"}, 400, "INVALID_ARGUMENT", "scheduleTime"
    ),
    "payload that is not base64": task_case(
        "pull", {"pullMessage": {"payload": "%%%"}}, 400, "INVALID_ARGUMENT", "task.pull_message.payload"
    ),
    "HTTP body that is not base64": task_case(
        "push",
        {"appEngineHttpRequest": {"relativeUrl": "/x", "payload": "eA=!"}},
        400,
        "INVALID_ARGUMENT",
        "task.app_engine_http_request.payload",
    ),
    "payload of the wrong type": task_case(
        "pull", {"pullMessage": {"payload": ["x"]}}, 400, "INVALID_ARGUMENT", "payload"
    ),
    "missing queue": (
        "POST",
        PARENT + "/queues/never-made/tasks",
        {},
        {"task": {"pullMessage": {}}},
        404,
        "NOT_FOUND",
        "Queue does not exist",
    ),
}


def queue_case(
    body: dict[str, Any], names: str, status: int = 400, code: str = "INVALID_ARGUMENT"
) -> tuple[Any, ...]:
    return (
        "POST",
        PARENT + "/queues",
        {},
        {"name": "{new}", "appEngineHttpTarget": {}, **body},
        status,
        code,
        names,
    )


QUEUE_CASES = {
    "queue id with underscore": (
        "POST",
        PARENT + "/queues",
        {},
        {"name": PARENT + "/queues/bad_id"},
        400,
        "INVALID_ARGUMENT",
        "Queue name must be formatted",
    ),
    "queue id of 101 characters": (
        "POST",
        PARENT + "/queues",
        {},
        {"name": PARENT + "/queues/" + "q" * 101},
        400,
        "INVALID_ARGUMENT",
        "Queue name must be formatted",
    ),
    "queue in another location": (
        "POST",
        PARENT + "/queues",
        {},
        {"name": "projects/test-project/locations/elsewhere/queues/q"},
        400,
        "INVALID_ARGUMENT",
        "queue.name",
    ),
    "queue without name": (
        "POST",
        PARENT + "/queues",
        {},
        {"pullTarget": {}},
        400,
        "INVALID_ARGUMENT",
        "queue.name",
    ),
    "project id with bad characters": (
        "POST",
        "projects/bad!project/locations/us-central1/queues",
        {},
        {"name": "projects/bad!project/locations/us-central1/queues/q"},
        400,
        "INVALID_ARGUMENT",
        "parent",
    ),
    "rate over 500": queue_case(
        {"rateLimits": {"maxTasksDispatchedPerSecond": 501}}, "max_tasks_dispatched_per_second"
    ),
    "negative rate": queue_case(
        {"rateLimits": {"maxTasksDispatchedPerSecond": -1}}, "max_tasks_dispatched_per_second"
    ),
    "burst over 500": queue_case({"rateLimits": {"maxBurstSize": 501}}, "max_burst_size"),
    "concurrency over 5000": queue_case({"rateLimits": {"maxConcurrentTasks": 5001}}, "max_concurrent_tasks"),
    "negative max attempts": queue_case({"retryConfig": {"maxAttempts": -5}}, "max_attempts"),
    "negative min backoff": queue_case({"retryConfig": {"minBackoff": "-1s"}}, "min_backoff"),
    "min backoff above max backoff": queue_case(
        {"retryConfig": {"minBackoff": "100s", "maxBackoff": "10s"}}, "min_backoff"
    ),
    "task TTL over 31 days": queue_case({"taskTtl": "2678401s"}, "task_ttl"),
    "tombstone TTL over 9 days": queue_case({"tombstoneTtl": "800000s"}, "tombstone_ttl"),
    "malformed duration": queue_case({"taskTtl": "soon"}, "taskTtl"),
    "two targets": queue_case({"pullTarget": {}}, "target_type"),
    "empty override host": (
        "POST",
        PARENT + "/queues",
        {},
        {"name": "{new}", "httpTarget": {"uriOverride": {"host": ""}}},
        400,
        "INVALID_ARGUMENT",
        "uri_override.host",
    ),
    "queue OIDC without audience": (
        "POST",
        PARENT + "/queues",
        {},
        {"name": "{new}", "httpTarget": {"oidcToken": {"serviceAccountEmail": "a@b"}}},
        400,
        "INVALID_ARGUMENT",
        "oidc_token",
    ),
    "unknown queue field": queue_case({"colour": "red"}, "colour"),
}

WIRE_CASES = {
    "unknown query parameter": (
        "GET",
        "{pull}/tasks",
        {"colour": "red"},
        None,
        400,
        "INVALID_ARGUMENT",
        "colour",
    ),
    "bad enum value": (
        "GET",
        "{pull}/tasks",
        {"responseView": "SIDEWAYS"},
        None,
        400,
        "INVALID_ARGUMENT",
        "responseView",
    ),
    "negative page size": (
        "GET",
        "{pull}/tasks",
        {"pageSize": "-1"},
        None,
        400,
        "INVALID_ARGUMENT",
        "page_size",
    ),
    "non-numeric page size": (
        "GET",
        "{pull}/tasks",
        {"pageSize": "ten"},
        None,
        400,
        "INVALID_ARGUMENT",
        "pageSize",
    ),
    "forged page token": (
        "GET",
        PARENT + "/queues",
        {"pageToken": "abc"},
        None,
        400,
        "INVALID_ARGUMENT",
        "page_token",
    ),
    "read mask naming no field": (
        "GET",
        "{pull}",
        {"readMask": "colour"},
        None,
        400,
        "INVALID_ARGUMENT",
        "read_mask",
    ),
    "update mask naming no field": (
        "PATCH",
        "{pull}",
        {"updateMask": "colour"},
        {},
        400,
        "INVALID_ARGUMENT",
        "update_mask",
    ),
    "malformed filter": (
        "GET",
        PARENT + "/queues",
        {"filter": "state = = PAUSED"},
        None,
        400,
        "INVALID_ARGUMENT",
        "filter",
    ),
    "alt=media": ("GET", "{pull}", {"alt": "media"}, None, 400, "INVALID_ARGUMENT", "alt"),
    "IAM policy version 2": (
        "POST",
        "{pull}:setIamPolicy",
        {},
        {"policy": {"version": 2}},
        400,
        "INVALID_ARGUMENT",
        "policy.version",
    ),
    "IAM binding without members": (
        "POST",
        "{pull}:setIamPolicy",
        {},
        {"policy": {"bindings": [{"role": "roles/viewer"}]}},
        400,
        "INVALID_ARGUMENT",
        "members",
    ),
    "IAM wildcard permission": (
        "POST",
        "{pull}:testIamPermissions",
        {},
        {"permissions": ["cloudtasks.*"]},
        400,
        "INVALID_ARGUMENT",
        "wildcard",
    ),
    "IAM on a missing queue": (
        "POST",
        PARENT + "/queues/never-made:getIamPolicy",
        {},
        {},
        404,
        "NOT_FOUND",
        "Queue does not exist",
    ),
    "malformed JSON": ("POST", "{pull}/tasks", {}, b'{"task": ', 400, "INVALID_ARGUMENT", "Invalid JSON"),
    "JSON array body": ("POST", "{pull}/tasks", {}, b"[1, 2]", 400, "INVALID_ARGUMENT", "JSON object"),
    "invalid UTF-8": (
        "POST",
        "{pull}/tasks",
        {},
        b'{"task": "\xff"}',
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON",
    ),
}

CASES = {**TASK_CASES, **QUEUE_CASES, **WIRE_CASES}


def fill(text: str, names: dict[str, str]) -> str:
    return (
        text.replace("{pull}", names["pull"]).replace("{push}", names["push"]).replace("{new}", names["new"])
    )


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_rejected_and_nothing_stored(server: Server, queues: dict[str, str], case: str) -> None:
    method, path, params, body, status, code, names = CASES[case]
    slots = {**queues, "new": f"{PARENT}/queues/new-{uuid.uuid4().hex[:8]}"}
    content = (
        body
        if isinstance(body, bytes)
        else (json.dumps(json.loads(fill(json.dumps(body), slots))).encode() if body is not None else None)
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before_pull = client.get(f"/v2beta2/{queues['pull']}", params={"readMask": "stats"}).json()
        reply = client.request(method, "/v2beta2/" + fill(path, slots), params=params, content=content)
        assert reply.status_code == status, reply.text
        error = reply.json()["error"]
        assert error["status"] == code and error["code"] == status
        assert names in error["message"], error["message"]
        assert "Traceback" not in reply.text
        # Nothing stored: the queues hold no tasks and are as they were; no new queue exists.
        for queue in queues.values():
            assert client.get(f"/v2beta2/{queue}/tasks").json() == {}
        assert client.get(f"/v2beta2/{queues['pull']}", params={"readMask": "stats"}).json() == before_pull
        assert client.get(f"/v2beta2/{slots['new']}").status_code == 404
        policy = client.post(f"/v2beta2/{queues['pull']}:getIamPolicy", json={}).json()
        assert "bindings" not in policy
