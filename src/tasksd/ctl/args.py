"""gcloud's argument types: durations (``10s``, ``5m``, ``1h30m``), ``KEY:VALUE`` lists,
timestamps, headers, and bodies given inline or from a file."""

from __future__ import annotations

import re
from datetime import datetime
from typing import IO, Any

import click
from google.protobuf import timestamp_pb2

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd]|ms|us)?", re.IGNORECASE)
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "ms": 0.001, "us": 0.000001}


def seconds_of(text: str) -> float:
    """A gcloud duration in seconds: an integer or decimal with an optional unit
    (``s``, ``m``, ``h``, ``d``, ``ms``, ``us``; seconds without one), parts concatenated as
    in ``1h30m``, or ISO 8601's ``PT1H30M``."""
    value = text.strip()
    if value.upper().startswith("P"):
        value = value.upper().removeprefix("P").replace("T", "")
    pos, total = 0, 0.0
    if not value:
        raise ValueError("empty duration")
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if match is None:
            raise ValueError(f"not a duration: {text!r} (for example 30s, 5m, 1h30m)")
        total += float(match.group(1)) * _UNIT_S[(match.group(2) or "").lower()]
        pos = match.end()
    return total


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """A duration, passed on as REST's ``"3.5s"``."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, str) and value.endswith("s") and _is_rest_duration(value):
            return value
        try:
            seconds = seconds_of(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _is_rest_duration(value: str) -> bool:
    return re.fullmatch(r"\d+(\.\d{1,9})?s", value) is not None


class MaxAttempts(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """An attempt count, or ``unlimited`` (``-1``, as gcloud sends it)."""

    name = "MAX_ATTEMPTS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        if str(value).lower() == "unlimited":
            return -1
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not an integer or 'unlimited'", param, ctx)
        if number < -1:
            self.fail(f"{number} is below -1 (-1 means unlimited)", param, ctx)
        return number


class KeyValues(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """``KEY:VALUE,[KEY:VALUE,…]`` with keys among ``keys``."""

    name = "KEY:VALUE,[...]"

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, str]:
        if isinstance(value, dict):
            return value
        out: dict[str, str] = {}
        for part in str(value).split(","):
            key, sep, item = part.partition(":")
            key = key.strip()
            if not sep or not key:
                self.fail(f"{part!r} is not KEY:VALUE", param, ctx)
            if key not in self.keys:
                self.fail(f"unknown key {key!r}; valid keys: {', '.join(self.keys)}", param, ctx)
            out[key] = item.strip()
        return out


class Header(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """``NAME:VALUE``, a header (the value may itself contain colons)."""

    name = "HEADER_FIELD:HEADER_VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, item = str(value).partition(":")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not HEADER_FIELD:HEADER_VALUE", param, ctx)
        return key.strip(), item.lstrip()


class Timestamp(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """A time: RFC 3339 (kept to the nanosecond, as the API returned it) or ISO 8601; a time
    without an offset is local time, as gcloud reads it."""

    name = "TIMESTAMP"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        stamp = timestamp_pb2.Timestamp()
        try:
            stamp.FromJsonString(text)
            return str(stamp.ToJsonString())
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not a time (for example 2026-01-02T15:04:05Z)", param, ctx)
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()
        stamp.FromDatetime(parsed)
        return str(stamp.ToJsonString())


def read_body(content: str | None, file: IO[bytes] | None, what: str) -> bytes | None:
    """The bytes of ``--WHAT-content`` or ``--WHAT-file`` (``-`` reads stdin); not both."""
    if content is not None and file is not None:
        raise click.UsageError(f"--{what}-content and --{what}-file cannot be used together")
    if file is not None:
        return file.read()
    if content is not None:
        return content.encode()
    return None
