"""The embedded SQLite store: WAL, synchronous=FULL, one writer with group commit.

An in-memory database has a single connection, so there reads go through the writer too.
"""

from __future__ import annotations

import sqlite3

from tasksd.store.sql import load_queries, migrations
from tasksd.store.sqlstore import SqlStore
from tasksd.store.writer import Db, Dialect, file_lock

QUERIES = load_queries("sqlite")


def _migrate(conn: Db) -> None:
    current = conn.raw("PRAGMA user_version").fetchone()[0]
    for number, script in migrations("sqlite"):
        if number > current:
            for statement in script.split(";\n"):
                if statement.strip():
                    conn.raw(statement)
            conn.raw(f"PRAGMA user_version = {number}")


def sqlite_dialect(path: str, synchronous: str = "FULL") -> Dialect:
    memory = path == ":memory:"
    lock_file = None if memory else f"{path}-lock"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if lock_file is not None:
            # While another process turns a new file to WAL, this answers "database is locked"
            # at once, without the busy timeout: the processes take turns (tasksd serve
            # --processes N on a new file starts them together).
            with file_lock(lock_file):
                conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        return conn

    return Dialect(
        name="sqlite",
        queries=QUERIES,
        connect=connect,
        begin="BEGIN IMMEDIATE",
        migrate=_migrate,
        error=sqlite3.Error,
        unique_violation=sqlite3.IntegrityError,
        shared_readers=not memory,
        lock_file=lock_file,
    )


class SqliteStore(SqlStore):
    """The Store protocol on one SQLite file (or an in-memory database)."""

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        super().__init__(sqlite_dialect(path, synchronous))
