"""What handlers receive: each part of the process they need, by name, and a way to run
blocking work off the loop.

A handler declares the parts it uses (`ledger: NamedDependency[Ledger]`, `users`,
`watch`, ...), never the whole process: its signature says what it touches, and
`api.openapi` reads it (a handler that touches a part may answer 503). The parts
come from `Parts`, which `bootstrap.App` is; the broker link and the enforcer come
from whoever started them (`create_app`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from litestar.di import Provide
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from iotledger.adapters.mqtt.auth import Enforcer
from iotledger.adapters.mqtt.link import Publisher
from iotledger.adapters.mqtt.topics import Topics
from iotledger.adapters.postgres.device_log import DeviceLog
from iotledger.adapters.postgres.health import DatabaseProbe
from iotledger.adapters.postgres.log_head import LogHead
from iotledger.adapters.postgres.log_wake import LogWake
from iotledger.adapters.postgres.runners import ProjectionRunners
from iotledger.adapters.postgres.views.catalog import Views
from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.adapters.security.credentials import CachedCredentials
from iotledger.adapters.security.passwords import PasswordHasher
from iotledger.adapters.security.ratelimit import LoginLimiter
from iotledger.adapters.security.tokens import TokenIssuer
from iotledger.application.ledger import Ledger
from iotledger.application.readings import RecordingService
from iotledger.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


async def off_loop(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """eventsourcing and argon2 block: run them in a worker thread, never on the loop."""
    return await asyncio.to_thread(func, *args, **kwargs)


class Parts(Protocol):
    """The parts of the process the HTTP API uses (`bootstrap.App` has them all)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def views(self) -> Views: ...
    @property
    def watch(self) -> ProjectionWatch: ...
    @property
    def projections(self) -> ProjectionRunners: ...
    @property
    def recording(self) -> RecordingService: ...
    @property
    def log_head(self) -> LogHead: ...
    @property
    def device_log(self) -> DeviceLog: ...
    @property
    def log_wake(self) -> LogWake: ...
    @property
    def database_probe(self) -> DatabaseProbe: ...
    @property
    def metrics(self) -> CollectorRegistry: ...
    @property
    def tokens(self) -> TokenIssuer: ...
    @property
    def credentials(self) -> CachedCredentials: ...
    @property
    def login_limiter(self) -> LoginLimiter: ...
    @property
    def hasher(self) -> PasswordHasher: ...
    @property
    def topics(self) -> Topics: ...
    @property
    def pool(self) -> ConnectionPool[Any]: ...


def by_name(parts: Parts, publisher: Publisher, enforcer: Enforcer) -> dict[str, object]:
    """Every part a handler may declare, by the name it declares it with (the readings
    view is only read through `api.readings.Readings`, which waits for it)."""
    views = parts.views
    return {
        "settings": parts.settings,
        "ledger": parts.ledger,
        "watch": parts.watch,
        "projections": parts.projections,
        "recording": parts.recording,
        "log_head": parts.log_head,
        "device_log": parts.device_log,
        "log_wake": parts.log_wake,
        "database_probe": parts.database_probe,
        "metrics": parts.metrics,
        "tokens": parts.tokens,
        "credentials": parts.credentials,
        "login_limiter": parts.login_limiter,
        "hasher": parts.hasher,
        "topics": parts.topics,
        "pool": parts.pool,
        "users": views.users,
        "sessions": views.sessions,
        "devices": views.devices,
        "commands": views.commands,
        "credential_view": views.credentials,
        "publisher": publisher,
        "enforcer": enforcer,
    }


def constant(part: object) -> Provide:
    """Made once: Litestar keeps the first answer and hands it to every request."""
    return Provide(lambda: part, use_cache=True, sync_to_thread=False)
