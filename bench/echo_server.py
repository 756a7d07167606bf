"""A bare JSON echo server on tasksd's HTTP stack (uvicorn + httptools + uvloop, raw ASGI).

It reads the request body, parses it as JSON and answers it re-encoded: the floor that any
JSON API on this stack pays, against which bench/create_task.py compares tasksd.

    python bench/echo_server.py PORT [--durable PATH]

With ``--durable`` it also commits each body to SQLite before answering (bench/durable_log.py).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from durable_log import DurableLog
from support import serve_on_tasksd_stack


def make_app(log: DurableLog | None) -> Any:
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
        if log is not None:
            await log.append(body)
        headers = [
            (b"content-type", b"application/json; charset=UTF-8"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--durable", metavar="PATH", help="commit each body to this SQLite file first")
    args = parser.parse_args()
    serve_on_tasksd_stack(make_app(DurableLog(args.durable) if args.durable else None), args.port)
