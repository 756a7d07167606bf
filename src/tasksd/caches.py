"""Bounded memo caches for values that hot paths see again and again (queue names,
printed timestamps): cheap to keep, and forgotten all at once when full."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Keep ``value`` under ``key`` and return it, forgetting everything first when the
    cache already holds ``limit`` entries."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value
