"""The standard parameters' parsing: fields selectors, their check against the response
type, and the value rules of alt, $.xgafv, prettyPrint and callback."""

from __future__ import annotations

import pytest
from google.cloud.tasks_v2beta2.types import cloudtasks, queue, task

from tasksd.api.rest.standard_params import parse, parse_selector, select
from tasksd.model.errors import InvalidArgument, NotFound

QUEUE_TYPE = queue.Queue.pb()
LIST_TASKS = cloudtasks.ListTasksResponse.pb()
TASK = task.Task.pb()


def test_selector_grammar() -> None:
    assert parse_selector("tasks(name,scheduleTime),nextPageToken") == {
        "tasks": {"name": None, "scheduleTime": None},
        "nextPageToken": None,
    }
    assert parse_selector("a/b/c, a/d") == {"a": {"b": {"c": None}, "d": None}}
    assert parse_selector("a/b,a") == {"a": None}
    assert parse_selector("a(b(c)),*") == {"a": {"b": {"c": None}}, "*": None}


@pytest.mark.parametrize("text", ["a(", "a,,b", "a)", "(a)", "a/", "a b", "a(b))", "a-b", ",", "a()"])
def test_malformed_selectors(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_selector(text)


def test_select() -> None:
    document = {
        "tasks": [{"name": "n", "view": "BASIC", "status": {"attemptDispatchCount": 1}}],
        "nextPageToken": "p",
    }
    assert select(document, parse_selector("tasks(name)")) == {"tasks": [{"name": "n"}]}
    assert select(document, parse_selector("tasks/status/attemptDispatchCount,nextPageToken")) == {
        "tasks": [{"status": {"attemptDispatchCount": 1}}],
        "nextPageToken": "p",
    }
    assert select(document, parse_selector("*")) == document
    assert select(document, parse_selector("tasks(*)")) == {"tasks": document["tasks"]}
    assert select(document, parse_selector("tasks/missing")) == {"tasks": [{}]}


def test_selectors_are_checked_against_the_response_type() -> None:
    system = {"fields": "tasks(name,scheduleTime,pullMessage/payload),nextPageToken"}
    assert parse(system, False, LIST_TASKS).selector is not None
    parse({"fields": "appEngineHttpRequest/headers/anything,name"}, False, TASK)  # a map: any key
    for bad in ("tasks(nope)", "nextPageToken/x", "tasks/scheduleTime/seconds", "*/nope"):
        with pytest.raises(InvalidArgument):
            parse({"fields": bad}, False, LIST_TASKS)


@pytest.mark.parametrize(
    "system",
    [
        {"alt": "media"},
        {"alt": "xml"},
        {"$.xgafv": "3"},
        {"prettyPrint": "maybe"},
        {"callback": "a(1)"},
        {"callback": "a..b"},
        {"callback": "ok", "alt": "proto"},
    ],
)
def test_bad_values(system: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        parse(system, False, QUEUE_TYPE)


def test_rendering() -> None:
    message = QUEUE_TYPE(name="projects/p/locations/l/queues/q", state=1)
    assert (
        parse({"fields": "name"}, False, QUEUE_TYPE).reply(message)
        == b'{"name":"projects/p/locations/l/queues/q"}'
    )
    assert parse({"fields": "state"}, True, QUEUE_TYPE).reply(message) == b'{"state":1}'
    assert parse({"prettyPrint": "true"}, False, QUEUE_TYPE).reply(message).startswith(b'{\n  "name"')
    assert parse({"alt": "proto"}, False, QUEUE_TYPE).reply(message) == message.SerializeToString()
    assert parse({"callback": "f"}, False, QUEUE_TYPE).reply(message).startswith(b"// API callback\nf({")
    assert parse({"fields": "name"}, False, TASK).reply(TASK()) == b"{}"


def test_error_formats() -> None:
    error = NotFound("gone")
    status, body = parse({"$.xgafv": "1", "fields": "name"}, False, QUEUE_TYPE).error(error)
    assert status == 404
    assert body == (
        b'{"error":{"code":404,"message":"gone","errors":[{"message":"gone","domain":"global",'
        b'"reason":"notFound"}],"status":"NOT_FOUND"}}'
    )
    status, body = parse({"$.xgafv": "2", "fields": "name"}, False, QUEUE_TYPE).error(error)
    assert (status, body) == (404, b'{"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}}')
