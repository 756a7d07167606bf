"""HTML building blocks of the console: escaping, the page layout, values as people read them.

Every value that comes from data (names, headers, bodies, messages) goes through ``e`` or
``attr``; markup is only ever written here and in ``pages``.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from tasksd.model.errors import Code

BASE = "/console"
BODY_SHOWN = 64 * 1024
"""Bytes of a body or payload shown on a task page (the rest is cut, and said so)."""


def e(value: object) -> str:
    """``value`` as HTML text (quotes too, so the result also fits in attributes)."""
    return html.escape(str(value), quote=True)


def url(*segments: str, **query: Any) -> str:
    """A console URL (escaped for an attribute): path segments quoted, empty query values left out."""
    path = BASE + "".join("/" + quote(s, safe="") for s in segments)
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return e(path + ("?" + urlencode(params) if params else ""))


def queues_url(project: str, location: str, /, **query: Any) -> str:
    return url("projects", project, "locations", location, "queues", **query)


def queue_url(project: str, location: str, queue: str, /, **query: Any) -> str:
    return url("projects", project, "locations", location, "queues", queue, **query)


def task_url(project: str, location: str, queue: str, task: str, /, **query: Any) -> str:
    return url("projects", project, "locations", location, "queues", queue, "tasks", task, **query)


def last(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def layout(
    title: str,
    body: str,
    *,
    crumbs: list[tuple[str, str]] | None = None,
    principal: str | None = None,
    csrf: str = "",
    refresh: bool = False,
    notice: str = "",
) -> str:
    """A whole page. ``crumbs``: (escaped href, text) pairs; ``refresh``: the page's ``#live``
    part reloads itself every few seconds."""
    trail = " › ".join(f'<a href="{href}">{e(text)}</a>' for href, text in crumbs or [])
    who = ""
    if principal is not None:
        who = (
            f'<span class="who">Signed in as <b>{e(principal)}</b></span>'
            f'<form method="post" action="{url("signout")}" class="inline">{csrf_field(csrf)}'
            '<button type="submit" class="link">Sign out</button></form>'
        )
    toggle = (
        '<label class="refresh"><input type="checkbox" id="auto-refresh" checked> Auto-refresh (5 s)</label>'
        '<span id="refreshed" class="muted"></span>'
        if refresh
        else ""
    )
    notice_html = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · tasksd console</title>"
        f'<link rel="stylesheet" href="{BASE}/static/console.css">'
        f'<script src="{BASE}/static/console.js" defer></script>'
        + ('<noscript><meta http-equiv="refresh" content="10"></noscript>' if refresh else "")
        + "</head><body>"
        f'<header><a class="brand" href="{BASE}">tasksd console</a><nav>{trail}</nav>{toggle}{who}</header>'
        f"<main><h1>{e(title)}</h1>{notice_html}{body}</main></body></html>"
    )


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(token)}">'


def button(action: str, label: str, target: str, csrf: str, confirm: str = "", danger: bool = False) -> str:
    """A one-button form that POSTs ``action`` to ``target`` (an escaped URL)."""
    confirm_attr = f' data-confirm="{e(confirm)}"' if confirm else ""
    css = ' class="danger"' if danger else ""
    return (
        f'<form method="post" action="{target}" class="inline"{confirm_attr}>{csrf_field(csrf)}'
        f'<input type="hidden" name="action" value="{e(action)}">'
        f'<button type="submit"{css}>{e(label)}</button></form>'
    )


def parse_time(value: str | None) -> float | None:
    """Unix time of an RFC 3339 timestamp (nanoseconds cut to microseconds)."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def duration(seconds: float) -> str:
    """``3h 2m``, ``4m 10s``, ``12s``, ``0.4s``."""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def when(value: str | None, now: float | None = None) -> str:
    """A timestamp with how long ago or ahead it is, as HTML."""
    at = parse_time(value)
    if at is None or value is None:
        return '<span class="muted">—</span>'
    delta = at - (time.time() if now is None else now)
    relative = f"in {duration(delta)}" if delta > 0 else f"{duration(delta)} ago"
    shown = value.replace("T", " ")
    return (
        f'<time datetime="{e(value)}" title="{e(value)}">{e(shown)}</time> '
        f'<span class="muted">({relative})</span>'
    )


def age(value: str | None, now: float | None = None) -> str:
    at = parse_time(value)
    if at is None:
        return "—"
    return duration(max((time.time() if now is None else now) - at, 0.0))


def target_kind(queue: dict[str, Any]) -> str:
    if "pullTarget" in queue:
        return "pull"
    if "httpTarget" in queue:
        return "HTTP"
    return "App Engine"


def task_kind(task: dict[str, Any]) -> str:
    if "pullMessage" in task:
        return "pull"
    if "httpRequest" in task:
        return "HTTP"
    if "appEngineHttpRequest" in task:
        return "App Engine"
    return "—"


def decoded(data: str | None) -> str:
    """A base64 body or payload as HTML: pretty JSON when it is JSON, text when it is UTF-8,
    else base64 and a hex dump; the first ``BODY_SHOWN`` bytes."""
    if not data:
        return '<p class="muted">(empty)</p>'
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return f'<pre class="body">{e(data)}</pre>'
    cut = len(raw) > BODY_SHOWN
    shown = raw[:BODY_SHOWN]
    note = f'<p class="muted">{len(raw):,} bytes' + (f"; the first {BODY_SHOWN:,} are shown" if cut else "")
    try:
        text = shown.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and (cut or _printable(text)):
        if not cut:
            try:
                document = json.loads(text)
            except ValueError:
                pass
            else:
                pretty = json.dumps(document, indent=2, ensure_ascii=False)
                return f'{note}, JSON:</p><pre class="body json">{e(pretty)}</pre>'
        return f'{note}, text:</p><pre class="body">{e(text)}</pre>'
    hexdump = "\n".join(
        f"{offset:08x}  {shown[offset : offset + 16].hex(' ')}"
        for offset in range(0, min(len(shown), 4096), 16)
    )
    encoded = base64.b64encode(shown).decode()
    return (
        f'{note}, binary:</p><h4>Base64</h4><pre class="body">{e(encoded)}</pre>'
        f'<h4>Hex (first {min(len(shown), 4096):,} bytes)</h4><pre class="body">{e(hexdump)}</pre>'
    )


def _printable(text: str) -> bool:
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def status_text(status: dict[str, Any]) -> str:
    """A google.rpc.Status as HTML: its code's name and number, and its message."""
    number = status.get("code", 0)
    try:
        name = Code(int(number)).name
    except ValueError:
        name = "CODE"
    return f"<b>{e(name)}</b> ({e(number)}) {e(status.get('message', ''))}"


def dl(rows: list[tuple[str, str]]) -> str:
    """A definition list of (label, already-escaped HTML) rows."""
    return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def value(document: dict[str, Any], *path: str, default: str = "—") -> str:
    """The escaped value at ``path`` of a JSON document."""
    current: Any = document
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return f'<span class="muted">{e(default)}</span>'
        current = current[key]
    if isinstance(current, dict | list):
        return f"<code>{e(json.dumps(current, ensure_ascii=False))}</code>"
    return e(current)
