"""IAM policies attached to queues."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Expr:
    expression: str = ""
    title: str = ""
    description: str = ""
    location: str = ""


@dataclass(slots=True)
class Binding:
    role: str
    members: list[str] = field(default_factory=list)
    condition: Expr | None = None


@dataclass(slots=True)
class Policy:
    version: int = 0
    bindings: list[Binding] = field(default_factory=list)
    etag: bytes = b""
