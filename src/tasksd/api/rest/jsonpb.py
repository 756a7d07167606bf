"""Proto3 JSON ⇄ protobuf messages, compiled once per message type from its descriptor.

``json_format`` walks the descriptor of every field of every message on every call, in
Python; on the REST hot paths (CreateTask, a lease reply of 1,000 tasks, an acknowledge in a
batch) that walk costs more than everything else the server does. This module turns each
message type into a table of per-field converters once and reuses it.

It is exact by construction, not by imitation:

* Parsing takes only the plain, well-formed spellings (a string for a string field, an int
  for an int field, an enum name, an RFC 3339 ``Z`` timestamp, …). On anything else — an
  unknown or repeated field, null, a number in a string, an offset timestamp, an
  out-of-range value — it stops, restores the target and lets ``json_format.ParseDict`` do
  the whole document, so every error, and every unusual spelling, is json_format's own.
* One rule is stricter than json_format, as Google's API front end is: a bytes field must
  hold base64 (standard or URL-safe, padded or not). json_format reads other text as the
  bytes its valid characters spell (``"%%%"`` as none); here it is ``InvalidValue``, with
  Google's wording and the field's path.
* Printing produces what ``json_format.MessageToDict`` produces (the test suite compares
  them over generated messages); the well-known types without a fast form (Any, Struct,
  Value, ListValue) are printed by json_format itself.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from google.protobuf import descriptor as d
from google.protobuf import json_format
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

from tasksd.caches import remember

Json = Any
Printer = Callable[[Any], Json]
Reader = Callable[[Any, Message], None]

_encode = msgspec.json.Encoder().encode
_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\Z")
_INTEGER = re.compile(r"-?[0-9]+\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SLOW_TYPES = frozenset(
    {"google.protobuf.Any", "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)
_INT64 = frozenset({d.FieldDescriptor.CPPTYPE_INT64, d.FieldDescriptor.CPPTYPE_UINT64})
_INTS = _INT64 | {d.FieldDescriptor.CPPTYPE_INT32, d.FieldDescriptor.CPPTYPE_UINT32}


class _Fallback(Exception):
    """The document needs json_format: unusual spelling or an error to report."""


class InvalidValue(ValueError):
    """A value json_format would take but Google's APIs refuse, worded as they word it."""


# -- printing ------------------------------------------------------------------------------


def to_json(message: Message, ints: bool = False) -> bytes:
    """The message as compact proto3 JSON (enums as numbers when ``ints``)."""
    return _encode(to_dict(message, ints))


def to_dict(message: Message, ints: bool = False) -> Json:
    """What ``json_format.MessageToDict(message, use_integers_for_enums=ints)`` returns."""
    return _printer(message.DESCRIPTOR, ints)(message)


_printers: dict[tuple[str, bool], Printer] = {}


def _printer(desc: d.Descriptor, ints: bool) -> Printer:
    key = (desc.full_name, ints)
    found = _printers.get(key)
    if found is None:
        found = _printers[key] = _compile_printer(desc, ints)
    return found


def _compile_printer(desc: d.Descriptor, ints: bool) -> Printer:
    name = desc.full_name
    if name == "google.protobuf.Timestamp":
        return _print_timestamp
    if name in ("google.protobuf.Duration", "google.protobuf.FieldMask"):
        return _print_generic
    if name in _SLOW_TYPES or any(_custom_enum_names(f) for f in desc.fields):
        return lambda message: json_format.MessageToDict(message, use_integers_for_enums=ints)
    if desc.file.name == "google/protobuf/wrappers.proto":
        value = _value_printer(desc.fields_by_name["value"], ints)
        return lambda message: value(message.value)
    fields = {f.number: (f.json_name, _field_printer(f, ints)) for f in desc.fields}

    def print_message(message: Any) -> Json:
        out = {}
        for field, value in message.ListFields():
            entry = fields.get(field.number)
            if entry is None:  # an extension (numbers apart from the fields'): json_format's
                return json_format.MessageToDict(message, use_integers_for_enums=ints)
            out[entry[0]] = entry[1](value)
        return out

    return print_message


def _field_printer(field: d.FieldDescriptor, ints: bool) -> Printer:
    """The printer of a field's whole value (a map, a list or one value)."""
    if _is_map(field):
        value = _value_printer(field.message_type.fields_by_name["value"], ints)
        if field.message_type.fields_by_name["key"].cpp_type == d.FieldDescriptor.CPPTYPE_BOOL:
            return lambda entries: {("true" if k else "false"): value(entries[k]) for k in entries}
        return lambda entries: {str(k): value(entries[k]) for k in entries}
    if field.is_repeated:
        item = _value_printer(field, ints)
        return lambda values: [item(v) for v in values]
    return _value_printer(field, ints)


