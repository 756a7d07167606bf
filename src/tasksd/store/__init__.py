"""Persistence: the Store protocol and its backends. SQL lives in this package only.

``open_store`` opens the backend a ``--db`` URL names:

- ``sqlite:///PATH`` — an SQLite file (the default, ``sqlite:///./tasksd.db``);
- ``sqlite:///:memory:`` — an SQLite database in memory, gone when the server stops;
- ``postgresql://user:pass@host:port/db`` — PostgreSQL, which several nodes can share;
- ``memory://`` — the reference store in plain Python (``store/memory.py``), for tests and
  trials: nothing outlives the process, and no other node can share it.
"""

from tasksd.store.base import Store


async def open_store(url: str) -> Store:
    """Open the store ``url`` names (see the module docstring).

    Raises: UnsupportedDatabase for any other URL.
    """
    store: Store
    if url.startswith(("postgresql://", "postgres://")):
        from tasksd.store.postgres import PostgresStore

        store = PostgresStore(url)
    elif url.startswith("sqlite://"):
        from tasksd.store.sqlite import SqliteStore

        store = SqliteStore(url.removeprefix("sqlite://").removeprefix("/") or ":memory:")
    elif url == "memory://":
        from tasksd.store.memory import MemoryStore

        store = MemoryStore()
    else:
        raise UnsupportedDatabase(
            f"Unsupported --db URL {url!r}: use sqlite:///PATH, sqlite:///:memory:, postgresql://… "
            "or memory://"
        )
    await store.open()
    return store


class UnsupportedDatabase(ValueError):
    """A --db URL that names no store backend."""


__all__ = ["Store", "UnsupportedDatabase", "open_store"]
