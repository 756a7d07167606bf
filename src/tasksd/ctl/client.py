"""The connection to a running tasksd: endpoint, credentials, official clients, errors.

Every command talks to the server through google-cloud-tasks: ``tasks_v2`` for push queues
and their tasks, ``tasks_v2beta2`` for pull queues, pull tasks and leases. REST endpoints
(``http://``, ``https://``) use the clients' REST transport; ``grpc://`` an insecure gRPC
channel and ``grpcs://`` a TLS one. Credentials are sent as the server's auth section reads
them: a bearer token, an API key (``x-goog-api-key``), or a key file's tokens.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import click
import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import credentials as ga_credentials

T = TypeVar("T")

DEFAULT_ENDPOINT = "http://127.0.0.1:8124"
DEFAULT_LOCATION = "us-central1"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
TIMEOUT_S = 60.0
"""How long one API call may take before the CLI gives up on it."""


class CtlError(Exception):
    """A failure the CLI reports in one line and exits 1 for (not an API error)."""


def fail(message: str) -> NoReturn:
    click.echo(f"ERROR: (tasksd) {message}", err=True)
    sys.exit(1)


@dataclass
class Ctl:
    """What every command knows: where the server is, who is calling, how to print."""

    endpoint: str
    project: str | None
    location: str
    output_format: str
    quiet: bool
    access_token: str | None = None
    api_key: str | None = None
    credentials_file: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    # Names ---------------------------------------------------------------------------

    def location_path(self) -> str:
        if not self.project:
            raise click.UsageError("no project: pass --project or set TASKSD_PROJECT")
        return f"projects/{self.project}/locations/{self.location}"

    def queue_path(self, queue: str) -> str:
        """A queue id, or a full queue name, as the full name."""
        if queue.startswith("projects/"):
            return queue
        if "/" in queue or not queue:
            raise click.BadParameter(f"{queue!r} is neither a queue id nor projects/P/locations/L/queues/Q")
        return f"{self.location_path()}/queues/{queue}"

    def task_path(self, task: str, queue: str | None) -> str:
        """A task id with ``--queue``, or a full task name, as the full name."""
        if task.startswith("projects/"):
            return task
        if queue is None:
            raise click.UsageError("Must specify either the fully qualified task path or the queue flag.")
        if "/" in task or not task:
            raise click.BadParameter(f"{task!r} is neither a task id nor a full task name")
        return f"{self.queue_path(queue)}/tasks/{task}"

    # Clients -------------------------------------------------------------------------

    @property
    def v2(self) -> Any:
        """google-cloud-tasks v2 (push queues and tasks)."""
        return self._client("v2")

    @property
    def v2beta2(self) -> Any:
        """google-cloud-tasks v2beta2 (pull queues, pull tasks, leases)."""
        return self._client("v2beta2")

    @property
    def is_grpc(self) -> bool:
        return urlsplit(self.endpoint).scheme in ("grpc", "grpcs")

    def _credentials(self) -> ga_credentials.Credentials | None:
        if self.access_token:
            import google.oauth2.credentials

            return google.oauth2.credentials.Credentials(self.access_token)  # type: ignore[no-untyped-call]
        if self.api_key:
            from google.auth import api_key

            return api_key.Credentials(self.api_key)  # type: ignore[no-untyped-call]
        if self.credentials_file:
            return _key_file_credentials(self.credentials_file)
        return None

    def _client(self, version: str) -> Any:
        if version in self._clients:
            return self._clients[version]
        import importlib

        module = importlib.import_module(f"google.cloud.tasks_{version}")
        url = urlsplit(self.endpoint)
        credentials = self._credentials()
        if url.scheme in ("http", "https"):
            if not url.netloc:
                raise click.BadParameter(f"{self.endpoint!r} names no host", param_hint="--endpoint")
            client = module.CloudTasksClient(
                transport="rest",
                credentials=credentials or ga_credentials.AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options=ClientOptions(api_endpoint=f"{url.scheme}://{url.netloc}"),
            )
        elif url.scheme in ("grpc", "grpcs"):
            if not url.netloc:
                raise click.BadParameter(f"{self.endpoint!r} names no host", param_hint="--endpoint")
            channel = (
                grpc.secure_channel(url.netloc, grpc.ssl_channel_credentials())
                if url.scheme == "grpcs"
                else grpc.insecure_channel(url.netloc)
            )
            if credentials is not None:
                channel = grpc.intercept_channel(channel, _CredentialsInterceptor(credentials, self.endpoint))
            transports = importlib.import_module(
                f"google.cloud.tasks_{version}.services.cloud_tasks.transports"
            )
            client = module.CloudTasksClient(transport=transports.CloudTasksGrpcTransport(channel=channel))
        else:
            raise click.BadParameter(
                f"{self.endpoint!r}: use http://HOST:PORT, https://HOST:PORT, grpc://HOST:PORT or grpcs://HOST:PORT",
                param_hint="--endpoint",
            )
        self._clients[version] = client
        return client

    def close(self) -> None:
        """Close the clients' channels and sessions."""
        for client in self._clients.values():
            client.transport.close()
        self._clients.clear()

    def call(self, method: Callable[..., T], **kwargs: Any) -> T:
        """One API call, without the clients' automatic retries (a CLI reports at once)."""
        return method(**kwargs, retry=None, timeout=TIMEOUT_S)


