"""Google API HTTP batching: ``POST /batch`` with a multipart/mixed body of HTTP requests.

Each part (``Content-Type: application/http``) holds one request — request line, headers,
blank line, body — and is answered by one part of a multipart/mixed reply, in the same order
and with ``Content-ID: <response-ID>``, holding that request's own status line, headers and
body. One failing request does not fail the others; a body that cannot be read as a batch
is a 400. This is what google-api-python-client's ``new_batch_http_request()`` sends.
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from tasksd.model.errors import InvalidArgument

BATCH_PATHS = frozenset(
    {"/batch", "/batch/cloudtasks/v2beta2", "/batch/cloudtasks/v2beta3", "/batch/cloudtasks/v2"}
)
JSON_CONTENT_TYPE = b"application/json; charset=UTF-8"
MAX_BATCH_REQUESTS = 1000
_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


@dataclass(frozen=True, slots=True)
class InnerRequest:
    content_id: str
    method: str
    path: str
    query_string: bytes
    body: bytes


def parse_batch(content_type: str, body: bytes) -> list[InnerRequest]:
    """The requests of a batch body.

    Raises:
        InvalidArgument: not multipart/mixed, no parts, too many parts, or a part that is not
            an HTTP request.
    """
    if not content_type.lower().startswith("multipart/mixed") or "boundary=" not in content_type:
        raise InvalidArgument(
            "A batch request must have Content-Type multipart/mixed with a boundary, got "
            f"{content_type or 'none'!r}."
        )
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
    parts = message.get_payload() if message.is_multipart() else None
    if not isinstance(parts, list) or not parts or message.defects:
        raise InvalidArgument("The batch body is not a multipart/mixed body with at least one part.")
    if len(parts) > MAX_BATCH_REQUESTS:
        raise InvalidArgument(f"A batch may hold at most {MAX_BATCH_REQUESTS} requests, got {len(parts)}.")
    return [_inner_request(index, part) for index, part in enumerate(parts)]


def _inner_request(index: int, part: email.message.Message) -> InnerRequest:
    where = f"Batch part {index + 1}"
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or part.is_multipart():
        raise InvalidArgument(f"{where} is not an application/http request.")
    text = payload.replace(b"\r\n", b"\n")
    head, _, request_body = text.partition(b"\n\n")
    lines = head.decode("latin-1").split("\n")
    words = lines[0].split(" ")
    if len(words) != 3 or words[0] not in _METHODS or not words[2].startswith("HTTP/"):
        raise InvalidArgument(
            f"{where} does not start with a request line such as 'POST /v2beta2/... HTTP/1.1'."
        )
    target = urlsplit(words[1])
    if not target.path.startswith("/"):
        raise InvalidArgument(f"{where}: {words[1]!r} is not a path.")
    length = next(
        (line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("content-length:")),
        None,
    )
    if length is not None and length.isdigit():
        request_body = request_body[: int(length)]
    return InnerRequest(
        content_id=str(part.get("Content-ID", f"<{index + 1}>")),
        method=words[0],
        path=target.path,
        query_string=target.query.encode("latin-1"),
        body=request_body,
    )


def render_batch(requests: list[InnerRequest], replies: list[tuple[int, bytes]]) -> tuple[bytes, str]:
    """(body, boundary) of the multipart/mixed reply to a batch."""
    boundary = "batch_" + secrets.token_urlsafe(12)
    chunks: list[bytes] = []
    for request, (status, payload) in zip(requests, replies, strict=True):
        content_id = request.content_id.strip()
        if content_id.startswith("<") and content_id.endswith(">"):
            content_id = content_id[1:-1]
        chunks.append(
            (
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id}>\r\n\r\n"
                f"HTTP/1.1 {status} {_phrase(status)}\r\n"
                f"Content-Type: application/json; charset=UTF-8\r\nContent-Length: {len(payload)}\r\n\r\n"
            ).encode("latin-1")
            + payload
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode("latin-1"))
    return b"".join(chunks), boundary


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 499, the code of CANCELLED, has no standard phrase
        return "Client Closed Request"
