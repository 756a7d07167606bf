"""Everything acknowledged survives a restart, a clean stop and a SIGKILL alike."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.conftest import PARENT, Server, discovery_client


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"]
)
def test_restart_keeps_queues_and_tasks(tmp_path: Path, sig: int) -> None:
    server = Server(f"sqlite:///{tmp_path / 'tasks.db'}").start()
    api = discovery_client(server.url)
    queues = api.projects().locations().queues()
    pull = f"{PARENT}/queues/durable-pull"
    push = f"{PARENT}/queues/durable-push"
    queues.create(parent=PARENT, body={"name": pull, "pullTarget": {}}).execute()
    queues.create(
        parent=PARENT,
        body={"name": push, "appEngineHttpTarget": {}, "rateLimits": {"maxTasksDispatchedPerSecond": 3}},
    ).execute()
    queues.pause(name=push, body={}).execute()
    queues.setIamPolicy(
        resource=push,
        body={"policy": {"bindings": [{"role": "roles/viewer", "members": ["user:x@example.com"]}]}},
    ).execute()

    def create(i: int) -> str:
        client = discovery_client(server.url)
        body = {
            "task": {"name": f"{pull}/tasks/t{i}", "pullMessage": {"payload": "ZGF0YQ==", "tag": f"g{i % 3}"}}
        }
        return str(
            client.projects().locations().queues().tasks().create(parent=pull, body=body).execute()["name"]
        )

    with ThreadPoolExecutor(8) as pool:  # concurrent creates share group commits
        acknowledged = set(pool.map(create, range(200)))
    queues.tasks().create(
        parent=push, body={"task": {"appEngineHttpRequest": {"relativeUrl": "/a"}}}
    ).execute()
    queues.tasks().delete(name=f"{pull}/tasks/t0").execute()
    acknowledged.discard(f"{pull}/tasks/t0")
    before = {q: queues.get(name=q).execute() for q in (pull, push)}

    assert server.stop(sig) == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
    server.start()
    api = discovery_client(server.url)
    queues = api.projects().locations().queues()
    assert {q: queues.get(name=q).execute() for q in (pull, push)} == before
    assert before[push]["state"] == "PAUSED"
    names: set[str] = set()
    token = None
    while True:
        page = queues.tasks().list(parent=pull, pageSize=1000, responseView="FULL", pageToken=token).execute()
        names |= {t["name"] for t in page.get("tasks", [])}
        assert all(t["pullMessage"]["payload"] == "ZGF0YQ==" for t in page.get("tasks", []))
        token = page.get("nextPageToken")
        if not token:
            break
    assert names == acknowledged
    assert len(queues.tasks().list(parent=push).execute()["tasks"]) == 1
    policy = queues.getIamPolicy(resource=push, body={}).execute()
    assert policy["bindings"][0]["members"] == ["user:x@example.com"]
    # The tombstone of the deleted task survived too.
    with pytest.raises(Exception) as info:
        queues.tasks().create(
            parent=pull, body={"task": {"name": f"{pull}/tasks/t0", "pullMessage": {}}}
        ).execute()
    assert "409" in str(info.value)
    server.stop()
