"""Running tasksd: open the store, declare configured queues, serve, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import uvicorn
from google.protobuf import json_format

from tasksd.api.locations import LocationsApi
from tasksd.api.rest.app import RestApp, RestVersion
from tasksd.api.v2beta2 import mapping as v2beta2_mapping
from tasksd.api.v2beta2.methods import REST_METHODS as V2BETA2_REST
from tasksd.api.v2beta2.methods import V2Beta2Api
from tasksd.clock import SystemClock
from tasksd.config import ConfigError, Settings
from tasksd.model.errors import TasksError
from tasksd.model.names import QueueName
from tasksd.service import TasksService
from tasksd.store import open_store

log = logging.getLogger("tasksd")


def build_rest_app(service: TasksService) -> RestApp:
    locations = list(LocationsApi(service).rpcs().values())
    v2beta2 = list(V2Beta2Api(service).rpcs().values())
    return RestApp([RestVersion("v2beta2", V2BETA2_REST, v2beta2 + locations)])


async def declare_queues(service: TasksService, queues: tuple[dict[str, Any], ...]) -> None:
    """Create each configured queue, or update it to match the file."""
    for index, document in enumerate(queues):
        where = f"queues[{index}]"
        try:
            message = json_format.ParseDict(document, v2beta2_mapping.QueuePb())
        except json_format.ParseError as exc:
            raise ConfigError(f"{where} is not a v2beta2 Queue: {exc}".split("\n")[0]) from None
        try:
            name = QueueName.parse(message.name, f"{where}.name")
            await service.update_queue(v2beta2_mapping.queue_from_pb(message, name), None)
        except TasksError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        log.info("declared queue %s", message.name)


async def _sweep_forever(service: TasksService, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await service.sweep()
        except Exception:
            log.exception("sweep failed")


async def serve(settings: Settings) -> None:
    store = await open_store(settings.db)
    try:
        service = TasksService(store, SystemClock(), settings.service)
        await declare_queues(service, settings.queues)
        config = uvicorn.Config(
            build_rest_app(service),
            host=settings.host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            log_level=settings.log_level,
            http="httptools",
            loop="none",
        )
        server = uvicorn.Server(config)
        sweeper = asyncio.create_task(_sweep_forever(service, settings.sweep_interval_s))
        try:
            await service.sweep()
            await server.serve()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
    finally:
        await store.close()
