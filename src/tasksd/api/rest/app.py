"""The REST surface: an ASGI app that transcodes HTTP/JSON into RPC request messages.

Path parameters, query parameters and the JSON body are merged into the RPC's request
message with the compiled codec of ``api/rest/jsonpb.py`` (which hands unusual input to
``json_format``, so unknown fields, bad enums and malformed values are rejected with the
field named, in json_format's words), the RPC runs, and its reply is rendered as proto3
JSON — enums as numbers when the client asks ``$alt=json;enum-encoding=int``, as the gapic
REST transport does, and as names otherwise. With ``authenticate`` (auth enforced), every API
request, a batch with all its parts, is authenticated first and its principal put in
``auth.credentials.CALLER``; health, discovery, the OIDC documents and the token endpoint
stay open.

The standard parameters (``api/rest/standard_params.py``): ``fields`` filters a successful
reply with Google's partial-response selector (checked against the response type first: a malformed or
unknown selector is INVALID_ARGUMENT and the method does not run; errors are never filtered);
``prettyPrint=true`` indents the JSON, ``false`` or absent answers compact JSON (Google's
default is pretty; compact is kept because it is faster and no client cares);
``alt=proto`` answers the response message as binary protobuf, ``application/x-protobuf``
(``fields`` is checked but not applied to it), and an error as a binary ``google.rpc.Status``
with the error's HTTP status (Google's documentation only says what the success reply is; a
binary Status is what its front end sends); ``alt=media`` is INVALID_ARGUMENT. ``$.xgafv=2``
(the default) is the ``google.rpc.Status`` JSON error body; ``$.xgafv=1`` is Google's legacy
(v1) error format,
``{"error": {"code": 404, "message": ..., "errors": [{"message": ..., "domain": "global",
"reason": "notFound"}], "status": "NOT_FOUND"}}`` (no ``details``). ``callback=NAME`` (JSONP)
answers ``// API callback\\nNAME(<json>);`` as ``text/javascript``, errors too. ``quotaUser``,
``uploadType`` and ``upload_protocol`` are accepted and ignored; an unknown value of any of
these parameters is INVALID_ARGUMENT. Inside an HTTP batch, each part's own query string
counts, except ``alt=proto`` and ``callback``, which a part refuses (the batch reply labels its
parts JSON).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from tasksd.api.observed import record
from tasksd.api.rest import jsonpb, standard_params
from tasksd.api.rest.batch import BATCH_PATHS, JSON_CONTENT_TYPE, parse_batch, render_batch
from tasksd.api.rest.bodies import parse_into, read_json
from tasksd.api.rest.errors import rest_error
from tasksd.api.rest.firebase import FirebaseRoutes
from tasksd.api.rest.routes import Route, Router, build_routes, load_discovery
from tasksd.api.rpc import Rpc
from tasksd.auth.credentials import CALLER, Authenticate, Credentials, bearer_token
from tasksd.console import Console
from tasksd.console.pages import Failures
from tasksd.model.errors import (
    Cancelled,
    Code,
    Internal,
    InvalidArgument,
    NotFound,
    TasksError,
    Unimplemented,
)

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Document = Callable[[dict[str, str]], tuple[int, dict[str, Any]]]
"""A GET endpoint outside the API (OIDC discovery, JWKS, tokeninfo): query → (status, JSON)."""
Form = Callable[[dict[str, str], tuple[str, ...]], tuple[int, dict[str, Any]]]
"""A POST endpoint outside the API (the token endpoint): (form fields, own URLs) → (status, JSON)."""
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Reply = tuple[int, bytes]
"""An HTTP status and JSON body."""
Answer = tuple[int, bytes, bytes]
"""An HTTP status, body and Content-Type."""
Page = Callable[[], Awaitable[Answer]]
"""A GET endpoint of the operator's (/metrics): behind authentication when that is on."""

MAX_BODY_BYTES = 32 * 1024 * 1024
_SYSTEM_PARAMS = {
    "alt",
    "fields",
    "key",
    "prettyPrint",
    "quotaUser",
    "access_token",
    "callback",
    "oauth_token",
    "uploadType",
    "upload_protocol",
    "$.xgafv",
}
_SNAKE = re.compile(r"_([a-z0-9])")
_HTTP_BODY = "google.api.HttpBody"
_decode_json = msgspec.json.Decoder().decode


