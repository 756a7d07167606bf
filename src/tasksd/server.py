"""Running tasksd: open the store, declare configured queues, serve, shut down cleanly; and
``processes`` > 1: a parent that forks that many server processes on the same ports.

Each process is a node of the store with a stable id (``node_id``, by default
``HOSTNAME:HTTP_PORT``, and ``/INDEX`` for each of several processes), so that a restarted
node takes its own queues back at once instead of waiting for their ownership to run out.
Before it dispatches, a starting node gives up the ownership its previous life left in the
store, so that the dispatcher takes each queue over as new and sends again the attempts that
life left in flight. Two live processes with one id on one store would both dispatch: each
node holds a lock file named after its store and id for its lifetime, and a second process
on the same machine is refused; one on another machine overwrites the node's claim in the
store, and the older process stops within seconds with an error (exit status 2).

With several processes each binds the HTTP port (a socket with SO_REUSEPORT) and the gRPC
port (gRPC sets SO_REUSEPORT itself on Linux), and the kernel spreads connections over them.
A task created through a process that does not dispatch its queue is told to the one that
does, through sockets the parent makes before it forks (``engine/siblings.py``).
The parent forwards SIGTERM and SIGINT (as SIGTERM) to the children and exits when they have;
a child that dies otherwise (a crash, kill -9) is started again with the same node id, at once
unless it had lived less than 10 s (then after 2 s); a child that refuses its configuration
(exit status 2), or dies within 10 s of its start three times in a row, stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import signal
import socket
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from google.protobuf import json_format

from tasksd.api import v2, v2beta2, v2beta3
from tasksd.api.authz import Guard
from tasksd.api.cloudtasks import CloudTasksApi
from tasksd.api.grpc.server import start_grpc
from tasksd.api.locations import LocationsApi
from tasksd.api.operations import OperationsApi
from tasksd.api.rest.app import Answer, Document, Page, RestApp, RestVersion
from tasksd.api.rest.firebase import DEFAULT_FUNCTION_URL, FirebaseRoutes
from tasksd.api.rest.protocol import http_protocol, raise_open_file_limit
from tasksd.api.rpc import Rpc
from tasksd.api.versions import Version
from tasksd.auth.config import AuthConfig, read_auth_config
from tasksd.auth.credentials import Authenticator
from tasksd.auth.policy import Iam
from tasksd.auth.tokens import ApiTokens
from tasksd.clock import SystemClock
from tasksd.config import ConfigError, QueueYamlConfig, Settings
from tasksd.console.pages import Failures
from tasksd.engine.dispatcher import Dispatcher
from tasksd.engine.siblings import SiblingLink, Siblings
from tasksd.model.errors import TasksError
from tasksd.model.names import QueueName
from tasksd.model.queue import QueueKind
from tasksd.observe.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tasksd.observe.metrics import METRICS
from tasksd.service import TasksService
from tasksd.service.queueyaml import apply_queue_yaml
from tasksd.store import UnsupportedDatabase, open_store
from tasksd.store.base import Store
from tasksd.targets.appengine import AppEngineUrls
from tasksd.targets.network import TargetNetworks
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


VERSIONS: tuple[Version, ...] = (v2beta2.VERSION, v2beta2.REST_VERSION, v2beta3.VERSION, v2.VERSION)


def all_rpcs(service: TasksService) -> list[Rpc]:
    """Every RPC of every version, and of Locations, over one service."""
    rpcs = [*LocationsApi(service).rpcs().values(), *OperationsApi(service).rpcs().values()]
    for version in VERSIONS:
        rpcs += CloudTasksApi(service, version).rpcs().values()
    return rpcs


def build_rest_app(
    rpcs: list[Rpc],
    tokens: TokenIssuer | None = None,
    authenticator: Authenticator | None = None,
    function_url: str = DEFAULT_FUNCTION_URL,
    pages: dict[str, Page] | None = None,
    failures: Failures | None = None,
) -> RestApp:
    rest_rpcs = [rpc for rpc in rpcs if rpc.rest]
    versions = [
        RestVersion(v.name, v.rest_methods, rest_rpcs, v.rest_aliases)
        for v in VERSIONS
        if "rest" in v.transports
    ]
    firebase = FirebaseRoutes(rpcs, function_url)
    if authenticator is None:
        return RestApp(versions, token_documents(tokens), firebase=firebase, pages=pages, failures=failures)
    return RestApp(
        versions,
        token_documents(tokens),
        authenticate=authenticator.authenticate,
        forms={"/token": authenticator.grant},
        firebase=firebase,
        pages=pages,
        failures=failures,
    )


def queue_failures(service: TasksService) -> Failures:
    """The console's failures in the last minute of a queue (the caller was shown the queue)."""

    async def failures(name: str) -> int:
        return (await service.queue_stats(QueueName.parse(name, "name"))).failed_last_minute_count

    return failures


