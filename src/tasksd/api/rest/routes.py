"""REST routes compiled from a discovery document: URL templates, parameters, RPCs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from tasksd.api.rpc import Rpc


@dataclass(frozen=True, slots=True)
class Route:
    method_id: str
    http_method: str
    regex: re.Pattern[str]
    query_params: dict[str, dict[str, Any]]
    request_ref: str | None
    rpc: Rpc | None
    """None for a method of the discovery document that has no RPC in the published protos."""
    suffix: str
    """The literal text the path template ends with: a cheap test before the regex."""


def load_discovery(version: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("discovery", f"cloudtasks.{version}.json").read_text()
    doc: dict[str, Any] = json.loads(text)
    return doc


def _template_regex(template: str, patterns: dict[str, str]) -> re.Pattern[str]:
    """The regex of a path template; a variable with a pattern (the discovery document's
    ``^projects/[^/]+...$``) matches only what its pattern does, so one match checks both."""
    out = ["^/"]
    pos = 0
    for match in re.finditer(r"\{(\+?)(\w+)\}", template):
        out.append(re.escape(template[pos : match.start()]))
        name = match.group(2)
        if name in patterns:
            value = f"(?:{patterns[name].removeprefix('^').removesuffix('$')})"
        else:
            # Greedy: templates are anchored with at most one {+var}, and {var} holds no "/",
            # so greedy and lazy find the same (only) split; greedy finds it without backtracking.
            value = ".+" if match.group(1) else "[^/]+"
        out.append(f"(?P<{name}>{value})")
        pos = match.end()
    out.append(re.escape(template[pos:]) + "$")
    return re.compile("".join(out))


def _methods(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(resource.get("methods", {}).values())
    for child in resource.get("resources", {}).values():
        found.extend(_methods(child))
    return found


def build_routes(
    discovery: dict[str, Any],
    rest_methods: dict[str, tuple[str, str]],
    rpcs: dict[tuple[str, str], Rpc],
    aliases: dict[str, list[str]] | None = None,
) -> list[Route]:
    """One route per method of the discovery document (plus the ``aliases``: more path
    templates of a method that its documentation names), most specific path first."""
    routes = []
    for method in _methods(discovery):
        for path in [method["path"], *(aliases or {}).get(method["id"], [])]:
            routes.append(_route(discovery, dict(method, path=path), rest_methods, rpcs))
    routes.sort(key=lambda r: -len(r.regex.pattern))
    return routes


def _route(
    discovery: dict[str, Any],
    method: dict[str, Any],
    rest_methods: dict[str, tuple[str, str]],
    rpcs: dict[tuple[str, str], Rpc],
) -> Route:
    params = method.get("parameters", {})
    target = rest_methods.get(method["id"])
    patterns = {
        name: spec["pattern"]
        for name, spec in params.items()
        if spec.get("location") == "path" and "pattern" in spec
    }
    return Route(
        method_id=method["id"],
        http_method=method["httpMethod"],
        regex=_template_regex(discovery.get("servicePath", "") + method["path"], patterns),
        query_params={name: spec for name, spec in params.items() if spec.get("location") == "query"},
        request_ref=method.get("request", {}).get("$ref"),
        rpc=rpcs.get(target) if target else None,
        suffix=method["path"].rsplit("}", 1)[-1],
    )


class Router:
    """Finds the route of a request among routes grouped by HTTP method and first segment."""

    def __init__(self, routes: list[Route]) -> None:
        self._groups: dict[tuple[str, str], list[Route]] = {}
        for route in routes:  # kept in order: longest pattern first
            first = route.regex.pattern[2:].split("/", 1)[0]  # after "^/"; versions are literal
            self._groups.setdefault((route.http_method, first), []).append(route)

    def match(self, http_method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and path parameters for a request, or None."""
        group = self._groups.get((http_method, path[1:].split("/", 1)[0]))
        return match(group, http_method, path) if group else None


def match(routes: list[Route], http_method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route and path parameters for a request, or None."""
    for route in routes:
        if route.http_method != http_method or not path.endswith(route.suffix):
            continue
        found = route.regex.match(path)
        if found is not None:
            return route, found.groupdict()
    return None
