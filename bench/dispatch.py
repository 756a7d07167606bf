"""Push dispatch benchmarks against a local sink (bench/sink_server.py), all in one run:

(a) throughput: tasks dispatched per second to the sink, beside a bare loop that sends the
    same requests (method, URL, X-CloudTasks-* headers) through tasksd's own sender —
    tasksd.targets.http1 on uvloop, the same connection limit — in alternating rounds; the
    medians and their ratio (target >= 70 %);
(b) rate accuracy: queues at 1/s, 50/s and 500/s over 20 s (target within ±3 %), and a
    queue whose concurrency cap is checked against the sink's peak;
(c) create→dispatch latency at 100 tasks/s, p50 and p99 (target p50 <= 5 ms); with
    ``--processes N``, against ``tasksd serve --processes N``, the tasks created over 8
    connections in turn, which the kernel spreads over the processes, so that most processes
    take CreateTask calls for a queue another one dispatches;
(d) HTTP clients, only when asked for (``--only d``): bare loops sending those requests
    through tasksd's sender and through the candidates it was measured against (aiohttp as
    the sender used it before, h11 on an asyncio protocol, httpcore), in alternating rounds;
    requests/s and CPU per request of each.

  python bench/dispatch.py [--only a|b|c|d] [--tasks 20000] [--seconds 20] [--rounds 3]
      [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import uvloop
from support import cpu_seconds, free_port, start_tasksd, stop, wait_up

HERE = Path(__file__).resolve().parent
PARENT = "projects/bench/locations/us-central1"


class Bench:
    def __init__(self, tasksd: str, sink: str) -> None:
        self.api = httpx.Client(base_url=tasksd, timeout=120)
        self.sink = sink

    def queue(self, **body: object) -> str:
        name = f"{PARENT}/queues/b-{uuid.uuid4().hex[:10]}"
        self.api.post(
            f"/v2beta2/{PARENT}/queues", json={"name": name, "httpTarget": {}, **body}
        ).raise_for_status()
        return name

    def fill(self, queue: str, url: str, count: int) -> None:
        """Create tasks through HTTP batches of 500 (4 in parallel)."""
        import concurrent.futures

        def batch(n: int) -> None:
            boundary = "b" + uuid.uuid4().hex
            body = (
                "".join(
                    f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <x + {i}>\r\n\r\n"
                    f"POST /v2beta2/{queue}/tasks HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                    f'{{"task": {{"httpRequest": {{"url": "{url}"}}}}}}\r\n'
                    for i in range(n)
                )
                + f"--{boundary}--\r\n"
            )
            reply = self.api.post(
                "/batch",
                content=body.encode(),
                headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
            )
            reply.raise_for_status()
            assert reply.content.count(b"HTTP/1.1 200") == n

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(batch, [min(500, count - s) for s in range(0, count, 500)]))

    def stats(self, path: str) -> dict[str, object]:
        return httpx.get(f"{self.sink}/_stats", params={"path": path}, timeout=60).json()  # type: ignore[no-any-return]

    def wait_count(self, path: str, count: int, timeout_s: float) -> list[float]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            arrivals = self.stats(path)["arrivals"]
            assert isinstance(arrivals, list)
            if len(arrivals) >= count:
                return sorted(arrivals)
            time.sleep(0.2)
        raise SystemExit(f"only {len(self.stats(path)['arrivals'])} of {count} tasks reached {path}")  # type: ignore[arg-type]


def dispatch_round(bench: Bench, tasks: int, pid: int) -> tuple[float, float]:
    """Tasks per second tasksd dispatches from 20 queues (filled while paused) to the sink,
    and the CPU time tasksd spent per task meanwhile (µs)."""
    queues = 20  # each queue is capped at 500 dispatches/s; 20 of them allow 10,000/s
    path = "/t-" + uuid.uuid4().hex[:8]
    names = [
        bench.queue(
            rateLimits={"maxTasksDispatchedPerSecond": 500, "maxBurstSize": 500, "maxConcurrentTasks": 1000}
        )
        for _ in range(queues)
    ]
    for name in names:
        bench.api.post(f"/v2beta2/{name}:pause", json={}).raise_for_status()
    for name in names:
        bench.fill(name, bench.sink + path, tasks // queues)
    cpu = cpu_seconds(pid)
    started = time.time()
    for name in names:
        bench.api.post(f"/v2beta2/{name}:resume", json={}).raise_for_status()
    arrivals = bench.wait_count(path, tasks, 600)
    return tasks / (arrivals[-1] - started), (cpu_seconds(pid) - cpu) / tasks * 1e6


def bare_round(bench: Bench, tasks: int) -> tuple[float, float]:
    """Requests per second of a bare loop on tasksd's own HTTP client stack (``Sender.request``,
    uvloop as the server runs) sending the requests
    tasksd sends: same method, URL, User-Agent and X-CloudTasks-* headers, no body — from as
    many client loops as tasksd keeps connections to one host. Everything but the engine,
    which includes the sender's lanes."""
    from tasksd.cli import tune_gc
    from tasksd.targets.outbound import Outbound
    from tasksd.targets.sender import CONNECTIONS_PER_HOST, Sender

    url = bench.sink + "/bare-" + uuid.uuid4().hex[:8]
    eta = f"{time.time():.6f}"

    def outbound(i: int) -> Outbound:
        headers = [
            ("User-Agent", "Google-Cloud-Tasks"),
            ("X-CloudTasks-QueueName", "b-0123456789"),
            ("X-CloudTasks-TaskName", f"{7_000_000_000_000_000_000 + i}"),
            ("X-CloudTasks-TaskRetryCount", "0"),
            ("X-CloudTasks-TaskExecutionCount", "0"),
            ("X-CloudTasks-TaskETA", eta),
        ]
        return Outbound("POST", url, headers, b"", follow_redirects=True)

    async def bare() -> tuple[float, float]:
        tune_gc()  # the garbage collection settings of tasksd serve
        sender = Sender()
        todo = iter(range(tasks))

        async def loop() -> None:
            for i in todo:
                reply = await sender.request(outbound(i), 600)
                assert reply.status == 200, reply

        begin, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(loop() for _ in range(CONNECTIONS_PER_HOST)))
        rate = tasks / (time.perf_counter() - begin)
        cpu_us = (time.process_time() - cpu) / tasks * 1e6
        await sender.close()
        gc.set_threshold(*thresholds)
        return rate, cpu_us

    thresholds = gc.get_threshold()
    return uvloop.run(bare())


