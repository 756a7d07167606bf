"""Server settings: defaults, ``TASKSD_*`` environment variables, flags and the config file.

The config file (YAML, so JSON works too, or TOML) holds server settings under the flag
names (``db``, ``http_port``, …), service settings (``locations``, ``queue_reuse_delay``)
and ``queues``: a list of queues written as v2beta2 REST Queue resources, each created or
updated to match when the server starts. A flag or environment variable wins over the file.

``queue_yaml`` names an App Engine queue.yaml file (``{file, project, location}``, or just its
path), applied at every start as an upload of it is; a config file that is itself a
queue.yaml (a top-level ``queue:`` key) is read as ``queue_yaml: THAT_FILE``. Its project is
``project``, else the file's ``application:``, else ``$GOOGLE_CLOUD_PROJECT``; its location
is ``location``, else the first of ``locations``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import duration_pb2

from tasksd.model.errors import TasksError
from tasksd.model.names import LocationName
from tasksd.service import ServiceSettings
from tasksd.service.queueyaml import FALLBACK_LOCATION, QueueYaml, looks_like_queue_yaml, parse_queue_yaml


class ConfigError(Exception):
    """A config file that cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may hold of the HTTP port."""

    max_header_bytes: int = 65536
    """Request line and headers together; more is answered 431."""
    header_timeout_s: float = 30.0
    """How long a request's line and headers may take to arrive."""
    body_timeout_s: float = 60.0
    """How long a request's body may take to arrive once its headers have."""
    max_connections: int = 900
    """Open connections served at once; beyond it new ones get 503 (``/healthz`` still answers)."""


@dataclass(frozen=True, slots=True)
class QueueYamlConfig:
    """A queue.yaml file to apply at start, and where."""

    file: str
    queues: QueueYaml
    location: LocationName


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    grpc_port: int = 8123
    http_port: int = 8124
    db: str = "sqlite:///./tasksd.db"
    app_engine_url: str = "http://127.0.0.1:8080"
    config: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    """``text`` or ``json`` (one object per line: time, level, message, …)."""
    access_log: bool = False
    """One line per API request: RPC, transport, resource, code, latency, principal."""
    sweep_interval_s: float = 30.0
    oidc_issuer: str | None = None
    """The ``iss`` of OIDC tokens; by default this server's own URL, where its JWKS is."""
    app_engine_services: dict[str, str] = field(default_factory=dict)
    """Base URL per App Engine service; others go to ``app_engine_url``."""
    allowed_target_hosts: tuple[str, ...] | None = None
    """When set, attempts go only to these hosts."""
    allowed_target_networks: tuple[str, ...] | None = None
    """When set, attempts connect only to addresses in these networks (CIDR); link-local and
    cloud metadata addresses are refused whatever this says."""
    target_ca_file: str | None = None
    """A CA certificate file (PEM) trusted, besides the system's, for HTTPS targets."""
    insecure_skip_target_tls_verify: bool = False
    """Send to HTTPS targets without checking their certificates at all (tokens included)."""
    auth: dict[str, Any] | None = None
    """The ``auth:`` mapping of the file (read by ``tasksd.auth.config``); None: an open emulator."""
    tls: dict[str, Any] | None = None
    """``{cert_file, key_file, client_ca_file?}``: serve REST over HTTPS and gRPC over TLS."""
    limits: Limits = field(default_factory=lambda: Limits())
    node_id: str | None = None
    """This process's name among nodes sharing a database; by default ``HOSTNAME:HTTP_PORT``,
    the same across restarts (``/INDEX`` appended for each of ``processes``). A restarted node
    sends again the attempts its previous life left in flight. Two live processes must never
    share an id on one database: tasksd refuses a second one on the same machine, and when one
    starts on another machine the older stops within seconds (exit status 2)."""
    processes: int = 1
    """Server processes to run, each a node of the same store with its own node id, all
    serving the HTTP and gRPC ports (SO_REUSEPORT). Not for in-memory stores."""
    queue_ownership_ttl_s: float = 5.0
    """How long a node's claim on a queue's dispatch lasts without renewal: the takeover time."""
    firebase_function_url: str = "http://127.0.0.1:5001/{project}/{location}/{queue}"
    """Where a task enqueued by firebase-admin without a URL goes, when its queue's uriOverride
    names no host: ``{project}``, ``{location}`` and ``{queue}`` are filled in."""
    service: ServiceSettings = field(default_factory=ServiceSettings)
    queues: tuple[dict[str, Any], ...] = ()
    queue_yaml: QueueYamlConfig | None = None


SERVER_KEYS = {f.name for f in fields(Settings)} - {"service", "queues", "config", "limits", "queue_yaml"}

