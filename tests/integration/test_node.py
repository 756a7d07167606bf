"""The official Node.js client (@google-cloud/tasks) creates a queue and an HTTP task through
gRPC and through its REST fallback. The test installs the client from the npm registry."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from tests.integration.conftest import Server

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def node_with_client(package: str = "@google-cloud/tasks") -> str:
    """The node command, once the checks' packages (``package`` among them) are installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are needed for this test (apt-get install nodejs npm)"
    if not (NODE_DIR / "node_modules" / package).exists():
        subprocess.run(
            [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return node


def test_node_client_over_grpc_and_rest(server: Server) -> None:
    node = node_with_client()
    queue_id = f"node-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [node, "check.js", str(server.grpc_port), str(server.http_port), queue_id],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for transport in ("grpc", "rest"):
        queue = f"projects/node-check/locations/us-central1/queues/{queue_id}-{transport}"
        assert f"{transport} ok {queue} {queue}/tasks/" in done.stdout, done.stdout
