"""Group commit for the relational stores: one writer thread, readers on a small pool.

Every write is a job run by a single writer thread. The writer takes every job waiting at
that moment and runs them in one transaction, each inside its own savepoint so that a job
that fails (a duplicate name, a missing queue) is undone alone; then it commits once and
answers all of them. Concurrent writers thus share one commit (one fsync), and no write is
answered before it is durable. A job that can only fail before it writes anything (it
checks first, and its writes fail only if the database does) says so and runs without a
savepoint. Reads use their own connections on a small thread pool. What differs between
databases is a ``Dialect``; the jobs themselves are in ``store/sqlstore.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue as queue_module
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tasksd.model.errors import Internal, TasksError
from tasksd.model.names import QueueName
from tasksd.observe.metrics import METRICS

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 1024
READERS = 4


@dataclass(frozen=True)
class Dialect:
    """What differs between relational backends."""

    name: str
    queries: dict[str, str]
    connect: Callable[[], Any]
    """A new DB-API connection in autocommit mode (transactions are begun explicitly)."""
    begin: str
    migrate: Callable[[Db], None]
    error: type[Exception]
    unique_violation: type[Exception]
    shared_readers: bool = True
    """Whether other connections see the writer's commits (not so for SQLite :memory:)."""


_WRITES_QUEUES = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+queues\b", re.IGNORECASE | re.MULTILINE)


class Db:
    """A connection as jobs see it: named queries of its dialect."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.queries = dialect.queries
        self.unique_violation = dialect.unique_violation
        self.queue_writes = frozenset(n for n, sql in dialect.queries.items() if _WRITES_QUEUES.search(sql))
        self.memo: dict[QueueName, Any] | None = None
        """Queue rows read in the writer's current transaction (None on readers)."""

    def run(self, name: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        if name in self.queue_writes and self.memo:
            self.memo.clear()
        return self.conn.execute(self.queries[name], params)

    def run_many(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for many rows (PostgreSQL pipelines them: one round trip)."""
        if rows:
            self.conn.cursor().executemany(self.queries[name], rows)

    def raw(self, statement: str) -> Any:
        return self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()


Job = Callable[[Db], T]


@dataclass(slots=True)
class _Pending:
    job: Job[Any]
    future: asyncio.Future[Any]
    savepoint: bool


class _Writer(threading.Thread):
    """The single thread that owns the write connection (see the module docstring)."""

    def __init__(self, connect: Callable[[], Db], dialect: Dialect, loop: asyncio.AbstractEventLoop):
        super().__init__(name=f"tasksd-{dialect.name}-writer", daemon=True)
        self._dialect = dialect
        self._connect = connect
        self._loop = loop
        self._jobs: queue_module.SimpleQueue[_Pending | None] = queue_module.SimpleQueue()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def submit(self, job: Job[T], savepoint: bool = True) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put(_Pending(job, future, savepoint))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to open() through self.error
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._jobs.get_nowait()
                except queue_module.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            started = time.perf_counter()
            results = self._run_batch(conn, batch, self._dialect)
            METRICS.store_commit(time.perf_counter() - started, len(batch))
            self._loop.call_soon_threadsafe(_deliver, batch, results)
        conn.close()

    @staticmethod
    def _run_batch(conn: Db, batch: list[_Pending], dialect: Dialect) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        conn.memo = {}
        try:
            conn.raw(dialect.begin)
            for pending in batch:
                if not pending.savepoint:
                    try:
                        results.append((True, pending.job(conn)))
                    except TasksError as exc:  # raised before the job wrote anything
                        results.append((False, exc))
                    continue
                conn.raw("SAVEPOINT job")
                try:
                    results.append((True, pending.job(conn)))
                    conn.raw("RELEASE SAVEPOINT job")
                except Exception as exc:
                    conn.raw("ROLLBACK TO SAVEPOINT job")
                    conn.raw("RELEASE SAVEPOINT job")
                    conn.memo.clear()
                    results.append((False, exc))
            conn.raw("COMMIT")
        except Exception as exc:  # the database failed, or a job without a savepoint did
            log.exception("%s transaction failed", dialect.name)
            with contextlib.suppress(dialect.error):
                conn.raw("ROLLBACK")
            reason = f": {exc}" if isinstance(exc, dialect.error) else ""
            failure = Internal(f"The store could not commit the change{reason}.")
            results = [(False, failure)] * len(batch)
        return results


def _deliver(batch: list[_Pending], results: list[tuple[bool, Any]]) -> None:
    for pending, (ok, value) in zip(batch, results, strict=True):
        if pending.future.done():
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)


class GroupCommitDb:
    """A database as the jobs see it: one writer thread that group-commits every write job, and
    a few reader threads with a connection each (the writer alone where readers would not see
    its commits)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._writer: _Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[Db] = []

    def _connect(self) -> Db:
        return Db(self._dialect.connect(), self._dialect)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = _Writer(self._connect, self._dialect, loop)
        self._writer.start()
        await asyncio.to_thread(self._writer.ready.wait)
        if self._writer.error is not None:
            raise self._writer.error
        await self._write(self._dialect.migrate)
        if self._dialect.shared_readers:
            prefix = f"tasksd-{self._dialect.name}-read"
            self._readers = ThreadPoolExecutor(READERS, thread_name_prefix=prefix)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        for conn in self._reader_conns:
            conn.close()
        self._reader_conns.clear()

    async def _write(self, job: Job[T], *, checks_first: bool = False) -> T:
        """Run ``job`` in the writer. ``checks_first``: the job raises only before its first
        write, and its writes fail only with the database, so it needs no savepoint."""
        assert self._writer is not None, "store is not open"
        return await self._writer.submit(job, savepoint=not checks_first)

    async def _read(self, job: Job[T]) -> T:
        if self._readers is None:
            return await self._write(job)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, job)

    def _run_read(self, job: Job[T]) -> T:
        conn: Db | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._reader_conns.append(conn)
        return job(conn)
