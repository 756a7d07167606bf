"""queue.yaml: the grammar, its mapping onto queues, and what applying a file does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tasksd.clock import FakeClock
from tasksd.model.errors import FailedPrecondition, InvalidArgument
from tasksd.model.names import LocationName, QueueName
from tasksd.model.queue import AppEngineRouting, Queue, QueueKind, QueueState
from tasksd.service import ServiceSettings, TasksService
from tasksd.service.queueyaml import (
    QUEUE_YAML_TASK_TTL,
    app_location,
    apply_queue_yaml,
    parse_queue_yaml,
)

Run = Callable[[Awaitable[Any]], Any]
HERE = LocationName("app", "us-central1")

FILE = """\
total_storage_limit: 120M
queue:
- name: fooqueue
  rate: 1/s
  retry_parameters:
    task_retry_limit: 7
    task_age_limit: 2d
- name: barqueue
  rate: 10/m
  bucket_size: 20
  max_concurrent_requests: 3
  target: v1.backend
  retry_parameters:
    min_backoff_seconds: 10
    max_backoff_seconds: 200
    max_doublings: 0
- name: pulled
  mode: pull
  acl:
  - user_email: a@example.com
  - writer_email: b@example.com
  retry_parameters:
    task_retry_limit: 3
- name: held
  rate: 0