def throughput(bench: Bench, tasks: int, rounds: int, pid: int) -> None:
    dispatched: list[float] = []
    bare: list[float] = []
    tasksd_cpu: list[float] = []
    bare_cpu: list[float] = []
    for number in range(1, rounds + 1):
        rate, cpu = dispatch_round(bench, tasks, pid)
        dispatched.append(rate)
        tasksd_cpu.append(cpu)
        rate, cpu = bare_round(bench, tasks)
        bare.append(rate)
        bare_cpu.append(cpu)
        print(
            f"    round {number}: tasksd {dispatched[-1]:6.0f} tasks/s ({tasksd_cpu[-1]:4.0f} µs CPU/task), "
            f"bare {bare[-1]:6.0f} req/s ({bare_cpu[-1]:4.0f} µs CPU/request)"
        )
    tasksd_rate, bare_rate = statistics.median(dispatched), statistics.median(bare)
    tasksd_us, bare_us = statistics.median(tasksd_cpu), statistics.median(bare_cpu)
    print(f"(a) bare sender -> sink ({rounds} rounds, median): {bare_rate:6.0f} req/s, {bare_us:4.0f} µs CPU")
    print(f"    tasksd dispatch, 20 queues x 500/s:  {tasksd_rate:6.0f} tasks/s, {tasksd_us:4.0f} µs CPU")
    by_cpu = bare_us / tasksd_us
    print(f"    ratio: {tasksd_rate / bare_rate:.1%} (target >= 70%); by CPU time per request: {by_cpu:.1%}")


def _headers(i: int, eta: str) -> list[tuple[str, str]]:
    return [
        ("User-Agent", "Google-Cloud-Tasks"),
        ("X-CloudTasks-QueueName", "b-0123456789"),
        ("X-CloudTasks-TaskName", f"{7_000_000_000_000_000_000 + i}"),
        ("X-CloudTasks-TaskRetryCount", "0"),
        ("X-CloudTasks-TaskExecutionCount", "0"),
        ("X-CloudTasks-TaskETA", eta),
    ]


async def _sender_loop(url: str, send: Callable[[int], Awaitable[int]], tasks: int) -> tuple[float, float]:
    """(requests/s, µs CPU per request) of CONNECTIONS_PER_HOST loops calling ``send``."""
    from tasksd.targets.sender import CONNECTIONS_PER_HOST

    todo = iter(range(tasks))

    async def loop() -> None:
        for i in todo:
            status = await send(i)
            assert status == 200, status

    begin, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(loop() for _ in range(CONNECTIONS_PER_HOST)))
    return tasks / (time.perf_counter() - begin), (time.process_time() - cpu) / tasks * 1e6


