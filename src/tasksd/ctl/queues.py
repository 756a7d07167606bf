"""``tasksd queues …``: gcloud tasks queues' commands and flags against a running tasksd.

Push queues are created, read and changed through v2 and shown as v2 REST shows them; pull
queues (``create --type pull``) live in v2beta2 only, so those commands fall back to v2beta2
for a queue v2 does not see, and show it as v2beta2 REST does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from google.api_core import exceptions as api_exceptions
from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2
from google.protobuf import field_mask_pb2, json_format
from google.type import expr_pb2

from tasksd.ctl.args import Duration, Header, KeyValues, MaxAttempts
from tasksd.ctl.client import Ctl, CtlError, common_options, confirm, either
from tasksd.ctl.output import Column, Resource, as_dict, basename, emit, emit_list, field, from_dict, status

HTTP_METHODS = ("POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS")


@dataclass(frozen=True)
class QueueFlag:
    """One mutable field of a queue: its flag, where it goes in the v2 Queue, its update mask."""

    option: str
    type: Any
    help: str
    path: tuple[str, ...]
    mask: str
    convert: Callable[[Any], Any] = lambda value: value
    multiple: bool = False
    pull: bool = False
    """Whether pull queues have it too (their retry settings)."""

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")


def _uri_override(parts: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hint = "--http-uri-override"
    if parts.get("scheme", "http").lower() not in ("http", "https"):
        raise click.BadParameter(f"scheme {parts['scheme']!r} is not http or https", param_hint=hint)
    if parts.get("mode", "always").lower() not in ("always", "if_not_exists"):
        raise click.BadParameter(f"mode {parts['mode']!r} is not always or if_not_exists", param_hint=hint)
    if parts.get("scheme"):
        out["scheme"] = parts["scheme"].upper()
    if parts.get("host"):
        out["host"] = parts["host"]
    if parts.get("port"):
        if not parts["port"].isdigit():
            raise click.BadParameter(
                f"port {parts['port']!r} is not a number", param_hint="--http-uri-override"
            )
        out["port"] = parts["port"]
    if "path" in parts:
        out["pathOverride"] = {"path": parts["path"]}
    if "query" in parts:
        out["queryOverride"] = {"queryParams": parts["query"]}
    if parts.get("mode"):
        out["uriOverrideEnforceMode"] = parts["mode"].upper()
    return out


FLAGS: tuple[QueueFlag, ...] = (
    QueueFlag(
        "--max-attempts",
        MaxAttempts(),
        "Attempts per task, first included; 'unlimited' or -1 for no limit.",
        ("retryConfig", "maxAttempts"),
        "retry_config.max_attempts",
        pull=True,
    ),
    QueueFlag(
        "--max-retry-duration",
        Duration(),
        "How long after its first attempt a failed task is still retried, e.g. 1h.",
        ("retryConfig", "maxRetryDuration"),
        "retry_config.max_retry_duration",
        pull=True,
    ),
    QueueFlag(
        "--max-doublings",
        int,
        "How many times the backoff doubles before it grows linearly.",
        ("retryConfig", "maxDoublings"),
        "retry_config.max_doublings",
    ),
    QueueFlag(
        "--min-backoff",
        Duration(),
        "The shortest wait before a retry, e.g. 0.1s.",
        ("retryConfig", "minBackoff"),
        "retry_config.min_backoff",
    ),
    QueueFlag(
        "--max-backoff",
        Duration(),
        "The longest wait before a retry, e.g. 1h.",
        ("retryConfig", "maxBackoff"),
        "retry_config.max_backoff",
    ),
    QueueFlag(
        "--max-dispatches-per-second",
        float,
        "The most tasks dispatched per second.",
        ("rateLimits", "maxDispatchesPerSecond"),
        "rate_limits.max_dispatches_per_second",
    ),
    QueueFlag(
        "--max-concurrent-dispatches",
        int,
        "The most attempts in flight at once.",
        ("rateLimits", "maxConcurrentDispatches"),
        "rate_limits.max_concurrent_dispatches",
    ),
    QueueFlag(
        "--log-sampling-ratio",
        click.FloatRange(0.0, 1.0),
        "The fraction of operations logged, 0.0 to 1.0.",
        ("stackdriverLoggingConfig", "samplingRatio"),
        "stackdriver_logging_config.sampling_ratio",
    ),
    QueueFlag(
        "--routing-override",
        KeyValues(("service", "version", "instance")),
        "App Engine routing of every task: service:S,version:V,instance:I.",
        ("appEngineRoutingOverride",),
        "app_engine_routing_override",
    ),
    QueueFlag(
        "--http-uri-override",
        KeyValues(("scheme", "host", "port", "path", "query", "mode")),
        "Override of HTTP tasks' URLs: scheme:https,host:H,port:P,path:/p,query:a=b,mode:always.",
        ("httpTarget", "uriOverride"),
        "http_target.uri_override",
        convert=_uri_override,
    ),
    QueueFlag(
        "--http-method-override",
        click.Choice(HTTP_METHODS, case_sensitive=False),
        "The HTTP method of every HTTP task.",
        ("httpTarget", "httpMethod"),
        "http_target.http_method",
        convert=str.upper,
    ),
    QueueFlag(
        "--http-header-override",
        Header(),
        "A header set on every HTTP task, HEADER_FIELD:HEADER_VALUE (repeatable).",
        ("httpTarget", "headerOverrides"),
        "http_target.header_overrides",
        convert=lambda headers: [{"header": {"key": key, "value": value}} for key, value in headers],
        multiple=True,
    ),
    QueueFlag(
        "--http-oauth-service-account-email-override",
        str,
        "The service account whose OAuth token HTTP tasks carry.",
        ("httpTarget", "oauthToken", "serviceAccountEmail"),
        "http_target.oauth_token.service_account_email",
    ),
    QueueFlag(
        "--http-oauth-token-scope-override",
        str,
        "The scope of that OAuth token.",
        ("httpTarget", "oauthToken", "scope"),
        "http_target.oauth_token.scope",
    ),
    QueueFlag(
        "--http-oidc-service-account-email-override",
        str,
        "The service account whose OIDC token HTTP tasks carry.",
        ("httpTarget", "oidcToken", "serviceAccountEmail"),
        "http_target.oidc_token.service_account_email",
    ),
    QueueFlag(
        "--http-oidc-token-audience-override",
        str,
        "The audience of that OIDC token.",
        ("httpTarget", "oidcToken", "audience"),
        "http_target.oidc_token.audience",
    ),
)


def _given(flag: QueueFlag, values: dict[str, Any]) -> bool:
    value = values.get(flag.dest)
    return bool(value) if flag.multiple else value is not None


def _set(resource: Resource, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        resource = resource.setdefault(key, {})
    resource[path[-1]] = value


def queue_flags(with_clear: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The queue-field flags (and, for update, their ``--clear-…`` twins)."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        for flag in reversed(FLAGS):
            if with_clear:
                fn = click.option(
                    "--clear-" + flag.option.removeprefix("--"),
                    is_flag=True,
                    help=f"Reset {flag.option.removeprefix('--')} to its default.",
                )(fn)
            fn = click.option(flag.option, type=flag.type, multiple=flag.multiple, help=flag.help)(fn)
        return fn

    return decorate


def queue_body(values: dict[str, Any], pull: bool) -> tuple[Resource, list[str]]:
    """The queue fields the flags give, as REST JSON (v2 for push, v2beta2 for pull queues),
    and the update mask that names exactly those flags (and the ``--clear-…`` ones)."""
    body: Resource = {}
    mask: list[str] = []
    for flag in FLAGS:
        given = _given(flag, values)
        cleared = bool(values.get("clear_" + flag.dest))
        if not (given or cleared):
            continue
        if given and cleared:
            raise click.UsageError(f"{flag.option} and --clear-{flag.option[2:]} cannot be used together")
        if pull and not flag.pull:
            raise click.UsageError(f"{flag.option} does not apply to pull queues")
        path = flag.mask
        if given:
            value = flag.convert(values[flag.dest])
            if pull and flag.dest == "max_attempts" and value == -1:
                # v2beta2 has a field of its own for "unlimited"
                _set(body, ("retryConfig", "unlimitedAttempts"), True)
                path = "retry_config.unlimited_attempts"
            else:
                _set(body, flag.path, value)
        if path not in mask:
            mask.append(path)
    return body, mask


def is_pull(resource: Resource) -> bool:
    return "pullTarget" in resource


def _unlimited(value: object) -> object:
    return "unlimited" if value in ("", 0, -1, None) else value


QUEUE_COLUMNS: Sequence[Column] = (
    ("QUEUE_NAME", lambda q: basename(q["name"])),
    ("TYPE", lambda q: "pull" if is_pull(q) else "push"),
    ("STATE", field("state", "RUNNING")),
    (
        "MAX_NUM_OF_TASKS",
        lambda q: _unlimited(
            field("rateLimits.maxConcurrentDispatches", field("rateLimits.maxConcurrentTasks")(q))(q)
        ),
    ),
    (
        "MAX_RATE (/sec)",
        lambda q: _unlimited(
            field("rateLimits.maxDispatchesPerSecond", field("rateLimits.maxTasksDispatchedPerSecond")(q))(q)
        ),
    ),
    (
        "MAX_ATTEMPTS",
        lambda q: (
            "unlimited"
            if field("retryConfig.unlimitedAttempts", False)(q)
            else _unlimited(field("retryConfig.maxAttempts")(q))
        ),
    ),
)


@click.group()
def queues() -> None:
    """Manage queues (gcloud tasks queues)."""


@queues.command("create")
@click.argument("queue")
@click.option(
    "--type",
    "queue_type",
    type=click.Choice(["push", "pull"]),
    default="push",
    show_default=True,
    help="pull: a pull queue (v2beta2), whose tasks workers lease.",
)
@queue_flags(with_clear=False)
@common_options
def create(ctl: Ctl, queue: str, queue_type: str, **values: Any) -> None:
    """Create a queue."""
    pull = queue_type == "pull"
    body, _ = queue_body(values, pull)
    name = ctl.queue_path(queue)
    parent = name.rsplit("/queues/", 1)[0]
    body["name"] = name
    if pull:
        body["pullTarget"] = {}
        created = ctl.call(ctl.v2beta2.create_queue, parent=parent, queue=from_dict("v2beta2", "Queue", body))
    else:
        created = ctl.call(ctl.v2.create_queue, parent=parent, queue=from_dict("v2", "Queue", body))
    status(f"Created queue [{name}].")
    emit(ctl.output_format, as_dict(created))


def _mapping(value: object) -> Resource:
    return value if isinstance(value, dict) else {}


def _whole_tokens(body: Resource, mask: list[str], current: Resource) -> None:
    """Name a queue's OAuth or OIDC token whole in the mask (tasksd updates two levels deep),
    keeping the current value of the part no flag changes."""
    for token in ("oauthToken", "oidcToken"):
        snake = "oauth_token" if token == "oauthToken" else "oidc_token"
        parts = [path for path in mask if path.startswith(f"http_target.{snake}.")]
        if not parts:
            continue
        merged: Resource = dict(_mapping(field(f"httpTarget.{token}", {})(current)))
        for path in parts:
            mask.remove(path)
            camel = (
                "serviceAccountEmail" if path.endswith("service_account_email") else path.rsplit(".", 1)[1]
            )
            merged.pop(camel, None)
        merged.update(_mapping(field(f"httpTarget.{token}", {})(body)))
        _set(body, ("httpTarget", token), merged)
        mask.append(f"http_target.{snake}")


@queues.command("update")
@click.argument("queue")
@queue_flags(with_clear=True)
@common_options
def update(ctl: Ctl, queue: str, **values: Any) -> None:
    """Update a queue: only the fields of the flags given change (an update mask of those).

    A queue that does not exist is created, as the API's patch does."""
    name = ctl.queue_path(queue)
    if not any(_given(flag, values) or values.get("clear_" + flag.dest) for flag in FLAGS):
        raise click.UsageError("Must specify at least one field to update.")
    current = _v2beta2_view(ctl, name)
    pull = is_pull(current)
    body, mask = queue_body(values, pull)
    if not mask:
        raise click.UsageError("Must specify at least one field to update.")
    _whole_tokens(body, mask, current)
    body["name"] = name
    version, client = ("v2beta2", ctl.v2beta2) if pull else ("v2", ctl.v2)
    updated = ctl.call(
        client.update_queue,
        queue=from_dict(version, "Queue", body),
        update_mask=field_mask_pb2.FieldMask(paths=mask),
    )
    status(f"Updated queue [{name}].")
    emit(ctl.output_format, as_dict(updated))


