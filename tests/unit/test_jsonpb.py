"""The compiled JSON codec against json_format: the same JSON out, the same messages and the
same errors in, over every message type the three API versions use."""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import descriptor as d
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from tasksd.api.rest import jsonpb
from tasksd.server import VERSIONS

ROUNDS = 40


def _all_types() -> list[d.Descriptor]:
    seen: dict[str, d.Descriptor] = {}

    def walk(desc: d.Descriptor) -> None:
        if desc.full_name in seen:
            return
        seen[desc.full_name] = desc
        for field in desc.fields:
            if field.message_type is not None:
                walk(field.message_type)

    for version in VERSIONS:
        for request, response in version.messages.values():
            walk(request.DESCRIPTOR)
            walk(response.DESCRIPTOR)
    return sorted(seen.values(), key=lambda desc: desc.full_name)


TYPES = _all_types()
SIMPLE = [t for t in TYPES if not t.GetOptions().map_entry and t.full_name not in jsonpb._SLOW_TYPES]


def _fill(message: Message, rng: random.Random, depth: int = 0) -> None:
    """Set a random subset of the message's fields to random values."""
    desc = message.DESCRIPTOR
    name = desc.full_name
    if name == "google.protobuf.Timestamp":
        message.seconds = rng.randint(-62_135_596_800, 253_402_300_799)  # type: ignore[attr-defined]
        message.nanos = rng.choice([0, 5_000_000, 123_456_000, 987_654_321])  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.Duration":
        message.seconds = rng.randint(0, 10**6)  # type: ignore[attr-defined]
        message.nanos = rng.choice([0, 1_000_000, 500_000_000])  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.FieldMask":
        message.paths.extend(rng.sample(["name", "rate_limits", "retry_config.max_attempts"], 2))  # type: ignore[attr-defined]
        return
    if name in jsonpb._SLOW_TYPES:
        return
    for field in desc.fields:
        if rng.random() < 0.4 or (field.containing_oneof and message.WhichOneof(field.containing_oneof.name)):
            continue
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for i in range(rng.randint(0, 3)):
                key = f"k{i}-{rng.randint(0, 99)}"
                if value_field.message_type is not None:
                    if depth < 3:
                        _fill(target[key], rng, depth + 1)
                else:
                    target[key] = _scalar(value_field, rng)
        elif field.message_type is not None:
            if depth >= 3:
                continue
            if field.is_repeated:
                for _ in range(rng.randint(0, 3)):
                    _fill(target.add(), rng, depth + 1)
            else:
                target.SetInParent()
                _fill(target, rng, depth + 1)
        elif field.is_repeated:
            target.extend(_scalar(field, rng) for _ in range(rng.randint(0, 3)))
        else:
            setattr(message, field.name, _scalar(field, rng))


def _scalar(field: d.FieldDescriptor, rng: random.Random) -> Any:
    cpp = field.cpp_type
    if cpp == d.FieldDescriptor.CPPTYPE_ENUM:
        return rng.choice(field.enum_type.values).number
    if field.type == d.FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 12))
    if cpp == d.FieldDescriptor.CPPTYPE_STRING:
        return rng.choice(["", "a", "héllo wörld", "x" * 30, "emoji \U0001f600", 'quote"back\\slash'])
    if cpp == d.FieldDescriptor.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if cpp in (d.FieldDescriptor.CPPTYPE_DOUBLE, d.FieldDescriptor.CPPTYPE_FLOAT):
        return rng.choice([0.0, 0.5, 1.0, 500.0, 1e-7, float("inf"), float("-inf")])
    if cpp in (d.FieldDescriptor.CPPTYPE_UINT32, d.FieldDescriptor.CPPTYPE_UINT64):
        return rng.choice([0, 1, 2**31, 4_294_967_295])
    if cpp == d.FieldDescriptor.CPPTYPE_INT32:
        return rng.choice([0, -1, 7, 2**31 - 1, -(2**31)])
    return rng.choice([0, -1, 7, 2**63 - 1, -(2**63)])


