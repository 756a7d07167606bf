"""Wire parity: every error the service raises renders with the same canonical code, the same
message and the same google.rpc details over REST and over gRPC, in every API version.

Each case is one request that fails in one way the service can fail. It is sent, as the same
request, through google-cloud-tasks of its version twice: over gRPC on an insecure channel and
with the REST transport (which sends ``$alt=json;enum-encoding=int``). What is compared is
what came over the wire, not what google-api-core made of it:

- gRPC: the status code, the status message and the ``grpc-status-details-bin`` trailer
  decoded as google.rpc.Status (whose code and message must be the call's own);
- REST: ``error.status``, ``error.message`` and ``error.details`` (each with its ``@type``),
  with ``error.code`` and the HTTP status both the code's HTTP mapping.

Each case also names the code it must fail with and a part of its message, so that a request
that stopped failing (or failed for another reason on both wires) is caught too.

Left out, because only one wire can produce them (they are not errors of the service):

- REST only: JSON that does not parse or does not fit the message, unknown query parameters,
  URLs no route matches, bodies too deep or too slow, the standard parameters
  (``alt``, ``fields``, ``$.xgafv``…), the HTTP batch endpoint, and BufferTask (served over
  REST only), and a request message that is absent (a REST body always *is* the message, so
  REST cannot send CreateQueue without a queue).
- gRPC only: bytes that are not a message of the RPC's type, Timestamps and Durations beyond
  their types' ranges (their JSON forms cannot express them: the REST client refuses to
  serialize them), enum numbers (the REST client sends them as numbers too, but a number JSON
  parsing rejects never reaches the service).
- Names the REST URL templates cannot carry: an empty name or parent, a name of the wrong
  shape (``projects/p/queues/q``), a parent that is no resource name at all (production's
  PERMISSION_DENIED with google.rpc.ErrorInfo: tested over gRPC in test_recorded_errors.py).
  Over REST they are a URL that no route matches.
- UploadQueueYaml (v2beta2): google-cloud-tasks' REST transport has no such method
  ("not available over REST transport"); its errors over both wires are in
  test_queue_yaml.py. Nor are v2beta2's REST-only surface (its discovery document's batches, CMEK config and
  task-level retryConfig, which its published protobuf and so its gRPC service lack).

Found by these tables (and fixed in tasksd.api.status): a message that echoes a long input
(a page token, a request_id, a filter) was sent whole over gRPC, where clients refuse trailers
over 8 KiB, so gRPC callers got RESOURCE_EXHAUSTED "received metadata size exceeds …" where
REST callers got the INVALID_ARGUMENT. Messages are now cut alike on both wires.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from tests.integration.conftest import PARENT, Server, versioned_client

VERSIONS = ["v2beta2", "v2beta3", "v2"]

# google.rpc.Code → HTTP status, as google/rpc/code.proto documents it.
HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
assert error_details_pb2.Help  # imported so that the details' Any messages can be decoded

PUSH = f"{PARENT}/queues/wp-push"
"""A paused App Engine queue (paused, so that its tasks stay where they are)."""
PULL = f"{PARENT}/queues/wp-pull"
PAUSED_PULL = f"{PARENT}/queues/wp-pull-paused"
GONE = f"{PARENT}/queues/wp-gone"
"""A queue deleted at the start: its name stays reserved (queue_reuse_delay)."""
MISSING = f"{PARENT}/queues/wp-never"
BAD_QUEUE = f"{PARENT}/queues/bad!queue"
BAD_LOCATION = "projects/test-project/locations/bad location"
PUSH_TASK = f"{PUSH}/tasks/t-push"
GONE_TASK = f"{PUSH}/tasks/t-gone"
"""Deleted at the start: a tombstone."""
PULL_TASK = f"{PULL}/tasks/t-pull"
NEVER_TASK = f"{PUSH}/tasks/t-never"
BAD_TASK = f"{PUSH}/tasks/not a valid id"
STALE = timestamp_pb2.Timestamp(seconds=1_000_000_000)
"""A schedule time that is no task's current one: no lease is held with it."""

QUEUE_MISSING = "Queue does not exist."
GENERIC_NOT_FOUND = "Requested entity was not found."
QUEUE_FORMAT = "Queue name must be formatted"


def _ae(version: str, url: str = "/x") -> dict[str, Any]:
    """An App Engine request as the version spells it."""
    key = "relative_url" if version == "v2beta2" else "relative_uri"
    return {"app_engine_http_request": {key: url}}


def _queue(version: str, name: str, **more: Any) -> dict[str, Any]:
    queue: dict[str, Any] = {"name": name, **more}
    if version == "v2beta2" and not {"pull_target", "http_target"} & set(more):
        queue["app_engine_http_target"] = {}
    return queue


Request = Callable[[str], dict[str, Any]]
"""A case's request, given the API version."""


@dataclass(frozen=True)
class Case:
    id: str
    rpc: str
    """The client method."""
    request: Request
    code: str
    """The canonical code the request must fail with."""
    says: str
    """A part of the message it must carry."""
    versions: tuple[str, ...] = tuple(VERSIONS)
    details: tuple[str, ...] = field(default=())
    """The @type names (google.rpc.X) the error must carry, in order."""
    bug: str | None = None
    """A known bug of the service (not of the wires) that gives another error than the case
    expects: its wires are still compared, then it is an xfail (and a failure once fixed)."""


BETA2 = ("v2beta2",)
V2_FAMILY = ("v2beta3", "v2")
WITH_READ_MASK = ("v2beta2", "v2beta3")
WITH_PULL = ("v2beta2", "v2beta3")

