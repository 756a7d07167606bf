"""The console's pages and actions: each reads or changes data through the API (``Client``)
and renders the answer. An API error is shown as the API's message, with its HTTP status (a
queue or task that does not exist, or a project or location id that cannot, is a 404 page).
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasksd.console.client import ApiError, Client
from tasksd.console.history import History, Sample, chart
from tasksd.console.render import (
    BASE,
    age,
    button,
    csrf_field,
    decoded,
    dl,
    e,
    last,
    layout,
    queue_url,
    queues_url,
    status_text,
    target_kind,
    task_kind,
    task_url,
    url,
    value,
    when,
)

QUEUE_MASK = (
    "name,state,rateLimits,retryConfig,pullTarget,appEngineHttpTarget,httpTarget,stats,"
    "purgeTime,taskTtl,tombstoneTtl"
)
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
PAGE_SIZES = (25, 100, 500, 1000)
METHODS = ("POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
_MISSING = ("NOT_FOUND", "INVALID_ARGUMENT")
DONE = {
    "created": "Queue {queue} created.",
    "paused": "Queue {queue} paused.",
    "resumed": "Queue {queue} resumed.",
    "purged": "Queue {queue} purged: its tasks are being deleted.",
    "deleted": "Queue {queue} deleted.",
    "task-created": "Task {task} created.",
    "task-deleted": "Task {task} deleted.",
    "task-run": "Task {task} was run: RunTask dispatched it now.",
}


Failures = Callable[[str], Awaitable[int]]
"""A queue's failed attempts in the last minute, by queue name (read from the store)."""


@dataclass
class Ctx:
    """One console request: the API client, the caller and the request's fields."""

    client: Client
    history: History
    principal: str | None
    csrf: str
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    recent: list[tuple[str, str]] = field(default_factory=list)
    failures: Failures | None = None

    async def failed(self, queue: str) -> str:
        """The queue's failures in the last minute, as shown ("—" where unknown)."""
        if self.failures is None:
            return "—"
        try:
            return str(await self.failures(queue))
        except Exception:  # deleted meanwhile, or the store failing: the page still shows
            return "—"


@dataclass
class Page:
    status: int
    html: str
    visited: tuple[str, str] | None = None
    """The (project, location) this page showed, for the recently-used list."""


@dataclass
class Redirect:
    location: str


Result = Page | Redirect


def _notice(ctx: Ctx) -> str:
    template = DONE.get(ctx.query.get("done", ""))
    if template is None:
        return ""
    ids = {k: ctx.query.get(k, "") for k in ("queue", "task")}
    return template.format(**{k: v if _ID.match(v) else "" for k, v in ids.items()}).replace("  ", " ")


def _crumbs(project: str = "", location: str = "", queue: str = "") -> list[tuple[str, str]]:
    crumbs = [(url(), "Projects")]
    if project:
        crumbs.append((url(project=project), project))
    if location:
        crumbs.append((queues_url(project, location), f"{location} · queues"))
    if queue:
        crumbs.append((queue_url(project, location, queue), queue))
    return crumbs


def _failed(ctx: Ctx, error: ApiError, title: str, crumbs: list[tuple[str, str]], missing: bool) -> Page:
    """The page of an API error; ``missing``: a NOT_FOUND or INVALID_ARGUMENT of the page's
    own resource means it does not (or cannot) exist: 404."""
    status = 404 if missing and error.code in _MISSING else error.status
    body = f'<div class="error" role="alert"><b>{e(error.code or status)}</b>: {e(error.message)}</div>'
    if crumbs:
        href, text = crumbs[-1]
        body += f'<p><a href="{href}">Back to {e(text)}</a></p>'
    return Page(status, layout(title, body, crumbs=crumbs, principal=ctx.principal, csrf=ctx.csrf))


# -- the project and location chooser ----------------------------------------------------------


