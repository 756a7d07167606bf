"""What each API request leaves behind, whichever transport served it: its count and latency
in the metrics and, with ``--access-log``, one access line."""

from __future__ import annotations

import time

from google.protobuf.message import Message

from tasksd.api.authz import resource_of
from tasksd.auth.credentials import CALLER
from tasksd.model.errors import TasksError
from tasksd.observe import logs
from tasksd.observe.metrics import METRICS


def record(
    rpc: str, transport: str, started: float, error: TasksError | None, request: Message | None
) -> None:
    """An API request of ``rpc`` that began at ``started`` (time.perf_counter) and ended OK,
    or with ``error``; ``request`` is None when it was never read."""
    seconds = time.perf_counter() - started
    code = "OK" if error is None else error.code.name
    METRICS.api_request(rpc, transport, code, seconds)
    if not logs.ACCESS.disabled:
        resource = resource_of(rpc, request) if request is not None else ""
        logs.access(rpc, transport, resource, code, seconds, CALLER.get())
