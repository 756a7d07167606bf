"""``tasksd queues …`` / ``tasksd tasks …`` end to end against a real tasksd, over REST and
gRPC endpoints: every command, its output in json, yaml and table, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from tasksd.auth.keyfile import new_key_file
from tasksd.cli import main
from tests.integration.conftest import PROJECT, Server, free_port
from tests.integration.sink import Sink

LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
CLEAN_ENV: dict[str, str | None] = {
    "TASKSD_ENDPOINT": None,
    "TASKSD_PROJECT": PROJECT,
    "TASKSD_LOCATION": None,
    "TASKSD_TOKEN": None,
    "TASKSD_API_KEY": None,
    "GOOGLE_APPLICATION_CREDENTIALS": None,
}


@pytest.fixture(scope="module")
def cli_server(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("cli") / "tasksd.db"
    server = Server(f"sqlite:///{db}", extra=["--app-engine-url", sink.url]).start()
    yield server
    server.stop()


@pytest.fixture(params=["rest", "grpc"])
def endpoint(cli_server: Server, request: pytest.FixtureRequest) -> str:
    if request.param == "rest":
        return cli_server.url
    return f"grpc://127.0.0.1:{cli_server.grpc_port}"


def cli(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
    """The command through click, as ``tasksd ARGS`` runs it; a Python exception fails the test
    (the CLI must never show a traceback)."""
    result = CliRunner().invoke(main, list(args), input=input, env={**CLEAN_ENV, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
    result = cli(*args, input=input, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def as_json(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return json.loads(ok(*args, "--format", "json", env=env).stdout)


def table(text: str) -> list[list[str]]:
    """A gcloud-style table as rows of cells (columns are separated by two or more spaces)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def fields(text: str) -> dict[str, str]:
    """A FIELD/VALUE table as a mapping."""
    rows = table(text)
    assert rows[0] == ["FIELD", "VALUE"]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows[1:]}


