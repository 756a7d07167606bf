"""Push dispatch to real local HTTP handlers: headers, tokens, overrides, retries, limits."""

from __future__ import annotations

import base64
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from google.api_core import exceptions
from googleapiclient.errors import HttpError

from tests.integration.conftest import PARENT, Server, discovery_client, gapic_client
from tests.integration.sink import Answer, Sink

FAST_RETRY = {"minBackoff": "0.1s", "maxBackoff": "0.4s", "maxDoublings": 2}


@pytest.fixture
def api(dispatching: Server) -> Any:
    return discovery_client(dispatching.url)


def new_queue(api: Any, **body: Any) -> str:
    name = f"{PARENT}/queues/d-{uuid.uuid4().hex[:10]}"
    api.projects().locations().queues().create(parent=PARENT, body={"name": name, **body}).execute()
    return name


def add_task(api: Any, queue: str, task: dict[str, Any]) -> dict[str, Any]:
    return api.projects().locations().queues().tasks().create(parent=queue, body={"task": task}).execute()  # type: ignore[no-any-return]


def unique_path() -> str:
    return f"/h/{uuid.uuid4().hex[:10]}"


def test_http_target_headers_over_503_404_200(api: Any, sink: Sink) -> None:
    path = unique_path()
    sink.script(path, 503, 404, 200)
    queue = new_queue(api, httpTarget={}, retryConfig=FAST_RETRY)
    task = add_task(
        api,
        queue,
        {
            "name": f"{queue}/tasks/hdr",
            "httpRequest": {
                "url": sink.url + path,
                "body": base64.b64encode(b"hello").decode(),
                "headers": {"X-Mine": "1"},
            },
        },
    )
    sink.wait(lambda: len(sink.on(path)) == 3)
    seen = [r.headers for r in sink.on(path)]
    assert [h["X-CloudTasks-TaskRetryCount"] for h in seen] == ["0", "1", "2"]
    assert [h["X-CloudTasks-TaskExecutionCount"] for h in seen] == ["0", "0", "1"]
    assert [h.get("X-CloudTasks-TaskPreviousResponse") for h in seen] == [None, "503", "404"]
    assert [h.get("X-CloudTasks-TaskRetryReason") for h in seen] == [None, "", ""]
    assert all(h["X-CloudTasks-QueueName"] == queue.rsplit("/", 1)[1] for h in seen)
    assert all(h["X-CloudTasks-TaskName"] == "hdr" for h in seen)
    assert all(h["User-Agent"] == "Google-Cloud-Tasks" and h["X-Mine"] == "1" for h in seen)
    eta = float(seen[0]["X-CloudTasks-TaskETA"])
    assert abs(eta - time.time()) < 60 and "." in seen[0]["X-CloudTasks-TaskETA"]
    assert sink.on(path)[0].body == b"hello"
    tasks = api.projects().locations().queues().tasks()
    for _ in range(100):  # the success is recorded just after the handler answered
        try:
            tasks.get(name=task["name"]).execute()
        except HttpError as error:
            assert error.status_code == 404 and "existed recently" in error.reason
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the task was not deleted after its success")


def test_app_engine_headers_over_503_404_200(api: Any, sink: Sink) -> None:
    path = unique_path()
    sink.script(path, 503, 404, 200)
    queue = new_queue(
        api,
        appEngineHttpTarget={"appEngineRoutingOverride": {"service": "worker", "version": "v1"}},
        retryConfig=FAST_RETRY,
    )
    add_task(
        api,
        queue,
        {
            "name": f"{queue}/tasks/ae",
            "appEngineHttpRequest": {
                "relativeUrl": path + "?x=1",
                "payload": base64.b64encode(b"data").decode(),
                "headers": {"User-Agent": "me"},
            },
        },
    )
    sink.wait(lambda: len(sink.on(path)) == 3)
    seen = [r.headers for r in sink.on(path)]
    assert [h["X-AppEngine-TaskRetryCount"] for h in seen] == ["0", "1", "2"]
    assert [h["X-AppEngine-TaskExecutionCount"] for h in seen] == ["0", "1", "2"]
    assert [h.get("X-AppEngine-TaskPreviousResponse") for h in seen] == [None, "503", "404"]
    assert [h.get("X-AppEngine-TaskRetryReason") for h in seen] == [None, "App Error", "App Error"]
    assert all(
        h["X-AppEngine-QueueName"] == queue.rsplit("/", 1)[1] and h["X-AppEngine-TaskName"] == "ae"
        for h in seen
    )
    assert seen[0]["Host"] == "v1.worker.test-project.appspot.com"
    assert seen[0]["User-Agent"] == "me AppEngine-Google; (+http://code.google.com/appengine)"
    assert seen[0]["Content-Type"] == "application/octet-stream"
    assert sink.on(path)[0].path == path + "?x=1" and sink.on(path)[0].method == "POST"


