"""The Firebase task-queue routes: what firebase-admin calls when ``CLOUD_TASKS_EMULATOR_HOST`` is set.

firebase-admin (Python and Node) ``functions.task_queue(...).enqueue()`` and ``.delete()`` then
talk to the Firebase emulator's routes, which have no version prefix and v2 semantics:

* ``POST /projects/{p}/locations/{l}/queues/{q}/tasks`` with ``{"task": {...}}``, where
  ``httpRequest.url`` is empty unless the caller gave ``TaskOptions.uri``; the reply is
  ``{"task": {..., "name": "/projects/..."}}`` (the SDK drops the name's first character).
* ``DELETE /projects/{p}/locations/{l}/queues/{q}/tasks/{id}``.

Each is run as the v2 CreateTask or DeleteTask RPC, so validation, permissions (when auth is
enforced, the request was authenticated like any API call) and storage are those of the API.
An empty URL is filled in: when the queue's ``httpTarget.uriOverride`` names a host, with the
URL that override makes (as BufferTask does); otherwise from the ``firebase_function_url``
template (``{project}``, ``{location}``, ``{queue}``; by default the Functions emulator's
``http://127.0.0.1:5001/{project}/{location}/{queue}``), to which the engine still applies a
host-less override at each attempt. A queue that does not exist is created with default settings
on the first enqueue, as deploying a task-queue function creates its queue (v2 CreateQueue, so
with auth enforced the caller needs cloudtasks.queues.create for that). A caller that may not
read the queue (cloudtasks.queues.get) gets the template URL. Python firebase-admin sends the
task data as the JSON body itself, Node as ``{"data": …}``; the body is stored as sent.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from tasksd.api.common_mapping import http_target_of
from tasksd.api.rest import jsonpb
from tasksd.api.rest.bodies import parse_into, read_json
from tasksd.api.rest.errors import rest_error
from tasksd.api.rpc import Rpc
from tasksd.model.errors import AlreadyExists, Code, Internal, InvalidArgument, TasksError
from tasksd.targets.http import apply_uri_override

log = logging.getLogger(__name__)

DEFAULT_FUNCTION_URL = "http://127.0.0.1:5001/{project}/{location}/{queue}"
SERVICE = "google.cloud.tasks.v2.CloudTasks"
_PATH = re.compile(r"/projects/([^/]+)/locations/([^/]+)/queues/([^/]+)/tasks(?:/([^/]+))?")
_PLACEHOLDER = "https://placeholder/"


@dataclass(frozen=True, slots=True)
class FirebaseCall:
    """One request to a Firebase route: create (``task_id`` None) or delete."""

    project: str
    location: str
    queue: str
    task_id: str | None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}"


class FirebaseRoutes:
    """The two Firebase emulator routes, answered through the v2 RPCs."""

    def __init__(self, rpcs: list[Rpc], function_url: str = DEFAULT_FUNCTION_URL) -> None:
        table = {rpc.name: rpc for rpc in rpcs if rpc.service == SERVICE}
        self._get_queue = table["GetQueue"]
        self._create_queue = table["CreateQueue"]
        self._create_task = table["CreateTask"]
        self._delete_task = table["DeleteTask"]
        self.function_url = function_url

    def match(self, method: str, path: str) -> FirebaseCall | None:
        """The call a request makes, when it is one of the two routes (and None otherwise)."""
        if method not in ("POST", "DELETE") or not path.startswith("/projects/"):
            return None
        found = _PATH.fullmatch(path)
        if found is None:
            return None
        project, location, queue, task_id = found.groups()
        if (method == "POST") != (task_id is None):
            return None
        return FirebaseCall(project, location, queue, task_id)

    async def respond(self, call: FirebaseCall, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, JSON body) of a call; every failure is a Status body."""
        try:
            if call.task_id is not None:
                return 200, await self._delete(call)
            return 200, await self._enqueue(call, body)
        except TasksError as error:
            return rest_error(error)
        except Exception:  # a bug: log it, never show a traceback to the caller
            log.exception("unhandled error in a Firebase task-queue call")
            return rest_error(Internal())

    async def _delete(self, call: FirebaseCall) -> bytes:
        request: Any = self._delete_task.request()
        request.name = f"{call.parent}/tasks/{call.task_id}"
        await self._delete_task.handler(request)
        return b"{}"

    async def _enqueue(self, call: FirebaseCall, body: bytes) -> bytes:
        document = _read(body)
        task = document.get("task")
        if not isinstance(task, dict):
            raise InvalidArgument("Invalid JSON payload received. The body must hold a task object.")
        if task.get("name") is None:
            task = {k: v for k, v in task.items() if k != "name"}
        request: Any = self._create_task.request()
        request.parent = call.parent
        parse_into(task, request.task)
        queue = await self._queue(call)
        if request.task.HasField("http_request") and not request.task.http_request.url:
            request.task.http_request.url = self._url(call, queue)
        created = await self._create_task.handler(request)
        reply = jsonpb.to_dict(created)
        assert isinstance(reply, dict)
        reply["name"] = "/" + str(reply.get("name", ""))
        return json.dumps({"task": reply}).encode()

    async def _queue(self, call: FirebaseCall) -> Any:
        """The v2 Queue, created with default settings when missing; None when the caller may
        not read it (an enqueuer-only principal): its task gets the template URL, and CreateTask
        decides."""
        get: Any = self._get_queue.request()
        get.name = call.parent
        try:
            return await self._get_queue.handler(get)
        except TasksError as error:
            if error.code is Code.PERMISSION_DENIED:
                return None
            if error.code is not Code.NOT_FOUND:
                raise
        create: Any = self._create_queue.request()
        create.parent = f"projects/{call.project}/locations/{call.location}"
        create.queue.name = call.parent
        try:
            return await self._create_queue.handler(create)
        except AlreadyExists:  # created meanwhile by another request
            return await self._get_queue.handler(get)

    def _url(self, call: FirebaseCall, queue: Any) -> str:
        """Where a task given no URL goes: the queue's URI override with a host, else the template."""
        if queue is not None and queue.HasField("http_target"):
            override = http_target_of(queue.http_target).uri_override
            if override is not None and override.host:
                return apply_uri_override(_PLACEHOLDER, replace(override, enforce_mode=None))
        return self.function_url.format(project=call.project, location=call.location, queue=call.queue)


def _read(body: bytes) -> dict[str, Any]:
    document = read_json(body) if body.strip() else {}
    if not isinstance(document, dict):
        raise InvalidArgument("Invalid JSON payload received. The body must be a JSON object.")
    return document