def _messages(desc: d.Descriptor) -> Iterator[Message]:
    cls = message_factory.GetMessageClass(desc)
    yield cls()
    rng = random.Random(desc.full_name)
    for _ in range(ROUNDS):
        message = cls()
        _fill(message, rng)
        yield message


@pytest.mark.parametrize("desc", SIMPLE, ids=lambda desc: desc.full_name)
def test_printing_and_reading_match_json_format(desc: d.Descriptor) -> None:
    for message in _messages(desc):
        for ints in (False, True):
            expected = json_format.MessageToDict(message, use_integers_for_enums=ints)
            assert jsonpb.to_dict(message, ints) == expected
            assert json.loads(jsonpb.to_json(message, ints)) == json.loads(json.dumps(expected))
            read = type(message)()
            jsonpb.parse_dict(copy.deepcopy(expected), read)
            assert read == message


def _outcome(document: Any, desc: d.Descriptor, parse: Any) -> tuple[str, Any]:
    message = message_factory.GetMessageClass(desc)()
    try:
        parse(copy.deepcopy(document), message)
    except Exception as exc:  # the error itself is what is compared
        return type(exc).__name__, str(exc)
    return "ok", message.SerializeToString(deterministic=True)


ODD_VALUES: list[Any] = [
    None,
    "12",
    " 12",
    "+5",
    "1e3",
    1.0,
    1.5,
    True,
    -1,
    2**70,
    "NaN",
    "Infinity",
    "nan",
    [],
    {},
    [None],
    ["a", 1],
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.5+01:00",
    "2026-1-1T0:0:0Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01t00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-01-01T00:00:00.1234567891Z",
    "3.5s",
    "-3.000000001s",
    "3 s",
    "aGVsbG8",
    "aGVs bG8=",
    "%%%",
    "\ud800",
    "PAUSED",
    "paused",
    2,
    99,
    "a,b_c,dE",
]


@pytest.mark.parametrize("desc", SIMPLE, ids=lambda desc: desc.full_name)
def test_odd_documents_fail_or_succeed_as_json_format_does(desc: d.Descriptor) -> None:
    rng = random.Random(f"odd {desc.full_name}")
    base = {}
    for message in _messages(desc):
        base = json_format.MessageToDict(message)
        if base:
            break
    keys = [f.json_name for f in desc.fields] + [f.name for f in desc.fields] + ["noSuchField"]
    for _ in range(ROUNDS * 3):
        if not isinstance(base, dict):  # a well-known type spelled as one JSON value
            document = rng.choice(ODD_VALUES)
            assert _outcome(document, desc, _wkt(jsonpb)) == _outcome(document, desc, _wkt(json_format))
            continue
        document = copy.deepcopy(base)
        key = rng.choice(keys)
        document[key] = rng.choice(ODD_VALUES)
        if rng.random() < 0.3 and base:  # the same field under both of its names, or a nested oddity
            other = rng.choice(list(base))
            document[other] = {"x": rng.choice(ODD_VALUES)} if rng.random() < 0.5 else base[other]
        fast = _outcome(document, desc, jsonpb.parse_dict)
        if fast[0] == "InvalidValue":  # stricter than json_format on purpose: base64 is checked
            assert not _is_base64(fast[1].split('failed for "', 1)[1][:-1]), fast
            continue
        assert fast == _outcome(document, desc, json_format.ParseDict)


def _is_base64(text: str) -> bool:
    """Standard or URL-safe base64, padded or not (checked by the standard library)."""
    bare = text.rstrip("=")
    if len(text) - len(bare) > 2:
        return False
    try:
        base64.b64decode(bare.replace("-", "+").replace("_", "/") + "=" * (-len(bare) % 4), validate=True)
    except ValueError:
        return False
    return True


def _wkt(module: Any) -> Any:
    """Parse a well-known type's JSON value through a message with a field of that type."""

    def parse(value: Any, message: Message) -> None:
        holder_desc, field = next(
            (t, f)
            for t in SIMPLE
            for f in t.fields
            if f.message_type is message.DESCRIPTOR and not f.is_repeated
        )
        holder = message_factory.GetMessageClass(holder_desc)()
        parse_dict = json_format.ParseDict if module is json_format else jsonpb.parse_dict
        parse_dict({field.json_name: value}, holder)
        message.CopyFrom(getattr(holder, field.name))

    return parse


