"""Where push dispatch may go: never to link-local or cloud metadata addresses, only into
``allowed_target_networks`` when it is set (judged on the address connected to, so neither DNS
nor redirects get around it), and to HTTPS targets whose certificate a trusted CA signed."""

from __future__ import annotations

import http.server
import re
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from googleapiclient.errors import HttpError

from tasksd.model.errors import Code
from tasksd.targets.network import ANY_ADDRESS, TargetNetworks
from tests.integration.certs import TestCa
from tests.integration.conftest import (
    PARENT,
    Server,
    discovery_client,
    refused_start,
    versioned_client,
)
from tests.integration.sink import Answer, Sink

# An attempt that fails is retried only much later, so that its status can be read.
SLOW_RETRY = tasks_v2.RetryConfig(min_backoff={"seconds": 300}, max_backoff={"seconds": 300})

METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data",
    "http://[fd00:ec2::254]/latest/meta-data",
    "http://[::ffff:169.254.169.254]/computeMetadata/v1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://169.254.169.254./",
    "https://169.254.1.1:8443/",
    "http://2852039166/",  # 169.254.169.254 as one number, which resolvers read as an address
    "http://100.100.100.200/latest/meta-data",
]


class Recorder:
    """An HTTP (or, given a server context, HTTPS) handler on ``host`` that answers 200 and
    records the paths it was asked for."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                recorder.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_server(tmp_path: Path, text: str) -> Server:
    config = tmp_path / f"tasksd-{uuid.uuid4().hex[:6]}.yaml"
    config.write_text(text)
    return Server(f"sqlite:///{tmp_path / (config.stem + '.db')}", config=config).start()


def new_queue(client: Any, **fields: Any) -> str:
    name = f"{PARENT}/queues/o-{uuid.uuid4().hex[:10]}"
    client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=name, retry_config=SLOW_RETRY, **fields))
    return name


def add_task(client: Any, queue: str, url: str) -> tasks_v2.Task:
    task: tasks_v2.Task = client.create_task(
        parent=queue, task=tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=url))
    )
    return task


def last_attempt(client: Any, name: str) -> tasks_v2.Attempt:
    """The task's last attempt once it has a response status (FULL view)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        task = client.get_task(request={"name": name, "response_view": tasks_v2.Task.View.FULL})
        if task.last_attempt.response_time:
            attempt: tasks_v2.Attempt = task.last_attempt
            return attempt
        time.sleep(0.05)
    raise AssertionError(f"{name} got no attempt status in time")


