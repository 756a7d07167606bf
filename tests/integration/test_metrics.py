"""Prometheus metrics at /metrics and the structured logs (issue 18, items 3 and 4): scraped
with prometheus-client's parser before and after known work, through the official clients
over REST and gRPC, against a server whose App Engine tasks go to a recording sink."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import PARENT, Server, free_port, served_discovery_client, versioned_client
from tests.integration.sink import Sink

FAST_RETRY = {"minBackoff": "0.1s", "maxBackoff": "0.2s", "maxDoublings": 1}
SECRET = "do-not-log-this-payload"


@pytest.fixture(scope="module")
def observed(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """tasksd with JSON logs, the access log and task events at debug level."""
    db = tmp_path_factory.mktemp("metrics") / "tasksd.db"
    extra = ["--app-engine-url", sink.url, "--log-format", "json", "--access-log", "--log-level", "debug"]
    server = Server(f"sqlite:///{db}", extra=extra).start()
    yield server
    server.stop()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server, headers: dict[str, str] | None = None) -> Samples:
    reply = httpx.get(f"{server.url}/metrics", headers=headers)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def new_queue(api: Any, **body: Any) -> str:
    name = f"{PARENT}/queues/m-{uuid.uuid4().hex[:10]}"
    api.projects().locations().queues().create(parent=PARENT, body={"name": name, **body}).execute()
    return name


def add_task(api: Any, queue: str, task: dict[str, Any]) -> None:
    api.projects().locations().queues().tasks().create(parent=queue, body={"task": task}).execute()


def test_attempts_by_outcome_latency_and_retries(observed: Server, sink: Sink) -> None:
    api = served_discovery_client(observed.url)
    queue = new_queue(api, appEngineHttpTarget={}, retryConfig={**FAST_RETRY, "maxAttempts": 2})
    ok, flaky, missing = (f"/m/{uuid.uuid4().hex[:8]}" for _ in range(3))
    sink.script(ok, 200)
    sink.script(flaky, 503, 200)
    sink.script(missing, 404, 404)
    before = scrape(observed)
    for path in (ok, flaky, missing):
        add_task(api, queue, {"appEngineHttpRequest": {"relativeUrl": path}})
    closed = f"http://127.0.0.1:{free_port()}/nobody"
    http_queue = new_queue(api, httpTarget={}, retryConfig={**FAST_RETRY, "maxAttempts": 1})
    add_task(api, http_queue, {"httpRequest": {"url": closed}})
    sink.wait(lambda: len(sink.on(ok)) == 1 and len(sink.on(flaky)) == 2 and len(sink.on(missing)) == 2)

    def settled() -> Samples:
        deadline = time.monotonic() + 20
        while True:
            after = scrape(observed)
            done = delta(before, after, "tasksd_attempts_total", queue=queue, outcome="2xx") == 2
            refused = delta(
                before, after, "tasksd_attempts_total", queue=http_queue, outcome="connection_error"
            )
            if (done and refused == 1) or time.monotonic() > deadline:
                return after
            time.sleep(0.1)

    after = settled()
    counted = {
        outcome: delta(before, after, "tasksd_attempts_total", queue=queue, outcome=outcome)
        for outcome in ("2xx", "4xx", "5xx", "timeout", "connection_error")
    }
    assert counted == {"2xx": 2, "4xx": 2, "5xx": 1, "timeout": 0, "connection_error": 0}
    assert delta(before, after, "tasksd_attempts_total", queue=http_queue, outcome="connection_error") == 1
    # Retried: the 503 and the first 404 (the second 404 used the last attempt).
    assert delta(before, after, "tasksd_retries_total", queue=queue) == 2
    assert delta(before, after, "tasksd_attempt_duration_seconds_count", queue=queue) == 5
    assert delta(before, after, "tasksd_attempt_duration_seconds_sum", queue=queue) > 0
    assert delta(before, after, "tasksd_store_commit_seconds_count") > 0
    assert delta(before, after, "tasksd_store_commit_group_size_sum") >= delta(
        before, after, "tasksd_store_commit_group_size_count"
    )


def test_queue_gauges_and_pull_counters(observed: Server) -> None:
    api = served_discovery_client(observed.url)
    pull = new_queue(api, pullTarget={})
    paused = new_queue(api, appEngineHttpTarget={})
    api.projects().locations().queues().pause(name=paused, body={}).execute()
    for _ in range(3):
        add_task(api, paused, {"appEngineHttpRequest": {}})
    for _ in range(4):
        add_task(api, pull, {"pullMessage": {"payload": base64.b64encode(SECRET.encode()).decode()}})
    time.sleep(1.1)  # so that the oldest task has waited a second
    before = scrape(observed)
    assert value(before, "tasksd_queue_tasks", queue=paused) == 3
    assert 1.0 <= value(before, "tasksd_queue_oldest_task_age_seconds", queue=paused) < 60
    assert value(before, "tasksd_queue_tasks", queue=pull) == 4
    tasks = api.projects().locations().queues().tasks()
    leased = tasks.lease(parent=pull, body={"maxTasks": 3, "leaseDuration": "60s"}).execute()["tasks"]
    tasks.lease(parent=pull, body={"maxTasks": 3, "leaseDuration": "60s"}).execute()  # the fourth
    for task in leased[:2]:
        tasks.acknowledge(name=task["name"], body={"scheduleTime": task["scheduleTime"]}).execute()
    after = scrape(observed)
    assert delta(before, after, "tasksd_lease_calls_total", queue=pull) == 2
    assert delta(before, after, "tasksd_leased_tasks_total", queue=pull) == 4
    assert delta(before, after, "tasksd_acknowledged_tasks_total", queue=pull) == 2
    assert value(after, "tasksd_queue_tasks", queue=pull) == 2
    api.projects().locations().queues().delete(name=paused).execute()
    assert ("tasksd_queue_tasks", (("queue", paused),)) not in scrape(observed)  # a deleted queue is dropped


def test_api_requests_by_method_transport_and_code(observed: Server) -> None:
    api = served_discovery_client(observed.url)
    queue = new_queue(api, pullTarget={})
    grpc_client = versioned_client(observed, "v2beta2", "grpc")
    rest_client = versioned_client(observed, "v2beta2", "rest")
    before = scrape(observed)
    for client in (grpc_client, rest_client):
        client.get_queue(name=queue)
        with pytest.raises(exceptions.NotFound):
            client.get_queue(name=f"{queue}-missing")
        with pytest.raises((exceptions.InvalidArgument, exceptions.BadRequest)):  # gRPC, REST
            client.create_queue(parent=PARENT, queue={"name": f"{PARENT}/queues/bad_name"})
    after = scrape(observed)
    for transport in ("grpc", "rest"):
        for method, code in [
            ("GetQueue", "OK"),
            ("GetQueue", "NOT_FOUND"),
            ("CreateQueue", "INVALID_ARGUMENT"),
        ]:
            requests = delta(
                before, after, "tasksd_api_requests_total", method=method, transport=transport, code=code
            )
            assert requests == 1, (method, transport, code)
        count = delta(
            before, after, "tasksd_api_request_duration_seconds_count", method="GetQueue", transport=transport
        )
        assert count == 2
    unrouted = httpx.get(f"{observed.url}/v2beta2/nothing/here")
    assert unrouted.status_code == 404
    last = scrape(observed)
    assert (
        delta(after, last, "tasksd_api_requests_total", method="unknown", transport="rest", code="NOT_FOUND")
        == 1
    )


def log_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_json_logs_and_access_lines(observed: Server) -> None:
    api = served_discovery_client(observed.url)
    queue = new_queue(api, pullTarget={})
    add_task(
        api,
        queue,
        {
            "name": f"{queue}/tasks/logged",
            "pullMessage": {"payload": base64.b64encode(SECRET.encode()).decode()},
        },
    )
    versioned_client(observed, "v2beta2", "grpc").get_task(name=f"{queue}/tasks/logged")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = log_lines(observed)
        requests = [
            line
            for line in lines
            if line.get("logger") == "tasksd.access" and line["resource"].startswith(queue)
        ]
        if len(requests) >= 3:
            break
        time.sleep(0.1)
    assert all({"time", "level", "message"} <= line.keys() for line in lines)
    by_method = {(line["method"], line["transport"]): line for line in requests}
    create = by_method[("CreateTask", "rest")]
    assert create["resource"] == queue and create["code"] == "OK" and create["latency_ms"] >= 0
    assert create["principal"] is None  # authentication is off
    assert by_method[("GetTask", "grpc")]["resource"] == f"{queue}/tasks/logged"
    events = [line for line in lines if line.get("task") == f"{queue}/tasks/logged"]
    assert [e["message"] for e in events] == ["task created"] and events[0]["level"] == "DEBUG"
    text = observed.output()
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text


def test_metrics_and_access_log_behind_authentication(tmp_path: Path) -> None:
    config = {
        "auth": {
            "mode": "enforce",
            "tokens": [{"token": "ops-token-xyz", "principal": "user:ops@example.com"}],
            "bindings": [
                {"project": "*", "role": "roles/cloudtasks.viewer", "members": ["user:ops@example.com"]}
            ],
        }
    }
    (tmp_path / "tasksd.yaml").write_text(json.dumps(config))
    server = Server(
        f"sqlite:///{tmp_path / 'tasksd.db'}",
        tmp_path / "tasksd.yaml",
        extra=["--log-format", "json", "--access-log"],
    ).start()
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        headers = {"Authorization": "Bearer ops-token-xyz"}
        assert httpx.get(f"{server.url}/metrics", headers=headers).status_code == 200
        listed = httpx.get(f"{server.url}/v2/{PARENT}/queues", headers=headers)
        assert listed.status_code == 200
        httpx.get(f"{server.url}/v2/{PARENT}/queues")  # no credentials
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            access = [line for line in log_lines(server) if line.get("logger") == "tasksd.access"]
            if len(access) >= 2:
                break
            time.sleep(0.1)
        signed = [line for line in access if line["code"] == "OK" and line["method"] == "ListQueues"]
        assert signed and signed[0]["principal"] == "user:ops@example.com"
        refused = [line for line in access if line["code"] == "UNAUTHENTICATED"]
        assert refused and refused[0]["method"] == "ListQueues" and refused[0]["principal"] is None
        assert "ops-token-xyz" not in server.output()
        samples = scrape(server, headers)
        assert (
            value(
                samples,
                "tasksd_api_requests_total",
                method="ListQueues",
                transport="rest",
                code="UNAUTHENTICATED",
            )
            == 1
        )
    finally:
        server.stop()
