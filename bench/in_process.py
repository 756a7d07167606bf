"""tasksd's own CPU per created task, without transports: the v2 CreateTask or BatchCreateTasks
handler that gRPC and REST call, called directly by callers on one event loop (uvloop, the
garbage collection settings of ``tasksd serve``), on a durable SQLite file (WAL, FULL), an
SQLite ``:memory:`` database or the memory:// store.

    python bench/in_process.py [--rpc batch|create] [--batch 100] [--callers 4]
        [--calls 800] [--rounds 3] [--db sqlite|sqlite-memory|memory]

Prints, per round, tasks/s and the CPU per task of the process and of each of its busy
threads (the event loop's, the store writer's, the readers'), read from /proc; what is left
of a server's CPU per task beside these is its transport's. Each round creates its tasks in a
new queue and fails unless the store counts every one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from google.cloud.tasks_v2.types import cloudtasks, queue, target, task

from tasksd.cli import tune_gc
from tasksd.clock import SystemClock
from tasksd.config import Settings
from tasksd.engine.dispatcher import Dispatcher
from tasksd.model.names import QueueName
from tasksd.server import guarded_rpcs
from tasksd.service import TasksService
from tasksd.store import open_store
from tasksd.targets.appengine import AppEngineUrls
from tasksd.targets.sender import Sender
from tasksd.targets.tokens import TokenIssuer, new_signing_key

SERVICE = "google.cloud.tasks.v2.CloudTasks"
LOCATION = "projects/bench/locations/us-central1"


def thread_cpu() -> dict[tuple[int, str], float]:
    """CPU seconds (user + system) of each thread of this process, by (id, name): the event
    loop's, the store's writer and readers (by their Python names) and others (C threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in map(int, os.listdir("/proc/self/task")):
        with open(f"/proc/self/task/{tid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        name = "event loop" if tid == os.getpid() else names.get(tid, "other")
        name = "store readers" if "-read" in name else "store writer" if "-writer" in name else name
        out[(tid, name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def request_bytes(rpc: str, parent: str, batch: int) -> bytes:
    """One request, as its wire bytes: an HTTP task (a body, scheduled a day ahead)."""
    one = task.Task(
        http_request=target.HttpRequest(url="http://127.0.0.1:9/work", body=b'{"n": 1}'),
        schedule_time={"seconds": int(time.time()) + 86_400},
    )
    if rpc == "create":
        return cloudtasks.CreateTaskRequest.serialize(cloudtasks.CreateTaskRequest(parent=parent, task=one))
    requests = [cloudtasks.CreateTaskRequest(parent=parent, task=one) for _ in range(batch)]
    return cloudtasks.BatchCreateTasksRequest.serialize(
        cloudtasks.BatchCreateTasksRequest(parent=parent, requests=requests)
    )


async def measure(args: argparse.Namespace) -> list[dict[str, float]]:
    tune_gc()
    work = Path(tempfile.mkdtemp(prefix="tasksd-inproc-"))
    url = {
        "sqlite": f"sqlite:///{work}/tasks.db",
        "sqlite-memory": "sqlite:///:memory:",
        "memory": "memory://",
    }
    store = await open_store(url[args.db])
    clock = SystemClock()
    tokens = TokenIssuer(new_signing_key(), "http://127.0.0.1", clock)
    dispatcher = Dispatcher(  # never started: the tasks are scheduled a day ahead anyway
        store, clock, Sender(), tokens, AppEngineUrls(), node="bench", ownership_ttl=timedelta(seconds=10)
    )
    service = TasksService(store, clock, Settings().service, dispatcher)
    rpcs = {(rpc.service, rpc.name): rpc for rpc in guarded_rpcs(service, None)}
    create_queue = rpcs[(SERVICE, "CreateQueue")]
    call = rpcs[(SERVICE, "BatchCreateTasks" if args.rpc == "batch" else "CreateTask")]
    per_call = args.batch if args.rpc == "batch" else 1
    rounds = []
    try:
        for number in range(args.rounds + 1):  # a first round to warm up, not counted
            parent = f"{LOCATION}/queues/inproc-{number}"
            await create_queue.handler(
                cloudtasks.CreateQueueRequest.pb(
                    cloudtasks.CreateQueueRequest(parent=LOCATION, queue=queue.Queue(name=parent))
                )
            )
            wire = request_bytes(args.rpc, parent, args.batch)
            calls = args.calls if number else max(args.calls // 10, args.callers)
            todo = iter(range(calls))

            async def caller(todo: Iterator[int], wire: bytes) -> None:
                for _ in todo:
                    await call.handler(call.request.FromString(wire))

            before, cpu = thread_cpu(), time.process_time()
            begin = time.perf_counter()
            await asyncio.gather(*(caller(todo, wire) for _ in range(args.callers)))
            elapsed = time.perf_counter() - begin
            cpu = time.process_time() - cpu
            after = thread_cpu()
            count = (await store.queue_stats(QueueName.parse(parent, "parent"), clock.now())).tasks_count
            tasks = calls * per_call
            if count != tasks:
                raise SystemExit(f"the store holds {count} of the {tasks} tasks created")
            if not number:
                continue
            threads: dict[str, float] = {}
            for key, seconds in after.items():
                name = key[1]
                threads[name] = threads.get(name, 0.0) + (seconds - before.get(key, 0.0)) / tasks * 1e6
            busy = {name: us for name, us in threads.items() if us >= 0.5}
            result = {"tasks/s": tasks / elapsed, "µs CPU/task": cpu / tasks * 1e6, **busy}
            rounds.append(result)
            shown = "  ".join(f"{name} {us:.1f}" for name, us in busy.items())
            print(
                f"round {number}: {result['tasks/s']:,.0f} tasks/s, {result['µs CPU/task']:.1f} µs CPU "
                f"per task ({shown}); {count} of {tasks} in the store"
            )
    finally:
        await store.close()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rpc", choices=("batch", "create"), default="batch")
    parser.add_argument("--batch", type=int, default=100, help="tasks per BatchCreateTasks")
    parser.add_argument("--callers", type=int, default=4, help="calls in flight at a time")
    parser.add_argument("--calls", type=int, default=800, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "sqlite-memory", "memory"), default="sqlite")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        rounds = asyncio.run(measure(args))
    else:
        rounds = uvloop.run(measure(args))
    what = f"BatchCreateTasks of {args.batch}" if args.rpc == "batch" else "CreateTask"
    print(f"{what}, {args.callers} callers, {args.db}: medians of {len(rounds)} rounds")
    for key in rounds[0]:
        values = [r.get(key, 0.0) for r in rounds]
        print(f"  {key:24s} {statistics.median(values):10,.1f}")


if __name__ == "__main__":
    main()
