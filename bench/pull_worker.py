"""Pull-queue worker throughput: lease(maxTasks=1000), then acknowledge in HTTP batches of
100 (``POST /batch``, multipart/mixed), against a durable tasksd (SQLite WAL, FULL).

    python bench/pull_worker.py [--tasks 30000] [--workers 1] [--ack-concurrency 10] [--rounds 3]

Fills a pull queue, then runs the worker loop(s) until the queue is empty and prints tasks
acknowledged per second; every task must be acknowledged exactly once. A worker sends the
ten ack batches of one lease together (``--ack-concurrency``), as a worker with a connection
pool would. Note the service's own ceiling: 10 LeaseTasks calls per second per queue, so one
queue gives at most 10 × 1000 tasks per second.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from support import cpu_seconds, start_tasksd, stop

QUEUE = "projects/bench/locations/us-central1/queues/pull"


def batch_body(requests: list[tuple[str, str, dict[str, object]]]) -> tuple[bytes, str]:
    """A multipart/mixed batch of (method, path, JSON body) requests, as Google clients send."""
    boundary = "===============" + uuid.uuid4().hex
    parts = []
    for index, (method, path, body) in enumerate(requests):
        payload = json.dumps(body)
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <bench + {index}>\r\n\r\n{method} {path} HTTP/1.1\r\n"
            f"Content-Type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n{payload}\r\n"
        )
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f'multipart/mixed; boundary="{boundary}"'


def send_batch(client: httpx.Client, requests: list[tuple[str, str, dict[str, object]]]) -> tuple[int, int]:
    """(ok, failed) inner responses of one batch."""
    body, content_type = batch_body(requests)
    reply = client.post("/batch", content=body, headers={"Content-Type": content_type})
    reply.raise_for_status()
    ok = reply.content.count(b"HTTP/1.1 200 OK")
    return ok, len(requests) - ok


def fill(client: httpx.Client, count: int) -> None:
    with ThreadPoolExecutor(4) as pool:
        chunks = [
            [
                (
                    "POST",
                    f"/v2beta2/{QUEUE}/tasks",
                    {"task": {"pullMessage": {"payload": "aGVsbG8=", "tag": "b"}}},
                )
                for _ in range(min(500, count - start))
            ]
            for start in range(0, count, 500)
        ]
        results = list(pool.map(lambda chunk: send_batch(client, chunk), chunks))
    assert sum(failed for _, failed in results) == 0, "some creates failed"


def worker(
    base: str,
    ack_concurrency: int,
    acked: list[str],
    refused: list[int],
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    with httpx.Client(base_url=base, timeout=60) as client, ThreadPoolExecutor(ack_concurrency) as pool:
        while not stop.is_set():
            reply = client.post(
                f"/v2beta2/{QUEUE}/tasks:lease", json={"maxTasks": 1000, "leaseDuration": "600s"}
            )
            if reply.status_code == 429:  # the queue's LeaseTasks limit
                with lock:
                    refused.append(1)
                time.sleep(0.01)
                continue
            reply.raise_for_status()
            leased = reply.json().get("tasks", [])
            if not leased:
                stop.set()
                return
            acks = [
                ("POST", f"/v2beta2/{t['name']}:acknowledge", {"scheduleTime": t["scheduleTime"]})
                for t in leased
            ]
            results = list(
                pool.map(
                    lambda chunk: send_batch(client, chunk),
                    [acks[i : i + 100] for i in range(0, len(acks), 100)],
                )
            )
            if any(failed for _, failed in results):
                raise SystemExit("FAIL: an acknowledgement was refused")
            with lock:
                acked.extend(t["name"] for t in leased)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=30_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ack-concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="fill and drain the queue this many times")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    server, base = start_tasksd(work)
    rates: list[float] = []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            client.post(
                f"/v2beta2/{QUEUE.rsplit('/queues/', 1)[0]}/queues", json={"name": QUEUE, "pullTarget": {}}
            ).raise_for_status()
            for round_number in range(1, args.rounds + 1):
                started = time.perf_counter()
                fill(client, args.tasks)
                filled = time.perf_counter() - started
                time.sleep(1)  # the queue's LeaseTasks bucket refills (10 calls per second)
                acked: list[str] = []
                refused: list[int] = []
                lock, finished = threading.Lock(), threading.Event()
                server_cpu, worker_cpu = cpu_seconds(server.pid), time.process_time()
                started = time.perf_counter()
                threads = [
                    threading.Thread(
                        target=worker, args=(base, args.ack_concurrency, acked, refused, lock, finished)
                    )
                    for _ in range(args.workers)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.perf_counter() - started
                server_us = (cpu_seconds(server.pid) - server_cpu) / args.tasks * 1e6
                worker_us = (time.process_time() - worker_cpu) / args.tasks * 1e6
                assert len(acked) == len(set(acked)) == args.tasks, (len(acked), len(set(acked)))
                left = client.get(f"/v2beta2/{QUEUE}", params={"readMask": "stats"}).json()["stats"]
                assert int(left.get("tasksCount", "0")) == 0, left
                rates.append(len(acked) / elapsed)
                print(
                    f"round {round_number}: filled {args.tasks} in {filled:.1f} s; acknowledged all in "
                    f"{elapsed:.2f} s: {rates[-1]:,.0f} tasks/s; none left, none twice; CPU per task: "
                    f"server {server_us:.0f} µs, worker {worker_us:.0f} µs; "
                    f"{len(refused)} leases refused by the 10/s limit"
                )
        print(f"workers {args.workers}, ack batches of 100 ({args.ack_concurrency} at a time)")
        print(
            f"median of {len(rates)} rounds: {statistics.median(rates):,.0f} tasks/s "
            f"(min {min(rates):,.0f}, max {max(rates):,.0f}; target >= 10,000)"
        )
    finally:
        stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
