"""How the CLI prints: resources as REST JSON, YAML, or a table like gcloud's."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import click
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

Resource = dict[str, Any]
Column = tuple[str, Callable[[Resource], object]]
"""A table column: its heading and what it shows of a resource."""


def as_dict(message: Any) -> Resource:
    """A proto-plus or protobuf message as its REST JSON (camelCase names, enums by name)."""
    pb: Message = message if isinstance(message, Message) else type(message).pb(message)
    data: Resource = json_format.MessageToDict(pb)
    return data


def from_dict(version: str, type_name: str, data: Resource) -> Any:
    """The google-cloud-tasks message ``type_name`` of API ``version`` (``v2``, ``v2beta2``)
    from its REST JSON: the inverse of :func:`as_dict`."""
    import importlib

    cls = getattr(importlib.import_module(f"google.cloud.tasks_{version}"), type_name)
    try:
        return cls.wrap(json_format.ParseDict(data, cls.pb()()))
    except json_format.ParseError as exc:
        # a flag value the message cannot hold, e.g. an unknown enum name
        raise click.UsageError(f"invalid value: {exc}") from None


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def field(path: str, default: object = "") -> Callable[[Resource], object]:
    """A column reading the dotted ``path`` of a resource."""

    def read(resource: Resource) -> object:
        value: Any = resource
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return value

    return read


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _render_table(headings: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style=None, padding=(0, 2, 0, 0))
    for heading in headings:
        table.add_column(heading, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    buffer = io.StringIO()
    Console(file=buffer, width=10_000, no_color=True, highlight=False, emoji=False, markup=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def _flatten(value: object, prefix: str, out: list[tuple[str, object]]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list) and value and prefix != "":
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}[{index}]", out)
    else:
        out.append((prefix, value))


def emit(output_format: str, data: Resource) -> None:
    """Print one resource: its JSON, its YAML, or a FIELD/VALUE table of its dotted fields."""
    if output_format == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    elif output_format == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n"))
    else:
        pairs: list[tuple[str, object]] = []
        _flatten(data, "", pairs)
        click.echo(_render_table(["FIELD", "VALUE"], [(key, value) for key, value in pairs if key]))


def emit_list(output_format: str, items: Sequence[Resource], columns: Sequence[Column]) -> None:
    """Print resources: a JSON list, a YAML list, or a table with ``columns``."""
    if output_format == "json":
        click.echo(json.dumps(list(items), indent=2))
    elif output_format == "yaml":
        click.echo(yaml.safe_dump(list(items), sort_keys=False, allow_unicode=True).rstrip("\n"))
    elif not items:
        click.echo("Listed 0 items.", err=True)
    else:
        click.echo(
            _render_table(
                [heading for heading, _ in columns], [[show(item) for _, show in columns] for item in items]
            )
        )


def status(message: str) -> None:
    """A line for the person at the terminal (stderr, as gcloud's), never part of the output."""
    click.echo(message, err=True)
