"""Logging: text or JSON lines (``--log-format``), and the access log (``--access-log``):
one line per API request with its RPC, transport, resource, status code, latency and (when
authentication is on) principal. Payloads, bodies, tokens and keys are never logged."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

ACCESS = logging.getLogger("tasksd.access")
"""The access log: INFO lines, on only with ``--access-log``."""

REQUEST_FIELDS = ("method", "transport", "resource", "code", "latency_ms", "principal")
"""The fields of an access line, in this order (JSON keys, and ``extra`` of the record)."""
_EVENT_FIELDS = ("queue", "task", "attempt", "outcome", "status", "tasks")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (RFC 3339, UTC), ``level``, ``message``, ``logger``,
    the record's own fields (those of an access line or a task event) and ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.name == ACCESS.name:  # every field of a request line, principal null when auth is off
            line.update({name: record.__dict__.get(name) for name in REQUEST_FIELDS})
        for name in _EVENT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, then the record's own fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [
            f"{name}={record.__dict__[name]}"
            for name in _EVENT_FIELDS
            if record.__dict__.get(name) is not None
        ]
        return f"{text} {' '.join(fields)}" if fields else text


def configure(level: str, fmt: str = "text", access_log: bool = False) -> None:
    """Log to stderr at ``level`` in ``fmt`` (text or json); the access log at INFO when on."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    ACCESS.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    ACCESS.disabled = not access_log


def access(
    method: str, transport: str, resource: str, code: str, latency_s: float, principal: str | None
) -> None:
    """One access line (when the access log is on)."""
    if ACCESS.disabled:
        return
    latency_ms = round(latency_s * 1000, 3)
    extra = {
        "method": method,
        "transport": transport,
        "resource": resource,
        "code": code,
        "latency_ms": latency_ms,
        "principal": principal,
    }
    by = f" by {principal}" if principal else ""
    ACCESS.info("%s %s %s %s %.3fms%s", transport, method, resource or "-", code, latency_ms, by, extra=extra)
