"""Running tasksd: open the store, declare configured queues, serve, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import uvicorn
from google.protobuf import json_format

from tasksd.api import v2, v2beta2, v2beta3
from tasksd.api.cloudtasks import CloudTasksApi, Version
from tasksd.api.grpc.server import start_grpc
from tasksd.api.locations import LocationsApi
from tasksd.api.operations import OperationsApi
from tasksd.api.rest.app import Document, RestApp, RestVersion
from tasksd.api.rpc import Rpc
from tasksd.clock import SystemClock
from tasksd.config import ConfigError, Settings
from tasksd.engine.dispatcher import Dispatcher
from tasksd.model.errors import TasksError
from tasksd.service import TasksService
from tasksd.store import open_store
from tasksd.targets.appengine import AppEngineUrls
from tasksd.targets.sender import Sender
from tasksd.targets.tokens import TokenIssuer, new_signing_key

log = logging.getLogger("tasksd")


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT/SIGTERM only ask it to stop.

    uvicorn re-raises the signal once it has stopped, which would end the process before the
    store is closed; here ``serve`` returns and the caller shuts down in order.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


VERSIONS: tuple[Version, ...] = (v2beta2.VERSION, v2beta3.VERSION, v2.VERSION)


def all_rpcs(service: TasksService) -> list[Rpc]:
    """Every RPC of every version, and of Locations, over one service."""
    rpcs = [*LocationsApi(service).rpcs().values(), *OperationsApi(service).rpcs().values()]
    for version in VERSIONS:
        rpcs += CloudTasksApi(service, version).rpcs().values()
    return rpcs


def build_rest_app(service: TasksService, tokens: TokenIssuer | None = None) -> RestApp:
    rpcs = all_rpcs(service)
    versions = [RestVersion(v.name, v.rest_methods, rpcs, v.rest_aliases) for v in VERSIONS]
    return RestApp(versions, token_documents(tokens))


def token_documents(tokens: TokenIssuer | None) -> dict[str, Document]:
    """The endpoints a task handler uses to check tokens: OIDC discovery, JWKS, tokeninfo."""
    if tokens is None:
        return {}

    def token_info(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        info = tokens.token_info(query.get("access_token", ""))
        if info is None:
            return 400, {"error": "invalid_token", "error_description": "Invalid Value"}
        return 200, info

    return {
        "/.well-known/openid-configuration": lambda query: (200, tokens.openid_configuration()),
        "/.well-known/jwks.json": lambda query: (200, tokens.jwks()),
        "/oauth2/v3/certs": lambda query: (200, tokens.jwks()),
        "/oauth2/v3/tokeninfo": token_info,
    }


async def declare_queues(service: TasksService, queues: tuple[dict[str, Any], ...]) -> None:
    """Create each configured queue, or update it to match the file, as a v2beta2
    UpdateQueue call without a mask would."""
    update = CloudTasksApi(service, v2beta2.VERSION).rpcs()["UpdateQueue"]
    for index, document in enumerate(queues):
        where = f"queues[{index}]"
        request = update.request()
        try:
            json_format.ParseDict(document, request.queue)
        except json_format.ParseError as exc:
            raise ConfigError(f"{where} is not a v2beta2 Queue: {exc}".split("\n")[0]) from None
        try:
            await update.handler(request)
        except TasksError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        log.info("declared queue %s", document.get("name"))


async def _sweep_forever(service: TasksService, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await service.sweep()
        except Exception:
            log.exception("sweep failed")


async def serve(settings: Settings) -> None:
    store = await open_store(settings.db)
    sender = Sender(
        verify_tls=not settings.trust_self_signed_targets,
        allowed_hosts=frozenset(settings.allowed_target_hosts) if settings.allowed_target_hosts else None,
    )
    dispatcher: Dispatcher | None = None
    try:
        clock = SystemClock()
        key = await store.get_or_add_meta("oidc_signing_key", new_signing_key)
        tokens = TokenIssuer(key, settings.oidc_issuer or f"http://{settings.host}:{settings.http_port}")
        urls = AppEngineUrls(settings.app_engine_url, dict(settings.app_engine_services))
        dispatcher = Dispatcher(
            store,
            clock,
            sender,
            tokens,
            urls,
            node=settings.node_id,
            ownership_ttl=timedelta(seconds=settings.queue_ownership_ttl_s),
        )
        service = TasksService(store, clock, settings.service, dispatcher)
        await declare_queues(service, settings.queues)
        await dispatcher.start()
        config = uvicorn.Config(
            build_rest_app(service, tokens),
            host=settings.host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            proxy_headers=False,
            # Clients pool connections (httplib2 writes into one the server closed and fails);
            # Google's front ends keep idle connections about ten minutes, so do the same.
            timeout_keep_alive=620,
            log_level=settings.log_level,
            http="httptools",
            loop="none",
        )
        server = _Server(config)
        grpc_server = await start_grpc(all_rpcs(service), settings.host, settings.grpc_port)
        sweeper = asyncio.create_task(_sweep_forever(service, settings.sweep_interval_s))
        try:
            await service.sweep()
            await server.serve()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await grpc_server.stop(grace=1.0)
    finally:
        if dispatcher is not None:
            await dispatcher.stop()
        await sender.close()
        await store.close()
