"""The web console at /console against real servers: every page over HTTP (an empty project, a
queue of 10,000 tasks, missing resources, actions, escaping, sign-in when auth is enforced),
then in real headless Chromium (Debian's, driven by Playwright): navigate, pause a queue, run a
task and see it dispatched. Screenshots go to build/test-artifacts/console/."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LOCATION, PARENT, PROJECT, Server
from tests.integration.sink import Sink

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUEUES_PAGE = f"/console/projects/{PROJECT}/locations/{LOCATION}/queues"
AUTH_COOKIE = "tasksd_console_auth"


def _queue_id() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def _api(server: Server, method: str, path: str, body: Any = None, **headers: str) -> dict[str, Any]:
    answer = httpx.request(method, f"{server.url}/v2beta2/{path}", json=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def _server_ms(answer: httpx.Response) -> float:
    match = re.fullmatch(r"console;dur=([0-9.]+)", answer.headers["server-timing"])
    assert match, answer.headers
    return float(match.group(1))


@pytest.fixture
def browser_client(dispatching: Server) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies, as a browser does."""
    with httpx.Client(base_url=dispatching.url, timeout=60) as client:
        yield client


def test_every_page_answers_for_an_empty_project(browser_client: httpx.Client) -> None:
    project = f"empty-{uuid.uuid4().hex[:8]}"
    start = browser_client.get("/console")
    assert start.status_code == 200 and 'name="project"' in start.text
    chooser = browser_client.get("/console", params={"project": project})
    assert chooser.status_code == 200
    assert f"/console/projects/{project}/locations/us-central1/queues" in chooser.text
    opened = browser_client.get("/console", params={"project": project, "location": LOCATION})
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/console/projects/{project}/locations/{LOCATION}/queues"
    queues = browser_client.get(opened.headers["location"])
    assert queues.status_code == 200 and "No queues in this location yet." in queues.text
    assert queues.headers["content-security-policy"].startswith("default-src 'none'")
    # The location just opened is listed as recently used.
    assert f"{project} · {LOCATION}" in browser_client.get("/console").text
    base = f"/console/projects/{project}/locations/{LOCATION}/queues"
    for missing in (
        f"{base}/no-such-queue",
        f"{base}/no-such-queue/tasks/no-such-task",
        "/console/projects/not%20a%20project/locations/us-central1/queues",
        "/console/no/such/page",
    ):
        answer = browser_client.get(missing)
        assert answer.status_code == 404, missing
        assert "<h1>" in answer.text and "Traceback" not in answer.text
    assert "Queue does not exist" in browser_client.get(f"{base}/no-such-queue").text