async def _tasksd_client(url: str, tasks: int) -> tuple[float, float]:
    from tasksd.targets.outbound import Outbound
    from tasksd.targets.sender import Sender

    sender, eta = Sender(), f"{time.time():.6f}"

    async def send(i: int) -> int:
        return (await sender.request(Outbound("POST", url, _headers(i, eta), b"", True), 600)).status

    try:
        return await _sender_loop(url, send, tasks)
    finally:
        await sender.close()


async def _aiohttp_client(url: str, tasks: int) -> tuple[float, float]:
    """aiohttp's client as tasksd's sender used it (the connector's limits, the headers it
    keeps from adding, a timeout per request)."""
    import aiohttp

    from tasksd.targets.sender import CONNECTIONS_PER_HOST

    connector = aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_HOST)
    session = aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    eta = f"{time.time():.6f}"

    async def send(i: int) -> int:
        timeout = aiohttp.ClientTimeout(total=600)
        async with session.request("POST", url, headers=_headers(i, eta), timeout=timeout) as response:
            await response.read()
            return response.status

    try:
        return await _sender_loop(url, send, tasks)
    finally:
        await session.close()


async def _h11_client(url: str, tasks: int) -> tuple[float, float]:
    """h11 (the protocol state machine httpcore uses) on an asyncio protocol per connection."""
    import h11

    loop = asyncio.get_running_loop()
    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]

    class Protocol(asyncio.Protocol):
        def __init__(self) -> None:
            self.conn = h11.Connection(h11.CLIENT)
            self.status = 0
            self.done: asyncio.Future[int] = loop.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.conn.receive_data(data)
            while (event := self.conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Response):
                    self.status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    self.done.set_result(self.status)
                    return

    idle: list[Protocol] = []
    eta = f"{time.time():.6f}"

    async def send(i: int) -> int:
        protocol = idle.pop() if idle else (await loop.create_connection(Protocol, host, int(port)))[1]
        headers = [("Host", f"{host}:{port}"), *_headers(i, eta), ("Content-Length", "0")]
        protocol.done = loop.create_future()
        request = h11.Request(method="POST", target=path, headers=headers)
        protocol.transport.write(protocol.conn.send(request) + protocol.conn.send(h11.EndOfMessage()))  # type: ignore[attr-defined]
        status = await protocol.done
        protocol.conn.start_next_cycle()
        idle.append(protocol)
        return status

    try:
        return await _sender_loop(url, send, tasks)
    finally:
        for protocol in idle:
            protocol.transport.close()


async def _httpcore_client(url: str, tasks: int) -> tuple[float, float]:
    import httpcore

    from tasksd.targets.sender import CONNECTIONS_PER_HOST

    pool = httpcore.AsyncConnectionPool(
        max_connections=CONNECTIONS_PER_HOST, max_keepalive_connections=CONNECTIONS_PER_HOST
    )
    host = url.split("/")[2].encode()
    eta = f"{time.time():.6f}"

    async def send(i: int) -> int:
        headers = [(b"Host", host), *((k.encode(), v.encode()) for k, v in _headers(i, eta))]
        return (await pool.request("POST", url, headers=[*headers, (b"Content-Length", b"0")])).status

    try:
        return await _sender_loop(url, send, tasks)
    finally:
        await pool.aclose()


def clients(sink: str, tasks: int, rounds: int) -> None:
    """(d): each client's bare loop, alternating, ``tasks`` requests per round (httpcore,
    whose pool is quadratic in its connections, a fiftieth of them)."""
    candidates: dict[str, Callable[[str, int], Awaitable[tuple[float, float]]]] = {
        "tasksd sender": _tasksd_client,
        "aiohttp": _aiohttp_client,
        "h11 protocol": _h11_client,
        "httpcore": _httpcore_client,
    }
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for number in range(1, rounds + 1):
        for name, client in candidates.items():
            count = tasks // 50 if name == "httpcore" else tasks
            url = f"{sink}/d-{uuid.uuid4().hex[:8]}"
            measured[name].append(uvloop.run(client(url, count)))
            rate, cpu = measured[name][-1]
            print(f"    round {number}: {name:14} {rate:7.0f} req/s ({cpu:5.1f} µs CPU/request)")
    for name, results in measured.items():
        rate = statistics.median(r for r, _ in results)
        cpu = statistics.median(c for _, c in results)
        print(f"(d) {name:14} (median of {rounds}): {rate:7.0f} req/s, {cpu:5.1f} µs CPU/request")


