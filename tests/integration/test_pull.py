"""Pull queues: lease, acknowledge, renew and cancel, through both official clients."""

from __future__ import annotations

import base64
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2beta2
from google.protobuf import duration_pb2
from googleapiclient.errors import HttpError

from tests.integration.conftest import (
    PARENT,
    Server,
    create_queue,
    lease_concurrently,
    served_discovery_client,
)


def tasks(api: Any) -> Any:
    return api.projects().locations().queues().tasks()


def add(
    api: Any, queue: str, task_id: str, tag: str = "", payload: bytes = b"p", **extra: Any
) -> dict[str, Any]:
    body = {
        "name": f"{queue}/tasks/{task_id}",
        "pullMessage": {"payload": base64.b64encode(payload).decode(), "tag": tag},
        **extra,
    }
    return tasks(api).create(parent=queue, body={"task": body}).execute()  # type: ignore[no-any-return]


def lease(
    api: Any, queue: str, count: int = 100, duration: str = "60s", **extra: Any
) -> list[dict[str, Any]]:
    body = {"maxTasks": count, "leaseDuration": duration, **extra}
    return tasks(api).lease(parent=queue, body=body).execute().get("tasks", [])  # type: ignore[no-any-return]


def ids(found: list[dict[str, Any]]) -> list[str]:
    return [t["name"].rsplit("/", 1)[1] for t in found]


def test_lease_oldest_first_only_due_tasks(api: Any, pull_queue: str) -> None:
    for i in range(3):
        add(api, pull_queue, f"t{i}")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    add(api, pull_queue, "later", scheduleTime=later)
    before = datetime.now(UTC)
    leased = lease(api, pull_queue, responseView="FULL")
    assert ids(leased) == ["t0", "t1", "t2"]
    for task in leased:
        until = datetime.fromisoformat(task["scheduleTime"].replace("Z", "+00:00"))
        assert before + timedelta(seconds=59) <= until <= datetime.now(UTC) + timedelta(seconds=61)
        assert task["status"]["attemptDispatchCount"] == 1
        assert task["pullMessage"]["payload"] == "cA=="
    assert lease(api, pull_queue) == []  # all held, the last not due


def test_lease_by_tag_and_oldest_tag(
    api: Any, gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str
) -> None:
    for i, tag in enumerate(["b", "a", "b", "c", "a"]):
        add(api, pull_queue, f"t{i}", tag=tag)
    assert ids(lease(api, pull_queue, filter="tag=a")) == ["t1", "t4"]
    oldest = gapic.lease_tasks(
        request={
            "parent": pull_queue,
            "max_tasks": 10,
            "lease_duration": duration_pb2.Duration(seconds=60),
            "filter": "tag_function=oldest_tag()",
        }
    )
    assert [t.name.rsplit("/", 1)[1] for t in oldest.tasks] == ["t0", "t2"]
    assert all(t.pull_message.tag == "b" for t in oldest.tasks)
    assert ids(lease(api, pull_queue, filter='tag="c"')) == ["t3"]
    assert lease(api, pull_queue, filter="tag_function=oldest_tag()") == []


