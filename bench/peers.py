"""tasksd side by side with its peers, under the same load in one run (issue 20):

(a) ingest, the fastest gRPC path each server offers (h2load, 4 clients x 4 streams): tasksd's
    BatchCreateTasks of 100 tasks (v2) and its plain CreateTask, durable (the default SQLite
    file, WAL, synchronous=FULL) and on ``--db memory://``, beside aertje's CreateTask.
    Ratio: tasksd batch tasks/s over aertje CreateTask tasks/s (goal >= 2.0).
(b) unary gRPC CreateTask, tasksd (durable) beside gcloud-tasks-emulator, with p99 latency
    (goal >= 1.5x), and the bare grpc.aio echo (bench/grpc_echo_server.py) that bounds any
    server on tasksd's gRPC stack.
(c) REST CreateTask (wrk, a v2 JSON body with an HTTP target), tasksd beside a bare Starlette
    JSON echo on tasksd's HTTP stack (uvicorn, httptools, uvloop) (goal >= 0.5x).
(d) dispatch: 20,000 tasks over 20 queues (500 dispatches/s each, 1,000 concurrent), all
    scheduled for one instant a few seconds ahead, drained into nginx (``return 200``; its
    access log, one ``$msec`` line per request, is the count); tasks/s from the first to the
    last request nginx logs, tasksd beside aertje (goal >= 1.2x). 500/s is the most the API
    allows a queue, so 20 queues cap the rate near 10,000/s; ``--dispatch-queues`` raises it.
(e) memory per queued task: resident memory before and after 200,000 tasks scheduled a day
    ahead (nothing dispatches), for each server.

With ``--processes N`` (2 by default; 1 leaves them out), (a) to (c) also measure tasksd as
``tasksd serve --processes N`` on one SQLite file (the rows ``…, N proc``), and (c) a Starlette
echo on as many processes (SO_REUSEPORT, as tasksd), against which that tasksd row's ratio is
taken, as issue 20 asks. The kernel spreads connections over the processes by a hash, so with
h2load's 4 connections one process may get three or all four of them.

Every server is started fresh for each measurement, on free ports, and stopped at the end,
also on error. Rounds alternate the order of the servers; the tables give medians, with the
server CPU time per task (user + system of the server process and its children, from
/proc), which the load on a shared machine distorts less than the rates. After each tasksd
run the bench counts the tasks in its store (the queue's ``stats.tasksCount``, a count the
store makes) and fails unless every task the server acknowledged is there; the peers' counts
(ListTasks) are printed too. h2load counts HTTP 200s, and gRPC errors come with HTTP 200, so
these counts are the check that the calls succeeded.

    python bench/peers.py [--only a,b,c,d,e] [--rounds 2] [--ingest-tasks 30000]
        [--unary-requests 10000] [--rest-seconds 8] [--dispatch-tasks 20000]
        [--dispatch-queues 20] [--memory-tasks 200000] [--aertje PATH] [--gte-venv PATH]
        [--tasksd-src DIR] [--processes 2]

The peers are used when present, and their rows skipped otherwise:

- aertje/cloud-tasks-emulator (Go, in memory, gRPC v2 only): fetch its source and build it
  with Debian's Go toolchain and Debian's Go library packages (grpc, genproto, goprotobuf,
  golang-jwt) in GOPATH mode; ``--aertje`` (or ``$AERTJE_EMULATOR``) names the binary,
  by default /work/peers/aertje/emulator. It reads ``oidc.key`` from its directory, where it
  is started.
- gcloud-tasks-emulator (Python, in memory, gRPC v2): ``pip install gcloud-tasks-emulator``
  in a virtual environment of its own; ``--gte-venv`` (or ``$GTE_VENV``) names it, by
  default /work/peers/gte-venv.

Neither is part of this repository. Needs h2load (Debian ``nghttp2-client``), wrk and nginx
(``nginx-light``), and Starlette in the project's environment (FastAPI brings it). With
``--tasksd-src DIR`` the tasksd servers run the code of DIR (a git worktree's src/), so that
edits in the work tree do not change a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from google.cloud.tasks_v2.types import cloudtasks
from google.protobuf import timestamp_pb2
from grpc_create import grpc_frame
from grpc_create import h2load as run_h2load
from support import free_port, serve_on_tasksd_stack, start_tasksd, tree_cpu_seconds, tree_rss_bytes, wait_up

PARENT = "projects/bench/locations/us-central1"
SERVICE = "/google.cloud.tasks.v2.CloudTasks/"
CLIENTS, STREAMS = 4, 4
DAY_S = 86_400
# Where ingested tasks would go; they are scheduled a day ahead and never sent.
NOWHERE = "http://127.0.0.1:9/never"
HERE = Path(__file__).resolve().parent


# -- servers -----------------------------------------------------------------------------


@dataclass
class Server:
    """A running server: its process, gRPC address and (tasksd) REST base URL."""

    name: str
    proc: subprocess.Popen[bytes]
    grpc_target: str
    rest: str | None = None
    echo: bool = False  # a bare echo: no queues, nothing stored
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, method: str) -> str:
        return f"http://{self.grpc_target}{SERVICE}{method}"

    def client(self) -> tasks_v2.CloudTasksClient:
        if self._channel is None:
            self._channel = grpc.insecure_channel(
                self.grpc_target, options=[("grpc.max_receive_message_length", -1)]
            )
            grpc.channel_ready_future(self._channel).result(timeout=30)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=self._channel))

    def new_queue(self, paused: bool = False, **rate_limits: float) -> str:
        name = f"{PARENT}/queues/p-{uuid.uuid4().hex[:10]}"
        queue: dict[str, Any] = {"name": name}
        if rate_limits:
            queue["rate_limits"] = rate_limits
        self.client().create_queue(parent=PARENT, queue=tasks_v2.Queue(queue))
        if paused:
            self.client().pause_queue(name=name)
        return name

    def stored(self, queue: str) -> int:
        """Tasks in a queue: tasksd's store count, or the length of a peer's ListTasks."""
        if self.rest is not None:
            reply = httpx.get(f"{self.rest}/v2beta3/{queue}", params={"readMask": "stats"}, timeout=60)
            reply.raise_for_status()
            return int(reply.json()["stats"].get("tasksCount", 0))
        return sum(1 for _ in self.client().list_tasks(request={"parent": queue, "page_size": 1000}))

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Peers:
    work: Path
    aertje: Path | None
    gte: Path | None

    processes: int = 1
    """Server processes of the ``… N processes`` variants of tasksd and the Starlette echo."""

    def tasksd(self, memory: bool = False, processes: int = 1) -> Server:
        proc, base = start_tasksd(
            self.work, db="memory://" if memory else None, name=uuid.uuid4().hex[:8], processes=processes
        )
        args = [str(arg) for arg in proc.args]  # type: ignore[union-attr]
        port = args[args.index("--grpc-port") + 1]
        return Server("tasksd, memory" if memory else "tasksd, sqlite", proc, f"127.0.0.1:{port}", base)

    def tasksd_processes(self) -> Server:
        return self.tasksd(processes=self.processes)

    def several(self, name: str) -> str:
        """The name of the variant of ``name`` on ``processes`` processes."""
        return f"{name}, {self.processes} proc"

    def start_aertje(self) -> Server:
        assert self.aertje is not None
        port = free_port()
        proc = subprocess.Popen(
            [str(self.aertje), "-host", "127.0.0.1", "-port", str(port)],
            cwd=self.aertje.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return ready(Server("aertje", proc, f"127.0.0.1:{port}"))

    def start_gte(self) -> Server:
        assert self.gte is not None
        port = free_port()
        proc = subprocess.Popen(
            [str(self.gte / "bin" / "gcloud-tasks-emulator"), "start", "--port", str(port), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return ready(Server("gte", proc, f"127.0.0.1:{port}"))

    def start_grpc_echo(self) -> Server:
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(HERE / "grpc_echo_server.py"), str(port)])
        return ready(Server("grpc.aio echo", proc, f"127.0.0.1:{port}", echo=True))

    def start_echo(self, processes: int = 1) -> Server:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-starlette-echo", str(port), str(processes)]
        )
        base = f"http://127.0.0.1:{port}"
        wait_up(f"{base}/healthz", proc)
        return Server("starlette echo", proc, "", base, echo=True)


def ready(server: Server) -> Server:
    try:
        server.client()
    except grpc.FutureTimeoutError:
        server.stop()
        raise SystemExit(f"{server.name} did not answer gRPC within 30 s") from None
    return server


@contextmanager
def running(start: Callable[[], Server]) -> Iterator[Server]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


def starlette_echo(port: int, processes: int = 1) -> None:
    """A bare Starlette app that answers the JSON it is sent, on tasksd's HTTP stack."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(await request.json())

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", healthz), Route("/{path:path}", echo, methods=["POST"])])
    serve_on_tasksd_stack(app, port, processes)


