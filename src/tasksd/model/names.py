"""Resource names of projects, locations, queues and tasks, with their grammars.

The grammars are the ones the API documents:
``projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID/tasks/TASK_ID``, where
PROJECT_ID holds letters, digits, hyphens, colons and periods; QUEUE_ID letters, digits and
hyphens (at most 100); TASK_ID letters, digits, hyphens and underscores (at most 500).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasksd.model.errors import InvalidArgument

_PROJECT_RE = re.compile(r"[A-Za-z0-9\-:.]{1,100}")
_LOCATION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_QUEUE_RE = re.compile(r"[A-Za-z0-9\-]{1,100}")
_TASK_RE = re.compile(r"[A-Za-z0-9_\-]{1,500}")


def _check(kind: str, value: str, pattern: re.Pattern[str], rule: str, field: str) -> None:
    if not pattern.fullmatch(value):
        raise InvalidArgument(f"Invalid {kind} ID {value!r} in {field}: {rule}.")


@dataclass(frozen=True, slots=True)
class ProjectName:
    project: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}"

    @classmethod
    def parse(cls, name: str, field: str = "name") -> ProjectName:
        parts = name.split("/")
        if len(parts) != 2 or parts[0] != "projects":
            raise InvalidArgument(
                f"Invalid resource field value in the request: {field} "
                f"{name!r} must have the format projects/PROJECT_ID."
            )
        _check("project", parts[1], _PROJECT_RE, _PROJECT_RULE, field)
        return cls(parts[1])


_PROJECT_RULE = "it may contain letters, numbers, hyphens, colons or periods"
_LOCATION_RULE = "it may contain letters, numbers and hyphens (at most 63)"
_QUEUE_RULE = "it may contain only letters, numbers and hyphens, and at most 100 characters"
_TASK_RULE = "it may contain only letters, numbers, hyphens and underscores, and at most 500 characters"


@dataclass(frozen=True, slots=True)
class LocationName:
    project: str
    location: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @classmethod
    def parse(cls, name: str, field: str = "parent") -> LocationName:
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations":
            raise InvalidArgument(
                f"Invalid resource field value in the request: {field} {name!r} must have the "
                "format projects/PROJECT_ID/locations/LOCATION_ID."
            )
        _check("project", parts[1], _PROJECT_RE, _PROJECT_RULE, field)
        _check("location", parts[3], _LOCATION_RE, _LOCATION_RULE, field)
        return cls(parts[1], parts[3])


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
        parts = name.split("/")
        if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or (parts[4] != "queues"):
            raise InvalidArgument(
                f"Invalid resource field value in the request: {field} {name!r} must have the "
                "format projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID."
            )
        _check("project", parts[1], _PROJECT_RE, _PROJECT_RULE, field)
        _check("location", parts[3], _LOCATION_RE, _LOCATION_RULE, field)
        _check("queue", parts[5], _QUEUE_RE, _QUEUE_RULE, field)
        return cls(parts[1], parts[3], parts[5])


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
        parts = name.split("/")
        if (
            len(parts) != 8
            or parts[0] != "projects"
            or parts[2] != "locations"
            or (parts[4] != "queues" or parts[6] != "tasks")
        ):
            raise InvalidArgument(
                f"Invalid resource field value in the request: {field} {name!r} must have the "
                "format projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID/tasks/TASK_ID."
            )
        _check("project", parts[1], _PROJECT_RE, _PROJECT_RULE, field)
        _check("location", parts[3], _LOCATION_RE, _LOCATION_RULE, field)
        _check("queue", parts[5], _QUEUE_RE, _QUEUE_RULE, field)
        _check("task", parts[7], _TASK_RE, _TASK_RULE, field)
        return cls(parts[1], parts[3], parts[5], parts[7])
