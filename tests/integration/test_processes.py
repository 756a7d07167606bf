"""``tasksd serve --processes 2`` on one SQLite file: both processes serve both ports, what
one creates the other answers, a push queue dispatches each task once, leases are never
shared, and SIGTERM stops them all cleanly. Settings that cannot be shared are refused."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from google.api_core import exceptions

from tests.integration.conftest import (
    PARENT,
    Server,
    free_port,
    gapic_client,
    gapic_grpc_client,
    lease_concurrently,
)
from tests.integration.sink import Sink


def wait_until(test: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def tcp_sockets(pid: int) -> list[tuple[int, int, str]]:
    """(local port, remote port, state) of each TCP socket ``pid`` holds; state "0A" is LISTEN
    and "01" ESTABLISHED, as /proc/net/tcp spells them."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
                found.append((local, remote, fields[3]))
    return found


def listening(pid: int) -> set[int]:
    return {local for local, _, state in tcp_sockets(pid) if state == "0A"}


def processes_server(tmp_path: Path, config: str = "", processes: int = 2) -> Server:
    """``tasksd serve --processes N`` on a fresh SQLite file, once every process listens on both
    ports (the parent answers /healthz as soon as the first one does)."""
    path = tmp_path / "tasksd.yaml"
    path.write_text(config or "{}\n")
    server = Server(f"sqlite:///{tmp_path / 'tasks.db'}", config=path, extra=["--processes", str(processes)])
    server.start()
    assert server.proc is not None
    wait_until(
        lambda: (
            len(kids := children(server.proc.pid)) == processes  # type: ignore[union-attr]
            and all({server.http_port, server.grpc_port} <= listening(kid) for kid in kids)
        ),
        timeout_s=30,
    )
    return server


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Server]:
    server = processes_server(tmp_path)
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


