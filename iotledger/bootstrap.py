"""The composition root: the one place that builds and wires iotledger's parts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg_pool import ConnectionPool

from iotledger.adapters.catalog import PROJECTIONS
from iotledger.adapters.database import open_pool
from iotledger.adapters.eventstore import eventsourcing_env
from iotledger.adapters.feed import PostgresEventFeed, open_feed
from iotledger.adapters.passwords import PasswordHasher
from iotledger.adapters.settings import DatabaseUrl, Settings
from iotledger.adapters.tokens import TokenIssuer, jwt_secret
from iotledger.adapters.user_view import PostgresUserView
from iotledger.adapters.views import PostgresView
from iotledger.adapters.watch import ProjectionWatch
from iotledger.domain.ledger import Ledger
from iotledger.projections.runner import ProjectionRunner

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
    hasher: PasswordHasher = field(default_factory=PasswordHasher)

    @property
    def users(self) -> PostgresUserView:
        return cast(PostgresUserView, self.views["users"])

    @contextmanager
    def feed(self) -> Iterator[PostgresEventFeed]:
        recorder = cast(PostgresApplicationRecorder, self.ledger.recorder)
        with open_feed(recorder, self.ledger.mapper, str(self.database_url)) as feed:
            yield feed

    def runners(self, names: list[str] | None = None) -> list[ProjectionRunner]:
        chosen = names or list(PROJECTIONS)
        return [
            ProjectionRunner(PROJECTIONS[name][0](self.views[name]), self.feed) for name in chosen
        ]

    def close(self) -> None:
        self.watch.stop()
        self.ledger.close()
        self.pool.close()


def bootstrap(settings: Settings, database_url: DatabaseUrl) -> Services:
    ledger = Ledger(env=eventsourcing_env(database_url, settings.db_pool_size))
    pool = open_pool(database_url, settings.db_pool_size)
    views = {name: view(pool, name) for name, (_, view) in PROJECTIONS.items()}
    return Services(
        settings=settings,
        database_url=database_url,
        ledger=ledger,
        pool=pool,
        views=views,
        watch=ProjectionWatch(pool, str(database_url)),
        tokens=TokenIssuer(jwt_secret(settings.jwt_secret, settings.data_dir)),
    )
