"""A node killed with a push attempt in flight sends it again once restarted with the same
settings: at once, not after its old ownership of the queue runs out (an hour here, so a
node that had to wait it out would fail these tests)."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

from tests.integration.conftest import PARENT, Server, gapic_client
from tests.integration.sink import Answer, Sink
from tests.integration.test_processes import children, processes_server, tcp_sockets, wait_until

HOUR_TTL = "queue_ownership_ttl_s: 3600\n"


def held_task(server: Server, sink: Sink) -> tuple[str, str]:
    """(queue, task id) of a push queue's one task, whose attempt the sink holds (it would
    answer after ten minutes; the next attempt it answers at once)."""
    client = gapic_client(server.url)
    queue = f"{PARENT}/queues/held-{uuid.uuid4().hex[:8]}"
    client.create_queue(parent=PARENT, queue={"name": queue, "http_target": {}})
    sink.script("/held", Answer(delay_s=600), Answer(200))
    task = client.create_task(parent=queue, task={"http_request": {"url": f"{sink.url}/held"}})
    sink.wait(lambda: len(sink.on("/held")) == 1, timeout_s=30)
    return queue, task.name.rsplit("/", 1)[1]


def test_a_restarted_node_sends_its_attempt_in_flight_again(tmp_path: Path) -> None:
    config = tmp_path / "tasksd.yaml"
    config.write_text(HOUR_TTL)
    server = Server(f"sqlite:///{tmp_path / 'tasks.db'}", config=config).start()
    sink = Sink()
    try:
        queue, task = held_task(server, sink)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        server.start()
        sink.wait(lambda: len(sink.on("/held")) == 2, timeout_s=60)
        again = sink.on("/held")[1]
        assert again.headers["X-CloudTasks-TaskName"] == task
        assert again.headers["X-CloudTasks-TaskRetryCount"] == "1"  # the second attempt
        client = gapic_client(server.url)
        wait_until(lambda: not list(client.list_tasks(parent=queue)))  # the second attempt succeeded
    finally:
        sink.close()
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def test_a_crashed_process_of_several_is_started_again_and_resends(tmp_path: Path) -> None:
    server = processes_server(tmp_path, HOUR_TTL)
    assert server.proc is not None
    sink = Sink()
    try:
        queue, task = held_task(server, sink)
        sink_port = int(sink.url.rsplit(":", 1)[1])
        [sender] = [
            kid
            for kid in children(server.proc.pid)
            if any(remote == sink_port for _, remote, state in tcp_sockets(kid) if state == "01")
        ]
        os.kill(sender, signal.SIGKILL)
        sink.wait(lambda: len(sink.on("/held")) == 2, timeout_s=60)
        assert sink.on("/held")[1].headers["X-CloudTasks-TaskName"] == task
        wait_until(lambda: len(children(server.proc.pid)) == 2)  # type: ignore[union-attr]
        assert sender not in children(server.proc.pid)
        client = gapic_client(server.url)
        wait_until(lambda: not list(client.list_tasks(parent=queue)))
    finally:
        sink.close()
        if server.proc.poll() is None:
            assert server.stop() == 0