# -- load --------------------------------------------------------------------------------


def timestamp(at: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(at * 1e9))
    return stamp


def create_body(work: Path, queue: str, at: float, url: str = NOWHERE) -> Path:
    """A framed v2 CreateTaskRequest for ``queue``: an HTTP task scheduled for ``at``."""
    task = {"http_request": {"url": url}, "schedule_time": timestamp(at)}
    request = cloudtasks.CreateTaskRequest(parent=queue, task=task)
    body = work / f"create-{uuid.uuid4().hex[:8]}.bin"
    body.write_bytes(grpc_frame(cloudtasks.CreateTaskRequest.serialize(request)))
    return body


def batch_body(work: Path, queue: str, at: float, size: int = 100, url: str = NOWHERE) -> Path:
    """A framed v2 BatchCreateTasksRequest of ``size`` HTTP tasks scheduled for ``at``."""
    task = {"http_request": {"url": url}, "schedule_time": timestamp(at)}
    request = cloudtasks.BatchCreateTasksRequest(
        parent=queue, requests=[cloudtasks.CreateTaskRequest(task=task) for _ in range(size)]
    )
    body = work / f"batch-{uuid.uuid4().hex[:8]}.bin"
    body.write_bytes(grpc_frame(cloudtasks.BatchCreateTasksRequest.serialize(request)))
    return body


