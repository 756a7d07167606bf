"""tasksd's own CPU per task, without transports: the v2 CreateTask or BatchCreateTasks
handler that gRPC and REST call, called directly by callers on one event loop (uvloop, the
garbage collection settings of ``tasksd serve``), on a durable SQLite file (WAL, FULL), an
SQLite ``:memory:`` database or the memory:// store; or (``--rpc pull``) the pull worker loop
of bench/pull_worker.py through the REST application itself, called as ASGI without sockets:
LeaseTasks of 1,000, then their acknowledgements in ten HTTP batches of 100 at once.

    python bench/in_process.py [--rpc batch|create|pull] [--batch 100] [--callers 4]
        [--calls 800] [--tasks 20000] [--rounds 3] [--db sqlite|sqlite-memory|memory]

Prints, per round, tasks/s and the CPU per task of the process and of each of its busy
threads (the event loop's, the store writer's, the readers', read from /proc); for pull also
the event loop's CPU in the lease calls and in the acknowledgement batches, and the worker's
own (reading leases, writing batches), which the server figure leaves out. What is left of a
server's CPU per task beside these is its transport's. Each round uses a new queue and fails
unless the store counts every task created (for pull: unless every task was acknowledged
once and none is left).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.cloud.tasks_v2.types import cloudtasks, target, task
from pull_worker import batch_body

from tasksd.cli import tune_gc
from tasksd.clock import SystemClock
from tasksd.config import Settings
from tasksd.engine.dispatcher import Dispatcher
from tasksd.model.names import QueueName
from tasksd.observe import logs
from tasksd.server import build_rest_app, guarded_rpcs
from tasksd.service import TasksService
from tasksd.store import open_store
from tasksd.targets.appengine import AppEngineUrls
from tasksd.targets.sender import Sender
from tasksd.targets.tokens import TokenIssuer, new_signing_key

SERVICE = "google.cloud.tasks.v2.CloudTasks"
PULL_SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"
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


async def asgi_call(
    app: Any, path: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, bytes]:
    """(status, body) of one POST to the ASGI application, as uvicorn would pass it on."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client does not go away
        raise AssertionError

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def drain(app: Any, parent: str, tasks: int) -> dict[str, float]:
    """The pull worker loop over a queue of ``tasks``: CPU seconds of this thread in the lease
    calls, in the acknowledgement batches and in the worker's own work."""
    spent = {"lease": 0.0, "ack": 0.0, "worker": 0.0}
    acked: set[str] = set()
    lease = json.dumps({"maxTasks": 1000, "leaseDuration": "600s"}).encode()
    while True:
        begin = time.thread_time()
        status, reply = await asgi_call(app, f"/v2beta2/{parent}/tasks:lease", lease)
        leased_at = time.thread_time()
        spent["lease"] += leased_at - begin
        if status == 429:  # the queue's LeaseTasks limit (10 calls per second)
            await asyncio.sleep(0.01)
            continue
        if status != 200:
            raise SystemExit(f"LeaseTasks answered {status}: {reply[:300]!r}")
        leased = json.loads(reply).get("tasks", [])
        if not leased:
            break
        acks = [
            ("POST", f"/v2beta2/{t['name']}:acknowledge", {"scheduleTime": t["scheduleTime"]}) for t in leased
        ]
        batches = [batch_body(acks[i : i + 100]) for i in range(0, len(acks), 100)]
        sending = time.thread_time()
        spent["worker"] += sending - leased_at
        replies = await asyncio.gather(*(asgi_call(app, "/batch", body, kind) for body, kind in batches))
        answered = time.thread_time()
        spent["ack"] += answered - sending
        for (status, reply), (body, _) in zip(replies, batches, strict=True):
            if status != 200 or reply.count(b"HTTP/1.1 200 OK") != body.count(b"POST /v2beta2/"):
                raise SystemExit(f"an acknowledgement batch failed: {status} {reply[:300]!r}")
        for t in leased:
            if t["name"] in acked:
                raise SystemExit(f"{t['name']} was leased again after its acknowledgement")
            acked.add(t["name"])
        spent["worker"] += time.thread_time() - answered
    if len(acked) != tasks:
        raise SystemExit(f"{len(acked)} of the {tasks} tasks were acknowledged")
    return spent