CASES: list[Case] = [
    # -- ListQueues --------------------------------------------------------------------
    Case(
        "list_queues-bad-location",
        "list_queues",
        lambda v: {"parent": BAD_LOCATION},
        "INVALID_ARGUMENT",
        "Invalid location ID 'bad location' in parent",
    ),
    Case(
        "list_queues-bad-filter",
        "list_queues",
        lambda v: {"parent": PARENT, "filter": "state = = PAUSED"},
        "INVALID_ARGUMENT",
        "Invalid filter",
    ),
    Case(
        "list_queues-unknown-filter-field",
        "list_queues",
        lambda v: {"parent": PARENT, "filter": "colour = blue"},
        "INVALID_ARGUMENT",
        "Invalid filter",
    ),
    Case(
        "list_queues-page-token",
        "list_queues",
        lambda v: {"parent": PARENT, "page_token": "not-a-token"},
        "INVALID_ARGUMENT",
        "Invalid page_token 'not-a-token'",
    ),
    Case(
        "list_queues-long-page-token",
        "list_queues",
        lambda v: {"parent": PARENT, "page_token": "x" * 20_000},
        "INVALID_ARGUMENT",
        "Invalid page_token 'xxx",
    ),
    Case(
        "list_queues-negative-page-size",
        "list_queues",
        lambda v: {"parent": PARENT, "page_size": -1},
        "INVALID_ARGUMENT",
        "page_size must not be negative, got -1.",
    ),
    Case(
        "list_queues-read-mask",
        "list_queues",
        lambda v: {"parent": PARENT, "read_mask": {"paths": ["no_such_field"]}},
        "INVALID_ARGUMENT",
        "read_mask: 'no_such_field' is not a field of Queue.",
        WITH_READ_MASK,
    ),
    # -- GetQueue ----------------------------------------------------------------------
    Case("get_queue-missing", "get_queue", lambda v: {"name": MISSING}, "NOT_FOUND", QUEUE_MISSING),
    Case("get_queue-deleted", "get_queue", lambda v: {"name": GONE}, "NOT_FOUND", QUEUE_MISSING),
    Case(
        "get_queue-pull-queue-unseen-in-v2",
        "get_queue",
        lambda v: {"name": PULL},
        "NOT_FOUND",
        QUEUE_MISSING,
        ("v2",),
    ),
    Case(
        "get_queue-bad-name",
        "get_queue",
        lambda v: {"name": BAD_QUEUE},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "get_queue-bad-location",
        "get_queue",
        lambda v: {"name": f"{BAD_LOCATION}/queues/q"},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "get_queue-read-mask",
        "get_queue",
        lambda v: {"name": PUSH, "read_mask": {"paths": ["rate_limits.no_such_field"]}},
        "INVALID_ARGUMENT",
        "read_mask: 'rate_limits.no_such_field' is not a field of Queue.",
        WITH_READ_MASK,
    ),
    # -- CreateQueue -------------------------------------------------------------------
    Case(
        "create_queue-duplicate",
        "create_queue",
        lambda v: {"parent": PARENT, "queue": _queue(v, PUSH)},
        "ALREADY_EXISTS",
        "Queue already exists",
    ),
    Case(
        "create_queue-deleted-too-recently",
        "create_queue",
        lambda v: {"parent": PARENT, "queue": _queue(v, GONE)},
        "FAILED_PRECONDITION",
        "existed too recently",
    ),
    Case(
        "create_queue-bad-name",
        "create_queue",
        lambda v: {"parent": PARENT, "queue": _queue(v, BAD_QUEUE)},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "create_queue-wrong-shape-name",
        "create_queue",
        lambda v: {"parent": PARENT, "queue": _queue(v, "projects/test-project/queues/q")},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "create_queue-no-name",
        "create_queue",
        lambda v: {"parent": PARENT, "queue": _queue(v, "")},
        "INVALID_ARGUMENT",
        "queue.name is required.",
    ),
    Case(
        "create_queue-other-location",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(v, "projects/test-project/locations/elsewhere/queues/q"),
        },
        "INVALID_ARGUMENT",
        "is not in the location named in parent",
    ),
    Case(
        "create_queue-bad-parent-location",
        "create_queue",
        lambda v: {"parent": BAD_LOCATION, "queue": _queue(v, f"{PARENT}/queues/q")},
        "INVALID_ARGUMENT",
        "Invalid location ID 'bad location' in parent",
    ),
    Case(
        "create_queue-rate-too-high",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(
                v,
                f"{PARENT}/queues/wp-fast",
                rate_limits={
                    (
                        "max_tasks_dispatched_per_second" if v == "v2beta2" else "max_dispatches_per_second"
                    ): 1e9
                },
            ),
        },
        "INVALID_ARGUMENT",
        "must be greater than 0 and at most",
    ),
    Case(
        "create_queue-concurrency-too-high",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(
                v,
                f"{PARENT}/queues/wp-crowd",
                rate_limits={
                    ("max_concurrent_tasks" if v == "v2beta2" else "max_concurrent_dispatches"): 1_000_000
                },
            ),
        },
        "INVALID_ARGUMENT",
        "must be between 1 and",
    ),
    Case(
        "create_queue-negative-attempts",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(v, f"{PARENT}/queues/wp-retry", retry_config={"max_attempts": -5}),
        },
        "INVALID_ARGUMENT",
        "retry_config.max_attempts must be greater than 0",
    ),
    Case(
        "create_queue-negative-backoff",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(v, f"{PARENT}/queues/wp-backoff", retry_config={"min_backoff": {"seconds": -3}}),
        },
        "INVALID_ARGUMENT",
        "retry_config.min_backoff must not be negative",
    ),
    Case(
        "create_queue-sampling-ratio",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(v, f"{PARENT}/queues/wp-log", stackdriver_logging_config={"sampling_ratio": 2.0}),
        },
        "INVALID_ARGUMENT",
        "sampling_ratio must be between 0.0 and 1.0",
        V2_FAMILY,
    ),
    Case(
        "create_queue-uri-override-path",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(
                v,
                f"{PARENT}/queues/wp-override",
                http_target={"uri_override": {"path_override": {"path": "no-slash"}}},
            ),
        },
        "INVALID_ARGUMENT",
        "path_override.path must begin with '/'",
    ),
    Case(
        "create_queue-pull-with-target",
        "create_queue",
        lambda v: {
            "parent": PARENT,
            "queue": _queue(
                v,
                f"{PARENT}/queues/wp-pull-http",
                type_="PULL",
                http_target={"uri_override": {"host": "example.com"}},
            ),
        },
        "INVALID_ARGUMENT",
        "A pull queue cannot have an App Engine or HTTP target.",
        ("v2beta3",),  # v2beta2's targets are one oneof
    ),
    # -- UpdateQueue -------------------------------------------------------------------
    Case(
        "update_queue-unknown-mask-path",
        "update_queue",
        lambda v: {"queue": _queue(v, PUSH), "update_mask": {"paths": ["no_such_field"]}},
        "INVALID_ARGUMENT",
        "update_mask: 'no_such_field' is not a field of Queue.",
    ),
    Case(
        "update_queue-output-only-mask-path",
        "update_queue",
        lambda v: {"queue": _queue(v, PUSH), "update_mask": {"paths": ["state"]}},
        "INVALID_ARGUMENT",
        "update_mask: 'state' is output only",
    ),
    Case(
        "update_queue-deleted-too-recently",
        "update_queue",
        lambda v: {"queue": _queue(v, GONE)},
        "FAILED_PRECONDITION",
        "existed too recently",
    ),
    Case(
        "update_queue-bad-name",
        "update_queue",
        lambda v: {"queue": _queue(v, BAD_QUEUE)},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "update_queue-change-type",
        "update_queue",
        lambda v: {"queue": _queue(v, PULL, **({} if v == "v2beta2" else {"type_": "PUSH"}))},
        "INVALID_ARGUMENT",
        "The queue type cannot be changed",
        BETA2,  # v2beta3 leaves a queue's type as it is on update
    ),
    Case(
        "update_queue-bad-rate",
        "update_queue",
        lambda v: {
            "queue": _queue(
                v,
                PUSH,
                rate_limits={
                    ("max_tasks_dispatched_per_second" if v == "v2beta2" else "max_dispatches_per_second"): -1
                },
            ),
            "update_mask": {"paths": ["rate_limits"]},
        },
        "INVALID_ARGUMENT",
        "must be greater than 0 and at most",
    ),
    # -- DeleteQueue, PurgeQueue, PauseQueue, ResumeQueue ------------------------------
    Case("delete_queue-missing", "delete_queue", lambda v: {"name": MISSING}, "NOT_FOUND", GENERIC_NOT_FOUND),
    Case(
        "delete_queue-bad-name",
        "delete_queue",
        lambda v: {"name": BAD_QUEUE},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case("purge_queue-missing", "purge_queue", lambda v: {"name": MISSING}, "NOT_FOUND", QUEUE_MISSING),
    Case("pause_queue-missing", "pause_queue", lambda v: {"name": MISSING}, "NOT_FOUND", QUEUE_MISSING),
    Case(
        "pause_queue-deleted",
        "pause_queue",
        lambda v: {"name": GONE},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case(
        "resume_queue-deleted",
        "resume_queue",
        lambda v: {"name": GONE},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case("purge_queue-deleted", "purge_queue", lambda v: {"name": GONE}, "NOT_FOUND", QUEUE_MISSING),
    Case("resume_queue-missing", "resume_queue", lambda v: {"name": MISSING}, "NOT_FOUND", QUEUE_MISSING),
    Case(
        "resume_queue-bad-name",
        "resume_queue",
        lambda v: {"name": BAD_QUEUE},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    # -- IAM ---------------------------------------------------------------------------
    Case(
        "get_iam_policy-missing",
        "get_iam_policy",
        lambda v: {"resource": MISSING},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case(
        "get_iam_policy-bad-version",
        "get_iam_policy",
        lambda v: {"resource": PUSH, "options": {"requested_policy_version": 2}},
        "INVALID_ARGUMENT",
        "options.requested_policy_version must be 0, 1 or 3, got 2.",
    ),
    Case(
        "get_iam_policy-bad-name",
        "get_iam_policy",
        lambda v: {"resource": BAD_QUEUE},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "set_iam_policy-missing",
        "set_iam_policy",
        lambda v: {"resource": MISSING, "policy": {"bindings": []}},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case(
        "set_iam_policy-not-a-role",
        "set_iam_policy",
        lambda v: {
            "resource": PUSH,
            "policy": {"bindings": [{"role": "owner", "members": ["user:a@example.com"]}]},
        },
        "INVALID_ARGUMENT",
        "is not a role name",
    ),
    Case(
        "set_iam_policy-unsupported-role",
        "set_iam_policy",
        lambda v: {
            "resource": PUSH,
            "policy": {"bindings": [{"role": "roles/storage.admin", "members": ["user:a@example.com"]}]},
        },
        "INVALID_ARGUMENT",
        "Role roles/storage.admin is not supported for this resource.",
    ),
    Case(
        "set_iam_policy-no-members",
        "set_iam_policy",
        lambda v: {"resource": PUSH, "policy": {"bindings": [{"role": "roles/cloudtasks.viewer"}]}},
        "INVALID_ARGUMENT",
        "members must name at least one principal.",
    ),
    Case(
        "set_iam_policy-bad-version",
        "set_iam_policy",
        lambda v: {"resource": PUSH, "policy": {"version": 2}},
        "INVALID_ARGUMENT",
        "policy.version must be 0, 1 or 3, got 2.",
    ),
    Case(
        "set_iam_policy-condition-needs-v3",
        "set_iam_policy",
        lambda v: {
            "resource": PUSH,
            "policy": {
                "version": 1,
                "bindings": [
                    {
                        "role": "roles/cloudtasks.viewer",
                        "members": ["user:a@example.com"],
                        "condition": {"expression": "true"},
                    }
                ],
            },
        },
        "INVALID_ARGUMENT",
        "condition requires policy.version 3.",
    ),
    Case(
        "set_iam_policy-stale-etag",
        "set_iam_policy",
        lambda v: {"resource": PUSH, "policy": {"etag": b"stale-etag"}},
        "ABORTED",
        "There were concurrent policy changes.",
    ),
    Case(
        "set_iam_policy-audit-configs",
        "set_iam_policy",
        lambda v: {"resource": PUSH, "policy": {"audit_configs": [{"service": "allServices"}]}},
        "INVALID_ARGUMENT",
        "policy.audit_configs are not supported on Cloud Tasks queues.",
    ),
    Case(
        "set_iam_policy-unknown-mask-path",
        "set_iam_policy",
        lambda v: {"resource": PUSH, "policy": {}, "update_mask": {"paths": ["no_such_field"]}},
        "INVALID_ARGUMENT",
        "update_mask: 'no_such_field' is not a field of Policy.",
    ),
    Case(
        "test_iam_permissions-wildcard",
        "test_iam_permissions",
        lambda v: {"resource": PUSH, "permissions": ["cloudtasks.*"]},
        "INVALID_ARGUMENT",
        "Permissions with wildcards are not allowed",
    ),
    Case(
        "test_iam_permissions-bad-name",
        "test_iam_permissions",
        lambda v: {"resource": BAD_QUEUE, "permissions": ["cloudtasks.queues.get"]},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    # -- ListTasks ---------------------------------------------------------------------
    Case("list_tasks-missing-queue", "list_tasks", lambda v: {"parent": MISSING}, "NOT_FOUND", QUEUE_MISSING),
    Case(
        "list_tasks-page-token",
        "list_tasks",
        lambda v: {"parent": PUSH, "page_token": "garbage"},
        "INVALID_ARGUMENT",
        "Invalid page_token 'garbage'",
    ),
    Case(
        "list_tasks-long-non-ascii-page-token",
        "list_tasks",
        lambda v: {"parent": PUSH, "page_token": "é✓" * 2_000},
        "INVALID_ARGUMENT",
        "Invalid page_token 'é✓",
    ),
    Case(
        "list_tasks-negative-page-size",
        "list_tasks",
        lambda v: {"parent": PUSH, "page_size": -5},
        "INVALID_ARGUMENT",
        "page_size must not be negative, got -5.",
    ),
    Case(
        "list_tasks-bad-parent",
        "list_tasks",
        lambda v: {"parent": BAD_QUEUE},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    # -- GetTask -----------------------------------------------------------------------
    Case(
        "get_task-never-existed", "get_task", lambda v: {"name": NEVER_TASK}, "NOT_FOUND", GENERIC_NOT_FOUND
    ),
    Case("get_task-tombstone", "get_task", lambda v: {"name": GONE_TASK}, "NOT_FOUND", "existed recently"),
    Case(
        "get_task-missing-queue",
        "get_task",
        lambda v: {"name": f"{MISSING}/tasks/t"},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case(
        "get_task-bad-id",
        "get_task",
        lambda v: {"name": BAD_TASK},
        "INVALID_ARGUMENT",
        'Task ID "not a valid id" can contain only letters',
        details=("Help",),
    ),
    Case(
        "get_task-non-ascii-id",
        "get_task",
        lambda v: {"name": f"{PUSH}/tasks/tâche-😀"},
        "INVALID_ARGUMENT",
        'Task ID "tâche-😀" can contain only letters',
        details=("Help",),
    ),
    Case(
        "get_task-long-id",
        "get_task",
        lambda v: {"name": f"{PUSH}/tasks/{'é' * 1_000}"},
        "INVALID_ARGUMENT",
        'Task ID "ééé',
        details=("Help",),
    ),
    Case(
        "get_task-bad-queue",
        "get_task",
        lambda v: {"name": f"{BAD_QUEUE}/tasks/t"},
        "INVALID_ARGUMENT",
        "Invalid queue ID 'bad!queue' in name",
    ),
    # -- CreateTask --------------------------------------------------------------------
    Case(
        "create_task-missing-queue",
        "create_task",
        lambda v: {"parent": MISSING, "task": _ae(v)},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case(
        "create_task-deleted-queue",
        "create_task",
        lambda v: {"parent": GONE, "task": _ae(v)},
        "NOT_FOUND",
        QUEUE_MISSING,
    ),
    Case(
        "create_task-duplicate",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"name": PUSH_TASK, **_ae(v)}},
        "ALREADY_EXISTS",
        "Requested entity already exists",
    ),
    Case(
        "create_task-tombstone",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"name": GONE_TASK, **_ae(v)}},
        "ALREADY_EXISTS",
        "Requested entity already exists",
    ),
    Case(
        "create_task-bad-id",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"name": BAD_TASK, **_ae(v)}},
        "INVALID_ARGUMENT",
        'Task ID "not a valid id" can contain only letters',
        details=("Help",),
    ),
    Case(
        "create_task-other-queue",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"name": f"{MISSING}/tasks/t", **_ae(v)}},
        "INVALID_ARGUMENT",
        "The queue name from request",
    ),
    Case(
        "create_task-bad-parent",
        "create_task",
        lambda v: {"parent": BAD_QUEUE, "task": _ae(v)},
        "INVALID_ARGUMENT",
        QUEUE_FORMAT,
        details=("Help",),
    ),
    Case(
        "create_task-no-payload",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"name": f"{PUSH}/tasks/t-empty"}},
        "INVALID_ARGUMENT",
        "The task has no payload",
    ),
    Case(
        "create_task-empty-url",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"http_request": {"url": ""}}},
        "INVALID_ARGUMENT",
        "HttpRequest.url is required.",
    ),
    Case(
        "create_task-url-scheme",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"http_request": {"url": "ftp://example.com/x"}}},
        "INVALID_ARGUMENT",
        "HttpTarget.url must start with 'http://' or 'https://'.",
    ),
    Case(
        "create_task-metadata-address",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"http_request": {"url": "http://169.254.169.254/x"}}},
        "INVALID_ARGUMENT",
        "task.http_request.url",
    ),
    Case(
        "create_task-relative-url",
        "create_task",
        lambda v: {"parent": PUSH, "task": _ae(v, "no-slash")},
        "INVALID_ARGUMENT",
        "must begin with '/', got 'no-slash'.",
    ),
    Case(
        "create_task-forbidden-header",
        "create_task",
        lambda v: {
            "parent": PUSH,
            "task": {
                "app_engine_http_request": {
                    **_ae(v)["app_engine_http_request"],
                    "headers": {"X-AppEngine-Foo": "1"},
                }
            },
        },
        "INVALID_ARGUMENT",
        "cannot be set.",
    ),
    Case(
        "create_task-far-schedule",
        "create_task",
        lambda v: {"parent": PUSH, "task": {**_ae(v), "schedule_time": {"seconds": 253_402_000_000}}},
        "INVALID_ARGUMENT",
        "task.schedule_time must be at most 30 days in the future",
    ),
    Case(
        "create_task-deadline",
        "create_task",
        lambda v: {"parent": PUSH, "task": {**_ae(v), "dispatch_deadline": {"seconds": 999_999}}},
        "INVALID_ARGUMENT",
        "dispatch_deadline",
        V2_FAMILY,
    ),
    Case(
        "create_task-pull-message-in-push-queue",
        "create_task",
        lambda v: {"parent": PUSH, "task": {"pull_message": {"payload": b"x"}}},
        "INVALID_ARGUMENT",
        "task.pull_message can only be used in a pull queue",
        BETA2,
    ),
    Case(
        "create_task-pull-tag-too-long",
        "create_task",
        lambda v: {"parent": PULL, "task": {"pull_message": {"payload": b"x", "tag": "t" * 600}}},
        "INVALID_ARGUMENT",
        "task.pull_message.tag must be less than",
        BETA2,
    ),
    Case(
        "create_task-push-task-in-pull-queue",
        "create_task",
        lambda v: {"parent": PULL, "task": _ae(v)},
        "INVALID_ARGUMENT",
        "cannot be used in a pull queue",
        WITH_PULL,
    ),
    # -- DeleteTask, RunTask -----------------------------------------------------------
    Case(
        "delete_task-never-existed",
        "delete_task",
        lambda v: {"name": NEVER_TASK},
        "NOT_FOUND",
        GENERIC_NOT_FOUND,
    ),
    Case(
        "delete_task-tombstone", "delete_task", lambda v: {"name": GONE_TASK}, "NOT_FOUND", "existed recently"
    ),
    Case(
        "delete_task-bad-id",
        "delete_task",
        lambda v: {"name": BAD_TASK},
        "INVALID_ARGUMENT",
        "Task ID",
        details=("Help",),
    ),
    Case(
        "run_task-never-existed", "run_task", lambda v: {"name": NEVER_TASK}, "NOT_FOUND", GENERIC_NOT_FOUND
    ),
    Case("run_task-tombstone", "run_task", lambda v: {"name": GONE_TASK}, "NOT_FOUND", "existed recently"),
    Case(
        "run_task-pull-task",
        "run_task",
        lambda v: {"name": PULL_TASK},
        "FAILED_PRECONDITION",
        "RunTask cannot be called on a pull task.",
        WITH_PULL,
    ),
    Case(
        "run_task-bad-id",
        "run_task",
        lambda v: {"name": BAD_TASK},
        "INVALID_ARGUMENT",
        "Task ID",
        details=("Help",),
    ),
    # -- BatchCreateTasks, BatchDeleteTasks --------------------------------------------
    Case(
        "batch_create_tasks-empty",
        "batch_create_tasks",
        lambda v: {"parent": PUSH, "requests": []},
        "INVALID_ARGUMENT",
        "requests is required: give at least one CreateTaskRequest.",
        V2_FAMILY,
    ),
    Case(
        "batch_create_tasks-too-many",
        "batch_create_tasks",
        lambda v: {"parent": PUSH, "requests": [{"task": _ae(v)}] * 101},
        "INVALID_ARGUMENT",
        "requests may hold at most 100 CreateTaskRequests, got 101.",
        V2_FAMILY,
    ),
    Case(
        "batch_create_tasks-other-parent",
        "batch_create_tasks",
        lambda v: {"parent": PUSH, "requests": [{"parent": MISSING, "task": _ae(v)}]},
        "INVALID_ARGUMENT",
        "all the tasks of a batch go to one queue.",
        V2_FAMILY,
    ),
    Case(
        "batch_create_tasks-missing-queue",
        "batch_create_tasks",
        lambda v: {"parent": MISSING, "requests": [{"task": _ae(v)}]},
        "NOT_FOUND",
        QUEUE_MISSING,
        V2_FAMILY,
    ),
    Case(
        "batch_create_tasks-bad-request-id",
        "batch_create_tasks",
        lambda v: {"parent": PUSH, "requests": [{"task": _ae(v)}], "request_id": "no spaces"},
        "INVALID_ARGUMENT",
        "Invalid operation ID 'no spaces' in request_id",
        V2_FAMILY,
    ),
    Case(
        "batch_create_tasks-long-request-id",
        "batch_create_tasks",
        lambda v: {"parent": PUSH, "requests": [{"task": _ae(v)}], "request_id": "z" * 9_000},
        "INVALID_ARGUMENT",
        "Invalid operation ID 'zzz",
        V2_FAMILY,
    ),
    Case(
        "batch_delete_tasks-empty",
        "batch_delete_tasks",
        lambda v: {"parent": PUSH, "names": []},
        "INVALID_ARGUMENT",
        "names is required: give at least one task name.",
        V2_FAMILY,
    ),
    Case(
        "batch_delete_tasks-other-queue",
        "batch_delete_tasks",
        lambda v: {"parent": PUSH, "names": [PULL_TASK]},
        "INVALID_ARGUMENT",
        "is not a task of the batch's parent",
        V2_FAMILY,
    ),
    Case(
        "batch_delete_tasks-bad-id",
        "batch_delete_tasks",
        lambda v: {"parent": PUSH, "names": [BAD_TASK]},
        "INVALID_ARGUMENT",
        "Task ID",
        V2_FAMILY,
        details=("Help",),
    ),
    # -- CMEK --------------------------------------------------------------------------
    Case(
        "get_cmek_config-bad-location",
        "get_cmek_config",
        lambda v: {"name": f"{BAD_LOCATION}/cmekConfig"},
        "INVALID_ARGUMENT",
        "Invalid location ID 'bad location' in name",
        V2_FAMILY,
    ),
    Case(
        "update_cmek_config-bad-key",
        "update_cmek_config",
        lambda v: {"cmek_config": {"name": f"{PARENT}/cmekConfig", "kms_key": "not-a-key"}},
        "INVALID_ARGUMENT",
        "cmek_config.kms_key 'not-a-key' must have the format",
        V2_FAMILY,
    ),
    Case(
        "update_cmek_config-mask",
        "update_cmek_config",
        lambda v: {"cmek_config": {"name": f"{PARENT}/cmekConfig"}, "update_mask": {"paths": ["name"]}},
        "INVALID_ARGUMENT",
        "update_mask may name only kms_key, got name.",
        V2_FAMILY,
    ),
    Case(
        "update_cmek_config-unknown-mask-path",
        "update_cmek_config",
        lambda v: {"cmek_config": {"name": f"{PARENT}/cmekConfig"}, "update_mask": {"paths": ["colour"]}},
        "INVALID_ARGUMENT",
        "update_mask: 'colour' is not a field of CmekConfig.",
        V2_FAMILY,
    ),
    # -- Locations, Operations ---------------------------------------------------------
    Case(
        "get_location-missing",
        "get_location",
        lambda v: {"name": "projects/test-project/locations/nowhere"},
        "NOT_FOUND",
        "Location projects/test-project/locations/nowhere is not found.",
    ),
    Case(
        "get_location-bad-id",
        "get_location",
        lambda v: {"name": BAD_LOCATION},
        "INVALID_ARGUMENT",
        "Invalid location ID 'bad location' in name",
    ),
    Case(
        "list_locations-page-token",
        "list_locations",
        lambda v: {"name": "projects/test-project", "page_token": "garbage"},
        "INVALID_ARGUMENT",
        "Invalid page_token 'garbage'",
    ),
    Case(
        "get_operation-missing",
        "get_operation",
        lambda v: {"name": f"{PARENT}/operations/never"},
        "NOT_FOUND",
        f"Operation {PARENT}/operations/never was not found",
        V2_FAMILY,
    ),
    # -- LeaseTasks, AcknowledgeTask, RenewLease, CancelLease (v2beta2) -----------------
    Case(
        "lease_tasks-push-queue",
        "lease_tasks",
        lambda v: {"parent": PUSH, "max_tasks": 1, "lease_duration": {"seconds": 60}},
        "FAILED_PRECONDITION",
        "is not a pull queue",
        BETA2,
    ),
    Case(
        "lease_tasks-paused-queue",
        "lease_tasks",
        lambda v: {"parent": PAUSED_PULL, "max_tasks": 1, "lease_duration": {"seconds": 60}},
        "FAILED_PRECONDITION",
        "is paused: tasks cannot be leased",
        BETA2,
    ),
    Case(
        "lease_tasks-missing-queue",
        "lease_tasks",
        lambda v: {"parent": MISSING, "max_tasks": 1, "lease_duration": {"seconds": 60}},
        "NOT_FOUND",
        QUEUE_MISSING,
        BETA2,
    ),
    Case(
        "lease_tasks-no-duration",
        "lease_tasks",
        lambda v: {"parent": PULL, "max_tasks": 1},
        "INVALID_ARGUMENT",
        "lease_duration is required.",
        BETA2,
    ),
    Case(
        "lease_tasks-duration-too-long",
        "lease_tasks",
        lambda v: {"parent": PULL, "max_tasks": 1, "lease_duration": {"seconds": 700_000}},
        "INVALID_ARGUMENT",
        "lease_duration must be between 1s and 604800s",
        BETA2,
    ),
    Case(
        "lease_tasks-duration-too-short",
        "lease_tasks",
        lambda v: {"parent": PULL, "max_tasks": 1, "lease_duration": {"nanos": 500_000_000}},
        "INVALID_ARGUMENT",
        "lease_duration must be between 1s and 604800s",
        BETA2,
    ),
    Case(
        "lease_tasks-duration-out-of-range",
        "lease_tasks",
        lambda v: {
            "parent": PULL,
            "max_tasks": 1,
            "lease_duration": duration_pb2.Duration(seconds=-315_576_000_000),
        },
        "INVALID_ARGUMENT",
        "lease_duration must be between 1s and 604800s",
        BETA2,
    ),
    Case(
        "lease_tasks-max-tasks",
        "lease_tasks",
        lambda v: {"parent": PULL, "max_tasks": 1001, "lease_duration": {"seconds": 60}},
        "INVALID_ARGUMENT",
        "max_tasks must be between 1 and 1000, got 1001.",
        BETA2,
    ),
    Case(
        "lease_tasks-bad-filter",
        "lease_tasks",
        lambda v: {
            "parent": PULL,
            "max_tasks": 1,
            "lease_duration": {"seconds": 60},
            "filter": "colour=blue",
        },
        "INVALID_ARGUMENT",
        "Invalid filter 'colour=blue'",
        BETA2,
    ),
    Case(
        "lease_tasks-long-filter",
        "lease_tasks",
        lambda v: {"parent": PULL, "max_tasks": 1, "lease_duration": {"seconds": 60}, "filter": "é" * 9_000},
        "INVALID_ARGUMENT",
        "Invalid filter 'ééé",
        BETA2,
    ),
    Case(
        "lease_tasks-long-tag",
        "lease_tasks",
        lambda v: {
            "parent": PULL,
            "max_tasks": 1,
            "lease_duration": {"seconds": 60},
            "filter": "tag=" + "t" * 600,
        },
        "INVALID_ARGUMENT",
        "The tag in filter must be less than",
        BETA2,
    ),
    Case(
        "acknowledge_task-no-schedule-time",
        "acknowledge_task",
        lambda v: {"name": PULL_TASK},
        "INVALID_ARGUMENT",
        "schedule_time is required",
        BETA2,
    ),
    Case(
        "acknowledge_task-lease-not-held",
        "acknowledge_task",
        lambda v: {"name": PULL_TASK, "schedule_time": STALE},
        "FAILED_PRECONDITION",
        "the caller does not hold the task's lease.",
        BETA2,
    ),
    Case(
        "acknowledge_task-push-task",
        "acknowledge_task",
        lambda v: {"name": PUSH_TASK, "schedule_time": STALE},
        "FAILED_PRECONDITION",
        "is not a pull task",
        BETA2,
    ),
    Case(
        "acknowledge_task-never-existed",
        "acknowledge_task",
        lambda v: {"name": f"{PULL}/tasks/t-never", "schedule_time": STALE},
        "NOT_FOUND",
        GENERIC_NOT_FOUND,
        BETA2,
    ),
    Case(
        "acknowledge_task-tombstone",
        "acknowledge_task",
        lambda v: {"name": GONE_TASK, "schedule_time": STALE},
        "NOT_FOUND",
        "existed recently",
        BETA2,
    ),
    Case(
        "acknowledge_task-bad-id",
        "acknowledge_task",
        lambda v: {"name": BAD_TASK, "schedule_time": STALE},
        "INVALID_ARGUMENT",
        "Task ID",
        BETA2,
        details=("Help",),
    ),
    Case(
        "renew_lease-no-duration",
        "renew_lease",
        lambda v: {"name": PULL_TASK, "schedule_time": STALE},
        "INVALID_ARGUMENT",
        "lease_duration is required.",
        BETA2,
    ),
    Case(
        "renew_lease-lease-not-held",
        "renew_lease",
        lambda v: {"name": PULL_TASK, "schedule_time": STALE, "lease_duration": {"seconds": 60}},
        "FAILED_PRECONDITION",
        "the caller does not hold the task's lease.",
        BETA2,
    ),
    Case(
        "renew_lease-no-schedule-time",
        "renew_lease",
        lambda v: {"name": PULL_TASK, "lease_duration": {"seconds": 60}},
        "INVALID_ARGUMENT",
        "schedule_time is required",
        BETA2,
    ),
    Case(
        "cancel_lease-lease-not-held",
        "cancel_lease",
        lambda v: {"name": PULL_TASK, "schedule_time": STALE},
        "FAILED_PRECONDITION",
        "the caller does not hold the task's lease.",
        BETA2,
    ),
    Case(
        "cancel_lease-push-task",
        "cancel_lease",
        lambda v: {"name": PUSH_TASK, "schedule_time": STALE},
        "FAILED_PRECONDITION",
        "is not a pull task",
        BETA2,
    ),
    Case(
        "cancel_lease-missing-queue",
        "cancel_lease",
        lambda v: {"name": f"{MISSING}/tasks/t", "schedule_time": STALE},
        "NOT_FOUND",
        QUEUE_MISSING,
        BETA2,
    ),
]