async def chooser(ctx: Ctx) -> Result:
    project = ctx.query.get("project", "").strip()
    location = ctx.query.get("location", "").strip()
    if project and location:
        return Redirect(queues_url(project, location).replace("&amp;", "&"))
    parts = []
    options = ""
    status = 200
    if project:
        try:
            listed = await ctx.client.get(f"projects/{project}/locations", pageSize=100)
        except ApiError as error:
            status = 404 if error.code in _MISSING else error.status
            parts.append(f'<div class="error" role="alert">{e(error.message)}</div>')
        else:
            ids = [
                str(loc.get("locationId") or last(str(loc.get("name", ""))))
                for loc in listed.get("locations", [])
            ]
            options = "".join(f'<option value="{e(i)}">' for i in ids)
            links = "".join(f'<li><a href="{queues_url(project, i)}">{e(i)}</a></li>' for i in ids)
            parts.append(f'<h2>Locations of {e(project)}</h2><ul class="locations">{links}</ul>')
    form = (
        f'<form method="get" action="{url()}" class="chooser">'
        f'<label>Project <input name="project" value="{e(project)}" required '
        'placeholder="my-project" autocomplete="on"></label>'
        f'<label>Location <input name="location" list="known-locations" placeholder="us-central1"></label>'
        f'<datalist id="known-locations">{options}</datalist>'
        '<button type="submit">Open</button></form>'
        '<p class="muted">Type a project (its locations are listed), then pick or type a location.</p>'
    )
    recent = "".join(
        f'<li><a href="{queues_url(p, loc)}">{e(p)} · {e(loc)}</a></li>' for p, loc in ctx.recent
    )
    recent_html = f'<h2>Recently used</h2><ul class="recent">{recent}</ul>' if recent else ""
    body = form + "".join(parts) + recent_html
    return Page(status, layout("Projects and locations", body, principal=ctx.principal, csrf=ctx.csrf))


# -- queues of a location ----------------------------------------------------------------------


def _page_size(ctx: Ctx) -> int:
    try:
        return min(max(int(ctx.query.get("pageSize", PAGE_SIZE)), 1), MAX_PAGE_SIZE)
    except ValueError:
        return PAGE_SIZE


def _pager(ctx: Ctx, href: Any, next_token: str | None, **keep: Any) -> str:
    links = []
    if ctx.query.get("pageToken"):
        links.append(f'<a href="{href(**keep)}">First page</a>')
    if next_token:
        links.append(f'<a href="{href(pageToken=next_token, **keep)}" rel="next">Next page</a>')
    return f'<p class="pager">{" · ".join(links)}</p>' if links else ""


def _queue_actions(ctx: Ctx, project: str, location: str, queue: dict[str, Any], back: str) -> str:
    queue_id = last(queue["name"])
    target = queue_url(project, location, queue_id)
    extra = f'<input type="hidden" name="back" value="{e(back)}">'
    running = queue.get("state", "RUNNING") == "RUNNING"
    forms = [
        button("pause", "Pause", target, ctx.csrf)
        if running
        else button("resume", "Resume", target, ctx.csrf),
        button("purge", "Purge", target, ctx.csrf, f"Purge every task of queue {queue_id}?", danger=True),
        button("delete", "Delete", target, ctx.csrf, f"Delete queue {queue_id} and its tasks?", danger=True),
    ]
    return "".join(f.replace("</form>", extra + "</form>", 1) for f in forms)


def _max_concurrent(queue: dict[str, Any]) -> str:
    concurrent = queue.get("rateLimits", {}).get("maxConcurrentTasks")
    if concurrent is None or int(concurrent) < 0:
        return '<span class="muted">—</span>'
    return e(concurrent)


