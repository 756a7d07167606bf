"""The permission matrix (issue 16): every RPC of every API version, over REST and gRPC, called
by a caller without credentials (UNAUTHENTICATED), by one whose role has every Cloud Tasks
permission but the one the RPC needs (PERMISSION_DENIED, and nothing changes), and by one whose
role has that permission alone (it succeeds). Then the ways a grant is made: queue policies,
project bindings, revocation, conditions, groups, domains, actAs, TestIamPermissions.

The permission each RPC needs is written out below from Google's documentation, not read from
``tasksd.api.authz.REQUIREMENTS``, so a wrong entry there fails here. UploadQueueYaml is left
out: it needs two permissions (test_queue_yaml.py checks them).
"""

from __future__ import annotations

import base64
import importlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import yaml
from google.api_core import exceptions
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.json_format import MessageToDict

from tasksd.auth.roles import CLOUDTASKS_PERMISSIONS
from tests.integration.conftest import LOCATION, Server, versioned_client

Metadata = list[tuple[str, str]]
VERSIONS = ("v2beta2", "v2beta3", "v2")
TRANSPORTS = ("rest", "grpc")
FULL_VIEW = "cloudtasks.tasks.fullView"
ACT_AS = "iam.serviceAccounts.actAs"
UNAUTHENTICATED = (  # Google's words
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
DEAD_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens, no task reaches anything
SA_PROJECT = "sa-home"
SERVICE_ACCOUNT = f"runner@{SA_PROJECT}.iam.gserviceaccount.com"
PROJECT_A = "iam-project-a"


def slug(permission: str) -> str:
    return permission.removeprefix("cloudtasks.").replace(".", "_")


def bearer(token: str) -> Metadata:
    return [("authorization", f"Bearer {token}")]


ADMIN = bearer("admin-token")
ANONYMOUS: Metadata = []
NOBODY = bearer("nobody-token")  # authenticated, granted nothing anywhere
GRANTEE = bearer("grantee-token")  # granted nothing but what queue policies give it


def lacking(permission: str) -> Metadata:
    return bearer(f"lack-{slug(permission)}")


def only(permission: str) -> Metadata:
    return bearer(f"only-{slug(permission)}")


def denial(permission: str, resource: str) -> str:
    return (
        f'The principal (user or service account) lacks IAM permission "{permission}" for the '
        f'resource "{resource}" (or the resource may not exist).'
    )


# Principals with no project binding, granted (or not) by queue policies in the tests below.
QUEUE_ONLY_USERS = {
    "q-token": "user:q@example.com",
    "cond-token": "user:cond@example.com",
    "grouped-token": "user:grouped@example.com",
    "nested-token": "user:nested@example.com",
    "corp-token": "user:someone@corp.example",
    "outsider-token": "user:someone@elsewhere.example",
    "nobody-token": "user:nobody@example.com",
    "grantee-token": "user:grantee@example.com",
}
# Principals granted through project bindings of groups and domains.
PROJECT_GROUP_USERS = {
    "reader-token": "user:reader@example.com",
    "sub-reader-token": "user:sub-reader@example.com",
    "domain-viewer-token": "user:v@viewers.example",
    "conditional-token": "user:conditional@example.com",
}
CONDITIONAL_QUEUE_ID = "conditional-ok"


def auth_config() -> dict[str, Any]:
    permissions = sorted(CLOUDTASKS_PERMISSIONS)
    tokens = [
        {"token": "admin-token", "principal": "user:admin@example.com"},
        {"token": "enqueuer-token", "principal": "user:enqueuer@example.com"},
        {"token": "acting-token", "principal": "user:acting@example.com"},
        {"token": "elsewhere-token", "principal": "user:elsewhere@example.com"},
        {"token": "project-a-token", "principal": "user:project-a@example.com"},
        *({"token": t, "principal": p} for t, p in (QUEUE_ONLY_USERS | PROJECT_GROUP_USERS).items()),
    ]
    custom_roles = []
    bindings: list[dict[str, Any]] = [
        {"project": "*", "role": "roles/cloudtasks.admin", "members": ["user:admin@example.com"]},
        {"project": "*", "role": "roles/iam.serviceAccountUser", "members": ["user:admin@example.com"]},
        {
            "project": "*",
            "role": "roles/cloudtasks.enqueuer",
            "members": ["user:enqueuer@example.com", "user:acting@example.com", "user:elsewhere@example.com"],
        },
        {
            "project": SA_PROJECT,
            "role": "roles/iam.serviceAccountUser",
            "members": ["user:acting@example.com"],
        },
        {
            "project": "other-home",
            "role": "roles/iam.serviceAccountUser",
            "members": ["user:elsewhere@example.com"],
        },
        {"project": PROJECT_A, "role": "roles/cloudtasks.viewer", "members": ["user:project-a@example.com"]},
        {
            "project": "*",
            "role": "roles/cloudtasks.viewer",
            "members": ["group:readers@example.com", "domain:viewers.example"],
        },
        {
            "project": "*",
            "role": "roles/cloudtasks.enqueuer",
            "members": ["user:conditional@example.com"],
            "condition": f'resource.name.endsWith("/queues/{CONDITIONAL_QUEUE_ID}")',
        },
        {
            "project": "*",
            "role": "roles/cloudtasks.viewer",
            "members": ["user:conditional@example.com"],
            "condition": 'request.time < timestamp("2000-01-01T00:00:00Z")',
        },
    ]
    for permission in permissions:
        name = slug(permission)
        tokens += [
            {"token": f"lack-{name}", "principal": f"user:lack-{name}@example.com"},
            {"token": f"only-{name}", "principal": f"user:only-{name}@example.com"},
        ]
        custom_roles += [
            {
                "name": f"projects/p/roles/allBut_{name}",
                "permissions": [p for p in permissions if p != permission],
            },
            {"name": f"projects/p/roles/only_{name}", "permissions": [permission]},
        ]
        bindings += [
            {
                "project": "*",
                "role": f"projects/p/roles/allBut_{name}",
                "members": [f"user:lack-{name}@example.com"],
            },
            {
                "project": "*",
                "role": f"projects/p/roles/only_{name}",
                "members": [f"user:only-{name}@example.com"],
            },
        ]
    groups = [
        {
            "name": "group:team@example.com",
            "members": ["user:grouped@example.com", "group:inner@example.com"],
        },
        {"name": "group:inner@example.com", "members": ["user:nested@example.com"]},
        {
            "name": "group:readers@example.com",
            "members": ["user:reader@example.com", "group:sub@example.com"],
        },
        {"name": "group:sub@example.com", "members": ["user:sub-reader@example.com"]},
    ]
    return {
        "mode": "enforce",
        "tokens": tokens,
        "custom_roles": custom_roles,
        "groups": groups,
        "bindings": bindings,
    }


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("iam")
    config = folder / "tasksd.yaml"
    config.write_text(yaml.safe_dump({"app_engine_url": DEAD_URL.rstrip("/"), "auth": auth_config()}))
    srv = Server(f"sqlite:///{folder / 'tasksd.db'}", config=config).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clients(iam_server: Server) -> Callable[[str, str], Any]:
    made: dict[tuple[str, str], Any] = {}

    def client(version: str, transport: str) -> Any:
        if (version, transport) not in made:
            made[version, transport] = built = versioned_client(iam_server, version, transport)
            if transport == "rest":
                # google-auth's session answers a 401 by refreshing the credentials, which
                # anonymous ones cannot do (InvalidOperation): let the 401 through instead.
                built.transport._session._refresh_status_codes = ()
        return made[version, transport]

    return client


# -- one call's world: a fresh project, the admin to set it up, and a snapshot of its state ----


def _future() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    return stamp


@dataclass
class World:
    server: Server
    client: Any
    version: str
    transport: str
    project: str

    @property
    def types(self) -> Any:
        return importlib.import_module(f"google.cloud.tasks_{self.version}")

    @property
    def location(self) -> str:
        return f"projects/{self.project}/locations/{LOCATION}"

    def queue_message(self, name: str, kind: str = "push") -> dict[str, Any]:
        """A queue of ``kind``: push (App Engine in v2beta2, HTTP tasks in the others), pull
        (v2beta2), plain-http (HTTP tasks in every version), or http (an HTTP target with a
        URI override, what buffer needs)."""
        if kind == "pull":
            return {"name": name, "pull_target": {}}
        if kind == "plain-http":
            return {"name": name, "http_target": {}} if self.version == "v2beta2" else {"name": name}
        if kind == "http":
            return {
                "name": name,
                "http_target": {"uri_override": {"scheme": "HTTP", "host": "127.0.0.1", "port": 9}},
            }
        if self.version == "v2beta2":
            return {"name": name, "app_engine_http_target": {}}
        return {"name": name}

    def task_message(self, kind: str = "push", name: str | None = None) -> dict[str, Any]:
        """A task that stays where it is: a pull task, or a push task due tomorrow."""
        task: dict[str, Any]
        if kind == "pull":
            task = {"pull_message": {"payload": b"x"}}
        elif self.version == "v2beta2":
            task = {"app_engine_http_request": {"relative_url": "/x"}, "schedule_time": _future()}
        else:
            task = {"http_request": {"url": DEAD_URL}, "schedule_time": _future()}
        if name is not None:
            task["name"] = name
        return task

    def queue(self, kind: str = "push", *, tasks: int = 0, paused: bool = False) -> str:
        name = f"{self.location}/queues/q-{uuid.uuid4().hex[:10]}"
        self.client.create_queue(parent=self.location, queue=self.queue_message(name, kind), metadata=ADMIN)
        for _ in range(tasks):
            self.task(name, "pull" if kind == "pull" else "push")
        if paused:
            self.client.pause_queue(name=name, metadata=ADMIN)
        return name

    def task(self, queue: str, kind: str = "push") -> Any:
        return self.client.create_task(parent=queue, task=self.task_message(kind), metadata=ADMIN)

    def leased(self) -> Any:
        """A pull task just leased by the admin (v2beta2)."""
        queue = self.queue("pull", tasks=1)
        leased = self.client.lease_tasks(
            request={"parent": queue, "max_tasks": 1, "lease_duration": duration_pb2.Duration(seconds=600)},
            metadata=ADMIN,
        )
        assert len(leased.tasks) == 1
        return leased.tasks[0]

    def snapshot(self) -> dict[str, Any]:
        """Everything the admin can see of the project: its queues (with their state and purge
        time), each queue's tasks in the FULL view (schedule times, dispatch counts), each
        queue's IAM policy, and (v2, v2beta3) the location's CMEK configuration."""
        seen: dict[str, Any] = {}
        full = self.types.Task.View.FULL
        for queue in self.client.list_queues(parent=self.location, metadata=ADMIN):
            tasks = self.client.list_tasks(
                request={"parent": queue.name, "response_view": full}, metadata=ADMIN
            )
            policy = self.client.get_iam_policy(
                request={"resource": queue.name, "options": {"requested_policy_version": 3}}, metadata=ADMIN
            )
            seen[queue.name] = {
                "queue": type(queue).to_dict(queue),
                "tasks": sorted((type(t).to_dict(t) for t in tasks), key=lambda t: t["name"]),
                "policy": MessageToDict(policy),
            }
        if self.version != "v2beta2":
            config = self.client.get_cmek_config(name=f"{self.location}/cmekConfig", metadata=ADMIN)
            seen["cmekConfig"] = type(config).to_dict(config)
        return seen

    def rest(self, path: str, metadata: Metadata, body: dict[str, Any]) -> dict[str, Any]:
        """A plain REST POST (for what the published clients lack), failing the way they do."""
        reply = httpx.post(f"{self.server.url}/{self.version}/{path}", json=body, headers=dict(metadata))
        if reply.status_code != 200:
            error = reply.json()["error"]
            raise exceptions.from_http_status(reply.status_code, error["message"], response=reply)  # type: ignore[no-untyped-call]
        return reply.json()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Call:
    resource: str
    """The resource the permission is checked on (what the denial names)."""
    invoke: Callable[[Metadata], Any]
    mutates: bool = False
    """Whether a successful call changes the snapshot (so that "unchanged" means something)."""


@dataclass(frozen=True)
class Case:
    rpc: str
    permission: str
    versions: tuple[str, ...]
    prepare: Callable[[World], Call]
    rest_only: bool = False


CASES: dict[str, Case] = {}
BATCHED = ("v2beta3", "v2")


def case(
    rpc: str, permission: str, versions: tuple[str, ...] = VERSIONS, rest_only: bool = False
) -> Callable[[Callable[[World], Call]], Callable[[World], Call]]:
    def register(prepare: Callable[[World], Call]) -> Callable[[World], Call]:
        CASES[rpc] = Case(rpc, permission, versions, prepare, rest_only)
        return prepare

    return register


@case("ListLocations", "cloudtasks.locations.list")
def _list_locations(w: World) -> Call:
    name = f"projects/{w.project}"
    return Call(name, lambda md: w.client.list_locations(request={"name": name}, metadata=md))


@case("GetLocation", "cloudtasks.locations.get")
def _get_location(w: World) -> Call:
    return Call(w.location, lambda md: w.client.get_location(request={"name": w.location}, metadata=md))


@case("GetOperation", "cloudtasks.operations.get", BATCHED)
def _get_operation(w: World) -> Call:
    queue = w.queue()
    operation = w.client.batch_create_tasks(
        request={"parent": queue, "requests": [{"task": w.task_message()}]}, metadata=ADMIN
    )
    name = operation.operation.name
    return Call(name, lambda md: w.client.get_operation(request={"name": name}, metadata=md))


@case("ListQueues", "cloudtasks.queues.list")
def _list_queues(w: World) -> Call:
    w.queue()
    return Call(w.location, lambda md: list(w.client.list_queues(parent=w.location, metadata=md)))


@case("GetQueue", "cloudtasks.queues.get")
def _get_queue(w: World) -> Call:
    queue = w.queue()
    return Call(queue, lambda md: w.client.get_queue(name=queue, metadata=md))


@case("CreateQueue", "cloudtasks.queues.create")
def _create_queue(w: World) -> Call:
    name = f"{w.location}/queues/new-{uuid.uuid4().hex[:8]}"
    message = w.queue_message(name)
    # Google checks cloudtasks.queues.create "on the specified queue".
    return Call(name, lambda md: w.client.create_queue(parent=w.location, queue=message, metadata=md), True)


@case("UpdateQueue", "cloudtasks.queues.update")
def _update_queue(w: World) -> Call:
    queue = w.queue()
    mask = field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"])
    return Call(
        queue,
        lambda md: w.client.update_queue(
            queue={"name": queue, "retry_config": {"max_attempts": 7}}, update_mask=mask, metadata=md
        ),
        True,
    )


@case("DeleteQueue", "cloudtasks.queues.delete")
def _delete_queue(w: World) -> Call:
    queue = w.queue(tasks=1)
    return Call(queue, lambda md: w.client.delete_queue(name=queue, metadata=md), True)


@case("PurgeQueue", "cloudtasks.queues.purge")
def _purge_queue(w: World) -> Call:
    queue = w.queue(tasks=2)
    return Call(queue, lambda md: w.client.purge_queue(name=queue, metadata=md), True)


@case("PauseQueue", "cloudtasks.queues.pause")
def _pause_queue(w: World) -> Call:
    queue = w.queue(tasks=1)
    return Call(queue, lambda md: w.client.pause_queue(name=queue, metadata=md), True)


@case("ResumeQueue", "cloudtasks.queues.resume")
def _resume_queue(w: World) -> Call:
    queue = w.queue(tasks=1, paused=True)
    return Call(queue, lambda md: w.client.resume_queue(name=queue, metadata=md), True)


@case("GetIamPolicy", "cloudtasks.queues.getIamPolicy")
def _get_iam_policy(w: World) -> Call:
    queue = w.queue()
    return Call(queue, lambda md: w.client.get_iam_policy(request={"resource": queue}, metadata=md))


@case("SetIamPolicy", "cloudtasks.queues.setIamPolicy")
def _set_iam_policy(w: World) -> Call:
    queue = w.queue()
    policy = {"bindings": [{"role": "roles/cloudtasks.viewer", "members": ["user:nobody@example.com"]}]}
    return Call(
        queue,
        lambda md: w.client.set_iam_policy(request={"resource": queue, "policy": policy}, metadata=md),
        True,
    )


@case("ListTasks", "cloudtasks.tasks.list")
def _list_tasks(w: World) -> Call:
    queue = w.queue(tasks=2)
    return Call(queue, lambda md: list(w.client.list_tasks(parent=queue, metadata=md)))


@case("GetTask", "cloudtasks.tasks.get")
def _get_task(w: World) -> Call:
    task = w.task(w.queue())
    return Call(task.name, lambda md: w.client.get_task(name=task.name, metadata=md))


@case("CreateTask", "cloudtasks.tasks.create")
def _create_task(w: World) -> Call:
    queue = w.queue()
    return Call(
        queue, lambda md: w.client.create_task(parent=queue, task=w.task_message(), metadata=md), True
    )


@case("DeleteTask", "cloudtasks.tasks.delete")
def _delete_task(w: World) -> Call:
    task = w.task(w.queue())
    return Call(task.name, lambda md: w.client.delete_task(name=task.name, metadata=md), True)


@case("RunTask", "cloudtasks.tasks.run")
def _run_task(w: World) -> Call:
    # The attempt (to the discard port) happens after the answer, so the snapshot is not
    # compared after the successful call.
    task = w.task(w.queue())
    return Call(task.name, lambda md: w.client.run_task(name=task.name, metadata=md))


@case("BufferTask", "cloudtasks.tasks.create", rest_only=True)
def _buffer_task(w: World) -> Call:
    queue = w.queue("http", paused=True)
    body = {"body": {"data": base64.b64encode(b"x").decode()}}
    return Call(queue, lambda md: w.rest(f"{queue}/tasks/b-{uuid.uuid4().hex[:8]}:buffer", md, body), True)


@case("BatchCreateTasks", "cloudtasks.tasks.create", BATCHED)
def _batch_create_tasks(w: World) -> Call:
    queue = w.queue()
    request = {"parent": queue, "requests": [{"parent": queue, "task": w.task_message()}] * 2}
    return Call(queue, lambda md: w.client.batch_create_tasks(request=request, metadata=md).operation, True)


@case("BatchDeleteTasks", "cloudtasks.tasks.delete", BATCHED)
def _batch_delete_tasks(w: World) -> Call:
    queue = w.queue()
    names = [w.task(queue).name for _ in range(2)]
    request = {"parent": queue, "names": names}
    return Call(queue, lambda md: w.client.batch_delete_tasks(request=request, metadata=md).operation, True)


@case("LeaseTasks", "cloudtasks.tasks.run", ("v2beta2",))
def _lease_tasks(w: World) -> Call:
    queue = w.queue("pull", tasks=1)
    request = {"parent": queue, "max_tasks": 5, "lease_duration": duration_pb2.Duration(seconds=600)}

    def lease(md: Metadata) -> Any:
        leased = w.client.lease_tasks(request=request, metadata=md)
        assert len(leased.tasks) == 1
        return leased

    return Call(queue, lease, True)


@case("AcknowledgeTask", "cloudtasks.tasks.delete", ("v2beta2",))
def _acknowledge_task(w: World) -> Call:
    task = w.leased()
    request = {"name": task.name, "schedule_time": task.schedule_time}
    return Call(task.name, lambda md: w.client.acknowledge_task(request=request, metadata=md), True)


@case("RenewLease", "cloudtasks.tasks.run", ("v2beta2",))
def _renew_lease(w: World) -> Call:
    task = w.leased()
    request = {
        "name": task.name,
        "schedule_time": task.schedule_time,
        "lease_duration": duration_pb2.Duration(seconds=1800),
    }
    return Call(task.name, lambda md: w.client.renew_lease(request=request, metadata=md), True)


@case("CancelLease", "cloudtasks.tasks.run", ("v2beta2",))
def _cancel_lease(w: World) -> Call:
    task = w.leased()
    request = {"name": task.name, "schedule_time": task.schedule_time}
    return Call(task.name, lambda md: w.client.cancel_lease(request=request, metadata=md), True)


@case("GetCmekConfig", "cloudtasks.cmekConfig.get", BATCHED)
def _get_cmek_config(w: World) -> Call:
    name = f"{w.location}/cmekConfig"
    return Call(name, lambda md: w.client.get_cmek_config(name=name, metadata=md))


@case("UpdateCmekConfig", "cloudtasks.cmekConfig.update", BATCHED)
def _update_cmek_config(w: World) -> Call:
    name = f"{w.location}/cmekConfig"
    config = {"name": name, "kms_key": f"{w.location}/keyRings/ring/cryptoKeys/key"}
    mask = field_mask_pb2.FieldMask(paths=["kms_key"])
    return Call(
        name, lambda md: w.client.update_cmek_config(cmek_config=config, update_mask=mask, metadata=md), True
    )


# Served RPCs the matrix leaves to tests of their own.
NOT_IN_MATRIX = {
    "TestIamPermissions": "needs no permission: test_test_iam_permissions_answers_what_is_held",
    "UploadQueueYaml": "needs queues.create and queues.update: test_queue_yaml.py checks it",
}

MATRIX = [
    pytest.param(version, transport, rpc, id=f"{version}-{transport}-{rpc}")
    for version, transport, rpc in itertools.product(VERSIONS, TRANSPORTS, CASES)
    if version in CASES[rpc].versions and not (CASES[rpc].rest_only and transport == "grpc")
]


def _world(server: Server, clients: Callable[[str, str], Any], version: str, transport: str) -> World:
    return World(server, clients(version, transport), version, transport, f"m-{uuid.uuid4().hex[:10]}")


def status_of(error: exceptions.GoogleAPICallError) -> tuple[str, str]:
    """(the status's code name, its message) of a failed call, over either transport."""
    if error.grpc_status_code is not None and not isinstance(
        error.response, requests.Response | httpx.Response
    ):
        return error.grpc_status_code.name, error.message
    body = error.response.json()["error"]  # REST: the message the client shows is prefixed with the URL
    return body["status"], body["message"]


def assert_unauthenticated(error: pytest.ExceptionInfo[exceptions.GoogleAPICallError]) -> None:
    assert isinstance(error.value, exceptions.Unauthorized)  # 401, UNAUTHENTICATED
    assert status_of(error.value) == ("UNAUTHENTICATED", UNAUTHENTICATED)


def assert_denied(
    error: pytest.ExceptionInfo[exceptions.GoogleAPICallError], permission: str, resource: str
) -> None:
    assert isinstance(error.value, exceptions.Forbidden)  # 403, PERMISSION_DENIED
    assert status_of(error.value) == ("PERMISSION_DENIED", denial(permission, resource))


# v2beta2's REST-only RPCs (its discovery document's, which google-cloud-tasks v2beta2 lacks):
# tests/integration/test_auth.py::test_v2beta2_rest_only_methods_are_guarded.
V2BETA2_REST_ONLY = {"BatchCreateTasks", "BatchDeleteTasks", "GetCmekConfig", "UpdateCmekConfig"}


def test_the_matrix_covers_every_rpc() -> None:
    """Every RPC tasksd serves, in every version, is in the matrix or has a test of its own."""
    from unittest.mock import MagicMock

    from tasksd.server import all_rpcs

    served: dict[str, set[str]] = {}
    for rpc in all_rpcs(MagicMock()):
        version = rpc.service.split(".")[3] if rpc.service.startswith("google.cloud.tasks.") else "*"
        if version == "v2beta2" and rpc.name in V2BETA2_REST_ONLY:
            continue
        served.setdefault(rpc.name, set()).add(version)
    assert set(served) == set(CASES) | set(NOT_IN_MATRIX)
    for name, case_ in CASES.items():
        versions = served[name]
        if "*" not in versions:  # Locations and Operations are one service for every version
            assert set(case_.versions) == versions, name


@pytest.mark.parametrize(("version", "transport", "rpc"), MATRIX)
def test_permission_matrix(
    iam_server: Server, clients: Callable[[str, str], Any], version: str, transport: str, rpc: str
) -> None:
    case_ = CASES[rpc]
    world = _world(iam_server, clients, version, transport)
    call = case_.prepare(world)
    before = world.snapshot()

    with pytest.raises(exceptions.GoogleAPICallError) as anonymous:
        call.invoke(ANONYMOUS)
    assert_unauthenticated(anonymous)

    with pytest.raises(exceptions.GoogleAPICallError) as nobody:
        call.invoke(NOBODY)
    assert_denied(nobody, case_.permission, call.resource)

    with pytest.raises(exceptions.GoogleAPICallError) as lacking_one:
        call.invoke(lacking(case_.permission))
    assert_denied(lacking_one, case_.permission, call.resource)
    assert world.snapshot() == before

    call.invoke(only(case_.permission))
    if call.mutates:
        assert world.snapshot() != before

    # The permission granted on the queue alone (its policy; no project binding) works too
    # (a queue to be created has no policy yet).
    if "/queues/" in call.resource and rpc != "CreateQueue":
        again = case_.prepare(world)
        queue = "/".join(again.resource.split("/")[:6])
        role = f"projects/p/roles/only_{slug(case_.permission)}"
        set_policy(world, queue, [{"role": role, "members": ["user:grantee@example.com"]}])
        again.invoke(GRANTEE)


COMBOS = list(itertools.product(VERSIONS, TRANSPORTS))


@pytest.fixture(params=COMBOS, ids=["-".join(combo) for combo in COMBOS])
def world(request: pytest.FixtureRequest, iam_server: Server, clients: Callable[[str, str], Any]) -> World:
    version, transport = request.param
    return _world(iam_server, clients, version, transport)


def test_full_view_needs_the_full_view_permission(world: World) -> None:
    """A FULL response view needs cloudtasks.tasks.fullView besides the method's own permission;
    the default (BASIC) view does not."""
    full = world.types.Task.View.FULL
    kind = "pull" if world.version == "v2beta2" else "push"
    queue = world.queue(kind, tasks=1)
    task = next(iter(world.client.list_tasks(parent=queue, metadata=ADMIN)))
    before = world.snapshot()
    reads: list[tuple[str, str, Callable[[Metadata], Any]]] = [
        (
            "cloudtasks.tasks.get",
            task.name,
            lambda md: world.client.get_task(request={"name": task.name, "response_view": full}, metadata=md),
        ),
        (
            "cloudtasks.tasks.list",
            queue,
            lambda md: list(
                world.client.list_tasks(request={"parent": queue, "response_view": full}, metadata=md)
            ),
        ),
        (
            "cloudtasks.tasks.create",
            queue,
            lambda md: world.client.create_task(
                request={"parent": queue, "task": world.task_message(kind), "response_view": full},
                metadata=md,
            ),
        ),
    ]
    if world.version != "v2beta2":
        reads.append(
            (
                "cloudtasks.tasks.run",
                task.name,
                lambda md: world.client.run_task(
                    request={"name": task.name, "response_view": full}, metadata=md
                ),
            )
        )
        reads.append(
            (
                "cloudtasks.tasks.create",
                queue,
                lambda md: world.client.batch_create_tasks(
                    request={
                        "parent": queue,
                        "requests": [
                            {"task": world.task_message()},
                            {"task": world.task_message(), "response_view": full},
                        ],
                    },
                    metadata=md,
                ),
            )
        )
    else:
        reads.append(
            (
                "cloudtasks.tasks.run",
                queue,
                lambda md: world.client.lease_tasks(
                    request={
                        "parent": queue,
                        "max_tasks": 1,
                        "lease_duration": duration_pb2.Duration(seconds=60),
                        "response_view": full,
                    },
                    metadata=md,
                ),
            )
        )
    for permission, resource, call in reads:
        with pytest.raises(exceptions.GoogleAPICallError) as caught:
            call(only(permission))
        assert_denied(caught, FULL_VIEW, resource)
        with pytest.raises(exceptions.GoogleAPICallError) as caught:
            call(lacking(FULL_VIEW))
        assert_denied(caught, FULL_VIEW, resource)
    assert world.snapshot() == before
    shown = world.client.get_task(request={"name": task.name, "response_view": full}, metadata=ADMIN)
    assert shown.view == full
    basic = world.client.get_task(name=task.name, metadata=lacking(FULL_VIEW))
    assert basic.view == world.types.Task.View.BASIC


def test_test_iam_permissions_answers_what_is_held(world: World) -> None:
    """TestIamPermissions needs no permission, only credentials, and answers exactly the
    asked-for permissions the caller holds on the queue."""
    queue = world.queue()
    everything = sorted(CLOUDTASKS_PERMISSIONS)

    def test(metadata: Metadata, permissions: list[str], resource: str = queue) -> list[str]:
        answer = world.client.test_iam_permissions(
            request={"resource": resource, "permissions": permissions}, metadata=metadata
        )
        return list(answer.permissions)

    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        test(ANONYMOUS, everything)
    assert_unauthenticated(caught)
    assert test(ADMIN, everything) == everything
    for index, permission in enumerate(everything):
        other = everything[index - 1]
        assert test(only(permission), [permission, other]) == [permission], permission
        assert test(only(permission), [other]) == [], permission
        assert test(lacking(permission), everything) == [p for p in everything if p != permission], permission
    assert test(bearer("q-token"), everything) == []  # no grant anywhere
    # A missing queue: no permissions, not NOT_FOUND.
    assert test(ADMIN, everything, f"{world.location}/queues/missing") == []
    assert test(ADMIN, ["cloudtasks.queues.frobnicate", "cloudtasks.queues.get"]) == ["cloudtasks.queues.get"]


# -- how grants are made ------------------------------------------------------------------------

CREATE = "cloudtasks.tasks.create"
ENQUEUER = "roles/cloudtasks.enqueuer"


def set_policy(world: World, queue: str, bindings: list[dict[str, Any]], version: int = 1) -> Any:
    policy = {"version": version, "bindings": bindings}
    return world.client.set_iam_policy(request={"resource": queue, "policy": policy}, metadata=ADMIN)


def create(world: World, queue: str, metadata: Metadata, **task: Any) -> Any:
    return world.client.create_task(parent=queue, task=task or world.task_message(), metadata=metadata)


def assert_create_denied(world: World, queue: str, metadata: Metadata, permission: str = CREATE) -> None:
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        create(world, queue, metadata)
    assert_denied(caught, permission, queue)


def held(world: World, resource: str, metadata: Metadata, permissions: list[str]) -> list[str]:
    answer = world.client.test_iam_permissions(
        request={"resource": resource, "permissions": permissions}, metadata=metadata
    )
    return list(answer.permissions)


def test_a_queue_policy_grants_on_that_queue_only(world: World) -> None:
    """A queue-level grant works on its queue and nowhere else; a caller without a project
    grant is PERMISSION_DENIED on a missing queue (existence does not leak), the admin NOT_FOUND."""
    granted, other = world.queue(), world.queue()
    missing = f"{world.location}/queues/missing-{uuid.uuid4().hex[:8]}"
    q = bearer("q-token")
    assert_create_denied(world, granted, q)
    set_policy(world, granted, [{"role": ENQUEUER, "members": ["user:q@example.com"]}])
    create(world, granted, q)
    full = world.types.Task.View.FULL  # the enqueuer role has fullView too
    world.client.create_task(
        request={"parent": granted, "task": world.task_message(), "response_view": full}, metadata=q
    )
    assert_create_denied(world, other, q)
    assert_create_denied(world, missing, q)
    with pytest.raises(exceptions.NotFound):
        create(world, missing, ADMIN)
    with pytest.raises(exceptions.NotFound):  # a project grant may learn that it is missing
        create(world, missing, only(CREATE))
    # What the enqueuer role lacks, the queue grant does not give.
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.get_queue(name=granted, metadata=q)
    assert_denied(caught, "cloudtasks.queues.get", granted)
    task = create(world, granted, ADMIN)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.delete_task(name=task.name, metadata=q)
    assert_denied(caught, "cloudtasks.tasks.delete", task.name)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        list(world.client.list_queues(parent=world.location, metadata=q))
    assert_denied(caught, "cloudtasks.queues.list", world.location)
    asked = [CREATE, FULL_VIEW, "cloudtasks.queues.get", "cloudtasks.tasks.delete"]
    assert held(world, granted, q, asked) == [CREATE, FULL_VIEW]
    assert held(world, other, q, asked) == []
    # A grant of another role on the queue reaches its tasks too.
    set_policy(
        world,
        granted,
        [
            {"role": ENQUEUER, "members": ["user:q@example.com"]},
            {"role": "roles/cloudtasks.taskDeleter", "members": ["user:q@example.com"]},
        ],
    )
    world.client.delete_task(name=task.name, metadata=q)


def test_a_revoked_binding_stops_working_at_once(world: World) -> None:
    queue = world.queue()
    q = bearer("q-token")
    grant = {"role": ENQUEUER, "members": ["user:q@example.com"]}
    bystander = {"role": "roles/cloudtasks.viewer", "members": ["user:bystander@example.com"]}
    set_policy(world, queue, [grant, bystander])
    create(world, queue, q)
    set_policy(world, queue, [bystander])
    assert_create_denied(world, queue, q)
    assert held(world, queue, q, [CREATE]) == []
    set_policy(world, queue, [grant])
    create(world, queue, q)
    set_policy(world, queue, [])
    assert_create_denied(world, queue, q)
    # A deleted queue's policy goes with it: the queue made again under its name has none.
    set_policy(world, queue, [grant])
    world.client.delete_queue(name=queue, metadata=ADMIN)
    world.client.create_queue(parent=world.location, queue=world.queue_message(queue), metadata=ADMIN)
    assert_create_denied(world, queue, q)
    assert (
        MessageToDict(world.client.get_iam_policy(request={"resource": queue}, metadata=ADMIN)).get(
            "bindings"
        )
        is None
    )


def test_a_project_binding_grants_in_its_project_only(world: World) -> None:
    mine = f"projects/{PROJECT_A}/locations/{LOCATION}"
    viewer = bearer("project-a-token")
    list(world.client.list_queues(parent=mine, metadata=viewer))
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        list(world.client.list_queues(parent=world.location, metadata=viewer))
    assert_denied(caught, "cloudtasks.queues.list", world.location)
    name = f"{mine}/queues/never-{uuid.uuid4().hex[:8]}"
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.create_queue(parent=mine, queue=world.queue_message(name), metadata=viewer)
    assert_denied(caught, "cloudtasks.queues.create", name)


def _http_task(world: World, **token: Any) -> dict[str, Any]:
    return {"http_request": {"url": DEAD_URL, **token}, "schedule_time": _future()}


def test_tokens_for_a_service_account_need_act_as(world: World) -> None:
    """An OIDC or OAuth token for a service account needs iam.serviceAccounts.actAs on the
    account's project (or every project, for an address outside *.iam.gserviceaccount.com)."""
    queue = world.queue("plain-http")
    oidc = {"oidc_token": {"service_account_email": SERVICE_ACCOUNT}}
    oauth = {"oauth_token": {"service_account_email": SERVICE_ACCOUNT}}
    before = world.snapshot()
    for token in ("enqueuer-token", "elsewhere-token"):  # no actAs, actAs on another project
        for kind in (oidc, oauth):
            with pytest.raises(exceptions.GoogleAPICallError) as caught:
                create(world, queue, bearer(token), **_http_task(world, **kind))
            assert_denied(caught, ACT_AS, SERVICE_ACCOUNT)
    if world.version != "v2beta2":
        with pytest.raises(exceptions.GoogleAPICallError) as caught:
            world.client.batch_create_tasks(
                request={
                    "parent": queue,
                    "requests": [{"task": _http_task(world)}, {"task": _http_task(world, **oidc)}],
                },
                metadata=bearer("enqueuer-token"),
            )
        assert_denied(caught, ACT_AS, SERVICE_ACCOUNT)
    # Queue-level tokens (an HTTP target's) need it too, from a caller with queues.create/update.
    target = {
        "uri_override": {"host": "127.0.0.1", "port": 9, "scheme": "HTTP"},
        "oidc_token": {"service_account_email": SERVICE_ACCOUNT, "audience": "https://example.com/"},
    }
    new = f"{world.location}/queues/acting-{uuid.uuid4().hex[:8]}"
    queue_admin = lacking(CREATE)  # every Cloud Tasks permission, no actAs
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.create_queue(
            parent=world.location, queue={"name": new, "http_target": target}, metadata=queue_admin
        )
    assert_denied(caught, ACT_AS, SERVICE_ACCOUNT)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.update_queue(
            queue={"name": queue, "http_target": target},
            update_mask=field_mask_pb2.FieldMask(paths=["http_target"]),
            metadata=queue_admin,
        )
    assert_denied(caught, ACT_AS, SERVICE_ACCOUNT)
    assert world.snapshot() == before

    acting = bearer("acting-token")
    create(world, queue, acting, **_http_task(world, **oidc))
    create(world, queue, acting, **_http_task(world, **oauth))
    outside = "robot@example.com"
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        create(world, queue, acting, **_http_task(world, oidc_token={"service_account_email": outside}))
    assert_denied(caught, ACT_AS, outside)
    create(world, queue, ADMIN, **_http_task(world, oidc_token={"service_account_email": outside}))
    world.client.create_queue(
        parent=world.location, queue={"name": new, "http_target": target}, metadata=ADMIN
    )


def test_policy_conditions(world: World) -> None:
    """Version 3 policies: a binding grants only while its condition holds; a condition that
    does not compile is refused when it is set."""
    queue, other = world.queue(), world.queue()
    queue_id = queue.rsplit("/", 1)[1]
    caller = bearer("cond-token")

    def binding(expression: str) -> dict[str, Any]:
        return {
            "role": ENQUEUER,
            "members": ["user:cond@example.com"],
            "condition": {"title": "t", "expression": expression},
        }

    set_policy(world, queue, [binding('request.time < timestamp("2000-01-01T00:00:00Z")')], 3)
    assert_create_denied(world, queue, caller)
    assert held(world, queue, caller, [CREATE]) == []
    this_queue = f'resource.name.endsWith("/queues/{queue_id}")'
    set_policy(world, queue, [binding(this_queue)], 3)
    create(world, queue, caller)
    assert held(world, queue, caller, [CREATE]) == [CREATE]
    set_policy(world, other, [binding(this_queue)], 3)  # names the other queue: false here
    assert_create_denied(world, other, caller)
    for holding in (
        'request.time < timestamp("2999-01-01T00:00:00Z")',
        'resource.type == "cloudtasks.googleapis.com/Queue"',
        'resource.service == "cloudtasks.googleapis.com"',
    ):
        set_policy(world, other, [binding(holding)], 3)
        create(world, other, caller)
    set_policy(world, other, [binding('request.host == "example.com"')], 3)  # unknown: fails closed
    assert_create_denied(world, other, caller)

    options = {"requested_policy_version": 3}
    kept = world.client.get_iam_policy(request={"resource": queue, "options": options}, metadata=ADMIN)
    assert kept.version == 3 and kept.bindings[0].condition.expression == this_queue
    with pytest.raises(exceptions.BadRequest):  # a conditional policy read as version 1
        world.client.get_iam_policy(request={"resource": queue}, metadata=ADMIN)
    for bad, version in (('resource.name.endsWith("x"', 3), ("", 3), (this_queue, 1)):
        with pytest.raises(exceptions.BadRequest) as caught:
            set_policy(world, queue, [binding(bad)], version)
        assert status_of(caught.value)[0] == "INVALID_ARGUMENT"
    again = world.client.get_iam_policy(request={"resource": queue, "options": options}, metadata=ADMIN)
    assert again == kept
    create(world, queue, caller)


def test_conditional_project_bindings(world: World) -> None:
    """Project bindings of the config with a condition grant where it holds."""
    caller = bearer("conditional-token")
    matching = f"{world.location}/queues/{CONDITIONAL_QUEUE_ID}"
    world.client.create_queue(parent=world.location, queue=world.queue_message(matching), metadata=ADMIN)
    other = world.queue()
    create(world, matching, caller)
    assert held(world, matching, caller, [CREATE, "cloudtasks.queues.get"]) == [CREATE]
    assert_create_denied(world, other, caller)
    task = create(world, matching, ADMIN)  # the viewer binding's condition never holds
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.get_task(name=task.name, metadata=caller)
    assert_denied(caught, "cloudtasks.tasks.get", task.name)
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        list(world.client.list_queues(parent=world.location, metadata=caller))
    assert_denied(caught, "cloudtasks.queues.list", world.location)


def test_a_denied_call_reserves_nothing(world: World) -> None:
    """A refused create leaves its task name and (batches) its request id free, and a refused
    LeaseTasks does not count against the queue's LeaseTasks rate."""
    queue = world.queue("pull" if world.version == "v2beta2" else "push")
    kind = "pull" if world.version == "v2beta2" else "push"
    name = f"{queue}/tasks/reserved"
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        create(world, queue, lacking(CREATE), **world.task_message(kind, name))
    assert_denied(caught, CREATE, queue)
    assert create(world, queue, ADMIN, **world.task_message(kind, name)).name == name
    if world.version == "v2beta2":
        request = {"parent": queue, "max_tasks": 1, "lease_duration": duration_pb2.Duration(seconds=60)}
        for _ in range(15):
            with pytest.raises(exceptions.GoogleAPICallError) as caught:
                world.client.lease_tasks(request=request, metadata=lacking("cloudtasks.tasks.run"))
            assert_denied(caught, "cloudtasks.tasks.run", queue)
        assert len(world.client.lease_tasks(request=request, metadata=ADMIN).tasks) == 1
        return
    request_id = uuid.uuid4().hex
    batch = {"parent": queue, "requests": [{"task": world.task_message()}], "request_id": request_id}
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        world.client.batch_create_tasks(request=batch, metadata=lacking(CREATE))
    assert_denied(caught, CREATE, queue)
    with pytest.raises(exceptions.NotFound):
        world.client.get_operation(
            request={"name": f"{world.location}/operations/{request_id}"}, metadata=ADMIN
        )
    operation = world.client.batch_create_tasks(request=batch, metadata=ADMIN)
    assert len(operation.result(timeout=30).tasks) == 1


def test_group_members_get_the_groups_grant(world: World) -> None:
    queue = world.queue()
    set_policy(world, queue, [{"role": ENQUEUER, "members": ["group:team@example.com"]}])
    create(world, queue, bearer("grouped-token"))
    create(world, queue, bearer("nested-token"))  # a member of a group in the group
    assert_create_denied(world, queue, bearer("outsider-token"))
    # Project bindings of groups (the config's): readers, and the group inside it.
    for token in ("reader-token", "sub-reader-token"):
        list(world.client.list_queues(parent=world.location, metadata=bearer(token)))
        assert_create_denied(world, queue, bearer(token))
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        list(world.client.list_queues(parent=world.location, metadata=bearer("grouped-token")))
    assert_denied(caught, "cloudtasks.queues.list", world.location)


def test_domain_members_and_all_authenticated_users(world: World) -> None:
    queue = world.queue()
    set_policy(world, queue, [{"role": ENQUEUER, "members": ["domain:corp.example"]}])
    create(world, queue, bearer("corp-token"))
    assert_create_denied(world, queue, bearer("outsider-token"))
    list(world.client.list_queues(parent=world.location, metadata=bearer("domain-viewer-token")))
    set_policy(world, queue, [{"role": ENQUEUER, "members": ["allAuthenticatedUsers"]}])
    create(world, queue, bearer("outsider-token"))
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        create(world, queue, ANONYMOUS)
    assert_unauthenticated(caught)


def test_unknown_or_malformed_credentials_are_unauthenticated(world: World) -> None:
    for metadata in (bearer("no-such-token"), [("authorization", "Basic YWRtaW46YWRtaW4=")]):
        with pytest.raises(exceptions.Unauthorized) as caught:
            list(world.client.list_queues(parent=world.location, metadata=metadata))
        status, message = status_of(caught.value)
        assert status == "UNAUTHENTICATED"
        assert message.startswith("Request had invalid authentication credentials."), message