PARAMS = [
    pytest.param(version, case, id=f"{version}-{case.id}")
    for version in VERSIONS
    for case in CASES
    if version in case.versions
]


@dataclass
class Clients:
    grpc: dict[str, Any]
    rest: dict[str, Any]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    """A tasksd whose deleted queue names stay reserved and which leases without a rate limit
    (so that the lease cases fail as they mean to, every time), with the queues and tasks the
    cases name."""
    folder = tmp_path_factory.mktemp("parity")
    config = Path(folder / "tasksd.yaml")
    config.write_text("queue_reuse_delay: 3600s\nlease_calls_per_second: 0\n")
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", config=config).start()
    try:
        setup = versioned_client(server, "v2beta2", "grpc")
        for name, target in [
            (PUSH, "app_engine_http_target"),
            (PULL, "pull_target"),
            (PAUSED_PULL, "pull_target"),
            (GONE, "pull_target"),
        ]:
            setup.create_queue(parent=PARENT, queue={"name": name, target: {}})
        setup.pause_queue(name=PUSH)
        setup.pause_queue(name=PAUSED_PULL)
        setup.delete_queue(name=GONE)
        for name in (PUSH_TASK, GONE_TASK):
            setup.create_task(
                parent=PUSH, task={"name": name, "app_engine_http_request": {"relative_url": "/x"}}
            )
        setup.delete_task(name=GONE_TASK)
        setup.create_task(parent=PULL, task={"name": PULL_TASK, "pull_message": {"payload": b"x"}})
        yield Clients(
            {v: versioned_client(server, v, "grpc") for v in VERSIONS},
            {v: versioned_client(server, v, "rest") for v in VERSIONS},
        )
    finally:
        server.stop()


