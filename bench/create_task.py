"""REST CreateTask throughput (durable: SQLite WAL, synchronous=FULL) beside a bare JSON
echo server on the same HTTP stack, driven by wrk in the same run. Two more echoes show what
bounds the ratio: one that also commits each body to SQLite before answering
(bench/durable_log.py), the most any durable server on this stack reaches; and that one also
reading the request and answering the task as protobuf JSON (``echo_server.py --protobuf``),
the most a durable CreateTask on the protobuf messages reaches. The target is measured
against the bare echo. A second tasksd runs with authentication enforced (``auth: {mode:
enforce}``): each request carries the self-signed JWT a google-auth service account key makes,
the principal holds roles/cloudtasks.enqueuer on the project, and the bench prints how much
more server CPU per request that costs (target: at most 10 % more).

    python bench/create_task.py [--duration 10] [--connections 32] [--rounds 2]

Needs wrk (Debian package ``wrk``). Prints each round with the CPU time each server spent per
request (from /proc: the servers are single processes, so a ratio of rates is bounded by the
ratio of these), then the rates and their ratio, and checks that every task a 200
acknowledged is in the store.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from support import cpu_seconds, free_port, start_tasksd, stop, wait_up

BODY = '{"task": {"pullMessage": {"payload": "aGVsbG8gd29ybGQ=", "tag": "bench"}}}'
QUEUE = "projects/bench/locations/us-central1/queues/create"
HERE = Path(__file__).resolve().parent

LUA = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""
AUTH_LUA = LUA + 'wrk.headers["Authorization"] = "Bearer %s"\n'
BENCH_ACCOUNT = "bench@bench.iam.gserviceaccount.com"


def enforced_config(work: Path) -> tuple[Path, str, str]:
    """(config file, a self-signed JWT for CreateTask, one for creating the queue) of a tasksd
    with authentication enforced: the key's account may create tasks, an admin key the queue."""
    import json

    from google.oauth2 import service_account

    from tasksd.auth.keyfile import new_key_file

    tokens = []
    for name, email in (("bench", BENCH_ACCOUNT), ("admin", "admin@bench.iam.gserviceaccount.com")):
        new_key_file(email, "http://127.0.0.1:1/token", str(work / f"{name}.json"))
        key = service_account.Credentials.from_service_account_file(str(work / f"{name}.json"))
        # What the gapic REST transport makes: a JWT with the API as its audience, lasting an hour.
        key._create_self_signed_jwt("https://cloudtasks.googleapis.com/")
        key.refresh(None)
        tokens.append(key.token)
    config = work / "auth.yaml"
    bindings = [
        {
            "project": "bench",
            "role": "roles/cloudtasks.enqueuer",
            "members": [f"serviceAccount:{BENCH_ACCOUNT}"],
        },
        {
            "project": "*",
            "role": "roles/cloudtasks.admin",
            "members": ["serviceAccount:admin@bench.iam.gserviceaccount.com"],
        },
    ]
    auth = {"mode": "enforce", "service_account_keys": ["bench.json", "admin.json"], "bindings": bindings}
    config.write_text(json.dumps({"auth": auth}))
    return config, tokens[0], tokens[1]


