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


def next_etag(etag: bytes) -> bytes:
    """Etags are an 8-byte big-endian counter: each write of a policy gets the next one."""
    counter = int.from_bytes(etag, "big") if etag else 0
    return (counter + 1).to_bytes(8, "big")