class RestVersion:
    """One API version's REST surface: its discovery document and routes."""

    def __init__(
        self,
        version: str,
        rest_methods: dict[str, tuple[str, str]],
        rpcs: list[Rpc],
        aliases: dict[str, list[str]] | None = None,
    ) -> None:
        self.version = version
        self.discovery = load_discovery(version)
        table = {(rpc.service, rpc.name): rpc for rpc in rpcs}
        self.routes = build_routes(self.discovery, rest_methods, table, aliases)


class RestApp:
    """The ASGI application of the HTTP port: every registered version's REST methods (routed
    by their discovery documents to the ``Rpc`` each names), HTTP batches of them, /healthz,
    the discovery documents, and what is mounted beside the API: the OIDC and token
    endpoints (``documents``, ``forms``), firebase-admin's task-queue routes, the operator's
    pages (/metrics) and the web console. Every API failure is answered as a
    ``google.rpc.Status`` body (``api/rest/errors.py``), never a traceback; ``respond`` runs
    one API request in-process (the console's calls)."""

    def __init__(
        self,
        versions: list[RestVersion],
        documents: dict[str, Document] | None = None,
        authenticate: Authenticate | None = None,
        forms: dict[str, Form] | None = None,
        firebase: FirebaseRoutes | None = None,
        pages: dict[str, Page] | None = None,
        failures: Failures | None = None,
    ) -> None:
        self.versions = {v.version: v for v in versions}
        self.pages = pages or {}
        self.documents = documents or {}
        self.authenticate = authenticate
        """When set, every API request is authenticated (the rest stays open)."""
        self.forms = forms or {}
        self.router = Router([r for v in versions for r in v.routes])
        self.firebase = firebase
        """firebase-admin's task-queue routes (no version prefix), when served."""
        self.console = Console(self, failures)
        """The web console under /console, whose pages call this app's API as their signed-in caller."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/healthz":
            await _reply(send, 200, b'{"status": "SERVING"}')
            return
        document = self.documents.get(path) if method == "GET" else None
        if document is not None:
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            status, content = document(query)
            await _reply(send, status, json.dumps(content).encode())
            return
        if method == "GET" and (path == "/$discovery/rest" or path.startswith("/discovery/v1/apis/")):
            await self._discovery(scope, send)
            return
        form = self.forms.get(path) if method == "POST" else None
        if form is not None:
            await self._form(scope, receive, send, form)
            return
        if path == "/console" or path.startswith("/console/"):
            await self.console(scope, receive, send)
            return
        if self.authenticate is not None:
            try:
                principal = await self.authenticate(_credentials(scope), (_own_url(scope),))
            except TasksError as error:
                self._record_refused(method, path, error)
                status, payload, content_type = _error(error, _lenient_format(scope["query_string"], False))
                await _reply(send, status, payload, content_type, extra=_challenge(error))
                return
            CALLER.set(principal)
        page = self.pages.get(path) if method == "GET" else None
        if page is not None:
            await _reply(send, *await page())
            return
        if method == "POST" and path in BATCH_PATHS:
            status, payload, content_type = await self._batch(scope, receive)
            await _reply(send, status, payload, content_type)
            return
        try:
            body = await _read_body(receive)
        except TasksError as error:
            await _reply(send, *_error(error, _lenient_format(scope["query_string"], False)))
            return
        if self.firebase is not None and (firebase := self.firebase.match(method, path)) is not None:
            await _reply(send, *await self.firebase.respond(firebase, body))
            return
        call = self._prepare(method, path, scope["query_string"], body, content_type=_content_type(scope))
        await _reply(send, *(call if isinstance(call, tuple) else await _run(call)))

    async def respond(self, method: str, path: str, query_string: bytes, body: bytes) -> Reply:
        """(HTTP status, body) of one API request; every failure is a Status body."""
        call = self._prepare(method, path, query_string, body)
        status, payload, _ = call if isinstance(call, tuple) else await _run(call)
        return status, payload

    async def _batch(self, scope: Scope, receive: Receive) -> tuple[int, bytes, bytes]:
        try:
            body = await _read_body(receive)
            content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
            requests = parse_batch(content_type, body)
        except TasksError as error:
            return (*rest_error(error), JSON_CONTENT_TYPE)
        calls = [self._prepare(r.method, r.path, r.query_string, r.body, True) for r in requests]
        replies: list[Reply] = [call[:2] if isinstance(call, tuple) else (0, b"") for call in calls]
        # The inner requests run concurrently; those of an RPC with a handler for many
        # requests (acknowledge) run through it together: one store transaction.
        together: dict[int, list[tuple[int, _Call]]] = {}
        alone: list[tuple[int, _Call]] = []
        for index, call in enumerate(calls):
            if isinstance(call, _Call):
                (together.setdefault(id(call.rpc), []) if call.rpc.handle_many else alone).append(
                    (index, call)
                )

        async def run_together(group: list[tuple[int, _Call]]) -> None:
            answers = await _run_together([call for _, call in group])
            for (index, _), (status, payload, _type) in zip(group, answers, strict=True):
                replies[index] = status, payload

        async def run_alone(index: int, call: _Call) -> None:
            status, payload, _type = await _run(call)
            replies[index] = status, payload

        await asyncio.gather(*map(run_together, together.values()), *(run_alone(*one) for one in alone))
        payload, boundary = render_batch(requests, replies)
        return 200, payload, f"multipart/mixed; boundary={boundary}".encode()

    def _prepare(
        self,
        method: str,
        path: str,
        query_string: bytes,
        body: bytes,
        in_batch: bool = False,
        content_type: str = "",
    ) -> _Call | Answer:
        """The RPC call a request makes, or the error reply it gets (``content_type``: the
        request's, which a raw HttpBody body keeps)."""
        fmt: standard_params.Format | None = None
        started = time.perf_counter()
        name = "unknown"  # no RPC's URL
        try:
            found = self.router.match(method, path)
            if found is None:
                raise NotFound(f"The requested URL {method} {path} was not found on this server.")
            route, path_params = found
            rpc = route.rpc
            name = rpc.name if rpc is not None else route.method_id
            if rpc is None:
                raise Unimplemented(f"{route.method_id} is not implemented in tasksd yet.")
            enums_as_ints, fields, system = _query(route, query_string)
            if system is not None:
                fmt = standard_params.parse(system, enums_as_ints, rpc.response)
                if in_batch and (fmt.proto or fmt.callback is not None):
                    fmt = None
                    raise InvalidArgument("alt=proto and callback are not supported inside a batch.")
            request = _build_request(rpc, route, path_params, fields, body, content_type)
            return _Call(rpc, request, enums_as_ints, fmt, started)
        except TasksError as error:
            record(name, "rest", started, error, None)
            return _error(error, fmt or _lenient_format(query_string, in_batch))
        except Exception:  # a bug: log it, never show a traceback to the caller
            log.exception("unhandled error reading %s %s", method, path)
            record(name, "rest", started, Internal(), None)
            return _error(Internal(), fmt or _lenient_format(query_string, in_batch))

    def _record_refused(self, method: str, path: str, error: TasksError) -> None:
        """An API request refused before it was read (its caller not authenticated); a
        refused request for no RPC (/metrics, a URL no route has) is no API request."""
        found = self.router.match(method, path)
        rpc = found[0].rpc if found is not None else None
        if rpc is not None:
            record(rpc.name, "rest", time.perf_counter(), error, None)

    async def _form(self, scope: Scope, receive: Receive, send: Send, form: Form) -> None:
        """A POST endpoint outside the API that reads a form (the token endpoint)."""
        try:
            body = await _read_body(receive)
        except TasksError as error:
            await _reply(send, *rest_error(error))
            return
        fields = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        status, content = form(fields, (_own_url(scope),))
        await _reply(send, status, json.dumps(content).encode(), extra=[(b"cache-control", b"no-store")])

    async def _discovery(self, scope: Scope, send: Send) -> None:
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        path: str = scope["path"]
        version = query.get("version") or path.rstrip("/").split("/")[-2]
        doc = self.versions.get(version)
        if doc is None:
            status, payload = rest_error(NotFound(f"No discovery document for version {version!r}."))
            await _reply(send, status, payload)
            return
        host = dict(scope["headers"]).get(b"host", b"localhost").decode("latin-1")
        root = f"{scope.get('scheme', 'http')}://{host}/"
        rendered = dict(doc.discovery, rootUrl=root, baseUrl=root, batchPath="batch")
        await _reply(send, 200, json.dumps(rendered).encode())


def _camel(name: str) -> str:
    return ".".join(_SNAKE.sub(lambda m: m.group(1).upper(), part) for part in name.split("."))


@dataclass(frozen=True, slots=True)
class _Call:
    rpc: Rpc
    request: Message
    enums_as_ints: bool
    """Whether the client asked for enums as numbers ($alt=json;enum-encoding=int)."""
    fmt: standard_params.Format | None = None
    """The standard parameters' rendering, when the request names any."""
    started: float = 0.0
    """When the request was read (time.perf_counter)."""


async def _run(call: _Call) -> Answer:
    fmt = call.fmt
    error: TasksError | None = Cancelled()  # until it ends otherwise
    try:
        response = await call.rpc.handler(call.request)
        error = None
        if fmt is None:
            return 200, _json(response, call.enums_as_ints), JSON_CONTENT_TYPE
        return 200, fmt.reply(response), fmt.content_type
    except TasksError as exc:
        error = exc
        return _error(exc, fmt)
    except Exception:  # a bug: log it, never show a traceback to the caller
        log.exception("unhandled error in %s", call.rpc.name)
        error = Internal()
        return _error(error, fmt)
    finally:
        record(call.rpc.name, "rest", call.started, error, call.request)


async def _run_together(calls: list[_Call]) -> list[Answer]:
    """Calls of one RPC that has a handler for many requests: one call of it."""
    rpc = calls[0].rpc
    assert rpc.handle_many is not None
    try:
        outcomes: list[Message | TasksError] = await rpc.handle_many([call.request for call in calls])
    except Exception:  # a bug: log it, never show a traceback to the caller
        log.exception("unhandled error in %s", rpc.name)
        outcomes = [Internal()] * len(calls)
    for outcome, call in zip(outcomes, calls, strict=True):
        record(
            rpc.name, "rest", call.started, outcome if isinstance(outcome, TasksError) else None, call.request
        )
    return [_outcome(outcome, call) for outcome, call in zip(outcomes, calls, strict=True)]


def _outcome(outcome: Message | TasksError, call: _Call) -> Answer:
    if isinstance(outcome, TasksError):
        return _error(outcome, call.fmt)
    if call.fmt is None:
        return 200, _json(outcome, call.enums_as_ints), JSON_CONTENT_TYPE
    return 200, call.fmt.reply(outcome), call.fmt.content_type


def _error(error: TasksError, fmt: standard_params.Format | None) -> Answer:
    if fmt is None:
        return (*rest_error(error), JSON_CONTENT_TYPE)
    return (*fmt.error(error), fmt.content_type)


def _lenient_format(query_string: bytes, in_batch: bool) -> standard_params.Format | None:
    """How to render an error met before the request's parameters were read: their error
    format, pretty printing and JSONP or binary reply, when those are valid, else the default."""
    if not query_string or not any(
        name in query_string for name in (b"alt", b"xgafv", b"pretty", b"callback")
    ):
        return None
    system = {
        key: value
        for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if key in standard_params.PARAMS and key != "fields"
    }
    try:
        fmt = standard_params.parse(system, False, None)
    except TasksError:
        return None
    if in_batch and (fmt.proto or fmt.callback is not None):
        return None
    return fmt


def _json(response: Message, enums_as_ints: bool) -> bytes:
    if response.ByteSize() == 0:  # no field set (Empty, acknowledge): proto3 JSON is {}
        return b"{}"
    return jsonpb.to_json(response, enums_as_ints)


def _query(route: Route, query_string: bytes) -> tuple[bool, dict[str, Any], dict[str, str] | None]:
    """(enums as numbers?, request fields, the standard parameters named if any) of a
    request's query string (``alt=json``, which every discovery client sends, is left out)."""
    query = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True) if query_string else []
    enums_as_ints = False
    fields: dict[str, Any] = {}
    system: dict[str, str] | None = None
    for key, value in query:
        if key == "$alt":
            enums_as_ints = "enum-encoding=int" in value
            if not value.startswith("json"):
                system = system or {}
                system["alt"] = value.partition(";")[0]
        elif key == "alt":
            if value != "json":
                system = system or {}
                system["alt"] = value
        elif key.startswith("$") or key in _SYSTEM_PARAMS:
            if key in standard_params.PARAMS:
                system = system or {}
                if key == "fields" and key in system:
                    value = f"{system[key]},{value}"
                system[key] = value
        else:
            name = _camel(key)
            spec = route.query_params.get(name)
            if spec is None:
                raise InvalidArgument(
                    f"Invalid JSON payload received. Unknown name {key!r}: Cannot bind query "
                    f"parameter. Field {key!r} could not be found in request message."
                )
            if spec.get("format") == "google-fieldmask":
                value = ",".join(_camel(p.strip()) for p in value.split(",") if p.strip())
            if spec.get("repeated"):
                fields.setdefault(name, []).append(value)
            else:
                fields[name] = value
    return enums_as_ints, fields, system


