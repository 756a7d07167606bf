"""The protobuf ⇄ model mapping shared by every API version: the message shapes every version
spells the same way (targets, tokens, routing, retry durations, attempts, stats) and the
output-only queue fields, mapped once for all versions; each version's own module
(``api/v2beta2/mapping.py``, ``api/v2/mapping.py``) maps the rest."""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf.message import Message

from tasksd.api import protobuf_util
from tasksd.model.errors import InvalidArgument
from tasksd.model.queue import (
    AppEngineRouting,
    Header,
    HttpMethod,
    HttpTarget,
    OAuthToken,
    OidcToken,
    QueueStats,
    RetryConfig,
    Scheme,
    UriOverride,
    UriOverrideEnforceMode,
)
from tasksd.model.task import AppEngineHttpRequest, Attempt, HttpRequest


@functools.cache
def _methods(descriptor: Any) -> tuple[dict[int, HttpMethod], dict[HttpMethod, int]]:
    """The HTTP methods of a message type's ``http_method`` enum, by number and by method
    (each version numbers its own enum)."""
    enum = descriptor.fields_by_name["http_method"].enum_type
    by_number = {v.number: HttpMethod[v.name] for v in enum.values if v.name in HttpMethod.__members__}
    return by_number, {method: number for number, method in by_number.items()}


def method_of(message: Message) -> HttpMethod | None:
    """The ``http_method`` of a message, by its own enum's names (0: not given)."""
    value = message.http_method
    if not value:
        return None
    found = _methods(message.DESCRIPTOR)[0].get(value)
    if found is None:
        raise InvalidArgument(f"http_method {value} is not a known HTTP method.")
    return found


def set_method(message: Message, value: HttpMethod | None) -> None:
    message.http_method = _methods(message.DESCRIPTOR)[1][value] if value is not None else 0


def set_headers(target: Any, headers: dict[str, str]) -> None:
    """Fill a message's map of headers (the map's update() is Python's generic one, which
    costs a third more than setting each)."""
    for key, value in headers.items():
        target[key] = value


def routing_of(message: Message) -> AppEngineRouting:
    return AppEngineRouting(message.service, message.version, message.instance, message.host)


def set_routing(target: Message, routing: AppEngineRouting) -> None:
    target.service, target.version = routing.service, routing.version
    target.instance, target.host = routing.instance, routing.host


def tokens_of(message: Message) -> tuple[OAuthToken | None, OidcToken | None]:
    which = message.WhichOneof("authorization_header")
    oauth = message.oauth_token if which == "oauth_token" else None
    oidc = message.oidc_token if which == "oidc_token" else None
    return (
        OAuthToken(oauth.service_account_email, oauth.scope) if oauth is not None else None,
        OidcToken(oidc.service_account_email, oidc.audience) if oidc is not None else None,
    )


def set_tokens(target: Message, oauth: OAuthToken | None, oidc: OidcToken | None) -> None:
    if oauth is not None:
        target.oauth_token.service_account_email = oauth.service_account_email
        target.oauth_token.scope = oauth.scope
    if oidc is not None:
        target.oidc_token.service_account_email = oidc.service_account_email
        target.oidc_token.audience = oidc.audience


def http_target_of(message: Message) -> HttpTarget:
    override = None
    if message.HasField("uri_override"):
        uri = message.uri_override
        override = UriOverride(
            scheme=Scheme[uri.Scheme.Name(uri.scheme)] if uri.HasField("scheme") and uri.scheme else None,
            host=uri.host if uri.HasField("host") else None,
            port=uri.port if uri.HasField("port") else None,
            path=uri.path_override.path if uri.HasField("path_override") else None,
            query=uri.query_override.query_params if uri.HasField("query_override") else None,
            enforce_mode=(
                UriOverrideEnforceMode[uri.UriOverrideEnforceMode.Name(uri.uri_override_enforce_mode)]
                if uri.uri_override_enforce_mode
                else None
            ),
        )
    oauth, oidc = tokens_of(message)
    return HttpTarget(
        uri_override=override,
        http_method=method_of(message),
        header_overrides=[Header(h.header.key, h.header.value) for h in message.header_overrides],
        oauth_token=oauth,
        oidc_token=oidc,
    )


