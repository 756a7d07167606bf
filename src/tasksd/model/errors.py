"""Errors of the API, keyed by the canonical google.rpc.Code.

Every layer raises these; each wire adapter renders them (REST: an HTTP status plus a
``google.rpc.Status`` JSON body; gRPC: a status code and message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

Item = TypeVar("Item")
Checked = TypeVar("Checked")
Answer = TypeVar("Answer")


class Code(IntEnum):
    """The canonical codes of google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


@dataclass(frozen=True, slots=True)
class HelpLink:
    description: str
    url: str


@dataclass(frozen=True, slots=True)
class Help:
    """google.rpc.Help: where to read about what was wrong."""

    links: tuple[HelpLink, ...]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """google.rpc.ErrorInfo: the machine-readable reason of an error."""

    reason: str
    domain: str
    metadata: tuple[tuple[str, str], ...] = ()


Detail = Help | ErrorInfo


class TasksError(Exception):
    """An API error: a canonical code, a message a person can act on and, where the real
    service sends them, ``google.rpc`` details.

    Subclasses fix the code; those with a docstring-like default message may be raised
    without arguments.
    """

    code: Code = Code.UNKNOWN
    default_message: str = "Unknown error."

    def __init__(self, message: str | None = None, details: tuple[Detail, ...] = ()) -> None:
        self.message = message if message is not None else self.default_message
        self.details = details
        super().__init__(self.message)

    def reworded(self, message: str) -> TasksError:
        """The same error (type, code, details) with another message."""
        return type(self)(message, self.details)


class InvalidArgument(TasksError):
    """A request the API refuses as written. With ``field`` (the model's path of the field at
    fault, e.g. ``rate_limits.max_dispatches_per_second``) the message is "FIELD TEXT", and
    each API version spells the path as its own messages name that field."""

    code = Code.INVALID_ARGUMENT
    default_message = "Request contains an invalid argument."

    def __init__(
        self, message: str | None = None, details: tuple[Detail, ...] = (), field: str | None = None
    ) -> None:
        self.field = field
        self.text = message
        super().__init__(f"{field} {message}" if field is not None and message else message, details)

    def spelled(self, spell: Callable[[str], str]) -> InvalidArgument:
        """The same error with its field path as ``spell`` writes it (itself without a field)."""
        if self.field is None:
            return self
        return InvalidArgument(self.text, self.details, spell(self.field))


class NotFound(TasksError):
    code = Code.NOT_FOUND
    default_message = "Requested entity was not found."


class AlreadyExists(TasksError):
    code = Code.ALREADY_EXISTS
    default_message = "Requested entity already exists"


class FailedPrecondition(TasksError):
    code = Code.FAILED_PRECONDITION
    default_message = "Precondition check failed."


class Aborted(TasksError):
    code = Code.ABORTED
    default_message = "The operation was aborted."


class ResourceExhausted(TasksError):
    code = Code.RESOURCE_EXHAUSTED
    default_message = "Resource has been exhausted (e.g. check quota)."


class Unimplemented(TasksError):
    code = Code.UNIMPLEMENTED
    default_message = "Operation is not implemented, or supported, or enabled."


class Cancelled(TasksError):
    """The caller went away before the answer (counted, never sent)."""

    code = Code.CANCELLED
    default_message = "The call was cancelled by the caller."


class Internal(TasksError):
    code = Code.INTERNAL
    default_message = "Internal error encountered."


class Unauthenticated(TasksError):
    code = Code.UNAUTHENTICATED
    default_message = (
        "Request is missing required authentication credential. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project."
    )


class InvalidCredentials(Unauthenticated):
    default_message = (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project."
    )


class PermissionDenied(TasksError):
    code = Code.PERMISSION_DENIED
    default_message = "The caller does not have permission"

    @classmethod
    def lacking(cls, permission: str, resource: str) -> PermissionDenied:
        """Google's words for a principal without ``permission`` on ``resource``."""
        return cls(
            f'The principal (user or service account) lacks IAM permission "{permission}" for the '
            f'resource "{resource}" (or the resource may not exist).'
        )


class QueueNotFound(NotFound):
    default_message = (
        "Queue does not exist. If you just created the queue, wait at least a minute for "
        "the queue to initialize."
    )


class QueueChanged(Aborted):
    """The stored queue is not the one a change was computed from (another change came
    first): the service computes the change again from the queue as it is now."""

    default_message = "The queue was changed concurrently."


class QueueTombstoned(FailedPrecondition):
    default_message = "The queue cannot be created because a queue with this name existed too recently."


class TaskNotFound(NotFound):
    """A task that never existed: production's generic NOT_FOUND wording."""


class TaskTombstoned(NotFound):
    default_message = (
        "The task no longer exists, though a task with this name existed recently. "
        "The task either successfully completed or was deleted."
    )


class LocationNotFound(NotFound):
    default_message = "Location not found."


async def outcomes_of(
    items: Iterable[Item],
    check: Callable[[Item], Checked],
    run: Callable[[list[Checked]], Awaitable[list[Answer]]],
) -> list[Answer | TasksError]:
    """Each item's outcome when ``run`` takes, in one call, every item that ``check``
    accepts: the TasksError ``check`` raised for it, or what ``run`` answered for it."""
    checked: list[Checked] = []
    refused: list[TasksError | None] = []
    for item in items:
        try:
            checked.append(check(item))
            refused.append(None)
        except TasksError as error:
            refused.append(error)
    answers = iter(await run(checked) if checked else [])
    return [next(answers) if error is None else error for error in refused]
