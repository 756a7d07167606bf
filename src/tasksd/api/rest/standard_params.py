"""Google's standard (system) query parameters of the REST surface, beyond ``$alt``.

``fields`` (partial response), ``prettyPrint``, ``alt`` (``json`` or ``proto``), ``$.xgafv``
(error format 1 or 2), ``callback`` (JSONP); ``quotaUser``, ``uploadType``,
``upload_protocol`` are accepted and ignored. A request that names none of them gets no
``Format`` at all, so the common path renders its reply exactly as before.

``fields`` is Google's partial-response selector: comma-separated items, each a path of names
joined by ``/`` and optionally followed by a sub-selection in parentheses, ``*`` selecting
every field: ``tasks(name,scheduleTime),nextPageToken``, ``queue/rateLimits``, ``*``. Names
are the JSON (camelCase) names of the response message and are checked against its type, so
a misspelled or malformed selector is INVALID_ARGUMENT before the method runs. Beneath a map,
``google.protobuf.Struct``/``Value``/``Any`` field any name is accepted; a well-known type
rendered as a JSON scalar (Timestamp, Duration, wrappers, FieldMask) has no fields to select.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from tasksd.api.rest import jsonpb
from tasksd.api.rest.errors import HTTP_STATUS, rest_error
from tasksd.api.status import status_pb, wire_message
from tasksd.model.errors import Code, InvalidArgument, TasksError

Selector = dict[str, "Selector | None"]
"""A compiled ``fields`` selector: JSON name (or ``*``) → its sub-selection, None for all of it."""

JSON_TYPE = b"application/json; charset=UTF-8"
PROTO_TYPE = b"application/x-protobuf"
JSONP_TYPE = b"text/javascript; charset=UTF-8"
PARAMS = frozenset(
    {"alt", "fields", "prettyPrint", "callback", "$.xgafv", "quotaUser", "uploadType", "upload_protocol"}
)
"""The parameters this module reads (key, access_token and oauth_token are credentials)."""

_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\*")
_MAX_CALLBACK = 256
_MAX_SELECTOR = 8192
_OPAQUE = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Any"})
_encode = msgspec.json.encode
_decode = msgspec.json.decode

# The legacy (v1) error format's reason for each canonical code.
_V1_REASONS: dict[Code, str] = {
    Code.CANCELLED: "cancelled",
    Code.UNKNOWN: "backendError",
    Code.INVALID_ARGUMENT: "badRequest",
    Code.DEADLINE_EXCEEDED: "deadlineExceeded",
    Code.NOT_FOUND: "notFound",
    Code.ALREADY_EXISTS: "conflict",
    Code.PERMISSION_DENIED: "forbidden",
    Code.RESOURCE_EXHAUSTED: "rateLimitExceeded",
    Code.FAILED_PRECONDITION: "failedPrecondition",
    Code.ABORTED: "aborted",
    Code.OUT_OF_RANGE: "outOfRange",
    Code.UNIMPLEMENTED: "notImplemented",
    Code.INTERNAL: "backendError",
    Code.UNAVAILABLE: "backendError",
    Code.DATA_LOSS: "backendError",
    Code.UNAUTHENTICATED: "unauthorized",
}


@dataclass(frozen=True, slots=True)
class Format:
    """How one request wants its reply rendered (only built when it names a parameter)."""

    ints: bool = False
    """Enums as numbers ($alt=json;enum-encoding=int)."""
    selector: Selector | None = None
    pretty: bool = False
    proto: bool = False
    v1_errors: bool = False
    callback: str | None = None

    @property
    def content_type(self) -> bytes:
        return PROTO_TYPE if self.proto else JSONP_TYPE if self.callback else JSON_TYPE

    def reply(self, response: Message) -> bytes:
        """The body of a successful reply."""
        if self.proto:
            payload: bytes = response.SerializeToString()
            return payload
        if self.selector is None and not self.pretty:
            payload = b"{}" if response.ByteSize() == 0 else jsonpb.to_json(response, self.ints)
        else:
            document = jsonpb.to_dict(response, self.ints) if response.ByteSize() else {}
            if self.selector is not None:
                document = select(document, self.selector)
            payload = self._dump(document)
        return self._wrap(payload)

    def error(self, error: TasksError) -> tuple[int, bytes]:
        """(HTTP status, body) of an error; ``fields`` never filters it."""
        if self.proto:
            return HTTP_STATUS[error.code], status_pb(error).SerializeToString()
        if self.v1_errors:
            status = HTTP_STATUS[error.code]
            reason = _V1_REASONS.get(error.code, "backendError")
            message = wire_message(error)
            body = {
                "error": {
                    "code": status,
                    "message": message,
                    "errors": [{"message": message, "domain": "global", "reason": reason}],
                    "status": error.code.name,
                }
            }
            return status, self._wrap(self._dump(body))
        status, payload = rest_error(error)
        if self.pretty:
            payload = self._dump(_decode(payload))
        return status, self._wrap(payload)

    def _dump(self, document: Any) -> bytes:
        payload = _encode(document)
        return msgspec.json.format(payload, indent=2) if self.pretty else payload

    def _wrap(self, payload: bytes) -> bytes:
        if self.callback is None:
            return payload
        return b"// API callback\n" + self.callback.encode() + b"(" + payload + b");"


def parse(system: dict[str, str], ints: bool, response: type[Message] | None) -> Format:
    """The Format that a request's standard parameters ask for.

    Raises:
        InvalidArgument: a value the parameter does not take, or a malformed ``fields``.
    """
    alt = system.get("alt", "json")
    if alt == "media":
        raise InvalidArgument("alt=media is not supported by this method: it has no media to download.")
    if alt not in ("json", "proto"):
        raise InvalidArgument(f"Invalid value at 'alt' ({alt!r}): must be one of json, media, proto.")
    proto = alt == "proto"
    xgafv = system.get("$.xgafv", "2")
    if xgafv not in ("1", "2"):
        raise InvalidArgument(f"Invalid value at '$.xgafv' ({xgafv!r}): must be 1 or 2.")
    pretty_text = system.get("prettyPrint", "false").lower()
    if pretty_text not in ("true", "false", "1", "0"):
        raise InvalidArgument(
            f"Invalid value at 'prettyPrint' ({system['prettyPrint']!r}): must be true or false."
        )
    callback = system.get("callback")
    if callback is not None:
        if len(callback) > _MAX_CALLBACK or not _CALLBACK.fullmatch(callback):
            raise InvalidArgument(
                f"Invalid value at 'callback' ({callback[:64]!r}): must be a JavaScript identifier "
                "or dotted path of identifiers."
            )
        if proto:
            raise InvalidArgument("callback (JSONP) cannot be combined with alt=proto.")
    for name in ("quotaUser", "uploadType", "upload_protocol"):
        if len(system.get(name, "")) > 1024:
            raise InvalidArgument(f"Invalid value at {name!r}: longer than 1024 characters.")
    text = system.get("fields")
    selector = None
    if text is not None and text.strip():
        selector = parse_selector(text)
        if response is not None:
            check_selector(selector, response.DESCRIPTOR)
    return Format(
        ints=ints,
        selector=selector if not proto else None,
        pretty=pretty_text in ("true", "1"),
        proto=proto,
        v1_errors=xgafv == "1",
        callback=callback,
    )


def parse_selector(text: str) -> Selector:
    """The compiled form of a ``fields`` selector.

    Raises:
        InvalidArgument: the selector is not well formed.
    """
    if len(text) > _MAX_SELECTOR:
        raise InvalidArgument(f"Invalid field selection: longer than {_MAX_SELECTOR} characters.")
    tokens = re.findall(r"[A-Za-z0-9_*]+|[/(),]|\s+|.", text)
    tokens = [t for t in tokens if not t.isspace()]
    position = 0

    def fail(why: str) -> InvalidArgument:
        return InvalidArgument(f"Invalid field selection {text!r}: {why}.")

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        token = peek()
        if token is None:
            raise fail("it ends too early")
        position += 1
        return token

    def name() -> str:
        token = take()
        if not _NAME.fullmatch(token):
            raise fail(f"expected a field name, got {token!r}")
        return token

    def selection(depth: int) -> Selector:
        if depth > 32:
            raise fail("nested too deep")
        result: Selector = {}
        while True:
            path = [name()]
            while peek() == "/":
                take()
                path.append(name())
            sub: Selector | None = None
            if peek() == "(":
                take()
                sub = selection(depth + 1)
                if take() != ")":
                    raise fail("expected ')'")
            for part in reversed(path[1:]):
                sub = {part: sub}
            result[path[0]] = _merge(result[path[0]], sub) if path[0] in result else sub
            if peek() != ",":
                return result
            take()

    compiled = selection(0)
    if position != len(tokens):
        raise fail(f"unexpected {tokens[position]!r}")
    return compiled


def _merge(a: Selector | None, b: Selector | None) -> Selector | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, sub in b.items():
        merged[key] = _merge(merged[key], sub) if key in merged else sub
    return merged


def check_selector(selector: Selector, message: Descriptor, prefix: str = "") -> None:
    """Raises InvalidArgument when the selector names a field the message type has not."""
    fields = {f.json_name: f for f in message.fields}
    for key, sub in selector.items():
        if key == "*":
            targets = list(fields.values())
        elif key in fields:
            targets = [fields[key]]
        else:
            raise InvalidArgument(
                f"Invalid field selection {prefix + key}: {message.full_name} has no field {key!r}."
            )
        if sub is None:
            continue
        for field in targets:
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                if key != "*":
                    raise InvalidArgument(
                        f"Invalid field selection {prefix + key}: it has no fields to select."
                    )
                continue
            sub_type = field.message_type
            if sub_type.GetOptions().map_entry or sub_type.full_name in _OPAQUE:
                continue
            if sub_type.full_name.startswith("google.protobuf."):
                if key != "*":
                    raise InvalidArgument(
                        f"Invalid field selection {prefix + key}: it has no fields to select."
                    )
                continue
            check_selector(sub, sub_type, f"{prefix}{key}/")


def select(value: Any, selector: Selector | None) -> Any:
    """The parts of a JSON value that a selector keeps (lists: each element)."""
    if selector is None:
        return value
    if type(value) is list:
        return [select(item, selector) for item in value]
    if type(value) is not dict:
        return value
    star = selector.get("*", ...)
    kept: dict[str, Any] = {}
    for key, item in value.items():
        sub = selector.get(key, ...)
        if sub is ...:
            if star is ...:
                continue
            sub = star
        elif star is not ...:
            sub = _merge(sub, star)
        kept[key] = select(item, sub)
    return kept