@dataclass
class Run:
    """One measured run of one server."""

    rate: float  # tasks (or requests) per second
    cpu_us: float  # server CPU per task
    p99_ms: float | None = None
    note: str = ""


@dataclass
class Rows:
    """The runs of each server in a section, in the order the servers were first seen."""

    runs: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, name: str, run: Run, round_number: int) -> None:
        self.runs.setdefault(name, []).append(run)
        p99 = f"  p99 {run.p99_ms:6.2f} ms" if run.p99_ms is not None else ""
        rate = f"{run.rate:9.0f} /s  {run.cpu_us:7.1f} µs CPU/task"
        print(f"  round {round_number}  {name:<32} {rate}{p99}  {run.note}")

    def median(self, name: str) -> tuple[float, float, float | None]:
        runs = self.runs[name]
        p99s = [run.p99_ms for run in runs if run.p99_ms is not None]
        return (
            statistics.median(run.rate for run in runs),
            statistics.median(run.cpu_us for run in runs),
            statistics.median(p99s) if p99s else None,
        )

    def table(
        self, title: str, reference: str, goals: dict[str, float], against: dict[str, str] | None = None
    ) -> None:
        """Medians, and each row's rate and CPU per task against ``reference``'s (or the row
        ``against`` names for it)."""
        print(f"\n{title}")
        columns = f"{'rate /s':>9} {'µs CPU/task':>12} {'p99 ms':>8} {'rate ratio':>11} {'CPU ratio':>10}"
        print(f"  {'server':<32} {columns}  goal")
        for name in self.runs:
            own = (against or {}).get(name, reference)
            base = self.median(own) if own in self.runs else None
            rate, cpu, p99 = self.median(name)
            ratio = f"{rate / base[0]:10.2f}x" if base else f"{'-':>11}"
            cpu_ratio = f"{cpu / base[1]:9.2f}x" if base else f"{'-':>10}"
            goal = ""
            if name in goals and base:
                goal = f">= {goals[name]:.1f}x: {'met' if rate / base[0] >= goals[name] else 'NOT met'}"
            p99_text = f"{p99:8.2f}" if p99 is not None else f"{'':>8}"
            if own != reference:
                goal = f"(against {own}) {goal}"
            print(f"  {name:<32} {rate:9.0f} {cpu:12.1f} {p99_text} {ratio} {cpu_ratio}  {goal}")
        if reference not in self.runs:
            print(f"  ({reference} is absent: no ratios)")
        print(flush=True)