def test_acknowledge_renew_cancel(api: Any, gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str) -> None:
    for i in range(3):
        add(api, pull_queue, f"t{i}")
    leased = {t["name"]: t for t in lease(api, pull_queue)}
    ack, renew, cancel = sorted(leased)
    stale = "2001-01-01T00:00:00Z"
    for call in (
        lambda: tasks(api).acknowledge(name=ack, body={"scheduleTime": stale}).execute(),
        lambda: (
            tasks(api).renewLease(name=renew, body={"scheduleTime": stale, "leaseDuration": "5s"}).execute()
        ),
        lambda: tasks(api).cancelLease(name=cancel, body={"scheduleTime": stale}).execute(),
    ):
        with pytest.raises(HttpError) as info:
            call()
        assert info.value.status_code == 400 and "FAILED_PRECONDITION" in info.value.content.decode()
        assert "does not hold" in info.value.reason

    assert (
        tasks(api).acknowledge(name=ack, body={"scheduleTime": leased[ack]["scheduleTime"]}).execute() == {}
    )
    with pytest.raises(exceptions.NotFound):
        gapic.get_task(name=ack)
    assert ack not in [t.name for t in gapic.list_tasks(parent=pull_queue)]
    with pytest.raises(exceptions.Conflict):  # acknowledged tasks leave a tombstone
        gapic.create_task(request={"parent": pull_queue, "task": {"name": ack, "pull_message": {}}})

    renewed = gapic.renew_lease(
        request={
            "name": renew,
            "schedule_time": gapic.get_task(name=renew).schedule_time,
            "lease_duration": duration_pb2.Duration(seconds=3600),
        }
    )
    assert renewed.schedule_time > datetime.now(UTC) + timedelta(minutes=59)

    cancelled = gapic.cancel_lease(
        request={"name": cancel, "schedule_time": gapic.get_task(name=cancel).schedule_time}
    )
    assert cancelled.schedule_time <= datetime.now(UTC)
    assert ids(lease(api, pull_queue)) == [cancel.rsplit("/", 1)[1]]  # leasable again at once
    with pytest.raises(HttpError) as info:  # the old lease is not held any more
        tasks(api).acknowledge(name=cancel, body={"scheduleTime": leased[cancel]["scheduleTime"]}).execute()
    assert info.value.status_code == 400


def test_expired_lease_makes_task_leasable_again(api: Any, pull_queue: str) -> None:
    add(api, pull_queue, "short")
    first = lease(api, pull_queue, duration="1s")
    assert ids(first) == ["short"] and lease(api, pull_queue) == []
    time.sleep(1.2)
    second = lease(api, pull_queue)
    assert ids(second) == ["short"] and second[0]["status"]["attemptDispatchCount"] == 2
    with pytest.raises(HttpError):  # the first worker's lease has moved on
        tasks(api).acknowledge(
            name=first[0]["name"], body={"scheduleTime": first[0]["scheduleTime"]}
        ).execute()


def test_max_attempts_deletes_unacknowledged_tasks(api: Any, queue_name: str) -> None:
    api.projects().locations().queues().create(
        parent=PARENT, body={"name": queue_name, "pullTarget": {}, "retryConfig": {"maxAttempts": 2}}
    ).execute()
    add(api, queue_name, "flaky")
    for _ in range(2):
        assert ids(lease(api, queue_name, duration="1s")) == ["flaky"]
        time.sleep(1.1)
    assert lease(api, queue_name) == []
    with pytest.raises(HttpError) as info:
        tasks(api).get(name=f"{queue_name}/tasks/flaky").execute()
    assert info.value.status_code == 404 and "existed recently" in info.value.reason


def test_lease_calls_per_second_per_queue(server: Server, pull_queue: str) -> None:
    url = f"{server.url}/v2beta2/{pull_queue}/tasks:lease"
    body = {"maxTasks": 1, "leaseDuration": "10s"}
    with ThreadPoolExecutor(30) as pool:
        codes = Counter(pool.map(lambda _: httpx.post(url, json=body, timeout=30).status_code, range(30)))
    assert codes[200] >= 10 and codes[429] >= 1, codes
    reply = httpx.post(url, json=body)
    if reply.status_code == 429:
        assert reply.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert "per second" in reply.json()["error"]["message"]