def test_oidc_token_verifies_against_published_jwks(api: Any, sink: Sink, dispatching: Server) -> None:
    path = unique_path()
    queue = new_queue(api, httpTarget={})
    add_task(
        api,
        queue,
        {
            "httpRequest": {
                "url": sink.url + path,
                "oidcToken": {
                    "serviceAccountEmail": "runner@p.iam.gserviceaccount.com",
                    "audience": "https://my-service",
                },
            }
        },
    )
    sink.wait(lambda: len(sink.on(path)) == 1)
    token = sink.on(path)[0].headers["Authorization"].removeprefix("Bearer ")
    config = httpx.get(f"{dispatching.url}/.well-known/openid-configuration").json()
    key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="https://my-service", issuer=config["issuer"]
    )
    assert claims["email"] == claims["sub"] == "runner@p.iam.gserviceaccount.com"
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience="https://someone-else")


def test_oauth_token_can_be_introspected(api: Any, sink: Sink, dispatching: Server) -> None:
    path = unique_path()
    queue = new_queue(
        api,
        httpTarget={
            "oauthToken": {
                "serviceAccountEmail": "q@p.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/pubsub",
            }
        },
    )
    add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
    sink.wait(lambda: len(sink.on(path)) == 1)
    token = sink.on(path)[0].headers["Authorization"].removeprefix("Bearer ")
    info = httpx.get(f"{dispatching.url}/oauth2/v3/tokeninfo", params={"access_token": token}).json()
    assert info["email"] == "q@p.iam.gserviceaccount.com" and info["scope"].endswith("/pubsub")
    assert (
        httpx.get(f"{dispatching.url}/oauth2/v3/tokeninfo", params={"access_token": "forged"}).status_code
        == 400
    )


def test_uri_and_header_overrides(api: Any, sink: Sink) -> None:
    path = unique_path()
    port = int(sink.url.rsplit(":", 1)[1])
    queue = new_queue(
        api,
        httpTarget={
            "uriOverride": {
                "scheme": "HTTP",
                "host": "127.0.0.1",
                "port": str(port),
                "pathOverride": {"path": path},
                "queryOverride": {"queryParams": "from=queue"},
            },
            "headerOverrides": [{"header": {"key": "X-Team", "value": "blue"}}],
            "httpMethod": "PUT",
        },
    )
    add_task(
        api,
        queue,
        {
            "httpRequest": {
                "url": "https://elsewhere.invalid:9/old?x=1",
                "headers": {"x-team": "red"},
                "body": "Ym9keQ==",
            }
        },
    )
    sink.wait(lambda: len(sink.on(path)) == 1)
    got = sink.on(path)[0]
    assert got.path == path + "?from=queue" and got.method == "PUT" and got.body == b"body"
    assert got.headers["X-Team"] == "blue" and "x-team" not in {k for k in got.headers if k != "X-Team"}


def test_redirects_http_follows_app_engine_does_not(api: Any, sink: Sink) -> None:
    start, final = unique_path(), unique_path()
    sink.script(start, Answer(302, {"Location": final}))
    sink.script(final, 200)
    queue = new_queue(api, httpTarget={}, retryConfig=FAST_RETRY)
    add_task(api, queue, {"httpRequest": {"url": sink.url + start}})
    sink.wait(lambda: len(sink.on(final)) == 1)
    time.sleep(0.5)
    assert len(sink.on(start)) == 1  # followed, and not counted as another attempt

    ae_start, ae_final = unique_path(), unique_path()
    sink.script(ae_start, Answer(302, {"Location": ae_final}), 200)
    ae_queue = new_queue(api, appEngineHttpTarget={}, retryConfig=FAST_RETRY)
    add_task(api, ae_queue, {"appEngineHttpRequest": {"relativeUrl": ae_start}})
    sink.wait(lambda: len(sink.on(ae_start)) == 2)  # the 302 failed the attempt; the retry got 200
    assert sink.on(ae_final) == []


