"""The least a durable API server can do: keep each request body in SQLite before it answers.

The echo servers take ``--durable PATH``: each request's bytes are then written as one row of
a table without indexes, in WAL mode with ``synchronous=FULL`` as tasksd runs, and the reply
waits for the commit. Writes are group-committed by one writer thread, and the requests of one
pass of the event loop reach that thread together (one wake-up for all of them), the cheapest
hand-over measured. No validation, no model, no protobuf, no indexes: a bound on what any
durable server on the same stack could reach, which the benches print beside tasksd.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading

_Pending = tuple[bytes, "asyncio.Future[None]"]


class DurableLog:
    """``await log.append(body)`` returns once ``body`` is committed (fsync) to ``path``."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[list[_Pending]] = queue.SimpleQueue()
        self._gathered: list[_Pending] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        return conn

    def append(self, body: bytes) -> asyncio.Future[None]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            threading.Thread(target=self._write_forever, args=(self._connect(),), daemon=True).start()
        future = self._loop.create_future()
        if self._gathered is None:
            self._gathered = []
            self._loop.call_soon(self._hand_over)
        self._gathered.append((body, future))
        return future

    def _hand_over(self) -> None:
        gathered, self._gathered = self._gathered, None
        if gathered:
            self._jobs.put(gathered)

    def _write_forever(self, conn: sqlite3.Connection) -> None:
        assert self._loop is not None
        while True:
            batch = self._jobs.get()
            while True:
                try:
                    batch += self._jobs.get_nowait()
                except queue.Empty:
                    break
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO log (body) VALUES (?)", [(body,) for body, _ in batch])
            conn.execute("COMMIT")
            self._loop.call_soon_threadsafe(_answer, batch)


def _answer(batch: list[_Pending]) -> None:
    for _, future in batch:
        if not future.done():
            future.set_result(None)