Rendered = tuple[str, str, list[dict[str, Any]]]
"""(canonical code, message, details as JSON with @type) of an error on the wire."""


def _call(client: Any, case: Case, version: str) -> exceptions.GoogleAPICallError:
    method = getattr(client, case.rpc)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        method(request=case.request(version), retry=None, timeout=30)
    return caught.value


def _from_grpc(error: exceptions.GoogleAPICallError) -> Rendered:
    call = error.response
    code = call.code()
    message = call.details()
    details: list[dict[str, Any]] = []
    trailers = [value for key, value in call.trailing_metadata() or () if key == "grpc-status-details-bin"]
    assert len(trailers) <= 1
    if trailers:
        status = status_pb2.Status.FromString(trailers[0])
        # The trailer must say what the call's status says.
        assert (status.code, status.message) == (code.value[0], message)
        details = [json_format.MessageToDict(detail) for detail in status.details]
    return code.name, message, details


def _from_rest(error: exceptions.GoogleAPICallError) -> Rendered:
    answer = error.response
    body = answer.json()["error"]
    code = body["status"]
    assert answer.status_code == body["code"] == HTTP_STATUS[code], body
    return code, body["message"], body.get("details", [])


@pytest.mark.parametrize(("version", "case"), PARAMS)
def test_errors_render_alike_on_rest_and_grpc(clients: Clients, version: str, case: Case) -> None:
    over_grpc = _from_grpc(_call(clients.grpc[version], case, version))
    over_rest = _from_rest(_call(clients.rest[version], case, version))
    assert over_rest == over_grpc
    code, message, details = over_grpc
    if case.bug is not None:
        assert code != case.code, f"fixed ({case.bug}): drop the case's bug"
        pytest.xfail(case.bug)
    assert code == case.code, over_grpc
    assert case.says in message, over_grpc
    assert [d["@type"].rpartition(".")[2] for d in details] == list(case.details), over_grpc


