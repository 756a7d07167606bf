"""App Engine's queue.yaml: reading the file, and applying it to a project's location.

The grammar is the one App Engine's queue.yaml reference documents: a top-level ``queue:``
list (with ``total_storage_limit`` and ``application`` accepted beside it), each entry a
``name`` with ``mode`` (push or pull), ``rate`` (``5/s``, ``10/m``, ``0.5/h``, ``100/d``, or
``0``), ``bucket_size``, ``max_concurrent_requests``, ``retry_parameters``
(``task_retry_limit``, ``task_age_limit`` such as ``2d``, ``min_backoff_seconds``,
``max_backoff_seconds``, ``max_doublings``), ``target`` (``version.service`` or ``service``)
and ``acl`` (pull queues; accepted, not enforced: IAM is what tasksd checks).

Each entry becomes a queue as Cloud Tasks makes one from queue.yaml: ``rate`` is
``max_dispatches_per_second`` (``0`` pauses the queue, as App Engine says), ``bucket_size``
``max_burst_size`` (default 5), ``max_concurrent_requests`` ``max_concurrent_dispatches``,
``task_retry_limit`` + 1 ``max_attempts`` (the limit counts retries, ``max_attempts`` counts
the first attempt too; no limit is unlimited, App Engine's default), ``task_age_limit``
``max_retry_duration``, the backoffs ``min_backoff``/``max_backoff``, ``target`` the App Engine
routing override. Such queues keep tasks for the longest Duration (``task_ttl``: App Engine
bounds them by a storage quota instead) and tombstones for 9 days.

Applying a file is what an upload does: the queues it names are created or updated (one that
was DISABLED runs again; a PAUSED one stays paused), and every other queue of the location
is DISABLED (its tasks are kept and can still be added to; ResumeQueue runs it again),
except ``default``, the queue every App Engine app has. A bad file, one entry the service
refuses (a push queue that exists as a pull queue, a name deleted too recently) included,
changes nothing: every entry is checked against the store before anything is written.

Errors are INVALID_ARGUMENT naming the file's line and key, e.g.
``queue.yaml line 4: rate: "5/x" is not a rate such as 5/s, 10/m, 0.5/h or 100/d.``

An upload's project is its ``app_id``; a file's own ``application:`` is used only where no
project is given (``--config`` a queue.yaml).

LIMITATIONS: the check and the writes are separate store transactions, one per queue: a
CreateQueue or DeleteQueue of one of the file's queues between them can still make an upload
fail part way. ``total_storage_limit`` and ``acl`` are checked for their form only.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any

import yaml

from tasksd.model.errors import InvalidArgument, QueueTombstoned, TasksError
from tasksd.model.names import LocationName, QueueName
from tasksd.model.queue import (
    AppEngineRouting,
    Queue,
    QueueKind,
    QueueState,
    RateLimits,
    RetryConfig,
)
from tasksd.service.core import TasksService
from tasksd.service.queues import (
    DEFAULT_RETRY,
    MAX_BACKOFF,
    MAX_BURST_SIZE,
    MAX_CONCURRENT_DISPATCHES,
    MAX_DISPATCHES_PER_SECOND,
    MAX_TOMBSTONE_TTL,
    complete_queue,
)

QUEUE_YAML_TASK_TTL = timedelta(seconds=315_576_000_000)
"""The longest google.protobuf.Duration: the task_ttl of queues made from queue.yaml."""
QUEUE_YAML_TOMBSTONE_TTL = MAX_TOMBSTONE_TTL
DEFAULT_RATE = 5.0
"""The rate of a push queue whose entry names none: App Engine's default queue's, 5/s."""
DEFAULT_BUCKET_SIZE = 5
MAX_FILE_BYTES = 1024 * 1024
"""A queue.yaml of 1,000 queues with every key set is about 300 KB."""
MAX_QUEUES = 1000
"""Queues per location (Cloud Tasks' quota): more in one file is refused."""
MAX_ACL_ENTRIES = 1000
ALWAYS_THERE = "default"
"""The queue every App Engine app has: leaving it out of a file does not disable it."""

# libyaml's parser when PyYAML has it (about four times faster), with the same nodes and marks.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NAME = re.compile(r"[A-Za-z0-9-]{1,100}")
_RATE = re.compile(r"(\d+(?:\.\d*)?)/([smhd])")
_AGE = re.compile(r"(\d+(?:\.\d*)?)([smhd])")
_STORAGE = re.compile(r"\d+(?:\.\d*)?[BKMGT]?")
_SERVICE = r"(?!-)[a-z\d-]{1,63}"
_VERSION = r"(?!-)[a-z\d-]{1,100}"
_TARGET = re.compile(rf"(?:({_VERSION})\.)?({_SERVICE})")
_PROJECT = re.compile(r"[A-Za-z0-9\-:.]{1,100}")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_TOP_KEYS = ("application", "queue", "total_storage_limit")
_ENTRY_KEYS = (
    "acl",
    "bucket_size",
    "max_concurrent_requests",
    "mode",
    "name",
    "rate",
    "retry_parameters",
    "target",
)
_RETRY_KEYS = (
    "max_backoff_seconds",
    "max_doublings",
    "min_backoff_seconds",
    "task_age_limit",
    "task_retry_limit",
)
_PUSH_ONLY = ("rate", "bucket_size", "max_concurrent_requests", "target")
_PULL_RETRY_KEYS = ("task_retry_limit",)
_ACL_KEYS = ("user_email", "writer_email")


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One queue of a queue.yaml file, in the model's terms; ``line`` is where it starts."""

    line: int
    queue_id: str
    kind: QueueKind
    rate_limits: RateLimits
    retry_config: RetryConfig
    routing: AppEngineRouting | None = None
    paused: bool = False
    """``rate: 0``: App Engine holds the queue's tasks."""

    def queue(self, location: LocationName) -> Queue:
        """The queue this entry describes in ``location`` (defaults not yet filled in)."""
        return Queue(
            name=QueueName(location.project, location.location, self.queue_id),
            kind=self.kind,
            app_engine_routing_override=self.routing,
            rate_limits=self.rate_limits,
            retry_config=self.retry_config,
            task_ttl=None,
            tombstone_ttl=QUEUE_YAML_TOMBSTONE_TTL,
        )


@dataclass(frozen=True, slots=True)
class QueueYaml:
    entries: tuple[QueueEntry, ...]
    application: str | None = None
    """The file's ``application:`` (the project), when it names one."""


class _Bad(Exception):
    """A problem at a node of the file; becomes InvalidArgument with the node's line."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.message = message


def _quoted(text: str) -> str:
    return f'"{text}"'


def looks_like_queue_yaml(document: Any) -> bool:
    """Whether a loaded YAML document is a queue.yaml file: a mapping with a ``queue`` key."""
    return isinstance(document, dict) and "queue" in document


def parse_queue_yaml(text: str | bytes) -> QueueYaml:
    """The queues a queue.yaml file describes, every value checked.

    Raises:
        InvalidArgument: the file is not YAML, or breaks the grammar or a limit; the message
            names the line and the key.
    """
    if len(text) > MAX_FILE_BYTES:
        raise InvalidArgument(f"queue.yaml is larger than {MAX_FILE_BYTES} bytes ({len(text)}).")
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        raise InvalidArgument(f"queue.yaml{where}: not valid YAML: {problem}.") from None
    except yaml.reader.ReaderError as exc:
        raise InvalidArgument(
            f"queue.yaml is not UTF-8 or UTF-16 text: {exc.reason} at byte {exc.position}."
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"queue.yaml: not valid YAML: {exc}".split("\n")[0]) from None
    except RecursionError:
        raise InvalidArgument("queue.yaml: not valid YAML: lists or mappings nested too deeply.") from None
    if root is None:
        raise InvalidArgument("queue.yaml is empty: it needs a top-level queue: list.")
    try:
        return _file(root)
    except _Bad as bad:
        raise InvalidArgument(f"queue.yaml line {bad.line}: {bad.message}") from None


# -- the grammar ---------------------------------------------------------------------------


_MERGE = "tag:yaml.org,2002:merge"
_MAX_MERGED = 1000
"""Mappings one mapping may merge in, counting those they merge: aliases can make a small
file name a mapping exponentially often."""


def _merged(node: yaml.Node, budget: list[int]) -> list[tuple[yaml.Node, yaml.Node]]:
    """The (key, value) pairs of a mapping with its ``<<`` merge keys expanded (YAML's merge
    key, for files that share retry_parameters through anchors)."""
    if not isinstance(node, yaml.MappingNode):
        raise _Bad(node, "<<: only mappings (or a list of them) can be merged.")
    budget[0] -= 1
    if budget[0] < 0:
        raise _Bad(node, f"<<: more than {_MAX_MERGED} mappings merged into one.")
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            pairs.append((key_node, value_node))
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            pairs.extend(_merged(source, budget))
    return pairs


def _mapping(node: yaml.Node, what: str, known: Iterable[str]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """key → (key node, value node) of a mapping whose keys are all ``known``; a key given
    itself wins over one merged in (``<<``), and among merged ones the first wins, as YAML says."""
    if not isinstance(node, yaml.MappingNode):
        raise _Bad(node, f"{what} must be a mapping.")
    allowed = tuple(known)
    found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    budget = [_MAX_MERGED]
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                for pair in _merged(source, budget):
                    merged.setdefault(_key(pair[0], what, allowed), pair)
            continue
        key = _key(key_node, what, allowed)
        if key in found:
            first = found[key][0].start_mark.line + 1
            raise _Bad(key_node, f"{key}: given twice in {what} (first on line {first}).")
        found[key] = (key_node, value_node)
    return merged | found


def _key(node: yaml.Node, what: str, allowed: tuple[str, ...]) -> str:
    key = node.value if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(key, str) or key not in allowed:
        shown = key if isinstance(key, str) else "a list or mapping"
        raise _Bad(node, f"{_quoted(shown)} is not a key of {what}; its keys are {', '.join(allowed)}.")
    return key


def _scalar(node: yaml.Node, key: str) -> Any:
    """The typed value of a scalar node (YAML's core types: int, float, str, bool, null)."""
    if not isinstance(node, yaml.ScalarNode):
        raise _Bad(node, f"{key}: must be a single value, not a list or mapping.")
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except Exception:  # a tag the safe loader refuses, or a value its tag cannot hold
        raise _Bad(node, f"{key}: {_quoted(str(node.value))} is not a value of type {node.tag}.") from None


def _text(node: yaml.Node, key: str) -> str:
    value = _scalar(node, key)
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise _Bad(node, f"{key}: must be a string, got {_quoted(node.value)}.")
    return str(node.value)


def _integer(node: yaml.Node, key: str, low: int, high: int | None = None) -> int:
    value = _scalar(node, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(node, f"{key}: {_quoted(node.value)} is not a whole number.")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _Bad(node, f"{key}: must be {bound}, got {value}.")
    return value


def _seconds(node: yaml.Node, key: str) -> float:
    value = _scalar(node, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise _Bad(node, f"{key}: {_quoted(node.value)} is not a number of seconds.")
    if value < 0:
        raise _Bad(node, f"{key}: must not be negative, got {node.value}.")
    if value > MAX_BACKOFF.total_seconds():
        raise _Bad(
            node, f"{key}: must be at most {int(MAX_BACKOFF.total_seconds())} (7 days), got {value:g}."
        )
    return float(value)


def _file(root: yaml.Node) -> QueueYaml:
    if not isinstance(root, yaml.MappingNode):
        raise _Bad(root, "the file must be a mapping whose queue: key holds the list of queues.")
    top = _mapping(root, "the file", _TOP_KEYS)
    application = None
    if "application" in top:
        node = top["application"][1]
        application = _text(node, "application")
        if not _PROJECT.fullmatch(application):
            raise _Bad(
                node,
                f"application: {_quoted(application)} is not a project id (letters, numbers, hyphens, "
                "colons or periods).",
            )
    if "total_storage_limit" in top:  # accepted as App Engine does; tasksd keeps no quota
        node = top["total_storage_limit"][1]
        if not _STORAGE.fullmatch(_text(node, "total_storage_limit").strip()):
            raise _Bad(
                node,
                f"total_storage_limit: {_quoted(node.value)} is not a size such as 500M (a number with an "
                "optional B, K, M, G or T).",
            )
    if "queue" not in top:
        raise _Bad(root, "the file has no queue: list.")
    queue_node = top["queue"][1]
    if isinstance(queue_node, yaml.ScalarNode) and _scalar(queue_node, "queue") is None:
        return QueueYaml((), application)  # "queue:" with nothing: no queues
    if not isinstance(queue_node, yaml.SequenceNode):
        raise _Bad(queue_node, "queue: must be a list of queues (each starting with '- name: ...').")
    if len(queue_node.value) > MAX_QUEUES:
        count = len(queue_node.value)
        raise _Bad(queue_node, f"queue: a file may define at most {MAX_QUEUES} queues, got {count}.")
    entries: list[QueueEntry] = []
    seen: dict[str, int] = {}
    checked: set[int] = set()  # acl lists already checked (entries may share one by an alias)
    for item in queue_node.value:
        entry = _entry(item, checked)
        if entry.queue_id in seen:
            raise _Bad(
                item, f'name: queue "{entry.queue_id}" is already defined on line {seen[entry.queue_id]}.'
            )
        seen[entry.queue_id] = entry.line
        entries.append(entry)
    return QueueYaml(tuple(entries), application)


def _entry(node: yaml.Node, checked: set[int]) -> QueueEntry:
    keys = _mapping(node, "a queue", _ENTRY_KEYS)
    if "name" not in keys:
        raise _Bad(node, "name: every queue needs a name.")
    name_node = keys["name"][1]
    queue_id = _text(name_node, "name")
    if not _NAME.fullmatch(queue_id):
        raise _Bad(
            name_node,
            f"name: {_quoted(queue_id)} is not a queue name: it may contain only letters, numbers and "
            "hyphens, and at most 100 characters.",
        )
    kind = QueueKind.PUSH
    if "mode" in keys:
        mode_node = keys["mode"][1]
        mode = _text(mode_node, "mode")
        if mode not in ("push", "pull"):
            raise _Bad(mode_node, f"mode: must be push or pull, got {_quoted(mode)}.")
        kind = QueueKind.PULL if mode == "pull" else QueueKind.PUSH
    if kind is QueueKind.PULL:
        for key in _PUSH_ONLY:
            if key in keys:
                raise _Bad(keys[key][0], f"{key}: applies to push queues only (this queue has mode: pull).")
    elif "acl" in keys:
        raise _Bad(keys["acl"][0], "acl: applies to pull queues only (add mode: pull).")
    if "acl" in keys and id(keys["acl"][1]) not in checked:
        _acl(keys["acl"][1])
        checked.add(id(keys["acl"][1]))
    rate, paused = _rate(keys["rate"][1]) if "rate" in keys else (DEFAULT_RATE, False)
    burst = (
        _integer(keys["bucket_size"][1], "bucket_size", 1, MAX_BURST_SIZE)
        if "bucket_size" in keys
        else DEFAULT_BUCKET_SIZE
    )
    concurrent = (
        _integer(keys["max_concurrent_requests"][1], "max_concurrent_requests", 1, MAX_CONCURRENT_DISPATCHES)
        if "max_concurrent_requests" in keys
        else None
    )
    retry = (
        _retry(keys["retry_parameters"][1], kind)
        if "retry_parameters" in keys
        else RetryConfig(max_attempts=-1)
    )
    routing = _target(keys["target"][1]) if "target" in keys else None
    limits = RateLimits() if kind is QueueKind.PULL else RateLimits(rate, burst, concurrent)
    return QueueEntry(node.start_mark.line + 1, queue_id, kind, limits, retry, routing, paused)


def _rate(node: yaml.Node) -> tuple[float, bool]:
    """(dispatches per second, paused) of a ``rate``; ``0`` (or ``0/s``) pauses the queue."""
    value = _scalar(node, "rate")
    if value == 0 and not isinstance(value, bool) and isinstance(value, int | float):
        return DEFAULT_RATE, True
    text = node.value.strip()
    match = _RATE.fullmatch(text)
    if match is None:
        raise _Bad(node, f"rate: {_quoted(text)} is not a rate such as 5/s, 10/m, 0.5/h or 100/d.")
    number = float(match.group(1))
    if number == 0:
        return DEFAULT_RATE, True
    per_second = number / _SECONDS[match.group(2)]
    if per_second > MAX_DISPATCHES_PER_SECOND:
        raise _Bad(
            node, f"rate: {text} is more than {MAX_DISPATCHES_PER_SECOND:g}/s, the most Cloud Tasks allows."
        )
    return per_second, False


def _retry(node: yaml.Node, kind: QueueKind) -> RetryConfig:
    keys = _mapping(node, "retry_parameters", _RETRY_KEYS)
    if kind is QueueKind.PULL:
        for key, (key_node, _) in keys.items():
            if key not in _PULL_RETRY_KEYS:
                raise _Bad(key_node, f"{key}: applies to push queues only (this queue has mode: pull).")
    attempts = -1
    if "task_retry_limit" in keys:
        attempts = _integer(keys["task_retry_limit"][1], "task_retry_limit", 0) + 1
    age = None
    if "task_age_limit" in keys:
        age = _age(keys["task_age_limit"][1])
    low = (
        _seconds(keys["min_backoff_seconds"][1], "min_backoff_seconds")
        if "min_backoff_seconds" in keys
        else None
    )
    high = (
        _seconds(keys["max_backoff_seconds"][1], "max_backoff_seconds")
        if "max_backoff_seconds" in keys
        else None
    )
    default_low = DEFAULT_RETRY.min_backoff
    default_high = DEFAULT_RETRY.max_backoff
    assert default_low is not None and default_high is not None
    # As App Engine: one bound alone moves the other default out of its way.
    if low is not None and high is None:
        high = max(low, default_high.total_seconds())
    elif high is not None and low is None:
        low = min(high, default_low.total_seconds())
    if low is not None and high is not None and low > high:
        raise _Bad(
            keys["min_backoff_seconds"][1],
            f"min_backoff_seconds: {low:g} is greater than max_backoff_seconds ({high:g}).",
        )
    doublings = _integer(keys["max_doublings"][1], "max_doublings", 0) if "max_doublings" in keys else None
    return RetryConfig(
        max_attempts=attempts,
        max_retry_duration=age,
        min_backoff=timedelta(seconds=low) if low is not None else None,
        max_backoff=timedelta(seconds=high) if high is not None else None,
        max_doublings=doublings,
    )


def _age(node: yaml.Node) -> timedelta:
    text = _text(node, "task_age_limit").strip()
    match = _AGE.fullmatch(text)
    if match is None:
        raise _Bad(
            node,
            f"task_age_limit: {_quoted(text)} is not an age such as 30s, 10m, 3h or 2d (a number and "
            "one of s, m, h, d).",
        )
    seconds = int(float(match.group(1)) * _SECONDS[match.group(2)])
    if seconds <= 0:
        raise _Bad(node, f"task_age_limit: must be more than 0 seconds, got {text}.")
    if seconds > QUEUE_YAML_TASK_TTL.total_seconds():
        raise _Bad(node, f"task_age_limit: {text} is longer than the longest duration.")
    return timedelta(seconds=seconds)


def _target(node: yaml.Node) -> AppEngineRouting:
    text = _text(node, "target")
    match = _TARGET.fullmatch(text)
    if match is None:
        raise _Bad(
            node,
            f"target: {_quoted(text)} is not an App Engine target such as 'my-service' or "
            "'my-version.my-service' (lower-case letters, digits and hyphens).",
        )
    version, service = match.group(1) or "", match.group(2)
    return AppEngineRouting(service=service, version=version)


def _acl(node: yaml.Node) -> None:
    if not isinstance(node, yaml.SequenceNode):
        raise _Bad(node, "acl: must be a list of '- user_email: ...' or '- writer_email: ...' entries.")
    if len(node.value) > MAX_ACL_ENTRIES:
        raise _Bad(node, f"acl: at most {MAX_ACL_ENTRIES} entries, got {len(node.value)}.")
    for item in node.value:
        for key, (_, value) in _mapping(item, "an acl entry", _ACL_KEYS).items():
            _text(value, key)


# -- applying a file -----------------------------------------------------------------------


FALLBACK_LOCATION = "us-central1"


def app_location(service: TasksService, app_id: str, field: str = "app_id") -> LocationName:
    """Where the queues of App Engine app ``app_id`` (a project id) live: the first of the
    server's default ``locations`` (us-central1 when that list is empty).

    Raises: InvalidArgument for a missing or malformed project id.
    """
    if not app_id:
        raise InvalidArgument(f"{field} is required: the project whose queues the queue.yaml file sets.")
    if not _PROJECT.fullmatch(app_id):
        raise InvalidArgument(
            f"{field}: {_quoted(app_id)} is not a project id (letters, numbers, hyphens, colons or periods)."
        )
    locations = service.settings.default_locations
    return LocationName(app_id, locations[0] if locations else FALLBACK_LOCATION)


class _Gone(TasksError):
    """A queue of the location that was deleted while the file was applied."""


def _from_file(entry: QueueEntry, given: Queue, stored: Queue | None) -> Queue:
    """The queue ``entry`` makes of ``stored`` (None: a new queue), every default filled in."""
    try:
        completed = complete_queue(given, stored)
    except TasksError as error:
        raise error.reworded(
            f'queue.yaml line {entry.line}: queue "{entry.queue_id}": {error.message}'
        ) from None
    if entry.paused:
        state = QueueState.PAUSED
    elif stored is None or stored.state is QueueState.DISABLED:
        state = QueueState.RUNNING
    else:
        state = stored.state
    purge_time = stored.purge_time if stored is not None else None
    return replace(completed, state=state, purge_time=purge_time, task_ttl=QUEUE_YAML_TASK_TTL)


async def apply_queue_yaml(
    service: TasksService,
    location: LocationName,
    file: QueueYaml,
    keep: frozenset[QueueName] = frozenset(),
) -> list[Queue]:
    """Make ``location``'s queues what ``file`` says, as an upload of queue.yaml does; other
    queues of the location are DISABLED, but for ``default`` and those in ``keep``.

    Returns: the queues of the file, as stored.

    Raises:
        InvalidArgument: an entry the service refuses (its line named); nothing was changed.
        FailedPrecondition: a queue of the file was deleted too recently to be created again.
    """
    store, now = service.store, service.clock.now()
    planned = [(entry, entry.queue(location)) for entry in file.entries]
    for entry, queue in planned:  # check everything before writing anything
        try:
            _from_file(entry, queue, await store.find_queue(queue.name, now))
        except QueueTombstoned as error:
            raise error.reworded(
                f'queue.yaml line {entry.line}: queue "{entry.queue_id}": {error.message}'
            ) from None
    applied = []
    for entry, queue in planned:
        applied.append(await service.change_queue(queue.name, partial(_from_file, entry, queue)))
    named = {queue.name for queue in applied} | set(keep)
    after = ""
    while True:
        batch = await store.list_queues(location, after, 500)
        for other in batch:
            if other.name in named or other.name.queue == ALWAYS_THERE or other.state is QueueState.DISABLED:
                continue
            with contextlib.suppress(_Gone):  # deleted meanwhile: nothing to disable
                await service.change_queue(other.name, _disable)
        if len(batch) < 500:
            break
        after = batch[-1].name.queue
    if service.dispatcher is not None:
        for queue in applied:
            if queue.kind is QueueKind.PUSH and queue.state is QueueState.RUNNING:
                service.dispatcher.notify(queue.name)
    return applied


def _disable(stored: Queue | None) -> Queue:
    if stored is None:
        raise _Gone()
    return replace(stored, state=QueueState.DISABLED)