def new_id(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wire(server: Server, path: str) -> Any:
    """The resource as the server's REST JSON has it, e.g. ``wire(server, "v2/projects/…")``."""
    response = httpx.get(f"{server.url}/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def test_queue_lifecycle_in_every_format(cli_server: Server, endpoint: str) -> None:
    queue = new_id()
    name = f"{PARENT}/queues/{queue}"
    created = as_json(
        "queues", "create", queue, "--endpoint", endpoint,
        "--max-attempts", "5", "--min-backoff", "1s", "--max-backoff", "5m", "--max-doublings", "3",
        "--max-retry-duration", "1h", "--max-dispatches-per-second", "4", "--max-concurrent-dispatches", "2",
        "--routing-override", "service:worker,version:v1", "--log-sampling-ratio", "0.5",
    )  # fmt: skip
    assert created["name"] == name
    assert created["retryConfig"] == {
        "maxAttempts": 5,
        "minBackoff": "1s",
        "maxBackoff": "300s",
        "maxDoublings": 3,
        "maxRetryDuration": "3600s",
    }
    assert created["rateLimits"]["maxDispatchesPerSecond"] == 4
    assert created["rateLimits"]["maxConcurrentDispatches"] == 2
    assert created["appEngineRoutingOverride"]["service"] == "worker"
    assert created["stackdriverLoggingConfig"] == {"samplingRatio": 0.5}

    # describe: json is v2 REST's view, yaml the same data, table its dotted fields
    described = as_json("queues", "describe", queue, "--endpoint", endpoint)
    assert described == wire(cli_server, f"v2/{name}")
    assert yaml.safe_load(
        ok("queues", "describe", queue, "--endpoint", endpoint, "--format", "yaml").stdout
    ) == (described)
    shown = fields(ok("queues", "describe", queue, "--endpoint", endpoint).stdout)
    assert shown["name"] == name
    assert shown["retryConfig.maxAttempts"] == "5"
    assert shown["appEngineRoutingOverride.service"] == "worker"

    # update sends a mask of exactly the flags given
    updated = as_json(
        "queues", "update", queue, "--endpoint", endpoint, "--max-attempts", "unlimited",
        "--max-dispatches-per-second", "7", "--clear-routing-override",
    )  # fmt: skip
    assert updated["retryConfig"]["maxAttempts"] == -1
    assert updated["rateLimits"]["maxDispatchesPerSecond"] == 7
    assert "appEngineRoutingOverride" not in updated
    assert updated["retryConfig"]["minBackoff"] == "1s"
    assert updated["rateLimits"]["maxConcurrentDispatches"] == 2
    assert updated["stackdriverLoggingConfig"] == {"samplingRatio": 0.5}

    # list: a JSON list, a YAML list, and gcloud's columns
    listed = as_json("queues", "list", "--endpoint", endpoint)
    assert isinstance(listed, list)
    assert [q for q in listed if q["name"] == name] == [updated]
    assert [q for q in listed if "pullTarget" not in q] == wire(cli_server, f"v2/{PARENT}/queues")["queues"]
    assert name in [
        q["name"]
        for q in yaml.safe_load(ok("queues", "list", "--endpoint", endpoint, "--format", "yaml").stdout)
    ]
    rows = table(ok("queues", "list", "--endpoint", endpoint).stdout)
    assert rows[0] == ["QUEUE_NAME", "TYPE", "STATE", "MAX_NUM_OF_TASKS", "MAX_RATE (/sec)", "MAX_ATTEMPTS"]
    assert [queue, "push", "RUNNING", "2", "7.0", "unlimited"] in rows
    assert len(as_json("queues", "list", "--endpoint", endpoint, "--limit", "1", "--page-size", "1")) == 1

    paused = ok("queues", "pause", queue, "--endpoint", endpoint)
    assert fields(paused.stdout)["state"] == "PAUSED"
    assert f"Paused queue [{name}]." in paused.stderr
    assert as_json("queues", "resume", queue, "--endpoint", endpoint)["state"] == "RUNNING"

    # purge and delete ask first; with no answer (stdin not a terminal) they fail clearly
    refused = cli("queues", "purge", queue, "--endpoint", endpoint)
    assert refused.exit_code == 1
    assert "pass --quiet" in refused.stderr
    declined = cli("queues", "delete", queue, "--endpoint", endpoint, input="n\n")
    assert declined.exit_code == 1
    assert "Aborted" in declined.stderr
    purged = yaml.safe_load(
        ok("queues", "purge", queue, "--endpoint", endpoint, "--quiet", "--format", "yaml").stdout
    )
    assert "purgeTime" in purged
    deleted = ok("queues", "delete", queue, "--endpoint", endpoint, input="y\n")
    assert f"Deleted queue [{name}]." in deleted.stderr
    gone = cli("queues", "describe", queue, "--endpoint", endpoint)
    assert gone.exit_code == 1
    assert gone.stderr.startswith("ERROR: (tasksd) NOT_FOUND: ")
    again = cli("queues", "delete", queue, "--endpoint", endpoint, "-q")
    assert again.exit_code == 1
    assert "ERROR: (tasksd) NOT_FOUND: Requested entity was not found." in again.stderr


def test_http_target_overrides(cli_server: Server, endpoint: str) -> None:
    queue = new_id()
    created = yaml.safe_load(
        ok(
            "queues", "create", queue, "--endpoint", endpoint, "--format", "yaml",
            "--http-uri-override", "scheme:https,host:example.com,port:8443,path:/p,query:a=b,mode:always",
            "--http-method-override", "put", "--http-header-override", "X-One:1",
            "--http-header-override", "X-Two: a:b",
            "--http-oidc-service-account-email-override", f"sa@{PROJECT}.iam.gserviceaccount.com",
            "--http-oidc-token-audience-override", "aud-1",
        ).stdout
    )  # fmt: skip
    target = created["httpTarget"]
    assert target["uriOverride"] == {
        "scheme": "HTTPS",
        "host": "example.com",
        "port": "8443",
        "pathOverride": {"path": "/p"},
        "queryOverride": {"queryParams": "a=b"},
        "uriOverrideEnforceMode": "ALWAYS",
    }
    assert target["httpMethod"] == "PUT"
    assert target["headerOverrides"] == [
        {"header": {"key": "X-One", "value": "1"}},
        {"header": {"key": "X-Two", "value": "a:b"}},
    ]
    updated = as_json(
        "queues", "update", queue, "--endpoint", endpoint, "--http-oidc-token-audience-override", "aud-2"
    )
    assert updated["httpTarget"]["oidcToken"] == {
        "serviceAccountEmail": f"sa@{PROJECT}.iam.gserviceaccount.com",
        "audience": "aud-2",
    }
    assert updated["httpTarget"]["uriOverride"] == target["uriOverride"]
    ok("queues", "delete", queue, "--endpoint", endpoint, "--quiet")


def test_push_tasks(cli_server: Server, sink: Sink, endpoint: str, tmp_path: Path) -> None:
    queue = new_id()
    ok("queues", "create", queue, "--endpoint", endpoint)
    ok("queues", "pause", queue, "--endpoint", endpoint)
    body = tmp_path / "body.json"
    body.write_bytes(b'{"n": 1}')
    path = f"/cli/{queue}"
    created = as_json(
        "tasks", "create-http-task", "t1", "--queue", queue, "--endpoint", endpoint,
        "--url", f"{sink.url}{path}", "--method", "put", "--header", "Content-Type:application/json",
        "--header", "X-Trace: a:b", "--body-file", str(body),
        "--oidc-service-account-email", f"sa@{PROJECT}.iam.gserviceaccount.com",
        "--oidc-token-audience", "aud",
    )  # fmt: skip
    name = f"{PARENT}/queues/{queue}/tasks/t1"
    assert created["name"] == name
    assert created["httpRequest"]["httpMethod"] == "PUT"
    assert created["httpRequest"]["headers"]["X-Trace"] == "a:b"
    assert created["httpRequest"]["oidcToken"] == {
        "serviceAccountEmail": f"sa@{PROJECT}.iam.gserviceaccount.com",
        "audience": "aud",
    }
    engine = as_json(
        "tasks", "create-app-engine-task", "--queue", f"{PARENT}/queues/{queue}", "--endpoint", endpoint,
        "--relative-uri", "/work?x=1", "--routing", "service:svc", "--body-content", "hello",
        "--schedule-time", "2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert engine["appEngineHttpRequest"]["relativeUri"] == "/work?x=1"
    assert engine["appEngineHttpRequest"]["appEngineRouting"]["service"] == "svc"

    full = as_json(
        "tasks", "describe", "t1", "--queue", queue, "--endpoint", endpoint, "--response-view", "full"
    )
    assert full == wire(cli_server, f"v2/{name}?responseView=FULL")
    assert full["httpRequest"]["body"] == "eyJuIjogMX0="
    assert yaml.safe_load(
        ok("tasks", "describe", name, "--endpoint", endpoint, "--format", "yaml").stdout
    ) == wire(cli_server, f"v2/{name}")
    assert fields(ok("tasks", "describe", name, "--endpoint", endpoint).stdout)["httpRequest.url"] == (
        f"{sink.url}{path}"
    )

    listed = as_json("tasks", "list", "--queue", queue, "--endpoint", endpoint)
    assert sorted(t["name"] for t in listed) == sorted([name, engine["name"]])
    assert listed == wire(cli_server, f"v2/{PARENT}/queues/{queue}/tasks")["tasks"]
    assert (
        len(
            yaml.safe_load(
                ok("tasks", "list", "--queue", queue, "--endpoint", endpoint, "--format", "yaml").stdout
            )
        )
        == 2
    )
    rows = table(ok("tasks", "list", "--queue", queue, "--endpoint", endpoint).stdout)
    assert rows[0][:6] == [
        "TASK_NAME",
        "TYPE",
        "CREATE_TIME",
        "SCHEDULE_TIME",
        "DISPATCH_ATTEMPTS",
        "RESPONSE_ATTEMPTS",
    ]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["t1"][1] == "http"
    assert by_name[engine["name"].rsplit("/", 1)[1]][1] == "app-engine"
    assert len(as_json("tasks", "list", "--queue", queue, "--endpoint", endpoint, "--limit", "1")) == 1

    # run dispatches at once, even from a paused queue
    ran = ok("tasks", "run", "t1", "--queue", queue, "--endpoint", endpoint, "--format", "json")
    assert json.loads(ran.stdout)["name"] == name
    assert f"Ran task [{name}]." in ran.stderr
    sink.wait(lambda: len(sink.on(path)) == 1)
    received = sink.on(path)[0]
    assert received.method == "PUT"
    assert received.body == b'{"n": 1}'
    assert received.headers["X-Trace"] == "a:b"

    deleted = ok("tasks", "delete", engine["name"], "--endpoint", endpoint)
    assert "Deleted task" in deleted.stderr
    missing = cli("tasks", "delete", engine["name"], "--endpoint", endpoint)
    assert missing.exit_code == 1
    assert missing.stderr.startswith("ERROR: (tasksd) NOT_FOUND: ")
    ok("queues", "delete", queue, "--endpoint", endpoint, "--quiet")


def test_pull_queue_lease_and_acknowledge(cli_server: Server, endpoint: str) -> None:
    queue = new_id("pull")
    name = f"{PARENT}/queues/{queue}"
    created = as_json(
        "queues", "create", queue, "--type", "pull", "--endpoint", endpoint, "--max-attempts", "4"
    )
    assert created["pullTarget"] == {}
    assert created["retryConfig"]["maxAttempts"] == 4
    # shown as v2beta2 REST shows a pull queue, in describe and list
    assert as_json("queues", "describe", queue, "--endpoint", endpoint) == wire(cli_server, f"v2beta2/{name}")
    rows = table(ok("queues", "list", "--endpoint", endpoint).stdout)
    assert [queue, "pull", "RUNNING", "unlimited", "500.0", "4"] in rows
    assert as_json("queues", "update", queue, "--endpoint", endpoint, "--max-attempts", "6")[
        "retryConfig"
    ] == {"maxAttempts": 6}
    unlimited = as_json("queues", "update", queue, "--endpoint", endpoint, "--max-attempts", "unlimited")
    assert unlimited["retryConfig"] == {"unlimitedAttempts": True}
    assert [queue, "pull", "RUNNING", "unlimited", "500.0", "unlimited"] in table(
        ok("queues", "list", "--endpoint", endpoint).stdout
    )
    assert as_json("queues", "update", queue, "--endpoint", endpoint, "--max-attempts", "6")[
        "retryConfig"
    ] == {"maxAttempts": 6}
    paused = as_json("queues", "pause", queue, "--endpoint", endpoint)
    assert (paused["state"], "pullTarget" in paused) == ("PAUSED", True)
    assert as_json("queues", "resume", queue, "--endpoint", endpoint)["state"] == "RUNNING"
    refused = cli("queues", "update", queue, "--endpoint", endpoint, "--max-doublings", "2")
    assert refused.exit_code == 2
    assert "does not apply to pull queues" in refused.stderr

    task = as_json(
        "tasks", "create-pull-task", "job-1", "--queue", queue, "--endpoint", endpoint,
        "--payload-content", "work item", "--tag", "red",
    )  # fmt: skip
    assert task["name"] == f"{name}/tasks/job-1"
    full = as_json(
        "tasks", "describe", "job-1", "--queue", queue, "--endpoint", endpoint, "--response-view", "full"
    )
    assert full["pullMessage"] == {"payload": "d29yayBpdGVt", "tag": "red"}
    ok("tasks", "create-pull-task", "job-2", "--queue", queue, "--endpoint", endpoint, "--tag", "blue")
    pull_tasks = as_json("tasks", "list", "--queue", queue, "--endpoint", endpoint)
    assert pull_tasks == wire(cli_server, f"v2beta2/{name}/tasks")["tasks"]
    assert {t["name"] for t in pull_tasks} == {
        f"{name}/tasks/job-1",
        f"{name}/tasks/job-2",
    }

    leased = as_json(
        "tasks", "lease", "--queue", queue, "--endpoint", endpoint, "--lease-duration", "1m",
        "--tag", "red", "--response-view", "full",
    )  # fmt: skip
    assert [t["name"] for t in leased] == [f"{name}/tasks/job-1"]
    assert leased[0]["pullMessage"]["payload"] == "d29yayBpdGVt"
    held = leased[0]["scheduleTime"]

    renewed = as_json(
        "tasks", "renew-lease", "job-1", "--queue", queue, "--endpoint", endpoint,
        "--schedule-time", held, "--lease-duration", "120s",
    )  # fmt: skip
    assert renewed["scheduleTime"] > held
    stale = cli(
        "tasks", "acknowledge", "job-1", "--queue", queue, "--endpoint", endpoint, "--schedule-time", held
    )
    assert stale.exit_code == 1
    assert stale.stderr.startswith("ERROR: (tasksd) FAILED_PRECONDITION: ")

    cancelled = yaml.safe_load(
        ok(
            "tasks", "cancel-lease", "job-1", "--queue", queue, "--endpoint", endpoint,
            "--schedule-time", renewed["scheduleTime"], "--format", "yaml",
        ).stdout
    )  # fmt: skip
    # the oldest task is now job-2 (cancelling made job-1 due again from now)
    oldest = as_json(
        "tasks", "lease", "--queue", queue, "--endpoint", endpoint, "--lease-duration", "60", "--oldest-tag",
    )  # fmt: skip
    assert [t["name"] for t in oldest] == [f"{name}/tasks/job-2"]
    lease_table = ok(
        "tasks", "lease", "--queue", queue, "--endpoint", endpoint, "--lease-duration", "60", "--tag", "red"
    )
    rows = table(lease_table.stdout)
    assert rows[0][:2] == ["TASK_NAME", "TYPE"]
    assert [row[:2] for row in rows[1:]] == [["job-1", "pull"]]
    again = as_json("tasks", "describe", "job-1", "--queue", queue, "--endpoint", endpoint)
    assert again["scheduleTime"] > cancelled["scheduleTime"]

    acked = ok(
        "tasks", "acknowledge", f"{name}/tasks/job-1", "--endpoint", endpoint,
        "--schedule-time", again["scheduleTime"],
    )  # fmt: skip
    assert f"Acknowledged task [{name}/tasks/job-1]." in acked.stderr
    assert acked.stdout == ""
    ok(
        "tasks",
        "acknowledge",
        "job-2",
        "--queue",
        queue,
        "--endpoint",
        endpoint,
        "--schedule-time",
        oldest[0]["scheduleTime"],
    )
    assert as_json("tasks", "list", "--queue", queue, "--endpoint", endpoint) == []
    ok("queues", "delete", queue, "--endpoint", endpoint, "-q")


def test_iam_policy_bindings(endpoint: str, tmp_path: Path) -> None:
    queue = new_id()
    ok("queues", "create", queue, "--endpoint", endpoint)
    assert as_json("queues", "get-iam-policy", queue, "--endpoint", endpoint).get("bindings") is None
    added = as_json(
        "queues", "add-iam-policy-binding", queue, "--endpoint", endpoint,
        "--member", "user:ann@example.com", "--role", "roles/cloudtasks.enqueuer",
    )  # fmt: skip
    assert added["bindings"] == [{"role": "roles/cloudtasks.enqueuer", "members": ["user:ann@example.com"]}]
    conditional = as_json(
        "queues", "add-iam-policy-binding", queue, "--endpoint", endpoint,
        "--member", "user:bob@example.com", "--role", "roles/cloudtasks.viewer",
        "--condition", 'expression=request.time < timestamp("2099-01-01T00:00:00Z"),title=until-2099',
    )  # fmt: skip
    assert conditional["version"] == 3
    until_2099 = {"expression": 'request.time < timestamp("2099-01-01T00:00:00Z")', "title": "until-2099"}
    assert {
        "role": "roles/cloudtasks.viewer",
        "members": ["user:bob@example.com"],
        "condition": until_2099,
    } in conditional["bindings"]
    # a condition from a file (CEL with commas does not fit in --condition)
    condition_file = tmp_path / "condition.yaml"
    condition_file.write_text(
        yaml.safe_dump({"expression": 'resource.name.endsWith("x") || resource.type == "t"', "title": "f"})
    )
    from_file = as_json(
        "queues", "add-iam-policy-binding", queue, "--endpoint", endpoint, "--member", "user:cy@example.com",
        "--role", "roles/cloudtasks.viewer", "--condition-from-file", str(condition_file),
    )  # fmt: skip
    assert [b["condition"]["title"] for b in from_file["bindings"] if "condition" in b] == ["until-2099", "f"]
    as_json(
        "queues", "remove-iam-policy-binding", queue, "--endpoint", endpoint,
        "--member", "user:cy@example.com", "--role", "roles/cloudtasks.viewer",
        "--condition-from-file", str(condition_file),
    )  # fmt: skip
    rows = table(ok("queues", "get-iam-policy", queue, "--endpoint", endpoint).stdout)
    assert rows[0] == ["ROLE", "MEMBER", "CONDITION"]
    assert ["roles/cloudtasks.enqueuer", "user:ann@example.com"] in rows

    removed = yaml.safe_load(
        ok(
            "queues", "remove-iam-policy-binding", queue, "--endpoint", endpoint, "--format", "yaml",
            "--member", "user:ann@example.com", "--role", "roles/cloudtasks.enqueuer",
        ).stdout
    )  # fmt: skip
    assert [b["role"] for b in removed["bindings"]] == ["roles/cloudtasks.viewer"]
    absent = cli(
        "queues", "remove-iam-policy-binding", queue, "--endpoint", endpoint,
        "--member", "user:ann@example.com", "--role", "roles/cloudtasks.enqueuer",
    )  # fmt: skip
    assert absent.exit_code == 1
    assert "Policy binding with the specified principal, role, and condition not found!" in absent.stderr

    # set-iam-policy takes YAML or JSON; a stale etag is the API's ABORTED
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {"bindings": [{"role": "roles/cloudtasks.admin", "members": ["group:ops@example.com"]}]}
        )
    )
    replaced = as_json("queues", "set-iam-policy", queue, str(policy), "--endpoint", endpoint)
    assert replaced["bindings"] == [{"role": "roles/cloudtasks.admin", "members": ["group:ops@example.com"]}]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({**removed, "bindings": []}))
    conflict = cli("queues", "set-iam-policy", queue, str(stale), "--endpoint", endpoint)
    assert conflict.exit_code == 1
    assert conflict.stderr.startswith("ERROR: (tasksd) ABORTED: ")
    ok("queues", "delete", queue, "--endpoint", endpoint, "-q")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["queues", "create", "q", "--max-attempts", "many"], "is not an integer or 'unlimited'"),
        (["queues", "create", "q", "--min-backoff", "soon"], "not a duration"),
        (["queues", "create", "q", "--routing-override", "zone:x"], "unknown key 'zone'"),
        (["queues", "create", "q", "--http-uri-override", "scheme:ftp"], "scheme 'ftp' is not http or https"),
        (["queues", "create", "q", "--no-such-flag"], "No such option"),
        (["queues", "list", "--format", "xml"], "Invalid value for '--format'"),
        (["queues", "update", "q"], "Must specify at least one field to update."),
        (["tasks", "describe", "t1"], "Must specify either the fully qualified task path or the queue flag."),
        (["tasks", "create-http-task", "--queue", "q"], "Missing option '--url'"),
        (
            ["tasks", "create-pull-task", "--queue", "q", "--payload-content", "a", "--payload-file", "-"],
            "cannot be used together",
        ),
        (["tasks", "lease", "--queue", "q"], "Missing option '--lease-duration'"),
        (["tasks", "acknowledge", "t", "--queue", "q", "--schedule-time", "yesterday"], "is not a time"),
        (["queues", "list", "--endpoint", "ftp://host"], "use http://HOST:PORT"),
    ],
)
def test_usage_errors_exit_2(cli_server: Server, args: list[str], message: str) -> None:
    result = cli(*args, "--endpoint", cli_server.url) if "--endpoint" not in args else cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_no_project_is_a_usage_error(cli_server: Server) -> None:
    result = cli("queues", "list", "--endpoint", cli_server.url, env={"TASKSD_PROJECT": None})
    assert result.exit_code == 2
    assert "--project" in result.stderr


