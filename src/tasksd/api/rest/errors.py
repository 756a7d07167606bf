"""A TasksError as a REST reply: one table from canonical code to HTTP status, and the
``{"error": {code, message, status, details}}`` JSON body of its ``google.rpc.Status``."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from tasksd.api.status import detail_pb, wire_message
from tasksd.model.errors import Code, TasksError

HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def rest_error(error: TasksError) -> tuple[int, bytes]:
    """(HTTP status, google.rpc.Status JSON body) of an error."""
    status = HTTP_STATUS[error.code]
    body: dict[str, Any] = {"code": status, "message": wire_message(error), "status": error.code.name}
    if error.details:
        body["details"] = [json_format.MessageToDict(detail_pb(d)) for d in error.details]
    return status, json.dumps({"error": body}).encode()