def h2load(url: str, body: Path, requests: int) -> tuple[float, float, float, int]:
    """bench/grpc_create.py's h2load run with 4 clients x 4 streams (fewer clients for fewer
    requests): (requests/s, p50 ms, p99 ms, succeeded)."""
    return run_h2load(url, body, requests, min(CLIENTS, requests), STREAMS)


def grpc_run(server: Server, method: str, body: Path, requests: int, per_request: int) -> Run:
    """h2load ``requests`` calls of ``method`` with ``body``; tasks/s and CPU per task."""
    cpu = tree_cpu_seconds(server.pid)
    rate, _p50, p99, succeeded = h2load(server.url(method), body, requests)
    spent = tree_cpu_seconds(server.pid) - cpu
    if succeeded != requests:
        raise SystemExit(f"FAIL: {server.name}: {requests - succeeded} of {requests} {method} calls failed")
    return Run(rate * per_request, spent / (requests * per_request) * 1e6, p99)


def check_stored(server: Server, queue: str, expected: int) -> str:
    """Fail unless tasksd's store holds every task it acknowledged; a peer's count is shown."""
    if server.echo:
        return ""
    stored = server.stored(queue)
    if server.rest is not None and stored != expected:
        raise SystemExit(f"FAIL: {server.name} stored {stored} of the {expected} tasks it acknowledged")
    return f"({stored} of {expected} in the store)"


# -- the sections ------------------------------------------------------------------------


def ordered(items: list[Any], round_number: int) -> list[Any]:
    return items if round_number % 2 else items[::-1]