def _fill_queue(server: Server, queue: str, count: int) -> None:
    """``count`` App Engine tasks in ``queue``, through google-cloud-tasks v2 BatchCreateTasks."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import tasks_v2

    client = tasks_v2.CloudTasksClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=server.url),
    )

    def batch(start: int) -> int:
        requests = [
            {"parent": queue, "task": {"app_engine_http_request": {"relative_uri": f"/t/{i}"}}}
            for i in range(start, min(start + 100, count))
        ]
        return len(client.batch_create_tasks(parent=queue, requests=requests).result(timeout=120).tasks)

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(batch, range(0, count, 100))) == count


def test_a_queue_of_ten_thousand_tasks_pages(dispatching: Server, browser_client: httpx.Client) -> None:
    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    _api(dispatching, "POST", f"{PARENT}/queues", {"name": name, "appEngineHttpTarget": {}})
    _api(dispatching, "POST", f"{name}:pause")  # nothing is dispatched while the pages are read
    started = time.monotonic()
    _fill_queue(dispatching, name, 10_000)
    print(f"\ncreated 10,000 tasks in {time.monotonic() - started:.1f} s")

    queues = browser_client.get(QUEUES_PAGE, params={"pageSize": 1000})
    assert queues.status_code == 200
    row = re.search(rf'<tr data-queue="{queue_id}">(.*?)</tr>', queues.text)
    assert row and ">10000<" in row.group(1) and "PAUSED" in row.group(1)
    print(f"queues page: {_server_ms(queues):.1f} ms server time")

    page = f"{QUEUES_PAGE}/{queue_id}"
    default = browser_client.get(page)
    assert default.status_code == 200
    assert default.text.count("<tr data-task=") == 100 and 'rel="next"' in default.text
    print(f"queue page, 100 tasks a page: {_server_ms(default):.1f} ms server time")

    seen: set[str] = set()
    timings = []
    query: dict[str, Any] = {"pageSize": 1000}
    while True:
        answer = browser_client.get(page, params=query)
        assert answer.status_code == 200
        timings.append(_server_ms(answer))
        ids = re.findall(r'<tr data-task="([^"]+)">', answer.text)
        assert 0 < len(ids) <= 1000
        seen.update(ids)
        token = re.search(r'href="[^"]*pageToken=([^"&]+)[^"]*" rel="next"', answer.text)
        if token is None:
            break
        query = {"pageSize": 1000, "pageToken": httpx.QueryParams(f"t={token.group(1)}")["t"]}
    assert len(seen) == 10_000 and len(timings) == 10
    print(
        f"queue page, 1000 tasks a page, 10 pages: server time max {max(timings):.1f} ms, "
        f"first {timings[0]:.1f} ms"
    )

    task = browser_client.get(f"{page}/tasks/{next(iter(seen))}")
    assert task.status_code == 200 and "Relative URL" in task.text
    print(f"task page: {_server_ms(task):.1f} ms server time")
    (ARTIFACTS).mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(
        json.dumps(
            {
                "queues_page_ms": _server_ms(queues),
                "queue_page_100_ms": _server_ms(default),
                "pages_1000_ms": timings,
            }
        )
    )
    _api(dispatching, "DELETE", name)


def _post(
    client: httpx.Client, path: str, fields: dict[str, str], csrf_from: str | None = None
) -> httpx.Response:
    csrf = _csrf(client.get(csrf_from or path))
    return client.post(path, data={"csrf": csrf, **fields})


def test_actions_and_escaping(dispatching: Server, browser_client: httpx.Client) -> None:
    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    created = _post(
        browser_client,
        QUEUES_PAGE,
        {
            "action": "create",
            "queue_id": queue_id,
            "kind": "httpTarget",
            "max_rate": "7",
            "max_concurrent": "3",
        },
    )
    assert created.status_code == 303, created.text
    page = f"{QUEUES_PAGE}/{queue_id}"
    assert created.headers["location"].startswith(page)
    queue = _api(dispatching, "GET", name)
    assert queue["rateLimits"]["maxTasksDispatchedPerSecond"] == 7 and "httpTarget" in queue
    shown = browser_client.get(created.headers["location"])
    assert f"Queue {queue_id} created." in shown.text and "Max dispatches per second" in shown.text

    script = "<script>alert('x')</script>"
    made = _post(
        browser_client,
        page,
        {
            "action": "create-task",
            "task_id": "escaped",
            "delay_s": "3600",
            "method": "PUT",
            "url": "http://127.0.0.1:9/hook?a=1&b=2",
            "headers": f"X-Evil: {script}\nContent-Type: application/json",
            "body": json.dumps({"html": script, "n": 1}),
        },
    )
    assert made.status_code == 303, made.text
    task_page = browser_client.get(made.headers["location"])
    assert task_page.status_code == 200
    assert script not in task_page.text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in task_page.text
    assert "JSON:" in task_page.text and "&quot;html&quot;: &quot;&lt;script&gt;" in task_page.text
    assert "http://127.0.0.1:9/hook?a=1&amp;b=2" in task_page.text
    listed = browser_client.get(page)
    assert 'data-task="escaped"' in listed.text and script not in listed.text

    # Bad input is the API's message with its status, never a 500.
    bad_queue = _post(browser_client, QUEUES_PAGE, {"action": "create", "queue_id": "bad_id!"})
    assert bad_queue.status_code == 400 and "INVALID_ARGUMENT" in bad_queue.text
    bad_rate = _post(
        browser_client, QUEUES_PAGE, {"action": "create", "queue_id": _queue_id(), "max_rate": "x"}
    )
    assert bad_rate.status_code == 400 and "maxTasksDispatchedPerSecond" in bad_rate.text
    bad_delay = _post(
        browser_client, page, {"action": "create-task", "url": "http://127.0.0.1:9/", "delay_s": "soon"}
    )
    assert bad_delay.status_code == 400 and "is not a number of seconds" in bad_delay.text
    bad_token = browser_client.get(page, params={"pageToken": "garbage"})
    assert bad_token.status_code == 200 and "INVALID_ARGUMENT" in bad_token.text
    duplicate = _post(
        browser_client, page, {"action": "create-task", "task_id": "escaped", "url": "http://x/"}
    )
    assert duplicate.status_code == 409 and "ALREADY_EXISTS" in duplicate.text

    # Forms without the session's token, or from another origin, change nothing.
    forged = browser_client.post(
        page, data={"action": "pause", "csrf": "forged-token-forged-token-forged-token"}
    )
    assert forged.status_code == 403
    cross = browser_client.post(
        page,
        data={"action": "pause", "csrf": _csrf(browser_client.get(page))},
        headers={"origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    with httpx.Client(base_url=dispatching.url) as stranger:  # no cookie at all
        assert stranger.post(page, data={"action": "pause", "csrf": "x" * 43}).status_code == 403
    assert _api(dispatching, "GET", name)["state"] == "RUNNING"

    paused = _post(browser_client, page, {"action": "pause"})
    assert paused.status_code == 303 and _api(dispatching, "GET", name)["state"] == "PAUSED"
    assert 'id="queue-state">PAUSED<' in browser_client.get(paused.headers["location"]).text
    listed_pause = _post(browser_client, page, {"action": "resume", "back": "list"}, csrf_from=QUEUES_PAGE)
    assert listed_pause.headers["location"].startswith(QUEUES_PAGE + "?")
    assert _api(dispatching, "GET", name)["state"] == "RUNNING"

    deleted = _post(browser_client, f"{page}/tasks/escaped", {"action": "delete"})
    assert deleted.status_code == 303
    assert browser_client.get(f"{page}/tasks/escaped").status_code == 404
    _api(dispatching, "POST", f"{name}/tasks", {"task": {"httpRequest": {"url": "http://127.0.0.1:9/"}}})
    assert _post(browser_client, page, {"action": "purge"}).status_code == 303
    assert "tasks" not in _api(dispatching, "GET", f"{name}/tasks")
    assert _post(browser_client, page, {"action": "delete"}).status_code == 303
    assert browser_client.get(page).status_code == 404
    gone = browser_client.post(page, data={"action": "pause", "csrf": _csrf(browser_client.get(QUEUES_PAGE))})
    assert gone.status_code == 404 and "NOT_FOUND" in gone.text


def test_pull_tasks_filter_by_tag_and_decode_payloads(
    dispatching: Server, browser_client: httpx.Client
) -> None:
    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    _api(dispatching, "POST", f"{PARENT}/queues", {"name": name, "pullTarget": {}})
    payloads = {
        "json-a": ("a", json.dumps({"k": [1, 2]}).encode()),
        "text-b": ("b", b"plain words"),
        "bin-a": ("a", bytes(range(256))),
    }
    for task_id, (tag, payload) in payloads.items():
        task = {
            "name": f"{name}/tasks/{task_id}",
            "pullMessage": {"tag": tag, "payload": base64.b64encode(payload).decode()},
        }
        _api(dispatching, "POST", f"{name}/tasks", {"task": task})
    page = f"{QUEUES_PAGE}/{queue_id}"
    filtered = browser_client.get(page, params={"tag": "a"})
    assert sorted(re.findall(r'<tr data-task="([^"]+)">', filtered.text)) == ["bin-a", "json-a"]
    assert "2 of the 3 tasks listed on this page have tag a" in filtered.text
    assert "Run</button>" not in browser_client.get(f"{page}/tasks/json-a").text
    json_page = browser_client.get(f"{page}/tasks/json-a").text
    assert '"k": [\n    1,\n    2\n  ]' in json_page.replace("&quot;", '"')
    assert "plain words" in browser_client.get(f"{page}/tasks/text-b").text
    binary = browser_client.get(f"{page}/tasks/bin-a").text
    assert "binary:" in binary and "00000000  00 01 02 03" in binary
    made = _post(browser_client, page, {"action": "create-task", "tag": "c", "body": "from the form"})
    assert made.status_code == 303
    created = _api(
        dispatching,
        "GET",
        made.headers["location"].split("/console/", 1)[1].split("?")[0] + "?responseView=FULL",
    )
    assert created["pullMessage"] == {"tag": "c", "payload": base64.b64encode(b"from the form").decode()}


def test_failed_attempts_are_shown(dispatching: Server, sink: Sink, browser_client: httpx.Client) -> None:
    from tests.integration.sink import Answer

    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    sink.script(f"/fails/{queue_id}", Answer(503))
    retry = {"minBackoff": "60s", "maxBackoff": "60s"}
    _api(
        dispatching,
        "POST",
        f"{PARENT}/queues",
        {"name": name, "appEngineHttpTarget": {}, "retryConfig": retry},
    )
    task = {"name": f"{name}/tasks/fails", "appEngineHttpRequest": {"relativeUrl": f"/fails/{queue_id}"}}
    _api(dispatching, "POST", f"{name}/tasks", {"task": task})
    page = f"{QUEUES_PAGE}/{queue_id}"
    deadline = time.monotonic() + 20
    while "attemptResponseCount" not in _api(dispatching, "GET", f"{name}/tasks/fails").get("status", {}):
        assert time.monotonic() < deadline, "no attempt was answered"
        time.sleep(0.1)
    listed = browser_client.get(page).text
    assert "1 of the tasks shown last failed" in listed
    assert "<b>UNAVAILABLE</b> (14) HTTP 503 Service Unavailable" in listed
    shown = browser_client.get(f"{page}/tasks/fails").text
    assert 'id="last-response"><b>UNAVAILABLE</b> (14)' in shown
    assert "Dispatched in the last minute</dt><dd>1<" in listed
    assert "Failed in the last minute</dt><dd>1<" in listed
    row = re.search(rf'<tr data-queue="{queue_id}">(.*?)</tr>', browser_client.get(QUEUES_PAGE).text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
    assert cells == ["1", "1", "1", "0"]  # tasks queued, dispatched, failed, in flight (last minute)


# -- with authentication enforced ---------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("console-auth")
    config = {
        "auth": {
            "mode": "enforce",
            "tokens": [
                {"token": "admin-token", "principal": "user:admin@example.com"},
                {"token": "viewer-token", "principal": "user:viewer@example.com"},
            ],
            "api_keys": [{"key": "console-key", "principal": "user:admin@example.com"}],
            "bindings": [
                {"project": PROJECT, "role": "roles/cloudtasks.admin", "members": ["user:admin@example.com"]},
                {
                    "project": PROJECT,
                    "role": "roles/cloudtasks.viewer",
                    "members": ["user:viewer@example.com"],
                },
            ],
        }
    }
    (folder / "tasksd.yaml").write_text(json.dumps(config))
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", folder / "tasksd.yaml").start()
    yield server
    server.stop()


def _sign_in(
    client: httpx.Client, credential: str, kind: str = "token", next_url: str = ""
) -> httpx.Response:
    form = client.get("/console/signin", params={"next": next_url} if next_url else None)
    assert form.status_code == 200
    return client.post(
        "/console/signin",
        data={"csrf": _csrf(form), "kind": kind, "credential": credential, "next": next_url},
    )


def test_sign_in_when_auth_is_enforced(secured: Server) -> None:
    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    admin = {"authorization": "Bearer admin-token"}
    _api(secured, "POST", f"{PARENT}/queues", {"name": name, "pullTarget": {}}, **admin)
    page = f"{QUEUES_PAGE}/{queue_id}"
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for path in ("/console", QUEUES_PAGE, page, f"{page}/tasks/x"):
            anonymous = client.get(path)
            assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
                "/console/signin?next="
            )
            assert "RUNNING" not in anonymous.text and "<table" not in anonymous.text
        assert queue_id not in client.get(QUEUES_PAGE).text
        followed = client.get(QUEUES_PAGE, follow_redirects=True)
        assert followed.url.path == "/console/signin" and queue_id not in followed.text
        assert 'name="credential"' in followed.text
        refused = client.post(page, data={"action": "pause", "csrf": _csrf(followed)})
        assert refused.status_code == 303 and refused.headers["location"].startswith("/console/signin")
        assert _api(secured, "GET", name, **admin)["state"] == "RUNNING"

        wrong = _sign_in(client, "not-a-token")
        assert wrong.status_code == 401 and "Request had invalid authentication credentials." in wrong.text
        wrong_key = _sign_in(client, "not-a-key", kind="key")
        assert wrong_key.status_code == 401 and "API key not valid" in wrong_key.text
        assert AUTH_COOKIE not in client.cookies

        signed = _sign_in(client, "admin-token", next_url=page)
        assert signed.status_code == 303 and signed.headers["location"] == page
        cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith(AUTH_COOKIE))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert attributes == {"path", "httponly", "samesite"} and "SameSite=Strict" in cookie
        shown = client.get(page)
        assert shown.status_code == 200 and "Signed in as <b>user:admin@example.com</b>" in shown.text
        assert _post(client, page, {"action": "pause"}).status_code == 303
        assert _api(secured, "GET", name, **admin)["state"] == "PAUSED"

        signed_out = client.post("/console/signout", data={"csrf": _csrf(shown)})
        assert signed_out.status_code == 303
        assert client.get(page).status_code == 303

    with httpx.Client(base_url=secured.url, timeout=30) as viewer:
        assert _sign_in(viewer, "viewer-token").status_code == 303
        assert viewer.get(page).status_code == 200
        denied = _post(viewer, page, {"action": "resume"})
        assert denied.status_code == 403 and "cloudtasks.queues.resume" in denied.text
    with httpx.Client(base_url=secured.url, timeout=30) as keyed:
        assert _sign_in(keyed, "console-key", kind="key").status_code == 303
        assert queue_id in keyed.get(QUEUES_PAGE).text
        keyed.cookies.clear()
        keyed.cookies.set(AUTH_COOKIE, base64.urlsafe_b64encode(b"b:revoked").decode())  # not accepted
        expired = keyed.get(QUEUES_PAGE)
        assert expired.status_code == 303 and "expired=1" in expired.headers["location"]


def test_cookies_are_secure_over_tls() -> None:
    """Over HTTPS the session cookie is also Secure (the ASGI app is driven in process)."""
    import asyncio

    from tasksd.auth.credentials import Credentials
    from tasksd.console import Console

    class Api:
        async def authenticate(self, credentials: Credentials, audiences: tuple[str, ...]) -> str:
            if credentials.bearer != "t":
                from tasksd.model.errors import InvalidCredentials

                raise InvalidCredentials()
            return "user:t@example.com"

        async def respond(self, method: str, path: str, query: bytes, body: bytes) -> tuple[int, bytes]:
            return 200, b"{}"

    console = Console(Api())  # type: ignore[arg-type]

    async def call(
        method: str, path: str, body: bytes = b"", cookie: str = ""
    ) -> tuple[int, list[str], bytes]:
        sent: list[dict[str, Any]] = []
        headers = [(b"host", b"tasks.example")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "headers": headers,
            "scheme": "https",
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await console(scope, receive, send)
        start = sent[0]
        cookies = [v.decode() for k, v in start["headers"] if k == b"set-cookie"]
        return start["status"], cookies, sent[1]["body"]

    status, cookies, body = asyncio.run(call("GET", "/console/signin"))
    assert status == 200 and all("; Secure" in c for c in cookies)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', body)
    assert csrf
    form = b"csrf=" + csrf.group(1) + b"&kind=token&credential=t"
    status, cookies, _ = asyncio.run(
        call("POST", "/console/signin", form, cookie=f"tasksd_console_csrf={csrf.group(1).decode()}")
    )
    assert status == 303
    assert any(c.startswith(AUTH_COOKIE) and "Secure" in c and "HttpOnly" in c for c in cookies)


# -- in headless Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (as the Makefile's target does)."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    return CHROMIUM


def test_in_chromium(chromium: str, dispatching: Server, sink: Sink) -> None:
    from playwright.sync_api import expect, sync_playwright

    queue_id = _queue_id()
    name = f"{PARENT}/queues/{queue_id}"
    _api(dispatching, "POST", f"{PARENT}/queues", {"name": name, "appEngineHttpTarget": {}})
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    task = _api(
        dispatching,
        "POST",
        f"{name}/tasks",
        {
            "task": {
                "name": f"{name}/tasks/run-me",
                "scheduleTime": later,
                "appEngineHttpRequest": {
                    "relativeUrl": f"/console-run/{queue_id}",
                    "headers": {"Content-Type": "application/json"},
                    "payload": base64.b64encode(b'{"order": 42, "items": ["tea", "cake"]}').decode(),
                },
            }
        },
    )
    assert task["name"].endswith("/run-me")
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS / "chromium", ignore_errors=True)
    shots = ARTIFACTS / "chromium"
    shots.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="tasksd-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1280, "height": 860},
            )
            browser_page = context.new_page()
            errors: list[str] = []
            browser_page.on("pageerror", lambda error: errors.append(str(error)))
            browser_page.on("dialog", lambda dialog: dialog.accept())

            browser_page.goto(f"{dispatching.url}/console")
            browser_page.fill("input[name=project]", PROJECT)
            browser_page.click("button:has-text('Open')")
            expect(browser_page.locator("ul.locations")).to_contain_text(LOCATION)
            browser_page.screenshot(path=str(shots / "1-chooser.png"))
            browser_page.click(f"ul.locations a:has-text('{LOCATION}')")
            expect(browser_page.locator("h1")).to_have_text(f"Queues of {PROJECT} · {LOCATION}")
            row = browser_page.locator(f"tr[data-queue='{queue_id}']")
            expect(row).to_contain_text("RUNNING")
            browser_page.screenshot(path=str(shots / "2-queues.png"), full_page=True)

            row.locator("a").first.click()
            expect(browser_page.locator("h1")).to_have_text(f"Queue {queue_id}")
            browser_page.click("#live button:text-is('Pause')")
            expect(browser_page.locator("#queue-state")).to_have_text("PAUSED")
            expect(browser_page.locator(".notice")).to_contain_text(f"Queue {queue_id} paused.")
            assert _api(dispatching, "GET", name)["state"] == "PAUSED"
            browser_page.screenshot(path=str(shots / "3-queue-paused.png"), full_page=True)
            # A change made elsewhere shows up without a reload: the page refreshes itself.
            _api(dispatching, "POST", f"{name}:resume")
            expect(browser_page.locator("#queue-state")).to_have_text("RUNNING", timeout=15_000)

            browser_page.click("tr[data-task='run-me'] a")
            expect(browser_page.locator("h1")).to_have_text("Task run-me")
            expect(browser_page.locator("pre.json")).to_contain_text('"order": 42')
            browser_page.screenshot(path=str(shots / "4-task.png"), full_page=True)
            browser_page.click("button:text-is('Run')")
            expect(browser_page.locator(".notice")).to_contain_text("Task run-me was run")
            deadline = time.monotonic() + 20
            while not [r for r in sink.received if r.path == f"/console-run/{queue_id}"]:
                assert time.monotonic() < deadline, "the task was not dispatched"
                time.sleep(0.1)
            received = next(r for r in sink.received if r.path == f"/console-run/{queue_id}")
            assert json.loads(received.body) == {"order": 42, "items": ["tea", "cake"]}
            # The successful attempt deleted the task and counts in the last minute's dispatches.
            expect(browser_page.locator("tr[data-task='run-me']")).to_have_count(0, timeout=15_000)
            expect(browser_page.locator("#live dl")).to_contain_text(
                "Dispatched in the last minute1", timeout=15_000
            )
            browser_page.wait_for_timeout(5_500)  # one more refresh, so the chart has samples
            expect(browser_page.locator("svg#chart")).to_be_visible(timeout=10_000)
            browser_page.screenshot(path=str(shots / "5-queue-after-run.png"), full_page=True)
            browser_page.goto(f"{dispatching.url}{QUEUES_PAGE}/{queue_id}/tasks/run-me")
            expect(browser_page.locator(".error")).to_contain_text("NOT_FOUND")
            assert errors == []
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