async def measure(args: argparse.Namespace) -> list[dict[str, float]]:
    tune_gc()
    defaults = Settings()
    logs.configure(defaults.log_level, defaults.log_format, defaults.access_log)  # as tasksd serve
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
    service = TasksService(store, clock, defaults.service, dispatcher)
    every = guarded_rpcs(service, None)
    rpcs = {(rpc.service, rpc.name): rpc for rpc in every}
    app = build_rest_app(every, tokens)
    pull = args.rpc == "pull"
    create_queue = rpcs[(PULL_SERVICE if pull else SERVICE, "CreateQueue")]
    call = rpcs[
        (PULL_SERVICE, "CreateTask")
        if pull
        else (SERVICE, "BatchCreateTasks" if args.rpc == "batch" else "CreateTask")
    ]
    per_call = args.batch if args.rpc == "batch" else 1
    rounds = []
    try:
        for number in range(args.rounds + 1):  # a first round to warm up, not counted
            parent = f"{LOCATION}/queues/inproc-{number}"
            made = {"parent": LOCATION, "queue": {"name": parent}}
            if pull:
                made["queue"]["pull_target"] = {}
            await create_queue.handler(create_queue.request(**made))
            if pull:
                wire = call.request(parent=parent, task={"pull_message": {"payload": b"hello", "tag": "b"}})
                wire = wire.SerializeToString()
                calls = args.tasks if number else args.tasks // 10
            else:
                wire = request_bytes(args.rpc, parent, args.batch)
                calls = args.calls if number else max(args.calls // 10, args.callers)
            todo = iter(range(calls))

            async def caller(todo: Iterator[int], wire: bytes) -> None:
                for _ in todo:
                    await call.handler(call.request.FromString(wire))

            if pull:  # filled, then drained: the drain is measured
                await asyncio.gather(*(caller(todo, wire) for _ in range(32)))
                await asyncio.sleep(1.1)  # the queue's LeaseTasks bucket refills
            before, cpu = thread_cpu(), time.process_time()
            begin = time.perf_counter()
            if pull:
                spent = await drain(app, parent, calls)
            else:
                await asyncio.gather(*(caller(todo, wire) for _ in range(args.callers)))
            elapsed = time.perf_counter() - begin
            cpu = time.process_time() - cpu
            after = thread_cpu()
            count = (await store.queue_stats(QueueName.parse(parent, "parent"), clock.now())).tasks_count
            tasks = calls * per_call
            if count != (0 if pull else tasks):
                raise SystemExit(f"the store holds {count} tasks, {0 if pull else tasks} expected")
            if not number:
                continue
            threads: dict[str, float] = {}
            for key, seconds in after.items():
                name = key[1]
                threads[name] = threads.get(name, 0.0) + (seconds - before.get(key, 0.0)) / tasks * 1e6
            busy = {name: us for name, us in threads.items() if us >= 0.5}
            result = {"tasks/s": tasks / elapsed, "µs CPU/task": cpu / tasks * 1e6, **busy}
            if pull:
                result["µs CPU/task"] -= spent["worker"] / tasks * 1e6
                result["event loop"] -= spent["worker"] / tasks * 1e6
                result.update(
                    {f"loop: {k}" if k != "worker" else k: v / tasks * 1e6 for k, v in spent.items()}
                )
            rounds.append(result)
            shown = "  ".join(f"{name} {us:.1f}" for name, us in list(result.items())[2:])
            print(
                f"round {number}: {result['tasks/s']:,.0f} tasks/s, {result['µs CPU/task']:.1f} µs CPU "
                f"per task ({shown}); {'none' if pull else count} of {tasks} in the store"
            )
    finally:
        await store.close()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rpc", choices=("batch", "create", "pull"), default="batch")
    parser.add_argument("--batch", type=int, default=100, help="tasks per BatchCreateTasks")
    parser.add_argument("--callers", type=int, default=4, help="calls in flight at a time")
    parser.add_argument("--calls", type=int, default=800, help="calls per round")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per round (pull)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "sqlite-memory", "memory"), default="sqlite")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        rounds = asyncio.run(measure(args))
    else:
        rounds = uvloop.run(measure(args))
    what = {"batch": f"BatchCreateTasks of {args.batch}", "create": "CreateTask", "pull": "pull worker loop"}[
        args.rpc
    ]
    callers = "" if args.rpc == "pull" else f", {args.callers} callers"
    print(f"{what}{callers}, {args.db}: medians of {len(rounds)} rounds")
    for key in rounds[0]:
        values = [r.get(key, 0.0) for r in rounds]
        print(f"  {key:24s} {statistics.median(values):10,.1f}")


if __name__ == "__main__":
    main()
