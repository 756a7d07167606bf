"""The client libraries users run in production, unchanged, against a real tasksd:

- appengine-python-standard's ``google.appengine.api.taskqueue`` routed to Cloud Tasks
  (``APPENGINE_USE_CLOUDTASK_PUSH_QUEUE=true``), its Cloud Tasks client classes replaced by ones
  on an insecure gRPC channel to tasksd, as its own tests replace them. Only push queues are
  routed: ``lease_tasks`` and pull tasks still go to the App Engine API proxy, so pull queues
  are not exercised through it.
- gcloud-aio-taskqueue's ``PushQueue`` (REST v2beta3, ``CLOUDTASKS_EMULATOR_HOST``; the library
  has no pull queue class), anonymously and with a key file against an authenticated tasksd.
- fastapi-gcp-tasks' delayed routes (gRPC v2 through its ``emulator_client``), sync and async,
  dispatched to a running FastAPI app.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at definition,
# and the routes and models here are local to their tests.

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
import uvicorn
from aiohttp import ClientResponseError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi_gcp_tasks import AsyncDelayedRouteBuilder, CloudTasksHeaders, DelayedRouteBuilder
from fastapi_gcp_tasks.hooks import oidc_delayed_hook
from fastapi_gcp_tasks.utils import async_emulator_client, emulator_client, queue_path
from gcloud.aio.taskqueue import PushQueue
from google.api_core import exceptions
from google.appengine.api import taskqueue as appengine_taskqueue
from google.appengine.api.taskqueue import cloudtask
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.tasks_v2.services.cloud_tasks import transports as v2_transports
from google.cloud.tasks_v2beta3.services.cloud_tasks import transports as v2beta3_transports
from pydantic import BaseModel

from tasksd.auth.keyfile import new_key_file
from tests.integration.conftest import LOCATION, PARENT, PROJECT, Server, free_port
from tests.integration.sink import Answer, Sink

# The classes as imported, before a test replaces them for appengine-python-standard.
V2Client = tasks_v2.CloudTasksClient
V2beta3Client = tasks_v2beta3.CloudTasksClient


def v2(server: Server) -> tasks_v2.CloudTasksClient:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return V2Client(transport=v2_transports.CloudTasksGrpcTransport(channel=channel))


def new_queue(server: Server, **queue: Any) -> str:
    queue_id = f"c-{uuid.uuid4().hex[:10]}"
    v2(server).create_queue(parent=PARENT, queue={"name": f"{PARENT}/queues/{queue_id}", **queue})
    return queue_id


def eventually(test: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.02)


def unique_path() -> str:
    return f"/lib/{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------------------------
# appengine-python-standard
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def taskqueue(dispatching: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The taskqueue API with Cloud Tasks push queues on, its clients on tasksd's gRPC port."""

    target = f"127.0.0.1:{dispatching.grpc_port}"

    class LocalV2(V2Client):  # type: ignore[misc]
        def __init__(self, **_: Any) -> None:
            channel = grpc.insecure_channel(target)
            super().__init__(transport=v2_transports.CloudTasksGrpcTransport(channel=channel))

    class LocalV2beta3(V2beta3Client):  # type: ignore[misc]
        def __init__(self, **_: Any) -> None:
            channel = grpc.insecure_channel(target)
            super().__init__(transport=v2beta3_transports.CloudTasksGrpcTransport(channel=channel))

    monkeypatch.setenv("APPENGINE_USE_CLOUDTASK_PUSH_QUEUE", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("LOCATION_ID", LOCATION)
    monkeypatch.setattr(tasks_v2, "CloudTasksClient", LocalV2)
    monkeypatch.setattr(tasks_v2beta3, "CloudTasksClient", LocalV2beta3)
    cloudtask._reset_clients()
    assert cloudtask.is_cloudtask_push_queue_enabled()
    yield appengine_taskqueue
    cloudtask._reset_clients()


def test_appengine_add_is_dispatched_to_the_handler(taskqueue: Any, dispatching: Server, sink: Sink) -> None:
    queue_id = new_queue(dispatching)
    queue = taskqueue.Queue(queue_id)
    raw, form, get = unique_path(), unique_path(), unique_path()

    added = queue.add(taskqueue.Task(payload=b"raw body", url=raw, name="named-1"))
    assert (added.name, added.was_enqueued) == ("named-1", True)
    generated = queue.add(taskqueue.Task(params={"a": "1", "b": "x y"}, url=form))
    assert generated.name.isdigit() and len(generated.name) == 20
    queue.add(taskqueue.Task(params={"q": "2"}, url=get, method="GET"))

    sink.wait(lambda: all(sink.on(p) for p in (raw, form, get)))
    first = sink.on(raw)[0]
    assert (first.method, first.body) == ("POST", b"raw body")
    assert first.headers["X-AppEngine-QueueName"] == queue_id
    assert first.headers["X-AppEngine-TaskName"] == "named-1"
    assert first.headers["Content-Type"] == "application/octet-stream"
    posted = sink.on(form)[0]
    assert posted.body == b"a=1&b=x+y"
    # The library names it "content-type"; stored and sent as named, with no default added.
    assert [(k, v) for k, v in posted.headers.items() if k.lower() == "content-type"] == [
        ("content-type", "application/x-www-form-urlencoded")
    ]
    assert posted.headers["X-AppEngine-TaskName"] == generated.name
    fetched = sink.on(get)[0]
    assert (fetched.method, fetched.path, fetched.body) == ("GET", f"{get}?q=2", b"")


def test_appengine_countdown_and_eta(taskqueue: Any, dispatching: Server, sink: Sink) -> None:
    queue_id = new_queue(dispatching)
    path = unique_path()
    before, wall = time.monotonic(), time.time()
    task = taskqueue.Queue(queue_id).add(taskqueue.Task(url=path, countdown=1, name="later"))
    stored = v2(dispatching).get_task(name=f"{PARENT}/queues/{queue_id}/tasks/later")
    assert abs(stored.schedule_time.timestamp() - task.eta_posix) < 0.01
    assert wall + 1 - 0.01 <= stored.schedule_time.timestamp() <= time.time() + 1
    sink.wait(lambda: bool(sink.on(path)))
    assert sink.on(path)[0].at - before >= 0.9


def test_appengine_duplicate_names(taskqueue: Any, dispatching: Server) -> None:
    queue_id = new_queue(dispatching)
    queue = taskqueue.Queue(queue_id)
    queue.add(taskqueue.Task(url="/x", name="once", countdown=600))
    with pytest.raises(taskqueue.TaskAlreadyExistsError):
        queue.add(taskqueue.Task(url="/x", name="once"))
    # Several tasks go through BatchCreateTasks: the new one is created, the taken name fails.
    with pytest.raises(taskqueue.TaskAlreadyExistsError):
        queue.add(
            [
                taskqueue.Task(url="/x", name="once", countdown=600),
                taskqueue.Task(url="/x", name="fresh", countdown=600),
            ]
        )
    names = {
        t.name.rsplit("/", 1)[1] for t in v2(dispatching).list_tasks(parent=f"{PARENT}/queues/{queue_id}")
    }
    assert names == {"once", "fresh"}
    # A deleted task's name stays taken (its tombstone).
    queue.delete_tasks(taskqueue.Task(name="fresh"))
    with pytest.raises(taskqueue.TaskAlreadyExistsError):
        queue.add(taskqueue.Task(url="/x", name="fresh"))
    with pytest.raises(taskqueue.DuplicateTaskNameError):
        queue.add([taskqueue.Task(url="/x", name="twin"), taskqueue.Task(url="/x", name="twin")])


def test_appengine_delete_tasks_and_purge(taskqueue: Any, dispatching: Server) -> None:
    queue_id = new_queue(dispatching)
    queue = taskqueue.Queue(queue_id)
    queue.add([taskqueue.Task(url="/x", name=f"t{i}", countdown=600) for i in range(4)])
    assert taskqueue.QueueStatistics.fetch(queue).tasks == 4

    gone = queue.delete_tasks(
        [taskqueue.Task(name="t0"), taskqueue.Task(name="t1"), taskqueue.Task(name="nope")]
    )
    assert [t.was_deleted for t in gone] == [True, True, False]
    one = queue.delete_tasks_by_name("t2")
    assert one.was_deleted
    names = [
        t.name.rsplit("/", 1)[1] for t in v2(dispatching).list_tasks(parent=f"{PARENT}/queues/{queue_id}")
    ]
    assert names == ["t3"]

    queue.add([taskqueue.Task(url="/x", countdown=600) for _ in range(3)])
    queue.purge()
    assert list(v2(dispatching).list_tasks(parent=f"{PARENT}/queues/{queue_id}")) == []
    stats = taskqueue.QueueStatistics.fetch(queue)
    assert (stats.tasks, stats.oldest_eta_usec) == (0, None)


def test_appengine_queue_statistics(taskqueue: Any, dispatching: Server, sink: Sink) -> None:
    busy, idle = new_queue(dispatching), new_queue(dispatching)
    path = unique_path()
    sink.script(path, Answer(200, delay_s=2.0))
    taskqueue.Queue(idle).add(taskqueue.Task(url="/x", countdown=300))
    queue = taskqueue.Queue(busy)
    queue.add([taskqueue.Task(url=path), taskqueue.Task(url=path)])
    sink.wait(lambda: len(sink.on(path)) == 2)

    held = taskqueue.QueueStatistics.fetch(queue)  # the handler is holding both attempts
    assert (held.tasks, held.in_flight, held.executed_last_minute) == (2, 2, 2)
    assert held.enforced_rate > 0
    eventually(lambda: taskqueue.QueueStatistics.fetch(queue).tasks == 0)
    done = taskqueue.QueueStatistics.fetch(queue)
    assert (done.in_flight, done.executed_last_minute, done.oldest_eta_usec) == (0, 2, None)

    both = taskqueue.QueueStatistics.fetch([queue, taskqueue.Queue(idle)])
    assert [s.queue.name for s in both] == [busy, idle]
    waiting = both[1]
    assert (waiting.tasks, waiting.in_flight, waiting.executed_last_minute) == (1, 0, 0)
    assert abs(waiting.oldest_eta_usec / 1e6 - (time.time() + 300)) < 30


def test_appengine_unknown_queue(taskqueue: Any) -> None:
    missing = taskqueue.Queue(f"missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(taskqueue.UnknownQueueError, match="Queue does not exist"):
        missing.add(taskqueue.Task(url="/x"))
    with pytest.raises(taskqueue.UnknownQueueError):
        taskqueue.QueueStatistics.fetch(missing)
    with pytest.raises(taskqueue.UnknownQueueError):
        missing.purge()


# ---------------------------------------------------------------------------------------------
# gcloud-aio-taskqueue
# ---------------------------------------------------------------------------------------------


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def test_gcloud_aio_push_queue(dispatching: Server, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("CLOUDTASKS_EMULATOR_HOST", f"127.0.0.1:{dispatching.http_port}")
    queue_id = new_queue(dispatching)
    now_path, run_path = unique_path(), unique_path()

    async def scenario() -> None:
        async with PushQueue(PROJECT, queue_id, location=LOCATION) as queue:
            assert queue._api_root == f"http://127.0.0.1:{dispatching.http_port}/v2beta3"
            body = base64.b64encode(b"hello").decode()
            created = await queue.create(
                {
                    "name": queue.task_name("later"),
                    "scheduleTime": in_an_hour(),
                    "httpRequest": {"url": sink.url + run_path, "body": body, "headers": {"X-Mine": "1"}},
                }
            )
            assert created["name"] == queue.task_name("later")
            assert created["view"] == "FULL" and created["httpRequest"]["body"] == body
            assert created["httpRequest"]["headers"] == {"X-Mine": "1", "User-Agent": "Google-Cloud-Tasks"}

            basic = await queue.get(queue.task_name("later"))
            assert basic["view"] == "BASIC" and "body" not in basic["httpRequest"]
            full = await queue.get(queue.task_name("later"), full=True)
            assert full["httpRequest"]["body"] == body

            with pytest.raises(ClientResponseError) as taken:
                await queue.create({"name": queue.task_name("later"), "httpRequest": {"url": sink.url}})
            assert taken.value.status == 409

            # An App Engine task due now is dispatched; a scheduled one runs on tasks.run.
            await queue.create({"appEngineHttpRequest": {"relativeUri": now_path, "body": body}})
            ran = await queue.run(queue.task_name("later"))
            assert ran["dispatchCount"] == 1

            for i in range(3):
                await queue.create(
                    {
                        "name": queue.task_name(f"p{i}"),
                        "scheduleTime": in_an_hour(),
                        "httpRequest": {"url": sink.url},
                    }
                )
            page = await queue.list(page_size=2)
            assert len(page["tasks"]) == 2 and page["nextPageToken"]
            rest = await queue.list(page_size=2, page_token=page["nextPageToken"], full=True)
            assert "nextPageToken" not in rest
            listed = {t["name"] for t in page["tasks"] + rest["tasks"]}
            assert {queue.task_name(f"p{i}") for i in range(3)} <= listed

            assert await queue.delete(queue.task_name("p0")) == {}
            with pytest.raises(ClientResponseError) as deleted:
                await queue.get(queue.task_name("p0"))
            assert deleted.value.status == 404
            with pytest.raises(ClientResponseError) as missing:
                await queue.delete(queue.task_name("never"))
            assert missing.value.status == 404

    asyncio.run(scenario())
    sink.wait(lambda: bool(sink.on(now_path)) and bool(sink.on(run_path)))
    assert sink.on(now_path)[0].body == b"hello"
    assert sink.on(now_path)[0].headers["X-AppEngine-QueueName"] == queue_id
    ran_request = sink.on(run_path)[0]
    assert (ran_request.body, ran_request.headers["X-Mine"]) == (b"hello", "1")
    assert ran_request.headers["X-CloudTasks-TaskName"] == "later"


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """tasksd with authentication enforced: a key file (token_uri: tasksd) and a static token."""
    folder = tmp_path_factory.mktemp("libs-auth")
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", folder / "tasksd.yaml")
    account = f"ci@{PROJECT}.iam.gserviceaccount.com"
    new_key_file(account, f"{server.url}/token", str(folder / "ci.json"))
    config = {
        "auth": {
            "mode": "enforce",
            "service_account_keys": ["ci.json"],
            "tokens": [{"token": "s3cret", "principal": "user:ci@example.com"}],
            "bindings": [
                {
                    "project": PROJECT,
                    "role": "roles/cloudtasks.admin",
                    "members": [f"serviceAccount:{account}", "user:ci@example.com"],
                }
            ],
        }
    }
    (folder / "tasksd.yaml").write_text(json.dumps(config))
    server.start()
    server.folder = folder  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_gcloud_aio_against_an_authenticated_tasksd(
    enforcing: Server, monkeypatch: pytest.MonkeyPatch
) -> None:

    folder: Path = enforcing.folder  # type: ignore[attr-defined]
    queue_id = f"c-{uuid.uuid4().hex[:10]}"
    created = httpx.post(
        f"{enforcing.url}/v2/{PARENT}/queues",
        json={"name": f"{PARENT}/queues/{queue_id}"},
        headers={"Authorization": "Bearer s3cret"},
    )
    assert created.status_code == 200, created.text
    monkeypatch.setenv("CLOUDTASKS_EMULATOR_HOST", f"127.0.0.1:{enforcing.http_port}")

    async def scenario() -> None:
        # CLOUDTASKS_EMULATOR_HOST makes the library send no credentials at all.
        async with PushQueue(PROJECT, queue_id) as anonymous:
            with pytest.raises(ClientResponseError) as refused:
                await anonymous.list()
            assert refused.value.status == 401
        # api_root with api_is_dev=False: a Token from a key file whose token_uri is tasksd's /token.
        async with PushQueue(
            PROJECT,
            queue_id,
            service_file=str(folder / "ci.json"),
            api_root=f"{enforcing.url}/v2beta3",
            api_is_dev=False,
        ) as queue:
            task = await queue.create(
                {"scheduleTime": in_an_hour(), "httpRequest": {"url": "http://127.0.0.1:9/"}}
            )
            listed = await queue.list()
            assert [t["name"] for t in listed["tasks"]] == [task["name"]]
            assert await queue.delete(task["name"]) == {}

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------
# fastapi-gcp-tasks
# ---------------------------------------------------------------------------------------------


class App:
    """A FastAPI app served by uvicorn on a free port, in a thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        eventually(lambda: self.server.started, timeout_s=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_fastapi_delayed_route(dispatching: Server) -> None:

    port = free_port()
    queue_id = f"fa-{uuid.uuid4().hex[:10]}"
    path = queue_path(project=PROJECT, location=LOCATION, queue=queue_id)
    client = emulator_client(host=f"127.0.0.1:{dispatching.grpc_port}")
    delayed = DelayedRouteBuilder(  # creates the queue (auto_create_queue)
        client=client,
        callback_base_url=f"http://127.0.0.1:{port}",
        queue_path=path,
        pre_create_hook=oidc_delayed_hook(
            token=tasks_v2.OidcToken(
                service_account_email=f"runner@{PROJECT}.iam.gserviceaccount.com", audience="aud"
            )
        ),
    )
    router = APIRouter(route_class=delayed, prefix="/delayed")
    calls: list[dict[str, Any]] = []

    class Recipe(BaseModel):
        ingredients: list[str]

    @router.post("/{branch}/make_chili")
    async def make_chili(branch: str, recipe: Recipe, meta: CloudTasksHeaders = Depends()) -> None:  # noqa: B008
        calls.append({"branch": branch, "recipe": recipe.ingredients, "meta": meta})
        if branch == "flaky" and meta.retry_count == 0:
            raise HTTPException(status_code=500)

    app = FastAPI()
    app.include_router(router)
    served = App(app, port)
    try:
        assert client.get_queue(name=path).name == path
        task = make_chili.delay(branch="Scranton", recipe=Recipe(ingredients=["beef"]))
        assert task.http_request.url == f"http://127.0.0.1:{port}/delayed/Scranton/make_chili"
        wall = time.time()
        later = make_chili.options(countdown=1, task_id="flaky-1").delay(
            branch="flaky", recipe=Recipe(ingredients=["onions"])
        )
        assert later.name == f"{path}/tasks/flaky-1"
        assert wall + 1 - 0.01 <= later.schedule_time.timestamp() <= time.time() + 1
        with pytest.raises(exceptions.AlreadyExists):
            make_chili.options(task_id="flaky-1").delay(branch="flaky", recipe=Recipe(ingredients=[]))

        eventually(lambda: len(calls) == 3)
        first = calls[0]
        assert (first["branch"], first["recipe"]) == ("Scranton", ["beef"])
        assert (first["meta"].queue_name, first["meta"].task_name) == (queue_id, task.name.rsplit("/", 1)[1])
        assert first["meta"].retry_count == 0
        retried = [c["meta"] for c in calls[1:]]
        assert [m.task_name for m in retried] == ["flaky-1", "flaky-1"]
        assert [(m.retry_count, m.previous_response) for m in retried] == [(0, 0), (1, 500)]
        eventually(lambda: not list(client.list_tasks(parent=path)))
    finally:
        served.stop()


def test_fastapi_delayed_route_carries_a_verifiable_oidc_token(dispatching: Server) -> None:

    port = free_port()
    account = f"runner@{PROJECT}.iam.gserviceaccount.com"
    path = queue_path(project=PROJECT, location=LOCATION, queue=f"fa-{uuid.uuid4().hex[:10]}")
    delayed = DelayedRouteBuilder(
        client=emulator_client(host=f"127.0.0.1:{dispatching.grpc_port}"),
        callback_base_url=f"http://127.0.0.1:{port}",
        queue_path=path,
        pre_create_hook=oidc_delayed_hook(
            token=tasks_v2.OidcToken(service_account_email=account, audience=f"http://127.0.0.1:{port}")
        ),
    )
    router = APIRouter(route_class=delayed)
    tokens: list[str] = []

    @router.post("/hello")
    async def hello(request: Request) -> None:
        tokens.append(request.headers["authorization"].removeprefix("Bearer "))

    app = FastAPI()
    app.include_router(router)
    served = App(app, port)
    try:
        hello.delay()
        eventually(lambda: bool(tokens))
    finally:
        served.stop()
    config = httpx.get(f"{dispatching.url}/.well-known/openid-configuration").json()
    key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(tokens[0])
    claims = jwt.decode(
        tokens[0], key.key, algorithms=["RS256"], audience=f"http://127.0.0.1:{port}", issuer=config["issuer"]
    )
    assert claims["email"] == account


def test_fastapi_async_delayed_route(dispatching: Server) -> None:

    port = free_port()
    path = queue_path(project=PROJECT, location=LOCATION, queue=f"fa-{uuid.uuid4().hex[:10]}")
    delayed = AsyncDelayedRouteBuilder(
        client=lambda: async_emulator_client(host=f"127.0.0.1:{dispatching.grpc_port}"),
        callback_base_url=f"http://127.0.0.1:{port}",
        queue_path=path,
        auto_create_queue=True,
    )
    router = APIRouter(route_class=delayed)
    seen: list[str] = []

    class Payload(BaseModel):
        message: str

    @router.post("/hello")
    async def hello(p: Payload) -> None:
        seen.append(p.message)

    app = FastAPI()
    app.include_router(router)
    served = App(app, port)
    try:

        async def enqueue() -> Any:
            return await hello.delay(p=Payload(message="from async"))

        task = asyncio.run(enqueue())
        assert task.name.startswith(f"{path}/tasks/")
        eventually(lambda: seen == ["from async"])
    finally:
        served.stop()