- name: plain
"""


def test_entries_map_onto_queues_as_cloud_tasks_maps_them() -> None:
    entries = {e.queue_id: e for e in parse_queue_yaml(FILE).entries}
    foo, bar, pulled, held, plain = (entries[n] for n in ("fooqueue", "barqueue", "pulled", "held", "plain"))
    assert foo.line == 3 and bar.line == 8
    assert foo.rate_limits.max_dispatches_per_second == 1.0
    assert foo.rate_limits.max_burst_size == 5  # App Engine's default bucket_size
    assert foo.retry_config.max_attempts == 8  # 7 retries after the first attempt
    assert foo.retry_config.max_retry_duration == timedelta(days=2)
    assert bar.rate_limits.max_dispatches_per_second == pytest.approx(10 / 60)
    assert bar.rate_limits.max_burst_size == 20 and bar.rate_limits.max_concurrent_dispatches == 3
    assert bar.routing == AppEngineRouting(service="backend", version="v1")
    assert bar.retry_config.min_backoff == timedelta(seconds=10)
    assert bar.retry_config.max_backoff == timedelta(seconds=200)
    assert bar.retry_config.max_doublings == 0 and bar.retry_config.max_attempts == -1
    assert pulled.kind is QueueKind.PULL and pulled.retry_config.max_attempts == 4
    assert held.paused and not plain.paused
    assert plain.rate_limits.max_dispatches_per_second == 5.0  # App Engine's default rate


@pytest.mark.parametrize(
    ("rate", "per_second"),
    [("5/s", 5.0), ("1.5/s", 1.5), ("30/m", 0.5), ("3600/h", 1.0), ("86400/d", 1.0), ("2./s", 2.0)],
)
def test_rates(rate: str, per_second: float) -> None:
    [entry] = parse_queue_yaml(f"queue:\n- name: q\n  rate: {rate}\n").entries
    assert entry.rate_limits.max_dispatches_per_second == pytest.approx(per_second)


def test_one_backoff_alone_moves_the_other_default_out_of_its_way() -> None:
    text = "queue:\n- name: q\n  retry_parameters: {min_backoff_seconds: 7200}\n"
    [entry] = parse_queue_yaml(text).entries
    assert entry.retry_config.max_backoff == timedelta(seconds=7200)
    text = "queue:\n- name: q\n  retry_parameters: {max_backoff_seconds: 0.05}\n"
    [entry] = parse_queue_yaml(text).entries
    assert entry.retry_config.min_backoff == timedelta(seconds=0.05)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("queue:\n- name: a\n  bucket_size: 4\n  rate: 5/x\n", 'line 4: rate: "5/x" is not a rate'),
        ("queue:\n- name: a\n  rate: 600/s\n", "line 3: rate: 600/s is more than 500/s"),
        ("queue:\n- name: a\n  bucket_size: 501\n", "line 3: bucket_size: must be between 1 and 500"),
        ("queue:\n- name: a\n  bucket_size: yes\n", 'line 3: bucket_size: "yes" is not a whole number'),
        ("queue:\n- name: a\n  max_concurrent_requests: 0\n", "line 3: max_concurrent_requests: must be"),
        ("queue:\n- rate: 5/s\n", "line 2: name: every queue needs a name"),
        ("queue:\n- name: a_b\n", 'line 2: name: "a_b" is not a queue name'),
        ("queue:\n- name: a\n- name: a\n", 'line 3: name: queue "a" is already defined on line 2'),
        ("queue:\n- name: a\n  name: b\n", "line 3: name: given twice"),
        ("queue:\n- name: a\n  colour: red\n", 'line 3: "colour" is not a key of a queue'),
        ("queues:\n- name: a\n", 'line 1: "queues" is not a key of the file'),
        ("queue:\n- name: a\n  mode: pull\n  rate: 1/s\n", "line 4: rate: applies to push queues only"),
        ("queue:\n- name: a\n  mode: pull\n  target: b\n", "line 4: target: applies to push queues only"),
        ("queue:\n- name: a\n  acl: []\n", "line 3: acl: applies to pull queues only"),
        ("queue:\n- name: a\n  mode: poll\n", 'line 3: mode: must be push or pull, got "poll"'),
        ("queue:\n- name: a\n  target: A.B\n", 'line 3: target: "A.B" is not an App Engine target'),
        (
            "queue:\n- name: a\n  retry_parameters:\n    task_age_limit: 2 days\n",
            'line 4: task_age_limit: "2 days" is not an age',
        ),
        (
            "queue:\n- name: a\n  retry_parameters:\n    task_retry_limit: -1\n",
            "line 4: task_retry_limit: must be at least 0",
        ),
        (
            "queue:\n- name: a\n  retry_parameters:\n"
            "    min_backoff_seconds: 9\n    max_backoff_seconds: 3\n",
            "line 4: min_backoff_seconds: 9 is greater than max_backoff_seconds (3)",
        ),
        (
            "queue:\n- name: a\n  mode: pull\n  retry_parameters:\n    max_doublings: 2\n",
            "line 5: max_doublings: applies to push queues only",
        ),
        ("queue:\n- name: a\n  retry_parameters: 3\n", "line 3: retry_parameters must be a mapping"),
        ("total_storage_limit: lots\nqueue: []\n", 'line 1: total_storage_limit: "lots" is not a size'),
        ("- name: a\n", "line 1: the file must be a mapping"),
        ("queue: 5\n", "line 1: queue: must be a list of queues"),
        ("total_storage_limit: 1G\n", "the file has no queue: list"),
        ("queue:\n- name: a\n  rate: [1\n", "line 4: not valid YAML"),
        ("queue:\n- name: a\n---\nqueue: []\n", "line 3: not valid YAML: expected a single document"),
        ("", "queue.yaml is empty"),
        ("queue: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
    ],
)
def test_bad_files_name_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_queue_yaml(text)
    assert raised.value.message.startswith("queue.yaml")
    assert expected in raised.value.message


def test_anchors_and_merge_keys_share_settings() -> None:
    text = (
        "queue:\n- name: a\n  retry_parameters: &retry {task_retry_limit: 3, max_doublings: 2}\n"
        "- name: b\n  retry_parameters:\n    <<: *retry\n    task_retry_limit: 5\n"
        "- name: c\n  retry_parameters: *retry\n"
    )
    a, b, c = parse_queue_yaml(text).entries
    assert (a.retry_config.max_attempts, a.retry_config.max_doublings) == (4, 2)
    assert (b.retry_config.max_attempts, b.retry_config.max_doublings) == (6, 2)
    assert c.retry_config == a.retry_config


def test_files_that_cost_too_much_are_refused() -> None:
    bomb = "queue:\n- &a\n  name: a\n  <<: [*a, *a, *a]\n"
    with pytest.raises(InvalidArgument, match="more than 1000 mappings merged"):
        parse_queue_yaml(bomb)
    with pytest.raises(InvalidArgument, match="larger than 1048576 bytes"):
        parse_queue_yaml("queue: []\n" + "#" * 1024 * 1024)
    many = "queue:\n" + "".join(f"- name: q{i}\n" for i in range(1001))
    with pytest.raises(InvalidArgument, match="at most 1000 queues"):
        parse_queue_yaml(many)


def test_bytes_that_are_no_text() -> None:
    with pytest.raises(InvalidArgument, match="not UTF-8 or UTF-16 text"):
        parse_queue_yaml(b"queue:\n- name: \xff\xfe\x00\n")


def test_an_empty_queue_list_is_a_file_without_queues() -> None:
    assert parse_queue_yaml("queue:\n").entries == ()
    assert parse_queue_yaml("queue: []\napplication: my-app\n").application == "my-app"


def test_the_app_location_is_the_first_default_location(service: TasksService) -> None:
    assert app_location(service, "app") == HERE
    with pytest.raises(InvalidArgument, match="app_id is required"):
        app_location(service, "")
    with pytest.raises(InvalidArgument, match="is not a project id"):
        app_location(service, "a/b")
    other = TasksService(service.store, service.clock, ServiceSettings(default_locations=("europe-west1",)))
    assert app_location(other, "app") == LocationName("app", "europe-west1")


def test_applying_creates_updates_and_disables(service: TasksService, run: Run) -> None:
    run(service.create_queue(HERE, Queue(name=QueueName("app", "us-central1", "made-by-api"))))
    run(service.create_queue(HERE, Queue(name=QueueName("app", "us-central1", "default"))))
    elsewhere = QueueName("app", "europe-west1", "far")
    run(service.create_queue(elsewhere.parent, Queue(name=elsewhere)))
    applied = run(apply_queue_yaml(service, HERE, parse_queue_yaml(FILE)))
    assert [q.name.queue for q in applied] == ["fooqueue", "barqueue", "pulled", "held", "plain"]
    foo = run(service.get_queue(QueueName("app", "us-central1", "fooqueue")))
    assert foo.state is QueueState.RUNNING and foo.kind is QueueKind.PUSH
    assert foo.task_ttl == QUEUE_YAML_TASK_TTL and foo.tombstone_ttl == timedelta(days=9)
    assert foo.rate_limits.max_concurrent_dispatches == 1000  # Cloud Tasks' default
    bar = run(service.get_queue(QueueName("app", "us-central1", "barqueue")))
    assert bar.app_engine_routing_override is not None
    assert bar.app_engine_routing_override.host == "v1.backend.app.appspot.com"
    held = run(service.get_queue(QueueName("app", "us-central1", "held")))
    assert held.state is QueueState.PAUSED
    api_made = run(service.get_queue(QueueName("app", "us-central1", "made-by-api")))
    assert api_made.state is QueueState.DISABLED
    assert run(service.get_queue(QueueName("app", "us-central1", "default"))).state is QueueState.RUNNING
    assert run(service.get_queue(elsewhere)).state is QueueState.RUNNING

    # The API still updates a queue from queue.yaml (its task_ttl stays the longest Duration).
    run(service.update_queue(Queue(name=foo.name, rate_limits=foo.rate_limits), ["rate_limits"]))
    # A disabled queue named again runs again; one the file leaves out again is disabled.
    again = FILE.replace("- name: plain\n", "- name: made-by-api\n")
    run(apply_queue_yaml(service, HERE, parse_queue_yaml(again)))
    assert run(service.get_queue(api_made.name)).state is QueueState.RUNNING
    assert run(service.get_queue(QueueName("app", "us-central1", "plain"))).state is QueueState.DISABLED


def test_a_paused_queue_stays_paused_and_keep_is_left_alone(service: TasksService, run: Run) -> None:
    paused = QueueName("app", "us-central1", "paused")
    kept = QueueName("app", "us-central1", "kept")
    run(service.create_queue(HERE, Queue(name=paused)))
    run(service.create_queue(HERE, Queue(name=kept)))
    run(service.pause_queue(paused))
    run(apply_queue_yaml(service, HERE, parse_queue_yaml("queue:\n- name: paused\n"), frozenset({kept})))
    assert run(service.get_queue(paused)).state is QueueState.PAUSED
    assert run(service.get_queue(kept)).state is QueueState.RUNNING


def test_an_entry_the_service_refuses_changes_nothing(service: TasksService, run: Run) -> None:
    pull = QueueName("app", "us-central1", "work")
    run(service.create_queue(HERE, Queue(name=pull, kind=QueueKind.PULL)))
    text = "queue:\n- name: fresh\n- name: work\n  rate: 1/s\n"
    with pytest.raises(InvalidArgument) as raised:
        run(apply_queue_yaml(service, HERE, parse_queue_yaml(text)))
    assert 'queue.yaml line 3: queue "work": The queue type cannot be changed' in raised.value.message
    assert [q.name.queue for q in run(service.list_queues(HERE, 100, "")).items] == ["work"]
    assert run(service.get_queue(pull)).state is QueueState.RUNNING


def test_a_name_deleted_too_recently_changes_nothing(store: Any, run: Run) -> None:
    service = TasksService(store, FakeClock(), ServiceSettings(queue_reuse_delay=timedelta(days=7)))
    gone, other = QueueName("app", "us-central1", "gone"), QueueName("app", "us-central1", "other")
    run(service.create_queue(HERE, Queue(name=gone)))
    run(service.create_queue(HERE, Queue(name=other)))
    run(service.delete_queue(gone))
    with pytest.raises(FailedPrecondition) as raised:
        run(apply_queue_yaml(service, HERE, parse_queue_yaml("queue:\n- name: new\n- name: gone\n")))
    assert raised.value.message.startswith('queue.yaml line 3: queue "gone": The queue cannot be created')
    assert [q.name.queue for q in run(service.list_queues(HERE, 100, "")).items] == ["other"]
    assert run(service.get_queue(other)).state is QueueState.RUNNING