@queues.command("describe")
@click.argument("queue")
@common_options
def describe(ctl: Ctl, queue: str) -> None:
    """Show a queue."""
    name = ctl.queue_path(queue)
    found = either(
        lambda: ctl.call(ctl.v2.get_queue, name=name), lambda: ctl.call(ctl.v2beta2.get_queue, name=name)
    )
    emit(ctl.output_format, as_dict(found))


@queues.command("list")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many queues.")
@click.option("--page-size", type=click.IntRange(1, 9800), help="Queues fetched per call.")
@common_options
def list_queues(ctl: Ctl, limit: int | None, page_size: int | None) -> None:
    """List the queues of a location, push (v2) and pull (v2beta2) ones."""
    parent = ctl.location_path()
    paging = {"page_size": page_size} if page_size else {}
    found = [as_dict(q) for q in ctl.call(ctl.v2.list_queues, request={"parent": parent, **paging})]
    pull_only = {"parent": parent, "filter": "pull_target: *", **paging}
    found += [as_dict(q) for q in ctl.call(ctl.v2beta2.list_queues, request=pull_only)]
    found.sort(key=lambda q: str(q["name"]))
    emit_list(ctl.output_format, found[:limit] if limit else found, QUEUE_COLUMNS)


def _v2beta2_view(ctl: Ctl, name: str) -> Resource:
    """A queue as v2beta2 shows it (every queue, pull ones included), or {} when missing."""
    try:
        return as_dict(ctl.call(ctl.v2beta2.get_queue, name=name))
    except api_exceptions.NotFound:
        return {}


