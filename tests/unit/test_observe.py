"""The pieces of metrics and logs that need no server: how an attempt's end is classified,
the queue gauges' bookkeeping, and the JSON line format."""

from __future__ import annotations

import json
import logging

from tasksd.engine.dispatcher import attempt_outcome
from tasksd.observe.logs import ACCESS, JsonFormatter
from tasksd.observe.metrics import OUTCOMES, Metrics
from tasksd.targets.sender import Reply


def test_attempt_outcomes() -> None:
    cases = {
        Reply(200, "OK"): "2xx",
        Reply(204, ""): "2xx",
        Reply(302, "Found"): "4xx",
        Reply(404, "Not Found"): "4xx",
        Reply(429, "Too Many"): "4xx",
        Reply(500, "Oops"): "5xx",
        Reply(503, "Busy"): "5xx",
        Reply(0, "No response within the dispatch deadline (15s)."): "timeout",
        Reply(0, "ClientConnectorError: Cannot connect"): "connection_error",
        Reply(0, "169.254.169.254 is not an allowed target", refused=True): "connection_error",
    }
    assert {reply: attempt_outcome(reply) for reply in cases} == cases
    assert set(cases.values()) == set(OUTCOMES)


def test_queue_gauges_drop_queues_no_longer_reported() -> None:
    metrics = Metrics()
    metrics.set_queues(
        {"projects/p/locations/l/queues/a": (3, 1.5), "projects/p/locations/l/queues/b": (0, 0.0)}
    )
    metrics.set_queues({"projects/p/locations/l/queues/b": (2, 4.0)})
    text = metrics.render().decode()
    assert 'tasksd_queue_tasks{queue="projects/p/locations/l/queues/b"} 2.0' in text
    assert 'tasksd_queue_oldest_task_age_seconds{queue="projects/p/locations/l/queues/b"} 4.0' in text
    assert "queues/a" not in text


def test_json_lines() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("tasksd.x", logging.WARNING, __file__, 1, "hello %s", ("there",), None)
    line = json.loads(formatter.format(record))
    assert line["level"] == "WARNING" and line["message"] == "hello there" and line["logger"] == "tasksd.x"
    assert line["time"].endswith("Z") and "T" in line["time"]
    access = logging.LogRecord(ACCESS.name, logging.INFO, __file__, 1, "GetQueue", (), None)
    access.__dict__.update(method="GetQueue", transport="grpc", resource="r", code="OK", latency_ms=1.5)
    line = json.loads(formatter.format(access))
    assert {k: line[k] for k in ("method", "transport", "resource", "code", "latency_ms", "principal")} == {
        "method": "GetQueue",
        "transport": "grpc",
        "resource": "r",
        "code": "OK",
        "latency_ms": 1.5,
        "principal": None,
    }
