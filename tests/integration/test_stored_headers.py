"""The headers a created task stores (what the caller sent plus what production adds), in every
view and version, and that those are the headers its attempts carry; the URL error wordings."""

from __future__ import annotations

import asyncio
import base64
import importlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from google.api_core import exceptions

from tasksd.model.names import QueueName
from tasksd.model.queue import HttpMethod, Queue
from tasksd.model.task import AppEngineHttpRequest, HttpRequest, Task
from tasksd.targets.appengine import AppEngineUrls, app_engine_outbound
from tasksd.targets.http import http_outbound
from tasksd.targets.outbound import History, Outbound
from tasksd.targets.sender import Sender
from tests.integration.conftest import PARENT, Server, discovery_client, versioned_client
from tests.integration.sink import Sink

AE_AGENT = "AppEngine-Google; (+http://code.google.com/appengine)"
HTTP_AGENT = "Google-Cloud-Tasks"
BODY = b'{"seventeen": 17}'
SENT = {"X-Mixed-Case": "preserve-me", "content-type": "application/json"}
SENT_UNTYPED = {"X-Mixed-Case": "preserve-me"}

# What production stores (../shared/golden/headers.json), for BODY.
STORED = {
    ("http", True): {**SENT, "User-Agent": HTTP_AGENT},
    ("http", False): {**SENT_UNTYPED, "User-Agent": HTTP_AGENT},
    ("appengine", True): {**SENT, "User-Agent": AE_AGENT, "Content-Length": str(len(BODY))},
    ("appengine", False): {
        **SENT_UNTYPED,
        "User-Agent": AE_AGENT,
        "Content-Length": str(len(BODY)),
        "Content-Type": "application/octet-stream",
    },
}

CLOUDTASKS_HEADERS = {
    "X-CloudTasks-QueueName",
    "X-CloudTasks-TaskName",
    "X-CloudTasks-TaskRetryCount",
    "X-CloudTasks-TaskExecutionCount",
    "X-CloudTasks-TaskETA",
}
APPENGINE_HEADERS = {
    "X-AppEngine-QueueName",
    "X-AppEngine-TaskName",
    "X-AppEngine-TaskRetryCount",
    "X-AppEngine-TaskExecutionCount",
    "X-AppEngine-TaskETA",
}


def new_queue_name() -> str:
    return f"{PARENT}/queues/sh-{uuid.uuid4().hex[:10]}"


def paused_queue(server: Server) -> str:
    """A push queue whose tasks stay where they are."""
    name = new_queue_name()
    admin = versioned_client(server, "v2", "rest")
    admin.create_queue(parent=PARENT, queue={"name": name})
    admin.pause_queue(name=name)
    return name


def payload(version: str, kind: str, headers: dict[str, str], body: bytes = BODY) -> dict[str, Any]:
    """A task of ``kind`` in ``version``'s field names."""
    if kind == "http":
        return {"http_request": {"url": "https://example.com/hook", "headers": headers, "body": body}}
    url, body_field = ("relative_url", "payload") if version == "v2beta2" else ("relative_uri", "body")
    return {"app_engine_http_request": {url: "/work", "headers": headers, body_field: body}}


def stored_headers(task: Any, kind: str) -> dict[str, str]:
    request = task.http_request if kind == "http" else task.app_engine_http_request
    return dict(request.headers)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.parametrize("version", ["v2", "v2beta3", "v2beta2"])