def test_lease_reply_stays_under_32_mb(api: Any, pull_queue: str) -> None:
    megabyte = b"m" * 1_000_000
    for i in range(30):
        add(api, pull_queue, f"big{i:02d}", payload=megabyte)
    first = lease(api, pull_queue, count=1000, responseView="FULL")
    assert 10 < len(first) < 30
    assert sum(len(t["pullMessage"]["payload"]) for t in first) < 32 * 1024 * 1024
    rest = lease(api, pull_queue, count=1000, responseView="FULL")
    assert sorted(ids(first) + ids(rest)) == [f"big{i:02d}" for i in range(30)]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"maxTasks": 0, "leaseDuration": "10s"}, 400, "max_tasks"),
        ({"maxTasks": 1001, "leaseDuration": "10s"}, 400, "max_tasks"),
        ({"maxTasks": 1}, 400, "lease_duration"),
        ({"maxTasks": 1, "leaseDuration": "604801s"}, 400, "lease_duration"),
        ({"maxTasks": 1, "leaseDuration": "0.5s"}, 400, "lease_duration"),
        ({"maxTasks": 1, "leaseDuration": "10s", "filter": "tag_function=newest_tag()"}, 400, "filter"),
        ({"maxTasks": 1, "leaseDuration": "10s", "filter": "colour=red"}, 400, "filter"),
        ({"maxTasks": 1, "leaseDuration": "10s", "filter": "tag=" + "t" * 500}, 400, "filter"),
    ],
)
def test_bad_lease_requests(
    server: Server, pull_queue: str, body: dict[str, Any], status: int, text: str
) -> None:
    reply = httpx.post(f"{server.url}/v2beta2/{pull_queue}/tasks:lease", json=body)
    assert reply.status_code == status and text in reply.json()["error"]["message"]


def test_lease_from_push_or_paused_queue(api: Any, pull_queue: str) -> None:
    push_queue = create_queue(api, f"{pull_queue}-push", "appEngineHttpTarget")
    with pytest.raises(HttpError) as info:
        lease(api, push_queue)
    assert info.value.status_code == 400 and "not a pull queue" in info.value.reason
    api.projects().locations().queues().pause(name=pull_queue, body={}).execute()
    with pytest.raises(HttpError) as info:
        lease(api, pull_queue)
    assert "paused" in info.value.reason and "FAILED_PRECONDITION" in info.value.content.decode()


def test_batch_acknowledges_100_with_one_stale(server: Server, queue_name: str) -> None:
    api = served_discovery_client(server.url)
    api.projects().locations().queues().create(
        parent=PARENT, body={"name": queue_name, "pullTarget": {}}
    ).execute()
    created = api.new_batch_http_request()
    for i in range(100):
        created.add(
            tasks(api).create(
                parent=queue_name, body={"task": {"name": f"{queue_name}/tasks/b{i:03d}", "pullMessage": {}}}
            )
        )
    created.execute()
    leased = lease(api, queue_name, count=1000)
    assert len(leased) == 100
    results: dict[str, Any] = {}
    acks = api.new_batch_http_request(callback=lambda rid, resp, exc: results.__setitem__(rid, (resp, exc)))
    for i, task in enumerate(leased):
        held = "2001-01-01T00:00:00Z" if i == 42 else task["scheduleTime"]
        acks.add(tasks(api).acknowledge(name=task["name"], body={"scheduleTime": held}), request_id=str(i))
    acks.execute()
    assert all(results[str(i)] == ({}, None) for i in range(100) if i != 42)
    error = results["42"][1]
    assert isinstance(error, HttpError) and error.status_code == 400 and "does not hold" in error.reason
    assert ids(api.projects().locations().queues().tasks().list(parent=queue_name).execute()["tasks"]) == [
        leased[42]["name"].rsplit("/", 1)[1]
    ]


