"""The Store contract suite (tests/unit/test_store_contract.py) on PostgreSQL: the same test
functions, with a fresh database of the session's server for each."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksd.store.base import Store
from tests.postgres import PostgresServer
from tests.stores import loop, new_store, run
from tests.unit import test_store_contract as contract

__all__ = ["loop", "run"]

# Every test of the suite that takes the ``store`` fixture (not those of one backend alone).
globals().update(
    {
        name: test
        for name, test in vars(contract).items()
        if name.startswith("test_") and "store" in inspect.signature(test).parameters
    }
)


@pytest.fixture
def store(
    postgres_server: PostgresServer, tmp_path: Path, run: Callable[[Awaitable[Any]], Any]
) -> Iterator[Store]:
    store = new_store("postgres", tmp_path, postgres_server.new_database())
    run(store.open())
    yield store
    run(store.close())