def test_created_tasks_show_the_added_headers_in_every_view(
    server: Server, version: str, transport: str
) -> None:
    client = versioned_client(server, version, transport)
    view = importlib.import_module(f"google.cloud.tasks_{version}").Task.View
    queue = paused_queue(server)
    for (kind, typed), expected in STORED.items():
        sent = SENT if typed else SENT_UNTYPED
        created = client.create_task(
            request={"parent": queue, "task": payload(version, kind, sent), "response_view": view.FULL}
        )
        basic = client.get_task(request={"name": created.name, "response_view": view.BASIC})
        full = client.get_task(request={"name": created.name, "response_view": view.FULL})
        listed = [t for t in client.list_tasks(request={"parent": queue}) if t.name == created.name]
        for shown in (created, basic, full, *listed):
            assert stored_headers(shown, kind) == expected, (kind, typed, shown.view)
        assert len(listed) == 1


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_caller_user_agent_and_bodiless_tasks(server: Server, transport: str) -> None:
    client = versioned_client(server, "v2", transport)
    queue = paused_queue(server)
    # HTTP targets: the service sets User-Agent, whatever the caller asked for.
    http = client.create_task(parent=queue, task=payload("v2", "http", {"user-agent": "mine", "X-A": "b"}))
    assert dict(http.http_request.headers) == {"User-Agent": HTTP_AGENT, "X-A": "b"}
    # App Engine targets: the service's agent is appended to the caller's, and Content-Length
    # is computed, never the caller's.
    app = client.create_task(
        parent=queue,
        task=payload(
            "v2", "appengine", {"User-Agent": "mine", "Content-Length": "999", "Content-Type": "a/b"}
        ),
    )
    assert dict(app.app_engine_http_request.headers) == {
        "User-Agent": f"mine {AE_AGENT}",
        "Content-Length": str(len(BODY)),
        "Content-Type": "a/b",
    }
    # Without a body an App Engine task gets only its User-Agent; an HTTP task the same as with one.
    bodiless = client.create_task(
        parent=queue, task={"app_engine_http_request": {"relative_uri": "/get", "http_method": "GET"}}
    )
    assert dict(bodiless.app_engine_http_request.headers) == {"User-Agent": AE_AGENT}
    plain = client.create_task(parent=queue, task={"http_request": {"url": "https://example.com/"}})
    assert dict(plain.http_request.headers) == {"User-Agent": HTTP_AGENT}


def test_buffered_tasks_store_the_added_headers(server: Server) -> None:
    queue = new_queue_name()
    client = versioned_client(server, "v2", "rest")
    client.create_queue(
        parent=PARENT,
        queue={"name": queue, "http_target": {"uri_override": {"host": "example.com"}}},
    )
    client.pause_queue(name=queue)
    typed = httpx.post(
        f"{server.url}/v2/{queue}/tasks/typed:buffer",
        json={"body": {"contentType": "application/json", "data": base64.b64encode(b"{}").decode()}},
    )
    untyped = httpx.post(f"{server.url}/v2/{queue}/tasks/untyped:buffer", json={"body": {"data": "eA=="}})
    assert typed.status_code == untyped.status_code == 200, (typed.text, untyped.text)
    full = client.get_task(request={"name": f"{queue}/tasks/typed", "response_view": "FULL"})
    assert dict(full.http_request.headers) == {"Content-Type": "application/json", "User-Agent": HTTP_AGENT}
    full = client.get_task(request={"name": f"{queue}/tasks/untyped", "response_view": "FULL"})
    assert dict(full.http_request.headers) == {"User-Agent": HTTP_AGENT}


def invalid_argument(error: exceptions.GoogleAPICallError) -> str:
    """The message of an INVALID_ARGUMENT error, as the server sent it (REST or gRPC)."""
    response = error.response
    if response is not None and hasattr(response, "json"):  # REST: the google.rpc.Status body
        status = response.json()["error"]
        assert status["status"] == "INVALID_ARGUMENT" and status["code"] == 400
        return str(status["message"])
    assert isinstance(error, exceptions.InvalidArgument)
    return str(error.message)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_url_error_wording(server: Server, transport: str) -> None:
    client = versioned_client(server, "v2", transport)
    queue = paused_queue(server)
    with pytest.raises(exceptions.BadRequest) as empty:
        client.create_task(parent=queue, task={"http_request": {"url": ""}})
    assert invalid_argument(empty.value) == "HttpRequest.url is required."
    for url in ("example.com/x", "ftp://example.com/x", "//example.com/x"):
        with pytest.raises(exceptions.BadRequest) as scheme:
            client.create_task(parent=queue, task={"http_request": {"url": url}})
        assert invalid_argument(scheme.value) == "HttpTarget.url must start with 'http://' or 'https://'.", (
            url
        )
    escaped = client.create_task(parent=queue, task={"http_request": {"url": "https://example.com/%zz"}})
    assert escaped.http_request.url == "https://example.com/%zz"


