"""The composition root: the one place that builds and wires iotledger's parts."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, cast

from eventsourcing.postgres import PostgresApplicationRecorder
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from iotledger.adapters.embedded.gate import BrokerGate, service_password
from iotledger.adapters.mqtt.auth import Enforcer, ReadModelEnforcer, link_url
from iotledger.adapters.mqtt.dynsec.accounts import Account, service_account
from iotledger.adapters.mqtt.link import NoBroker, Publisher
from iotledger.adapters.mqtt.topics import Topics
from iotledger.adapters.observability.metrics import (
    PROJECTION_FAILURES,
    ProcessCollector,
    process_registry,
)
from iotledger.adapters.observability.runtime import tune_collector
from iotledger.adapters.postgres.appender import CopyReadingAppender
from iotledger.adapters.postgres.connections import Bounds, connection_string
from iotledger.adapters.postgres.database import open_pool
from iotledger.adapters.postgres.device_log import DeviceLog
from iotledger.adapters.postgres.eventstore import MsgspecMapper, eventsourcing_env
from iotledger.adapters.postgres.feed import PostgresEventFeed, open_feed
from iotledger.adapters.postgres.health import DatabaseProbe
from iotledger.adapters.postgres.log_wake import LogWake
from iotledger.adapters.postgres.lookup import BatchedLookup
from iotledger.adapters.postgres.projection_failures import transient
from iotledger.adapters.postgres.projection_status import ProjectionStatus, projection_statuses
from iotledger.adapters.postgres.reading_log import readings_channel
from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.adapters.postgres.views.commands import PostgresCommandView
from iotledger.adapters.postgres.views.credentials import PostgresCredentialView
from iotledger.adapters.postgres.views.devices import PostgresDeviceOwners, PostgresDeviceView
from iotledger.adapters.postgres.views.dispatch import PostgresDispatchView
from iotledger.adapters.postgres.views.readings import PostgresReadingView
from iotledger.adapters.postgres.views.sessions import PostgresSessionView
from iotledger.adapters.postgres.views.users import PostgresUserView
from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.adapters.security.credentials import CachedCredentials
from iotledger.adapters.security.passwords import PasswordHasher
from iotledger.adapters.security.ratelimit import LoginLimiter
from iotledger.adapters.security.tokens import TokenIssuer, jwt_secret
from iotledger.application.ledger import Ledger
from iotledger.application.readings import RecordingService
from iotledger.projections.runner import ProjectionRunner
from iotledger.settings import DatabaseUrl, MqttUrl, Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    database_url: DatabaseUrl
    ledger: Ledger
    pool: ConnectionPool[Any]
    views: dict[str, PostgresView[Any]]
    watch: ProjectionWatch
    tokens: TokenIssuer
    appender: CopyReadingAppender
    """Where new readings go, from every source (`recording` hands them over)."""
    recording: RecordingService
    log_head: BatchedLookup[str, int]
    """`LOG_HEAD`: the newest position of the log, for reads that must see every
    write acknowledged before them (readings: see `iotledger.api.readings`)."""
    database_probe: DatabaseProbe
    """Whether this process reaches PostgreSQL, for `/health` and `/ready`."""
    credentials: CachedCredentials
    """The `CredentialDirectory` every authenticator of devices and gateways asks."""
    mqtt_service_password: str
    """iotledger's own password on the embedded broker (`adapters.embedded.gate`)."""
    device_log: DeviceLog
    """The log as live streams read it."""
    log_wake: LogWake
    """One LISTEN for every live stream of the process; `close` ends them."""
    dynsec_service: Account
    """iotledger's own account on a dynsec Mosquitto (`adapters.mqtt.dynsec.accounts`)."""
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    publisher: Publisher = field(default_factory=NoBroker)
    """The MQTT link the API publishes through; `serve` sets it."""
    enforcer: Enforcer = field(default_factory=ReadModelEnforcer)
    """Told of each credential issued or revoked; `serve` sets it (`IOTLEDGER_MQTT_AUTH`)."""
    running: dict[str, ProjectionRunner] = field(default_factory=dict)
    """The projection runners this process runs; `serve` sets them."""

    @property
    def users(self) -> PostgresUserView:
        return cast(PostgresUserView, self.views["users"])

    @property
    def devices(self) -> PostgresDeviceView:
        return cast(PostgresDeviceView, self.views["devices"])

    @property
    def commands(self) -> PostgresCommandView:
        return cast(PostgresCommandView, self.views["commands"])

    @property
    def dispatch(self) -> PostgresDispatchView:
        return cast(PostgresDispatchView, self.views["dispatch"])

    @property
    def topics(self) -> Topics:
        return Topics(self.settings.mqtt_topic)

    @property
    def mqtt_link(self) -> MqttUrl:
        """Where every MQTT link of this deployment connects, and as whom."""
        return link_url(self.settings, self.mqtt_service_password, self.dynsec_service)

    def broker_gate(self) -> BrokerGate:
        """What the embedded broker asks when `IOTLEDGER_MQTT_AUTH=devices`."""
        return BrokerGate(self.credentials, self.topics, self.mqtt_service_password)

    @property
    def credential_view(self) -> PostgresCredentialView:
        return cast(PostgresCredentialView, self.views["credentials"])

    @property
    def sessions(self) -> PostgresSessionView:
        return cast(PostgresSessionView, self.views["sessions"])

    @property
    def login_limiter(self) -> LoginLimiter:
        """Stateless: its counts live in PostgreSQL, shared by every API process."""
        return LoginLimiter(self.pool)

    def conninfo(self, purpose: str) -> str:
        """The connection string of a connection of its own for `purpose`, bounded."""
        return connection_string(self.database_url, purpose, Bounds.of(self.settings))

    @contextmanager
    def feed(self, topics: Sequence[str] = (), *, name: str = "") -> Iterator[PostgresEventFeed]:
        """The feed of projection `name` (it names the feed's connections)."""
        recorder = cast(PostgresApplicationRecorder, self.ledger.recorder)
        conninfo = self.conninfo(f"feed-{name}" if name else "feed")
        with open_feed(recorder, self.ledger.mapper, conninfo, topics) as feed:
            yield feed

    def runners(self, names: list[str] | None = None) -> list[ProjectionRunner]:
        chosen = names or list(PROJECTIONS)
        projections = [PROJECTIONS[name][0](self.views[name]) for name in chosen]
        return [
            ProjectionRunner(
                p,
                partial(self.feed, name=p.name),
                batch_size=p.batch_size,
                on_failure=PROJECTION_FAILURES.labels(p.name).inc,
                transient=transient,
            )
            for p in projections
        ]

    def projection_statuses(self) -> list[ProjectionStatus]:
        """Bounded: a scrape or a readiness check waits at most 2 s for a connection."""
        connect = partial(self.pool.connection, timeout=2.0)
        return projection_statuses(connect, list(PROJECTIONS), self.running)

    @cached_property
    def metrics(self) -> CollectorRegistry:
        """This process's states for `/metrics`: projections and the pool."""
        return process_registry(ProcessCollector(self.pool, self.projection_statuses))

    @property
    def readings(self) -> PostgresReadingView:
        return cast(PostgresReadingView, self.views["readings"])

    def close(self) -> None:
        self.log_wake.close()
        self.appender.stop()
        self.watch.stop()
        self.ledger.close()
        self.pool.close()


