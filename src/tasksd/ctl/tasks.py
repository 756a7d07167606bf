"""``tasksd tasks …``: gcloud tasks' commands for creating, reading, running and deleting
tasks (v2 for HTTP and App Engine tasks, v2beta2 for pull tasks), and gcloud alpha's
``lease``, ``acknowledge``, ``renew-lease`` and ``cancel-lease`` for pull workers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import IO, Any

import click

from tasksd.ctl.args import Duration, Header, KeyValues, Timestamp, read_body
from tasksd.ctl.client import Ctl, common_options, either
from tasksd.ctl.output import Column, Resource, as_dict, basename, emit, emit_list, field, from_dict, status
from tasksd.ctl.queues import HTTP_METHODS


def task_type(task: Resource) -> str:
    if "pullMessage" in task:
        return "pull"
    if "appEngineHttpRequest" in task:
        return "app-engine"
    # v2 tasks always hold a request; a v2beta2 one in BASIC view may show no pullMessage.
    return "http" if "httpRequest" in task else "pull"


TASK_COLUMNS: Sequence[Column] = (
    ("TASK_NAME", lambda t: basename(t["name"])),
    ("TYPE", task_type),
    ("CREATE_TIME", field("createTime")),
    ("SCHEDULE_TIME", field("scheduleTime")),
    ("DISPATCH_ATTEMPTS", lambda t: field("dispatchCount", field("status.attemptDispatchCount", 0)(t))(t)),
    ("RESPONSE_ATTEMPTS", lambda t: field("responseCount", field("status.attemptResponseCount", 0)(t))(t)),
    (
        "LAST_ATTEMPT_STATUS",
        lambda t: (
            field(
                "lastAttempt.responseStatus.message",
                field("status.lastAttemptStatus.responseStatus.message", "Unknown")(t),
            )(t)
            or "Unknown"
        ),
    ),
)


def _pull_in_v2(task: Resource) -> bool:
    """Whether a task v2 returned is a pull task (v2 shows them without their pull message):
    it is shown again as v2beta2 shows it."""
    return "httpRequest" not in task and "appEngineHttpRequest" not in task


def _view(value: str | None) -> dict[str, Any]:
    return {"response_view": value.upper()} if value else {}


@click.group()
def tasks() -> None:
    """Manage tasks (gcloud tasks)."""


def _queue_option(required: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--queue", required=required, help="The queue: an id, or its full name.")


def _create_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option(
        "--schedule-time", type=Timestamp(), help="When the task is due (RFC 3339 / ISO 8601)."
    )(fn)
    fn = _queue_option(required=True)(fn)
    return click.argument("task", required=False)(fn)


def _body_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--body-file", type=click.File("rb"), help="A file with the body ('-': stdin).")(fn)
    fn = click.option("--body-content", help="The body sent to the worker.")(fn)
    fn = click.option(
        "--header",
        "headers",
        type=Header(),
        multiple=True,
        help="A header, HEADER_FIELD:HEADER_VALUE (repeatable).",
    )(fn)
    return click.option(
        "--method", type=click.Choice(HTTP_METHODS, case_sensitive=False), help="Default POST."
    )(fn)


def _new_task(
    ctl: Ctl, task: str | None, queue: str, schedule_time: str | None, content: Resource
) -> tuple[str, Resource]:
    parent = ctl.queue_path(queue)
    body: Resource = dict(content)
    if task:
        body["name"] = ctl.task_path(task, queue)
    if schedule_time:
        body["scheduleTime"] = schedule_time
    return parent, body


def _request(method: str | None, headers: tuple[tuple[str, str], ...], body: bytes | None) -> Resource:
    request: Resource = {}
    if method:
        request["httpMethod"] = method.upper()
    if headers:
        request["headers"] = dict(headers)
    if body is not None:
        request["body"] = base64.b64encode(body).decode()
    return request


def _created(ctl: Ctl, created: Any) -> None:
    data = as_dict(created)
    status(f"Created task [{data.get('name', '')}].")
    emit(ctl.output_format, data)


@tasks.command("create-http-task")
@_create_options
@click.option("--url", required=True, help="The full URL the task is sent to.")
@_body_options
@click.option("--oidc-service-account-email", help="Send an OIDC token of this service account.")
@click.option("--oidc-token-audience", help="The audience of the OIDC token (default: the URL).")
@click.option("--oauth-service-account-email", help="Send an OAuth token of this service account.")
@click.option("--oauth-token-scope", help="The scope of the OAuth token.")
@common_options
def create_http_task(
    ctl: Ctl,
    task: str | None,
    queue: str,
    schedule_time: str | None,
    url: str,
    method: str | None,
    headers: tuple[tuple[str, str], ...],
    body_content: str | None,
    body_file: IO[bytes] | None,
    oidc_service_account_email: str | None,
    oidc_token_audience: str | None,
    oauth_service_account_email: str | None,
    oauth_token_scope: str | None,
) -> None:
    """Create a task sent to an HTTP URL."""
    request = {"url": url, **_request(method, headers, read_body(body_content, body_file, "body"))}
    if (oidc_service_account_email or oidc_token_audience) and (
        oauth_service_account_email or oauth_token_scope
    ):
        raise click.UsageError("an OIDC token and an OAuth token cannot both be asked for")
    if oidc_token_audience and not oidc_service_account_email:
        raise click.UsageError("--oidc-token-audience needs --oidc-service-account-email")
    if oauth_token_scope and not oauth_service_account_email:
        raise click.UsageError("--oauth-token-scope needs --oauth-service-account-email")
    if oidc_service_account_email:
        request["oidcToken"] = {"serviceAccountEmail": oidc_service_account_email}
        if oidc_token_audience:
            request["oidcToken"]["audience"] = oidc_token_audience
    if oauth_service_account_email:
        request["oauthToken"] = {"serviceAccountEmail": oauth_service_account_email}
        if oauth_token_scope:
            request["oauthToken"]["scope"] = oauth_token_scope
    parent, body = _new_task(ctl, task, queue, schedule_time, {"httpRequest": request})
    _created(ctl, ctl.call(ctl.v2.create_task, parent=parent, task=from_dict("v2", "Task", body)))


@tasks.command("create-app-engine-task")
@_create_options
@click.option("--relative-uri", help="The path and query the task is sent to (default /).")
@click.option(
    "--routing",
    type=KeyValues(("service", "version", "instance")),
    help="App Engine routing: service:S,version:V,instance:I.",
)
@_body_options
@common_options
def create_app_engine_task(
    ctl: Ctl,
    task: str | None,
    queue: str,
    schedule_time: str | None,
    relative_uri: str | None,
    routing: dict[str, str] | None,
    method: str | None,
    headers: tuple[tuple[str, str], ...],
    body_content: str | None,
    body_file: IO[bytes] | None,
) -> None:
    """Create a task sent to an App Engine handler."""
    request = _request(method, headers, read_body(body_content, body_file, "body"))
    if relative_uri:
        request["relativeUri"] = relative_uri
    if routing:
        request["appEngineRouting"] = routing
    parent, body = _new_task(ctl, task, queue, schedule_time, {"appEngineHttpRequest": request})
    _created(ctl, ctl.call(ctl.v2.create_task, parent=parent, task=from_dict("v2", "Task", body)))


@tasks.command("create-pull-task")
@_create_options
@click.option("--payload-content", help="The payload workers lease.")
@click.option("--payload-file", type=click.File("rb"), help="A file with the payload ('-': stdin).")
@click.option("--tag", help="A tag to lease by.")
@common_options
def create_pull_task(
    ctl: Ctl,
    task: str | None,
    queue: str,
    schedule_time: str | None,
    payload_content: str | None,
    payload_file: IO[bytes] | None,
    tag: str | None,
) -> None:
    """Create a task in a pull queue (v2beta2)."""
    message: Resource = {}
    payload = read_body(payload_content, payload_file, "payload")
    if payload is not None:
        message["payload"] = base64.b64encode(payload).decode()
    if tag:
        message["tag"] = tag
    parent, body = _new_task(ctl, task, queue, schedule_time, {"pullMessage": message})
    _created(ctl, ctl.call(ctl.v2beta2.create_task, parent=parent, task=from_dict("v2beta2", "Task", body)))


_RESPONSE_VIEW = click.option(
    "--response-view",
    type=click.Choice(["basic", "full"], case_sensitive=False),
    help="full also shows bodies and payloads (and needs cloudtasks.tasks.fullView).",
)


@tasks.command("list")
@_queue_option(required=True)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many tasks.")
@click.option("--page-size", type=click.IntRange(1, 1000), help="Tasks fetched per call.")
@_RESPONSE_VIEW
@common_options
def list_tasks(
    ctl: Ctl, queue: str, limit: int | None, page_size: int | None, response_view: str | None
) -> None:
    """List the tasks of a queue."""
    parent = ctl.queue_path(queue)
    extra = {**_view(response_view), **({"page_size": page_size} if page_size else {})}

    def take(pager: Any) -> list[Resource]:
        found: list[Resource] = []
        for item in pager:
            if limit is not None and len(found) >= limit:
                break
            found.append(as_dict(item))
        return found

    found = either(
        lambda: take(ctl.call(ctl.v2.list_tasks, request={"parent": parent, **extra})),
        lambda: take(ctl.call(ctl.v2beta2.list_tasks, request={"parent": parent, **extra})),
    )
    if any(_pull_in_v2(task) for task in found):
        found = take(ctl.call(ctl.v2beta2.list_tasks, request={"parent": parent, **extra}))
    emit_list(ctl.output_format, found, TASK_COLUMNS)


def _task_command(name: str, doc: str, verb: str, past: str | None) -> None:
    """describe, run and delete: one task by name, v2 first and v2beta2 for pull tasks."""

    def run(ctl: Ctl, task: str, queue: str | None, **extra: Any) -> None:
        path = ctl.task_path(task, queue)
        kwargs = _view(extra.get("response_view"))
        result = either(
            lambda: ctl.call(getattr(ctl.v2, f"{verb}_task"), request={"name": path, **kwargs}),
            lambda: ctl.call(getattr(ctl.v2beta2, f"{verb}_task"), request={"name": path, **kwargs}),
        )
        if past:
            status(f"{past} task [{path}].")
        if verb != "delete":
            shown = as_dict(result)
            if _pull_in_v2(shown):
                shown = as_dict(ctl.call(ctl.v2beta2.get_task, request={"name": path, **kwargs}))
            emit(ctl.output_format, shown)

    run.__name__ = name.replace("-", "_")
    run.__doc__ = doc
    command = common_options(run)
    if verb != "delete":
        command = _RESPONSE_VIEW(command)
    command = _queue_option(required=False)(command)
    tasks.command(name)(click.argument("task")(command))


_task_command("describe", "Show a task.", "get", None)
_task_command("run", "Dispatch a task now, even in a paused queue.", "run", "Ran")
_task_command("delete", "Delete a task.", "delete", "Deleted")


# Pull workers (gcloud alpha tasks) ------------------------------------------------------


@tasks.command("lease")
@_queue_option(required=True)
@click.option("--lease-duration", type=Duration(), required=True, help="How long the lease lasts, e.g. 60s.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=1000, show_default=True, help="Tasks to lease."
)
@click.option("--tag", help="Lease only tasks with this tag.")
@click.option("--oldest-tag", is_flag=True, help="Lease only tasks with the tag of the oldest task.")
@_RESPONSE_VIEW
@common_options
def lease(
    ctl: Ctl,
    queue: str,
    lease_duration: str,
    limit: int,
    tag: str | None,
    oldest_tag: bool,
    response_view: str | None,
) -> None:
    """Lease tasks of a pull queue (v2beta2 LeaseTasks)."""
    if tag is not None and oldest_tag:
        raise click.UsageError("--tag and --oldest-tag cannot be used together")
    request: Resource = {"parent": ctl.queue_path(queue), "maxTasks": limit, "leaseDuration": lease_duration}
    if response_view:
        request["responseView"] = response_view.upper()
    if oldest_tag:
        request["filter"] = "tag_function=oldest_tag()"
    elif tag is not None:
        request["filter"] = f'tag="{tag}"'
    leased = ctl.call(ctl.v2beta2.lease_tasks, request=from_dict("v2beta2", "LeaseTasksRequest", request))
    emit_list(ctl.output_format, [as_dict(t) for t in leased.tasks], TASK_COLUMNS)


def _lease_command(name: str, doc: str, method: str, past: str, with_duration: bool) -> None:
    def run(ctl: Ctl, task: str, queue: str | None, schedule_time: str, **extra: Any) -> None:
        request: Resource = {"name": ctl.task_path(task, queue), "scheduleTime": schedule_time}
        if with_duration:
            request["leaseDuration"] = extra["lease_duration"]
        if extra.get("response_view"):
            request["responseView"] = str(extra["response_view"]).upper()
        request_type = {
            "acknowledge_task": "AcknowledgeTaskRequest",
            "renew_lease": "RenewLeaseRequest",
            "cancel_lease": "CancelLeaseRequest",
        }[method]
        result = ctl.call(getattr(ctl.v2beta2, method), request=from_dict("v2beta2", request_type, request))
        status(f"{past} task [{request['name']}].")
        if result is not None:
            emit(ctl.output_format, as_dict(result))

    run.__name__ = name.replace("-", "_")
    run.__doc__ = doc
    command = common_options(run)
    if method != "acknowledge_task":
        command = _RESPONSE_VIEW(command)
    if with_duration:
        command = click.option(
            "--lease-duration", type=Duration(), required=True, help="The new lease, from now, e.g. 60s."
        )(command)
    command = click.option(
        "--schedule-time",
        type=Timestamp(),
        required=True,
        help="The task's scheduleTime as the lease returned it (proves the lease is held).",
    )(command)
    command = _queue_option(required=False)(command)
    tasks.command(name)(click.argument("task")(command))


_lease_command(
    "acknowledge",
    "Acknowledge a leased task: it is done and deleted.",
    "acknowledge_task",
    "Acknowledged",
    False,
)
_lease_command("renew-lease", "Extend the lease of a leased task.", "renew_lease", "Renewed lease of", True)
_lease_command(
    "cancel-lease",
    "Give a leased task back, leasable again at once.",
    "cancel_lease",
    "Cancelled lease of",
    False,
)
