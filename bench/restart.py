"""Restarts after kill -9: how soon push dispatch resumes once the server answers again, and
how soon a server whose store holds a million queued tasks serves again.

    python bench/restart.py [--restarts 20] [--tasks 1000000] [--stores sqlite,postgres]
                            [--only dispatch|million|children]

1. Dispatch (SQLite): a push queue at 50 tasks/s to a local sink (bench/sink_server.py) with
   tasks always due. ``--restarts`` times: once tasks arrive, kill -9 the server, start the same
   command again (same ports, same store, no node_id configured), poll /healthz every 2 ms, and
   take the first task that reaches the sink after the new process was started. Per restart:
   start → /healthz answering, and /healthz answering → that task (goal: at most 1 s;
   negative when dispatch resumed before /healthz answered); then medians and maxima.
2. Children (``--only children``): the same queue on ``tasksd serve --processes 2``;
   ``--restarts`` times: kill -9 the process that dispatches the queue (the one connected to
   the sink) once it has run 10 s (else its parent waits 2 s before starting it again), and
   take kill → the next task at the sink (the other process serves the API meanwhile).
3. Million: for each store (PostgreSQL when its binaries exist), the tasks bulk-loaded as
   bench/million.py does, then 5 × (kill -9, start): start → /healthz answering (goal: at most
   3 s), with the server's RSS then.

Run it with ``PYTHONPATH=OTHER_TREE/src`` to measure another build the same way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from dispatch import Bench
from million import load, memory_kb, postgres_available
from support import cpu_seconds, free_port, stop, wait_up

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.postgres import PostgresServer  # noqa: E402


class Node:
    """One ``tasksd serve`` command, started again and again on the same ports and store."""

    def __init__(self, db: str) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.args = [
            sys.executable,
            "-m",
            "tasksd",
            "serve",
            "--db",
            db,
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--log-level",
            "warning",
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.cpu_s = 0.0

    def start(self) -> tuple[float, float]:
        """(time the process was started, seconds until /healthz answered 200); ``self.cpu_s``
        is the CPU time the server had used by then."""
        started = time.time()
        self.proc = subprocess.Popen(self.args)
        client = httpx.Client(timeout=0.5)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"tasksd exited with {self.proc.returncode}")
            try:
                if client.get(f"{self.url}/healthz").status_code == 200:
                    healthy = time.time() - started
                    self.cpu_s = cpu_seconds(self.proc.pid)
                    return started, healthy
            except httpx.HTTPError:
                pass
            time.sleep(0.002)
        raise SystemExit("tasksd did not answer /healthz within 60 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def report(label: str, values: list[float], goal: str) -> None:
    print(f"{label:<34} median {statistics.median(values):6.3f} s   max {max(values):6.3f} s   ({goal})")


def dispatch_after_restart(work: Path, restarts: int) -> None:
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "sink_server.py"), str(sink_port)])
    sink_url = f"http://127.0.0.1:{sink_port}"
    node = Node(f"sqlite:///{work / 'restart.db'}")
    try:
        wait_up(f"{sink_url}/_stats", sink)
        node.start()
        bench = Bench(node.url, sink_url)
        queue = bench.queue(rateLimits={"maxTasksDispatchedPerSecond": 50, "maxBurstSize": 1})
        bench.api.post(f"/v2beta2/{queue}:pause", json={}).raise_for_status()
        bench.fill(queue, f"{sink_url}/r", 50 * 4 * (restarts + 2))
        bench.api.post(f"/v2beta2/{queue}:resume", json={}).raise_for_status()
        serving: list[float] = []
        cpu: list[float] = []
        resumed: list[float] = []
        for number in range(1, restarts + 1):
            seen = len(bench.stats("/r")["arrivals"])  # type: ignore[arg-type]
            while len(bench.stats("/r")["arrivals"]) < seen + 5:  # type: ignore[arg-type]
                time.sleep(0.05)
            node.kill()
            started, healthy = node.start()
            answered = started + healthy
            deadline = time.monotonic() + 60
            later: list[float] = []
            while not later and time.monotonic() < deadline:
                later = [t for t in bench.stats("/r")["arrivals"] if t > started]  # type: ignore[attr-defined]
                time.sleep(0.002)
            if not later:
                raise SystemExit(f"restart {number}: no task dispatched within 60 s")
            serving.append(healthy)
            cpu.append(node.cpu_s)
            resumed.append(min(later) - answered)
            print(
                f"restart {number:>2}: /healthz after {healthy:6.3f} s ({node.cpu_s:.2f} s CPU);"
                f" next dispatch {resumed[-1] * 1000:+8.1f} ms after it"
            )
        print()
        report("start → /healthz", serving, f"{restarts} restarts")
        report("  server CPU until then", cpu, "not slowed by the machine's other load")
        report("/healthz → next dispatch", resumed, "goal <= 1 s")
    finally:
        if node.proc is not None and node.proc.poll() is None:
            stop(node.proc)
        stop(sink)


def started_s_ago(pid: int) -> float:
    """How long ago the process started (Linux: /proc/PID/stat's start time since boot)."""
    start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def dispatch_after_child_crash(work: Path, restarts: int) -> None:
    from tests.integration.test_processes import children, tcp_sockets

    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "sink_server.py"), str(sink_port)])
    sink_url = f"http://127.0.0.1:{sink_port}"
    node = Node(f"sqlite:///{work / 'children.db'}")
    node.args += ["--processes", "2"]
    try:
        wait_up(f"{sink_url}/_stats", sink)
        node.start()
        assert node.proc is not None
        bench = Bench(node.url, sink_url)
        queue = bench.queue(rateLimits={"maxTasksDispatchedPerSecond": 50, "maxBurstSize": 1})
        bench.api.post(f"/v2beta2/{queue}:pause", json={}).raise_for_status()
        bench.fill(queue, f"{sink_url}/r", 50 * 12 * (restarts + 2))
        bench.api.post(f"/v2beta2/{queue}:resume", json={}).raise_for_status()
        resumed: list[float] = []
        for number in range(1, restarts + 1):
            owner = None
            while owner is None:
                kids = children(node.proc.pid)
                senders = [
                    kid
                    for kid in kids
                    if len(kids) == 2 and any(r == sink_port for _, r, st in tcp_sockets(kid) if st == "01")
                ]
                if len(senders) == 1 and started_s_ago(senders[0]) > 10.5:
                    owner = senders[0]
                else:
                    time.sleep(0.1)
            os.kill(owner, signal.SIGKILL)
            while owner in children(node.proc.pid):
                time.sleep(0.001)
            dead = time.time()
            deadline = time.monotonic() + 60
            later: list[float] = []
            while not later and time.monotonic() < deadline:
                later = [t for t in bench.stats("/r")["arrivals"] if t > dead + 0.002]  # type: ignore[attr-defined]
                time.sleep(0.002)
            if not later:
                raise SystemExit(f"restart {number}: no task dispatched within 60 s")
            resumed.append(min(later) - dead)
            print(f"restart {number:>2}: next dispatch {resumed[-1]:6.3f} s after the process died")
        print()
        report("child killed → next dispatch", resumed, f"{restarts} restarts; goal <= 1 s")
    finally:
        if node.proc is not None and node.proc.poll() is None:
            stop(node.proc)
        stop(sink)