def ingest(peers: Peers, args: argparse.Namespace) -> None:
    """(a) The fastest gRPC ingest of each server."""
    print("(a) ingest over gRPC, h2load 4 clients x 4 streams, tasks scheduled a day ahead")
    variants: list[tuple[str, Callable[[], Server], str, int]] = [
        ("tasksd batch100, sqlite", peers.tasksd, "BatchCreateTasks", 100),
        ("tasksd batch100, memory", lambda: peers.tasksd(memory=True), "BatchCreateTasks", 100),
        ("tasksd create, sqlite", peers.tasksd, "CreateTask", 1),
        ("tasksd create, memory", lambda: peers.tasksd(memory=True), "CreateTask", 1),
    ]
    if peers.processes > 1:
        variants.insert(
            1, (peers.several("tasksd batch100, sqlite"), peers.tasksd_processes, "BatchCreateTasks", 100)
        )
    if peers.aertje:
        variants.append(("aertje create", peers.start_aertje, "CreateTask", 1))
    rows = Rows()
    for round_number in range(1, args.rounds + 1):
        for name, start, method, per in ordered(variants, round_number):
            with running(start) as server:
                queue = server.new_queue()
                make = batch_body if per > 1 else create_body
                body = make(peers.work, queue, time.time() + DAY_S)
                warm = max(1, 1000 // per)
                h2load(server.url(method), body, warm)
                requests = max(1, args.ingest_tasks // per)
                run = grpc_run(server, method, body, requests, per)
                run.note = check_stored(server, queue, (warm + requests) * per)
                rows.add(name, run, round_number)
    rows.table(
        "(a) ingest: medians; ratios to aertje's CreateTask",
        "aertje create",
        {
            "tasksd batch100, sqlite": 2.0,
            peers.several("tasksd batch100, sqlite"): 2.0,
            "tasksd batch100, memory": 2.0,
        },
    )


def unary(peers: Peers, args: argparse.Namespace) -> None:
    """(b) Unary CreateTask over gRPC, tasksd beside gcloud-tasks-emulator, and the bare
    grpc.aio echo (bench/grpc_echo_server.py) that bounds any server on tasksd's gRPC stack."""
    print("(b) unary CreateTask over gRPC, h2load 4 clients x 4 streams")
    variants: list[tuple[str, Callable[[], Server]]] = [
        ("tasksd create, sqlite", peers.tasksd),
        ("grpc.aio echo", peers.start_grpc_echo),
    ]
    if peers.processes > 1:
        variants.insert(1, (peers.several("tasksd create, sqlite"), peers.tasksd_processes))
    if peers.gte:
        variants.append(("gte create", peers.start_gte))
    rows = Rows()
    for round_number in range(1, args.rounds + 1):
        for name, start in ordered(variants, round_number):
            with running(start) as server:
                # gte's loop goes through every task of a running queue ten times a second,
                # future ones too: its queue is paused so that only CreateTask is measured.
                queue = (
                    f"{PARENT}/queues/echo" if server.echo else server.new_queue(paused=server.rest is None)
                )
                body = create_body(peers.work, queue, time.time() + DAY_S)
                h2load(server.url("CreateTask"), body, 500)
                run = grpc_run(server, "CreateTask", body, args.unary_requests, 1)
                run.note = check_stored(server, queue, 500 + args.unary_requests)
                rows.add(name, run, round_number)
    rows.table(
        "(b) unary CreateTask: medians; ratios to gte",
        "gte create",
        {"tasksd create, sqlite": 1.5, peers.several("tasksd create, sqlite"): 1.5},
    )


def rest(peers: Peers, args: argparse.Namespace) -> None:
    """(c) REST CreateTask with wrk, tasksd beside a bare Starlette JSON echo."""
    from create_task import run_wrk

    print(f"(c) REST CreateTask (v2 JSON, HTTP target), wrk 1 thread x {args.connections} connections")
    due = timestamp(time.time() + DAY_S).ToJsonString()
    body = f'{{"task": {{"httpRequest": {{"url": "{NOWHERE}"}}, "scheduleTime": "{due}"}}}}'
    script = peers.work / "create.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = \'{body}\'\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    variants: list[tuple[str, Callable[[], Server]]] = [
        ("tasksd create, sqlite", peers.tasksd),
        ("starlette echo", peers.start_echo),
    ]
    if peers.processes > 1:
        variants += [
            (peers.several("tasksd create, sqlite"), peers.tasksd_processes),
            (peers.several("starlette echo"), lambda: peers.start_echo(peers.processes)),
        ]
    rows = Rows()
    for round_number in range(1, args.rounds + 1):
        for name, start in ordered(variants, round_number):
            with running(start) as server:
                assert server.rest is not None
                queue = f"{PARENT}/queues/echo" if server.echo else server.new_queue()
                url = f"{server.rest}/v2/{queue}/tasks"
                warm = run_wrk(url, script, 1, args.connections)
                cpu = tree_cpu_seconds(server.pid)
                rate, total, bad, latency = run_wrk(url, script, args.rest_seconds, args.connections)
                spent = tree_cpu_seconds(server.pid) - cpu
                if bad or warm[2]:
                    raise SystemExit(f"FAIL: {server.name} answered {bad + warm[2]} requests with errors")
                run = Run(rate, spent / total * 1e6, note=latency)
                if not server.echo:
                    # wrk stops with requests in flight: some may be stored but not counted.
                    stored = server.stored(queue)
                    if stored < warm[1] + total:
                        raise SystemExit(
                            f"FAIL: tasksd stored {stored} of {warm[1] + total} acknowledged tasks"
                        )
                    run.note += f"; {stored} stored, {warm[1] + total} acknowledged"
                rows.add(name, run, round_number)
    rows.table(
        "(c) REST CreateTask: medians; ratios to the Starlette echo",
        "starlette echo",
        {"tasksd create, sqlite": 0.5, peers.several("tasksd create, sqlite"): 0.5},
        {
            peers.several("tasksd create, sqlite"): peers.several("starlette echo"),
            peers.several("starlette echo"): "starlette echo",
        },
    )


class Nginx:
    """nginx answering 200 to everything, logging each request's time ($msec) to a file."""

    def __init__(self, work: Path) -> None:
        self.root = work / f"nginx-{uuid.uuid4().hex[:8]}"
        self.root.mkdir()
        self.log = self.root / "access.log"
        self.port = free_port()
        temp = " ".join(
            f"{kind}_temp_path {self.root / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.root / "nginx.conf").write_text(
            f"""
daemon off;
worker_processes 1;
pid {self.root / "nginx.pid"};
error_log {self.root / "error.log"} warn;
events {{ worker_connections 16384; }}
http {{
    {temp}
    log_format stamp '$msec';
    access_log {self.log} stamp;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location / {{ return 200; }}
    }}
}}
"""
        )
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
            stderr=subprocess.DEVNULL,
        )
        wait_up(f"http://127.0.0.1:{self.port}/up", self.proc)
        self.url = f"http://127.0.0.1:{self.port}/d"

    def stamps(self) -> list[float]:
        """The times of the requests logged so far but the start-up probe's."""
        if not self.log.exists():
            return []
        return [float(line) for line in self.log.read_text().split()[1:]]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def dispatch_round(peers: Peers, server: Server, args: argparse.Namespace) -> Run:
    queues = args.dispatch_queues
    per_queue = args.dispatch_tasks // queues
    sink = Nginx(peers.work)
    try:
        names = [
            server.new_queue(max_dispatches_per_second=500, max_concurrent_dispatches=1000)
            for _ in range(queues)
        ]
        due = time.time() + args.dispatch_lead
        started = time.time()
        for name in names:
            if server.rest is not None:  # tasksd: its fastest path, batches of 100
                body = batch_body(peers.work, name, due, url=sink.url)
                requests = per_queue // 100
                h2load(server.url("BatchCreateTasks"), body, requests)
            else:
                body = create_body(peers.work, name, due, url=sink.url)
                h2load(server.url("CreateTask"), body, per_queue)
        filled = time.time()
        if filled > due - 0.5:
            raise SystemExit(
                f"FAIL: filling {server.name} took {filled - started:.1f} s, past the tasks' schedule: "
                "raise --dispatch-lead"
            )
        acknowledged = queues * per_queue
        if server.rest is not None:
            stored = sum(server.stored(name) for name in names)
            if stored != acknowledged:
                raise SystemExit(f"FAIL: {server.name} stored {stored} of {acknowledged} tasks")
        time.sleep(max(0.0, due - 0.3 - time.time()))  # the wait is idle: not counted
        cpu = tree_cpu_seconds(server.pid)
        deadline = time.time() + 120
        while len(stamps := sink.stamps()) < acknowledged:
            if time.time() > deadline:
                raise SystemExit(f"FAIL: {server.name}: {len(stamps)} of {acknowledged} tasks reached nginx")
            time.sleep(0.25)
        time.sleep(0.5)  # nothing more should come
        spent = tree_cpu_seconds(server.pid) - cpu
        stamps = sink.stamps()
        first, last = min(stamps), max(stamps)
        fill = f"fill {filled - started:.1f} s; first {first - due:+.2f} s from due"
        note = f"({len(stamps)} requests at nginx; {fill})"
        if len(stamps) != acknowledged:
            note += " MORE REQUESTS THAN TASKS"
        return Run((len(stamps) - 1) / (last - first), spent / acknowledged * 1e6, note=note)
    finally:
        sink.stop()


