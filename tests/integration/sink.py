"""A scriptable HTTP handler that records what tasksd dispatches to it."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Sink:
    """Answers each path from a script (a list used in order, then its last item repeats)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, list[Answer]] = {}
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with sink.lock:
                    sink.received.append(
                        Received(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    script = sink.scripts.get(path, [Answer()])
                    count = sum(1 for r in sink.received if r.path.split("?")[0] == path)
                    answer = script[min(count - 1, len(script) - 1)]
                    sink.active += 1
                    sink.peak = max(sink.peak, sink.active)
                try:
                    if answer.delay_s:
                        time.sleep(answer.delay_s)
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with sink.lock:
                        sink.active -= 1

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, path: str, *answers: Answer | int) -> None:
        self.scripts[path] = [a if isinstance(a, Answer) else Answer(a) for a in answers]

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def wait(self, test: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if test():
                return
            time.sleep(0.02)
        raise AssertionError("the sink did not see what was expected in time")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
