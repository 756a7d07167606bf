"""Batches of task creations and deletions (BatchCreateTasks, BatchDeleteTasks), the
long-running operations that answer them, and the per-location CMEK configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from tasksd.model.errors import InvalidArgument, TasksError
from tasksd.model.names import LocationName

T = TypeVar("T")

MAX_BATCH_CREATE = 100
"""CreateTaskRequests in one BatchCreateTasks ("The maximum number of requests is 100")."""
MAX_BATCH_DELETE = 1000
"""Task names in one BatchDeleteTasks ("A maximum of 1000 tasks can be deleted in a batch")."""
OPERATION_KEEP = timedelta(days=1)
"""How long a finished operation can be fetched again (GetOperation, or a retry that gives the
same request_id)."""
RUNNING_OPERATION_KEEP = timedelta(minutes=10)
"""How long the operation of a batch that has started is answered as running. A batch takes
well under a second; one whose server stopped midway is forgotten after this, so that a retry
runs it again."""

_KMS_KEY = re.compile(r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+")


@dataclass(frozen=True, slots=True)
class BatchResult(Generic[T]):
    """What each request of a batch came to, in request order: its result or its error."""

    start_time: datetime
    end_time: datetime
    results: list[T | TasksError]

    @property
    def failed(self) -> dict[int, TasksError]:
        return {i: r for i, r in enumerate(self.results) if isinstance(r, TasksError)}


def check_batch_size(count: int, limit: int, field: str, what: str) -> None:
    if count == 0:
        raise InvalidArgument(f"{field} is required: give at least one {what}.")
    if count > limit:
        raise InvalidArgument(f"{field} may hold at most {limit} {what}s, got {count}.")


def cmek_meta_key(location: LocationName) -> str:
    return f"cmek/{location.path}"


def check_kms_key(kms_key: str) -> str:
    """A CMEK key name (empty turns CMEK off)."""
    if kms_key and not _KMS_KEY.fullmatch(kms_key):
        raise InvalidArgument(
            f"cmek_config.kms_key {kms_key!r} must have the format "
            "projects/PROJECT_ID/locations/LOCATION_ID/keyRings/KEY_RING_ID/cryptoKeys/KEY_ID."
        )
    return kms_key
