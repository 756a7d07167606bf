"""Three tasksd processes on one PostgreSQL database: one dispatcher per queue, takeover
when a node dies, and pull leases that no two workers share."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import PARENT, Server, discovery_client, gapic_client, lease_concurrently
from tests.integration.sink import Sink
from tests.postgres import PostgresServer


@pytest.fixture
def cluster(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, list[Server]]]:
    db = postgres_server.new_database()
    nodes = []
    for index in range(3):
        config = tmp_path / f"node{index}.yaml"
        config.write_text(f"node_id: n{index}\nqueue_ownership_ttl_s: 2\n")
        nodes.append(Server(db, config=config).start())
    yield db, nodes
    for node in nodes:
        if node.proc is not None and node.proc.poll() is None:
            node.stop()


def owner(db: str, queue: str) -> str | None:
    queue_id = queue.rsplit("/", 1)[1]
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT o.node FROM queue_owners o JOIN queues q ON q.id = o.queue WHERE q.queue_id = %s",
            (queue_id,),
        ).fetchone()
    return row[0] if row else None


def test_one_dispatcher_per_queue_and_takeover(cluster: tuple[str, list[Server]]) -> None:
    db, nodes = cluster
    sink = Sink()
    try:
        apis = [discovery_client(node.url) for node in nodes]
        queue = f"{PARENT}/queues/multi-{uuid.uuid4().hex[:8]}"
        apis[0].projects().locations().queues().create(
            parent=PARENT,
            body={
                "name": queue,
                "httpTarget": {},
                "rateLimits": {"maxTasksDispatchedPerSecond": 50, "maxBurstSize": 1},
            },
        ).execute()
        apis[1].projects().locations().queues().pause(name=queue, body={}).execute()
        names = []
        for i in range(300):  # created through all three nodes
            body = {"task": {"name": f"{queue}/tasks/m{i}", "httpRequest": {"url": f"{sink.url}/multi"}}}
            names.append(
                apis[i % 3].projects().locations().queues().tasks().create(parent=queue, body=body).execute()
            )
        apis[2].projects().locations().queues().resume(name=queue, body={}).execute()
        sink.wait(lambda: len(sink.on("/multi")) >= 150, timeout_s=30)
        times = sorted(r.at for r in sink.on("/multi"))
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert 40 <= rate <= 60, rate  # the queue's rate in total, not once per node

        dead = owner(db, queue)
        assert dead in ("n0", "n1", "n2")
        nodes[int(dead[1])].stop(signal.SIGKILL)  # mid-dispatch
        sink.wait(
            lambda: (
                {r.headers["X-CloudTasks-TaskName"] for r in sink.on("/multi")}
                >= {f"m{i}" for i in range(300)}
            ),
            timeout_s=60,
        )
        assert owner(db, queue) not in (None, dead)  # another node took the queue over
    finally:
        sink.close()


def test_thirty_workers_through_three_nodes_never_share_a_lease(cluster: tuple[str, list[Server]]) -> None:
    _, nodes = cluster
    queue = f"{PARENT}/queues/multi-pull-{uuid.uuid4().hex[:8]}"
    clients = [gapic_client(node.url) for node in nodes]
    clients[0].create_queue(parent=PARENT, queue={"name": queue, "pull_target": {}})
    for start in range(0, 1500, 100):
        for i in range(start, start + 100):
            clients[i % 3].create_task(parent=queue, task={"name": f"{queue}/tasks/p{i}", "pull_message": {}})
    received = lease_concurrently([node.url for node in nodes], queue, workers=30, total=1500, batch=20)
    everything = [name for names in received for name in names]
    assert len(everything) == len(set(everything)) == 1500  # none twice, none lost
    assert len({i % 3 for i, names in enumerate(received) if names}) == 3  # all three nodes leased


def test_queue_gauges_come_from_the_owner(cluster: tuple[str, list[Server]]) -> None:
    """A running push queue's gauges are reported by the node that owns it; a queue no node
    owns (paused, pull) by every node, alike."""
    db, nodes = cluster
    api = discovery_client(nodes[0].url)
    queues = api.projects().locations().queues()
    running, paused = (f"{PARENT}/queues/g-{uuid.uuid4().hex[:8]}" for _ in range(2))
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    for name in (running, paused):
        queues.create(parent=PARENT, body={"name": name, "httpTarget": {}}).execute()
        for _ in range(5):
            task = {"httpRequest": {"url": "http://127.0.0.1:9/never"}, "scheduleTime": later}
            queues.tasks().create(parent=name, body={"task": task}).execute()
    queues.pause(name=paused, body={}).execute()

    def gauges(node: Server) -> dict[str, float]:
        text = httpx.get(f"{node.url}/metrics").text
        return {
            sample.labels["queue"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "tasksd_queue_tasks"
        }

    deadline = time.monotonic() + 20
    while owner(db, running) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    owning = owner(db, running)
    assert owning is not None
    reported = [gauges(node) for node in nodes]
    assert [index for index, seen in enumerate(reported) if running in seen] == [int(owning[1])]
    assert reported[int(owning[1])][running] == 5
    assert [seen.get(paused) for seen in reported] == [5, 5, 5]
