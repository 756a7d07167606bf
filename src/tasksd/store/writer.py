"""Group commit for the relational stores: writer threads, readers on a small pool.

Every write is a job run by a writer thread. A writer takes every job waiting at that moment
and runs them in one transaction, each inside its own savepoint so that a job that fails (a
duplicate name, a missing queue) is undone alone; then it commits once and answers all of
them. Concurrent callers thus share one commit (one fsync), and no write is answered before
it is durable. A job that can only fail before it writes anything (it checks first, and its
writes fail only if the database does) says so and runs without a savepoint. Jobs of one
group that come one after another (CreateTask calls for one queue) run as one job, so that
one statement can serve them all. Reads use their own connections on a small thread pool.

SQLite has one writer. Where row locks keep transactions apart (PostgreSQL) there may be
several, as there are several nodes on one database: each group-commits what it takes, a
write of a queue row first checks that the row is still the one the transaction read, and a
transaction that lost such a race, or a deadlock, runs again from its start. What differs
between databases is a ``Dialect``; the jobs themselves are in ``store/sqlstore.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue as queue_module
import random
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
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
RERUNS = 8
ROWS_AT_ONCE = 16
"""Rows from which ``Db.affected`` tries a ``<name>_rows`` form. With fewer (the unary calls
that share a commit, ~7 under load), its two savepoint statements and chunks measured no
better than a statement per row."""
ROWS_CHUNK = 64
"""Rows in one statement of a ``<name>_rows`` form at most: 64 of 13 parameters stay below 999,
the fewest parameters any SQLite allows in one statement."""


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
    writers: int = 1
    """Writer threads, each with its connection and its own group commits (more than one only
    where row locks keep concurrent transactions apart)."""
    concurrent: bool = False
    """Whether other transactions write at the same time (other writers, other nodes): then a
    job's write of a queue row locks it first and checks that it is still the row the job read
    (the ``lock_queue`` query); if not, the transaction runs again."""
    retryable: tuple[type[Exception], ...] = ()
    """Errors after which a transaction is run again from its start (deadlocks between writers)."""
    pipelined: bool = False
    """Whether statements for many rows (``Db.run_many``) are sent without waiting for their
    end: the job goes on (its next statement, or its end, waits for them)."""
    control: Callable[[Any, str], None] | None = None
    """Sends statements without parameters or rows, separated by ``;``, in one round trip
    (raising the dialect's error for the first that fails). Where there is one, the writer's
    BEGIN, SAVEPOINT, RELEASE and COMMIT wait and go with the next statement that does; else
    each runs at once."""
    lock_file: str | None = None
    """A file that each writer locks (``flock``) for the whole of each of its transactions,
    where the writers of other processes share the database and only one writes at a time
    (SQLite): a writer then waits its turn in the kernel, woken as the lock is let go, not in
    the database's busy handler, which polls with sleeps of up to 100 ms, so that two
    processes took turns badly (fewer, later commits, and requests waiting over a second)."""


_WRITES_QUEUES = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+queues\b", re.IGNORECASE | re.MULTILINE)
_BY_ID = re.compile(r"\bWHERE id = %s\s*$")


class RunAgain(Exception):
    """The transaction read a row that another one changed before it wrote it: run it again."""


class Db:
    """A connection as jobs see it: named queries of its dialect."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.queries = dialect.queries
        self.unique_violation = dialect.unique_violation
        self.queue_writes = frozenset(n for n, sql in dialect.queries.items() if _WRITES_QUEUES.search(sql))
        self.checked_writes = (
            frozenset(n for n in self.queue_writes if _BY_ID.search(dialect.queries[n]))
            if dialect.concurrent
            else frozenset()
        )
        """Statements that write one queue row by its id (its last parameter), checked first."""
        self.memo: dict[QueueName, Any] | None = None
        """Queue rows read in the writer's current transaction (None on readers)."""
        self._control = dialect.control
        self._waiting: list[str] = []
        self._pipelined = dialect.pipelined
        self._rows_forms: dict[tuple[str, int], str] = {}
        self._pipeline: Any = None
        """psycopg's pipeline of statements sent without waiting (``run_many``), if open."""

    def later(self, statement: str) -> None:
        """Run a statement without parameters or result (BEGIN, SAVEPOINT, COMMIT...) before the
        next one: in the same round trip as the others waiting, where the dialect can."""
        if self._control is None:
            self.conn.execute(statement)
        else:
            self._waiting.append(statement)

    def now(self, statement: str) -> None:
        """Run the statements waiting and then ``statement`` (without parameters or result)."""
        self.later(statement)
        self._send()

    def settle(self) -> None:
        """Wait for the statements sent without waiting; raise the error of one that failed."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.__exit__(None, None, None)

    def abandon(self) -> None:
        """Stop waiting for the statements sent without waiting, whatever they did (the job
        that sent them is being undone)."""
        with contextlib.suppress(Exception):
            self.settle()

    def discard(self) -> None:
        """Forget the statements waiting, and those sent without waiting (the transaction is
        being rolled back)."""
        self._waiting.clear()
        self.abandon()

    def _send(self) -> None:
        self.settle()
        if self._waiting:
            assert self._control is not None
            text = "; ".join(self._waiting)
            self._waiting.clear()
            self._control(self.conn, text)

    def run(self, name: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        self._send()
        if name in self.queue_writes and self.memo:
            if name in self.checked_writes:
                self._check_unchanged(params[-1])
            self.memo.clear()
        return self.conn.execute(self.queries[name], params)

    def _check_unchanged(self, queue_id: int) -> None:
        """Lock the queue row about to be written; raise RunAgain if it is no longer the one
        this transaction read (another writer or node changed it meanwhile)."""
        assert self.memo is not None
        read = [row for row in self.memo.values() if row is not None and row[0] == queue_id]
        if read:
            current = self.conn.execute(self.queries["lock_queue"], (queue_id,)).fetchone()
            if current is None or any((row[1], row[2]) != tuple(current) for row in read):
                raise RunAgain()

    def run_many(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for many rows, as if run for each in turn: the dialect's
        ``<name>_many`` form where it has one (it takes one array per parameter of ``name``),
        else ``name`` for every row. Where the dialect is ``pipelined`` it is sent, and the
        caller goes on while the database runs it: with the run_many statements after it, in
        one round trip, until any other statement or the job's end (``settle``)."""
        if not rows:
            return
        if self._pipeline is None:
            self._send()
            if self._pipelined:
                self._pipeline = self.conn.pipeline()
                self._pipeline.__enter__()
        many = self.queries.get(f"{name}_many")
        if many is not None and len(rows) > 1:
            self.conn.execute(many, _columns(rows))
        elif len(rows) >= ROWS_AT_ONCE and f"{name}_rows" in self.queries:
            for _ in self._chunks(name, rows):
                pass
        else:
            self.conn.cursor().executemany(self.queries[name], rows)

    def affected(self, name: str, rows: list[tuple[Any, ...]]) -> list[bool]:
        """Run ``name`` for each row in turn: whether it changed a row. Where the dialect has a
        ``<name>_many`` form (one array per parameter), that one statement answers the
        positions, from 1, of the rows that changed one; of equal rows the first counts. Where
        it has a ``<name>_rows`` form instead (``{rows}`` in it stands for the rows' values),
        several rows go in each statement, which answers only how many changed one: when
        that is not all of them, what they did is undone and each row runs alone."""
        many = self.queries.get(f"{name}_many")
        if many is None:
            self._send()
            if len(rows) >= ROWS_AT_ONCE and f"{name}_rows" in self.queries and self._all_change(name, rows):
                return [True] * len(rows)
            statement = self.queries[name]
            return [self.conn.execute(statement, row).rowcount > 0 for row in rows]
        if not rows:
            return []
        self._send()
        positions = self.conn.execute(many, _columns(rows))
        first: dict[tuple[Any, ...], int] = {}
        for index, row in enumerate(rows):
            first.setdefault(row, index)
        changed = {first[rows[position - 1]] for (position,) in positions}
        return [index in changed for index in range(len(rows))]

    def _all_change(self, name: str, rows: list[tuple[Any, ...]]) -> bool:
        """Run ``name`` for all the rows through its ``_rows`` form: whether every row changed
        one. If not, nothing they did is kept."""
        self.conn.execute("SAVEPOINT rows")
        changed = all(count == size for size, count in self._chunks(name, rows))
        if not changed:
            self.conn.execute("ROLLBACK TO SAVEPOINT rows")
        self.conn.execute("RELEASE SAVEPOINT rows")
        return changed

    def _chunks(self, name: str, rows: list[tuple[Any, ...]]) -> Iterator[tuple[int, int]]:
        """Run ``name``'s ``_rows`` form over the rows in turn, in chunks of a power of two rows
        up to ROWS_CHUNK (so that few statements are prepared, each with fewer parameters than
        any SQLite allows): each chunk's size and how many rows it changed."""
        done = 0
        while done < len(rows):
            size = min(ROWS_CHUNK, 1 << ((len(rows) - done).bit_length() - 1))
            values = [value for row in rows[done : done + size] for value in row]
            yield size, self.conn.execute(self._rows_form(name, size, len(rows[0])), values).rowcount
            done += size

    def _rows_form(self, name: str, size: int, width: int) -> str:
        key = (name, size)
        statement = self._rows_forms.get(key)
        if statement is None:
            one = "(" + ", ".join(["?"] * width) + ")"
            statement = self.queries[f"{name}_rows"].format(rows=", ".join([one] * size))
            self._rows_forms[key] = statement
        return statement

    def raw(self, statement: str) -> Any:
        self._send()
        return self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """The parameters of a ``<name>_many`` statement: one array per parameter of ``name``."""
    return [list(column) for column in zip(*rows, strict=True)]


Job = Callable[[Db], T]
Many = Callable[[Db, list[Any]], list[Any]]
"""A job for the items of several callers at once: one outcome per item, in order (its value,
or the TasksError that item alone failed with)."""


@dataclass(slots=True)
class _Pending:
    """A submitted job; ``savepoint`` whether it runs on its own (undone alone if it fails).
    A job of a ``group`` is run once for every item of the group waiting in its transaction."""

    job: Job[Any] | None
    future: asyncio.Future[Any]
    savepoint: bool
    group: Hashable = None
    many: Many | None = None
    item: Any = None


class _FileLock:
    """An exclusive ``flock`` on a file, taken and let go as a context (``Dialect.lock_file``).
    ``flock`` blocks without the GIL, and the kernel lets the lock go if the process dies."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """A _FileLock on ``path`` held for the block, its file closed after."""
    lock = _FileLock(path)
    try:
        with lock:
            yield
    finally:
        lock.close()


class _Writer(threading.Thread):
    """A thread that owns one write connection and group-commits the jobs it takes from the
    shared queue (see the module docstring)."""

    def __init__(
        self,
        jobs: queue_module.SimpleQueue[_Pending | None],
        connect: Callable[[], Db],
        dialect: Dialect,
        loop: asyncio.AbstractEventLoop,
        index: int,
    ):
        super().__init__(name=f"tasksd-{dialect.name}-writer-{index}", daemon=True)
        self._dialect = dialect
        self._connect = connect
        self._loop = loop
        self._jobs = jobs
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = self._connect()
            path = self._dialect.lock_file
            lock: _FileLock | contextlib.nullcontext[None] = (
                _FileLock(path) if path else contextlib.nullcontext()
            )
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
            with lock:  # the jobs that come while it waits for the lock join the batch
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
        if isinstance(lock, _FileLock):
            lock.close()

    @staticmethod
    def _run_batch(conn: Db, batch: list[_Pending], dialect: Dialect) -> list[tuple[bool, Any]]:
        reruns = 0
        again: tuple[type[Exception], ...] = (RunAgain, _JobFailed, *dialect.retryable)
        while True:
            try:
                return _Writer._transaction(conn, batch, dialect)
            except again as exc:  # nothing was committed
                conn.discard()
                with contextlib.suppress(dialect.error):
                    conn.now("ROLLBACK")
                if isinstance(exc, _JobFailed):
                    # A job that should fail only with the database did (a row another writer
                    # or node added meanwhile): run it again, on its own savepoint this time.
                    batch[exc.index].savepoint = True
                    exc = exc.error
                reruns += 1
                if reruns > RERUNS:
                    return _failed(batch, dialect, exc)
                log.info("%s transaction of %d jobs runs again after: %r", dialect.name, len(batch), exc)
                # Apart by a random while, two transactions that deadlocked do not meet again.
                time.sleep(random.uniform(0, 0.001 * reruns))
            except Exception as exc:  # the database failed
                conn.discard()
                with contextlib.suppress(dialect.error):
                    conn.now("ROLLBACK")
                return _failed(batch, dialect, exc)

    @staticmethod
    def _transaction(conn: Db, batch: list[_Pending], dialect: Dialect) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any] | None] = [None] * len(batch)
        again: tuple[type[Exception], ...] = (RunAgain, *dialect.retryable)
        # A group's items that came one after another run as one job: the jobs still see the
        # changes of those before them, in the order they came.
        runs: dict[int, list[int]] = {}
        for index, pending in enumerate(batch):
            if pending.many is None:
                continue
            previous = batch[index - 1] if index else None
            if previous is not None and previous.many is not None and previous.group == pending.group:
                runs[next(reversed(runs))].append(index)
            else:
                runs[index] = [index]
        conn.memo = {}
        conn.later(dialect.begin)
        for index, pending in enumerate(batch):
            if results[index] is not None:
                continue  # answered with its group
            members = runs.get(index, [index])
            if pending.savepoint:
                conn.later("SAVEPOINT job")
            try:
                outcomes = _run_job(conn, batch, members)
                conn.settle()  # a statement sent without waiting that failed fails this job
                if pending.savepoint:
                    conn.later("RELEASE SAVEPOINT job")
            except TasksError as exc:
                conn.abandon()
                if pending.savepoint:
                    conn.later("ROLLBACK TO SAVEPOINT job")
                    conn.later("RELEASE SAVEPOINT job")
                    conn.memo.clear()
                outcomes = [(False, exc)] * len(members)  # raised before writing, or undone
            except again:
                raise
            except Exception as exc:
                conn.abandon()
                if not pending.savepoint:
                    if isinstance(exc, dialect.error):
                        raise _JobFailed(index, exc) from exc
                    raise
                conn.later("ROLLBACK TO SAVEPOINT job")
                conn.later("RELEASE SAVEPOINT job")
                conn.memo.clear()
                outcomes = [(False, exc)] * len(members)
            for member, outcome in zip(members, outcomes, strict=True):
                results[member] = outcome
        conn.now("COMMIT")
        return [result for result in results if result is not None]


def _run_job(conn: Db, batch: list[_Pending], members: list[int]) -> list[tuple[bool, Any]]:
    """The outcomes of one job: a single one, or one per member of a group."""
    first = batch[members[0]]
    if first.many is None:
        assert first.job is not None
        return [(True, first.job(conn))]
    values = first.many(conn, [batch[member].item for member in members])
    return [(not isinstance(value, TasksError), value) for value in values]


class _JobFailed(Exception):
    """A job without a savepoint failed with the database (see Writer._run_batch)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def _failed(batch: list[_Pending], dialect: Dialect, exc: Exception) -> list[tuple[bool, Any]]:
    log.error("%s transaction failed", dialect.name, exc_info=exc)
    reason = f": {exc}" if isinstance(exc, dialect.error) else ""
    failure = Internal(f"The store could not commit the change{reason}.")
    return [(False, failure)] * len(batch)


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
        self._jobs: queue_module.SimpleQueue[_Pending | None] = queue_module.SimpleQueue()
        self._writers: list[_Writer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[Db] = []

    def _connect(self) -> Db:
        return Db(self._dialect.connect(), self._dialect)

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._writers = [
            _Writer(self._jobs, self._connect, self._dialect, self._loop, index)
            for index in range(self._dialect.writers)
        ]
        for writer in self._writers:
            writer.start()
        for writer in self._writers:
            await asyncio.to_thread(writer.ready.wait)
        failed = next((w.error for w in self._writers if w.error is not None), None)
        if failed is not None:
            await self.close()
            raise failed
        await self._write(self._dialect.migrate)
        if self._dialect.shared_readers:
            prefix = f"tasksd-{self._dialect.name}-read"
            self._readers = ThreadPoolExecutor(READERS, thread_name_prefix=prefix)

    async def close(self) -> None:
        for writer in self._writers:
            if writer.error is None:
                self._jobs.put(None)  # one each: a writer stops at the first it takes
        for writer in self._writers:
            await asyncio.to_thread(writer.join)
        self._writers = []
        self._loop = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        for conn in self._reader_conns:
            conn.close()
        self._reader_conns.clear()

    async def _write(self, job: Job[T], *, checks_first: bool = False) -> T:
        """Run ``job`` in a writer. ``checks_first``: the job raises only before its first
        write, and its writes fail only with the database, so it needs no savepoint."""
        assert self._loop is not None, "store is not open"
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put(_Pending(job, future, not checks_first))
        return await future

    async def _write_grouped(self, group: Hashable, item: Any, many: Many) -> Any:
        """Run ``many`` in a writer for ``item`` and for the items of the other calls with the
        same ``group`` that came right before or after it in its transaction (callers at the
        same time): one statement can then serve them all. ``many`` answers each item's outcome (raised when
        it is a TasksError); like a ``checks_first`` job, it raises only before its first
        write (every item fails alike) and its writes fail only with the database."""
        assert self._loop is not None, "store is not open"
        future: asyncio.Future[Any] = self._loop.create_future()
        self._jobs.put(_Pending(None, future, False, group, many, item))
        return await future

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
