"""Errors carry the model's field path, and each API version names that field as its own
messages do (issue 19, item 5): the same bad request, through each version's REST surface."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.conftest import PARENT, Server

BAD_RATE = {
    "v2beta2": (
        {"rateLimits": {"maxTasksDispatchedPerSecond": 9999}},
        "rate_limits.max_tasks_dispatched_per_second",
    ),
    "v2beta3": ({"rateLimits": {"maxDispatchesPerSecond": 9999}}, "rate_limits.max_dispatches_per_second"),
    "v2": ({"rateLimits": {"maxDispatchesPerSecond": 9999}}, "rate_limits.max_dispatches_per_second"),
}
BAD_CONCURRENCY = {
    "v2beta2": ({"rateLimits": {"maxConcurrentTasks": 99999}}, "rate_limits.max_concurrent_tasks"),
    "v2": ({"rateLimits": {"maxConcurrentDispatches": 99999}}, "rate_limits.max_concurrent_dispatches"),
}
APP_ENGINE = {"v2beta2": "appEngineHttpTarget", "v2beta3": "appEngineHttpQueue", "v2": None}


def _queue(server: Server, version: str) -> str:
    name = f"{PARENT}/queues/f-{uuid.uuid4().hex[:10]}"
    body: dict[str, object] = {"name": name}
    if APP_ENGINE[version]:
        body[APP_ENGINE[version]] = {}
    made = httpx.post(f"{server.url}/{version}/{PARENT}/queues", json=body)
    assert made.status_code == 200, made.text
    return name


def _message(reply: httpx.Response) -> str:
    assert reply.status_code == 400, reply.text
    message: str = reply.json()["error"]["message"]
    return message


@pytest.mark.parametrize("version", sorted(BAD_RATE))
def test_queue_fields_in_each_versions_words(server: Server, version: str) -> None:
    body, field = BAD_RATE[version]
    name = f"{PARENT}/queues/f-{uuid.uuid4().hex[:10]}"
    reply = httpx.post(f"{server.url}/{version}/{PARENT}/queues", json={"name": name, **body})
    assert _message(reply).startswith(f"{field} must be greater than 0 and at most 500, got 9999")
    if version in BAD_CONCURRENCY:
        body, field = BAD_CONCURRENCY[version]
        reply = httpx.post(f"{server.url}/{version}/{PARENT}/queues", json={"name": name, **body})
        assert _message(reply).startswith(f"{field} must be between 1 and 5000, got 99999")


@pytest.mark.parametrize(
    ("version", "url_field", "body_field", "body_key"),
    [
        ("v2beta2", "relative_url", "payload", "payload"),
        ("v2beta3", "relative_uri", "body", "body"),
        ("v2", "relative_uri", "body", "body"),
    ],
)
def test_task_fields_in_each_versions_words(
    server: Server, version: str, url_field: str, body_field: str, body_key: str
) -> None:
    queue = _queue(server, version)
    url_key = "relativeUrl" if version == "v2beta2" else "relativeUri"
    tasks = f"{server.url}/{version}/{queue}/tasks"
    reply = httpx.post(tasks, json={"task": {"appEngineHttpRequest": {url_key: "no-slash"}}})
    assert _message(reply) == f"task.app_engine_http_request.{url_field} must begin with '/', got 'no-slash'."
    get_with_body = {"httpMethod": "GET", body_key: "aGk="}
    reply = httpx.post(tasks, json={"task": {"appEngineHttpRequest": get_with_body}})
    assert _message(reply) == (
        f"task.app_engine_http_request.{body_field} is allowed only with the POST or PUT method, not GET."
    )
    assert httpx.get(tasks).json().get("tasks", []) == []  # nothing stored