async def queues(ctx: Ctx, project: str, location: str) -> Result:
    parent = f"projects/{project}/locations/{location}"
    crumbs = _crumbs(project, location)
    title = f"Queues of {project} · {location}"
    token = ctx.query.get("pageToken")
    try:
        listed = await ctx.client.get(
            f"{parent}/queues", readMask=QUEUE_MASK, pageSize=_page_size(ctx), pageToken=token
        )
    except ApiError as error:
        return _failed(ctx, error, title, crumbs, missing=not token)
    now = time.time()
    rows = []
    shown = listed.get("queues", [])
    failed = await asyncio.gather(*(ctx.failed(queue["name"]) for queue in shown))
    for queue, failures in zip(shown, failed, strict=True):
        stats = queue.get("stats", {})
        queue_id = last(queue["name"])
        rows.append(
            f'<tr data-queue="{e(queue_id)}"><td><a href="{queue_url(project, location, queue_id)}">'
            f"{e(queue_id)}</a></td>"
            f'<td class="state state-{e(queue.get("state", ""))}">{e(queue.get("state", ""))}</td>'
            f"<td>{e(target_kind(queue))}</td>"
            f"<td>{value(queue, 'rateLimits', 'maxTasksDispatchedPerSecond')}</td>"
            f"<td>{_max_concurrent(queue)}</td>"
            f'<td class="num">{e(stats.get("tasksCount", 0))}</td>'
            f"<td>{e(age(stats.get('oldestEstimatedArrivalTime'), now))}</td>"
            f'<td class="num">{e(stats.get("executedLastMinuteCount", 0))}</td>'
            f'<td class="num">{e(failures)}</td>'
            f'<td class="num">{e(stats.get("concurrentDispatchesCount", 0))}</td>'
            f'<td class="actions">{_queue_actions(ctx, project, location, queue, "list")}</td></tr>'
        )
    table = (
        '<table class="queues"><thead><tr><th>Queue</th><th>State</th><th>Target</th>'
        "<th>Max rate (/s)</th><th>Max concurrent</th><th>Tasks queued</th><th>Oldest task</th>"
        "<th>Dispatched (last min)</th><th>Failed (last min)</th><th>In flight</th><th>Actions</th>"
        "</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="empty">No queues in this location yet.</p>'
    )

    def href(**query: Any) -> str:
        return queues_url(project, location, **query)

    live = f'<div id="live">{table}{_pager(ctx, href, listed.get("nextPageToken"))}</div>'
    body = live + _create_queue_form(ctx, project, location)
    page = layout(
        title, body, crumbs=crumbs, principal=ctx.principal, csrf=ctx.csrf, refresh=True, notice=_notice(ctx)
    )
    return Page(200, page, visited=(project, location))


def _create_queue_form(ctx: Ctx, project: str, location: str) -> str:
    return (
        f'<h2>Create a queue</h2><form method="post" action="{queues_url(project, location)}" class="create">'
        f'{csrf_field(ctx.csrf)}<input type="hidden" name="action" value="create">'
        '<label>Queue id <input name="queue_id" required pattern="[A-Za-z0-9-]{1,100}" '
        'placeholder="my-queue"></label>'
        '<label>Target <select name="kind"><option value="appEngineHttpTarget">App Engine</option>'
        '<option value="httpTarget">HTTP</option><option value="pullTarget">pull</option></select></label>'
        '<label>Max rate (/s) <input name="max_rate" inputmode="decimal" placeholder="500"></label>'
        '<label>Max concurrent <input name="max_concurrent" inputmode="numeric" placeholder="1000"></label>'
        '<label>Max attempts <input name="max_attempts" inputmode="numeric" placeholder="100"></label>'
        '<button type="submit">Create queue</button></form>'
    )


async def create_queue(ctx: Ctx, project: str, location: str) -> Result:
    parent = f"projects/{project}/locations/{location}"
    form = ctx.form
    queue_id = form.get("queue_id", "").strip()
    kind = form.get("kind", "appEngineHttpTarget")
    if kind not in ("appEngineHttpTarget", "httpTarget", "pullTarget"):
        kind = "appEngineHttpTarget"
    body: dict[str, Any] = {"name": f"{parent}/queues/{queue_id}", kind: {}}
    rates = {
        "maxTasksDispatchedPerSecond": form.get("max_rate", "").strip(),
        "maxConcurrentTasks": form.get("max_concurrent", "").strip(),
    }
    if rates := {k: v for k, v in rates.items() if v}:
        body["rateLimits"] = rates
    if attempts := form.get("max_attempts", "").strip():
        body["retryConfig"] = {"maxAttempts": attempts}
    try:
        await ctx.client.post(f"{parent}/queues", body)
    except ApiError as error:
        return _failed(ctx, error, "The queue was not created", _crumbs(project, location), missing=False)
    return Redirect(_plain(queue_url(project, location, queue_id, done="created", queue=queue_id)))


