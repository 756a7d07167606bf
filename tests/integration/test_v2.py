"""The v2 API through google-cloud-tasks (REST and gRPC), and the same queues across versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.protobuf import duration_pb2, field_mask_pb2

from tests.integration.conftest import PARENT, Server


def test_queue_lifecycle(gapic_v2: Any, queue_name: str) -> None:
    created = gapic_v2.create_queue(
        parent=PARENT,
        queue=tasks_v2.Queue(
            name=queue_name,
            app_engine_routing_override=tasks_v2.AppEngineRouting(service="worker"),
            rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=7, max_concurrent_dispatches=9),
            retry_config=tasks_v2.RetryConfig(max_attempts=-1, min_backoff=duration_pb2.Duration(seconds=2)),
            stackdriver_logging_config=tasks_v2.StackdriverLoggingConfig(sampling_ratio=0.25),
        ),
    )
    assert created.rate_limits.max_burst_size == 7 and created.retry_config.max_attempts == -1
    assert created.app_engine_routing_override.host == "worker.test-project.appspot.com"
    assert created.stackdriver_logging_config.sampling_ratio == 0.25
    assert created.state == tasks_v2.Queue.State.RUNNING
    assert gapic_v2.get_queue(name=queue_name) == created
    updated = gapic_v2.update_queue(
        queue=tasks_v2.Queue(name=queue_name, rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=3)),
        update_mask=field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second"]),
    )
    assert (
        updated.rate_limits.max_dispatches_per_second == 3
        and updated.rate_limits.max_concurrent_dispatches == 9
    )
    token = tasks_v2.OidcToken(
        service_account_email="robot@test-project.iam.gserviceaccount.com", audience="a"
    )
    gapic_v2.update_queue(
        queue=tasks_v2.Queue(name=queue_name, http_target=tasks_v2.HttpTarget(oidc_token=token)),
        update_mask=field_mask_pb2.FieldMask(paths=["http_target"]),
    )
    deep = gapic_v2.update_queue(  # a mask path three fields deep changes that field alone
        queue=tasks_v2.Queue(
            name=queue_name, http_target=tasks_v2.HttpTarget(oidc_token=tasks_v2.OidcToken(audience="b"))
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["http_target.oidc_token.audience"]),
    )
    assert deep.http_target.oidc_token == tasks_v2.OidcToken(
        service_account_email=token.service_account_email, audience="b"
    )
    assert gapic_v2.pause_queue(name=queue_name).state == tasks_v2.Queue.State.PAUSED
    assert gapic_v2.resume_queue(name=queue_name).state == tasks_v2.Queue.State.RUNNING
    assert queue_name in [q.name for q in gapic_v2.list_queues(parent=PARENT)]
    policy = gapic_v2.get_iam_policy(request={"resource": queue_name})
    assert policy.etag
    gapic_v2.delete_queue(name=queue_name)
    with pytest.raises(exceptions.NotFound):
        gapic_v2.get_queue(name=queue_name)


def test_tasks(gapic_v2: Any, queue_name: str) -> None:
    gapic_v2.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=queue_name))
    gapic_v2.pause_queue(name=queue_name)  # keep the tasks where they are
    when = datetime.now(UTC) + timedelta(hours=1)
    task = gapic_v2.create_task(
        request={
            "parent": queue_name,
            "task": {
                "name": f"{queue_name}/tasks/one",
                "schedule_time": when,
                "app_engine_http_request": {"relative_uri": "/work", "body": b"data", "http_method": "PUT"},
                "dispatch_deadline": duration_pb2.Duration(seconds=60),
                "retry_config": {"max_attempts": 3},
            },
            "response_view": tasks_v2.Task.View.FULL,
        }
    )
    assert (
        task.app_engine_http_request.body == b"data" and task.app_engine_http_request.relative_uri == "/work"
    )
    assert task.dispatch_deadline == timedelta(seconds=60) and task.retry_config.max_attempts == 3
    assert task.schedule_time == when and task.view == tasks_v2.Task.View.FULL
    http = gapic_v2.create_task(parent=queue_name, task={"http_request": {"url": "https://example.com/x"}})
    assert http.dispatch_deadline == timedelta(minutes=10)  # the documented default
    assert {t.name for t in gapic_v2.list_tasks(parent=queue_name)} == {task.name, http.name}
    basic = gapic_v2.get_task(name=task.name)
    assert basic.app_engine_http_request.body == b"" and basic.view == tasks_v2.Task.View.BASIC
    gapic_v2.delete_task(name=task.name)
    with pytest.raises(exceptions.NotFound):
        gapic_v2.get_task(name=task.name)
    with pytest.raises(exceptions.Conflict):
        gapic_v2.create_task(
            parent=queue_name, task={"name": task.name, "http_request": {"url": "https://e.com"}}
        )


def test_v2_rules(gapic_v2: Any, queue_name: str) -> None:
    gapic_v2.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=queue_name))
    with pytest.raises(exceptions.BadRequest) as deadline:
        gapic_v2.create_task(
            parent=queue_name,
            task={
                "http_request": {"url": "https://e.com"},
                "dispatch_deadline": duration_pb2.Duration(seconds=5),
            },
        )
    assert "dispatch_deadline" in deadline.value.message
    with pytest.raises(exceptions.BadRequest) as uri:
        gapic_v2.create_task(
            parent=queue_name, task={"app_engine_http_request": {"relative_uri": "no-slash"}}
        )
    assert "relative_uri" in uri.value.message
    with pytest.raises(exceptions.BadRequest) as attempts:
        gapic_v2.update_queue(queue={"name": queue_name, "retry_config": {"max_attempts": -7}})
    assert "max_attempts" in attempts.value.message
    with pytest.raises(exceptions.BadRequest):
        gapic_v2.update_queue(
            queue={"name": queue_name, "state": tasks_v2.Queue.State.PAUSED},
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
        )


def test_created_in_one_version_used_in_the_others(gapic: Any, gapic_v2: Any, queue_name: str) -> None:
    gapic_v2.create_queue(
        parent=PARENT,
        queue=tasks_v2.Queue(name=queue_name, rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=11)),
    )
    seen = gapic.get_queue(name=queue_name)
    assert seen.rate_limits.max_tasks_dispatched_per_second == 11 and seen.app_engine_http_target is not None
    gapic.update_queue(
        queue={"name": queue_name, "retry_config": {"max_attempts": 4}},
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"]),
    )
    assert gapic_v2.get_queue(name=queue_name).retry_config.max_attempts == 4
    gapic.pause_queue(name=queue_name)
    created = gapic.create_task(
        request={
            "parent": queue_name,
            "task": {"app_engine_http_request": {"relative_url": "/from-v2beta2", "payload": b"p"}},
        }
    )
    got = gapic_v2.get_task(request={"name": created.name, "response_view": tasks_v2.Task.View.FULL})
    assert (
        got.app_engine_http_request.relative_uri == "/from-v2beta2"
        and got.app_engine_http_request.body == b"p"
    )


def test_pull_queues_are_invisible_in_v2(gapic: Any, gapic_v2: Any, queue_name: str) -> None:
    gapic.create_queue(parent=PARENT, queue={"name": queue_name, "pull_target": {}})
    with pytest.raises(exceptions.NotFound):
        gapic_v2.get_queue(name=queue_name)
    assert queue_name not in [q.name for q in gapic_v2.list_queues(parent=PARENT)]


def test_v2_rest_wire(server: Server, queue_name: str) -> None:
    created = httpx.post(
        f"{server.url}/v2/{PARENT}/queues",
        json={"name": queue_name, "rateLimits": {"maxDispatchesPerSecond": 2}},
    )
    assert created.status_code == 200 and created.json()["rateLimits"]["maxDispatchesPerSecond"] == 2
    wrong = httpx.post(f"{server.url}/v2/{PARENT}/queues", json={"name": queue_name + "x", "pullTarget": {}})
    assert wrong.status_code == 400 and "pullTarget" in wrong.json()["error"]["message"]
    assert httpx.get(f"{server.url}/$discovery/rest", params={"version": "v2"}).json()["version"] == "v2"
