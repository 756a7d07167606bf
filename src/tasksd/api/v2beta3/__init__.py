"""The v2beta3 API: v2's shape with queue types (pull queues exist but cannot be leased),
TTLs and stats."""

from __future__ import annotations

from google.cloud.tasks_v2beta3.types import cloudtasks as ct
from google.cloud.tasks_v2beta3.types import queue as queue_types
from google.cloud.tasks_v2beta3.types import task as task_types

from tasksd.api.v2 import family_version, mapping

SHAPE = mapping.Shape(
    queue_types.Queue.pb(),
    task_types.Task.pb(),
    routing_holder="app_engine_http_queue",
    typed=True,
    ttls=True,
    stats=True,
    payload_oneof="payload_type",
    pull=True,
)
FIELD_NAMES = mapping.FIELD_NAMES | {
    "queue.app_engine_routing_override": "queue.app_engine_http_queue.app_engine_routing_override",
}

VERSION = family_version("v2beta3", ct, SHAPE, FIELD_NAMES)