def _build_request(
    rpc: Rpc,
    route: Route,
    path_params: dict[str, str],
    query: dict[str, Any],
    body: bytes,
    content_type: str = "",
) -> Message:
    request = rpc.request()
    body_target: Message = request
    if route.request_ref is not None:
        body_field = _body_field(rpc.request.DESCRIPTOR, route.request_ref)
        if body_field is not None:
            body_target = getattr(request, body_field)
        if body_target.DESCRIPTOR.full_name == _HTTP_BODY:
            # A method whose request is an HttpBody takes the raw body, whatever its type
            # (api.queue.update: a queue.yaml file), as Google's transcoding does.
            body_target.data = body
            body_target.content_type = content_type
        else:
            document = read_json(body) if body.strip() else {}
            if not isinstance(document, dict):
                raise InvalidArgument("Invalid JSON payload received. The body must be a JSON object.")
            parse_into(document, body_target)
        if body_field is not None:
            body_target.SetInParent()
    if query:
        parse_into(query, request)
    for name, value in path_params.items():
        field = _field(request.DESCRIPTOR, name)
        holder = request if field is not None else body_target
        setattr(holder, field or _field(body_target.DESCRIPTOR, name) or name, value)
    return request


@functools.cache
def _field(message: Descriptor, name: str) -> str | None:
    """The field of a message type that a path parameter names (by proto or JSON name)."""
    fields = message.fields_by_name
    if name in fields:
        return name
    return next((f.name for f in message.fields if f.json_name == name), None)


