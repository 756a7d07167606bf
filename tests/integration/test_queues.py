"""Queues through google-api-python-client and google-cloud-tasks (REST transport)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2beta2
from google.protobuf import field_mask_pb2
from googleapiclient.errors import HttpError

from tests.integration.conftest import PARENT


def queues(api: Any) -> Any:
    return api.projects().locations().queues()


def test_create_pull_queue_fills_defaults(api: Any, queue_name: str) -> None:
    created = queues(api).create(parent=PARENT, body={"name": queue_name, "pullTarget": {}}).execute()
    assert created["name"] == queue_name
    assert created["pullTarget"] == {}
    assert created["state"] == "RUNNING"
    assert created["rateLimits"]["maxConcurrentTasks"] == -1
    assert created["retryConfig"] == {"maxAttempts": 100}
    assert created["taskTtl"] == "2678400s"
    assert created["tombstoneTtl"] == "3600s"
    assert "stats" not in created and "purgeTime" not in created
    assert queues(api).get(name=queue_name).execute() == created


def test_create_app_engine_queue_keeps_every_field(api: Any, queue_name: str) -> None:
    body = {
        "name": queue_name,
        "appEngineHttpTarget": {
            "appEngineRoutingOverride": {"service": "worker", "version": "v2", "instance": "i1"}
        },
        "rateLimits": {"maxTasksDispatchedPerSecond": 7.5, "maxBurstSize": 20, "maxConcurrentTasks": 30},
        "retryConfig": {
            "maxAttempts": 5,
            "maxRetryDuration": "600s",
            "minBackoff": "2s",
            "maxBackoff": "60s",
            "maxDoublings": 3,
        },
        "taskTtl": "86400s",
        "tombstoneTtl": "120s",
        "state": "PAUSED",
        "purgeTime": "2020-01-01T00:00:00Z",
    }
    created = queues(api).create(parent=PARENT, body=body).execute()
    routing = created["appEngineHttpTarget"]["appEngineRoutingOverride"]
    assert routing["host"] == "i1.v2.worker.test-project.appspot.com"
    assert created["rateLimits"] == body["rateLimits"]
    assert created["retryConfig"] == body["retryConfig"]
    assert created["taskTtl"] == "86400s" and created["tombstoneTtl"] == "120s"
    # Output-only fields are computed, never taken from input.
    assert created["state"] == "RUNNING"
    assert "purgeTime" not in created


def test_create_http_queue(gapic: tasks_v2beta2.CloudTasksClient, queue_name: str) -> None:
    queue = tasks_v2beta2.Queue(
        name=queue_name,
        http_target=tasks_v2beta2.HttpTarget(
            uri_override=tasks_v2beta2.UriOverride(
                scheme=tasks_v2beta2.UriOverride.Scheme.HTTPS,
                host="example.net",
                port=8443,
                path_override=tasks_v2beta2.PathOverride(path="/hook"),
                query_override=tasks_v2beta2.QueryOverride(query_params="a=1"),
                uri_override_enforce_mode=tasks_v2beta2.UriOverride.UriOverrideEnforceMode.IF_NOT_EXISTS,
            ),
            http_method=tasks_v2beta2.HttpMethod.PUT,
            header_overrides=[
                tasks_v2beta2.HttpTarget.HeaderOverride(
                    header=tasks_v2beta2.HttpTarget.Header(key="X-Team", value="blue")
                )
            ],
            oidc_token=tasks_v2beta2.OidcToken(
                service_account_email="sa@p.iam.gserviceaccount.com", audience="https://aud"
            ),
        ),
    )
    created = gapic.create_queue(parent=PARENT, queue=queue)
    assert created.http_target == queue.http_target
    assert created.state == tasks_v2beta2.Queue.State.RUNNING
    assert gapic.get_queue(name=queue_name) == created


def test_duplicate_queue_is_already_exists(api: Any, pull_queue: str) -> None:
    with pytest.raises(HttpError) as info:
        queues(api).create(parent=PARENT, body={"name": pull_queue, "pullTarget": {}}).execute()
    assert info.value.status_code == 409
    assert "already exists" in info.value.reason


def test_get_with_read_mask_and_stats(
    api: Any, gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str
) -> None:
    tasks = queues(api).tasks()
    for _ in range(3):
        tasks.create(parent=pull_queue, body={"task": {"pullMessage": {"payload": "eA=="}}}).execute()
    got = queues(api).get(name=pull_queue, readMask="name,stats").execute()
    assert set(got) == {"name", "stats"}
    assert got["stats"]["tasksCount"] == "3"
    assert "oldestEstimatedArrivalTime" in got["stats"]
    masked = gapic.get_queue(
        request={"name": pull_queue, "read_mask": field_mask_pb2.FieldMask(paths=["rate_limits"])}
    )
    assert masked.name == "" and masked.rate_limits.max_concurrent_tasks == -1
    assert "stats" not in queues(api).get(name=pull_queue).execute()


def test_list_pages_in_lexicographic_order(api: Any, gapic: tasks_v2beta2.CloudTasksClient) -> None:
    parent = f"projects/paging-{uuid.uuid4().hex[:8]}/locations/europe-west1"
    names = [f"{parent}/queues/q{i}" for i in (3, 1, 4, 0, 2)]
    for name in names:
        queues(api).create(parent=parent, body={"name": name, "pullTarget": {}}).execute()
    first = queues(api).list(parent=parent, pageSize=2).execute()
    assert [q["name"] for q in first["queues"]] == sorted(names)[:2]
    second = queues(api).list(parent=parent, pageSize=2, pageToken=first["nextPageToken"]).execute()
    third = queues(api).list(parent=parent, pageSize=2, pageToken=second["nextPageToken"]).execute()
    assert [q["name"] for q in second["queues"] + third["queues"]] == sorted(names)[2:]
    assert "nextPageToken" not in third
    pager = gapic.list_queues(request={"parent": parent, "page_size": 2})
    assert [q.name for q in pager] == sorted(names)


def test_list_filters(api: Any) -> None:
    parent = f"projects/filter-{uuid.uuid4().hex[:8]}/locations/us-east1"
    bodies = {
        "pull": {"pullTarget": {}},
        "appengine": {"appEngineHttpTarget": {}},
        "http": {"httpTarget": {"httpMethod": "POST"}},
        "paused": {"pullTarget": {}},
    }
    for queue_id, body in bodies.items():
        queues(api).create(parent=parent, body={"name": f"{parent}/queues/{queue_id}", **body}).execute()
    queues(api).pause(name=f"{parent}/queues/paused", body={}).execute()

    def ids(text: str) -> list[str]:
        found = queues(api).list(parent=parent, filter=text).execute().get("queues", [])
        return [q["name"].rsplit("/", 1)[1] for q in found]

    assert ids("pull_target: *") == ["paused", "pull"]
    assert ids("app_engine_http_target: *") == ["appengine"]
    assert ids("http_target: *") == ["http"]
    assert ids("state = PAUSED") == ["paused"]
    assert ids("pull_target: * AND state = RUNNING") == ["pull"]
    assert ids("") == ["appengine", "http", "paused", "pull"]
    with pytest.raises(HttpError) as info:
        ids("no_such_field: *")
    assert info.value.status_code == 400 and "no_such_field" in info.value.reason


def test_patch_with_update_mask(api: Any, gapic: tasks_v2beta2.CloudTasksClient, push_queue: str) -> None:
    patched = (
        queues(api)
        .patch(
            name=push_queue,
            updateMask="rateLimits.maxTasksDispatchedPerSecond",
            body={"rateLimits": {"maxTasksDispatchedPerSecond": 5}, "retryConfig": {"maxAttempts": 9}},
        )
        .execute()
    )
    assert patched["rateLimits"]["maxTasksDispatchedPerSecond"] == 5
    assert patched["rateLimits"]["maxBurstSize"] == 5  # follows the rate when not given
    assert patched["retryConfig"]["maxAttempts"] == 100  # not in the mask
    updated = gapic.update_queue(
        queue=tasks_v2beta2.Queue(
            name=push_queue, retry_config=tasks_v2beta2.RetryConfig(unlimited_attempts=True)
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.unlimited_attempts"]),
    )
    assert updated.retry_config.unlimited_attempts
    assert updated.rate_limits.max_tasks_dispatched_per_second == 5


def test_patch_creates_missing_queue(api: Any, queue_name: str) -> None:
    created = queues(api).patch(name=queue_name, body={"pullTarget": {}}).execute()
    assert created["name"] == queue_name and created["pullTarget"] == {}
    assert queues(api).get(name=queue_name).execute()["name"] == queue_name


def test_patch_cannot_change_state_or_type(api: Any, pull_queue: str) -> None:
    with pytest.raises(HttpError) as info:
        queues(api).patch(name=pull_queue, updateMask="state", body={"state": "PAUSED"}).execute()
    assert info.value.status_code == 400 and "state" in info.value.reason
    with pytest.raises(HttpError) as info:
        queues(api).patch(
            name=pull_queue, updateMask="appEngineHttpTarget", body={"appEngineHttpTarget": {}}
        ).execute()
    assert info.value.status_code == 400 and "type" in info.value.reason


def test_pause_resume(api: Any, gapic: tasks_v2beta2.CloudTasksClient, push_queue: str) -> None:
    assert queues(api).pause(name=push_queue, body={}).execute()["state"] == "PAUSED"
    assert gapic.get_queue(name=push_queue).state == tasks_v2beta2.Queue.State.PAUSED
    assert gapic.resume_queue(name=push_queue).state == tasks_v2beta2.Queue.State.RUNNING


def test_purge_deletes_tasks_and_sets_purge_time(api: Any, pull_queue: str) -> None:
    tasks = queues(api).tasks()
    tasks.create(
        parent=pull_queue, body={"task": {"name": f"{pull_queue}/tasks/old", "pullMessage": {}}}
    ).execute()
    purged = queues(api).purge(name=pull_queue, body={}).execute()
    assert "purgeTime" in purged
    assert tasks.list(parent=pull_queue).execute().get("tasks", []) == []
    # A purged task's name stays taken for the tombstone TTL.
    with pytest.raises(HttpError) as info:
        tasks.create(
            parent=pull_queue, body={"task": {"name": f"{pull_queue}/tasks/old", "pullMessage": {}}}
        ).execute()
    assert info.value.status_code == 409
    tasks.create(parent=pull_queue, body={"task": {"pullMessage": {}}}).execute()
    assert len(tasks.list(parent=pull_queue).execute()["tasks"]) == 1


def test_delete_queue(api: Any, gapic: tasks_v2beta2.CloudTasksClient, pull_queue: str) -> None:
    queues(api).tasks().create(parent=pull_queue, body={"task": {"pullMessage": {}}}).execute()
    assert queues(api).delete(name=pull_queue).execute() == {}
    with pytest.raises(exceptions.NotFound) as info:
        gapic.get_queue(name=pull_queue)
    assert "Queue does not exist" in info.value.message
    with pytest.raises(exceptions.NotFound):
        gapic.delete_queue(name=pull_queue)


def test_iam_policy_round_trip_and_etag_conflict(
    api: Any, gapic: tasks_v2beta2.CloudTasksClient, push_queue: str
) -> None:
    empty = queues(api).getIamPolicy(resource=push_queue, body={}).execute()
    assert "bindings" not in empty and empty["etag"]
    policy = {
        "bindings": [{"role": "roles/cloudtasks.enqueuer", "members": ["user:a@example.com"]}],
        "etag": empty["etag"],
    }
    stored = queues(api).setIamPolicy(resource=push_queue, body={"policy": policy}).execute()
    assert stored["bindings"] == policy["bindings"] and stored["etag"] != empty["etag"]
    # Writing again with the etag that was read before the first write: a concurrent change.
    with pytest.raises(HttpError) as info:
        queues(api).setIamPolicy(resource=push_queue, body={"policy": policy}).execute()
    assert info.value.status_code == 409
    assert "ABORTED" in info.value.content.decode()
    got = gapic.get_iam_policy(request={"resource": push_queue})
    assert [b.role for b in got.bindings] == ["roles/cloudtasks.enqueuer"]
    assert got.etag == __import__("base64").b64decode(stored["etag"])


def test_test_iam_permissions(api: Any, push_queue: str, queue_name: str) -> None:
    asked = ["cloudtasks.tasks.create", "cloudtasks.queues.get", "cloudtasks.nonsense", "storage.buckets.get"]
    answer = queues(api).testIamPermissions(resource=push_queue, body={"permissions": asked}).execute()
    assert answer["permissions"] == ["cloudtasks.tasks.create", "cloudtasks.queues.get"]
    missing = (
        queues(api)
        .testIamPermissions(resource=push_queue + "-missing", body={"permissions": asked})
        .execute()
    )
    assert missing == {}