def _value_printer(field: d.FieldDescriptor, ints: bool) -> Printer:
    """The printer of one value of ``field`` (an element, for a repeated field)."""
    cpp = field.cpp_type
    if cpp == d.FieldDescriptor.CPPTYPE_MESSAGE:
        sub = field.message_type
        cell: list[Printer] = []

        def print_sub(value: Any) -> Json:  # resolved on first use: types may be recursive
            if not cell:
                cell.append(_printer(sub, ints))
            return cell[0](value)

        return print_sub
    if cpp == d.FieldDescriptor.CPPTYPE_ENUM:
        enum = field.enum_type
        if ints:
            return _same
        if enum.full_name == "google.protobuf.NullValue":
            return lambda value: None
        names = {v.number: v.name for v in enum.values}
        closed = enum.is_closed

        def print_enum(value: int) -> Json:
            found = names.get(value)
            if found is not None:
                return found
            if closed:
                raise json_format.SerializeToJsonError(
                    "Enum field contains an integer value which can not mapped to an enum value."
                )
            return value

        return print_enum
    if field.type == d.FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode("utf-8")
    if cpp == d.FieldDescriptor.CPPTYPE_STRING:
        return _same
    if cpp == d.FieldDescriptor.CPPTYPE_BOOL:
        return bool
    if cpp in _INT64:
        return str
    if cpp == d.FieldDescriptor.CPPTYPE_DOUBLE:
        return _print_float
    if cpp == d.FieldDescriptor.CPPTYPE_FLOAT:
        return lambda value: _print_float(value, type_checkers.ToShortestFloat)
    return _same


def _same(value: Any) -> Any:
    return value


def _print_float(value: float, shorten: Callable[[float], float] | None = None) -> Json:
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return shorten(value) if shorten is not None else value


_SECONDS: dict[int, str] = {}
"""Recently printed whole seconds: the tasks of one reply mostly share a few."""
_KEPT = 1024
"""How many entries each of the bounded caches of this module keeps."""


def _print_timestamp(message: Any) -> Json:
    seconds, nanos = message.seconds, message.nanos
    if not 0 <= nanos < 1_000_000_000:
        return message.ToJsonString()  # raises json_format's own error
    text = _SECONDS.get(seconds)
    if text is None:
        if not -62_135_596_800 <= seconds <= 253_402_300_799:
            return message.ToJsonString()
        text = (_EPOCH + timedelta(seconds=seconds)).isoformat()
        remember(_SECONDS, seconds, text, _KEPT)
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _print_generic(message: Any) -> Json:
    return message.ToJsonString()


def _custom_enum_names(field: d.FieldDescriptor) -> bool:
    """Whether the field's enum gives its values JSON names of their own (json_format's to handle)."""
    enum = field.enum_type
    return enum is not None and any(v.GetOptions().ListFields() for v in enum.values)


def _is_map(field: d.FieldDescriptor) -> bool:
    return bool(
        field.cpp_type == d.FieldDescriptor.CPPTYPE_MESSAGE
        and field.message_type.has_options
        and field.message_type.GetOptions().map_entry
    )


# -- parsing -------------------------------------------------------------------------------


def parse_dict(document: dict[str, Any], message: Message) -> None:
    """Merge ``document`` into ``message`` as ``json_format.ParseDict`` does (same errors).

    The fast path runs only on an empty message (so that giving up can restore it with
    ``Clear``); a message that already holds fields is merged by json_format.

    Raises:
        InvalidValue: a bytes field holds a string that is not base64, which json_format
            would read as whatever bytes its valid characters spell (often none).
    """
    if not message.ListFields():
        try:
            _reader(message.DESCRIPTOR)(document, message)
            return
        except (_Fallback, ValueError, TypeError, OverflowError, KeyError, AttributeError):
            message.Clear()
    check = _bytes_checker(message.DESCRIPTOR)
    if check is not None:
        check(document, "")
    json_format.ParseDict(document, message)


_readers: dict[str, Reader] = {}


def _reader(desc: d.Descriptor) -> Reader:
    found = _readers.get(desc.full_name)
    if found is None:
        found = _readers[desc.full_name] = _compile_reader(desc)
    return found