# -- dispatch ------------------------------------------------------------------------------


def add_queue(api: Any, **body: Any) -> str:
    name = new_queue_name()
    api.projects().locations().queues().create(parent=PARENT, body={"name": name, **body}).execute()
    return name


def add_task(api: Any, queue: str, task: dict[str, Any]) -> dict[str, Any]:
    created = api.projects().locations().queues().tasks().create(parent=queue, body={"task": task}).execute()
    return cast(dict[str, Any], created)


def received_one(sink: Sink, path: str) -> dict[str, str]:
    sink.wait(lambda: len(sink.on(path)) >= 1)
    return sink.on(path)[0].headers


def test_http_target_gets_exactly_the_task_headers(dispatching: Server, sink: Sink) -> None:
    api = discovery_client(dispatching.url)
    queue = add_queue(api, httpTarget={})
    cases = {
        "/sh/untyped": ({"X-Mixed-Case": "preserve-me"}, b"body", "POST", {}),
        "/sh/typed": ({"X-Mixed-Case": "preserve-me", "content-type": "application/json"}, b"{}", "POST", {}),
        "/sh/empty": ({}, b"", "POST", {}),
        "/sh/get": ({}, b"", "GET", {}),
        "/sh/agent": ({"user-agent": "mine"}, b"x", "PUT", {}),
        "/sh/oidc": (
            {},
            b"x",
            "POST",
            {"oidcToken": {"serviceAccountEmail": "sa@p.iam.gserviceaccount.com"}},
        ),
    }
    stored = {}
    for path, (headers, body, method, extra) in cases.items():
        request = {
            "url": sink.url + path,
            "httpMethod": method,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
            **extra,
        }
        stored[path] = add_task(api, queue, {"httpRequest": request})["httpRequest"]["headers"]
    for path, (headers, body, _, extra) in cases.items():
        got = received_one(sink, path)
        assert stored[path] == {
            **{k: v for k, v in headers.items() if k != "user-agent"},
            "User-Agent": HTTP_AGENT,
        }
        expected = set(stored[path]) | CLOUDTASKS_HEADERS | {"Host"}
        if body or path == "/sh/empty":
            expected.add("Content-Length")  # computed for a POST, 0 without a body
        if extra:
            expected.add("Authorization")
        assert set(got) == expected, path
        assert all(got[k] == v for k, v in stored[path].items()), path
        assert not {"accept", "accept-encoding"} & {k.lower() for k in got}


def test_queue_header_overrides_apply_at_dispatch_only(dispatching: Server, sink: Sink) -> None:
    api = discovery_client(dispatching.url)
    queue = add_queue(
        api,
        httpTarget={
            "headerOverrides": [
                {"header": {"key": "X-Team", "value": "blue"}},
                {"header": {"key": "User-Agent", "value": "override"}},
            ]
        },
    )
    created = add_task(
        api, queue, {"httpRequest": {"url": sink.url + "/sh/override", "headers": {"x-team": "red"}}}
    )
    assert created["httpRequest"]["headers"] == {"x-team": "red", "User-Agent": HTTP_AGENT}
    got = received_one(sink, "/sh/override")
    assert got["X-Team"] == "blue" and "x-team" not in got and got["User-Agent"] == HTTP_AGENT
    assert "Content-Type" not in got and "Accept" not in got and "Accept-Encoding" not in got


