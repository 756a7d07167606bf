"""The v2beta3 API through google-cloud-tasks (REST and gRPC): queue types, TTLs, stats,
pull tasks that only v2beta2 can lease."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2beta3
from google.protobuf import duration_pb2, field_mask_pb2

from tests.integration.conftest import PARENT


def test_push_queue_with_ttls_and_stats(gapic_v2beta3: Any, queue_name: str) -> None:
    created = gapic_v2beta3.create_queue(
        parent=PARENT,
        queue=tasks_v2beta3.Queue(
            name=queue_name,
            app_engine_http_queue=tasks_v2beta3.AppEngineHttpQueue(
                app_engine_routing_override=tasks_v2beta3.AppEngineRouting(service="svc")
            ),
            task_ttl=duration_pb2.Duration(seconds=86400),
            tombstone_ttl=duration_pb2.Duration(seconds=60),
        ),
    )
    assert created.type_ == tasks_v2beta3.Queue.Type.PUSH
    assert created.app_engine_http_queue.app_engine_routing_override.host == "svc.test-project.appspot.com"
    assert created.task_ttl == timedelta(days=1) and created.tombstone_ttl == timedelta(seconds=60)
    gapic_v2beta3.pause_queue(name=queue_name)
    gapic_v2beta3.create_task(parent=queue_name, task={"http_request": {"url": "https://example.com/a"}})
    with_stats = gapic_v2beta3.get_queue(
        request={"name": queue_name, "read_mask": field_mask_pb2.FieldMask(paths=["stats"])}
    )
    assert with_stats.stats.tasks_count == 1 and with_stats.name == ""
    updated = gapic_v2beta3.update_queue(
        queue={"name": queue_name, "tombstone_ttl": duration_pb2.Duration(seconds=120)},
        update_mask=field_mask_pb2.FieldMask(paths=["tombstone_ttl"]),
    )
    assert updated.tombstone_ttl == timedelta(seconds=120) and updated.task_ttl == timedelta(days=1)


def test_pull_queue_and_tasks_across_versions(
    gapic_v2beta3: Any, gapic: Any, gapic_v2: Any, queue_name: str
) -> None:
    created = gapic_v2beta3.create_queue(
        parent=PARENT, queue={"name": queue_name, "type_": tasks_v2beta3.Queue.Type.PULL}
    )
    assert created.type_ == tasks_v2beta3.Queue.Type.PULL
    assert "pull_target" in gapic.get_queue(name=queue_name)  # a pull queue through v2beta2 too
    task = gapic_v2beta3.create_task(
        request={
            "parent": queue_name,
            "task": {"pull_message": {"payload": b"x", "tag": "t"}},
            "response_view": tasks_v2beta3.Task.View.FULL,
        }
    )
    assert task.pull_message.payload == b"x" and task.pull_message.tag == "t"
    leased = gapic.lease_tasks(
        request={"parent": queue_name, "max_tasks": 5, "lease_duration": duration_pb2.Duration(seconds=60)}
    )
    assert [t.name for t in leased.tasks] == [task.name]
    with pytest.raises(exceptions.NotFound):
        gapic_v2.get_queue(name=queue_name)
    with pytest.raises(exceptions.BadRequest):
        gapic_v2beta3.update_queue(
            queue={"name": queue_name, "type_": tasks_v2beta3.Queue.Type.PUSH},
            update_mask=field_mask_pb2.FieldMask(paths=["type"]),
        )
