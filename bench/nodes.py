"""CreateTask, push-dispatch and pull throughput: SQLite with one node beside PostgreSQL with one
and with three nodes on one database, in the same run.

    python bench/nodes.py [--seconds 10] [--tasks 20000] [--setups sqlite,pg1,pg3] [--rates-only]

Needs wrk and PostgreSQL's binaries (the script starts a throwaway server). CreateTask: wrk
against every node at once (16 connections each), rates summed. Dispatch: 20 queues × 500/s
resumed round-robin through the nodes (so their ownership spreads), tasks/s reaching a sink.
Pull: one pull queue, one worker per node leasing 1,000 at a time and acknowledging them in
HTTP batches of 100 (bench/pull_worker.py's), tasks/s acknowledged.
Beside each rate, the CPU time per request (per task) of the tasksd processes and
of PostgreSQL's (from /proc), which the machine's noise does not distort as it does rates.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from create_task import BODY, LUA, run_wrk
from dispatch import Bench
from pull_worker import QUEUE as PULL_QUEUE
from pull_worker import fill as fill_pull
from pull_worker import worker as pull_worker
from support import cpu_seconds, free_port, start_tasksd, stop, wait_up

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.postgres import PostgresServer  # noqa: E402

PARENT = "projects/bench/locations/us-central1"


def postgres_cpu_seconds(postgres: PostgresServer) -> float:
    """CPU time used so far by PostgreSQL's processes still alive (the postmaster and its
    children: the backends of every node's connections among them)."""
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total


class CpuMeter:
    """CPU seconds of the nodes (and of PostgreSQL, when it is used) over a stretch of work."""

    def __init__(self, nodes: list[tuple[subprocess.Popen[bytes], str]], postgres: PostgresServer | None):
        self.pids = [proc.pid for proc, _ in nodes]
        self.postgres = postgres
        self.restart()

    def restart(self) -> None:
        self.started = self._now()

    def _now(self) -> tuple[float, float]:
        pg = postgres_cpu_seconds(self.postgres) if self.postgres is not None else 0.0
        return sum(cpu_seconds(pid) for pid in self.pids), pg

    def per(self, count: int) -> str:
        """µs of CPU per unit of work since the last call (or since it was made)."""
        now = self._now()
        nodes, pg = ((b - a) * 1e6 / count for a, b in zip(self.started, now, strict=True))
        self.started = now
        return (
            f"{nodes:4.0f} µs tasksd + {pg:4.0f} µs PostgreSQL CPU"
            if self.postgres
            else f"{nodes:4.0f} µs tasksd CPU"
        )


def start_nodes(db: str, count: int, work: Path) -> list[tuple[subprocess.Popen[bytes], str]]:
    return [start_tasksd(work, db) for _ in range(count)]


def create_rate(bases: list[str], seconds: int, work: Path) -> tuple[float, int]:
    """(requests per second, requests) of CreateTask through every node at once."""
    queue = f"{PARENT}/queues/create-{int(time.time() * 1000)}"
    httpx.post(
        f"{bases[0]}/v2beta2/{PARENT}/queues", json={"name": queue, "pullTarget": {}}
    ).raise_for_status()
    script = work / "post.lua"
    script.write_text(LUA % BODY)
    with ThreadPoolExecutor(len(bases)) as pool:
        runs = list(pool.map(lambda b: run_wrk(f"{b}/v2beta2/{queue}/tasks", script, seconds, 16), bases))
    return sum(rate for rate, _, _, _ in runs), sum(total for _, total, _, _ in runs)