def test_every_version_has_cases_for_every_rpc_it_serves() -> None:
    """The tables cover each RPC of each version's CloudTasks service (but UploadQueueYaml,
    which the REST client lacks), plus Locations, and GetOperation where the client has it."""
    covered = {(v, c.rpc) for c in CASES for v in c.versions}
    for version in VERSIONS:
        module = importlib.import_module(f"tasksd.api.{version}")
        rpcs = set(module.VERSION.messages) - set(module.VERSION.rest_only) - {"UploadQueueYaml"}
        snake = {"".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in rpc).lstrip("_") for rpc in rpcs}
        missing = sorted(
            rpc for rpc in snake | {"get_location", "list_locations"} if (version, rpc) not in covered
        )
        assert not missing, (version, missing)


# -- with authentication: the errors of authentication and IAM ---------------------------

SECURED_QUEUE = f"{PARENT}/queues/wp-secured"
ROBOT = "robot@test-project.iam.gserviceaccount.com"


@dataclass(frozen=True)
class AuthCase:
    id: str
    rpc: str
    request: Request
    metadata: tuple[tuple[str, str], ...]
    """What the caller sends to prove who it is."""
    code: str
    says: str


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


AUTH_CASES = [
    AuthCase(
        "no-credentials",
        "get_queue",
        lambda v: {"name": SECURED_QUEUE},
        (),
        "UNAUTHENTICATED",
        "Request is missing required authentication credential.",
    ),
    AuthCase(
        "unknown-token",
        "get_queue",
        lambda v: {"name": SECURED_QUEUE},
        _bearer("not-a-token"),
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
    ),
    AuthCase(
        "unknown-api-key",
        "get_queue",
        lambda v: {"name": SECURED_QUEUE},
        (("x-goog-api-key", "not-a-key"),),
        "INVALID_ARGUMENT",
        "API key not valid.",
    ),
    AuthCase(
        "lacks-queues-get",
        "get_queue",
        lambda v: {"name": SECURED_QUEUE},
        _bearer("nobody-token"),
        "PERMISSION_DENIED",
        f'lacks IAM permission "cloudtasks.queues.get" for the resource "{SECURED_QUEUE}"',
    ),
    AuthCase(
        "lacks-tasks-create",
        "create_task",
        lambda v: {"parent": SECURED_QUEUE, "task": _ae(v)},
        _bearer("viewer-token"),
        "PERMISSION_DENIED",
        'lacks IAM permission "cloudtasks.tasks.create"',
    ),
    AuthCase(
        "lacks-act-as",
        "create_task",
        lambda v: {
            "parent": SECURED_QUEUE,
            "task": {
                "http_request": {
                    "url": "https://example.com/x",
                    "oidc_token": {"service_account_email": ROBOT},
                }
            },
        },
        _bearer("enqueuer-token"),
        "PERMISSION_DENIED",
        f'lacks IAM permission "iam.serviceAccounts.actAs" for the resource "{ROBOT}"',
    ),
    AuthCase(
        "lacks-set-iam-policy",
        "set_iam_policy",
        lambda v: {"resource": SECURED_QUEUE, "policy": {}},
        _bearer("viewer-token"),
        "PERMISSION_DENIED",
        'lacks IAM permission "cloudtasks.queues.setIamPolicy"',
    ),
]


