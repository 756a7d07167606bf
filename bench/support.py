"""What the benchmarks share: free ports, starting tasksd, waiting for a server, and the
HTTP stack configuration that tasksd uses (so bare servers are measured on the same one)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server for {url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout_s:g} s")


def start_tasksd(
    work: Path, db: str | None = None, config: Path | None = None, name: str = "bench", processes: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    """A durable tasksd (``db``, or the SQLite file ``work/NAME.db``) on free ports, once healthy;
    with ``processes`` server processes (``--processes``)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasksd",
            "serve",
            "--db",
            db or f"sqlite:///{work / f'{name}.db'}",
            "--http-port",
            str(port),
            "--grpc-port",
            str(free_port()),
            "--log-level",
            "warning",
            *(["--config", str(config)] if config is not None else []),
            *(["--processes", str(processes)] if processes > 1 else []),
        ]
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/healthz", proc)
    return proc, base


def serve_on_tasksd_stack(app: Any, port: int, processes: int = 1) -> None:
    """Serve an ASGI app with the uvicorn settings tasksd uses (httptools, uvloop); with
    ``processes`` > 1, in that many forked processes on one port (SO_REUSEPORT, as
    ``tasksd serve --processes``), this one waiting for them and ending them on SIGTERM."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        http="httptools",
        loop="uvloop",
        backlog=4096,
    )
    if processes <= 1:
        uvicorn.Server(config).run()
        return
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)

    def end(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, end)
    for child in children:
        os.waitpid(child, 0)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from /proc's children lists, Linux)."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*/children"):
            try:
                children = task.read_text().split()
            except OSError:  # the thread or process ended meanwhile
                continue
            tree.extend(int(child) for child in children)
        index += 1
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, its live descendants and the children they
    have waited for, from /proc (Linux)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its live descendants (VmRSS from /proc, Linux)."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
