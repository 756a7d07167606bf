"""The ListQueues filter grammar over v2beta2 Queue messages."""

from __future__ import annotations

import pytest

from tasksd.api.filters import parse_filter
from tasksd.api.v2beta2.mapping import QueuePb
from tasksd.model.errors import InvalidArgument


def queue(kind: str, state: int = 1, rate: float = 500.0) -> QueuePb:
    message = QueuePb(name=f"projects/p/locations/l/queues/{kind}", state=state)
    getattr(message, kind).SetInParent()
    message.rate_limits.max_tasks_dispatched_per_second = rate
    return message


QUEUES = [queue("pull_target"), queue("app_engine_http_target", 2, 5.0), queue("http_target", 1, 50.0)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pull_target: *", ["pull_target"]),
        ("pullTarget:*", ["pull_target"]),
        ("app_engine_http_target: *", ["app_engine_http_target"]),
        ("http_target: *", ["http_target"]),
        ("state = PAUSED", ["app_engine_http_target"]),
        ("state != PAUSED", ["pull_target", "http_target"]),
        ("state = 2", ["app_engine_http_target"]),
        ("rate_limits.max_tasks_dispatched_per_second < 100", ["app_engine_http_target", "http_target"]),
        (
            "rate_limits.max_tasks_dispatched_per_second >= 50 AND state = RUNNING",
            ["pull_target", "http_target"],
        ),
        ("pull_target: * OR http_target: *", ["pull_target", "http_target"]),
        ("NOT pull_target: *", ["app_engine_http_target", "http_target"]),
        ("-(state = PAUSED)", ["pull_target", "http_target"]),
        ('name = "projects/p/locations/l/queues/http_target"', ["http_target"]),
        ("", ["pull_target", "app_engine_http_target", "http_target"]),
    ],
)
def test_filter_selects(text: str, expected: list[str]) -> None:
    predicate = parse_filter(text, QueuePb)
    assert [q.name.rsplit("/", 1)[1] for q in QUEUES if predicate(q)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "state = = PAUSED",
        "colour = red",
        "state = SLEEPY",
        "(state = PAUSED",
        "pull_target = 1",
        "state",
        "rate_limits.max_tasks_dispatched_per_second > fast",
        "name.inner = x",
    ],
)
def test_bad_filters_are_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument, match="filter"):
        parse_filter(text, QueuePb)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000,
        "NOT " * 5000 + "state = PAUSED",
        "- " * 5000 + "state = PAUSED",
        "(" * 101 + "state = PAUSED" + ")" * 101,
        "NOT (" * 51 + "state = PAUSED" + ")" * 51,
    ],
)
def test_filters_nested_too_deep_are_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"nest more than 100 deep") as raised:
        parse_filter(text, QueuePb)
    assert len(raised.value.message) < 300  # the filter is quoted, cut short


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("(" * 100 + "state = PAUSED" + ")" * 100, ["app_engine_http_target"]),
        ("NOT " * 99 + "state = PAUSED", ["pull_target", "http_target"]),
        ("NOT (" * 50 + "state = PAUSED" + ")" * 50, ["app_engine_http_target"]),
        (" OR ".join(["(state = PAUSED)"] * 5000), ["app_engine_http_target"]),
    ],
)
def test_filters_nested_100_deep_or_long_but_flat_work(text: str, selected: list[str]) -> None:
    predicate = parse_filter(text, QueuePb)
    assert [q.name.rsplit("/", 1)[1] for q in QUEUES if predicate(q)] == selected
