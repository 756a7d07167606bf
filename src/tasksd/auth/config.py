"""The ``auth:`` mapping of the config file, read and checked into plain data.

Secrets (static tokens, API keys) come from the file or from environment variables the file
names; they are kept only here and in the authenticator, never logged. A wrong mapping is a
ConfigError naming the offending key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasksd.auth.conditions import ConditionError, compile_condition
from tasksd.auth.roles import PREDEFINED_ROLES
from tasksd.config import ConfigError

MEMBER_PREFIXES = ("user:", "serviceAccount:", "group:", "domain:", "principal://", "principalSet://")
SPECIAL_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PRINCIPAL_PREFIXES = ("user:", "serviceAccount:", "principal://")


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The public half of a google-auth JSON key file."""

    email: str
    key_id: str
    public_key_pem: bytes


@dataclass(frozen=True, slots=True)
class OidcIssuer:
    issuer: str
    audience: str
    jwks_uri: str | None = None
    jwks_file: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectBinding:
    project: str
    """A project id, or ``*`` for every project."""
    role: str
    members: tuple[str, ...]
    condition: str | None = None
    """A CEL expression (IAM condition) the binding holds under; None: always."""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    service_account_keys: tuple[ServiceAccountKey, ...] = ()
    tokens: dict[str, str] = field(default_factory=dict)
    """Static bearer token → principal."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """API key → principal."""
    oidc_issuers: tuple[OidcIssuer, ...] = ()
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    """``group:NAME`` → its members (principals or other groups)."""
    roles: dict[str, frozenset[str]] = field(default_factory=dict)
    """Every role a binding may name (predefined and custom) → its permissions."""
    bindings: tuple[ProjectBinding, ...] = ()


_KEYS = {
    "mode",
    "service_account_keys",
    "tokens",
    "api_keys",
    "oidc_issuers",
    "groups",
    "custom_roles",
    "bindings",
}


def read_auth_config(data: dict[str, Any] | None, base: Path | None = None) -> AuthConfig | None:
    """The checked ``auth:`` mapping; None when authentication is off (no key, or mode off).

    ``base`` is the folder relative file paths (key files, JWKS files) are read from.
    """
    if data is None:
        return None
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"unknown key auth.{sorted(unknown)[0]}; known keys: {', '.join(sorted(_KEYS))}.")
    mode = data.get("mode", "enforce")
    if mode not in ("enforce", "off"):
        raise ConfigError(f"auth.mode must be enforce or off, got {mode!r}.")
    if mode == "off":
        return None
    base = base or Path.cwd()
    roles = dict(PREDEFINED_ROLES) | _custom_roles(_list(data, "custom_roles"))
    groups = _groups(_list(data, "groups"))
    return AuthConfig(
        service_account_keys=tuple(
            _key_file(base, path, f"auth.service_account_keys[{i}]")
            for i, path in enumerate(_list(data, "service_account_keys"))
        ),
        tokens=_secrets(_list(data, "tokens"), "tokens", "token"),
        api_keys=_secrets(_list(data, "api_keys"), "api_keys", "key"),
        oidc_issuers=tuple(_issuer(base, item, i) for i, item in enumerate(_list(data, "oidc_issuers"))),
        groups=groups,
        roles=roles,
        bindings=tuple(_binding(item, i, roles) for i, item in enumerate(_list(data, "bindings"))),
    )


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"auth.{key} must be a list.")
    return value


def _mapping(
    item: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a mapping.")
    missing = required - set(item)
    if missing:
        raise ConfigError(f"{where}.{sorted(missing)[0]} is required.")
    extra = set(item) - required - optional
    if extra:
        raise ConfigError(f"unknown key {where}.{sorted(extra)[0]}.")
    for key, value in item.items():
        if key != "members" and key != "permissions" and not isinstance(value, str):
            raise ConfigError(f"{where}.{key} must be a string.")
    return item


def _principal(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(PRINCIPAL_PREFIXES) or value.endswith(":"):
        raise ConfigError(
            f"{where} must be a principal such as user:a@example.com or serviceAccount:…, got {value!r}."
        )
    return value


def _member(value: Any, where: str) -> str:
    if not isinstance(value, str) or not (
        value in SPECIAL_MEMBERS or (value.startswith(MEMBER_PREFIXES) and not value.endswith(":"))
    ):
        raise ConfigError(
            f"{where} must be a member (user:, serviceAccount:, group:, domain:, allUsers, "
            f"allAuthenticatedUsers), got {value!r}."
        )
    return value


def _secrets(items: list[Any], key: str, field_name: str) -> dict[str, str]:
    """Secret → principal; a secret comes from ``field_name`` or from the variable ``field_name_env``."""
    found: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"auth.{key}[{index}]"
        entry = _mapping(item, where, {"principal"}, {field_name, f"{field_name}_env"})
        if (field_name in entry) == (f"{field_name}_env" in entry):
            raise ConfigError(f"{where} needs exactly one of {field_name} and {field_name}_env.")
        if field_name in entry:
            secret = entry[field_name]
        else:
            variable = entry[f"{field_name}_env"]
            secret = os.environ.get(variable, "")
            if not secret:
                raise ConfigError(f"{where}: the environment variable {variable} is not set or empty.")
        if not secret:
            raise ConfigError(f"{where}.{field_name} must not be empty.")
        if secret in found:
            raise ConfigError(f"{where}: the same {field_name} is listed twice.")
        found[secret] = _principal(entry["principal"], f"{where}.principal")
    return found


def _key_file(base: Path, path: Any, where: str) -> ServiceAccountKey:
    from cryptography.hazmat.primitives import serialization

    if not isinstance(path, str):
        raise ConfigError(f"{where} must be the path of a JSON key file.")
    file = base / path
    try:
        info = json.loads(file.read_text())
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {file}: {exc.strerror}.") from None
    except ValueError:
        raise ConfigError(f"{where}: {file} is not JSON.") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(f"{where}: {file} is not a service account key file (type: service_account).")
    for name in ("client_email", "private_key_id"):
        if not isinstance(info.get(name), str) or not info[name]:
            raise ConfigError(f"{where}: {file} has no {name}.")
    try:
        if isinstance(info.get("public_key"), str):
            public = serialization.load_pem_public_key(info["public_key"].encode())
        else:
            private = serialization.load_pem_private_key(str(info.get("private_key", "")).encode(), None)
            public = private.public_key()
    except (ValueError, TypeError):
        raise ConfigError(f"{where}: {file} holds no readable RSA key (private_key or public_key).") from None
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ServiceAccountKey(info["client_email"], info["private_key_id"], pem)


def _issuer(base: Path, item: Any, index: int) -> OidcIssuer:
    where = f"auth.oidc_issuers[{index}]"
    entry = _mapping(item, where, {"issuer", "audience"}, {"jwks_uri", "jwks_file"})
    if ("jwks_uri" in entry) == ("jwks_file" in entry):
        raise ConfigError(f"{where} needs exactly one of jwks_uri and jwks_file.")
    jwks_file = entry.get("jwks_file")
    if jwks_file is not None:
        jwks_file = str(base / jwks_file)
        try:
            document = json.loads(Path(jwks_file).read_text())
        except (OSError, ValueError):
            raise ConfigError(f"{where}.jwks_file: cannot read a JSON key set from {jwks_file}.") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ConfigError(f"{where}.jwks_file: {jwks_file} is not a JWKS document (no keys list).")
    uri = entry.get("jwks_uri")
    if uri is not None and not uri.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.jwks_uri must be an http(s) URL.")
    return OidcIssuer(entry["issuer"], entry["audience"], uri, jwks_file)


def _groups(items: list[Any]) -> dict[str, frozenset[str]]:
    groups: dict[str, frozenset[str]] = {}
    for index, item in enumerate(items):
        where = f"auth.groups[{index}]"
        entry = _mapping(item, where, {"name", "members"})
        name = entry["name"]
        if not name.startswith("group:") or name == "group:":
            raise ConfigError(f"{where}.name must be group:EMAIL, got {name!r}.")
        members = entry["members"]
        if not isinstance(members, list):
            raise ConfigError(f"{where}.members must be a list.")
        groups[name] = frozenset(_member(m, f"{where}.members[{i}]") for i, m in enumerate(members))
    return groups


def _custom_roles(items: list[Any]) -> dict[str, frozenset[str]]:
    roles: dict[str, frozenset[str]] = {}
    for index, item in enumerate(items):
        where = f"auth.custom_roles[{index}]"
        entry = _mapping(item, where, {"name", "permissions"})
        name = entry["name"]
        if not name.startswith(("projects/", "organizations/")) or "/roles/" not in name:
            raise ConfigError(
                f"{where}.name must be projects/PROJECT/roles/ID or organizations/ORG/roles/ID, got {name!r}."
            )
        permissions = entry["permissions"]
        if not isinstance(permissions, list) or not all(isinstance(p, str) and p for p in permissions):
            raise ConfigError(f"{where}.permissions must be a list of permission names.")
        for permission in permissions:
            if "*" in permission or permission.count(".") < 2:
                raise ConfigError(
                    f"{where}.permissions: {permission!r} is not a permission (service.type.verb)."
                )
        roles[name] = frozenset(permissions)
    return roles


def _binding(item: Any, index: int, roles: dict[str, frozenset[str]]) -> ProjectBinding:
    where = f"auth.bindings[{index}]"
    entry = _mapping(item, where, {"project", "role", "members"}, {"condition"})
    if entry["role"] not in roles:
        raise ConfigError(f"{where}.role {entry['role']!r} is neither a predefined role nor a custom role.")
    members = entry["members"]
    if not isinstance(members, list) or not members:
        raise ConfigError(f"{where}.members must be a non-empty list.")
    condition = entry.get("condition")
    if condition is not None:
        try:
            compile_condition(condition)
        except ConditionError as exc:
            raise ConfigError(f"{where}.condition: {exc}") from None
    return ProjectBinding(
        entry["project"],
        entry["role"],
        tuple(_member(m, f"{where}.members[{i}]") for i, m in enumerate(members)),
        condition,
    )
