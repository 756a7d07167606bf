"""A queue of a million tasks, on SQLite and on PostgreSQL: the store's operations on it, and
a running tasksd's CreateTask and LeaseTasks latency on it against small queues, with the
server's memory.

    python bench/million.py [--tasks 1000000] [--stores sqlite,postgres] [--calls 300]

Bulk-loads the tasks into the database (one INSERT … SELECT over a generated series, not
through the API: this measures the queries, not the load), then:

1. times lease, acknowledge and get through the store in this process (20 calls each);
2. starts ``tasksd serve`` on the database and times, over one keep-alive connection and
   interleaved so that the machine's noise falls on both alike, REST CreateTask into the
   million-task queue against an empty queue, and LeaseTasks (100 tasks) on it against a
   queue of 5,000 tasks (goal: at most 1.5x); then prints the server's resident memory
   (goal: at most 250 MB) and its peak.

PostgreSQL is skipped when its binaries are missing (a throwaway server is started).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from support import start_tasksd, stop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postgres import PostgresServer

from tasksd.model.leases import LeaseRequest
from tasksd.model.names import QueueName
from tasksd.model.queue import Queue, QueueKind
from tasksd.model.task import PullMessage, Task
from tasksd.service.queues import complete_queue
from tasksd.store import codec, open_store

LOCATION = ("bench", "us-central1")
MILLION = QueueName(*LOCATION, "million")
SMALL = QueueName(*LOCATION, "small")
EMPTY = QueueName(*LOCATION, "empty")
SMALL_TASKS = 5_000

_COLUMNS = "tasks (queue, task_id, kind, schedule_us, create_us, expire_us, tag, payload)"
_SQLITE_LOAD = (
    "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < ?) "
    f"INSERT INTO {_COLUMNS} SELECT ?, 't' || g, 0, ? - g, ?, ? + 86400000000, 'tag' || (g % 100), ? FROM s"
)
_POSTGRES_LOAD = (
    f"INSERT INTO {_COLUMNS} SELECT %s, 't' || g, 0, %s - g, %s, %s + 86400000000, 'tag' || (g %% 100), %s "
    "FROM generate_series(1, %s) AS g"
)


def load(url: str, count: int, small: int = SMALL_TASKS) -> None:
    """Create the pull queues million (``count`` due tasks, tags tag0…tag99), small
    (``small`` tasks) and empty in the store ``url``."""

    async def create_queues() -> None:
        store = await open_store(url)
        now = datetime.now(UTC)
        for name in (MILLION, SMALL, EMPTY):
            queue = complete_queue(Queue(name=name, kind=QueueKind.PULL), None)
            await store.put_queue(name, queue, now, await store.find_queue(name, now))
        await store.close()

    asyncio.run(create_queues())
    blob = codec.encode_task_columns(Task(name=MILLION.task("x"), payload=PullMessage(b"x" * 100, "")))[1]
    now_us = codec.to_us(datetime.now(UTC))
    started = time.perf_counter()
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            ids = dict(conn.execute("SELECT queue_id, id FROM queues").fetchall())
            for queue, tasks in ((MILLION, count), (SMALL, small)):
                conn.execute(_SQLITE_LOAD, (tasks, ids[queue.queue], now_us, now_us, now_us, blob))
            conn.execute("ANALYZE")
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            ids = dict(conn.execute("SELECT queue_id, id FROM queues").fetchall())
            for queue, tasks in ((MILLION, count), (SMALL, small)):
                conn.execute(_POSTGRES_LOAD, (ids[queue.queue], now_us, now_us, now_us, blob, tasks))
            conn.execute("ANALYZE tasks")
    print(f"  loaded {count:,} + {small:,} tasks in {time.perf_counter() - started:.1f} s")


async def store_timings(url: str, count: int) -> None:
    store = await open_store(url)
    timings: dict[str, list[float]] = {
        "lease 100": [],
        "lease 100 tag=tag7": [],
        "acknowledge": [],
        "get": [],
    }
    for round_number in range(20):
        at = datetime.now(UTC)
        for label, tag in (("lease 100", None), ("lease 100 tag=tag7", "tag7")):
            begin = time.perf_counter()
            leased = await store.lease_tasks(
                MILLION, LeaseRequest(at + timedelta(minutes=5), 100, 32 * 1024 * 1024, tag), at
            )
            timings[label].append((time.perf_counter() - begin) * 1000)
            if tag is None:
                untagged = leased
        task = untagged[round_number]
        assert task.name is not None and task.schedule_time is not None
        begin = time.perf_counter()
        [refused] = await store.acknowledge_tasks([(task.name, task.schedule_time)], at)
        assert refused is None, refused
        timings["acknowledge"].append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        await store.get_task(MILLION.task(f"t{count // 2 + round_number}"), at)
        timings["get"].append((time.perf_counter() - begin) * 1000)
    await store.close()
    for label, values in timings.items():
        print(
            f"  store {label:<19} median {statistics.median(values):7.2f} ms"
            f"   max {max(values):7.2f} ms   (20 calls)"
        )


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def interleaved(calls: int, *timed: Callable[[], None]) -> list[list[float]]:
    """Milliseconds of each call of each function, run in turn ``calls`` times."""
    results: list[list[float]] = [[] for _ in timed]
    for _ in range(calls):
        for times, call in zip(results, timed, strict=True):
            begin = time.perf_counter()
            call()
            times.append((time.perf_counter() - begin) * 1000)
    return results


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(values):6.2f} ms  p99 {p99:6.2f} ms"


def api_timings(url: str, work: Path, calls: int, count: int) -> None:
    config = work / "unlimited.yaml"
    config.write_text("lease_calls_per_second: 0\n")  # LeaseTasks as fast as they come
    proc, base = start_tasksd(work, db=url, config=config)
    try:
        api = httpx.Client(base_url=base, timeout=60)

        def create(queue: QueueName) -> Callable[[], None]:
            body = {"task": {"pullMessage": {"payload": "aGVsbG8=", "tag": "new"}}}
            return lambda: api.post(f"/v2beta2/{queue.path}/tasks", json=body).raise_for_status()

        def lease(queue: QueueName) -> Callable[[], None]:
            body = {"maxTasks": 100, "leaseDuration": "300s", "responseView": "BASIC"}

            def call() -> None:
                reply = api.post(f"/v2beta2/{queue.path}/tasks:lease", json=body)
                reply.raise_for_status()
                assert len(reply.json()["tasks"]) == 100

            return call

        for _ in range(20):  # warm up: connection, caches
            create(EMPTY)()
        big, empty = interleaved(calls, create(MILLION), create(EMPTY))
        print(f"  API CreateTask, {count:,} queue  {summary(big)}   ({calls} calls)")
        print(f"  API CreateTask, empty queue  {'':>{len(f'{count:,}') - 5}}{summary(empty)}")
        ratio = statistics.median(big) / statistics.median(empty)
        print(f"  CreateTask {count:,} / empty: {ratio:.2f}x (medians; goal <= 1.5x)")
        leases = min(calls, SMALL_TASKS // 100 - 1)
        big, small = interleaved(leases, lease(MILLION), lease(SMALL))
        print(f"  API LeaseTasks 100, {count:,} queue  {summary(big)}   ({leases} calls)")
        print(f"  API LeaseTasks 100, {SMALL_TASKS:,} queue  {summary(small)}")
        ratio = statistics.median(big) / statistics.median(small)
        print(f"  LeaseTasks {count:,} / {SMALL_TASKS:,}: {ratio:.2f}x (medians; goal <= 1.5x)")
        memory = memory_kb(proc.pid)
        print(
            f"  server memory, {count:,} tasks queued: RSS {memory['VmRSS'] / 1024:.0f} MB, "
            f"peak {memory['VmHWM'] / 1024:.0f} MB (goal <= 250 MB)"
        )
    finally:
        stop(proc)


def postgres_available() -> bool:
    try:
        from tests.postgres import _binary

        _binary("initdb")
    except RuntimeError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--calls", type=int, default=300, help="CreateTask calls per queue")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    postgres: PostgresServer | None = None
    try:
        for kind in args.stores.split(","):
            if kind == "postgres":
                if not postgres_available():
                    print("PostgreSQL: skipped (no initdb on this machine)")
                    continue
                postgres = PostgresServer()
                url = postgres.new_database()
            else:
                url = f"sqlite:///{work / 'million.db'}"
            print(f"{'SQLite' if kind == 'sqlite' else 'PostgreSQL'}:")
            load(url, args.tasks)
            asyncio.run(store_timings(url, args.tasks))
            api_timings(url, work, args.calls, args.tasks)
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