def _key_file_credentials(path: str) -> ga_credentials.Credentials:
    """A service account key file's credentials (self-signed JWTs, as google-cloud-tasks sends
    them over REST), or an authorized-user file's."""
    import json

    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    try:
        with open(path, encoding="utf-8") as file:
            kind = json.load(file).get("type")
        if kind == "service_account":
            account = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=[CLOUD_PLATFORM]
            )
            jwt_account: ga_credentials.Credentials = account.with_always_use_jwt_access(True)
            return jwt_account
        if kind == "authorized_user":
            user: ga_credentials.Credentials = user_credentials.Credentials.from_authorized_user_file(  # type: ignore[no-untyped-call]
                path, scopes=[CLOUD_PLATFORM]
            )
            return user
    except (OSError, ValueError, AttributeError) as exc:
        raise CtlError(f"cannot use {path}: {exc}") from None
    raise CtlError(f"cannot use {path}: not a service account (or authorized user) key file")


class _CredentialsInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the credentials' headers to every gRPC call as metadata. gRPC itself sends call
    credentials only on a secure channel; tasksd reads them from plain localhost too."""

    def __init__(self, credentials: ga_credentials.Credentials, endpoint: str) -> None:
        import google.auth.transport.requests

        self.credentials = credentials
        self.request = google.auth.transport.requests.Request()
        self.endpoint = endpoint

    def intercept_unary_unary(self, continuation: Any, call_details: Any, request: Any) -> Any:
        headers: dict[str, str] = {}
        self.credentials.before_request(self.request, "POST", self.endpoint, headers)  # type: ignore[no-untyped-call]
        metadata = [*(call_details.metadata or ()), *((k.lower(), v) for k, v in headers.items())]
        return continuation(call_details._replace(metadata=metadata), request)


def api_status(exc: api_exceptions.GoogleAPICallError) -> tuple[str, str]:
    """The canonical status name and the API's own message of an error, over either transport."""
    code = exc.grpc_status_code
    name = code.name if code is not None else str(exc.code or "UNKNOWN")
    message = exc.message or ""
    response = exc.response
    json_body = getattr(response, "json", None)
    if callable(json_body):
        try:
            error = json_body()["error"]
            name = error.get("status") or name
            message = error.get("message") or message
        except (ValueError, KeyError, TypeError):
            pass
    return name, message