def dispatch_rate(bases: list[str], sink: str, tasks: int, meter: CpuMeter) -> float:
    """Tasks per second from the resumes to the last arrival (``meter`` restarted at the resumes)."""
    benches = [Bench(base, sink) for base in bases]
    path = f"/n-{int(time.time() * 1000)}"
    queues = [
        benches[0].queue(
            rateLimits={"maxTasksDispatchedPerSecond": 500, "maxBurstSize": 500, "maxConcurrentTasks": 1000}
        )
        for _ in range(20)
    ]
    for queue in queues:
        benches[0].api.post(f"/v2beta2/{queue}:pause", json={}).raise_for_status()
        benches[0].fill(queue, sink + path, tasks // 20)
    meter.restart()
    started = time.time()
    for index, queue in enumerate(queues):
        benches[index % len(benches)].api.post(f"/v2beta2/{queue}:resume", json={}).raise_for_status()
    arrivals = benches[0].wait_count(path, tasks, 600)
    return tasks / (arrivals[-1] - started)


def pull_rate(bases: list[str], tasks: int, meter: CpuMeter) -> float:
    """Tasks per second leased (1,000 a call) and acknowledged (HTTP batches of 100, ten at a
    time) by one worker per node from one pull queue (``meter`` restarted when they start);
    every task acknowledged exactly once."""
    with httpx.Client(base_url=bases[0], timeout=60) as client:
        client.post(
            f"/v2beta2/{PARENT}/queues", json={"name": PULL_QUEUE, "pullTarget": {}}
        ).raise_for_status()
        fill_pull(client, tasks)
    time.sleep(1)  # the queue's LeaseTasks bucket refills (10 calls per second)
    acked: list[str] = []
    lock, finished = threading.Lock(), threading.Event()
    threads = [
        threading.Thread(target=pull_worker, args=(base, 10, acked, [], lock, finished)) for base in bases
    ]
    meter.restart()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert len(acked) == len(set(acked)) == tasks, (len(acked), len(set(acked)))
    return tasks / elapsed


def rate_through_nodes(bases: list[str], sink: str, rate: int, seconds: int) -> float:
    """The dispatch rate of one queue created through one node and resumed through another."""
    benches = [Bench(base, sink) for base in bases]
    path = f"/r-{int(time.time() * 1000)}"
    queue = benches[0].queue(rateLimits={"maxTasksDispatchedPerSecond": rate, "maxBurstSize": 1})
    benches[0].api.post(f"/v2beta2/{queue}:pause", json={}).raise_for_status()
    benches[0].fill(queue, sink + path, rate * (seconds + 3))
    benches[-1].api.post(f"/v2beta2/{queue}:resume", json={}).raise_for_status()
    time.sleep(seconds + 1)
    arrivals = sorted(benches[0].stats(path)["arrivals"])  # type: ignore[arg-type]
    window = [t for t in arrivals if t <= arrivals[0] + seconds]
    benches[0].api.post(f"/v2beta2/{queue}:pause", json={})
    return (len(window) - 1) / (window[-1] - window[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rates-only", action="store_true", help="only the rate accuracy through 3 nodes")
    parser.add_argument(
        "--setups", default="sqlite,pg1,pg3", help="which of sqlite, pg1, pg3 to measure, in that order"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    postgres = PostgresServer()
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "sink_server.py"), str(sink_port)])
    sink_url = f"http://127.0.0.1:{sink_port}"
    try:
        wait_up(f"{sink_url}/_stats", sink)
        setups = {
            "sqlite": ("SQLite, 1 node", f"sqlite:///{work / 'bench.db'}", 1),
            "pg1": ("PostgreSQL, 1 node", postgres.new_database(), 1),
            "pg3": ("PostgreSQL, 3 nodes", postgres.new_database(), 3),
        }
        if args.rates_only:
            nodes = start_nodes(setups["pg3"][1], 3, work)
            try:
                for rate in (1, 50, 500):
                    measured = rate_through_nodes([b for _, b in nodes], sink_url, rate, 20)
                    print(
                        f"PostgreSQL, 3 nodes: {rate:>3}/s queue dispatched at {measured:8.2f}/s "
                        f"({measured / rate - 1:+.2%}; target within ±3%)"
                    )
            finally:
                stop(*(proc for proc, _ in nodes))
            return
        for key in args.setups.split(","):
            label, db, count = setups[key]
            nodes = start_nodes(db, count, work)
            try:
                bases = [base for _, base in nodes]
                meter = CpuMeter(nodes, postgres if key != "sqlite" else None)
                created, requests = create_rate(bases, args.seconds, work)
                print(f"{label:<20} CreateTask {created:7.0f} req/s    {meter.per(requests)} per request")
                dispatched = dispatch_rate(bases, sink_url, args.tasks, meter)
                print(f"{label:<20} dispatch {dispatched:7.0f} tasks/s    {meter.per(args.tasks)} per task")
                pulled = pull_rate(bases, args.tasks, meter)
                print(f"{label:<20} pull     {pulled:7.0f} tasks/s    {meter.per(args.tasks)} per task")
            finally:
                stop(*(proc for proc, _ in nodes))
    finally:
        stop(sink)
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
