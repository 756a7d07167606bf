"""Store operations on a queue holding a million tasks (PostgreSQL; the indexes at work).

    python bench/million.py [--tasks 1000000]

Bulk-loads the tasks with one INSERT … SELECT generate_series (not through the API: this
measures the queries, not the load), then times lease, acknowledge and get through the
store, and prints the plan of the lease query.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postgres import PostgresServer

from tasksd.model.leases import LeaseRequest
from tasksd.model.names import QueueName
from tasksd.model.queue import Queue, QueueKind
from tasksd.model.task import PullMessage, Task
from tasksd.service.queues import complete_queue
from tasksd.store import codec
from tasksd.store.postgres import PostgresStore

QUEUE = QueueName("bench", "us-central1", "million")


async def run(url: str, count: int) -> None:
    store = PostgresStore(url)
    await store.open()
    now = datetime.now(UTC)
    queue = complete_queue(Queue(name=QUEUE, kind=QueueKind.PULL), None)
    await store.put_queue(QUEUE, queue, now, await store.find_queue(QUEUE, now))
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        queue_id = conn.execute("SELECT id FROM queues WHERE queue_id = %s", (QUEUE.queue,)).fetchone()[0]
        blob = codec.encode_task_columns(Task(name=QUEUE.task("x"), payload=PullMessage(b"x" * 100, "")))[1]
        now_us = codec.to_us(now)
        conn.execute(
            """INSERT INTO tasks (queue, task_id, kind, schedule_us, create_us, expire_us, tag, payload)
               SELECT %s, 't' || g, 0, %s - g, %s, %s + 86400000000, 'tag' || (g %% 100), %s
               FROM generate_series(1, %s) AS g""",
            (queue_id, now_us, now_us, now_us, blob, count),
        )
        conn.execute("ANALYZE tasks")
        plan = conn.execute(
            "EXPLAIN "
            + store._dialect.queries["due_tasks"].replace("%s", "{}").format(queue_id, now_us, now_us, 100)
        ).fetchall()
    print(f"loaded {count:,} tasks in {time.perf_counter() - started:.1f} s")
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
                QUEUE, LeaseRequest(at + timedelta(minutes=5), 100, 32 * 1024 * 1024, tag), at
            )
            timings[label].append((time.perf_counter() - begin) * 1000)
            assert len(leased) == 100, (label, len(leased))
        task = leased[round_number]
        begin = time.perf_counter()
        assert task.name is not None and task.schedule_time is not None
        [refused] = await store.acknowledge_tasks([(task.name, task.schedule_time)], at)
        assert refused is None, refused
        timings["acknowledge"].append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        await store.get_task(QUEUE.task(f"t{500_000 + round_number}"), at)
        timings["get"].append((time.perf_counter() - begin) * 1000)
    for label, values in timings.items():
        print(
            f"{label:<20} median {statistics.median(values):7.2f} ms   max {max(values):7.2f} ms   (20 calls)"
        )
    print("plan of the lease query:")
    for (line,) in plan:
        print("   ", line)
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    args = parser.parse_args()
    server = PostgresServer()
    try:
        asyncio.run(run(server.new_database(), args.tasks))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
