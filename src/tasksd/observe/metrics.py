"""Prometheus metrics (prometheus-client), one set per process.

Each node counts what it did itself: API requests, dispatch attempts, leases and
acknowledgements, store commits. The queue gauges (tasks queued, oldest task age) are read
from the store at each scrape, for the queues the node owns, and for the queues no node owns
(pull, paused and disabled queues) on every node alike, since they all read the same store.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()

OUTCOMES = ("2xx", "4xx", "5xx", "timeout", "connection_error")
"""How an attempt ended: its HTTP status class (a 1xx or 3xx that ends an attempt counts as
4xx: an answer that is neither success nor a server error), no answer in time, or none at all."""

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The metrics of one tasksd process, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self.queue_tasks = Gauge(
            "tasksd_queue_tasks",
            "Tasks in the queue (from the queue's owner; every node for queues without one).",
            ["queue"],
            registry=registry,
        )
        self.queue_oldest_age = Gauge(
            "tasksd_queue_oldest_task_age_seconds",
            "How long the queue's oldest task has been due (0 when none is).",
            ["queue"],
            registry=registry,
        )
        self.attempts = Counter(
            "tasksd_attempts", "Dispatch attempts by how they ended.", ["queue", "outcome"], registry=registry
        )
        self.attempt_duration = Histogram(
            "tasksd_attempt_duration_seconds",
            "From sending an attempt to its answer (or to giving up on one).",
            ["queue"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "tasksd_retries",
            "Failed attempts that were scheduled to be tried again.",
            ["queue"],
            registry=registry,
        )
        self.lease_calls = Counter(
            "tasksd_lease_calls", "LeaseTasks calls answered.", ["queue"], registry=registry
        )
        self.leased = Counter(
            "tasksd_leased_tasks", "Tasks leased to pull workers.", ["queue"], registry=registry
        )
        self.acknowledged = Counter(
            "tasksd_acknowledged_tasks", "Pull tasks acknowledged.", ["queue"], registry=registry
        )
        self.api_requests = Counter(
            "tasksd_api_requests",
            "API requests by RPC, transport and status code.",
            ["method", "transport", "code"],
            registry=registry,
        )
        self.api_duration = Histogram(
            "tasksd_api_request_duration_seconds",
            "API request latency, from the request read to the reply.",
            ["method", "transport"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit = Histogram(
            "tasksd_store_commit_seconds",
            "One store transaction of the writer: its jobs and its commit.",
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_group = Histogram(
            "tasksd_store_commit_group_size",
            "Writes gathered into one store transaction (group commit).",
            buckets=_GROUP_BUCKETS,
            registry=registry,
        )
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        # Labelled children by their labels: looking one up costs more than counting.
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}
        self._attempts: dict[tuple[str, str], Any] = {}
        self._attempt_durations: dict[str, Any] = {}

    def api_request(self, method: str, transport: str, code: str, seconds: float) -> None:
        key = (method, transport, code)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.api_requests.labels(*key)
        counter.inc()
        histogram = self._durations.get(key[:2])
        if histogram is None:
            histogram = self._durations[key[:2]] = self.api_duration.labels(method, transport)
        histogram.observe(seconds)

    def attempt(self, queue: str, outcome: str, seconds: float, retried: bool) -> None:
        key = (queue, outcome)
        counter = self._attempts.get(key)
        if counter is None:
            counter = self._attempts[key] = self.attempts.labels(*key)
        counter.inc()
        histogram = self._attempt_durations.get(queue)
        if histogram is None:
            histogram = self._attempt_durations[queue] = self.attempt_duration.labels(queue)
        histogram.observe(seconds)
        if retried:
            self.retries.labels(queue).inc()

    def lease(self, queue: str, tasks: int) -> None:
        self.lease_calls.labels(queue).inc()
        if tasks:
            self.leased.labels(queue).inc(tasks)

    def acknowledge(self, queues: Iterable[str]) -> None:
        """One acknowledged task for each of ``queues`` (a queue's name once per task)."""
        for queue, count in collections.Counter(queues).items():
            self.acknowledged.labels(queue).inc(count)

    def store_commit(self, seconds: float, jobs: int) -> None:
        self.commit.observe(seconds)
        self.commit_group.observe(jobs)

    def set_queues(self, backlog: dict[str, tuple[int, float]]) -> None:
        """The queue gauges as of now: queue → (tasks, oldest due task's age in seconds);
        queues no longer reported (deleted, or owned by another node now) are dropped."""
        with self._lock:
            for gone in self._reported - backlog.keys():
                self.queue_tasks.remove(gone)
                self.queue_oldest_age.remove(gone)
            for queue, (tasks, age) in backlog.items():
                self.queue_tasks.labels(queue).set(tasks)
                self.queue_oldest_age.labels(queue).set(age)
            self._reported = set(backlog)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        rendered: bytes = generate_latest(self.registry)
        return rendered


METRICS = Metrics()
