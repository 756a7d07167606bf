"""Server settings: defaults, ``TASKSD_*`` environment variables, flags and the config file.

The config file (YAML, so JSON works too, or TOML) holds server settings under the flag
names (``db``, ``http_port``, …), service settings (``locations``, ``queue_reuse_delay``)
and ``queues``: a list of queues written as v2beta2 REST Queue resources, each created or
updated to match when the server starts. A flag or environment variable wins over the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import duration_pb2

from tasksd.service import ServiceSettings


class ConfigError(Exception):
    """A config file that cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    grpc_port: int = 8123
    http_port: int = 8124
    db: str = "sqlite:///./tasksd.db"
    app_engine_url: str = "http://127.0.0.1:8080"
    config: str | None = None
    log_level: str = "info"
    sweep_interval_s: float = 30.0
    oidc_issuer: str | None = None
    """The ``iss`` of OIDC tokens; by default this server's own URL, where its JWKS is."""
    app_engine_services: dict[str, str] = field(default_factory=dict)
    """Base URL per App Engine service; others go to ``app_engine_url``."""
    allowed_target_hosts: tuple[str, ...] | None = None
    """When set, attempts go only to these hosts."""
    trust_self_signed_targets: bool = False
    node_id: str | None = None
    """This process's name among nodes sharing a database (random when not set)."""
    queue_ownership_ttl_s: float = 5.0
    """How long a node's claim on a queue's dispatch lasts without renewal: the takeover time."""
    service: ServiceSettings = field(default_factory=ServiceSettings)
    queues: tuple[dict[str, Any], ...] = ()


SERVER_KEYS = {f.name for f in fields(Settings)} - {"service", "queues", "config"}

# What each server key of the file must hold, said the way the error message says it.
_KINDS: dict[str, tuple[str, Any]] = {
    "host": ("a string", lambda v: isinstance(v, str)),
    "grpc_port": ("a port number", lambda v: isinstance(v, int) and 0 <= v <= 65535),
    "http_port": ("a port number", lambda v: isinstance(v, int) and 0 <= v <= 65535),
    "db": ("a string", lambda v: isinstance(v, str)),
    "app_engine_url": ("a URL", lambda v: isinstance(v, str) and v.startswith(("http://", "https://"))),
    "log_level": ("one of debug, info, warning, error", lambda v: v in ("debug", "info", "warning", "error")),
    "sweep_interval_s": ("a number of seconds", lambda v: isinstance(v, int | float) and v > 0),
    "oidc_issuer": ("a URL", lambda v: v is None or isinstance(v, str)),
    "app_engine_services": (
        "a mapping of service names to URLs",
        lambda v: (
            isinstance(v, dict) and all(isinstance(k, str) and isinstance(u, str) for k, u in v.items())
        ),
    ),
    "allowed_target_hosts": (
        "a list of host names",
        lambda v: v is None or (isinstance(v, list) and all(isinstance(h, str) for h in v)),
    ),
    "trust_self_signed_targets": ("true or false", lambda v: isinstance(v, bool)),
    "node_id": ("a string", lambda v: v is None or isinstance(v, str)),
    "queue_ownership_ttl_s": (
        "a number of seconds of at least 2",
        lambda v: isinstance(v, int | float) and v >= 2,
    ),
}


def _duration(value: Any, key: str) -> timedelta:
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    try:
        parsed = duration_pb2.Duration()
        parsed.FromJsonString(str(value))
        result: timedelta = parsed.ToTimedelta()
        return result
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a duration such as '30s' or '3.5s'.") from None


def read_config_file(path: str) -> dict[str, Any]:
    """The mapping a YAML/JSON or TOML file holds."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if file.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"config file {path} is not valid {'TOML' if file.suffix == '.toml' else 'YAML'}: {exc}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level.")
    return data


def apply_config_file(settings: Settings, data: dict[str, Any], explicit: set[str]) -> Settings:
    """``settings`` with the file's values for every key not set by a flag or env var."""
    server: dict[str, Any] = {}
    service = settings.service
    queues: tuple[dict[str, Any], ...] = ()
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in SERVER_KEYS:
            kind, valid = _KINDS[name]
            if not valid(value):
                raise ConfigError(f"{key} must be {kind}, got {value!r}.")
            if name not in explicit:
                server[name] = value
        elif name == "locations":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError("locations must be a list of location ids.")
            service = replace(service, default_locations=tuple(value))
        elif name == "lease_calls_per_second":
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError("lease_calls_per_second must be a number >= 0 (0: no limit).")
            service = replace(service, lease_calls_per_second=float(value))
        elif name == "queue_reuse_delay":
            service = replace(service, queue_reuse_delay=_duration(value, key))
        elif name == "queues":
            if not isinstance(value, list) or not all(isinstance(q, dict) for q in value):
                raise ConfigError("queues must be a list of Queue resources (mappings).")
            queues = tuple(value)
        else:
            known = sorted(
                SERVER_KEYS | {"locations", "queue_reuse_delay", "queues", "lease_calls_per_second"}
            )
            raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(known)}.")
    if "allowed_target_hosts" in server and server["allowed_target_hosts"] is not None:
        server["allowed_target_hosts"] = tuple(server["allowed_target_hosts"])
    return replace(settings, service=service, queues=queues, **server)
