"""The console's ASGI handler under ``/console``: sessions, sign-in, CSRF checks, routing.

When the API enforces authentication (``RestApp.authenticate`` set), a console request carries
the credential its browser stored at ``/console/signin`` in a session cookie (no Expires, so
it is gone when the browser closes; HttpOnly; SameSite=Strict; Secure over TLS): it is
authenticated exactly as an API request's would be, its principal put in
``auth.credentials.CALLER``, and every API call the page makes is then checked by IAM as that
caller's. Without a valid one a
page shows no data and redirects to the sign-in page.

Every POST must carry the per-browser CSRF token its form was rendered with (a SameSite=Strict
cookie, echoed in a hidden field) and, when the browser sends an Origin, come from this server's
own origin. Each response has ``Server-Timing: console;dur=…`` (milliseconds spent serving it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote

from tasksd.auth.credentials import CALLER, Authenticate, Credentials
from tasksd.console import pages
from tasksd.console.client import Api, Client
from tasksd.console.history import History
from tasksd.console.render import BASE, csrf_field, e, layout
from tasksd.model.errors import TasksError

log = logging.getLogger(__name__)

AUTH_COOKIE = "tasksd_console_auth"
CSRF_COOKIE = "tasksd_console_csrf"
RECENT_COOKIE = "tasksd_console_recent"
RECENT = 8
MAX_FORM_BYTES = 2 * 1024 * 1024
_SEGMENT = r"([^/]+)"
_LOCATION = rf"^{BASE}/projects/{_SEGMENT}/locations/{_SEGMENT}"
_QUEUES = re.compile(rf"{_LOCATION}/queues$")
_QUEUE = re.compile(rf"{_LOCATION}/queues/{_SEGMENT}$")
_TASK = re.compile(rf"{_LOCATION}/queues/{_SEGMENT}/tasks/{_SEGMENT}$")
_LOCATION_ONLY = re.compile(rf"{_LOCATION}$")
_PROJECT_ONLY = re.compile(rf"^{BASE}/projects/{_SEGMENT}$")
_RECENT_ITEM = re.compile(r"^[A-Za-z0-9.:_-]{1,200}$")
_STATIC = {"console.js": b"text/javascript; charset=utf-8", "console.css": b"text/css; charset=utf-8"}
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

Scope = dict[str, Any]
Receive = Any
Send = Any


class ConsoleApi(Api, Protocol):
    """What the console needs of the REST app: run a request, and its authenticator."""

    authenticate: Authenticate | None


@dataclass
class Response:
    status: int
    body: bytes
    content_type: bytes = b"text/html; charset=utf-8"
    headers: list[tuple[bytes, bytes]] | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    cookies: dict[str, str]
    headers: dict[bytes, bytes]
    secure: bool

    @classmethod
    def of(cls, scope: Scope) -> Request:
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers[key] = headers[key] + b"; " + value if key == b"cookie" and key in headers else value
        cookies: dict[str, str] = {}
        try:
            parsed = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
            cookies = {name: morsel.value for name, morsel in parsed.items()}
        except CookieError:
            pass
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        return cls(
            scope["method"],
            scope["path"],
            {k: _utf8(v) for k, v in query.items()},
            cookies,
            headers,
            scope.get("scheme") == "https",
        )

    @property
    def origin(self) -> str:
        host = self.headers.get(b"host", b"").decode("latin-1")
        return f"{'https' if self.secure else 'http'}://{host}"


def _utf8(text: str) -> str:
    """A latin-1 decoded query value, read again as the UTF-8 browsers send."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