def _compile_reader(desc: d.Descriptor) -> Reader:
    name = desc.full_name
    if name == "google.protobuf.Timestamp":
        return _read_timestamp
    if name in ("google.protobuf.Duration", "google.protobuf.FieldMask"):
        return _read_generic
    if name in _SLOW_TYPES or desc.file.name == "google/protobuf/wrappers.proto":
        return _give_up
    by_key: dict[str, tuple[d.FieldDescriptor, Reader]] = {}
    for field in desc.fields:
        reader = _field_reader(field)
        by_key[field.json_name] = (field, reader)
        by_key.setdefault(field.name, (field, reader))

    def read_message(document: Any, message: Message) -> None:
        if type(document) is not dict:
            raise _Fallback
        seen: set[Any] = set()
        for key, value in document.items():
            entry = by_key.get(key)
            if entry is None or value is None:
                raise _Fallback
            field = entry[0]
            oneof = field.containing_oneof
            if field in seen or (oneof is not None and oneof in seen):
                raise _Fallback
            seen.add(field)
            if oneof is not None:
                seen.add(oneof)
            entry[1](value, message)

    return read_message


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}\Z")
"""Standard or URL-safe base64, with or without padding: what proto3 JSON accepts."""
Checker = Callable[[Any, str], None]
_checkers: dict[str, Checker | None] = {}


def _is_base64(text: str) -> bool:
    return _BASE64.match(text) is not None and len(text.rstrip("=")) % 4 != 1


def _bytes_checker(desc: d.Descriptor, outer: frozenset[str] = frozenset()) -> Checker | None:
    """What checks the base64 of every bytes field a document of this type can hold (None
    when it holds none), for documents json_format reads; the fast path checks as it reads.
    Values of the wrong JSON type are left to the parser to report."""
    name = desc.full_name
    if name in _checkers:
        return _checkers[name]
    if name in outer or name.startswith("google.protobuf."):
        return None  # recursion, or a well-known type with a JSON form of its own
    checks: list[tuple[tuple[str, ...], str, bool, Checker | None]] = []
    for field in desc.fields:
        if _is_map(field):
            continue
        if field.type == d.FieldDescriptor.TYPE_BYTES:
            checks.append((_keys(field), field.name, field.is_repeated, None))
        elif field.cpp_type == d.FieldDescriptor.CPPTYPE_MESSAGE:
            sub = _bytes_checker(field.message_type, outer | {name})
            if sub is not None:
                checks.append((_keys(field), field.name, field.is_repeated, sub))
    if not checks:
        _checkers[name] = None
        return None

    def check(document: Any, path: str) -> None:
        if type(document) is not dict:
            return
        for keys, field_name, repeated, sub in checks:
            for key in keys:
                value = document.get(key)
                if value is None:
                    continue
                where = path + field_name
                items = enumerate(value) if repeated and type(value) is list else [(None, value)]
                for index, item in items:
                    at = where if index is None else f"{where}[{index}]"
                    if sub is not None:
                        sub(item, at + ".")
                    elif type(item) is str and not _is_base64(item):
                        shown = item if len(item) <= 64 else item[:64] + "..."
                        raise InvalidValue(
                            f"Invalid value at '{at}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
                        )

    _checkers[name] = check
    return check


def _keys(field: d.FieldDescriptor) -> tuple[str, ...]:
    """The JSON keys a field may be given under: its JSON name and its proto name."""
    return tuple(dict.fromkeys((field.json_name, field.name)))


def _give_up(document: Any, message: Message) -> None:
    raise _Fallback


def _field_reader(field: d.FieldDescriptor) -> Reader:
    """How the value of one JSON key is stored into ``field`` of its message."""
    name = field.name
    if _is_map(field):
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        if key_field.cpp_type != d.FieldDescriptor.CPPTYPE_STRING:
            return _give_up
        if value_field.cpp_type == d.FieldDescriptor.CPPTYPE_MESSAGE:
            sub_reader = _lazy_reader(value_field.message_type)

            def store(target: Any, key: str, value: Any) -> None:
                sub_reader(value, target[key])

        else:
            convert = _scalar(value_field)

            def store(target: Any, key: str, value: Any) -> None:
                target[key] = convert(value)

        def read_map(value: Any, message: Message) -> None:
            if type(value) is not dict:
                raise _Fallback
            target = getattr(message, name)
            for k, v in value.items():
                if v is None:
                    raise _Fallback
                store(target, _checked_str(k), v)

        return read_map
    if field.cpp_type == d.FieldDescriptor.CPPTYPE_MESSAGE:
        sub_reader = _lazy_reader(field.message_type)
        if field.is_repeated:

            def read_messages(value: Any, message: Message) -> None:
                if type(value) is not list:
                    raise _Fallback
                target = getattr(message, name)
                for item in value:
                    if item is None:
                        raise _Fallback
                    sub_reader(item, target.add())

            return read_messages

        def read_sub(value: Any, message: Message) -> None:
            sub = getattr(message, name)
            sub.SetInParent()
            sub_reader(value, sub)

        return read_sub
    convert = _scalar(field)
    if field.is_repeated:

        def read_scalars(value: Any, message: Message) -> None:
            if type(value) is not list:
                raise _Fallback
            getattr(message, name).extend([convert(item) for item in value])

        return read_scalars

    def read_scalar(value: Any, message: Message) -> None:
        setattr(message, name, convert(value))

    return read_scalar


