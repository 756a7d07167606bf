"""A bare JSON echo server on tasksd's HTTP stack (uvicorn + httptools + uvloop, raw ASGI).

It reads the request body, parses it as JSON and answers it re-encoded: the floor that any
JSON API on this stack pays, against which bench/create_task.py compares tasksd.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from support import serve_on_tasksd_stack


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    payload = json.dumps(json.loads(body or b"{}")).encode()
    headers = [
        (b"content-type", b"application/json; charset=UTF-8"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    serve_on_tasksd_stack(app, int(sys.argv[1]))
