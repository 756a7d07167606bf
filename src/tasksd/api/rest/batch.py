"""Google API HTTP batching: ``POST /batch`` with a multipart/mixed body of HTTP requests.

Each part (``Content-Type: application/http``) holds one request — request line, headers,
blank line, body — and is answered by one part of a multipart/mixed reply, in the same order
and with ``Content-ID: <response-ID>``, holding that request's own status line, headers and
body. One failing request does not fail the others; a body that cannot be read as a batch
is a 400. This is what google-api-python-client's ``new_batch_http_request()`` sends.
"""

from __future__ import annotations

import re
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
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, one per part
class InnerRequest:
    content_id: str
    method: str
    path: str
    query_string: bytes
    body: bytes


def parse_batch(content_type: str, body: bytes) -> list[InnerRequest]:
    """The requests of a batch body (RFC 2046 multipart, each part an application/http request).

    Raises:
        InvalidArgument: not multipart/mixed, no parts, too many parts, or a part that is not
            an HTTP request.
    """
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise InvalidArgument(
            "A batch request must have Content-Type multipart/mixed with a boundary, got "
            f"{content_type or 'none'!r}."
        )
    boundary = (match.group(1) or match.group(2)).encode("latin-1")
    delimiter = b"--" + boundary
    sections = body.split(delimiter)
    # sections[0] is the preamble; the last delimiter is followed by "--" (the epilogue).
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise InvalidArgument("The batch body is not a multipart/mixed body with at least one part.")
    parts = sections[1:-1]
    if len(parts) > MAX_BATCH_REQUESTS:
        raise InvalidArgument(f"A batch may hold at most {MAX_BATCH_REQUESTS} requests, got {len(parts)}.")
    return [_inner_request(index, part) for index, part in enumerate(parts)]


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    """(header lines, body) of a MIME part or HTTP message; CRLF or LF line ends."""
    head, found, rest = data.partition(b"\r\n\r\n")
    if found:
        return head.decode("latin-1").split("\r\n"), rest
    head, found, rest = data.partition(b"\n\n")
    return head.decode("latin-1").replace("\r\n", "\n").split("\n"), rest


def _headers(lines: list[str]) -> dict[str, str]:
    """Header lines by their names in lower case; the first line of a name counts."""
    found: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            found.setdefault(name.strip().lower(), value.strip())
    return found


def _inner_request(index: int, part: bytes) -> InnerRequest:
    lines, payload = _split_head(part.lstrip(b"\r\n"))
    mime = _headers(lines)
    content_type = mime.get("content-type")
    if content_type is not None and not content_type.lower().startswith("application/http"):
        raise InvalidArgument(f"Batch part {index + 1} is not an application/http request.")
    if payload.endswith(b"\r\n"):
        payload = payload[:-2]
    elif payload.endswith(b"\n"):
        payload = payload[:-1]
    lines, request_body = _split_head(payload)
    words = lines[0].split(" ")
    if len(words) != 3 or words[0] not in _METHODS or not words[2].startswith("HTTP/"):
        raise InvalidArgument(
            f"Batch part {index + 1} does not start with a request line such as 'POST /v2beta2/... HTTP/1.1'."
        )
    target = words[1]
    if target.startswith("/"):
        path, _, query = target.partition("#")[0].partition("?")
    else:  # an absolute URI
        split = urlsplit(target)
        path, query = split.path, split.query
        if not path.startswith("/"):
            raise InvalidArgument(f"Batch part {index + 1}: {target!r} is not a path.")
    length = _headers(lines[1:]).get("content-length", "")
    if length.isdigit():
        request_body = request_body[: int(length)]
    return InnerRequest(
        content_id=mime.get("content-id") or f"<{index + 1}>",
        method=words[0],
        path=path,
        query_string=query.encode("latin-1"),
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


_PHRASES = {int(status): status.phrase for status in HTTPStatus}


def _phrase(status: int) -> str:
    # 499, the code of CANCELLED, has no standard phrase
    return _PHRASES.get(status, "Client Closed Request")