def owners(server: Server) -> list[tuple[str, str]]:
    """(queue id, node) of every queue's dispatch ownership in the server's SQLite file."""
    with sqlite3.connect(server.db.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(
            "SELECT q.queue_id, o.node FROM queue_owners o JOIN queues q ON q.id = o.queue"
        ).fetchall()
    return [(str(queue), str(node)) for queue, node in rows]


def test_each_process_answers_what_another_created(two: Server) -> None:
    assert two.proc is not None
    queue = f"{PARENT}/queues/shared-{uuid.uuid4().hex[:8]}"
    gapic_client(two.url).create_queue(parent=PARENT, queue={"name": queue, "pull_target": {}})
    created = gapic_client(two.url).create_task(parent=queue, task={"pull_message": {"payload": b"x"}})
    # REST clients, each on a connection of its own, spread by the kernel over both processes
    # (32: all on one process is a chance of 2**-31). gRPC channels to one target share their
    # connection in a process, so the gRPC clients count as one.
    clients = [gapic_client(two.url) for _ in range(32)] + [gapic_grpc_client(two) for _ in range(4)]
    for client in clients:
        assert client.get_task(name=created.name).name == created.name
        assert [q.name for q in client.list_queues(parent=PARENT) if q.name == queue] == [queue]
    clients[0].pause_queue(name=queue)  # a change of the queue: seen by every process at once
    assert {client.get_queue(name=queue).state.name for client in clients} == {"PAUSED"}
    clients[-1].delete_task(name=created.name)
    for client in clients:
        with pytest.raises(exceptions.NotFound):
            client.get_task(name=created.name)
    served = [
        {local for local, _, state in tcp_sockets(kid) if state == "01"} & {two.http_port, two.grpc_port}
        for kid in children(two.proc.pid)
    ]
    assert all(served), served  # each process holds some of the clients' connections


def test_a_push_queue_dispatches_each_task_once(two: Server) -> None:
    sink = Sink()
    try:
        client = gapic_client(two.url)
        queue = f"{PARENT}/queues/once-{uuid.uuid4().hex[:8]}"
        client.create_queue(
            parent=PARENT,
            queue={
                "name": queue,
                "http_target": {},
                "rate_limits": {"max_tasks_dispatched_per_second": 500, "max_concurrent_tasks": 50},
            },
        )
        clients = [gapic_client(two.url) for _ in range(4)] + [gapic_grpc_client(two) for _ in range(4)]
        for i in range(200):
            task = {"name": f"{queue}/tasks/t{i}", "http_request": {"url": f"{sink.url}/once"}}
            clients[i % len(clients)].create_task(parent=queue, task=task)
        expected = {f"t{i}" for i in range(200)}
        sink.wait(lambda: {r.headers["X-CloudTasks-TaskName"] for r in sink.on("/once")} >= expected, 60)
        # A task is deleted once its successful attempt is recorded: none left, none sent again.
        sink.wait(lambda: not list(client.list_tasks(parent=queue)), 30)
        counts = Counter(r.headers["X-CloudTasks-TaskName"] for r in sink.on("/once"))
        assert set(counts) == expected and set(counts.values()) == {1}
        port = two.http_port
        assert {node for queue_id, node in owners(two) if queue_id == queue.rsplit("/", 1)[1]} <= {
            f"{socket.gethostname()}:{port}/0",
            f"{socket.gethostname()}:{port}/1",
        }
    finally:
        sink.close()


def test_a_push_task_created_through_either_process_is_sent_at_once(two: Server) -> None:
    """The process that takes a CreateTask call for a queue another process dispatches tells
    that one (engine/siblings.py), which sends the task at once, not at its next poll (each
    second). The tasks come one by one with the queue idle between them, over new connections
    that the kernel spreads over both processes: without the word, about half of them would
    wait for the poll, 0.5 s on average."""
    sink = Sink()
    try:
        client = gapic_client(two.url)
        queue = f"{PARENT}/queues/told-{uuid.uuid4().hex[:8]}"
        client.create_queue(parent=PARENT, queue={"name": queue, "http_target": {}})
        wait_until(lambda: any(q == queue.rsplit("/", 1)[1] for q, _ in owners(two)), 30)
        created: dict[str, float] = {}
        for i in range(24):
            fresh = gapic_client(two.url)  # a new connection
            created[f"t{i}"] = time.monotonic()
            fresh.create_task(
                parent=queue,
                task={"name": f"{queue}/tasks/t{i}", "http_request": {"url": f"{sink.url}/told"}},
            )
            sink.wait(lambda i=i: len(sink.on("/told")) > i, 30)
            time.sleep(0.15)
        lags = sorted(r.at - created[r.headers["X-CloudTasks-TaskName"]] for r in sink.on("/told"))
        assert len(lags) == 24
        assert lags[int(len(lags) * 0.9)] < 0.25, lags
    finally:
        sink.close()


def test_leases_through_both_processes_are_never_shared(two: Server) -> None:
    queue = f"{PARENT}/queues/pull-{uuid.uuid4().hex[:8]}"
    client = gapic_client(two.url)
    client.create_queue(parent=PARENT, queue={"name": queue, "pull_target": {}})
    for i in range(600):
        client.create_task(parent=queue, task={"name": f"{queue}/tasks/p{i}", "pull_message": {}})
    received = lease_concurrently([two.url], queue, workers=12, total=600, batch=20)
    everything = [name for names in received for name in names]
    assert len(everything) == len(set(everything)) == 600


def test_writers_take_turns_on_the_lock_file_beside_the_database(two: Server) -> None:
    """Each process's writer holds an flock on ``PATH-lock`` for the whole of its transaction
    (waiting in the kernel, not in SQLite's polling busy handler): while another holder has it,
    no write of either process goes through, and each goes on once it is let go."""
    client = gapic_client(two.url)
    queue = f"{PARENT}/queues/turns-{uuid.uuid4().hex[:8]}"
    client.create_queue(parent=PARENT, queue={"name": queue, "pull_target": {}})
    lock = os.open(two.db.removeprefix("sqlite:///") + "-lock", os.O_RDWR)
    clients = [gapic_client(two.url) for _ in range(8)]  # connections spread over both processes
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with ThreadPoolExecutor(len(clients)) as pool:
            calls = [
                pool.submit(
                    c.create_task, parent=queue, task={"name": f"{queue}/tasks/w{i}", "pull_message": {}}
                )
                for i, c in enumerate(clients)
            ]
            assert not wait([*calls], timeout=1.0).done  # every write waits for the lock
            assert client.get_queue(name=queue).name == queue  # reads do not
            fcntl.flock(lock, fcntl.LOCK_UN)
            created = sorted(call.result(timeout=30).name.rsplit("/", 1)[1] for call in calls)
    finally:
        os.close(lock)
    assert created == sorted(f"w{i}" for i in range(len(clients)))
    assert len(list(client.list_tasks(parent=queue))) == len(clients)


def test_sigterm_stops_every_process_and_releases_their_queues(two: Server) -> None:
    assert two.proc is not None
    client = gapic_client(two.url)
    queue = f"{PARENT}/queues/stop-{uuid.uuid4().hex[:8]}"
    client.create_queue(parent=PARENT, queue={"name": queue, "http_target": {}})
    wait_until(lambda: any(q == queue.rsplit("/", 1)[1] for q, _ in owners(two)), 30)
    kids = children(two.proc.pid)
    assert two.stop(signal.SIGTERM) == 0
    assert not [kid for kid in kids if Path(f"/proc/{kid}").exists()]
    assert owners(two) == []  # handed back on the way out
    output = two.output()
    assert "Traceback" not in output, output


def refused(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tasksd", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize("db", ["sqlite:///:memory:", "memory://"])
def test_stores_in_memory_cannot_be_shared(db: str) -> None:
    ports = ["--http-port", str(free_port()), "--grpc-port", str(free_port())]
    assert "needs a store that processes share" in refused(["--db", db, "--processes", "2", *ports])


def test_a_second_tasksd_on_the_same_ports_or_node_id_is_refused(two: Server, tmp_path: Path) -> None:
    ports = ["--http-port", str(two.http_port), "--grpc-port", str(two.grpc_port)]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    message = refused(["--db", other, "--processes", "2", *ports])
    assert f"port 127.0.0.1:{two.http_port} is in use by another tasksd process" in message
    config = tmp_path / "same-id.yaml"
    config.write_text(f"node_id: {socket.gethostname()}:{two.http_port}/1\n")
    ports = ["--http-port", str(free_port()), "--grpc-port", str(free_port())]
    message = refused(["--db", two.db, "--config", str(config), *ports])
    assert f"node id '{socket.gethostname()}:{two.http_port}/1'" in message
    assert "in use by another tasksd process on this machine" in message


@pytest.mark.parametrize("value", ["0", "two", "true", "65"])
def test_a_bad_processes_value_is_refused(value: str, tmp_path: Path) -> None:
    config = tmp_path / "tasksd.yaml"
    config.write_text(f"processes: {value}\n")
    ports = ["--http-port", str(free_port()), "--grpc-port", str(free_port())]
    message = refused(["--db", f"sqlite:///{tmp_path / 'x.db'}", "--config", str(config), *ports])
    assert "processes must be a whole number from 1 to 64" in message
    message = refused(["--db", f"sqlite:///{tmp_path / 'x.db'}", "--processes", value, *ports])
    assert "Invalid value for '--processes'" in message


def test_several_processes_need_fixed_ports(tmp_path: Path) -> None:
    args = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--processes", "2", "--http-port", "0"]
    assert "needs fixed HTTP and gRPC ports" in refused(args)


def test_the_older_of_two_nodes_with_one_id_on_two_machines_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "twin.yaml"
    config.write_text("node_id: twin\n")
    db = f"sqlite:///{tmp_path / 'tasks.db'}"
    older = Server(db, config=config).start()
    other_machine = tmp_path / "other-tmp"  # another machine: the lock files are not shared
    other_machine.mkdir()
    monkeypatch.setenv("TMPDIR", str(other_machine))
    newer = Server(db, config=config).start()
    try:
        assert older.proc is not None and older.proc.wait(timeout=30) == 2
        assert "node id 'twin' is in use by another process" in older.output()
        output = older.output()
        assert "Traceback" not in output, output
        assert newer.proc is not None and newer.proc.poll() is None
        gapic_client(newer.url).list_queues(parent=PARENT)
    finally:
        newer.stop()


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_grpc_port_in_use_is_refused(processes: str, tmp_path: Path) -> None:
    with socket.socket() as taken:  # bound without SO_REUSEPORT: nobody can share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--processes", processes]
        message = refused([*args, "--http-port", str(free_port()), "--grpc-port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port} (gRPC)" in message