def _state_change(verb: str, past: str) -> Callable[..., None]:
    def run(ctl: Ctl, queue: str) -> None:
        name = ctl.queue_path(queue)
        if verb == "purge":
            confirm(ctl, f"You are about to purge queue [{name}]: every task in it is deleted.")
        # v2 changes a pull queue too but answers without its pull target: ask v2beta2 first
        client = ctl.v2beta2 if is_pull(_v2beta2_view(ctl, name)) else ctl.v2
        changed = ctl.call(getattr(client, f"{verb}_queue"), name=name)
        status(f"{past} queue [{name}].")
        emit(ctl.output_format, as_dict(changed))

    run.__name__ = verb
    return run


for _verb, _past, _help in (
    ("pause", "Paused", "Pause a queue: its tasks are not dispatched until it is resumed."),
    ("resume", "Resumed", "Resume a paused queue."),
    ("purge", "Purged", "Delete every task of a queue (asks first unless --quiet)."),
):
    _run = _state_change(_verb, _past)
    _run.__doc__ = _help
    queues.command(_verb)(click.argument("queue")(common_options(_run)))


@queues.command("delete")
@click.argument("queue")
@common_options
def delete(ctl: Ctl, queue: str) -> None:
    """Delete a queue and its tasks (asks first unless --quiet)."""
    name = ctl.queue_path(queue)
    confirm(ctl, f"You are about to delete queue [{name}].")
    either(
        lambda: ctl.call(ctl.v2.delete_queue, name=name),
        lambda: ctl.call(ctl.v2beta2.delete_queue, name=name),
    )
    status(f"Deleted queue [{name}].")