@functools.cache
def _body_field(request: Descriptor, ref: str) -> str | None:
    """The request field a body of schema ``ref`` fills, or None when it is the request itself."""
    if request.name == ref:
        return None
    for field in request.fields:
        if field.message_type is not None and field.message_type.name == ref:
            return str(field.name)
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":  # mid-body: the request must not run on part of it
            raise InvalidArgument("The client disconnected before sending the whole request body.")
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidArgument(f"Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
        if not event.get("more_body", False):
            break
    return b"".join(chunks)


def _content_type(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return str(value.decode("latin-1"))
    return ""


def _credentials(scope: Scope) -> Credentials:
    """A request's bearer token and API key: headers first, then the query parameters."""
    bearer = api_key = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            bearer = bearer_token(value.decode("latin-1"))
        elif key == b"x-goog-api-key":
            api_key = value.decode("latin-1")
    query: bytes = scope["query_string"]
    if query and (bearer is None or api_key is None) and (b"key=" in query or b"_token=" in query):
        for name, value in parse_qsl(query.decode("latin-1")):
            if name in ("access_token", "oauth_token") and bearer is None:
                bearer = value
            elif name == "key" and api_key is None:
                api_key = value
    return Credentials(bearer, api_key)


def _own_url(scope: Scope) -> str:
    """This server's URL as the request reached it."""
    for key, value in scope["headers"]:
        if key == b"host":
            return f"{scope.get('scheme', 'http')}://{value.decode('latin-1')}"
    return ""


def _challenge(error: TasksError) -> list[tuple[bytes, bytes]]:
    """The WWW-Authenticate header Google's front end sends with a 401."""
    if error.code is not Code.UNAUTHENTICATED:
        return []
    return [(b"www-authenticate", b'Bearer realm="https://accounts.google.com/"')]


async def _reply(
    send: Send,
    status: int,
    payload: bytes,
    content_type: bytes = JSON_CONTENT_TYPE,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