# What each server key of the file must hold, said the way the error message says it.
_KINDS: dict[str, tuple[str, Any]] = {
    "host": ("a string", lambda v: isinstance(v, str)),
    "grpc_port": ("a port number", lambda v: isinstance(v, int) and 0 <= v <= 65535),
    "http_port": ("a port number", lambda v: isinstance(v, int) and 0 <= v <= 65535),
    "db": ("a string", lambda v: isinstance(v, str)),
    "app_engine_url": ("a URL", lambda v: isinstance(v, str) and v.startswith(("http://", "https://"))),
    "log_level": ("one of debug, info, warning, error", lambda v: v in ("debug", "info", "warning", "error")),
    "log_format": ("text or json", lambda v: v in ("text", "json")),
    "access_log": ("true or false", lambda v: isinstance(v, bool)),
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
    "allowed_target_networks": (
        "a list of networks such as 10.0.0.0/8",
        lambda v: v is None or (isinstance(v, list) and all(_is_network(n) for n in v)),
    ),
    "target_ca_file": ("the path of a PEM file", lambda v: v is None or isinstance(v, str)),
    "insecure_skip_target_tls_verify": ("true or false", lambda v: isinstance(v, bool)),
    "auth": ("a mapping (mode: enforce, …)", lambda v: v is None or isinstance(v, dict)),
    "tls": (
        "a mapping with cert_file and key_file (and optionally client_ca_file)",
        lambda v: (
            v is None
            or (
                isinstance(v, dict)
                and {"cert_file", "key_file"} <= set(v)
                and set(v) <= {"cert_file", "key_file", "client_ca_file"}
                and all(isinstance(x, str) for x in v.values())
            )
        ),
    ),
    "node_id": ("a non-empty string", lambda v: v is None or (isinstance(v, str) and v.strip() != "")),
    "processes": (
        "a whole number from 1 to 64",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64,
    ),
    "queue_ownership_ttl_s": (
        "a number of seconds of at least 2",
        lambda v: isinstance(v, int | float) and v >= 2,
    ),
    "firebase_function_url": (
        "an http:// or https:// URL template using only {project}, {location} and {queue}",
        lambda v: _is_function_url(v),
    ),
}


def _is_function_url(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return False
    try:
        value.format(project="p", location="l", queue="q")
    except (KeyError, IndexError, ValueError):
        return False
    return True


def _is_network(value: Any) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        return False
    return True


def _limits(value: Any) -> Limits:
    if not isinstance(value, dict):
        raise ConfigError("limits must be a mapping (max_header_bytes, header_timeout_s, …).")
    known = {f.name: f for f in fields(Limits)}
    values: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            raise ConfigError(f"unknown key limits.{key}; known keys: {', '.join(sorted(known))}.")
        integer = key in ("max_header_bytes", "max_connections")
        if (
            isinstance(item, bool)
            or not isinstance(item, int | float)
            or item <= 0
            or (integer and not isinstance(item, int))
        ):
            kind = "a whole number" if integer else "a number of seconds"
            raise ConfigError(f"limits.{key} must be {kind} above 0, got {item!r}.")
        values[key] = item
    return Limits(**values)


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
    if file.suffix != ".toml" and looks_like_queue_yaml(data):
        return {"queue_yaml": str(file.resolve())}
    return data


def _queue_yaml(value: Any, base: Path) -> tuple[str, QueueYaml, str | None, str | None]:
    """(path, queues, project, location) of the ``queue_yaml`` key: a path or a mapping
    ``{file, project, location}`` (relative paths are read from ``base``)."""
    if isinstance(value, str):
        value = {"file": value}
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("file"), str)
        or not set(value) <= {"file", "project", "location"}
        or not all(isinstance(v, str) for v in value.values())
    ):
        raise ConfigError("queue_yaml must be the path of a queue.yaml file, or {file, project, location}.")
    path = base / value["file"]
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"queue_yaml: cannot read {path}: {exc.strerror}") from None
    try:
        queues = parse_queue_yaml(text)
    except TasksError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return str(path), queues, value.get("project"), value.get("location")


def apply_config_file(settings: Settings, data: dict[str, Any], explicit: set[str]) -> Settings:
    """``settings`` with the file's values for every key not set by a flag or env var."""
    server: dict[str, Any] = {}
    service = settings.service
    queues: tuple[dict[str, Any], ...] = ()
    queue_yaml: tuple[str, QueueYaml, str | None, str | None] | None = None
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
        elif name == "limits":
            server["limits"] = _limits(value)
        elif name == "trust_self_signed_targets":
            raise ConfigError(
                "trust_self_signed_targets is gone: name your CA with target_ca_file, or turn every "
                "certificate check off with insecure_skip_target_tls_verify: true."
            )
        elif name == "queues":
            if not isinstance(value, list) or not all(isinstance(q, dict) for q in value):
                raise ConfigError("queues must be a list of Queue resources (mappings).")
            queues = tuple(value)
        elif name == "queue_yaml":
            queue_yaml = _queue_yaml(value, Path(settings.config).parent if settings.config else Path.cwd())
        else:
            known = sorted(
                SERVER_KEYS
                | {
                    "locations",
                    "queue_reuse_delay",
                    "queues",
                    "queue_yaml",
                    "lease_calls_per_second",
                    "limits",
                }
            )
            raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(known)}.")
    if "allowed_target_hosts" in server and server["allowed_target_hosts"] is not None:
        server["allowed_target_hosts"] = tuple(server["allowed_target_hosts"])
    if server.get("allowed_target_networks") is not None:
        server["allowed_target_networks"] = tuple(server["allowed_target_networks"])
    if queue_yaml is not None:
        server["queue_yaml"] = _queue_yaml_config(*queue_yaml, service.default_locations)
    return replace(settings, service=service, queues=queues, **server)


def _queue_yaml_config(
    path: str, queues: QueueYaml, project: str | None, location: str | None, locations: tuple[str, ...]
) -> QueueYamlConfig:
    project = project or queues.application or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise ConfigError(
            f"{path}: which project are its queues in? Add 'application: PROJECT' to it, set "
            "GOOGLE_CLOUD_PROJECT, or name it in a tasksd config: queue_yaml: {file: ..., project: ...}."
        )
    where = location or (locations[0] if locations else FALLBACK_LOCATION)
    try:
        name = LocationName.parse(f"projects/{project}/locations/{where}", "queue_yaml")
    except TasksError as exc:
        raise ConfigError(f"queue_yaml: {exc.message}") from None
    return QueueYamlConfig(path, queues, name)