# IAM ----------------------------------------------------------------------------------


def _get_policy(ctl: Ctl, name: str) -> policy_pb2.Policy:
    request = iam_policy_pb2.GetIamPolicyRequest(
        resource=name, options=options_pb2.GetPolicyOptions(requested_policy_version=3)
    )
    policy: policy_pb2.Policy = either(
        lambda: ctl.call(ctl.v2.get_iam_policy, request=request),
        lambda: ctl.call(ctl.v2beta2.get_iam_policy, request=request),
    )
    return policy


def _set_policy(ctl: Ctl, name: str, policy: policy_pb2.Policy) -> policy_pb2.Policy:
    request = iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy)
    updated: policy_pb2.Policy = either(
        lambda: ctl.call(ctl.v2.set_iam_policy, request=request),
        lambda: ctl.call(ctl.v2beta2.set_iam_policy, request=request),
    )
    return updated


def _emit_policy(ctl: Ctl, policy: policy_pb2.Policy) -> None:
    data = json_format.MessageToDict(policy)
    if ctl.output_format != "table":
        emit(ctl.output_format, data)
        return
    rows = [
        {"role": b.get("role", ""), "member": m, "condition": field("condition.expression")(b)}
        for b in data.get("bindings", [])
        for m in b.get("members", [])
    ]
    emit_list(
        "table",
        rows,
        (("ROLE", field("role")), ("MEMBER", field("member")), ("CONDITION", field("condition"))),
    )
    if data.get("etag"):
        status(f"etag: {data['etag']}  version: {data.get('version', 0)}")


@queues.command("get-iam-policy")
@click.argument("queue")
@common_options
def get_iam_policy(ctl: Ctl, queue: str) -> None:
    """Show a queue's IAM policy."""
    _emit_policy(ctl, _get_policy(ctl, ctl.queue_path(queue)))