def _plain(escaped_url: str) -> str:
    return escaped_url.replace("&amp;", "&")


# -- one queue ---------------------------------------------------------------------------------


async def queue(ctx: Ctx, project: str, location: str, queue_id: str) -> Result:
    name = f"projects/{project}/locations/{location}/queues/{queue_id}"
    crumbs = _crumbs(project, location, queue_id)
    try:
        found = await ctx.client.get(name, readMask=QUEUE_MASK)
    except ApiError as error:
        return _failed(ctx, error, f"Queue {queue_id}", crumbs[:-1], missing=True)
    now = time.time()
    stats = found.get("stats", {})
    samples = ctx.history.record(
        name, Sample(now, int(stats.get("executedLastMinuteCount", 0)), int(stats.get("tasksCount", 0)))
    )
    kind = target_kind(found)
    tag = ctx.query.get("tag", "") if kind == "pull" else ""
    size = _page_size(ctx)
    token = ctx.query.get("pageToken")
    try:
        listed = await ctx.client.get(f"{name}/tasks", pageSize=size, pageToken=token)
        tasks_html = _task_table(ctx, project, location, queue_id, kind, listed, tag, size)
    except ApiError as error:
        tasks_html = f'<div class="error" role="alert"><b>{e(error.code)}</b>: {e(error.message)}</div>'
    summary = dl(
        [
            (
                "State",
                f'<span class="state state-{e(found.get("state", ""))}" id="queue-state">'
                f"{e(found.get('state', ''))}</span>",
            ),
            ("Tasks queued", e(stats.get("tasksCount", 0))),
            ("Oldest task", e(age(stats.get("oldestEstimatedArrivalTime"), now))),
            ("Dispatched in the last minute", e(stats.get("executedLastMinuteCount", 0))),
            ("Failed in the last minute", e(await ctx.failed(name))),
            ("In flight", e(stats.get("concurrentDispatchesCount", 0))),
            ("Effective rate (/s)", e(f"{float(stats.get('effectiveExecutionRate', 0)):.3g}")),
        ]
    )
    actions = f'<div class="actions">{_queue_actions(ctx, project, location, found, "queue")}</div>'
    live = (
        f'<div id="live">{actions}<div class="columns"><section>{summary}</section>'
        f"<section><h2>Recent dispatch rate and backlog</h2>{chart(samples)}"
        '<p class="muted">Sampled from the queue\'s stats each time this page refreshes, kept in this '
        "server's memory.</p></section></div>"
        f"<h2>Tasks</h2>{tasks_html}</div>"
    )
    body = (
        live
        + f"<h2>Configuration</h2>{_configuration(found)}"
        + _create_task_form(ctx, project, location, queue_id, kind)
    )
    title = f"Queue {queue_id}"
    page = layout(
        title, body, crumbs=crumbs, principal=ctx.principal, csrf=ctx.csrf, refresh=True, notice=_notice(ctx)
    )
    return Page(200, page, visited=(project, location))


