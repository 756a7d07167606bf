"""A bare JSON echo server on tasksd's HTTP stack (uvicorn + httptools + uvloop, raw ASGI).

It reads the request body, parses it as JSON and answers it re-encoded: the floor that any
JSON API on this stack pays, against which bench/create_task.py compares tasksd.

    python bench/echo_server.py PORT [--durable PATH] [--protobuf]

With ``--durable`` it also commits each body to SQLite before answering (bench/durable_log.py).
With ``--protobuf`` the body is read as a v2beta2 CreateTaskRequest and answered with its task
as proto3 JSON (named and timed as CreateTask answers it), through tasksd's own JSON codec:
the least a CreateTask does besides storing the task (no checks, no store model, no SQL).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from durable_log import DurableLog
from support import serve_on_tasksd_stack


def json_echo(body: bytes) -> bytes:
    return json.dumps(json.loads(body or b"{}")).encode()


def protobuf_echo() -> Callable[[bytes], bytes]:
    import msgspec
    from google.cloud.tasks_v2beta2.types import cloudtasks

    from tasksd.api.rest import jsonpb

    request_type = cloudtasks.CreateTaskRequest.pb()
    decode = msgspec.json.Decoder().decode
    counter = iter(range(7_000_000_000_000_000_000, 8_000_000_000_000_000_000))

    def answer(body: bytes) -> bytes:
        request = request_type()
        jsonpb.parse_dict(decode(body), request)
        task = request.task
        task.name = f"projects/bench/locations/us-central1/queues/create/tasks/{next(counter)}"
        now = time.time()
        task.create_time.seconds = int(now)
        task.schedule_time.seconds, task.schedule_time.nanos = int(now), int(now % 1 * 1e9)
        task.view = 1  # BASIC: the payload is not answered
        task.pull_message.ClearField("payload")
        return jsonpb.to_json(task)

    return answer


def make_app(log: DurableLog | None, answer: Callable[[bytes], bytes] = json_echo) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        payload = answer(body)
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
    parser.add_argument("--protobuf", action="store_true", help="answer a CreateTaskRequest's task")
    args = parser.parse_args()
    log = DurableLog(args.durable) if args.durable else None
    serve_on_tasksd_stack(make_app(log, protobuf_echo() if args.protobuf else json_echo), args.port)