@contextmanager
def reported_errors(ctl: Ctl) -> Iterator[None]:
    """Turn what can go wrong talking to the server into one ERROR line and exit status 1."""
    import google.auth.exceptions
    import requests

    try:
        yield
    except api_exceptions.GoogleAPICallError as exc:
        name, message = api_status(exc)
        if name == "UNAVAILABLE" and ctl.is_grpc and "connect" in message.lower():
            fail(f"cannot reach tasksd at {ctl.endpoint} (is it running?): {message}")
        fail(f"{name}: {message}")
    except api_exceptions.RetryError as exc:
        fail(f"cannot reach tasksd at {ctl.endpoint}: {exc.message}")
    except requests.exceptions.ConnectionError:
        fail(f"cannot reach tasksd at {ctl.endpoint} (is it running?): connection refused")
    except requests.exceptions.Timeout:
        fail(f"tasksd at {ctl.endpoint} did not answer within {TIMEOUT_S:.0f} s")
    except requests.exceptions.RequestException as exc:
        fail(f"request to {ctl.endpoint} failed: {exc}")
    except google.auth.exceptions.GoogleAuthError as exc:
        # Over REST a 401 makes the client refresh its credentials, which a token, an API key
        # or no credentials at all cannot do: the server refused the call.
        if not (ctl.access_token or ctl.api_key or ctl.credentials_file):
            fail(
                "UNAUTHENTICATED: tasksd asks for credentials: pass --access-token, --api-key or "
                "--credentials-file"
            )
        if not ctl.credentials_file:
            fail("UNAUTHENTICATED: tasksd refused the credentials given")
        fail(f"credentials: {exc}")
    except CtlError as exc:
        fail(str(exc))
    except (click.ClickException, click.Abort):
        raise
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "))
    except Exception as exc:
        # as gcloud reports its own failures: one line, never a traceback
        fail(f"tasksd crashed ({type(exc).__name__}): {exc}")


def either(primary: Callable[[], T], fallback: Callable[[], T]) -> T:
    """``primary`` (a v2 call), or when v2 does not see the resource (pull queues are hidden
    from v2) ``fallback`` (the same call in v2beta2); the first error when both fail."""
    try:
        return primary()
    except api_exceptions.NotFound as first:
        try:
            return fallback()
        except api_exceptions.NotFound:
            raise first from None


def common_options(fn: Callable[..., None]) -> Callable[..., None]:
    """gcloud's flags shared by every command, gathered into the :class:`Ctl` passed first."""

    @functools.wraps(fn)
    def run(
        *,
        endpoint: str,
        project: str | None,
        location: str,
        output_format: str,
        quiet: bool,
        access_token: str | None,
        api_key: str | None,
        credentials_file: str | None,
        **kwargs: Any,
    ) -> None:
        ctl = Ctl(
            endpoint=endpoint.rstrip("/"),
            project=project,
            location=location,
            output_format=output_format,
            quiet=quiet,
            access_token=access_token,
            api_key=api_key,
            credentials_file=credentials_file,
        )
        try:
            with reported_errors(ctl):
                fn(ctl, **kwargs)
        finally:
            ctl.close()

    options = [
        click.option(
            "--endpoint",
            envvar="TASKSD_ENDPOINT",
            default=DEFAULT_ENDPOINT,
            show_default=True,
            help="The server: http(s)://HOST:PORT (REST) or grpc(s)://HOST:PORT (gRPC).",
        ),
        click.option("--project", envvar="TASKSD_PROJECT", help="The project id [TASKSD_PROJECT]."),
        click.option(
            "--location",
            envvar="TASKSD_LOCATION",
            default=DEFAULT_LOCATION,
            show_default=True,
            help="The location of the queue [TASKSD_LOCATION].",
        ),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["table", "json", "yaml"]),
            default="table",
            show_default=True,
            help="json and yaml print the resource as REST shows it.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="Do not ask for confirmation."),
        click.option("--access-token", envvar="TASKSD_TOKEN", help="A bearer token [TASKSD_TOKEN]."),
        click.option("--api-key", envvar="TASKSD_API_KEY", help="An API key [TASKSD_API_KEY]."),
        click.option(
            "--credentials-file",
            envvar="GOOGLE_APPLICATION_CREDENTIALS",
            type=click.Path(exists=True, dir_okay=False),
            help="A service account key file [GOOGLE_APPLICATION_CREDENTIALS].",
        ),
    ]
    decorated: Callable[..., None] = run
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def confirm(ctl: Ctl, prompt: str) -> None:
    """Ask before something that cannot be undone, unless ``--quiet``; no answer is a failure."""
    if ctl.quiet:
        return
    try:
        answer = click.confirm(f"{prompt}\n\nDo you want to continue?", default=True, err=True)
    except click.Abort:
        fail("no answer to the confirmation prompt (stdin is not interactive); pass --quiet to skip it")
    if not answer:
        fail("Aborted by user.")