def bootstrap(settings: Settings, database_url: DatabaseUrl) -> Services:
    """Every part, each connection bounded and named (see `docs/operations.md`, the
    connection budget: two pools of `db_pool_size`, and the connections of their own
    that the watch, the ingest, the feeds and the leaders open when their role runs)."""
    tune_collector()
    bounds = Bounds.of(settings)
    ledger = Ledger(env=eventsourcing_env(database_url, settings.db_pool_size, bounds))
    pool_conninfo = connection_string(database_url, "pool", bounds)
    pool = open_pool(pool_conninfo, settings.db_pool_size, bounds.statement_timeout)
    views = {name: view(pool, name) for name, (_, view) in PROJECTIONS.items()}
    recorder = cast(PostgresApplicationRecorder, ledger.recorder)
    ingest_conninfo = connection_string(database_url, "ingest", bounds)
    appender = CopyReadingAppender.for_recorder(
        recorder, ingest_conninfo, lock_timeout=bounds.lock_timeout, owners=PostgresDeviceOwners
    )
    watch_conninfo = connection_string(database_url, "watch", bounds)
    secret = jwt_secret(settings.jwt_secret, settings.data_dir)
    return Services(
        settings=settings,
        database_url=database_url,
        ledger=ledger,
        pool=pool,
        views=views,
        watch=ProjectionWatch(pool, watch_conninfo, settings.read_wait_timeout),
        tokens=TokenIssuer(secret),
        appender=appender,
        recording=RecordingService(appender, max_batch=settings.max_batch_readings),
        log_head=BatchedLookup(partial(_log_head, recorder)),
        database_probe=DatabaseProbe(pool),
        credentials=CachedCredentials(cast(PostgresCredentialView, views["credentials"]).find),
        mqtt_service_password=service_password(secret),
        device_log=DeviceLog(pool, recorder, cast(MsgspecMapper, ledger.mapper)),
        log_wake=LogWake(
            connection_string(database_url, "stream-wake", bounds), _log_channels(recorder)
        ),
        dynsec_service=service_account(settings.mqtt_topic, secret),
    )


def _log_channels(recorder: PostgresApplicationRecorder) -> tuple[str, ...]:
    """Where appends are announced: ordinary saves, and new readings."""
    return (recorder.channel_name, readings_channel(recorder.channel_name))


LOG_HEAD = "head"


def _log_head(recorder: PostgresApplicationRecorder, _keys: object) -> dict[str, int]:
    return {LOG_HEAD: recorder.max_notification_id() or 0}