@pytest.fixture(scope="module")
def secured_clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    """A tasksd that enforces authentication and IAM, with one queue."""
    folder = tmp_path_factory.mktemp("parity-auth")
    config = Path(folder / "tasksd.yaml")
    config.write_text(
        f"""
auth:
  mode: enforce
  tokens:
    - {{token: viewer-token, principal: "user:viewer@example.com"}}
    - {{token: enqueuer-token, principal: "user:enqueuer@example.com"}}
    - {{token: nobody-token, principal: "user:nobody@example.com"}}
  bindings:
    - {{project: test-project, role: roles/cloudtasks.viewer, members: ["user:viewer@example.com"]}}
    - {{project: test-project, role: roles/cloudtasks.enqueuer, members: ["user:enqueuer@example.com"]}}
queues:
  - {{name: {SECURED_QUEUE}, appEngineHttpTarget: {{}}}}
"""
    )
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", config=config).start()
    try:
        rest = {
            v: importlib.import_module(f"google.cloud.tasks_{v}").CloudTasksClient(
                transport="rest",
                client_options=ClientOptions(api_endpoint=server.url),
                credentials=_NoRefresh(),  # type: ignore[no-untyped-call]
            )
            for v in VERSIONS
        }
        yield Clients({v: versioned_client(server, v, "grpc") for v in VERSIONS}, rest)
    finally:
        server.stop()


