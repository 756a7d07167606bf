"""The stores the contract suite runs against, opened by name (tests/unit/test_store_contract.py
runs the ones without a server; tests/integration/test_store_contract_postgres.py PostgreSQL),
and the fixtures both use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tasksd.store.base import Store
from tasksd.store.memory import MemoryStore
from tasksd.store.postgres import PostgresStore
from tasksd.store.sqlite import SqliteStore

T = TypeVar("T")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[T]], T]:
    """Runs a coroutine to its end on the test's own event loop."""

    def run(awaitable: Awaitable[T]) -> T:
        return loop.run_until_complete(awaitable)

    return run


def new_store(kind: str, tmp_path: Path, postgres_url: str | None = None) -> Store:
    """A store of ``kind`` (memory, sqlite-file, sqlite-memory, postgres), not yet open."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite-file":
        return SqliteStore(str(tmp_path / "store.db"))
    if kind == "sqlite-memory":
        return SqliteStore(":memory:")
    assert kind == "postgres" and postgres_url is not None
    return PostgresStore(postgres_url)
