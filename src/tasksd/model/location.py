"""Locations a project's queues live in."""

from __future__ import annotations

from dataclasses import dataclass

from tasksd.model.names import LocationName


@dataclass(frozen=True, slots=True)
class Location:
    name: LocationName
    display_name: str = ""
