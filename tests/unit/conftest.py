"""Unit fixtures: an event loop, a fake clock, and a service on the reference memory store
(the contract suite, test_store_contract.py, runs every backend without a server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest

from tasksd.clock import FakeClock
from tasksd.service import ServiceSettings, TasksService
from tasksd.store.base import Store
from tasksd.store.memory import MemoryStore
from tests.stores import loop, run

__all__ = ["loop", "run"]  # fixtures shared with the PostgreSQL contract run


@pytest.fixture
def store(run: Callable[[Awaitable[object]], object]) -> Iterator[Store]:
    """The memory store: the service and engine are tested on the reference backend."""
    store = MemoryStore()
    run(store.open())
    yield store
    run(store.close())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: Store, clock: FakeClock) -> TasksService:
    return TasksService(store, clock, ServiceSettings())
