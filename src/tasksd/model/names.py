"""Resource names of projects, locations, queues and tasks, with their grammars.

The grammars are the ones the API documents:
``projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID/tasks/TASK_ID``, where
PROJECT_ID holds letters, digits, hyphens, colons and periods; QUEUE_ID letters, digits and
hyphens (at most 100); TASK_ID letters, digits, hyphens and underscores (at most 500).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasksd.caches import remember
from tasksd.model.errors import ErrorInfo, Help, HelpLink, InvalidArgument, PermissionDenied

_PROJECT_RE = re.compile(r"[A-Za-z0-9\-:.]{1,100}")
_LOCATION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_QUEUE_RE = re.compile(r"[A-Za-z0-9\-]{1,100}")
_TASK_RE = re.compile(r"[A-Za-z0-9_\-]{1,500}")

_PROJECT_RULE = "it may contain letters, numbers, hyphens, colons or periods"
_LOCATION_RULE = "it may contain letters, numbers and hyphens (at most 63)"
_QUEUE_RULE = "it may contain only letters, numbers and hyphens, and at most 100 characters"
_TASK_RULE = "it may contain only letters, numbers, hyphens and underscores, and at most 500 characters"

# The segments of a resource name, outermost first: (collection, kind, grammar, rule).
_SEGMENTS = (
    ("projects", "project", _PROJECT_RE, _PROJECT_RULE),
    ("locations", "location", _LOCATION_RE, _LOCATION_RULE),
    ("queues", "queue", _QUEUE_RE, _QUEUE_RULE),
    ("tasks", "task", _TASK_RE, _TASK_RULE),
)


_QUEUE_IDS: dict[str, list[str]] = {}
"""Queue names already parsed, and their ids: a server sees the same few queues again and again."""
_QUEUE_IDS_KEPT = 4096


def _parse_ids(name: str, field: str, depth: int) -> list[str]:
    """The ids of a name made of the first ``depth`` segments, each checked by its grammar.

    Raises:
        InvalidArgument: the name has another shape, or an id breaks its grammar.
    """
    if depth == 3:
        known = _QUEUE_IDS.get(name)
        if known is None:
            known = remember(_QUEUE_IDS, name, _check_ids(name, field, 3), _QUEUE_IDS_KEPT)
        return list(known)
    if depth == 4:
        queue, _, task = name.rpartition("/tasks/")
        known = _QUEUE_IDS.get(queue)
        if known is not None and _TASK_RE.fullmatch(task):
            return [*known, task]
        ids = _check_ids(name, field, 4)
        remember(_QUEUE_IDS, queue, ids[:3], _QUEUE_IDS_KEPT)
        return ids
    return _check_ids(name, field, depth)


QUEUE_NAME_FORMAT = (
    'Queue name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/<QUEUE_ID>".'
)
QUEUE_NAME_HELP = Help(
    (
        HelpLink(
            "Definition of queue name",
            "https://cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues#Queue.FIELDS.name",
        ),
    )
)
TASK_ID_HELP = Help(
    (
        HelpLink(
            "Definition of task ID",
            "https://cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues.tasks#Task.FIELDS.name",
        ),
    )
)


def _check_ids(name: str, field: str, depth: int) -> list[str]:
    """The ids of ``name``; production's words (and google.rpc.Help) where they are recorded:
    for a queue name, a task id, and a parent that is no resource name at all."""
    segments = _SEGMENTS[:depth]
    parts = name.split("/")
    if len(parts) != 2 * depth or any(parts[2 * i] != seg[0] for i, seg in enumerate(segments)):
        if depth == 2 and "/" not in name:
            # Production reads such a parent as a project id, and one that does not exist.
            raise PermissionDenied(
                f"Permission denied on resource project {name}.",
                (ErrorInfo("CONSUMER_INVALID", "googleapis.com", (("consumer", f"projects/{name}"),)),),
            )
        if depth == 3:
            raise InvalidArgument(QUEUE_NAME_FORMAT, (QUEUE_NAME_HELP,))
        shape = "/".join(f"{collection}/{kind.upper()}_ID" for collection, kind, _, _ in segments)
        raise InvalidArgument(
            f"Invalid resource field value in the request: {field} {name!r} must have the format {shape}."
        )
    ids = parts[1::2]
    for value, (_, kind, pattern, rule) in zip(ids, segments, strict=True):
        if not pattern.fullmatch(value):
            if kind == "task":
                raise InvalidArgument(
                    f'Task ID "{value[:600]}" can contain only letters ([A-Za-z]), numbers ([0-9]), '
                    "hyphens (-), or underscores (_). Task ID must between 1 and 500 characters.",
                    (TASK_ID_HELP,),
                )
            if depth == 3:
                raise InvalidArgument(QUEUE_NAME_FORMAT, (QUEUE_NAME_HELP,))
            raise InvalidArgument(f"Invalid {kind} ID {value!r} in {field}: {rule}.")
    return ids


@dataclass(frozen=True, slots=True)
class ProjectName:
    project: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}"

    @classmethod
    def parse(cls, name: str, field: str = "name") -> ProjectName:
        return cls(*_parse_ids(name, field, 1))


@dataclass(frozen=True, slots=True)
class LocationName:
    project: str
    location: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @classmethod
    def parse(cls, name: str, field: str = "parent") -> LocationName:
        return cls(*_parse_ids(name, field, 2))


@dataclass(frozen=True, slots=True)
class QueueName:
    project: str
    location: str
    queue: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}"

    @property
    def parent(self) -> LocationName:
        return LocationName(self.project, self.location)

    def task(self, task_id: str) -> TaskName:
        return TaskName(self.project, self.location, self.queue, task_id)

    @classmethod
    def parse(cls, name: str, field: str = "name") -> QueueName:
        return cls(*_parse_ids(name, field, 3))


@dataclass(frozen=True, slots=True)
class TaskName:
    project: str
    location: str
    queue: str
    task: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}/tasks/{self.task}"

    @property
    def queue_name(self) -> QueueName:
        return QueueName(self.project, self.location, self.queue)

    @classmethod
    def parse(cls, name: str, field: str = "name") -> TaskName:
        return cls(*_parse_ids(name, field, 4))


_OPERATION_RE = re.compile(r"[A-Za-z0-9_\-.~]{1,500}")


@dataclass(frozen=True, slots=True)
class OperationName:
    """``projects/PROJECT_ID/locations/LOCATION_ID/operations/OPERATION_ID``: a long-running
    operation (a batch of task creations or deletions)."""

    project: str
    location: str
    operation: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/operations/{self.operation}"

    @classmethod
    def parse(cls, name: str, field: str = "name") -> OperationName:
        location, found, operation = name.partition("/operations/")
        if not found or "/" in operation or location.count("/") != 3:
            raise InvalidArgument(
                f"Invalid resource field value in the request: {field} {name!r} must have the format "
                "projects/PROJECT_ID/locations/LOCATION_ID/operations/OPERATION_ID."
            )
        parent = LocationName.parse(location, field)
        return cls(parent.project, parent.location, operation_id(operation, field))


def operation_id(value: str, field: str) -> str:
    """An operation id (a client's request_id, or one tasksd makes up), checked."""
    if not _OPERATION_RE.fullmatch(value):
        raise InvalidArgument(
            f"Invalid operation ID {value!r} in {field}: it may contain letters, numbers, hyphens, "
            "underscores, periods and tildes, and at most 500 characters."
        )
    return value


def config_location(name: str, field: str, collection: str) -> LocationName:
    """The location of a per-location singleton such as ``projects/P/locations/L/cmekConfig``."""
    location, found, rest = name.rpartition(f"/{collection}")
    if not found or rest or location.count("/") != 3:
        raise InvalidArgument(
            f"Invalid resource field value in the request: {field} {name!r} must have the format "
            f"projects/PROJECT_ID/locations/LOCATION_ID/{collection}."
        )
    return LocationName.parse(location, field)