def test_retry_after_is_honoured(api: Any, sink: Sink) -> None:
    path = unique_path()
    sink.script(path, Answer(429, {"Retry-After": "1"}), 200)
    queue = new_queue(api, httpTarget={}, retryConfig=FAST_RETRY)
    add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
    sink.wait(lambda: len(sink.on(path)) == 2)
    first, second = sink.on(path)
    assert second.at - first.at >= 0.95


def test_pause_resume_purge(api: Any, sink: Sink) -> None:
    path = unique_path()
    queue = new_queue(api, httpTarget={})
    queues = api.projects().locations().queues()
    queues.pause(name=queue, body={}).execute()
    add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
    time.sleep(1.5)
    assert sink.on(path) == []  # tasks can be added, but are not dispatched, while paused
    queues.resume(name=queue, body={}).execute()
    sink.wait(lambda: len(sink.on(path)) == 1)

    later = unique_path()
    queues.pause(name=queue, body={}).execute()
    add_task(api, queue, {"httpRequest": {"url": sink.url + later}})
    queues.purge(name=queue, body={}).execute()
    queues.resume(name=queue, body={}).execute()
    time.sleep(1.5)
    assert sink.on(later) == []


def test_pause_and_purge_while_dispatching(api: Any, sink: Sink) -> None:
    """One attempt at a time to a slow handler: pausing mid-way lets the attempt in flight end
    and sends nothing more until resumed; purging mid-way sends none of the purged tasks."""
    queues = api.projects().locations().queues()

    def dispatching_slowly(path: str) -> str:
        """A queue sending four tasks to ``path`` one at a time, the first already sent."""
        sink.script(path, *[Answer(200, delay_s=0.4)] * 4)
        queue = new_queue(api, httpTarget={}, rateLimits={"maxConcurrentTasks": 1})
        for _ in range(4):
            add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
        sink.wait(lambda: len(sink.on(path)) == 1)
        return queue

    paused = unique_path()
    queue = dispatching_slowly(paused)
    queues.pause(name=queue, body={}).execute()
    time.sleep(1.5)
    assert len(sink.on(paused)) <= 2  # the attempt in flight, and one claimed as the pause came
    queues.resume(name=queue, body={}).execute()
    sink.wait(lambda: len(sink.on(paused)) == 4)

    purged = unique_path()
    queue = dispatching_slowly(purged)
    queues.purge(name=queue, body={}).execute()
    time.sleep(1.5)
    assert len(sink.on(purged)) <= 2
    assert queues.tasks().list(parent=queue).execute().get("tasks", []) == []


def test_run_task(api: Any, sink: Sink, dispatching: Server) -> None:
    path = unique_path()
    queue = new_queue(api, httpTarget={})
    api.projects().locations().queues().pause(name=queue, body={}).execute()
    task = add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
    run = gapic_client(dispatching.url).run_task(name=task["name"])
    assert run.status.attempt_dispatch_count == 1 and run.status.first_attempt_status.dispatch_time
    sink.wait(lambda: len(sink.on(path)) == 1)
    with pytest.raises(exceptions.NotFound):
        gapic_client(dispatching.url).run_task(name=f"{queue}/tasks/never-made")
    pull = new_queue(api, pullTarget={})
    pulled = add_task(api, pull, {"pullMessage": {}})
    with pytest.raises(exceptions.BadRequest) as info:
        gapic_client(dispatching.url).run_task(name=pulled["name"])
    assert "pull task" in info.value.message


def test_concurrency_and_rate_limits(api: Any, sink: Sink) -> None:
    path = unique_path()
    sink.script(path, Answer(200, delay_s=0.3))
    before = sink.peak
    queue = new_queue(
        api, httpTarget={}, rateLimits={"maxTasksDispatchedPerSecond": 20, "maxConcurrentTasks": 2}
    )
    for _ in range(8):
        add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
    sink.wait(lambda: len(sink.on(path)) == 8)
    assert max(before, 2) >= sink.peak  # never more than 2 at once on this queue

    slow = unique_path()
    queue = new_queue(api, httpTarget={}, rateLimits={"maxTasksDispatchedPerSecond": 5, "maxBurstSize": 1})
    for _ in range(6):
        add_task(api, queue, {"httpRequest": {"url": sink.url + slow}})
    sink.wait(lambda: len(sink.on(slow)) == 6)
    times = [r.at for r in sink.on(slow)]
    assert times[-1] - times[0] >= 0.9  # 6 dispatches at 5/s with a burst of 1 need ≥ 1 s


