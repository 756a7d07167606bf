"""No input gets a 5xx (other than UNIMPLEMENTED) or a traceback: random JSON bodies and
query parameters, with keys mostly taken from the API's own field names, sent to every kind
of REST route of every version."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import PARENT, Server

FIELDS = [
    "name",
    "task",
    "queue",
    "pullMessage",
    "httpRequest",
    "appEngineHttpRequest",
    "url",
    "payload",
    "body",
    "scheduleTime",
    "rateLimits",
    "retryConfig",
    "maxAttempts",
    "unlimitedAttempts",
    "minBackoff",
    "maxTasksDispatchedPerSecond",
    "maxDispatchesPerSecond",
    "leaseDuration",
    "maxTasks",
    "filter",
    "responseView",
    "policy",
    "bindings",
    "members",
    "role",
    "etag",
    "version",
    "permissions",
    "httpTarget",
    "uriOverride",
    "host",
    "port",
    "headers",
    "headerOverrides",
    "oidcToken",
    "oauthToken",
    "tag",
    "relativeUrl",
    "relativeUri",
    "appEngineRouting",
    "taskTtl",
    "tombstoneTtl",
    "type",
    "dispatchDeadline",
    "pageSize",
    "pageToken",
    "readMask",
    "updateMask",
    "contentType",
    "data",
    "state",
]
keys = st.sampled_from(FIELDS) | st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "10s",
            "-1s",
            "1e9s",
            "2030-01-01T00:00:00Z",
            "yesterday",
            "POST",
            "PULL",
            "aGk=",
            "tag=x",
            "tag_function=oldest_tag()",
            "http://x",
            "projects/p",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(keys, json_values, max_size=5)
queries = st.dictionaries(
    st.sampled_from([*FIELDS, "$alt", "alt", "fields", "x"]), st.text(max_size=12), max_size=3
)


@pytest.fixture(scope="module")
def targets(server: Server) -> dict[str, str]:
    pull = f"{PARENT}/queues/fuzz-pull-{uuid.uuid4().hex[:6]}"
    push = f"{PARENT}/queues/fuzz-push-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=server.url) as client:
        client.post(f"/v2beta2/{PARENT}/queues", json={"name": pull, "pullTarget": {}}).raise_for_status()
        client.post(
            f"/v2beta2/{PARENT}/queues", json={"name": push, "appEngineHttpTarget": {}}
        ).raise_for_status()
        client.post(f"/v2beta2/{push}:pause", json={}).raise_for_status()
    return {"pull": pull, "push": push}


ROUTES = [
    ("POST", "{v}/{PARENT}/queues"),
    ("PATCH", "{v}/{push}"),
    ("GET", "{v}/{PARENT}/queues"),
    ("GET", "{v}/{push}"),
    ("POST", "{v}/{push}/tasks"),
    ("POST", "{v}/{pull}/tasks"),
    ("GET", "{v}/{pull}/tasks"),
    ("POST", "{v}/{push}:setIamPolicy"),
    ("POST", "{v}/{push}:testIamPermissions"),
    ("POST", "{v}/{push}/tasks:buffer"),
    ("POST", "{v}/{pull}/tasks:lease"),
    ("POST", "{v}/{pull}/tasks/t1:acknowledge"),
    ("POST", "{v}/{pull}/tasks/t1:run"),
    ("GET", "{v}/projects/p/locations"),
]


def check(reply: httpx.Response) -> None:
    assert reply.status_code < 500 or reply.status_code == 501, reply.text
    assert "Traceback" not in reply.text
    if reply.status_code >= 400:
        error = reply.json()["error"]
        assert error["code"] == reply.status_code and error["message"] and error["status"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    version=st.sampled_from(["v2beta2", "v2beta3", "v2"]),
    body=bodies,
    query=queries,
)
def test_random_requests_never_fail_the_server(
    server: Server,
    targets: dict[str, str],
    route: tuple[str, str],
    version: str,
    body: dict[str, Any],
    query: dict[str, str],
) -> None:
    method, template = route
    path = "/" + template.format(v=version, PARENT=PARENT, **targets)
    content = json.dumps(body).encode() if method != "GET" else None
    check(httpx.request(method, server.url + path, params=query, content=content, timeout=30))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(st.binary(max_size=80) | st.text(max_size=80).map(str.encode), max_size=4),
    boundary=st.sampled_from(["b", "xyz", ""]),
)
def test_random_batches_never_fail_the_server(server: Server, parts: list[bytes], boundary: str) -> None:
    body = (
        b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
        + f"--{boundary}--".encode()
    )
    reply = httpx.post(
        f"{server.url}/batch",
        content=body,
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        timeout=30,
    )
    assert reply.status_code in (200, 400), reply.text