def test_fast_timestamps_are_exact() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    for text in [
        "2026-11-21T22:28:34Z",
        "2026-11-21T22:28:34.5Z",
        "2026-11-21T22:28:34.793423Z",
        "1970-01-01T00:00:00.000000001Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "1969-12-31T23:59:59.999Z",
    ]:
        fast, slow = Timestamp(), Timestamp()
        jsonpb._read_timestamp(text, fast)
        slow.FromJsonString(text)
        assert (fast.seconds, fast.nanos) == (slow.seconds, slow.nanos), text
        assert jsonpb._print_timestamp(fast) == slow.ToJsonString()


def test_timestamps_of_one_second_print_each_their_own_fraction() -> None:
    """Printed seconds are remembered; the fraction and the range checks are not."""
    from google.protobuf.timestamp_pb2 import Timestamp

    for seconds in (1_763_770_000, 0, -62_135_596_800, 253_402_300_799):
        for nanos in (0, 5, 123_000, 500_000_000, 999_999_999, 1_000_000_000, -1):
            message = Timestamp(seconds=seconds, nanos=nanos)
            try:
                expected: object = message.ToJsonString()
            except ValueError as exc:
                expected = type(exc)
            try:
                printed: object = jsonpb._print_timestamp(message)
            except ValueError as exc:
                printed = type(exc)
            assert printed == expected, (seconds, nanos)


def test_bytes_read_as_json_format_reads_them() -> None:
    from google.protobuf.wrappers_pb2 import BytesValue

    for text in ["aGVsbG8=", "aGVsbG8", "-_-_", "+/+/", ""]:
        expected = json_format.Parse(json.dumps(text), BytesValue()).value
        assert jsonpb._scalar(BytesValue.DESCRIPTOR.fields_by_name["value"])(text) == expected
        assert base64.b64encode(expected).decode() == jsonpb.to_dict(BytesValue(value=expected))


def test_bytes_that_are_not_base64_are_refused_with_the_field_path() -> None:
    desc = next(t for t in TYPES if t.full_name == "google.cloud.tasks.v2beta2.CreateTaskRequest")
    message = message_factory.GetMessageClass(desc)()
    for text in ["%%%", "a", "aGVsbG8===", "aG=VsbG8", "aGVs bG8"]:
        assert not _is_base64(text)
        with pytest.raises(jsonpb.InvalidValue) as caught:
            jsonpb.parse_dict({"task": {"pullMessage": {"payload": text}}}, message)
        assert str(caught.value) == (
            "Invalid value at 'task.pull_message.payload' (TYPE_BYTES), "
            f'Base64 decoding failed for "{text}"'
        )
        assert not message.ListFields()
    for text in ["aGVsbG8=", "aGVsbG8", "-_-_", "+/+/", ""]:
        assert _is_base64(text)
        jsonpb.parse_dict({"task": {"pullMessage": {"payload": text}}}, message)
        message.Clear()


FAST = [
    t
    for t in SIMPLE
    if t.name in {"Task", "Queue", "CreateTaskRequest", "AcknowledgeTaskRequest", "LeaseTasksRequest"}
]


@pytest.mark.parametrize("desc", FAST, ids=lambda desc: desc.full_name)
def test_plain_documents_take_the_fast_path(desc: d.Descriptor, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = [json_format.MessageToDict(m) for m in _messages(desc)]
    # Infinity spelled as a string, and Any (a Status's details), are json_format's to read.
    documents = [doc for doc in documents if not any(w in json.dumps(doc) for w in ("Infinity", '"details"'))]
    assert len(documents) > ROUNDS // 4

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fell back to json_format")

    monkeypatch.setattr(jsonpb.json_format, "ParseDict", refuse)
    for document in documents:
        jsonpb.parse_dict(document, message_factory.GetMessageClass(desc)())