def test_api_errors_exit_1_with_the_api_message(endpoint: str) -> None:
    queue = new_id()
    ok("queues", "create", queue, "--endpoint", endpoint)
    taken = cli("queues", "create", queue, "--endpoint", endpoint)
    assert taken.exit_code == 1
    assert taken.stderr.strip() == "ERROR: (tasksd) ALREADY_EXISTS: Queue already exists"
    bad = cli("queues", "create", "Not_Valid!", "--endpoint", endpoint)
    assert bad.exit_code == 1
    assert bad.stderr.startswith("ERROR: (tasksd) INVALID_ARGUMENT: ")
    missing = cli("tasks", "list", "--queue", new_id(), "--endpoint", endpoint)
    assert missing.exit_code == 1
    assert missing.stderr.startswith("ERROR: (tasksd) NOT_FOUND: Queue does not exist.")
    ok("queues", "delete", queue, "--endpoint", endpoint, "-q")


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_server_down(scheme: str) -> None:
    endpoint = f"{scheme}://127.0.0.1:{free_port()}"
    result = cli("queues", "list", "--endpoint", endpoint)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"ERROR: (tasksd) cannot reach tasksd at {endpoint} (is it running?)")
    assert "Traceback" not in result.stderr


def test_the_entry_point_and_environment(cli_server: Server) -> None:
    """``python -m tasksd`` with TASKSD_ENDPOINT, TASKSD_PROJECT and TASKSD_LOCATION."""
    queue = new_id()
    env = {
        **{k: v for k, v in os.environ.items() if k not in CLEAN_ENV},
        "TASKSD_ENDPOINT": f"grpc://127.0.0.1:{cli_server.grpc_port}",
        "TASKSD_PROJECT": PROJECT,
        "TASKSD_LOCATION": "europe-west1",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tasksd", *args], capture_output=True, text=True, env=env, timeout=60
        )

    created = run("queues", "create", queue, "--format", "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["name"] == f"projects/{PROJECT}/locations/europe-west1/queues/{queue}"
    listed = run("queues", "list", "--format", "json")
    assert listed.returncode == 0
    assert [q["name"].rsplit("/", 1)[1] for q in json.loads(listed.stdout)] == [queue]
    failed = run("queues", "create", queue)
    assert (failed.returncode, failed.stderr.strip()) == (
        1,
        "ERROR: (tasksd) ALREADY_EXISTS: Queue already exists",
    )
    usage = run("queues", "create")
    assert usage.returncode == 2
    assert "Missing argument 'QUEUE'" in usage.stderr
    assert run("queues", "delete", queue, "--quiet").returncode == 0


CI = f"ci@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("cli-auth")
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", folder / "tasksd.yaml")
    new_key_file(CI, f"{server.url}/token", str(folder / "ci.json"))
    config = {
        "auth": {
            "mode": "enforce",
            "service_account_keys": ["ci.json"],
            "tokens": [{"token": "cli-token", "principal": "user:ops@example.com"}],
            "api_keys": [{"key": "cli-key", "principal": "serviceAccount:web@p.iam.gserviceaccount.com"}],
            "bindings": [
                {
                    "project": PROJECT,
                    "role": "roles/cloudtasks.admin",
                    "members": ["user:ops@example.com", f"serviceAccount:{CI}"],
                },
                {
                    "project": PROJECT,
                    "role": "roles/cloudtasks.viewer",
                    "members": ["serviceAccount:web@p.iam.gserviceaccount.com"],
                },
            ],
        }
    }
    (folder / "tasksd.yaml").write_text(json.dumps(config))
    server.start()
    server.folder = folder  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_credentials_against_enforced_auth(secured_server: Server, transport: str) -> None:
    endpoint = secured_server.url if transport == "rest" else f"grpc://127.0.0.1:{secured_server.grpc_port}"
    anonymous = cli("queues", "list", "--endpoint", endpoint)
    assert anonymous.exit_code == 1
    assert anonymous.stderr.startswith("ERROR: (tasksd) UNAUTHENTICATED: ")

    queue = new_id()
    ok("queues", "create", queue, "--endpoint", endpoint, "--access-token", "cli-token")
    assert queue in ok("queues", "list", "--endpoint", endpoint, env={"TASKSD_TOKEN": "cli-token"}).stdout
    # the API key's principal may read but not delete
    assert (
        as_json("queues", "describe", queue, "--endpoint", endpoint, "--api-key", "cli-key")["state"]
        == "RUNNING"
    )
    denied = cli("queues", "delete", queue, "--endpoint", endpoint, "-q", env={"TASKSD_API_KEY": "cli-key"})
    assert denied.exit_code == 1
    assert denied.stderr.startswith("ERROR: (tasksd) PERMISSION_DENIED: ")
    unknown = cli("queues", "list", "--endpoint", endpoint, "--api-key", "nope")
    assert unknown.exit_code == 1
    assert "INVALID_ARGUMENT" in unknown.stderr
    # a service account key file, as GOOGLE_APPLICATION_CREDENTIALS
    key_file = str(secured_server.folder / "ci.json")  # type: ignore[attr-defined]
    paused = as_json(
        "queues", "pause", queue, "--endpoint", endpoint, env={"GOOGLE_APPLICATION_CREDENTIALS": key_file}
    )
    assert paused["state"] == "PAUSED"
    ok("queues", "delete", queue, "--endpoint", endpoint, "-q", "--credentials-file", key_file)


def test_tls_endpoints(tmp_path: Path) -> None:
    """https:// and grpcs:// endpoints, trusting a private CA the documented way."""
    from tests.integration.certs import TestCa

    authority = TestCa(tmp_path)
    issued = authority.issue("server", ["127.0.0.1", "localhost"])
    (tmp_path / "tasksd.yaml").write_text(
        json.dumps({"tls": {"cert_file": str(issued.cert), "key_file": str(issued.key)}})
    )
    server = Server(
        f"sqlite:///{tmp_path / 'tasksd.db'}", tmp_path / "tasksd.yaml", ca=authority.cert
    ).start()
    try:
        trust = {
            "REQUESTS_CA_BUNDLE": str(authority.cert),
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(authority.cert),
        }
        queue = new_id()
        created = as_json(
            "queues", "create", queue, "--endpoint", f"https://localhost:{server.http_port}", env=trust
        )
        assert created["name"] == f"{PARENT}/queues/{queue}"
        # grpc reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process, so gRPC over TLS runs apart
        done = subprocess.run(
            [sys.executable, "-m", "tasksd", "queues", "describe", queue, "--format", "json",
             "--endpoint", f"grpcs://localhost:{server.grpc_port}", "--project", PROJECT],
            capture_output=True, text=True, timeout=60,
            env={**{k: v for k, v in os.environ.items() if k not in CLEAN_ENV}, **trust},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == created
    finally:
        server.stop()
