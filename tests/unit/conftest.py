"""Unit fixtures: stores to run the contract suite against, a fake clock, a service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tasksd.clock import FakeClock
from tasksd.service import ServiceSettings, TasksService
from tasksd.store.sqlite import SqliteStore

T = TypeVar("T")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(params=["file", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "store.db") if request.param == "file" else ":memory:"


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[T]], T]:
    def run(awaitable: Awaitable[T]) -> T:
        return loop.run_until_complete(awaitable)

    return run


@pytest.fixture
def store(store_url: str, run: Callable[[Awaitable[object]], object]) -> Iterator[SqliteStore]:
    store = SqliteStore(store_url)
    run(store.open())
    yield store
    run(store.close())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> TasksService:
    return TasksService(store, clock, ServiceSettings())
