"""The console's way to the API: one in-process REST request per call, through the same
router, validation and IAM guard as any client's (``RestApp.respond``).

Everything goes through v2beta2, whose REST surface here carries every field the console
shows: pull queues and tasks, ``httpTarget``/``httpRequest`` besides App Engine, queue
``stats`` (with ``readMask``) and the task-level ``retryConfig``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import urlencode

VERSION = "v2beta2"


class Api(Protocol):
    async def respond(
        self, method: str, path: str, query_string: bytes, body: bytes
    ) -> tuple[int, bytes]: ...


class ApiError(Exception):
    """An API call's error: its HTTP status, canonical code name and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Client:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def call(
        self, method: str, resource: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """The JSON reply of ``method /v2beta2/{resource}``; raises ApiError for an error reply."""
        query_string = urlencode({k: v for k, v in (query or {}).items() if v not in (None, "")}).encode()
        payload = b"" if body is None else json.dumps(body).encode()
        status, reply = await self.api.respond(method, f"/{VERSION}/{resource}", query_string, payload)
        try:
            document = json.loads(reply) if reply else {}
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        if status != 200:
            error = document.get("error") or {}
            raise ApiError(status, str(error.get("status", "")), str(error.get("message", "Request failed.")))
        return document

    async def get(self, resource: str, **query: Any) -> dict[str, Any]:
        return await self.call("GET", resource, query)

    async def post(self, resource: str, body: Any = None) -> dict[str, Any]:
        return await self.call("POST", resource, None, {} if body is None else body)

    async def delete(self, resource: str) -> dict[str, Any]:
        return await self.call("DELETE", resource)
