"""The ``tasksd`` command line."""

from __future__ import annotations

import gc
import sys
from dataclasses import replace

import click

from tasksd.config import ConfigError, Settings, apply_config_file, read_config_file
from tasksd.observe import logs
from tasksd.store import UnsupportedDatabase

_DEFAULTS = Settings()


@click.group()
@click.version_option(package_name="tasksd")
def main() -> None:
    """tasksd: the Google Cloud Tasks API, self-hosted."""


@main.command()
@click.option(
    "--host", default=_DEFAULTS.host, envvar="TASKSD_HOST", show_default=True, help="Address to listen on."
)
@click.option(
    "--grpc-port",
    default=_DEFAULTS.grpc_port,
    envvar="TASKSD_GRPC_PORT",
    type=int,
    show_default=True,
    help="gRPC port: v2beta2 CloudTasks, Locations, health, reflection.",
)
@click.option(
    "--http-port",
    default=_DEFAULTS.http_port,
    envvar="TASKSD_HTTP_PORT",
    type=int,
    show_default=True,
    help="HTTP port: REST API, /healthz, discovery documents.",
)
@click.option(
    "--db",
    default=_DEFAULTS.db,
    envvar="TASKSD_DB",
    show_default=True,
    help="Store URL: sqlite:///PATH or sqlite:///:memory:.",
)
@click.option(
    "--app-engine-url",
    default=_DEFAULTS.app_engine_url,
    envvar="TASKSD_APP_ENGINE_URL",
    show_default=True,
    help="Base URL that App Engine tasks are sent to.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    envvar="TASKSD_CONFIG",
    type=click.Path(dir_okay=False),
    help="YAML/JSON or TOML file: settings and queues.",
)
@click.option(
    "--log-level",
    default=_DEFAULTS.log_level,
    envvar="TASKSD_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    show_default=True,
)
@click.option(
    "--log-format",
    default=_DEFAULTS.log_format,
    envvar="TASKSD_LOG_FORMAT",
    type=click.Choice(["text", "json"]),
    show_default=True,
    help="json: one object per line (time, level, message, and a request's fields).",
)
@click.option(
    "--access-log/--no-access-log",
    default=_DEFAULTS.access_log,
    envvar="TASKSD_ACCESS_LOG",
    show_default=True,
    help="One line per API request: method, transport, resource, code, latency, principal.",
)
@click.option(
    "--processes",
    default=_DEFAULTS.processes,
    envvar="TASKSD_PROCESSES",
    type=click.IntRange(1, 64),
    show_default=True,
    help="Server processes, each a node of the store, all on the same ports (SO_REUSEPORT).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    grpc_port: int,
    http_port: int,
    db: str,
    app_engine_url: str,
    config_path: str | None,
    log_level: str,
    log_format: str,
    access_log: bool,
    processes: int,
) -> None:
    """Serve the Cloud Tasks API until SIGINT or SIGTERM."""
    settings = replace(
        _DEFAULTS,
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        db=db,
        app_engine_url=app_engine_url,
        config=config_path,
        log_level=log_level,
        log_format=log_format,
        access_log=access_log,
        processes=processes,
    )
    explicit = {
        name
        for name in (
            "host",
            "grpc_port",
            "http_port",
            "db",
            "app_engine_url",
            "log_level",
            "log_format",
            "access_log",
            "processes",
        )
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    try:
        if config_path:
            settings = apply_config_file(settings, read_config_file(config_path), explicit)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_level, settings.log_format, settings.access_log)
    from tasksd.server import run

    tune_gc()
    try:
        status = run(settings)
    except (ConfigError, UnsupportedDatabase) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    sys.exit(status)


def tune_gc() -> None:
    """Collect garbage less often than CPython's default (every 700 new objects): a busy
    server keeps thousands of attempts and requests alive, which every young collection
    walks again; and leave the objects of start-up (modules, code) out of collections."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


@main.group()
def keys() -> None:
    """Service account key files for an authenticated tasksd."""


@keys.command("create")
@click.option(
    "--email",
    required=True,
    help="The service account: NAME@PROJECT.iam.gserviceaccount.com (or any email).",
)
@click.option(
    "--token-uri",
    default="http://127.0.0.1:8124/token",
    show_default=True,
    help="Where clients exchange the key for access tokens: tasksd's POST /token.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The JSON key file to write (google-auth reads it).",
)
def create_key(email: str, token_uri: str, out: str) -> None:
    """Write a new service account key file that google-auth and tasksd both accept.

    List the file under auth.service_account_keys in tasksd's config (tasksd reads only its
    public part) and hand it to clients, e.g.
    service_account.Credentials.from_service_account_file(FILE).
    """
    from tasksd.auth.keyfile import new_key_file

    if "@" not in email:
        raise click.BadParameter("must be an email address", param_hint="--email")
    try:
        new_key_file(email, token_uri, out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out} for serviceAccount:{email}")


def _register_ctl() -> None:
    """``tasksd queues …`` and ``tasksd tasks …``: gcloud tasks against a running server."""
    from tasksd.ctl import queues, tasks

    main.add_command(queues)
    main.add_command(tasks)


_register_ctl()