def serving_with_a_million(url: str, tasks: int, label: str) -> None:
    load(url, tasks)
    node = Node(url)
    serving: list[float] = []
    cpu: list[float] = []
    try:
        _, first = node.start()
        print(f"{label}: first start → /healthz {first:.3f} s")
        for number in range(1, 6):
            node.kill()
            _, healthy = node.start()
            assert node.proc is not None
            rss = memory_kb(node.proc.pid)["VmRSS"] / 1024
            serving.append(healthy)
            cpu.append(node.cpu_s)
            print(
                f"{label}: restart {number} after kill -9 → /healthz {healthy:.3f} s"
                f" ({node.cpu_s:.2f} s CPU; RSS then {rss:.0f} MB)"
            )
        report(f"{label}: restart → /healthz", serving, "goal <= 3 s")
        report(f"{label}:   server CPU until then", cpu, "5 restarts")
    finally:
        if node.proc is not None and node.proc.poll() is None:
            stop(node.proc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--only", choices=["dispatch", "million", "children"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    try:
        if args.only in (None, "dispatch"):
            dispatch_after_restart(work, args.restarts)
        if args.only == "children":
            dispatch_after_child_crash(work, args.restarts)
        if args.only in (None, "million"):
            for kind in args.stores.split(","):
                if kind == "sqlite":
                    serving_with_a_million(f"sqlite:///{work / 'million.db'}", args.tasks, "SQLite")
                elif not postgres_available():
                    print("PostgreSQL: skipped (no initdb on this machine)")
                else:
                    postgres = PostgresServer()
                    try:
                        serving_with_a_million(postgres.new_database(), args.tasks, "PostgreSQL")
                    finally:
                        postgres.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