def set_http_target(target: Message, http: HttpTarget) -> None:
    target.SetInParent()
    uri = http.uri_override
    if uri is not None:
        out = target.uri_override
        out.SetInParent()
        if uri.scheme is not None:
            out.scheme = out.Scheme.Value(uri.scheme.value)
        if uri.host is not None:
            out.host = uri.host
        if uri.port is not None:
            out.port = uri.port
        if uri.path is not None:
            out.path_override.path = uri.path
        if uri.query is not None:
            out.query_override.query_params = uri.query
        if uri.enforce_mode is not None:
            out.uri_override_enforce_mode = out.UriOverrideEnforceMode.Value(uri.enforce_mode.value)
    set_method(target, http.http_method)
    for header in http.header_overrides:
        item = target.header_overrides.add()
        item.header.key, item.header.value = header.key, header.value
    set_tokens(target, http.oauth_token, http.oidc_token)


def http_request_of(message: Message) -> HttpRequest:
    oauth, oidc = tokens_of(message)
    return HttpRequest(
        url=message.url,
        http_method=method_of(message),
        headers=dict(message.headers),
        body=message.body,
        oauth_token=oauth,
        oidc_token=oidc,
    )


def set_http_request(target: Message, request: HttpRequest, *, with_body: bool) -> None:
    target.SetInParent()
    target.url = request.url
    set_method(target, request.http_method)
    set_headers(target.headers, request.headers)
    if with_body:
        target.body = request.body
    set_tokens(target, request.oauth_token, request.oidc_token)


def retry_durations_of(message: Message, field: str) -> dict[str, object]:
    """The duration fields of a RetryConfig message (absent ones are None)."""
    return {
        name: protobuf_util.optional_duration(message, name, f"{field}.{name}")
        for name in ("max_retry_duration", "min_backoff", "max_backoff")
    }


def set_retry_durations(target: Message, config: RetryConfig) -> None:
    for name in ("max_retry_duration", "min_backoff", "max_backoff"):
        value = getattr(config, name)
        if value is not None:
            protobuf_util.set_duration(getattr(target, name), value)


def set_attempt(target: Message, attempt: Attempt) -> None:
    target.SetInParent()
    for name in ("schedule_time", "dispatch_time", "response_time"):
        value = getattr(attempt, name)
        if value is not None:
            protobuf_util.set_timestamp(getattr(target, name), value)
    if attempt.response_status is not None:
        target.response_status.code = attempt.response_status.code
        target.response_status.message = attempt.response_status.message


def set_stats(target: Message, stats: QueueStats) -> None:
    target.tasks_count = stats.tasks_count
    if stats.oldest_estimated_arrival_time is not None:
        protobuf_util.set_timestamp(target.oldest_estimated_arrival_time, stats.oldest_estimated_arrival_time)
    target.executed_last_minute_count = stats.executed_last_minute_count
    target.concurrent_dispatches_count = stats.concurrent_dispatches_count
    target.effective_execution_rate = stats.effective_execution_rate


def app_engine_request_of(message: Message, url_field: str, body_field: str) -> AppEngineHttpRequest:
    """An AppEngineHttpRequest message; versions name its URL and body fields differently."""
    return AppEngineHttpRequest(
        http_method=method_of(message),
        app_engine_routing=routing_of(message.app_engine_routing)
        if message.HasField("app_engine_routing")
        else None,
        relative_url=getattr(message, url_field),
        headers=dict(message.headers),
        body=getattr(message, body_field),
    )


def set_app_engine_request(
    target: Message, request: AppEngineHttpRequest, url_field: str, body_field: str, *, with_body: bool
) -> None:
    target.SetInParent()
    set_method(target, request.http_method)
    if request.app_engine_routing is not None:
        set_routing(target.app_engine_routing, request.app_engine_routing)
    setattr(target, url_field, request.relative_url)
    set_headers(target.headers, request.headers)
    if with_body:
        setattr(target, body_field, request.body)


OUTPUT_ONLY_QUEUE_PATHS = frozenset({"name", "state", "purge_time", "stats"})
"""The Queue fields an update mask may not name, in every version."""


def reject_output_only(path: str) -> None:
    """Raises InvalidArgument when an update mask path names an output-only queue field."""
    if path.split(".")[0] in OUTPUT_ONLY_QUEUE_PATHS:
        raise InvalidArgument(
            f"update_mask: {path!r} is output only; queue state changes through PauseQueue and "
            "ResumeQueue, and the name cannot change."
        )
