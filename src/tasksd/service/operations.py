"""The long-running operations that answer batches (BatchCreateTasks, BatchDeleteTasks), in
version-neutral terms: how an operation is named, that a retry with the same request_id runs
nothing, and what a finished batch comes to. The API packs these into each version's
``google.longrunning.Operation`` and batch metadata messages."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasksd.model.errors import Aborted, TasksError
from tasksd.model.names import LocationName, OperationName, operation_id
from tasksd.service.batches import BatchResult
from tasksd.service.core import TasksService


class BatchState(enum.Enum):
    """The state in a batch's metadata; the names are the API's enum values."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIALLY_SUCCEEDED = "PARTIALLY_SUCCEEDED"
    """Every request was tried and some failed."""
    FAILED = "FAILED"
    """Every request was tried and all failed."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What a finished batch's operation says: its times, state, each failed request's error
    by index and, when none succeeded, the error the operation itself fails with (so that a
    client's ``operation.result()`` raises); else the operation holds the batch's response."""

    start_time: datetime
    end_time: datetime
    state: BatchState
    failed: dict[int, TasksError]
    error: TasksError | None


def operation_name(location: LocationName, request_id: str) -> OperationName:
    """The operation a batch is answered with: named after the client's request_id (so that
    a retry finds it), or a new UUID.

    Raises:
        InvalidArgument: request_id cannot be an operation id.
    """
    operation = operation_id(request_id, "request_id") if request_id else str(uuid.uuid4())
    return OperationName(location.project, location.location, operation)


def batch_outcome(result: BatchResult[Any], metadata_type: str) -> BatchOutcome:
    """The outcome of a batch whose requests were all tried; ``metadata_type`` names the
    version's metadata message, which the all-failed error refers the caller to."""
    failed = result.failed
    none_succeeded = len(failed) == len(result.results)
    state = (
        BatchState.FAILED
        if none_succeeded
        else BatchState.PARTIALLY_SUCCEEDED
        if failed
        else BatchState.SUCCEEDED
    )
    # As the real service documents: the operation fails when no request succeeded.
    error = (
        Aborted(
            f"None of the requests succeeded, refer to {metadata_type}.failed_requests "
            "for individual error details"
        )
        if none_succeeded
        else None
    )
    return BatchOutcome(result.start_time, result.end_time, state, failed, error)


async def run_once(
    service: TasksService,
    name: OperationName,
    check: Callable[[], Awaitable[None]],
    running: Callable[[], bytes],
    run: Callable[[], Awaitable[bytes]],
    *,
    named: bool = True,
) -> bytes:
    """Run a batch as the long-running operation ``name`` and answer it done. A retry with
    the same request_id runs nothing: it gets the operation kept, done or (while the first
    call still runs it) running, which clients then poll with GetOperation.

    A batch without a request_id (``named`` false: ``name`` is a new UUID, which nobody can
    ask for before the answer gives it) is kept only once it is done.

    Args:
        check: raises when the batch may not run; called only when no operation of that name
            is kept.
        running: the batch's running operation, encoded (kept while it runs, for a retry
            with the same request_id).
        run: runs the batch and gives its done operation, encoded. When it raises, the
            operation is forgotten (a retry runs the batch again) and the error goes on.
    """
    if not named:
        await check()
        done = await run()
        await service.keep_operation(name, done)
        return done
    kept = await service.get_operation(name)
    if kept is None:
        await check()
        kept = await service.begin_operation(name, running())
    if kept is not None:
        return kept
    try:
        done = await run()
    except BaseException:
        await service.end_operation(name, None)
        raise
    await service.end_operation(name, done)
    return done
