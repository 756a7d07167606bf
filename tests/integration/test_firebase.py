"""firebase-admin's task queues (Python from PyPI, Node from npm) against tasksd, unchanged:
with ``CLOUD_TASKS_EMULATOR_HOST`` set they call the Firebase emulator's unversioned routes,
which tasksd serves as v2 CreateTask and DeleteTask. The test installs firebase-admin when it
is missing (pip into this interpreter, npm beside the Node checks)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2

from tests.integration.conftest import LOCATION, PROJECT, Server, refused_start
from tests.integration.test_node import node_with_client

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
EMULATED_ACCOUNT = "emulated-service-acct@email.com"
FULL = tasks_v2.Task.View.FULL
ENQUEUER = "user:enqueuer@example.com"


def _firebase_admin() -> Any:
    """The firebase_admin package, installed from PyPI first when missing."""
    try:
        import firebase_admin
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "firebase-admin>=6"], check=True, timeout=300
        )
        import firebase_admin
    return firebase_admin


@pytest.fixture
def emulated(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", f"127.0.0.1:{server.http_port}")
    return server


def _task_queue(function: str, project: str = PROJECT) -> Any:
    firebase_admin = _firebase_admin()
    from firebase_admin import functions

    app = firebase_admin.initialize_app(
        credential=None, options={"projectId": project}, name=f"tasksd-{uuid.uuid4().hex[:8]}"
    )
    return functions.task_queue(function, app=app)


def _client(server: Server) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=server.url),
    )


def _queue_id() -> str:
    return f"fb-{uuid.uuid4().hex[:8]}"


def test_python_enqueue_without_options_creates_the_queue(emulated: Server) -> None:
    queue_id = _queue_id()
    task_id = _task_queue(queue_id).enqueue({"hello": "world"})
    client = _client(emulated)
    queue = f"{PARENT}/queues/{queue_id}"
    assert client.get_queue(name=queue).name == queue  # created on the first enqueue
    task = client.get_task(request={"name": f"{queue}/tasks/{task_id}", "response_view": FULL})
    request = task.http_request
    assert request.url == f"http://127.0.0.1:5001/{PROJECT}/{LOCATION}/{queue_id}"
    assert request.http_method == tasks_v2.HttpMethod.POST
    assert json.loads(request.body) == {"hello": "world"}  # Python sends the data bare, Node as {"data": …}
    assert request.headers["Content-Type"] == "application/json"
    assert request.oidc_token.service_account_email == EMULATED_ACCOUNT


def test_python_enqueue_with_options_and_delete(emulated: Server) -> None:
    from firebase_admin import functions

    queue_id = _queue_id()
    queue = _task_queue(f"locations/{LOCATION}/functions/{queue_id}")
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    options = functions.TaskOptions(
        task_id="my-task-1", schedule_time=when, dispatch_deadline_seconds=120, headers={"X-Extra": "yes"}
    )
    assert queue.enqueue([1, 2, 3], options) == "my-task-1"
    name = f"{PARENT}/queues/{queue_id}/tasks/my-task-1"
    task = _client(emulated).get_task(request={"name": name, "response_view": FULL})
    assert task.schedule_time.timestamp() == when.timestamp()
    assert task.dispatch_deadline.total_seconds() == 120
    assert task.http_request.headers["X-Extra"] == "yes"
    assert json.loads(task.http_request.body) == [1, 2, 3]
    delayed = queue.enqueue(
        {}, functions.TaskOptions(schedule_delay_seconds=600, uri="https://example.com/fn")
    )
    later = _client(emulated).get_task(name=f"{PARENT}/queues/{queue_id}/tasks/{delayed}")
    assert later.http_request.url == "https://example.com/fn"  # a URL given is kept
    assert later.schedule_time.timestamp() > datetime.now(UTC).timestamp() + 500
    # the same id again: the SDK's own already-exists error
    from firebase_admin import exceptions as firebase_exceptions

    with pytest.raises(firebase_exceptions.AlreadyExistsError):
        queue.enqueue({}, functions.TaskOptions(task_id="my-task-1"))
    queue.delete("my-task-1")
    with pytest.raises(exceptions.NotFound):
        _client(emulated).get_task(name=name)


def test_queue_uri_override_gives_the_url(emulated: Server) -> None:
    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    _client(emulated).create_queue(
        parent=PARENT,
        queue=tasks_v2.Queue(
            name=name, http_target={"uri_override": {"host": "functions.internal", "port": 8443}}
        ),
    )
    task_id = _task_queue(queue_id).enqueue({"x": 1})
    task = _client(emulated).get_task(name=f"{name}/tasks/{task_id}")
    assert task.http_request.url == "https://functions.internal:8443/"


def test_raw_routes(server: Server) -> None:
    """The wire format the SDKs use, and only these two routes without a version prefix."""
    queue_id = _queue_id()
    base = f"{server.url}/{PARENT}/queues/{queue_id}/tasks"
    body = base64.b64encode(b'{"data": 1}').decode()
    task = {
        "httpRequest": {"url": "", "oidcToken": {"serviceAccountEmail": EMULATED_ACCOUNT}, "body": body},
        "name": None,
        "dispatchDeadline": "30s",
    }
    headers = {"Authorization": "Bearer owner"}
    created = httpx.post(base, json={"task": task}, headers=headers)
    assert created.status_code == 200, created.text
    reply = created.json()["task"]
    assert reply["name"].startswith(f"/{PARENT}/queues/{queue_id}/tasks/")
    assert reply["dispatchDeadline"] == "30s"
    task_id = reply["name"].rsplit("/", 1)[1]
    nested = httpx.post(base, content=b'{"task": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert nested.status_code == 400 and "Nesting too deep" in nested.json()["error"]["message"]
    bad = httpx.post(base, json={"task": {"httpRequest": {"url": "ftp://x/"}}})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    other = httpx.post(base, json={"task": dict(task, name=f"{PARENT}/queues/other/tasks/t1")})
    assert other.status_code == 400, other.text
    assert httpx.get(f"{base}/{task_id}").status_code == 404  # not a Firebase route
    assert httpx.post(f"{base}/{task_id}", json={}).status_code == 404
    deleted = httpx.delete(f"{base}/{task_id}", headers=headers)
    assert deleted.status_code == 200 and deleted.json() == {}
    again = httpx.delete(f"{base}/{task_id}", headers=headers)
    assert again.status_code == 404 and again.json()["error"]["status"] == "NOT_FOUND"


@pytest.fixture(scope="module")
def templated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """tasksd whose firebase_function_url is set, with auth enforced and ``owner`` a static token
    (roles/owner: enqueueing needs actAs on the emulated service account the SDK names)."""
    folder = tmp_path_factory.mktemp("firebase")
    config = {
        "firebase_function_url": "http://functions.test:9000/fn/{project}/{queue}?at={location}",
        "auth": {
            "mode": "enforce",
            "tokens": [
                {"token": "owner", "principal": "user:firebase@example.com"},
                {"token": "enqueuer", "principal": "user:enqueuer@example.com"},
            ],
            "bindings": [
                {"project": "*", "role": "roles/owner", "members": ["user:firebase@example.com"]},
                {"project": "*", "role": "roles/cloudtasks.enqueuer", "members": [ENQUEUER]},
                {"project": "*", "role": "roles/iam.serviceAccountUser", "members": [ENQUEUER]},
            ],
        },
    }
    (folder / "tasksd.yaml").write_text(json.dumps(config))
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", folder / "tasksd.yaml").start()
    yield server
    server.stop()


def test_template_and_enforced_auth(templated: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", f"127.0.0.1:{templated.http_port}")
    queue_id = _queue_id()
    task_id = _task_queue(queue_id).enqueue({"a": "b"})
    got = httpx.get(
        f"{templated.url}/v2/{PARENT}/queues/{queue_id}/tasks/{task_id}",
        headers={"Authorization": "Bearer owner"},
    )
    assert got.status_code == 200, got.text
    assert (
        got.json()["httpRequest"]["url"]
        == f"http://functions.test:9000/fn/{PROJECT}/{queue_id}?at={LOCATION}"
    )
    anonymous = httpx.post(f"{templated.url}/{PARENT}/queues/{queue_id}/tasks", json={"task": {}})
    assert anonymous.status_code == 401
    # an enqueuer may not read the queue: its task gets the template URL all the same
    task = {"httpRequest": {"url": "", "oidcToken": {"serviceAccountEmail": EMULATED_ACCOUNT}}}
    enqueued = httpx.post(
        f"{templated.url}/{PARENT}/queues/{queue_id}/tasks",
        json={"task": task},
        headers={"Authorization": "Bearer enqueuer"},
    )
    assert enqueued.status_code == 200, enqueued.text
    assert enqueued.json()["task"]["httpRequest"]["url"].startswith("http://functions.test:9000/fn/")
    missing = httpx.post(
        f"{templated.url}/{PARENT}/queues/{_queue_id()}/tasks",
        json={"task": task},
        headers={"Authorization": "Bearer enqueuer"},
    )
    assert missing.status_code in (403, 404), missing.text  # not created: no queues.create


def test_node_enqueue_and_delete(emulated: Server) -> None:
    node = node_with_client("firebase-admin")
    queue_id = _queue_id()
    done = subprocess.run(
        [node, "firebase_check.js", PROJECT, queue_id],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{emulated.http_port}"},
    )
    assert done.returncode == 0, done.stderr
    assert "node firebase ok" in done.stdout, done.stdout
    client = _client(emulated)
    queue = f"{PARENT}/queues/{queue_id}"
    tasks = {
        t.name.rsplit("/", 1)[1]: t
        for t in client.list_tasks(request={"parent": queue, "response_view": FULL})
    }
    assert "node-kept" in tasks and "node-gone" not in tasks, list(tasks)
    kept = tasks["node-kept"]
    assert kept.http_request.url == f"http://127.0.0.1:5001/{PROJECT}/{LOCATION}/{queue_id}"
    assert json.loads(kept.http_request.body) == {"data": {"from": "node"}}
    assert kept.http_request.headers["X-Node"] == "1"
    assert kept.dispatch_deadline.total_seconds() == 60
    assert kept.schedule_time.timestamp() > datetime.now(UTC).timestamp() + 3000
    plain = [t for name, t in tasks.items() if name != "node-kept"]
    assert len(plain) == 1 and json.loads(plain[0].http_request.body) == {"data": "plain"}


@pytest.mark.parametrize("template", ["ftp://x/{queue}", "http://x/{function}", "http://x/{0}"])
def test_a_bad_template_is_refused(tmp_path: Path, template: str) -> None:
    config = tmp_path / "tasksd.yaml"
    config.write_text(json.dumps({"firebase_function_url": template}))
    assert "firebase_function_url must be an http:// or https:// URL template" in refused_start(config)
