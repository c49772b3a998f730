"""`iotledger serve`: run every role, or one, until SIGTERM or SIGINT.

Roles: `api` (HTTP), `mqtt` (the broker link), `projections` (read-model
runners). With no database URL an embedded PostgreSQL starts under the data
directory, and with no broker URL an embedded MQTT broker; both stop with us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from litestar.types import ASGIApp

from iotledger.adapters.embedded.gate import BrokerGate
from iotledger.adapters.embedded.services import EmbeddedBroker, EmbeddedPostgres
from iotledger.adapters.mqtt import names as mqtt_names
from iotledger.adapters.mqtt.auth import Enforcer, ReadModelEnforcer
from iotledger.adapters.mqtt.link import NoBroker, Publisher
from iotledger.adapters.mqtt.tls import tls_context
from iotledger.adapters.observability.metrics import metrics_server
from iotledger.adapters.observability.runtime import freeze_startup_objects
from iotledger.adapters.postgres.connections import Bounds
from iotledger.adapters.postgres.database import check_reachable, migrate, schema_exists
from iotledger.adapters.postgres.leadership import lead
from iotledger.adapters.postgres.retention import EVERY, ReadingRetention
from iotledger.api.app import create_app
from iotledger.bootstrap import App, build
from iotledger.roles.dynsec import NO_ADMIN, dynsec_accounts
from iotledger.roles.mqtt import Timing, link_for, mqtt_role
from iotledger.settings import (
    DatabaseUrl,
    MqttUrl,
    Settings,
    SettingsError,
    mqtt_auth_mode,
    parse_database_url,
)

log = logging.getLogger("iotledger")

ROLES = ("api", "mqtt", "projections")


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[DatabaseUrl]:
    """The configured database, or an embedded one for as long as we run."""
    if settings.database_url is not None:
        check_reachable(settings.database_url, Bounds.of(settings))
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir / "postgres")
    log.info("no IOTLEDGER_DATABASE_URL: using embedded PostgreSQL in %s", embedded.data_dir)
    url = parse_database_url(embedded.start())
    try:
        yield url
    finally:
        if embedded.is_ours():  # else a live iotledger process started it and stops it
            log.info("stopping embedded PostgreSQL")
            embedded.stop()


@contextlib.asynccontextmanager
async def broker(
    app: App, roles: tuple[str, ...], gate: BrokerGate | None = None
) -> AsyncIterator[MqttUrl]:
    """Where iotledger's links connect (`App.mqtt_link`); without IOTLEDGER_MQTT_URL,
    an embedded broker for as long as we run (guarded by `gate`, if given)."""
    url = app.mqtt_link
    if app.settings.mqtt_url is not None or "mqtt" not in roles:
        # A lone api process publishes through the embedded broker of an mqtt process.
        yield url
        return
    embedded = EmbeddedBroker("127.0.0.1", app.settings.embedded_mqtt_port, gate)
    await embedded.start()
    guarded = "admitting issued credentials only" if gate else "admitting anyone"
    log.info("no IOTLEDGER_MQTT_URL: started embedded MQTT broker at %s, %s", embedded.url, guarded)
    try:
        yield url
    finally:
        log.info("stopping embedded MQTT broker")
        await embedded.stop()


def broker_gate(app: App) -> BrokerGate | None:
    """Who the broker admits, by `IOTLEDGER_MQTT_AUTH`; None: the embedded gate is not used."""
    settings = app.settings
    mode = mqtt_auth_mode(settings)
    external = settings.mqtt_url is not None
    if mode == "devices" and external:
        raise SettingsError(
            "IOTLEDGER_MQTT_AUTH: devices needs the embedded broker (unset IOTLEDGER_MQTT_URL);"
            " use dynsec or off with an external broker"
        )
    if mode == "dynsec" and not external:
        raise SettingsError(NO_ADMIN)
    if mode == "off":
        log.warning(
            "IOTLEDGER_MQTT_AUTH=off: iotledger enforces no device credentials on MQTT;"
            " any client the broker admits can speak for any device"
        )
    return app.broker_gate if mode == "devices" else None


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours stops every role together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def prepare_schema(app: App, roles: tuple[str, ...]) -> None:
    if set(roles) == set(ROLES):
        migrate(app.database_url, app.ledger)
    elif not schema_exists(app.database_url, Bounds.of(app.settings)):
        raise SettingsError(
            "IOTLEDGER_DATABASE_URL: the database has no iotledger tables; "
            "run `iotledger migrate` once before starting single roles"
        )


async def run(settings: Settings, roles: tuple[str, ...]) -> None:
    tls_context(settings)  # a CA or certificate that cannot be loaded stops us before anything
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with database(settings) as db_url:
        app = await asyncio.to_thread(build, settings, db_url)
        try:
            await asyncio.to_thread(prepare_schema, app, roles)
            await _run_roles(app, roles, stop)
        finally:
            await asyncio.to_thread(app.close)


async def _run_roles(app: App, roles: tuple[str, ...], stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if "projections" in roles:
            runners = app.projections.start()
            stack.push_async_callback(asyncio.to_thread, app.projections.stop, runners)
            _prune_readings(app, stack)
        publisher: Publisher = NoBroker()
        enforcer: Enforcer = ReadModelEnforcer()
        if "mqtt" in roles or "api" in roles:
            publisher, enforcer = await _connect_mqtt(app, roles, stack)
        if "api" in roles:
            app.watch.start()
            await _serve_http(app, create_app(app, publisher, enforcer), stop)
        else:
            _serve_metrics(app, stack)
            log.info("iotledger running roles %s", ", ".join(roles))
            await stop.wait()


def _prune_readings(app: App, stack: contextlib.AsyncExitStack) -> None:
    """With a retention set, one process of those running projections prunes the readings."""
    days = app.settings.readings_retention_days
    if days is None:
        return
    retention = ReadingRetention(app.pool, days)
    conninfo = app.conninfo("leader")
    task = asyncio.create_task(lead(conninfo, "readings-retention", retention.round, EVERY))
    stack.callback(task.cancel)


def _serve_metrics(app: App, stack: contextlib.AsyncExitStack) -> None:
    """A role without the HTTP API serves `/metrics` on IOTLEDGER_METRICS_PORT, if set."""
    settings = app.settings
    if settings.metrics_port is not None:
        stack.enter_context(metrics_server(app.metrics, settings.host, settings.metrics_port))
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)


async def _connect_mqtt(
    app: App, roles: tuple[str, ...], stack: contextlib.AsyncExitStack
) -> tuple[Publisher, Enforcer]:
    """The broker link: the whole `mqtt` role, or (api alone) a link to publish through;
    with the enforcer the API tells of credentials (`IOTLEDGER_MQTT_AUTH`)."""
    settings = app.settings
    url = await stack.enter_async_context(broker(app, roles, broker_gate(app)))
    enforcer: Enforcer = ReadModelEnforcer()
    if mqtt_auth_mode(settings) == "dynsec":  # before our links: it creates their account
        enforcer = await stack.enter_async_context(dynsec_accounts(app))
    embedded = settings.mqtt_url is None
    client_id = mqtt_names.client_id(settings.mqtt_topic, settings.mqtt_client_id, roles)
    if "mqtt" in roles:
        timing = Timing(presence_every=min(1.0, settings.device_check_interval / 5))
        role = mqtt_role(app, url, client_id=client_id, embedded=embedded, timing=timing)
        return (await stack.enter_async_context(role)).link, enforcer
    # A publish-only link keeps no session: each api process connects with its own id.
    link = link_for(settings, url, client_id, embedded)
    await link.start()
    stack.push_async_callback(link.stop)
    return link, enforcer


async def _serve_http(app: App, http: ASGIApp, stop: asyncio.Event) -> None:
    settings = app.settings
    freeze_startup_objects()
    config = uvicorn.Config(
        http,
        host=settings.host,
        port=settings.port,
        log_config=None,  # the process's logging is set once (`adapters.observability.logs`)
        log_level=None,
        access_log=False,  # ours is `IOTLEDGER_ACCESS_LOG` (`api.observer`)
        lifespan="on",
    )
    server = _Server(config)

    async def stop_on_signal() -> None:
        await stop.wait()
        server.should_exit = True
        app.log_wake.close()  # live streams end, so that the server can stop

    cannot_listen = SettingsError(
        f"IOTLEDGER_PORT: cannot listen on {settings.host}:{settings.port} "
        "(address in use or not permitted)"
    )
    try:
        sockets = [shared_socket(settings.host, settings.port)] if settings.reuse_port else None
    except OSError:
        raise cannot_listen from None
    watcher = asyncio.create_task(stop_on_signal())
    log.info("HTTP API on http://%s:%d", settings.host, settings.port)
    try:
        await server.serve(sockets)
    except SystemExit:
        pass  # uvicorn exits when it cannot bind; said below in one line
    finally:
        watcher.cancel()
    if not server.started:
        raise cannot_listen


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes of this host may bind too (SO_REUSEPORT):
    the kernel spreads the connections over every process listening on the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such a socket,
    # and without it every answer waited for a delayed ACK (measured: 45 ms at p50).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