@queues.command("set-iam-policy")
@click.argument("queue")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False))
@common_options
def set_iam_policy(ctl: Ctl, queue: str, policy_file: str) -> None:
    """Replace a queue's IAM policy with POLICY_FILE (JSON or YAML, as getIamPolicy shows it;
    its etag, when present, must still be the queue's)."""
    try:
        data = yaml.safe_load(Path(policy_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read {policy_file}: {exc}", param_hint="POLICY_FILE") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{policy_file} holds no policy object", param_hint="POLICY_FILE")
    try:
        policy = json_format.ParseDict(data, policy_pb2.Policy())
    except json_format.ParseError as exc:
        raise click.BadParameter(f"{policy_file}: {exc}", param_hint="POLICY_FILE") from None
    name = ctl.queue_path(queue)
    updated = _set_policy(ctl, name, policy)
    status(f"Updated IAM policy for queue [{name}].")
    _emit_policy(ctl, updated)


def _condition(text: str | None, path: str | None) -> expr_pb2.Expr | None:
    """gcloud's ``--condition=expression=E,title=T[,description=D]`` (``None``: the binding
    without one) or ``--condition-from-file`` (JSON or YAML with those keys) as an Expr."""
    if text is not None and path is not None:
        raise click.UsageError("--condition and --condition-from-file cannot be used together")
    parts: dict[str, str] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise click.BadParameter(
                f"cannot read {path}: {exc}", param_hint="--condition-from-file"
            ) from None
        if not isinstance(loaded, dict):
            raise click.BadParameter(f"{path} holds no condition", param_hint="--condition-from-file")
        parts = {str(key): str(value) for key, value in loaded.items()}
    elif text is None or text == "None":
        return None
    else:
        for part in text.split(","):
            key, sep, value = part.partition("=")
            parts[key.strip() if sep else ""] = value
    hint = "--condition-from-file" if path else "--condition"
    if set(parts) - {"expression", "title", "description"}:
        raise click.BadParameter("expected expression=EXPR,title=TITLE[,description=DESC]", param_hint=hint)
    if not parts.get("expression"):
        raise click.BadParameter("expression is required", param_hint=hint)
    return expr_pb2.Expr(**parts)


def _matches(binding: policy_pb2.Binding, role: str, condition: expr_pb2.Expr | None) -> bool:
    if binding.role != role:
        return False
    return binding.condition == condition if condition is not None else not binding.HasField("condition")


def _binding_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option(
        "--condition-from-file",
        type=click.Path(exists=True, dir_okay=False),
        help="A JSON or YAML file with expression, title and description.",
    )(fn)
    fn = click.option(
        "--condition",
        help="expression=EXPR,title=TITLE[,description=DESC], or None for the binding without one.",
    )(fn)
    fn = click.option("--role", required=True, help="e.g. roles/cloudtasks.enqueuer.")(fn)
    fn = click.option("--member", required=True, help="e.g. user:a@example.com, serviceAccount:…")(fn)
    return click.argument("queue")(fn)


@queues.command("add-iam-policy-binding")
@_binding_options
@common_options
def add_iam_policy_binding(
    ctl: Ctl, queue: str, member: str, role: str, condition: str | None, condition_from_file: str | None
) -> None:
    """Grant ROLE to MEMBER on a queue (read, change, write back with the policy's etag)."""
    name = ctl.queue_path(queue)
    wanted = _condition(condition, condition_from_file)
    policy = _get_policy(ctl, name)
    for binding in policy.bindings:
        if _matches(binding, role, wanted):
            if member not in binding.members:
                binding.members.append(member)
            break
    else:
        added = policy.bindings.add(role=role, members=[member])
        if wanted is not None:
            added.condition.CopyFrom(wanted)
    if wanted is not None or any(b.HasField("condition") for b in policy.bindings):
        policy.version = 3
    updated = _set_policy(ctl, name, policy)
    status(f"Updated IAM policy for queue [{name}].")
    _emit_policy(ctl, updated)


@queues.command("remove-iam-policy-binding")
@_binding_options
@common_options
def remove_iam_policy_binding(
    ctl: Ctl, queue: str, member: str, role: str, condition: str | None, condition_from_file: str | None
) -> None:
    """Revoke ROLE from MEMBER on a queue."""
    name = ctl.queue_path(queue)
    wanted = _condition(condition, condition_from_file)
    policy = _get_policy(ctl, name)
    for index, binding in enumerate(policy.bindings):
        if _matches(binding, role, wanted) and member in binding.members:
            binding.members.remove(member)
            if not binding.members:
                del policy.bindings[index]
            break
    else:
        raise CtlError("Policy binding with the specified principal, role, and condition not found!")
    updated = _set_policy(ctl, name, policy)
    status(f"Updated IAM policy for queue [{name}].")
    _emit_policy(ctl, updated)
