"""Queue statistics (``readMask=stats``) from what dispatch really did, through the clients."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import PARENT, Server, discovery_client, versioned_client
from tests.integration.sink import Answer, Sink
from tests.postgres import PostgresServer

SLOW_RETRY = {"minBackoff": "60s", "maxBackoff": "60s"}


@pytest.fixture
def api(dispatching: Server) -> Any:
    return discovery_client(dispatching.url)


@pytest.fixture(params=["rest", "grpc"])
def v2(dispatching: Server, request: pytest.FixtureRequest) -> Any:
    """google-cloud-tasks v2beta3: the v2 API has no QueueStats (GetQueueRequest has no
    read_mask there), so v2beta3 is the GA-shaped client that reads them."""
    return versioned_client(dispatching, "v2beta3", request.param)


def new_queue(api: Any, **body: Any) -> str:
    name = f"{PARENT}/queues/s-{uuid.uuid4().hex[:10]}"
    api.projects().locations().queues().create(parent=PARENT, body={"name": name, **body}).execute()
    return name


def add_task(api: Any, queue: str, url: str) -> None:
    api.projects().locations().queues().tasks().create(
        parent=queue, body={"task": {"httpRequest": {"url": url}}}
    ).execute()


def v2_stats(v2: Any, queue: str) -> Any:
    return v2.get_queue(request={"name": queue, "read_mask": {"paths": ["stats"]}}).stats


def rest_stats(api: Any, queue: str) -> dict[str, Any]:
    got = api.projects().locations().queues().get(name=queue, readMask="stats").execute()
    return got.get("stats", {})  # type: ignore[no-any-return]


def eventually(test: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        assert time.monotonic() < deadline, "the statistics did not show what was expected in time"
        time.sleep(0.05)


def test_dispatches_in_flight_and_of_the_last_minute(api: Any, v2: Any, sink: Sink) -> None:
    path = f"/s/{uuid.uuid4().hex[:10]}"
    sink.script(path, Answer(200, delay_s=1.5))
    queue = new_queue(
        api, httpTarget={}, rateLimits={"maxTasksDispatchedPerSecond": 100, "maxConcurrentTasks": 10}
    )
    for _ in range(3):
        add_task(api, queue, sink.url + path)
    sink.wait(lambda: len(sink.on(path)) == 3)
    held = v2_stats(v2, queue)  # the handler holds all three requests
    assert (held.tasks_count, held.concurrent_dispatches_count, held.executed_last_minute_count) == (3, 3, 3)
    rest = rest_stats(api, queue)
    assert rest["concurrentDispatchesCount"] == "3" and rest["executedLastMinuteCount"] == "3"
    assert rest["effectiveExecutionRate"] == 100

    eventually(lambda: v2_stats(v2, queue).tasks_count == 0)
    done = v2_stats(v2, queue)
    assert (done.concurrent_dispatches_count, done.executed_last_minute_count) == (0, 3)
    assert done.effective_execution_rate == 100
    rest = rest_stats(api, queue)
    assert rest.get("concurrentDispatchesCount", "0") == "0" and rest["executedLastMinuteCount"] == "3"


def test_effective_rate_halves_after_503_and_is_zero_when_paused(api: Any, v2: Any, sink: Sink) -> None:
    path = f"/s/{uuid.uuid4().hex[:10]}"
    sink.script(path, 503)
    queue = new_queue(
        api, httpTarget={}, rateLimits={"maxTasksDispatchedPerSecond": 8}, retryConfig=SLOW_RETRY
    )
    assert v2_stats(v2, queue).effective_execution_rate == 8
    add_task(api, queue, sink.url + path)
    sink.wait(lambda: len(sink.on(path)) == 1)
    # The owner stores its congestion factor with its next ownership renewal (1 s heartbeat).
    eventually(lambda: v2_stats(v2, queue).effective_execution_rate == 4)
    assert rest_stats(api, queue)["effectiveExecutionRate"] == 4
    stats = v2_stats(v2, queue)
    assert (stats.tasks_count, stats.concurrent_dispatches_count, stats.executed_last_minute_count) == (
        1,
        0,
        1,
    )

    api.projects().locations().queues().pause(name=queue, body={}).execute()
    assert v2_stats(v2, queue).effective_execution_rate == 0
    assert rest_stats(api, queue).get("effectiveExecutionRate", 0) == 0
    pull = new_queue(api, pullTarget={})
    assert v2_stats(v2, pull).effective_execution_rate == 0


def test_every_node_of_a_cluster_reports_the_owners_dispatches(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Two nodes on one PostgreSQL: whichever dispatches, both report the same statistics."""
    db = postgres_server.new_database()
    nodes = []
    sink = Sink()
    try:
        for index in range(2):
            config = tmp_path / f"node{index}.yaml"
            config.write_text(f"node_id: n{index}\nqueue_ownership_ttl_s: 2\n")
            nodes.append(Server(db, config=config, extra=["--app-engine-url", sink.url]).start())
        apis = [discovery_client(node.url) for node in nodes]
        clients = [versioned_client(node, "v2beta3", "grpc") for node in nodes]
        held, busy = "/s/held", "/s/busy"
        sink.script(held, Answer(200, delay_s=2.0))
        sink.script(busy, 503)
        limits = {"maxTasksDispatchedPerSecond": 6, "maxConcurrentTasks": 10}
        queue = new_queue(apis[0], httpTarget={}, rateLimits=limits, retryConfig=SLOW_RETRY)
        for _ in range(2):
            add_task(apis[1], queue, sink.url + held)
        sink.wait(lambda: len(sink.on(held)) == 2)
        for client in clients:
            stats = v2_stats(client, queue)
            assert (stats.concurrent_dispatches_count, stats.executed_last_minute_count) == (2, 2)
        add_task(apis[0], queue, sink.url + busy)
        sink.wait(lambda: len(sink.on(busy)) == 1)
        for client in clients:
            eventually(lambda c=client: v2_stats(c, queue).effective_execution_rate == 3)
        eventually(lambda: v2_stats(clients[1], queue).tasks_count == 1)  # the 503 one waits
        for client in clients:
            stats = v2_stats(client, queue)
            assert (stats.concurrent_dispatches_count, stats.executed_last_minute_count) == (0, 3)
    finally:
        for node in nodes:
            node.stop()
        sink.close()
