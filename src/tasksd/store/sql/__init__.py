"""SQL text: numbered schema migrations and named query blocks, one folder per dialect."""

from __future__ import annotations

import re
from importlib import resources

_BLOCK = re.compile(r"^-- (\w+) --\n(?:-- .*\n)*", re.MULTILINE)


def load_queries(dialect: str) -> dict[str, str]:
    """Read ``<dialect>/queries.sql``: blocks headed ``-- name --`` and a description line."""
    text = resources.files(__package__).joinpath(dialect, "queries.sql").read_text()
    heads = list(_BLOCK.finditer(text))
    queries: dict[str, str] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        queries[head.group(1)] = text[head.end() : end].strip()
    return queries


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered migrations ``<dialect>/NNNN_*.sql`` in order, as (number, script)."""
    folder = resources.files(__package__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_\w+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)
