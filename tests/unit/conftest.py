"""Unit fixtures: stores to run the contract suite against, a fake clock, a service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tasksd.clock import FakeClock
from tasksd.service import ServiceSettings, TasksService
from tasksd.store.postgres import PostgresStore
from tasksd.store.sqlite import SqliteStore
from tasksd.store.sqlstore import SqlStore
from tests.postgres import PostgresServer

T = TypeVar("T")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[T]], T]:
    def run(awaitable: Awaitable[T]) -> T:
        return loop.run_until_complete(awaitable)

    return run


@pytest.fixture
def store(
    store_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    run: Callable[[Awaitable[object]], object],
) -> Iterator[SqlStore]:
    """Every backend in turn: the contract suite is one suite, run against each."""
    store: SqlStore
    if store_kind == "postgres":
        store = PostgresStore(request.getfixturevalue("postgres_server").new_database())
    else:
        store = SqliteStore(str(tmp_path / "store.db") if store_kind == "sqlite-file" else ":memory:")
    run(store.open())
    yield store
    run(store.close())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: SqlStore, clock: FakeClock) -> TasksService:
    return TasksService(store, clock, ServiceSettings())