def metrics_page(dispatcher: Dispatcher) -> Page:
    """GET /metrics: the process's metrics, with the queue gauges read from the store now."""

    async def page() -> Answer:
        try:
            METRICS.set_queues(await dispatcher.backlogs())
        except Exception:  # the counters are still worth a scrape
            log.exception("could not read the queues' backlogs for /metrics")
        return 200, METRICS.render(), METRICS_CONTENT_TYPE

    return page


def guarded_rpcs(service: TasksService, auth: AuthConfig | None) -> list[Rpc]:
    """Every RPC, each checking its caller's permissions when authentication is on."""
    rpcs = all_rpcs(service)
    if auth is None:
        return rpcs
    guard = Guard(Iam(auth), service)
    return [guard.wrap(rpc) for rpc in rpcs]


def _tls(settings: Settings, base: Path) -> tuple[dict[str, Any], grpc.ServerCredentials | None]:
    """uvicorn's TLS options and gRPC's server credentials for the ``tls:`` setting (relative
    paths are read from ``base``, the config file's folder)."""
    if settings.tls is None:
        return {}, None
    paths = {key: base / value for key, value in settings.tls.items()}
    try:
        read = {key: path.read_bytes() for key, path in paths.items()}
    except OSError as exc:
        raise ConfigError(f"tls: cannot read {exc.filename}: {exc.strerror}.") from None
    client_ca = read.get("client_ca_file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            paths["cert_file"], paths["key_file"]
        )
        if client_ca is not None:
            ssl.create_default_context(cafile=str(paths["client_ca_file"]))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"tls: the certificate, key or CA file cannot be used: {exc}.") from None
    options: dict[str, Any] = {"ssl_certfile": str(paths["cert_file"]), "ssl_keyfile": str(paths["key_file"])}
    if client_ca is not None:
        options |= {"ssl_ca_certs": str(paths["client_ca_file"]), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    credentials = grpc.ssl_server_credentials(
        [(read["key_file"], read["cert_file"])],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    return options, credentials


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


async def apply_queue_yaml_file(
    service: TasksService, config: QueueYamlConfig | None, declared: tuple[dict[str, Any], ...]
) -> None:
    """Apply the configured queue.yaml as an upload of it would (the location's other queues
    are disabled), except that the queues ``declared`` in ``queues:`` are left running."""
    if config is None:
        return
    keep = set()
    for document in declared:
        with contextlib.suppress(TasksError, TypeError):
            keep.add(QueueName.parse(document.get("name", ""), "name"))
    try:
        applied = await apply_queue_yaml(service, config.location, config.queues, frozenset(keep))
    except TasksError as exc:
        raise ConfigError(f"{config.file}: {exc.message}") from None
    log.info("applied %s to %s: %d queues", config.file, config.location.path, len(applied))


async def _sweep_forever(service: TasksService, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await service.sweep()
        except Exception:
            log.exception("sweep failed")


def node_id(settings: Settings, index: int | None = None) -> str:
    """This process's node id: ``node_id``, else ``HOSTNAME:HTTP_PORT`` (stable across
    restarts, and two servers on one machine have different ports); ``/INDEX`` for process
    ``index`` of several. A server on an ephemeral port (0) has no stable id: a random one."""
    base = settings.node_id
    if base is None:
        base = f"{socket.gethostname()}:{settings.http_port}" if settings.http_port else uuid.uuid4().hex
    return base if index is None else f"{base}/{index}"


def _shared_store(db: str) -> str | None:
    """What names the store ``db`` for other processes (an SQLite file's real path), or None
    when no other process can open it (in memory)."""
    if db == "memory://":
        return None
    if db.startswith("sqlite://"):
        path = db.removeprefix("sqlite://").removeprefix("/") or ":memory:"
        return None if path == ":memory:" else f"sqlite:{os.path.realpath(path)}"
    return db


def hold_lock(key: str, what: str) -> int:
    """Take the lock file of ``key`` (in the temporary folder) for as long as this process, or
    its children, keep the returned descriptor open; the kernel frees it when they die.

    Raises:
        ConfigError: another live process holds it (the message names ``what`` and its pid).
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    path = Path(tempfile.gettempdir()) / f"tasksd-{digest}.lock"
    try:
        try:
            fd, writable = os.open(path, os.O_RDWR | os.O_CREAT, 0o644), True
        except PermissionError:  # another user's file: locking needs no write access
            fd, writable = os.open(path, os.O_RDONLY), False
    except OSError as exc:
        raise ConfigError(f"cannot open the lock file {path} of {what}: {exc.strerror}.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 16, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"{what} is in use by another tasksd process on this machine (pid {holder})."
        ) from None
    if writable:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


NODE_CHECK_S = 2.0
"""How often a node checks that no process started since with its id (on another machine)."""


async def claim_node_id(store: Store, node: str) -> bytes:
    """Record in the store that this process is ``node`` now (host, pid, a random token): a
    process started later with the same id overwrites it, and ``_watch_node_id`` sees that."""
    claim = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex}".encode()
    await store.put_meta(f"node:{node}", claim)
    return claim


async def _watch_node_id(store: Store, node: str, claim: bytes, taken: Callable[[str], None]) -> None:
    """Call ``taken`` (with who took it) once the store's claim on ``node`` is no longer ours:
    two live processes with one id would both dispatch its queues. The lock file catches that
    on one machine at start; this, across machines, within NODE_CHECK_S of the second start."""
    while True:
        await asyncio.sleep(NODE_CHECK_S)
        try:
            found = await store.get_meta(f"node:{node}")
        except Exception:
            log.exception("could not read the claim on node id %s", node)
            continue
        if found != claim:
            taken(found.decode(errors="replace").rsplit(" ", 1)[0] if found else "claim removed")
            return


async def give_up_ownership(store: Store, node: str) -> None:
    """Release the queues ``node`` owns in the store: as the only live process with that id
    (``hold_lock``), what it owns is its previous life's, and a queue nobody owns is taken
    over with its attempts in flight due again (``Store.own_queue``), where a queue this node
    still owned would be renewed with them left in flight. All in one group commit."""
    queues = [queue.name for queue in await store.queue_configs() if queue.kind is QueueKind.PUSH]
    await asyncio.gather(*(store.release_queue(name, node) for name in queues))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT, which other processes of this
    user may bind too (the kernel spreads new connections over them); uvicorn listens on it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:  # socket.gaierror: a host name that does not resolve
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}.") from None
    return sock


async def serve(settings: Settings, index: int | None = None, siblings: SiblingLink | None = None) -> None:
    """Serve until SIGINT or SIGTERM: this process alone, or process ``index`` of several,
    which tells the others (``siblings``) of the queues it does not dispatch."""
    node = node_id(settings, index)
    shared = _shared_store(settings.db)
    lock = hold_lock(f"node\n{shared}\n{node}", f"node id {node!r} on {settings.db}") if shared else None
    try:
        await _serve(settings, node, index, siblings)
    finally:
        if lock is not None:
            os.close(lock)


async def _serve(settings: Settings, node: str, index: int | None, siblings: SiblingLink | None) -> None:
    base = Path(settings.config).parent if settings.config else Path.cwd()
    auth = read_auth_config(settings.auth, base)
    tls_options, grpc_tls = _tls(settings, base)
    try:
        sender = Sender(
            verify_tls=not settings.insecure_skip_target_tls_verify,
            ca_file=str(base / settings.target_ca_file) if settings.target_ca_file else None,
            allowed_networks=settings.allowed_target_networks,
            allowed_hosts=frozenset(settings.allowed_target_hosts) if settings.allowed_target_hosts else None,
        )
    except ValueError as exc:  # a CA file or network that cannot be used
        raise ConfigError(str(exc)) from None
    store = await open_store(settings.db)
    dispatcher: Dispatcher | None = None
    try:
        claim = await claim_node_id(store, node)
        await give_up_ownership(store, node)
        clock = SystemClock()
        key = await store.get_or_add_meta("oidc_signing_key", new_signing_key)
        scheme = "https" if settings.tls is not None else "http"
        issuer = settings.oidc_issuer or f"{scheme}://{settings.host}:{settings.http_port}"
        tokens = TokenIssuer(key, issuer, clock)
        authenticator = Authenticator(auth, ApiTokens(key)) if auth is not None else None
        urls = AppEngineUrls(settings.app_engine_url, dict(settings.app_engine_services))
        dispatcher = Dispatcher(
            store,
            clock,
            sender,
            tokens,
            urls,
            node=node,
            ownership_ttl=timedelta(seconds=settings.queue_ownership_ttl_s),
        )
        networks = TargetNetworks.parse(settings.allowed_target_networks)
        service = TasksService(store, clock, replace(settings.service, target_networks=networks), dispatcher)
        if not index:  # one of several processes declares the configured queues
            await apply_queue_yaml_file(service, settings.queue_yaml, settings.queues)
            await declare_queues(service, settings.queues)
        rpcs = guarded_rpcs(service, auth)
        if siblings is not None:
            dispatcher.elsewhere = siblings.tell
            siblings.listen(asyncio.get_running_loop(), dispatcher.wake)
        await dispatcher.start()
        raise_open_file_limit(settings.limits)
        config = uvicorn.Config(
            build_rest_app(
                rpcs,
                tokens,
                authenticator,
                settings.firebase_function_url,
                {"/metrics": metrics_page(dispatcher)},
                queue_failures(service),
            ),
            host=settings.host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            log_config=None,  # uvicorn's records go through tasksd's handler (text or JSON)
            proxy_headers=False,
            # Clients pool connections (httplib2 writes into one the server closed and fails);
            # Google's front ends keep idle connections about ten minutes, so do the same.
            timeout_keep_alive=620,
            log_level=settings.log_level,
            # httptools, with bounds on heads, slow clients and connections (limits:)
            http=http_protocol(settings.limits),
            ws="none",
            **tls_options,
            loop="none",
        )
        server = _Server(config)
        sockets = None if index is None else [reuse_port_socket(settings.host, settings.http_port)]
        try:
            grpc_server = await start_grpc(
                rpcs,
                settings.host,
                settings.grpc_port,
                authenticator.authenticate if authenticator is not None else None,
                grpc_tls,
            )
        except (OSError, RuntimeError) as exc:  # grpc raises RuntimeError when it cannot bind
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.grpc_port} (gRPC): {exc}"
            ) from None
        taken: list[str] = []

        def node_id_taken(by: str) -> None:
            log.error("node id %s was taken by another process (%s): stopping", node, by)
            taken.append(by)
            server.should_exit = True

        background = [
            asyncio.create_task(_sweep_forever(service, settings.sweep_interval_s)),
            asyncio.create_task(_watch_node_id(store, node, claim, node_id_taken)),
        ]
        try:
            await service.sweep()
            log.info("serving as node %s", node)
            await server.serve(sockets=sockets)
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await grpc_server.stop(grace=1.0)
        if taken:
            raise ConfigError(
                f"node id {node!r} is in use by another process ({taken[0]}); "
                "give every node sharing a database its own node_id."
            )
    finally:
        if siblings is not None:
            siblings.close()
        if dispatcher is not None:
            await dispatcher.stop()
        await sender.close()
        await store.close()


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def run(settings: Settings) -> int:
    """Serve with ``settings``: in this process, or in ``processes`` children; the exit status.

    Raises:
        ConfigError, UnsupportedDatabase: settings that cannot be served (one process).
    """
    if settings.processes == 1:
        run_loop(serve(settings))
        return 0
    if _shared_store(settings.db) is None:
        raise ConfigError(
            f"processes: {settings.processes} needs a store that processes share (sqlite:///PATH or "
            f"postgresql://…); {settings.db} lives in one process's memory."
        )
    if not settings.http_port or not settings.grpc_port:
        raise ConfigError(f"processes: {settings.processes} needs fixed HTTP and gRPC ports, not 0.")
    return _Parent(settings).run()


RESTART_DELAY_S = 2.0
"""How long a process that died within STABLE_S of its start waits before it is started again."""
STABLE_S = 10.0
QUICK_DEATHS = 3
"""Deaths in a row within STABLE_S of the start after which the parent stops them all."""


class _Parent:
    """Starts ``processes`` server processes and watches them (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: dict[int, int] = {}
        """pid → index of each live child."""
        self.started: dict[int, float] = {}
        """index → when its process was last started (time.monotonic())."""
        self.quick_deaths: dict[int, int] = {}
        """index → how many times in a row its process died within STABLE_S of its start."""
        self.stopping = False
        self.siblings = Siblings(settings.processes)
        """The sockets through which the processes wake each other (``engine/siblings.py``)."""

    def run(self) -> int:
        settings = self.settings
        # Ports shared through SO_REUSEPORT would also be shared with another such tasksd.
        locks = [
            hold_lock(f"port\n{settings.host}\n{port}", f"port {settings.host}:{port}")
            for port in (settings.http_port, settings.grpc_port)
        ]
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        status = 0
        try:
            for index in range(settings.processes):
                if not self.stopping:
                    self._start(index)
            while self.children:
                try:
                    pid, wait_status = os.wait()
                except ChildProcessError:
                    break
                index = self.children.pop(pid, -1)
                code = os.waitstatus_to_exitcode(wait_status)
                if index < 0 or self.stopping or code == 0:
                    continue
                if code == 2:  # it refused the configuration: so would the others
                    status = 2
                    self._stop(signal.SIGTERM, None)
                    continue
                # At once after a long life; a process that keeps dying is not started in a loop.
                lived = time.monotonic() - self.started[index]
                self.quick_deaths[index] = self.quick_deaths.get(index, 0) + 1 if lived < STABLE_S else 0
                if self.quick_deaths[index] >= QUICK_DEATHS:
                    log.error(
                        "server process %d ended with %d, %d times within %g s of its start: stopping",
                        index,
                        code,
                        QUICK_DEATHS,
                        STABLE_S,
                    )
                    status = 1
                    self._stop(signal.SIGTERM, None)
                    continue
                delay = RESTART_DELAY_S if lived < STABLE_S else 0.0
                log.error(
                    "server process %d (pid %d) ended with %d; starting it again in %g s",
                    index,
                    pid,
                    code,
                    delay,
                )
                time.sleep(delay)
                if not self.stopping:
                    self._start(index)
        finally:
            for fd in locks:
                os.close(fd)
        return status

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _start(self, index: int) -> None:
        parent = os.getpid()
        self.started[index] = time.monotonic()
        pid = os.fork()
        if pid:
            self.children[pid] = index
            return
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            _end_with(parent)
            code = _child(self.settings, index, self.siblings.link(index))
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _end_with(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


def _child(settings: Settings, index: int, siblings: SiblingLink) -> int:
    """Serve as process ``index``; the exit status (2: the settings cannot be served)."""
    try:
        run_loop(serve(settings, index, siblings))
    except (ConfigError, UnsupportedDatabase) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        log.exception("server process %d failed", index)
        return 1
    return 0