def _configuration(queue: dict[str, Any]) -> str:
    rows = [("Name", e(queue.get("name", ""))), ("Target", e(target_kind(queue)))]
    if "appEngineHttpTarget" in queue:
        rows.append(
            ("App Engine routing override", value(queue, "appEngineHttpTarget", "appEngineRoutingOverride"))
        )
    if "httpTarget" in queue:
        target = queue["httpTarget"]
        for key, label in (
            ("uriOverride", "URI override"),
            ("httpMethod", "HTTP method"),
            ("headerOverrides", "Header overrides"),
            ("oidcToken", "OIDC token"),
            ("oauthToken", "OAuth token"),
        ):
            if key in target:
                rows.append((label, value(target, key)))
    for key, label in (
        ("maxTasksDispatchedPerSecond", "Max dispatches per second"),
        ("maxBurstSize", "Max burst size"),
        ("maxConcurrentTasks", "Max concurrent dispatches"),
    ):
        rows.append((label, value(queue, "rateLimits", key)))
    for key, label in (
        ("maxAttempts", "Max attempts"),
        ("unlimitedAttempts", "Unlimited attempts"),
        ("maxRetryDuration", "Max retry duration"),
        ("minBackoff", "Min backoff"),
        ("maxBackoff", "Max backoff"),
        ("maxDoublings", "Max doublings"),
    ):
        if key in queue.get("retryConfig", {}):
            rows.append((label, value(queue, "retryConfig", key)))
    for key, label in (
        ("taskTtl", "Task TTL"),
        ("tombstoneTtl", "Tombstone TTL"),
        ("purgeTime", "Last purged"),
    ):
        if key in queue:
            rows.append((label, when(queue[key]) if key == "purgeTime" else value(queue, key)))
    return dl(rows)


def _task_table(
    ctx: Ctx,
    project: str,
    location: str,
    queue_id: str,
    kind: str,
    listed: dict[str, Any],
    tag: str,
    size: int,
) -> str:
    tasks = listed.get("tasks", [])
    listed_count = len(tasks)
    if tag:
        tasks = [t for t in tasks if t.get("pullMessage", {}).get("tag") == tag]
    now = time.time()
    rows = []
    for task in tasks:
        task_id = last(task["name"])
        status = task.get("status", {})
        last_status = status.get("lastAttemptStatus", {}).get("responseStatus")
        outcome = (
            status_text(last_status) if isinstance(last_status, dict) else '<span class="muted">—</span>'
        )
        rows.append(
            f'<tr data-task="{e(task_id)}"><td><a href="{task_url(project, location, queue_id, task_id)}">'
            f"{e(task_id)}</a></td><td>{_target(task)}</td><td>{when(task.get('scheduleTime'), now)}</td>"
            f"<td>{when(task.get('createTime'), now)}</td>"
            f'<td class="num">{e(status.get("attemptDispatchCount", 0))}</td>'
            f'<td class="num">{e(status.get("attemptResponseCount", 0))}</td><td>{outcome}</td></tr>'
        )
    failing = sum(
        1
        for t in tasks
        if int(t.get("status", {}).get("lastAttemptStatus", {}).get("responseStatus", {}).get("code", 0))
    )
    failing_note = (
        f'<p class="muted" id="failing">{failing} of the tasks shown last failed (their last attempt was '
        "answered with an error); they are retried by the queue's retry config.</p>"
        if failing
        else ""
    )
    filter_form = ""
    filter_note = ""
    if kind == "pull":
        filter_form = (
            f'<form method="get" action="{queue_url(project, location, queue_id)}" class="filter">'
            f'<label>Tag <input name="tag" value="{e(tag)}"></label>'
            f'<input type="hidden" name="pageSize" value="{size}">'
            '<button type="submit">Filter</button></form>'
        )
        if tag:
            filter_note = (
                f'<p class="muted">{len(tasks)} of the {listed_count} tasks listed on this page have tag '
                f"{e(tag)} (ListTasks has no filter: each page is filtered as it is listed).</p>"
            )
    sizes = "".join(
        f'<a href="{queue_url(project, location, queue_id, pageSize=n, tag=tag)}"'
        + (' class="current"' if n == size else "")
        + f">{n}</a> "
        for n in PAGE_SIZES
    )
    table = (
        '<table class="tasks"><thead><tr><th>Task</th><th>Target</th><th>Scheduled</th><th>Created</th>'
        "<th>Dispatches</th><th>Responses</th><th>Last response</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="empty">No tasks on this page.</p>'
    )

    def href(**query: Any) -> str:
        return queue_url(project, location, queue_id, **query)

    pager = _pager(ctx, href, listed.get("nextPageToken"), pageSize=size, tag=tag)
    return (
        f'{filter_form}<p class="muted">Tasks per page: {sizes}</p>{filter_note}{failing_note}{table}{pager}'
    )