def dispatch(peers: Peers, args: argparse.Namespace) -> None:
    """(d) Push dispatch into nginx."""
    queues = args.dispatch_queues
    cap = f"at most {queues * 500}/s after each queue's burst"
    print(
        f"(d) dispatch: {args.dispatch_tasks} tasks due at once, {queues} queues x 500/s ({cap}), into nginx"
    )
    variants: list[tuple[str, Callable[[], Server]]] = [("tasksd, sqlite", peers.tasksd)]
    if peers.aertje:
        variants.append(("aertje", peers.start_aertje))
    rows = Rows()
    for round_number in range(1, args.rounds + 1):
        for name, start in ordered(variants, round_number):
            with running(start) as server:
                rows.add(name, dispatch_round(peers, server, args), round_number)
    rows.table(
        "(d) dispatch: medians, first to last request at nginx; ratios to aertje",
        "aertje",
        {"tasksd, sqlite": 1.2},
    )


def memory(peers: Peers, args: argparse.Namespace) -> None:
    """(e) Resident memory per queued task."""
    count = args.memory_tasks
    print(f"(e) memory: resident set before and after {count} tasks scheduled a day ahead")
    variants: list[tuple[str, Callable[[], Server], str, int]] = [
        ("tasksd, sqlite", peers.tasksd, "BatchCreateTasks", 100),
        ("tasksd, memory", lambda: peers.tasksd(memory=True), "BatchCreateTasks", 100),
    ]
    if peers.aertje:
        variants.append(("aertje", peers.start_aertje, "CreateTask", 1))
    if peers.gte:
        variants.append(("gte", peers.start_gte, "CreateTask", 1))
    print(f"  {'server':<16} {'RSS before':>11} {'RSS after':>11} {'bytes/task':>11}  ingest")
    for name, start, method, per in variants:
        with running(start) as server:
            queue = server.new_queue(paused=name == "gte")  # as in (b)
            make = batch_body if per > 1 else create_body
            body = make(peers.work, queue, time.time() + DAY_S)
            warm = max(1, 1000 // per)
            h2load(server.url(method), body, warm)
            time.sleep(1)
            before = tree_rss_bytes(server.pid)
            begin = time.perf_counter()
            requests = count // per
            h2load(server.url(method), body, requests)
            took = time.perf_counter() - begin
            time.sleep(1)
            after = tree_rss_bytes(server.pid)
            note = check_stored(server, queue, (warm + requests) * per)
            print(
                f"  {name:<16} {before / 2**20:8.1f} MiB {after / 2**20:8.1f} MiB "
                f"{(after - before) / (requests * per):11.0f}  {requests * per / took:.0f} tasks/s {note}",
                flush=True,
            )
    print()


SECTIONS = {"a": ingest, "b": unary, "c": rest, "d": dispatch, "e": memory}


def found(path: str, what: str, check: Callable[[Path], bool]) -> Path | None:
    candidate = Path(path)
    if check(candidate):
        return candidate
    print(f"{what} not found at {candidate}: its rows are skipped")
    return None


def main() -> None:
    if sys.argv[1:2] == ["--serve-starlette-echo"]:
        starlette_echo(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="a,b,c,d,e", help="sections to run, comma-separated (a,b,c,d,e)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (a) to (d), alternating the servers")
    parser.add_argument("--ingest-tasks", type=int, default=30000)
    parser.add_argument("--unary-requests", type=int, default=10000)
    parser.add_argument("--rest-seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections in (c)")
    parser.add_argument("--dispatch-tasks", type=int, default=20000)
    parser.add_argument(
        "--dispatch-queues", type=int, default=20, help="queues of (d), 500/s each (the API's most)"
    )
    parser.add_argument("--dispatch-lead", type=float, default=8.0, help="seconds from filling to due in (d)")
    parser.add_argument("--memory-tasks", type=int, default=200000)
    parser.add_argument("--aertje", default=os.environ.get("AERTJE_EMULATOR", "/work/peers/aertje/emulator"))
    parser.add_argument("--gte-venv", default=os.environ.get("GTE_VENV", "/work/peers/gte-venv"))
    parser.add_argument("--tasksd-src", help="run tasksd from this src/ directory (PYTHONPATH)")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="server processes of the extra rows of (a) to (c): tasksd --processes N (durable), and in (c) "
        "a Starlette echo as many; 1: no such rows",
    )
    args = parser.parse_args()
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = [part for part in only if part not in SECTIONS]
    if unknown:
        raise SystemExit(f"--only takes sections among a,b,c,d,e, not {','.join(unknown)}")
    for tool, package in (("h2load", "nghttp2-client"), ("wrk", "wrk"), ("nginx", "nginx-light")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: apt-get install {package}")
    if args.tasksd_src:
        src = Path(args.tasksd_src).resolve()
        if not (src / "tasksd" / "__main__.py").exists():
            raise SystemExit(f"--tasksd-src {src} has no tasksd package")
        os.environ["PYTHONPATH"] = str(src)
    aertje = found(
        args.aertje, "aertje/cloud-tasks-emulator", lambda p: p.is_file() and os.access(p, os.X_OK)
    )
    gte = found(
        args.gte_venv, "gcloud-tasks-emulator", lambda p: (p / "bin" / "gcloud-tasks-emulator").exists()
    )
    work = Path(tempfile.mkdtemp(prefix="tasksd-peers-"))
    try:
        peers = Peers(work, aertje, gte, args.processes)
        for section in only:
            SECTIONS[section](peers, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
