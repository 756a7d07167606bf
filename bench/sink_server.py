"""A counting HTTP sink on uvicorn (raw ASGI) for the dispatch benchmarks.

Every request is answered 200 (after ``?delay_ms=`` if given); arrival times (epoch seconds)
are kept per path, with the peak number of requests being handled at once.
``GET /_stats?path=/p`` returns them; ``POST /_reset`` forgets everything.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from support import serve_on_tasksd_stack

arrivals: dict[str, list[float]] = defaultdict(list)
names: dict[str, list[str]] = defaultdict(list)
state = {"active": 0, "peak": 0}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    now = time.time()
    while (await receive()).get("more_body"):
        pass
    path, query = scope["path"], parse_qs(scope["query_string"].decode())
    body = b"{}"
    if path == "/_stats":
        wanted = query.get("path", [""])[0]
        body = json.dumps(
            {"arrivals": arrivals.get(wanted, []), "names": names.get(wanted, []), "peak": state["peak"]}
        ).encode()
    elif path == "/_reset":
        arrivals.clear()
        names.clear()
        state["peak"] = 0
    else:
        arrivals[path].append(now)
        headers = dict(scope["headers"])
        names[path].append(headers.get(b"x-cloudtasks-taskname", b"").decode())
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        try:
            delay_ms = float(query.get("delay_ms", ["0"])[0])
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
        finally:
            state["active"] -= 1
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    serve_on_tasksd_stack(app, int(sys.argv[1]))