def _target(task: dict[str, Any]) -> str:
    if "pullMessage" in task:
        tag = task["pullMessage"].get("tag")
        return f"pull · tag <code>{e(tag)}</code>" if tag else "pull"
    if "httpRequest" in task:
        request = task["httpRequest"]
        return f"{e(request.get('httpMethod', 'POST'))} <code>{e(request.get('url', ''))}</code>"
    if "appEngineHttpRequest" in task:
        request = task["appEngineHttpRequest"]
        method, relative = request.get("httpMethod", "POST"), request.get("relativeUrl", "/")
        return f"{e(method)} <code>{e(relative)}</code> (App Engine)"
    return "—"


def _create_task_form(ctx: Ctx, project: str, location: str, queue_id: str, kind: str) -> str:
    fields = (
        '<label>Tag <input name="tag"></label><label class="wide">Payload <textarea name="body" rows="4">'
        "</textarea></label>"
        if kind == "pull"
        else (
            '<label>Method <select name="method">'
            + "".join(f"<option>{m}</option>" for m in METHODS)
            + "</select></label>"
            + (
                '<label>URL <input name="url" required placeholder="https://example.com/handler"></label>'
                if kind == "HTTP"
                else '<label>Relative URL <input name="relative_url" placeholder="/handler"></label>'
            )
            + '<label class="wide">Headers, one "Name: value" a line '
            '<textarea name="headers" rows="3"></textarea></label>'
            '<label class="wide">Body <textarea name="body" rows="4"></textarea></label>'
        )
    )
    return (
        f'<h2>Create a task</h2><form method="post" action="{queue_url(project, location, queue_id)}" '
        f'class="create">{csrf_field(ctx.csrf)}<input type="hidden" name="action" value="create-task">'
        '<label>Task id (optional) <input name="task_id" pattern="[A-Za-z0-9_-]{1,500}"></label>'
        '<label>Delay (s) <input name="delay_s" inputmode="decimal" placeholder="0"></label>'
        f'{fields}<button type="submit">Create task</button></form>'
    )


def _headers(text: str) -> dict[str, str]:
    headers = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, colon, content = line.partition(":")
        if not colon or not key.strip():
            raise ApiError(400, "INVALID_ARGUMENT", f"Header line {number} is not 'Name: value'.")
        headers[key.strip()] = content.strip()
    return headers