def test_app_engine_attempts_carry_the_stored_headers(dispatching: Server, sink: Sink) -> None:
    api = discovery_client(dispatching.url)
    queue = add_queue(api, appEngineHttpTarget={})
    cases = {
        "/sh/ae-default": {"X-Mixed-Case": "preserve-me"},
        "/sh/ae-agent": {"User-Agent": "me"},
        "/sh/ae-typed": {"content-type": "text/plain"},
    }
    stored = {}
    for path, headers in cases.items():
        request = {"relativeUrl": path, "headers": headers, "payload": base64.b64encode(BODY).decode()}
        stored[path] = add_task(api, queue, {"appEngineHttpRequest": request})["appEngineHttpRequest"][
            "headers"
        ]
    assert stored["/sh/ae-default"]["Content-Type"] == "application/octet-stream"
    assert stored["/sh/ae-agent"]["User-Agent"] == f"me {AE_AGENT}"
    assert (
        stored["/sh/ae-typed"]["content-type"] == "text/plain"
        and "Content-Type" not in stored["/sh/ae-typed"]
    )
    for path in cases:
        got = received_one(sink, path)
        assert set(got) == set(stored[path]) | APPENGINE_HEADERS | {"Host"}, path
        assert all(got[k] == v for k, v in stored[path].items()), path
    assert received_one(sink, "/sh/ae-default")["User-Agent"] == AE_AGENT
    assert received_one(sink, "/sh/ae-agent")["User-Agent"] == f"me {AE_AGENT}"


# -- tasks stored before tasks held these headers ---------------------------------------------

QUEUE = QueueName("p", "l", "q")


def history() -> History:
    return History("q", "t", 0, 0, datetime.now(UTC), None)


def test_dispatch_of_tasks_without_stored_headers_and_with_them() -> None:
    """A task stored before tasksd stored these headers still gets the documented User-Agent
    (and App Engine Content-Type); one that holds them is sent them once."""
    urls = AppEngineUrls("http://127.0.0.1:9")

    def app_engine(headers: dict[str, str]) -> list[tuple[str, str]]:
        request = AppEngineHttpRequest(HttpMethod.POST, relative_url="/", headers=headers, body=b"x")
        task = Task(name=QUEUE.task("t"), payload=request, schedule_time=datetime.now(UTC))
        return app_engine_outbound(task, Queue(QUEUE), history(), urls).headers

    def http(headers: dict[str, str]) -> list[tuple[str, str]]:
        task = Task(name=QUEUE.task("t"), payload=HttpRequest("http://h/", HttpMethod.POST, headers, b"x"))
        return http_outbound(task, Queue(QUEUE), history(), cast(Any, None)).headers

    legacy, current = app_engine({"User-Agent": "me"}), app_engine({"User-Agent": f"me {AE_AGENT}"})
    for sent in (legacy, current):
        assert [v for k, v in sent if k == "User-Agent"] == [f"me {AE_AGENT}"]
        assert [v for k, v in sent if k.lower() == "content-type"] == ["application/octet-stream"]
    assert [v for k, v in app_engine({}) if k == "User-Agent"] == [AE_AGENT]
    for stored in ({}, {"User-Agent": HTTP_AGENT}, {"user-agent": "mine"}):
        assert [v for k, v in http(stored) if k.lower() == "user-agent"] == [HTTP_AGENT]


def test_sender_adds_no_header_of_its_own(sink: Sink) -> None:
    """aiohttp adds Accept, Accept-Encoding, User-Agent and a Content-Type for bytes; the
    sender adds none of them."""

    async def send() -> None:
        sender = Sender()
        try:
            request = Outbound("POST", sink.url + "/sh/sender", [("X-Only", "1")], b"data", True)
            reply = await sender.send(request, deadline_s=5)
            assert reply.status == 200
        finally:
            await sender.close()

    asyncio.run(send())
    deadline = time.monotonic() + 5
    while not sink.on("/sh/sender") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(sink.on("/sh/sender")[0].headers) == {"Host", "Content-Length", "X-Only"}