def rate_accuracy(bench: Bench, seconds: int) -> None:
    for rate in (1, 50, 500):
        burst = min(100, rate)
        path = f"/r{rate}-" + uuid.uuid4().hex[:8]
        queue = bench.queue(
            rateLimits={
                "maxTasksDispatchedPerSecond": rate,
                "maxBurstSize": burst,
                "maxConcurrentTasks": 1000,
            }
        )
        bench.api.post(f"/v2beta2/{queue}:pause", json={}).raise_for_status()
        bench.fill(queue, bench.sink + path, burst + rate * (seconds + 5))
        bench.api.post(f"/v2beta2/{queue}:resume", json={}).raise_for_status()
        time.sleep(seconds + 2)
        arrivals = sorted(bench.stats(path)["arrivals"])  # type: ignore[arg-type]
        # After the first burst tokens only come at the rate: measure the inter-arrival rate
        # of the dispatches that followed it, within the window.
        after = [t for t in arrivals[burst - 1 :] if t <= arrivals[0] + seconds]
        measured = (len(after) - 1) / (after[-1] - after[0])
        bench.api.post(f"/v2beta2/{queue}:pause", json={})
        print(
            f"(b) {rate:>3}/s (burst {burst:>3}): measured {measured:8.2f}/s over {seconds} s "
            f"-> {measured / rate - 1:+.2%} (target within ±3%)"
        )
    path = "/c-" + uuid.uuid4().hex[:8]
    httpx.post(f"{bench.sink}/_reset")
    queue = bench.queue(rateLimits={"maxTasksDispatchedPerSecond": 500, "maxConcurrentTasks": 25})
    bench.fill(queue, bench.sink + path + "?delay_ms=100", 1000)
    bench.wait_count(path, 1000, 120)
    print(f"    concurrency cap 25 with a 100 ms handler: peak {bench.stats(path)['peak']} at the sink")


def latency(bench: Bench, seconds: int, connections: int = 1) -> None:
    path = "/l-" + uuid.uuid4().hex[:8]
    queue = bench.queue(rateLimits={"maxTasksDispatchedPerSecond": 500})
    clients = [bench.api] + [
        httpx.Client(base_url=str(bench.api.base_url), timeout=120) for _ in range(connections - 1)
    ]
    sent: dict[str, float] = {}
    count = 100 * seconds
    begin = time.perf_counter()
    for i in range(count):
        target = begin + i / 100
        pause = target - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        task_id = f"l{i}"
        sent[task_id] = time.time()
        clients[i % connections].post(
            f"/v2beta2/{queue}/tasks",
            json={"task": {"name": f"{queue}/tasks/{task_id}", "httpRequest": {"url": bench.sink + path}}},
        ).raise_for_status()
    for client in clients[1:]:
        client.close()
    bench.wait_count(path, count, 60)
    stats = bench.stats(path)
    delays = sorted(
        (at - sent[name]) * 1000 for at, name in zip(stats["arrivals"], stats["names"], strict=True)
    )  # type: ignore[arg-type]
    p50, p99 = statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
    p90 = delays[int(len(delays) * 0.9) - 1]
    print(
        f"(c) create -> dispatch at 100 tasks/s over {seconds} s, {connections} connection(s): "
        f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms "
        "(target p50 <= 5 ms; measured from before the CreateTask call to the handler)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["a", "b", "c", "d"])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of (a)")
    parser.add_argument(
        "--processes", type=int, default=1, help="tasksd serve --processes N ((c) then uses 8 connections)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "sink_server.py"), str(sink_port)])
    tasksd, base = start_tasksd(work, processes=args.processes)
    try:
        wait_up(f"http://127.0.0.1:{sink_port}/_stats", sink)
        bench = Bench(base, f"http://127.0.0.1:{sink_port}")
        if args.only in (None, "c"):
            latency(bench, min(args.seconds, 10), 8 if args.processes > 1 else 1)
        if args.only in (None, "b"):
            rate_accuracy(bench, args.seconds)
        if args.only in (None, "a"):
            throughput(bench, args.tasks, args.rounds, tasksd.pid)
        if args.only == "d":
            clients(bench.sink, args.tasks, args.rounds)
    finally:
        stop(tasksd, sink)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