def _schedule(delay: str) -> str | None:
    if not delay.strip():
        return None
    try:
        seconds = float(delay)
    except ValueError:
        raise ApiError(400, "INVALID_ARGUMENT", f"Delay {delay!r} is not a number of seconds.") from None
    if not 0 <= seconds <= 365 * 86400:
        raise ApiError(400, "INVALID_ARGUMENT", "Delay must be between 0 and a year of seconds.")
    at = datetime.fromtimestamp(time.time() + seconds, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def queue_action(ctx: Ctx, project: str, location: str, queue_id: str) -> Result:
    name = f"projects/{project}/locations/{location}/queues/{queue_id}"
    action = ctx.form.get("action", "")
    back_to_list = ctx.form.get("back") == "list"
    crumbs = _crumbs(project, location, queue_id)
    try:
        if action in ("pause", "resume", "purge"):
            await ctx.client.post(f"{name}:{action}")
            done = {"pause": "paused", "resume": "resumed", "purge": "purged"}[action]
            if back_to_list:
                return Redirect(_plain(queues_url(project, location, done=done, queue=queue_id)))
            return Redirect(_plain(queue_url(project, location, queue_id, done=done, queue=queue_id)))
        if action == "delete":
            await ctx.client.delete(name)
            return Redirect(_plain(queues_url(project, location, done="deleted", queue=queue_id)))
        if action == "create-task":
            return await _create_task(ctx, project, location, queue_id)
    except ApiError as error:
        return _failed(ctx, error, f"Queue {queue_id}: {action} failed", crumbs, missing=False)
    return _failed(
        ctx, ApiError(400, "INVALID_ARGUMENT", f"Unknown action {action!r}."), "Bad request", crumbs, False
    )


async def _create_task(ctx: Ctx, project: str, location: str, queue_id: str) -> Result:
    name = f"projects/{project}/locations/{location}/queues/{queue_id}"
    form = ctx.form
    found = await ctx.client.get(name)
    kind = target_kind(found)
    task: dict[str, Any] = {}
    body = form.get("body", "")
    if kind == "pull":
        task["pullMessage"] = {"payload": _encode(body), **({"tag": form["tag"]} if form.get("tag") else {})}
    else:
        request: dict[str, Any] = {"httpMethod": form.get("method") or "POST"}
        if headers := _headers(form.get("headers", "")):
            request["headers"] = headers
        if kind == "HTTP":
            request["url"] = form.get("url", "").strip()
            if body:
                request["body"] = _encode(body)
            task["httpRequest"] = request
        else:
            if relative := form.get("relative_url", "").strip():
                request["relativeUrl"] = relative
            if body:
                request["payload"] = _encode(body)
            task["appEngineHttpRequest"] = request
    if task_id := form.get("task_id", "").strip():
        task["name"] = f"{name}/tasks/{task_id}"
    if schedule := _schedule(form.get("delay_s", "")):
        task["scheduleTime"] = schedule
    created = await ctx.client.post(f"{name}/tasks", {"task": task})
    task_id = last(created["name"])
    return Redirect(_plain(task_url(project, location, queue_id, task_id, done="task-created", task=task_id)))


# -- one task ----------------------------------------------------------------------------------


async def task(ctx: Ctx, project: str, location: str, queue_id: str, task_id: str) -> Result:
    name = f"projects/{project}/locations/{location}/queues/{queue_id}/tasks/{task_id}"
    crumbs = _crumbs(project, location, queue_id)
    title = f"Task {task_id}"
    note = ""
    try:
        found = await ctx.client.get(name, responseView="FULL")
    except ApiError as error:
        if error.code != "PERMISSION_DENIED":
            return _failed(ctx, error, title, crumbs, missing=True)
        try:  # FULL needs cloudtasks.tasks.fullView; the basic view may still be allowed
            found = await ctx.client.get(name)
        except ApiError as basic_error:
            return _failed(ctx, basic_error, title, crumbs, missing=True)
        note = f'<p class="muted">Bodies are hidden: {e(error.message)}</p>'
    now = time.time()
    kind = task_kind(found)
    status = found.get("status", {})
    schedule = dl(
        [
            ("Name", e(found.get("name", ""))),
            ("Kind", e(kind)),
            (
                "Scheduled" if kind != "pull" else "Scheduled (lease expiry when leased)",
                when(found.get("scheduleTime"), now),
            ),
            ("Created", when(found.get("createTime"), now)),
            ("View", e(found.get("view", ""))),
        ]
        + ([("Retry config", value(found, "retryConfig"))] if "retryConfig" in found else [])
    )
    attempts = dl(
        [
            ("Dispatches", e(status.get("attemptDispatchCount", 0))),
            ("Responses", e(status.get("attemptResponseCount", 0))),
            ("First attempt", _attempt(status.get("firstAttemptStatus"), now)),
            ("Last attempt", _attempt(status.get("lastAttemptStatus"), now)),
        ]
    )
    last_response = status.get("lastAttemptStatus", {}).get("responseStatus")
    response_html = (
        f'<p id="last-response">{status_text(last_response)}</p>'
        if isinstance(last_response, dict)
        else '<p class="muted" id="last-response">No response yet.</p>'
    )
    target = task_url(project, location, queue_id, task_id)
    buttons = (
        button("run", "Run", target, ctx.csrf)
        if kind != "pull"
        else '<span class="muted">Pull tasks are leased by workers, not run.</span> '
    ) + button("delete", "Delete", target, ctx.csrf, f"Delete task {task_id}?", danger=True)
    live = (
        f'<div id="live"><div class="actions">{buttons}</div><div class="columns"><section><h2>Schedule</h2>'
        f"{schedule}</section><section><h2>Attempts</h2>{attempts}<h3>Last response</h3>{response_html}"
        f"</section></div>{_request(found)}{note}</div>"
    )
    page = layout(
        title, live, crumbs=crumbs, principal=ctx.principal, csrf=ctx.csrf, refresh=True, notice=_notice(ctx)
    )
    return Page(200, page, visited=(project, location))


def _attempt(attempt: Any, now: float) -> str:
    if not isinstance(attempt, dict) or not attempt:
        return '<span class="muted">—</span>'
    response = attempt.get("responseStatus")
    outcome = status_text(response) if isinstance(response, dict) else "no response"
    return (
        f"scheduled {when(attempt.get('scheduleTime'), now)}"
        f"<br>dispatched {when(attempt.get('dispatchTime'), now)}"
        f"<br>answered {when(attempt.get('responseTime'), now)}<br>outcome: {outcome}"
    )


def _request(task: dict[str, Any]) -> str:
    if "pullMessage" in task:
        message = task["pullMessage"]
        return (
            f"<h2>Pull message</h2>{dl([('Tag', value(message, 'tag'))])}"
            f"<h3>Payload</h3>{decoded(message.get('payload'))}"
        )
    request = task.get("httpRequest") or task.get("appEngineHttpRequest")
    if request is None:
        return ""
    rows = [("Method", e(request.get("httpMethod", "POST")))]
    if "url" in request:
        rows.append(("URL", f"<code>{e(request['url'])}</code>"))
    if "relativeUrl" in request or "appEngineHttpRequest" in task:
        rows.append(("Relative URL", f"<code>{e(request.get('relativeUrl', '/'))}</code>"))
    if "appEngineRouting" in request:
        rows.append(("App Engine routing", value(request, "appEngineRouting")))
    for key, label in (("oidcToken", "OIDC token"), ("oauthToken", "OAuth token")):
        if key in request:
            rows.append((label, value(request, key)))
    headers = "".join(
        f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>"
        for k, v in sorted(request.get("headers", {}).items())
    )
    headers_html = f'<table class="headers">{headers}</table>' if headers else '<p class="muted">None.</p>'
    body = request.get("body") if "body" in request else request.get("payload")
    return f"<h2>Request</h2>{dl(rows)}<h3>Headers</h3>{headers_html}<h3>Body</h3>{decoded(body)}"


async def task_action(ctx: Ctx, project: str, location: str, queue_id: str, task_id: str) -> Result:
    name = f"projects/{project}/locations/{location}/queues/{queue_id}/tasks/{task_id}"
    action = ctx.form.get("action", "")
    crumbs = _crumbs(project, location, queue_id)
    try:
        if action == "run":
            await ctx.client.post(f"{name}:run")
            return Redirect(_plain(queue_url(project, location, queue_id, done="task-run", task=task_id)))
        if action == "delete":
            await ctx.client.delete(name)
            return Redirect(_plain(queue_url(project, location, queue_id, done="task-deleted", task=task_id)))
    except ApiError as error:
        return _failed(ctx, error, f"Task {task_id}: {action} failed", crumbs, missing=False)
    return _failed(
        ctx, ApiError(400, "INVALID_ARGUMENT", f"Unknown action {action!r}."), "Bad request", crumbs, False
    )


def not_found(ctx: Ctx, path: str) -> Page:
    body = (
        f'<div class="error" role="alert">There is no console page at {e(path)}.</div>'
        f'<p><a href="{BASE}">Start</a></p>'
    )
    return Page(404, layout("Not found", body, principal=ctx.principal, csrf=ctx.csrf))
