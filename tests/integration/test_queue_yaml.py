"""queue.yaml (issue 17, item 4): v2beta2's UploadQueueYaml over gRPC and REST
(``POST /api/queue/update?appId=PROJECT`` with the file as the raw body) and ``--config`` a
queue.yaml, read back with the official clients."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from google.api_core import exceptions
from google.cloud import tasks_v2, tasks_v2beta2
from googleapiclient.errors import HttpError

from tests.integration.conftest import (
    Server,
    discovery_client,
    gapic_client,
    gapic_grpc_client,
    refused_start,
    versioned_client,
)
from tests.integration.sink import Sink

LOCATION = "us-central1"  # the first of the default locations: the App Engine app's

FILE = """\
total_storage_limit: 120M
queue:
- name: fooqueue
  rate: 1/s
  retry_parameters:
    task_retry_limit: 7
    task_age_limit: 2d
- name: barqueue
  rate: 10/m
  bucket_size: 20
  max_concurrent_requests: 3
  target: v1.backend
  retry_parameters:
    min_backoff_seconds: 10
    max_backoff_seconds: 200
    max_doublings: 0
- name: pulled
  mode: pull
  retry_parameters:
    task_retry_limit: 3
- name: held
  rate: 0
"""


def project() -> str:
    return f"yaml-{uuid.uuid4().hex[:10]}"


def queue_path(app: str, queue: str, location: str = LOCATION) -> str:
    return f"projects/{app}/locations/{location}/queues/{queue}"


def upload_grpc(server: Server, app: str, text: str) -> None:
    gapic_grpc_client(server).upload_queue_yaml(
        request=tasks_v2beta2.UploadQueueYamlRequest(
            app_id=app, http_body=httpbody_pb2.HttpBody(content_type="application/x-yaml", data=text.encode())
        )
    )


def upload_rest(server: Server, app: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/queue/update",
        params={"appId": app},
        content=text.encode(),
        headers={"Content-Type": "application/octet-stream"},
    )


def queue_ids(server: Server, app: str) -> dict[str, str]:
    """queue id → state name of the project's queues in the app's location."""
    client = gapic_client(server.url)
    return {
        q.name.rsplit("/", 1)[1]: q.state.name
        for q in client.list_queues(parent=f"projects/{app}/locations/{LOCATION}")
    }


def eventually(test: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.05)


def test_grpc_upload_creates_queues_as_queue_yaml_says(dispatching: Server) -> None:
    app = project()
    upload_grpc(dispatching, app, FILE)
    beta2 = gapic_client(dispatching.url)
    foo = beta2.get_queue(name=queue_path(app, "fooqueue"))
    assert foo.state == tasks_v2beta2.Queue.State.RUNNING
    assert foo.rate_limits.max_tasks_dispatched_per_second == 1.0
    assert foo.rate_limits.max_burst_size == 5
    assert foo.retry_config.max_attempts == 8  # task_retry_limit 7: 8 attempts in all
    assert foo.retry_config.max_retry_duration.total_seconds() == 2 * 86400
    assert foo.task_ttl.total_seconds() == 315_576_000_000  # the longest Duration
    assert foo.tombstone_ttl.total_seconds() == 9 * 86400
    assert "app_engine_http_target" in foo

    bar = beta2.get_queue(name=queue_path(app, "barqueue"))
    assert bar.rate_limits.max_tasks_dispatched_per_second == pytest.approx(10 / 60)
    assert bar.rate_limits.max_burst_size == 20 and bar.rate_limits.max_concurrent_tasks == 3
    assert bar.retry_config.unlimited_attempts
    assert bar.retry_config.min_backoff.total_seconds() == 10
    assert bar.retry_config.max_backoff.total_seconds() == 200
    assert bar.retry_config.max_doublings == 0
    routing = bar.app_engine_http_target.app_engine_routing_override
    assert (routing.service, routing.version, routing.host) == (
        "backend",
        "v1",
        f"v1.backend.{app}.appspot.com",
    )

    pulled = beta2.get_queue(name=queue_path(app, "pulled"))
    assert "pull_target" in pulled and pulled.retry_config.max_attempts == 4
    assert beta2.get_queue(name=queue_path(app, "held")).state == tasks_v2beta2.Queue.State.PAUSED

    # The other versions see the same queues: v2 says unlimited as -1.
    v2 = versioned_client(dispatching, "v2", "grpc")
    assert v2.get_queue(name=queue_path(app, "barqueue")).retry_config.max_attempts == -1
    # UpdateQueue still works on a queue from queue.yaml.
    foo.rate_limits.max_tasks_dispatched_per_second = 2
    updated = beta2.update_queue(queue=foo, update_mask={"paths": ["rate_limits"]})
    assert updated.rate_limits.max_tasks_dispatched_per_second == 2


def test_rest_upload_disables_queues_that_leave_the_file(dispatching: Server, sink: Sink) -> None:
    app = project()
    v2 = versioned_client(dispatching, "v2", "rest")
    parent = f"projects/{app}/locations/{LOCATION}"
    v2.create_queue(parent=parent, queue={"name": f"{parent}/queues/by-api"})
    far = f"projects/{app}/locations/europe-west1/queues/far"
    v2.create_queue(parent=f"projects/{app}/locations/europe-west1", queue={"name": far})

    reply = upload_rest(dispatching, app, "queue:\n- name: from-file\n  rate: 5/s\n")
    assert reply.status_code == 200 and reply.json() == {}
    assert queue_ids(dispatching, app) == {"by-api": "DISABLED", "from-file": "RUNNING"}
    assert v2.get_queue(name=far).state == tasks_v2.Queue.State.RUNNING  # another location

    # A disabled queue takes tasks but does not dispatch them.
    path = f"/yaml/{uuid.uuid4().hex[:8]}"
    v2.create_task(parent=f"{parent}/queues/by-api", task={"app_engine_http_request": {"relative_uri": path}})
    time.sleep(1.5)
    assert sink.on(path) == []

    # Named again, it runs again and its task goes out; the one left out is disabled.
    assert upload_rest(dispatching, app, "queue:\n- name: by-api\n").status_code == 200
    assert queue_ids(dispatching, app) == {"by-api": "RUNNING", "from-file": "DISABLED"}
    eventually(lambda: len(sink.on(path)) == 1)

    # ResumeQueue runs a disabled queue too; PauseQueue pauses it.
    resumed = v2.resume_queue(name=f"{parent}/queues/from-file")
    assert resumed.state == tasks_v2.Queue.State.RUNNING


def test_discovery_client_uploads_a_file_written_as_json(dispatching: Server) -> None:
    app = project()
    api = discovery_client(dispatching.url)
    body = {"queue": [{"name": "jsonq", "rate": "2/s", "bucket_size": 7}]}
    assert api.api().queue().update(appId=app, body=body).execute() == {}
    queue = api.projects().locations().queues().get(name=queue_path(app, "jsonq")).execute()
    assert queue["rateLimits"]["maxTasksDispatchedPerSecond"] == 2
    assert queue["rateLimits"]["maxBurstSize"] == 7
    assert queue["state"] == "RUNNING"


BAD = {
    "queue:\n- name: a\n  bucket_size: 3\n  rate: 5/x\n": 'line 4: rate: "5/x" is not a rate',
    "queue:\n- name: a\n  bucket_size: many\n": 'line 3: bucket_size: "many" is not a whole number',
    "queue:\n- name: a\n  retry_parameters:\n    task_age_limit: forever\n": "line 4: task_age_limit",
    "queue:\n- name: a\n  colour: red\n": 'line 3: "colour" is not a key of a queue',
    "queue:\n- name: a\n  rate: [5/s\n": "line 4: not valid YAML",
    "queue:\n- name: ok\n- name: work\n": 'line 3: queue "work": The queue type cannot be changed',
}


def test_bad_files_are_invalid_argument_naming_line_and_key(dispatching: Server) -> None:
    app = project()
    upload_grpc(dispatching, app, "queue:\n- name: work\n  mode: pull\n- name: keep\n")
    before = queue_ids(dispatching, app)
    client = gapic_grpc_client(dispatching)
    for text, expected in BAD.items():
        with pytest.raises(exceptions.InvalidArgument) as raised:
            upload_grpc(dispatching, app, text)
        assert expected in raised.value.message, raised.value.message
        assert raised.value.grpc_status_code == grpc.StatusCode.INVALID_ARGUMENT
        reply = upload_rest(dispatching, app, text)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and expected in error["message"]
        assert queue_ids(dispatching, app) == before  # nothing changed
    with pytest.raises(exceptions.InvalidArgument, match="app_id is required"):
        client.upload_queue_yaml(request={"http_body": {"data": b"queue: []\n"}})
    reply = httpx.post(f"{dispatching.url}/api/queue/update", content=b"queue: []\n")
    assert reply.status_code == 400 and "app_id is required" in reply.json()["error"]["message"]
    with pytest.raises(HttpError) as http_error:
        discovery_client(dispatching.url).api().queue().update(appId=app, body={"queue": 5}).execute()
    assert http_error.value.status_code == 400
    assert "line 1: queue: must be a list" in str(http_error.value)


def test_config_may_be_a_queue_yaml(tmp_path: Path, sink: Sink) -> None:
    app = project()
    queue_yaml = tmp_path / "queue.yaml"
    queue_yaml.write_text(f"application: {app}\n{FILE}")
    db = f"sqlite:///{tmp_path / 'tasks.db'}"
    server = Server(db, config=queue_yaml).start()
    try:
        client = gapic_client(server.url)
        assert set(queue_ids(server, app)) == {"fooqueue", "barqueue", "pulled", "held"}
        assert client.get_queue(name=queue_path(app, "barqueue")).rate_limits.max_burst_size == 20
        v2 = versioned_client(server, "v2", "rest")
        v2.create_queue(
            parent=f"projects/{app}/locations/{LOCATION}", queue={"name": queue_path(app, "later")}
        )
    finally:
        server.stop()

    # A tasksd config naming the file, its project and location; queues: are left running.
    other = project()
    config = tmp_path / "tasksd.yaml"
    config.write_text(
        "locations: [europe-west1, us-central1]\n"
        f"queue_yaml: {{file: queue.yaml, project: {other}}}\n"
        f"queues:\n  - name: {queue_path(other, 'declared', 'europe-west1')}\n"
    )
    server = Server(db, config=config).start()
    try:
        v2 = versioned_client(server, "v2", "grpc")
        parent = f"projects/{other}/locations/europe-west1"
        states = {q.name.rsplit("/", 1)[1]: q.state.name for q in v2.list_queues(parent=parent)}
        assert states == {
            "fooqueue": "RUNNING",
            "barqueue": "RUNNING",
            "declared": "RUNNING",
            "held": "PAUSED",
        }
        # Restarting with the queue.yaml of the first project again disabled what the API made.
        assert queue_ids(server, app)["later"] == "RUNNING"  # (a different project: untouched)
    finally:
        server.stop()
    server = Server(db, config=queue_yaml).start()
    try:
        assert queue_ids(server, app)["later"] == "DISABLED"
    finally:
        server.stop()


def test_a_bad_queue_yaml_config_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "queue.yaml"
    bad.write_text("application: p\nqueue:\n- name: a\n  rate: fast\n")
    assert 'line 4: rate: "fast" is not a rate' in refused_start(bad)
    if "GOOGLE_CLOUD_PROJECT" not in os.environ:
        nameless = tmp_path / "nameless.yaml"
        nameless.write_text("queue:\n- name: a\n")
        assert "which project" in refused_start(nameless)


def test_upload_needs_queue_create_and_update_on_the_project(tmp_path: Path) -> None:
    app = project()
    config = tmp_path / "auth.yaml"
    config.write_text(
        "auth:\n"
        "  tokens:\n"
        "    - {token: admin-token, principal: 'user:admin@example.com'}\n"
        "    - {token: viewer-token, principal: 'user:viewer@example.com'}\n"
        "  bindings:\n"
        f"    - {{project: {app}, role: roles/cloudtasks.queueAdmin, members: ['user:admin@example.com']}}\n"
        f"    - {{project: {app}, role: roles/cloudtasks.viewer, members: ['user:viewer@example.com']}}\n"
    )
    server = Server("sqlite:///:memory:", config=config).start()
    try:
        text = b"queue:\n- name: guarded\n"
        url = f"{server.url}/api/queue/update"
        anonymous = httpx.post(url, params={"appId": app}, content=text)
        assert anonymous.status_code == 401
        viewer = httpx.post(
            url, params={"appId": app}, content=text, headers={"Authorization": "Bearer viewer-token"}
        )
        assert viewer.status_code == 403
        assert 'permission "cloudtasks.queues.create"' in viewer.json()["error"]["message"]
        admin = httpx.post(
            url, params={"appId": app}, content=text, headers={"Authorization": "Bearer admin-token"}
        )
        assert admin.status_code == 200, admin.text
        listed = httpx.get(
            f"{server.url}/v2/projects/{app}/locations/{LOCATION}/queues",
            headers={"Authorization": "Bearer viewer-token"},
        ).json()
        assert [q["name"].rsplit("/", 1)[1] for q in listed["queues"]] == ["guarded"]
    finally:
        server.stop()