class Console:
    def __init__(self, api: ConsoleApi, failures: pages.Failures | None = None) -> None:
        self.api = api
        self.failures = failures
        """Failed attempts of a queue in the last minute, which no API field gives: asked only
        after the API has shown the caller the queue."""
        self.client = Client(api)
        self.history = History()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request.of(scope)
        csrf = request.cookies.get(CSRF_COOKIE, "")
        cookies: list[str] = []
        if not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", csrf):
            csrf = secrets.token_urlsafe(32)
            cookies.append(self._cookie(request, CSRF_COOKIE, csrf))
        try:
            response = await self._handle(request, receive, csrf, cookies)
        except Exception:  # a bug: log it, never show a traceback
            log.exception("console error serving %s %s", request.method, request.path)
            response = _html(
                500, layout("Error", '<div class="error">The console met an internal error.</div>')
            )
        headers = [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            *(response.headers or []),
            *((b"set-cookie", c.encode("latin-1")) for c in cookies),
        ]
        if response.content_type.startswith(b"text/html"):
            headers += [(b"content-security-policy", _CSP), (b"cache-control", b"no-store")]
        elapsed_ms = (time.perf_counter() - started) * 1000
        headers.append((b"server-timing", f"console;dur={elapsed_ms:.1f}".encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _cookie(self, request: Request, name: str, content: str, clear: bool = False) -> str:
        """A session cookie (no Expires: gone when the browser closes) for the console's paths."""
        parts = [f"{name}={content}", f"Path={BASE}", "HttpOnly", "SameSite=Strict"]
        if request.secure:
            parts.append("Secure")
        if clear:
            parts.append("Max-Age=0")
        return "; ".join(parts)

    async def _handle(self, request: Request, receive: Receive, csrf: str, cookies: list[str]) -> Response:
        path = request.path.rstrip("/") or BASE
        if path.startswith(f"{BASE}/static/"):
            return _static(path.removeprefix(f"{BASE}/static/"))
        form: dict[str, str] = {}
        if request.method == "POST":
            refused = await self._refused(request, receive, csrf, form)
            if refused is not None:
                return refused
        elif request.method not in ("GET", "HEAD"):
            return _html(405, layout("Method not allowed", '<div class="error">Use GET or POST.</div>'))
        if path == f"{BASE}/signin":
            return await self._signin(request, csrf, form, cookies)
        if path == f"{BASE}/signout" and request.method == "POST":
            cookies.append(self._cookie(request, AUTH_COOKIE, "", clear=True))
            return _redirect(f"{BASE}/signin" if self.api.authenticate is not None else BASE)
        principal = None
        if self.api.authenticate is not None:
            credentials = _stored_credentials(request.cookies.get(AUTH_COOKIE, ""))
            if credentials is None:
                return _to_signin(request)
            try:
                principal = await self.api.authenticate(credentials, (request.origin,))
            except TasksError:
                cookies.append(self._cookie(request, AUTH_COOKIE, "", clear=True))
                return _to_signin(request, expired=True)
            CALLER.set(principal)
        ctx = pages.Ctx(
            self.client, self.history, principal, csrf, request.query, form, _recent(request), self.failures
        )
        result = await self._route(ctx, request, path)
        if isinstance(result, pages.Redirect):
            return _redirect(result.location)
        if result.visited is not None:
            cookies.append(self._cookie(request, RECENT_COOKIE, _remember(ctx.recent, result.visited)))
        return _html(result.status, result.html)

    async def _route(self, ctx: pages.Ctx, request: Request, path: str) -> pages.Result:
        post = request.method == "POST"
        if path == BASE and not post:
            return await pages.chooser(ctx)
        if match := _QUEUES.match(path):
            return await (
                pages.create_queue(ctx, *match.groups()) if post else pages.queues(ctx, *match.groups())
            )
        if match := _QUEUE.match(path):
            return await (pages.queue_action if post else pages.queue)(ctx, *match.groups())
        if match := _TASK.match(path):
            return await (pages.task_action if post else pages.task)(ctx, *match.groups())
        if (match := _LOCATION_ONLY.match(path)) and not post:
            return pages.Redirect(f"{path}/queues")
        if (match := _PROJECT_ONLY.match(path)) and not post:
            return pages.Redirect(f"{BASE}?project={quote(match.group(1), safe='')}")
        return pages.not_found(ctx, request.path)

    async def _refused(
        self, request: Request, receive: Receive, csrf: str, form: dict[str, str]
    ) -> Response | None:
        """Read a POST's form into ``form``; the refusal of a cross-site or oversized one."""
        origin = request.headers.get(b"origin")
        if origin is not None and origin.decode("latin-1") != request.origin:
            return _html(
                403, layout("Refused", '<div class="error">This form was posted from another site.</div>')
            )
        body = bytearray()
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return _html(400, b"")
            body += event.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                return _html(
                    413, layout("Too large", '<div class="error">The form is larger than 2 MiB.</div>')
                )
            if not event.get("more_body", False):
                break
        try:
            form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return _html(400, layout("Bad request", '<div class="error">The form is not UTF-8.</div>'))
        if not hmac.compare_digest(form.get("csrf", ""), csrf) or CSRF_COOKIE not in request.cookies:
            return _html(
                403,
                layout(
                    "Refused",
                    '<div class="error">The form\'s session token does not match: '
                    "reload the page and try again.</div>",
                ),
            )
        return None

    async def _signin(
        self, request: Request, csrf: str, form: dict[str, str], cookies: list[str]
    ) -> Response:
        next_url = _safe_next(form.get("next") or request.query.get("next", ""))
        if self.api.authenticate is None:
            body = (
                "<p>Authentication is not enforced on this server: no sign-in is needed.</p>"
                f'<p><a href="{e(next_url)}">Continue</a></p>'
            )
            return _html(200, layout("Sign in", body))
        message = ""
        status = 200
        if request.method == "POST":
            kind = form.get("kind", "token")
            secret = form.get("credential", "").strip()
            credentials = Credentials(api_key=secret) if kind == "key" else Credentials(bearer=secret or None)
            try:
                principal = await self.api.authenticate(credentials, (request.origin,))
            except TasksError as error:
                message, status = error.message, 401
            else:
                log.info("console sign-in of %s", principal)
                cookies.append(self._cookie(request, AUTH_COOKIE, _store_credentials(kind, secret)))
                return _redirect(next_url)
        elif request.query.get("expired"):
            message = "Your credential is no longer accepted: sign in again."
        error_html = f'<div class="error" role="alert">{e(message)}</div>' if message else ""
        body = (
            f"{error_html}<p>This server enforces authentication. Sign in with a bearer token (a static "
            "token of its config, an access token or an ID token) or an API key; it is kept in a cookie "
            "until the browser closes.</p>"
            f'<form method="post" action="{BASE}/signin" class="signin">{csrf_field(csrf)}'
            f'<input type="hidden" name="next" value="{e(next_url)}">'
            "<fieldset><legend>Credential</legend>"
            '<label><input type="radio" name="kind" value="token" checked> Bearer token</label>'
            '<label><input type="radio" name="kind" value="key"> API key</label></fieldset>'
            "<label>Token or key "
            '<input type="password" name="credential" required autocomplete="off"></label>'
            '<button type="submit">Sign in</button></form>'
        )
        return _html(status, layout("Sign in", body))


def _html(status: int, page: str | bytes) -> Response:
    return Response(status, page.encode() if isinstance(page, str) else page)


def _redirect(location: str) -> Response:
    body = f'<p>See <a href="{e(location)}">{e(location)}</a>.</p>'.encode()
    return Response(303, body, headers=[(b"location", location.encode("latin-1", "replace"))])


def _to_signin(request: Request, expired: bool = False) -> Response:
    here = request.path + (
        "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in request.query.items()) if request.query else ""
    )
    if request.method == "POST":
        here = request.path
    target = f"{BASE}/signin?next={quote(here, safe='')}" + ("&expired=1" if expired else "")
    return _redirect(target)


def _safe_next(target: str) -> str:
    """Only a console path is a place to go after signing in (never another site)."""
    inside = target == BASE or target.startswith((f"{BASE}/", f"{BASE}?"))
    if inside and not any(c in target for c in "\\\r\n"):
        return target
    return BASE


def _store_credentials(kind: str, secret: str) -> str:
    raw = ("k:" if kind == "key" else "b:") + secret
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _stored_credentials(cookie: str) -> Credentials | None:
    if not cookie:
        return None
    try:
        raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    kind, _, secret = raw.partition(":")
    if not secret:
        return None
    return Credentials(api_key=secret) if kind == "k" else Credentials(bearer=secret)


def _recent(request: Request) -> list[tuple[str, str]]:
    items = []
    for item in unquote(request.cookies.get(RECENT_COOKIE, "")).split("|"):
        project, _, location = item.partition("/")
        if _RECENT_ITEM.match(project) and _RECENT_ITEM.match(location):
            items.append((project, location))
    return items[:RECENT]


def _remember(recent: list[tuple[str, str]], visited: tuple[str, str]) -> str:
    items = [visited, *(item for item in recent if item != visited)][:RECENT]
    return quote(
        "|".join(f"{p}/{loc}" for p, loc in items if _RECENT_ITEM.match(p) and _RECENT_ITEM.match(loc))
    )


def _static(name: str) -> Response:
    content_type = _STATIC.get(name)
    if content_type is None:
        return _html(404, layout("Not found", '<div class="error">No such file.</div>'))
    data = resources.files("tasksd.console").joinpath("static", name).read_bytes()
    return Response(200, data, content_type, [(b"cache-control", b"no-cache")])
