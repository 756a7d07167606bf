"""gRPC CreateTask throughput (durable) measured with h2load, beside a bare grpc.aio server
that echoes the request bytes, in the same run: both rates, the ratio and latencies. A third
server, the echo that also commits each request to SQLite before answering
(bench/durable_log.py), shows the most any durable server on this stack reaches here.

    python bench/grpc_create.py [--requests 20000] [--clients 8] [--streams 16]

Needs h2load (Debian package nghttp2-client). h2load counts HTTP 200s, and gRPC errors come
with HTTP 200 too, so the script checks afterwards that every request created a task.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from google.cloud.tasks_v2.types import cloudtasks
from support import free_port, start_tasksd, stop

HERE = Path(__file__).resolve().parent
PARENT = "projects/bench/locations/us-central1"
QUEUE = f"{PARENT}/queues/grpc-create"
METHOD = "/google.cloud.tasks.v2.CloudTasks/CreateTask"


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: no compression, 4-byte big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


def h2load(
    url: str, body: Path, requests: int, clients: int, streams: int
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, succeeded) of one h2load run (latencies from its request log)."""
    log = body.with_suffix(".log")
    out = subprocess.run(
        [
            "h2load",
            "-n",
            str(requests),
            "-c",
            str(clients),
            "-m",
            str(streams),
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"--log-file={log}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    succeeded = int(re.search(r"(\d+) succeeded", out).group(1))  # type: ignore[union-attr]
    # Each log line: start time (µs since the first request), HTTP status, elapsed time (µs).
    elapsed = sorted(int(line.split()[2]) / 1000 for line in log.read_text().splitlines() if line.strip())
    return rate, statistics.median(elapsed), elapsed[int(len(elapsed) * 0.99) - 1], succeeded


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams per client")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of echo and tasksd")
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("h2load is needed: apt-get install nghttp2-client")
    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    request = cloudtasks.CreateTaskRequest(
        parent=QUEUE, task={"http_request": {"url": "https://example.com/x"}}
    )
    body = work / "create.bin"
    body.write_bytes(grpc_frame(cloudtasks.CreateTaskRequest.serialize(request)))
    echo_port = free_port()
    echo = subprocess.Popen([sys.executable, str(HERE / "grpc_echo_server.py"), str(echo_port)])
    floor_port = free_port()
    floor = subprocess.Popen(
        [sys.executable, str(HERE / "grpc_echo_server.py"), str(floor_port), "--durable", str(work / "f.db")]
    )
    tasksd, base = start_tasksd(work)
    grpc_port = int(re.search(r"--grpc-port', '(\d+)", str(tasksd.args)).group(1))  # type: ignore[union-attr]
    try:
        # A paused queue: the tasks are stored, not dispatched (dispatch has its own bench).
        httpx.post(f"{base}/v2/{PARENT}/queues", json={"name": QUEUE}).raise_for_status()
        httpx.post(f"{base}/v2/{QUEUE}:pause", json={}).raise_for_status()
        echo_url, tasks_url = f"http://127.0.0.1:{echo_port}{METHOD}", f"http://127.0.0.1:{grpc_port}{METHOD}"
        floor_url = f"http://127.0.0.1:{floor_port}{METHOD}"
        for url in (echo_url, floor_url, tasks_url):  # warm them up
            h2load(url, body, 2000, args.clients, args.streams)
        echo_runs: list[float] = []
        floor_runs: list[float] = []
        task_runs: list[float] = []
        servers = (
            ("echo", echo_url, echo_runs),
            ("echo+fsync", floor_url, floor_runs),
            ("CreateTask", tasks_url, task_runs),
        )
        for round_number in range(1, args.rounds + 1):
            for name, url, runs in servers:
                rate, p50, p99, succeeded = h2load(url, body, args.requests, args.clients, args.streams)
                runs.append(rate)
                latency = f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                print(
                    f"round {round_number}  {name:<10} {rate:8.0f} req/s  {latency}  ({succeeded} succeeded)"
                )
        stats = httpx.get(f"{base}/v2beta3/{QUEUE}", params={"readMask": "stats"}).json()["stats"]
        stored = int(stats.get("tasksCount", 0))
        expected = 2000 + args.requests * args.rounds
        echo_rate, rate = statistics.mean(echo_runs), statistics.mean(task_runs)
        floor_rate = statistics.mean(floor_runs)
        print(f"bare grpc.aio echo:           {echo_rate:8.0f} req/s")
        print(f"echo + one durable insert:    {floor_rate:8.0f} req/s (WAL, FULL)")
        print(f"tasksd CreateTask over gRPC:  {rate:8.0f} req/s (durable)")
        load = f"{args.clients} clients x {args.streams} streams"
        print(f"ratio: {rate / echo_rate:.1%} (target >= 75%, p99 <= 25 ms); {load}")
        print(f"durable echo / echo: {floor_rate / echo_rate:.1%}")
        print(f"tasksd / durable echo: {rate / floor_rate:.1%}")
        print(f"tasks stored: {stored} of {expected} CreateTask calls (every call must have created one)")
        if stored != expected:
            raise SystemExit("FAIL: not every CreateTask call created a task")
    finally:
        stop(tasksd, echo, floor)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
