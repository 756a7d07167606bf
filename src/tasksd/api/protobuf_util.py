"""Conversions between protobuf well-known types and the model's Python values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from tasksd.clock import duration_us
from tasksd.model.errors import InvalidArgument

_MAX_SECONDS = 315_576_000_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_800)  # 0001-01-01 to 9999-12-31T23:59:59
_NANOS = range(1_000_000_000)


def timestamp(value: timestamp_pb2.Timestamp, field: str) -> datetime:
    """A Timestamp as an aware datetime (microseconds kept, nanoseconds dropped), within the
    range the Timestamp type allows. (Timestamp.ToDatetime does the same at twice the cost;
    an acknowledgement reads one.)"""
    if value.seconds not in _TIMESTAMP_SECONDS or value.nanos not in _NANOS:
        raise InvalidArgument(f"{field} is not a valid timestamp.")
    return _EPOCH + timedelta(0, value.seconds, value.nanos // 1000)


def set_timestamp(target: timestamp_pb2.Timestamp, value: datetime) -> None:
    # Timestamp.FromDatetime does the same with checks; this runs on every task rendered.
    delta = value - _EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def duration(value: duration_pb2.Duration, field: str) -> timedelta:
    if abs(value.seconds) > _MAX_SECONDS:
        raise InvalidArgument(f"{field} is out of range.")
    try:
        result: timedelta = value.ToTimedelta()
        return result
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is out of range.") from None


def set_duration(target: duration_pb2.Duration, value: timedelta) -> None:
    # Duration.FromTimedelta does the same through its normalisation; every push task renders
    # one. A negative timedelta keeps its days negative: seconds and nanos get the one sign.
    micros = duration_us(value)
    seconds = abs(micros) // 1_000_000
    sign = -1 if micros < 0 else 1
    target.seconds = sign * seconds
    target.nanos = sign * (abs(micros) - seconds * 1_000_000) * 1000


def optional_timestamp(message: Message, name: str, field: str) -> datetime | None:
    return timestamp(getattr(message, name), field) if message.HasField(name) else None


def optional_duration(message: Message, name: str, field: str) -> timedelta | None:
    return duration(getattr(message, name), field) if message.HasField(name) else None


def mask_paths(mask: FieldMask, message: Message, field: str) -> list[str]:
    """The mask's paths, after checking each names a field of ``message``'s type.

    Raises:
        InvalidArgument: a path names no field.
    """
    for path in mask.paths:
        single = FieldMask(paths=[path])
        if not single.IsValidForDescriptor(message.DESCRIPTOR):
            raise InvalidArgument(f"{field}: {path!r} is not a field of {message.DESCRIPTOR.name}.")
    return list(mask.paths)


def apply_read_mask(full: Message, mask: FieldMask) -> Message:
    """A copy of ``full`` holding only the fields the mask names."""
    result = type(full)()
    mask.MergeMessage(full, result)
    return result