def test_attempt_status_is_recorded(api: Any, sink: Sink, dispatching: Server) -> None:
    path = unique_path()
    sink.script(path, 500, Answer(200, delay_s=30))
    queue = new_queue(api, httpTarget={}, retryConfig={"minBackoff": "1s", "maxBackoff": "1s"})
    task = add_task(api, queue, {"httpRequest": {"url": sink.url + path}})
    sink.wait(lambda: len(sink.on(path)) == 2)
    got = gapic_client(dispatching.url).get_task(name=task["name"])
    assert got.status.attempt_dispatch_count == 2 and got.status.attempt_response_count == 1
    assert got.status.first_attempt_status.dispatch_time
    assert got.status.last_attempt_status.dispatch_time > got.status.first_attempt_status.dispatch_time


def test_kill_9_mid_dispatch_loses_nothing(sink: Sink, tmp_path: Path) -> None:
    path = unique_path()
    sink.script(path, Answer(200, delay_s=2))
    server = Server(f"sqlite:///{tmp_path / 'crash.db'}", extra=["--app-engine-url", sink.url]).start()
    api = discovery_client(server.url)
    queue = new_queue(api, httpTarget={})
    names = {
        add_task(api, queue, {"name": f"{queue}/tasks/k{i}", "httpRequest": {"url": sink.url + path}})["name"]
        for i in range(10)
    }
    sink.wait(lambda: len(sink.on(path)) >= 5)  # attempts are in flight (the handler is slow)
    server.stop(signal.SIGKILL)
    sink.script(path, 200)
    server.start()
    api = discovery_client(server.url)
    tasks = api.projects().locations().queues().tasks()

    def all_done() -> bool:
        return tasks.list(parent=queue).execute() == {}

    sink.wait(all_done, timeout_s=30)
    delivered = {r.headers["X-CloudTasks-TaskName"] for r in sink.on(path)}
    assert {n.rsplit("/", 1)[1] for n in names} <= delivered  # every task reached its handler
    server.stop()


def test_buffer_creates_http_tasks(api: Any, sink: Sink, dispatching: Server) -> None:
    path = unique_path()
    port = int(sink.url.rsplit(":", 1)[1])
    queue = new_queue(
        api,
        httpTarget={
            "uriOverride": {
                "scheme": "HTTP",
                "host": "127.0.0.1",
                "port": str(port),
                "pathOverride": {"path": path},
            }
        },
    )
    tasks = api.projects().locations().queues().tasks()
    named = tasks.buffer(
        queue=queue,
        taskId="buf1",
        body={"body": {"contentType": "application/json", "data": base64.b64encode(b'{"a":1}').decode()}},
    ).execute()
    assert named["task"]["name"] == f"{queue}/tasks/buf1"
    auto = httpx.post(f"{dispatching.url}/v2beta2/{queue}/tasks:buffer", json={"body": {"data": "eA=="}})
    assert auto.status_code == 200 and auto.json()["task"]["name"].startswith(f"{queue}/tasks/")
    sink.wait(lambda: len(sink.on(path)) == 2)
    bodies = sorted(r.body for r in sink.on(path))
    assert bodies == [b"x", b'{"a":1}']
    assert any(r.headers.get("Content-Type") == "application/json" for r in sink.on(path))
    plain = new_queue(api, httpTarget={})
    with pytest.raises(HttpError) as info:
        tasks.buffer(queue=plain, taskId="x", body={"body": {"data": "eA=="}}).execute()
    assert info.value.status_code == 400 and "uri_override" in info.value.reason


def test_app_engine_service_urls_from_config(sink: Sink, tmp_path: Path) -> None:
    config = tmp_path / "tasksd.yaml"
    config.write_text(
        f"app_engine_url: http://127.0.0.1:9\napp_engine_services:\n  mailer: {sink.url}/mailer-base\n"
    )
    server = Server(f"sqlite:///{tmp_path / 'svc.db'}", config=config).start()
    try:
        api = discovery_client(server.url)
        queue = new_queue(api, appEngineHttpTarget={"appEngineRoutingOverride": {"service": "mailer"}})
        add_task(api, queue, {"appEngineHttpRequest": {"relativeUrl": "/send"}})
        sink.wait(lambda: len(sink.on("/mailer-base/send")) == 1)
        assert sink.on("/mailer-base/send")[0].headers["Host"] == "mailer.test-project.appspot.com"
    finally:
        server.stop()