def _lazy_reader(desc: d.Descriptor) -> Reader:
    cell: list[Reader] = []

    def read(value: Any, message: Message) -> None:  # resolved on first use: types may recurse
        if not cell:
            cell.append(_reader(desc))
        cell[0](value, message)

    return read


def _checked_str(value: Any) -> str:
    if type(value) is not str or (not value.isascii() and _SURROGATE.search(value)):
        raise _Fallback
    return value


def _scalar(field: d.FieldDescriptor) -> Callable[[Any], Any]:
    """The converter of one JSON scalar to the field's Python value; _Fallback if unusual."""
    cpp = field.cpp_type
    if cpp in _INTS:

        def to_int(value: Any) -> int:
            kind = type(value)
            if kind is int:
                return int(value)
            if kind is str and _INTEGER.match(value):
                return int(value)
            raise _Fallback

        return to_int
    if cpp == d.FieldDescriptor.CPPTYPE_DOUBLE:

        def to_double(value: Any) -> float:
            kind = type(value)
            if kind is int or (kind is float and math.isfinite(value)):
                return float(value)
            raise _Fallback

        return to_double
    if cpp == d.FieldDescriptor.CPPTYPE_BOOL:

        def to_bool(value: Any) -> bool:
            if type(value) is not bool:
                raise _Fallback
            return bool(value)

        return to_bool
    if field.type == d.FieldDescriptor.TYPE_BYTES:

        def to_bytes(value: Any) -> bytes:
            if type(value) is not str:
                raise _Fallback
            if not _is_base64(value):
                raise _Fallback  # refused, with the field's path, before json_format reads it
            encoded = value.encode("utf-8")
            return base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))

        return to_bytes
    if cpp == d.FieldDescriptor.CPPTYPE_STRING:
        return _checked_str
    if cpp == d.FieldDescriptor.CPPTYPE_ENUM:
        numbers: dict[str, int] = {v.name: v.number for v in field.enum_type.values}
        known = frozenset(numbers.values())
        if field.enum_type.full_name == "google.protobuf.NullValue" or _custom_enum_names(field):
            return _fallback_scalar

        def to_enum(value: Any) -> int:
            if type(value) is str:
                number = numbers.get(value)
                if number is not None:
                    return number
            elif type(value) is int and value in known:
                return int(value)
            raise _Fallback

        return to_enum
    return _fallback_scalar  # float32 and anything newer: json_format's range rules


def _fallback_scalar(value: Any) -> Any:
    raise _Fallback


_TIMESTAMPS: dict[str, tuple[int, int]] = {}
"""Recently read timestamps: a worker acknowledges a whole lease with the same scheduleTime."""


def _read_timestamp(value: Any, message: Any) -> None:
    known = _TIMESTAMPS.get(value) if type(value) is str else None
    if known is None:
        match = _TIMESTAMP.match(value) if type(value) is str else None
        if match is None:
            message.FromJsonString(value)  # other offsets and spellings; errors fall back
            return
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        days = datetime(year, month, day, tzinfo=UTC).toordinal() - _EPOCH_ORDINAL
        if not (hour < 24 and minute < 60 and second < 60):
            raise _Fallback
        fraction = match.group(7)
        nanos = int(fraction.ljust(9, "0")) if fraction else 0
        known = (days * 86_400 + hour * 3600 + minute * 60 + second, nanos)
        remember(_TIMESTAMPS, value, known, _KEPT)
    message.seconds, message.nanos = known


def _read_generic(value: Any, message: Any) -> None:
    if type(value) is not str:
        raise _Fallback
    message.FromJsonString(value)
