"""The composition root: `build` makes every part of iotledger once, typed, and frozen.

Building opens the two pools and nothing else: every other connection (the watch,
the ingest, the feeds, the leaders, the live streams' LISTEN) is opened by the role
that uses it, when it starts, so each role keeps to its connection budget
(`docs/operations.md`). What exists only once something has started is not a part:
the broker link the API publishes through, and the dynsec enforcer, are made by
the roles that connect them and given to `api.app.create_app`; the projections a
process runs are started through `App.projections`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from iotledger.adapters.embedded.gate import BrokerGate, service_password
from iotledger.adapters.mqtt.auth import link_url
from iotledger.adapters.mqtt.dynsec.accounts import Account, service_account
from iotledger.adapters.mqtt.topics import Topics
from iotledger.adapters.observability.metrics import ProcessCollector, process_registry
from iotledger.adapters.observability.runtime import tune_collector
from iotledger.adapters.postgres.appender import CopyReadingAppender
from iotledger.adapters.postgres.connections import Bounds, connection_string
from iotledger.adapters.postgres.database import open_pool
from iotledger.adapters.postgres.device_log import DeviceLog
from iotledger.adapters.postgres.eventstore import MsgspecMapper, eventsourcing_env
from iotledger.adapters.postgres.health import DatabaseProbe
from iotledger.adapters.postgres.log_head import LogHead
from iotledger.adapters.postgres.log_wake import LogWake
from iotledger.adapters.postgres.reading_log import readings_channel
from iotledger.adapters.postgres.runners import ProjectionRunners
from iotledger.adapters.postgres.views.catalog import Views
from iotledger.adapters.postgres.views.devices import PostgresDeviceOwners
from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.adapters.security.credentials import CachedCredentials
from iotledger.adapters.security.passwords import PasswordHasher
from iotledger.adapters.security.ratelimit import LoginLimiter
from iotledger.adapters.security.tokens import TokenIssuer, jwt_secret
from iotledger.application.ledger import Ledger
from iotledger.application.readings import RecordingService
from iotledger.settings import DatabaseUrl, MqttUrl, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class App:
    settings: Settings
    database_url: DatabaseUrl
    pool: ConnectionPool[Any]
    ledger: Ledger
    views: Views
    watch: ProjectionWatch
    projections: ProjectionRunners
    """The runners of this process's projections, and how far each projection is."""
    appender: CopyReadingAppender
    """Where new readings go, from every source (`recording` hands them over)."""
    recording: RecordingService
    log_head: LogHead
    device_log: DeviceLog
    """The log as live streams read it."""
    log_wake: LogWake
    """One LISTEN for every live stream of the process; `close` ends them."""
    database_probe: DatabaseProbe
    """Whether this process reaches PostgreSQL, for `/health` and `/ready`."""
    metrics: CollectorRegistry
    """This process's states for `/metrics`: projections and the pool."""
    tokens: TokenIssuer
    credentials: CachedCredentials
    """The `CredentialDirectory` every authenticator of devices and gateways asks."""
    login_limiter: LoginLimiter
    """Stateless: its counts live in PostgreSQL, shared by every API process."""
    topics: Topics
    mqtt_link: MqttUrl
    """Where every MQTT link of this deployment connects, and as whom (`adapters.mqtt.auth`)."""
    broker_gate: BrokerGate
    """What the embedded broker asks when `IOTLEDGER_MQTT_AUTH=devices`."""
    dynsec_service: Account
    """iotledger's own account on a dynsec Mosquitto (`adapters.mqtt.dynsec.accounts`)."""
    hasher: PasswordHasher = field(default_factory=PasswordHasher)

    def conninfo(self, purpose: str) -> str:
        """The connection string of a connection of its own for `purpose`, bounded."""
        return connection_string(self.database_url, purpose, Bounds.of(self.settings))

    def close(self) -> None:
        self.log_wake.close()
        self.appender.stop()
        self.watch.stop()
        self.ledger.close()
        self.pool.close()


def build(settings: Settings, database_url: DatabaseUrl) -> App:
    """Every part, each connection bounded and named (see `docs/operations.md`, the
    connection budget: two pools of `db_pool_size`, and the connections of their own
    that the watch, the ingest, the feeds and the leaders open when their role runs)."""
    tune_collector()
    bounds = Bounds.of(settings)
    ledger = Ledger(env=eventsourcing_env(database_url, settings.db_pool_size, bounds))
    recorder, mapper = _recorder(ledger), _mapper(ledger)
    pool = open_pool(
        connection_string(database_url, "pool", bounds),
        settings.db_pool_size,
        bounds.statement_timeout,
    )
    views = Views.on(pool)

    def conninfo(purpose: str) -> str:
        return connection_string(database_url, purpose, bounds)

    projections = ProjectionRunners(recorder, mapper, views.by_name(), pool, conninfo)
    appender = CopyReadingAppender.for_recorder(
        recorder, conninfo("ingest"), lock_timeout=bounds.lock_timeout, owners=PostgresDeviceOwners
    )
    secret = jwt_secret(settings.jwt_secret, settings.data_dir)
    topics = Topics(settings.mqtt_topic)
    credentials = CachedCredentials(views.credentials.find)
    gate_password = service_password(secret)
    dynsec_service = service_account(settings.mqtt_topic, secret)
    return App(
        settings=settings,
        database_url=database_url,
        pool=pool,
        ledger=ledger,
        views=views,
        watch=ProjectionWatch(pool, conninfo("watch"), settings.read_wait_timeout),
        projections=projections,
        appender=appender,
        recording=RecordingService(appender, max_batch=settings.max_batch_readings),
        log_head=LogHead(recorder),
        device_log=DeviceLog(pool, recorder, mapper),
        log_wake=LogWake(conninfo("stream-wake"), _log_channels(recorder)),
        database_probe=DatabaseProbe(pool),
        metrics=process_registry(ProcessCollector(pool, projections.statuses)),
        tokens=TokenIssuer(secret),
        credentials=credentials,
        login_limiter=LoginLimiter(pool),
        topics=topics,
        mqtt_link=link_url(settings, gate_password, dynsec_service),
        broker_gate=BrokerGate(credentials, topics, gate_password),
        dynsec_service=dynsec_service,
    )


def _recorder(ledger: Ledger) -> PostgresApplicationRecorder:
    """The ledger's recorder: PostgreSQL's, which the feeds, the ingest and the log
    readers use beyond eventsourcing's interface."""
    recorder = ledger.recorder
    if not isinstance(recorder, PostgresApplicationRecorder):
        raise TypeError(f"iotledger runs on PostgreSQL, not {type(recorder).__name__}")
    return recorder


def _mapper(ledger: Ledger) -> MsgspecMapper:
    mapper = ledger.mapper
    if not isinstance(mapper, MsgspecMapper):
        raise TypeError(f"iotledger's events are msgspec JSON, not {type(mapper).__name__}")
    return mapper


def _log_channels(recorder: PostgresApplicationRecorder) -> tuple[str, ...]:
    """Where appends are announced: ordinary saves, and new readings."""
    return (recorder.channel_name, readings_channel(recorder.channel_name))