def assert_invalid_argument(error: exceptions.GoogleAPICallError, transport: str) -> None:
    assert isinstance(error, exceptions.BadRequest)
    if transport == "grpc":
        assert isinstance(error, exceptions.InvalidArgument)
    else:
        assert error.response.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No allowed_target_networks: any address but the never-allowed ones."""
    server = config_server(tmp_path_factory.mktemp("open"), "locations: [us-central1]\n")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ten_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = config_server(tmp_path_factory.mktemp("ten"), 'allowed_target_networks: ["10.0.0.0/8"]\n')
    yield server
    server.stop()


@pytest.fixture(scope="module")
def loopback_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = config_server(tmp_path_factory.mktemp("lo"), 'allowed_target_networks: ["127.0.0.1/32"]\n')
    yield server
    server.stop()


# -- the rule itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fd00:ec2::254",
        "fe80::1",
        "fe80::1%lo",
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "febf::1",
        "100.100.100.200",
        "64:ff9b::169.254.169.254",
    ],
)
def test_never_allowed_addresses(address: str) -> None:
    assert ANY_ADDRESS.refusal(address) == f"The target address {address} is not allowed by this server."
    assert TargetNetworks.parse(("0.0.0.0/0", "::/0")).refusal(address) is not None


def test_allowed_networks_narrow_targets() -> None:
    rule = TargetNetworks.parse(("10.0.0.0/8", "2001:db8::/32"))
    assert [rule.refusal(a) is None for a in ("10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1")] == [True] * 3
    assert [rule.refusal(a) is None for a in ("127.0.0.1", "11.0.0.1", "::1", "nonsense")] == [False] * 4
    assert ANY_ADDRESS.refusal("127.0.0.1") is None and ANY_ADDRESS.refusal("8.8.8.8") is None
    assert ANY_ADDRESS.literal_refusal("metadata.google.internal") is None  # names: at connection
    assert ANY_ADDRESS.literal_refusal("169.254.43518") is not None  # 169.254.169.254, legacy form
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is not a network")):
        TargetNetworks.parse(("10.0.0.0/33",))


# -- CreateTask refuses URLs naming a refused address ----------------------------------------


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_create_task_refuses_metadata_addresses(open_server: Server, transport: str) -> None:
    client = versioned_client(open_server, "v2", transport)
    queue = new_queue(client)
    for url in METADATA_URLS:
        with pytest.raises(exceptions.GoogleAPICallError) as info:
            add_task(client, queue, url)
        assert_invalid_argument(info.value, transport)
        assert "is not allowed by this server" in info.value.message, url
    assert "169.254.169.254 is not allowed" in _refusal(client, queue, METADATA_URLS[0])
    assert list(client.list_tasks(parent=queue)) == []


def _refusal(client: Any, queue: str, url: str) -> str:
    with pytest.raises(exceptions.BadRequest) as info:
        add_task(client, queue, url)
    return str(info.value.message)


def test_every_version_refuses_metadata_addresses(open_server: Server) -> None:
    v2beta3 = versioned_client(open_server, "v2beta3", "rest")
    queue = new_queue(versioned_client(open_server, "v2", "rest"))
    with pytest.raises(exceptions.BadRequest, match=re.escape("169.254.169.254 is not allowed")):
        v2beta3.create_task(parent=queue, task={"http_request": {"url": "http://169.254.169.254/"}})
    tasks = discovery_client(open_server.url).projects().locations().queues().tasks()
    with pytest.raises(HttpError) as info:
        tasks.create(
            parent=queue, body={"task": {"httpRequest": {"url": "http://[fd00:ec2::254]/"}}}
        ).execute()
    assert info.value.status_code == 400 and "fd00:ec2::254 is not allowed" in info.value.reason
    assert list(v2beta3.list_tasks(parent=queue)) == []


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_create_task_refuses_a_literal_outside_allowed_networks(ten_server: Server, transport: str) -> None:
    client = versioned_client(ten_server, "v2", transport)
    queue = new_queue(client)
    with pytest.raises(exceptions.GoogleAPICallError) as info:
        add_task(client, queue, "http://127.0.0.1:8080/work")
    assert_invalid_argument(info.value, transport)
    assert "127.0.0.1 is not allowed by this server" in info.value.message
    assert list(client.list_tasks(parent=queue)) == []
    assert add_task(client, queue, "http://10.255.0.1/work").name  # inside the networks: accepted


def test_create_task_checks_the_queue_uri_override_host(open_server: Server) -> None:
    client = versioned_client(open_server, "v2", "grpc")
    override = tasks_v2.UriOverride(host="169.254.169.254")
    queue = new_queue(client, http_target=tasks_v2.HttpTarget(uri_override=override))
    with pytest.raises(
        exceptions.InvalidArgument, match=re.escape("uri_override.host: The target address 169.254.169.254")
    ):
        add_task(client, queue, "http://example.com/work")
    assert list(client.list_tasks(parent=queue)) == []


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_urls_that_cannot_be_sent_are_invalid_not_internal(open_server: Server, transport: str) -> None:
    client = versioned_client(open_server, "v2", transport)
    plain = new_queue(client)
    overridden = new_queue(
        client, http_target=tasks_v2.HttpTarget(uri_override=tasks_v2.UriOverride(host="h"))
    )
    broken = new_queue(
        client, http_target=tasks_v2.HttpTarget(uri_override=tasks_v2.UriOverride(host="[::1"))
    )
    cases = [
        (q, url) for q in (plain, overridden) for url in ("http://[::1/", "http://h:99999/", "http://h:x/")
    ]
    for queue, url in [*cases, (broken, "http://example.com/")]:
        with pytest.raises(exceptions.GoogleAPICallError) as info:
            add_task(client, queue, url)
        assert_invalid_argument(info.value, transport)
        assert "valid URL" in info.value.message, (queue, url)
    assert [list(client.list_tasks(parent=q)) for q in (plain, overridden, broken)] == [[], [], []]


# -- attempts: the address connected to ----------------------------------------------------


def test_a_name_resolving_to_a_refused_address_is_not_sent(ten_server: Server, sink: Sink) -> None:
    """localhost resolves to 127.0.0.1, outside 10.0.0.0/8: CreateTask cannot know, the
    attempt connects nowhere and is recorded as PERMISSION_DENIED."""
    client = versioned_client(ten_server, "v2", "rest")
    queue = new_queue(client)
    path = f"/n/{uuid.uuid4().hex[:8]}"
    task = add_task(client, queue, sink.url.replace("127.0.0.1", "localhost") + path)
    attempt = last_attempt(client, task.name)
    assert attempt.response_status.code == Code.PERMISSION_DENIED
    assert attempt.response_status.message == "The target address 127.0.0.1 is not allowed by this server."
    assert sink.on(path) == []


def test_a_redirect_to_a_refused_address_is_not_followed(loopback_server: Server, sink: Sink) -> None:
    """Only 127.0.0.1 is allowed; its handler redirects to 127.0.0.2 (loopback too, with a
    handler of its own listening): the redirect is refused before it connects."""
    other = Recorder("127.0.0.2")
    try:
        client = versioned_client(loopback_server, "v2", "grpc")
        queue = new_queue(client)
        start = f"/r/{uuid.uuid4().hex[:8]}"
        sink.script(start, Answer(302, {"Location": other.url + "/stolen"}))
        task = add_task(client, queue, sink.url + start)
        attempt = last_attempt(client, task.name)
        assert len(sink.on(start)) == 1
        assert attempt.response_status.code == Code.PERMISSION_DENIED
        assert "127.0.0.2 is not allowed" in attempt.response_status.message
        time.sleep(0.2)
        assert other.paths == []
    finally:
        other.close()


def test_a_redirect_to_the_metadata_address_is_not_followed(open_server: Server, sink: Sink) -> None:
    client = versioned_client(open_server, "v2", "rest")
    queue = new_queue(client)
    start, final = f"/r/{uuid.uuid4().hex[:8]}", f"/f/{uuid.uuid4().hex[:8]}"
    sink.script(start, Answer(302, {"Location": "http://169.254.169.254/computeMetadata/v1/"}))
    task = add_task(client, queue, sink.url + start)
    attempt = last_attempt(client, task.name)
    assert attempt.response_status.code == Code.PERMISSION_DENIED
    assert (
        attempt.response_status.message == "The target address 169.254.169.254 is not allowed by this server."
    )
    # a redirect to an allowed address is still followed
    sink.script(start + "x", Answer(302, {"Location": sink.url + final}))
    add_task(client, queue, sink.url + start + "x")
    sink.wait(lambda: len(sink.on(final)) == 1)


# -- HTTPS targets: target_ca_file, host names still checked -------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https_sinks(pki: TestCa) -> Iterator[tuple[Recorder, Recorder]]:
    """One HTTPS handler with a certificate for 127.0.0.1 and localhost, one with a certificate
    for another host name; the same CA signed both."""
    good = Recorder(tls=pki.server_context("127.0.0.1", "localhost"))
    other = Recorder(tls=pki.server_context("other.example"))
    yield good, other
    good.close()
    other.close()


def test_target_ca_file_is_trusted_and_host_names_still_checked(
    pki: TestCa, https_sinks: tuple[Recorder, Recorder]
) -> None:
    good, other = https_sinks
    # a relative path is read from the config file's folder
    server = config_server(pki.folder, f"target_ca_file: {pki.cert.name}\n")
    try:
        client = versioned_client(server, "v2", "rest")
        queue = new_queue(client)
        add_task(client, queue, good.url + "/trusted")
        add_task(client, queue, good.url.replace("127.0.0.1", "localhost") + "/by-name")
        wrong = add_task(client, queue, other.url + "/wrong-name")
        attempt = last_attempt(client, wrong.name)
        assert attempt.response_status.code == Code.UNAVAILABLE
        # the CA is trusted (no "unable to get local issuer"), the name is what failed
        assert "IP address mismatch" in attempt.response_status.message
        deadline = time.monotonic() + 20
        while sorted(good.paths) != ["/by-name", "/trusted"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(good.paths) == ["/by-name", "/trusted"]
        assert other.paths == []
    finally:
        server.stop()


def test_without_target_ca_file_the_test_ca_is_not_trusted(
    open_server: Server, https_sinks: tuple[Recorder, Recorder]
) -> None:
    good, _ = https_sinks
    client = versioned_client(open_server, "v2", "grpc")
    queue = new_queue(client)
    task = add_task(client, queue, good.url + "/untrusted")
    attempt = last_attempt(client, task.name)
    assert attempt.response_status.code == Code.UNAVAILABLE
    assert "certificate verify failed: unable to get local issuer" in attempt.response_status.message
    assert "/untrusted" not in good.paths


def test_insecure_skip_target_tls_verify_checks_nothing(
    https_sinks: tuple[Recorder, Recorder], tmp_path: Path
) -> None:
    _, other = https_sinks
    server = config_server(tmp_path, "insecure_skip_target_tls_verify: true\n")
    try:
        client = versioned_client(server, "v2", "rest")
        add_task(client, new_queue(client), other.url + "/anything-goes")
        deadline = time.monotonic() + 20
        while "/anything-goes" not in other.paths and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "/anything-goes" in other.paths
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["missing", "not-pem", "directory"])
def test_an_unusable_target_ca_file_stops_the_server(tmp_path: Path, kind: str) -> None:
    path = {"missing": tmp_path / "nowhere.pem", "not-pem": tmp_path / "junk.pem", "directory": tmp_path}[
        kind
    ]
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    config = tmp_path / "tasksd.yaml"
    config.write_text(f"target_ca_file: {path}\n")
    assert f"target_ca_file '{path}' cannot be used" in refused_start(config)