def run_wrk(url: str, script: Path, duration: int, connections: int) -> tuple[float, int, int, str]:
    """(requests per second, requests, non-2xx responses, latency line) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    # Lines of wrk's latency distribution; "50%" also ends some "+/- Stdev" columns.
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    latency = f"p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'}"
    return rate, total, int(bad.group(1)) if bad else 0, latency


def report(
    round_number: int, what: str, rate: float, total: int, bad: int, latency: str, cpu_us: float
) -> None:
    print(
        f"round {round_number}  {what:<11} {rate:8.0f} req/s  {cpu_us:4.0f} µs server CPU/request"
        f"  ({total} requests, {bad} errors, {latency})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three echoes and tasksd")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="tasksd-bench-"))
    script = work / "post.lua"
    script.write_text(LUA % BODY)
    echoes = {  # label → echo_server.py options
        "echo": [],
        "echo+fsync": ["--durable", str(work / "floor.db")],
        "+protobuf": ["--durable", str(work / "floor-pb.db"), "--protobuf"],
    }
    ports = {label: free_port() for label in echoes}
    servers = [
        subprocess.Popen([sys.executable, str(HERE / "echo_server.py"), str(ports[label]), *options])
        for label, options in echoes.items()
    ]
    config, token, admin = enforced_config(work)
    auth_script = work / "post-auth.lua"
    auth_script.write_text(AUTH_LUA % (BODY, token))
    tasksd, base = start_tasksd(work)
    enforcing, auth_base = start_tasksd(work, config=config, name="auth")
    try:
        for label, server in zip(echoes, servers, strict=True):
            wait_up(f"http://127.0.0.1:{ports[label]}/", server)
        for url, headers in ((base, {}), (auth_base, {"authorization": f"Bearer {admin}"})):
            httpx.post(
                f"{url}/v2beta2/{QUEUE.rsplit('/queues/', 1)[0]}/queues",
                json={"name": QUEUE, "pullTarget": {}},
                headers=headers,
            ).raise_for_status()
        urls = {label: f"http://127.0.0.1:{port}/" for label, port in ports.items()}
        urls["CreateTask"] = f"{base}/v2beta2/{QUEUE}/tasks"
        urls["+auth"] = f"{auth_base}/v2beta2/{QUEUE}/tasks"
        scripts = dict.fromkeys(urls, script) | {"+auth": auth_script}
        pids = {label: server.pid for label, server in zip(echoes, servers, strict=True)}
        pids["CreateTask"] = tasksd.pid
        pids["+auth"] = enforcing.pid
        rates: dict[str, list[float]] = {label: [] for label in urls}
        cpus: dict[str, list[float]] = {label: [] for label in urls}
        acknowledged = 0
        for round_number in range(1, args.rounds + 1):
            for label, url in urls.items():
                cpu_before = cpu_seconds(pids[label])
                rate, total, bad, latency = run_wrk(url, scripts[label], args.duration, args.connections)
                cpu_us = (cpu_seconds(pids[label]) - cpu_before) / max(total, 1) * 1e6
                rates[label].append(rate)
                cpus[label].append(cpu_us)
                report(round_number, label, rate, total, bad, latency, cpu_us)
                if label == "CreateTask":
                    acknowledged += total - bad
        stats = httpx.get(f"{base}/v2beta2/{QUEUE}", params={"readMask": "stats"}).json()["stats"]
        stored = int(stats.get("tasksCount", 0))
        echo_rate, floor_rate, pb_rate, task_rate, _ = (statistics.mean(r) for r in rates.values())
        cpu = {label: statistics.median(c) for label, c in cpus.items()}
        print()
        print("(rates: means of the rounds; server CPU per request: medians)")
        for label, text in (
            ("echo", "bare JSON echo (uvicorn+httptools+uvloop):"),
            ("echo+fsync", "echo + one durable insert (WAL, FULL):"),
            ("+protobuf", "  + the request and task as protobuf JSON:"),
            ("CreateTask", "tasksd CreateTask, durable (WAL, FULL):"),
            ("+auth", "  with auth enforced (self-signed JWT):"),
        ):
            rate = statistics.mean(rates[label])
            print(f"{text:<43} {rate:9.0f} req/s  {cpu[label]:4.0f} µs CPU/request")
        print(f"ratio:                                      {task_rate / echo_rate:9.1%}   (target >= 50%)")
        print(f"durable echo / echo:                        {floor_rate / echo_rate:9.1%}")
        print(f"durable protobuf echo / echo:               {pb_rate / echo_rate:9.1%}")
        print(f"tasksd / durable protobuf echo:             {task_rate / pb_rate:9.1%}")
        extra = cpu["+auth"] / cpu["CreateTask"] - 1
        print(f"server CPU per request, auth on vs off:     {extra:+9.1%}   (target <= +10%)")
        print(
            f"tasks stored {stored}, tasks acknowledged by wrk >= {acknowledged - args.connections}"
            " (wrk does not count requests still in flight when it stops)"
        )
        if stored < acknowledged:
            raise SystemExit("FAIL: fewer tasks stored than acknowledged")
    finally:
        stop(tasksd, enforcing, *servers)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
