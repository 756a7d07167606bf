"""Pull-queue rules: LeaseTasks arguments, the filter grammar, what may be leased."""

from __future__ import annotations

import re
from datetime import timedelta

from tasksd.model.errors import InvalidArgument
from tasksd.service.tasks import MAX_TAG_LENGTH

MAX_LEASE_TASKS = 1000
MAX_LEASE_DURATION = timedelta(weeks=1)
MAX_LEASE_REPLY_BYTES = 32 * 1024 * 1024

_TAG = re.compile(r'\s*tag\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*')
_OLDEST = re.compile(r"\s*tag_function\s*=\s*oldest_tag\(\)\s*")


def lease_duration(value: timedelta | None, field: str = "lease_duration") -> timedelta:
    """The lease duration, truncated to whole seconds as documented.

    Raises:
        InvalidArgument: missing, shorter than a second, or longer than a week.
    """
    if value is None:
        raise InvalidArgument(f"{field} is required.")
    seconds = int(value.total_seconds())
    if seconds < 1 or value > MAX_LEASE_DURATION:
        raise InvalidArgument(
            f"{field} must be between 1s and 604800s (one week), got {value.total_seconds():g}s."
        )
    return timedelta(seconds=seconds)


def max_tasks(value: int) -> int:
    if not 1 <= value <= MAX_LEASE_TASKS:
        raise InvalidArgument(f"max_tasks must be between 1 and {MAX_LEASE_TASKS}, got {value}.")
    return value


def parse_lease_filter(text: str) -> tuple[str | None, bool]:
    """(tag, oldest_tag) of a LeaseTasks filter: ``tag=<tag>`` or ``tag_function=oldest_tag()``.

    Raises:
        InvalidArgument: any other text, or a tag of 500 characters or more.
    """
    if not text.strip():
        return None, False
    if _OLDEST.fullmatch(text):
        return None, True
    match = _TAG.fullmatch(text)
    if match is None:
        raise InvalidArgument(f"Invalid filter {text!r}: use tag=<tag> or tag_function=oldest_tag().")
    tag = re.sub(r"\\(.)", r"\1", match.group(1)) if match.group(1) is not None else match.group(2)
    if len(tag) >= MAX_TAG_LENGTH:
        raise InvalidArgument(f"The tag in filter must be less than {MAX_TAG_LENGTH} characters.")
    return tag, False
