"""Integration fixtures: real ``tasksd serve`` processes and the official clients."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2beta2
from googleapiclient.discovery import build

from tests.integration.sink import Sink
from tests.postgres import PostgresServer

PROJECT = "test-project"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``tasksd serve`` subprocess on free ports."""

    def __init__(
        self, db: str, config: Path | None = None, extra: list[str] | None = None, ca: Path | None = None
    ) -> None:
        self.db = db
        self.config = config
        self.extra = extra or []
        self.ca = ca
        """The CA of the server's certificate, when its config serves TLS."""
        self.client_cert: tuple[str, str] | None = None
        """(certificate, key) to present, when the server asks clients for certificates."""
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="tasksd-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.http_port}"

    def start(self) -> Server:
        args = [
            sys.executable,
            "-m",
            "tasksd",
            "serve",
            "--db",
            self.db,
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--log-level",
            "warning",
            *self.extra,
        ]
        if self.config is not None:
            args += ["--config", str(self.config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tasksd exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify()).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError("tasksd did not become healthy within 30 s")

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx needs to reach the server: its CA (and the client certificate), or True."""
        if self.ca is None:
            return True
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.client_cert is not None:
            context.load_cert_chain(*self.client_cert)
        return context

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def refused_start(config: Path) -> str:
    """What ``tasksd serve --config CONFIG`` prints when it refuses to start (exit 2, no
    traceback)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasksd",
            "serve",
            "--db",
            "sqlite:///:memory:",
            "--http-port",
            str(free_port()),
            "--grpc-port",
            str(free_port()),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    """A recording HTTP handler for push tasks, one per test module."""
    handler = Sink()
    yield handler
    handler.close()


@pytest.fixture(scope="module")
def dispatching(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """tasksd (SQLite) whose App Engine tasks go to the module's sink."""
    db = tmp_path_factory.mktemp("dispatch") / "tasksd.db"
    server = Server(f"sqlite:///{db}", extra=["--app-engine-url", sink.url]).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Server]:
    """tasksd on each store in turn: the API suite is one suite, run against both."""
    if request.param == "postgres":
        db = request.getfixturevalue("postgres_server").new_database()
    else:
        db = f"sqlite:///{tmp_path_factory.mktemp('db') / 'tasksd.db'}"
    srv = Server(db).start()
    yield srv
    srv.stop()


def discovery_client(url: str) -> Any:
    return build(
        "cloudtasks",
        "v2beta2",
        client_options={"api_endpoint": url},
        credentials=AnonymousCredentials(),
        static_discovery=True,
        cache_discovery=False,
    )


def served_discovery_client(url: str) -> Any:
    """google-api-python-client built from the discovery document tasksd serves, whose
    rootUrl is tasksd itself, so that new_batch_http_request() posts to tasksd's /batch."""
    return build(
        "cloudtasks",
        "v2beta2",
        discoveryServiceUrl=f"{url}/$discovery/rest?version={{apiVersion}}",
        credentials=AnonymousCredentials(),
        static_discovery=False,
        cache_discovery=False,
    )


def gapic_client(url: str) -> tasks_v2beta2.CloudTasksClient:
    return tasks_v2beta2.CloudTasksClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=url),
        credentials=AnonymousCredentials(),
    )


@pytest.fixture(scope="session")
def api(server: Server) -> Any:
    """google-api-python-client, the client seed 000 documents."""
    return discovery_client(server.url)


def gapic_grpc_client(server: Server) -> tasks_v2beta2.CloudTasksClient:
    """google-cloud-tasks v2beta2 over gRPC, on an insecure channel."""
    client: tasks_v2beta2.CloudTasksClient = versioned_client(server, "v2beta2", "grpc")
    return client


def versioned_client(server: Server, version: str, transport: str) -> Any:
    """google-cloud-tasks of an API version (v2, v2beta3, …) over REST or gRPC."""
    import importlib

    module = importlib.import_module(f"google.cloud.tasks_{version}")
    if transport == "rest":
        return module.CloudTasksClient(
            transport="rest",
            client_options=ClientOptions(api_endpoint=server.url),
            credentials=AnonymousCredentials(),
        )
    grpc_transport = importlib.import_module(f"google.cloud.tasks_{version}.services.cloud_tasks.transports")
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return module.CloudTasksClient(transport=grpc_transport.CloudTasksGrpcTransport(channel=channel))


@pytest.fixture(scope="session", params=["rest", "grpc"])
def gapic_v2(server: Server, request: pytest.FixtureRequest) -> Any:
    """google-cloud-tasks v2, once with its REST transport and once over gRPC."""
    return versioned_client(server, "v2", request.param)


@pytest.fixture(scope="session", params=["rest", "grpc"])
def gapic_v2beta3(server: Server, request: pytest.FixtureRequest) -> Any:
    """google-cloud-tasks v2beta3, once with its REST transport and once over gRPC."""
    return versioned_client(server, "v2beta3", request.param)


@pytest.fixture(scope="session", params=["rest", "grpc"])
def gapic(server: Server, request: pytest.FixtureRequest) -> tasks_v2beta2.CloudTasksClient:
    """google-cloud-tasks, once with its REST transport and once over gRPC."""
    return gapic_client(server.url) if request.param == "rest" else gapic_grpc_client(server)


@pytest.fixture
def queue_name() -> str:
    return f"{PARENT}/queues/q-{uuid.uuid4().hex[:12]}"


def lease_concurrently(urls: list[str], queue: str, workers: int, total: int, batch: int) -> list[list[str]]:
    """Run ``workers`` threads, worker i leasing through ``urls[i % len(urls)]`` (google-cloud-tasks,
    REST) and acknowledging what it got, until ``total`` tasks were received; what each received."""
    from google.api_core import exceptions
    from google.protobuf import duration_pb2

    received: list[list[str]] = [[] for _ in range(workers)]
    done = threading.Event()

    def worker(index: int) -> None:
        client = gapic_client(urls[index % len(urls)])
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            try:
                leased = client.lease_tasks(
                    request={
                        "parent": queue,
                        "max_tasks": batch,
                        "lease_duration": duration_pb2.Duration(seconds=300),
                    }
                )
            except exceptions.TooManyRequests:
                time.sleep(0.05)
                continue
            if not leased.tasks:
                if sum(map(len, received)) >= total:
                    done.set()
                time.sleep(0.05)
                continue
            received[index].extend(t.name for t in leased.tasks)
            for task in leased.tasks:
                client.acknowledge_task(request={"name": task.name, "schedule_time": task.schedule_time})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return received


def create_queue(api: Any, name: str, target: str) -> str:
    api.projects().locations().queues().create(parent=PARENT, body={"name": name, target: {}}).execute()
    return name


@pytest.fixture
def pull_queue(api: Any, queue_name: str) -> str:
    return create_queue(api, queue_name, "pullTarget")


@pytest.fixture
def push_queue(api: Any, queue_name: str) -> str:
    return create_queue(api, queue_name, "appEngineHttpTarget")