class _NoRefresh(AnonymousCredentials):
    """No credentials, which google-auth's session may try to refresh on a 401 (in vain):
    the caller's metadata is what proves (or fails to prove) who it is."""

    def refresh(self, request: Any) -> None:
        pass


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", AUTH_CASES, ids=lambda c: c.id)
def test_auth_errors_render_alike_on_rest_and_grpc(
    secured_clients: Clients, version: str, case: AuthCase
) -> None:
    answers = []
    for client, rendered in (
        (secured_clients.grpc[version], _from_grpc),
        (secured_clients.rest[version], _from_rest),
    ):
        with pytest.raises(exceptions.GoogleAPICallError) as caught:
            getattr(client, case.rpc)(
                request=case.request(version), metadata=case.metadata, retry=None, timeout=30
            )
        answers.append(rendered(caught.value))
    over_grpc, over_rest = answers
    assert over_rest == over_grpc
    assert over_grpc[0] == case.code, over_grpc
    assert case.says in over_grpc[1], over_grpc


# -- the statuses a batch operation holds -------------------------------------------------


def _status_json(status: status_pb2.Status) -> tuple[int, str, list[dict[str, Any]]]:
    return status.code, status.message, [json_format.MessageToDict(detail) for detail in status.details]


@pytest.mark.parametrize("version", V2_FAMILY)
def test_batch_statuses_render_alike_on_rest_and_grpc(clients: Clients, version: str) -> None:
    """A batch in which every request fails: the operation's error and each failed request's
    status (reworded for the version) are the same over both wires."""
    request = {
        "parent": PUSH,
        "requests": [
            {"task": {"name": PUSH_TASK, **_ae(version)}},
            {"task": {"name": BAD_TASK, **_ae(version)}},
            {"task": _ae(version, "no-slash")},
        ],
    }
    seen = []
    for client in (clients.grpc[version], clients.rest[version]):
        operation = client.batch_create_tasks(request=request, retry=None, timeout=30)
        done = operation.operation
        assert done.done
        metadata = type(operation.metadata).pb(operation.metadata)
        failed = {index: _status_json(status) for index, status in metadata.failed_requests.items()}
        seen.append((_status_json(done.error), failed))
    over_grpc, over_rest = seen
    assert over_rest == over_grpc
    error, failed = over_grpc
    assert error[:2] == (
        10,
        "None of the requests succeeded, refer to BatchCreateTasksMetadata.failed_requests for "
        "individual error details",
    )
    assert sorted(failed) == [0, 1, 2]
    assert failed[0][0] == 6  # ALREADY_EXISTS
    assert [d["@type"] for d in failed[1][2]] == ["type.googleapis.com/google.rpc.Help"]
    assert "relative_uri must begin with '/'" in failed[2][1]  # v2's name, not the model's