def test_batch_acknowledgements_fail_alone_as_they_would_singly(server: Server, pull_queue: str) -> None:
    """The acknowledgements of one batch share a store transaction; each still gets the
    status and message it would get on its own, and none undoes another."""
    api = served_discovery_client(server.url)
    for task_id in ("a", "b", "c"):
        add(api, pull_queue, task_id)
    held = {t["name"].rsplit("/", 1)[1]: t["scheduleTime"] for t in lease(api, pull_queue)}
    missing_queue = f"{pull_queue}-missing/tasks/a"
    asks = [
        (f"{pull_queue}/tasks/a", {"scheduleTime": held["a"]}),
        (f"{pull_queue}/tasks/a", {"scheduleTime": held["a"]}),  # again: already acknowledged
        (f"{pull_queue}/tasks/b", {"scheduleTime": "2001-01-01T00:00:00Z"}),  # stale
        (f"{pull_queue}/tasks/b", {}),  # no scheduleTime
        (missing_queue, {"scheduleTime": held["b"]}),
        (f"{pull_queue}/tasks/never", {"scheduleTime": held["b"]}),
        (f"{pull_queue}/tasks/c", {"scheduleTime": held["c"]}),
    ]
    answers: dict[str, Any] = {}
    batch = api.new_batch_http_request(callback=lambda rid, resp, exc: answers.__setitem__(rid, (resp, exc)))
    for i, (name, body) in enumerate(asks):
        batch.add(tasks(api).acknowledge(name=name, body=body), request_id=str(i))
    batch.execute()
    assert answers["0"] == ({}, None) and answers["6"] == ({}, None)
    batched = {i: answers[str(i)][1] for i in range(1, 6)}
    assert all(isinstance(error, HttpError) for error in batched.values()), answers
    assert [batched[i].status_code for i in range(1, 6)] == [404, 400, 400, 404, 404]
    assert "existed recently" in batched[1].reason and "does not hold" in batched[2].reason
    assert "schedule_time is required" in batched[3].reason
    assert "Queue does not exist" in batched[4].reason
    # The same requests alone (b is still held, so they fail the same way) get the same answers.
    for i in range(1, 6):
        with pytest.raises(HttpError) as alone:
            name, body = asks[i]
            tasks(api).acknowledge(name=name, body=body).execute()
        assert (alone.value.status_code, alone.value.reason) == (batched[i].status_code, batched[i].reason)
    assert ids(tasks(api).list(parent=pull_queue).execute()["tasks"]) == ["b"]


def test_batch_mixes_methods_and_rejects_garbage(server: Server, pull_queue: str) -> None:
    api = served_discovery_client(server.url)
    answers: list[Any] = []
    batch = api.new_batch_http_request(callback=lambda rid, resp, exc: answers.append((resp, exc)))
    batch.add(api.projects().locations().queues().get(name=pull_queue))
    batch.add(tasks(api).create(parent=pull_queue, body={"task": {"pullMessage": {}}}))
    batch.add(api.projects().locations().queues().get(name=pull_queue + "-missing"))
    batch.add(
        api.projects()
        .locations()
        .queues()
        .testIamPermissions(resource=pull_queue, body={"permissions": ["cloudtasks.tasks.create"]})
    )
    batch.execute()  # the requests of one batch may run in any order
    assert answers[0][0]["name"] == pull_queue
    assert answers[1][0]["name"].startswith(pull_queue + "/tasks/")
    assert isinstance(answers[2][1], HttpError) and answers[2][1].status_code == 404
    assert answers[3][0] == {"permissions": ["cloudtasks.tasks.create"]}
    assert len(tasks(api).list(parent=pull_queue).execute()["tasks"]) == 1
    for content_type, body in [
        ("application/json", b"{}"),
        ("multipart/mixed; boundary=xyz", b"nothing here"),
        (
            "multipart/mixed; boundary=xyz",
            b"--xyz\r\nContent-Type: application/http\r\n\r\nNOT A REQUEST\r\n--xyz--",
        ),
    ]:
        reply = httpx.post(f"{server.url}/batch", content=body, headers={"Content-Type": content_type})
        assert reply.status_code == 400 and reply.json()["error"]["status"] == "INVALID_ARGUMENT", reply.text


def test_20_concurrent_workers_never_share_a_lease(server: Server, queue_name: str) -> None:
    api = served_discovery_client(server.url)
    api.projects().locations().queues().create(
        parent=PARENT, body={"name": queue_name, "pullTarget": {}}
    ).execute()
    for start in range(0, 5000, 500):
        batch = api.new_batch_http_request()
        for i in range(start, start + 500):
            batch.add(
                tasks(api).create(
                    parent=queue_name, body={"task": {"name": f"{queue_name}/tasks/w{i}", "pullMessage": {}}}
                )
            )
        batch.execute()
    received = lease_concurrently([server.url], queue_name, workers=20, total=5000, batch=100)
    everything = [name for names in received for name in names]
    assert len(everything) == len(set(everything)) == 5000  # none twice, none lost
    assert sum(1 for names in received if names) > 1
    assert api.projects().locations().queues().tasks().list(parent=queue_name).execute() == {}
