"""The PostgreSQL store (psycopg 3): the same jobs as SQLite, with PostgreSQL's SQL.

Claims and leases select with ``FOR UPDATE SKIP LOCKED``, so several tasksd processes on one
database never take the same task; schema migrations run under an advisory lock, so several
nodes may start at once. Each node writes through ``WRITERS`` connections, each with its own
group commits (store/writer.py): one waits for its commit while another runs statements.
Statements for many rows take one binary array per column (``unnest``), not a statement a row.
"""

from __future__ import annotations

import psycopg

from tasksd.store.sql import load_queries, migrations
from tasksd.store.sqlstore import SqlStore
from tasksd.store.writer import Db, Dialect

QUERIES = load_queries("postgres")
WRITERS = 2
_MIGRATION_LOCK = 7_731_001  # pg_advisory_xact_lock key of tasksd's schema migrations


def _migrate(conn: Db) -> None:
    conn.raw(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    conn.raw("CREATE TABLE IF NOT EXISTS tasksd_schema (version INTEGER NOT NULL)")
    current = conn.raw("SELECT coalesce(max(version), 0) FROM tasksd_schema").fetchone()[0]
    for number, script in migrations("postgres"):
        if number > current:
            conn.raw(script)
            conn.conn.execute("INSERT INTO tasksd_schema (version) VALUES (%s)", (number,))


def _control(conn: psycopg.Connection, text: str) -> None:
    """Statements without parameters in one round trip of the simple query protocol, through
    libpq itself (psycopg's cursor costs as much CPU as the round trip takes)."""
    result = conn.pgconn.exec_(text.encode())
    if result.status not in _DONE:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


_DONE = (psycopg.pq.ExecStatus.COMMAND_OK, psycopg.pq.ExecStatus.TUPLES_OK)


def postgres_dialect(url: str, writers: int = WRITERS) -> Dialect:
    return Dialect(
        name="postgres",
        queries=QUERIES,
        connect=lambda: psycopg.connect(url, autocommit=True),
        begin="BEGIN",
        migrate=_migrate,
        error=psycopg.Error,
        unique_violation=psycopg.errors.UniqueViolation,
        writers=writers,
        concurrent=True,
        retryable=(psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure),
        pipelined=True,
        control=_control,
    )


class PostgresStore(SqlStore):
    """The Store protocol on a PostgreSQL database (``postgresql://user:pass@host:port/db``)."""

    def __init__(self, url: str, writers: int = WRITERS) -> None:
        super().__init__(postgres_dialect(url, writers))
