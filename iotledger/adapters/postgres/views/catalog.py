"""Every projection iotledger runs, with the PostgreSQL view it writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.adapters.postgres.views.commands import PostgresCommandView
from iotledger.adapters.postgres.views.credentials import PostgresCredentialView
from iotledger.adapters.postgres.views.devices import PostgresDeviceView
from iotledger.adapters.postgres.views.dispatch import PostgresDispatchView
from iotledger.adapters.postgres.views.readings import PostgresReadingView
from iotledger.adapters.postgres.views.sessions import PostgresSessionView
from iotledger.adapters.postgres.views.users import PostgresUserView
from iotledger.projections.base import Projection
from iotledger.projections.commands import CommandProjection
from iotledger.projections.credentials import CredentialProjection
from iotledger.projections.devices import DeviceProjection
from iotledger.projections.dispatch import DispatchProjection
from iotledger.projections.readings import ReadingProjection
from iotledger.projections.sessions import SessionProjection
from iotledger.projections.users import UserProjection

PROJECTIONS: dict[str, tuple[type[Projection[Any]], type[PostgresView[Any]]]] = {
    UserProjection.name: (UserProjection, PostgresUserView),
    ReadingProjection.name: (ReadingProjection, PostgresReadingView),
    SessionProjection.name: (SessionProjection, PostgresSessionView),
    DeviceProjection.name: (DeviceProjection, PostgresDeviceView),
    CommandProjection.name: (CommandProjection, PostgresCommandView),
    DispatchProjection.name: (DispatchProjection, PostgresDispatchView),
    CredentialProjection.name: (CredentialProjection, PostgresCredentialView),
}


@dataclass(frozen=True)
class Views:
    """Every view once, each with its own type, named as its projection: what the
    handlers, the policies and the runners of a process read and write."""

    users: PostgresUserView
    readings: PostgresReadingView
    sessions: PostgresSessionView
    devices: PostgresDeviceView
    commands: PostgresCommandView
    dispatch: PostgresDispatchView
    credentials: PostgresCredentialView

    @classmethod
    def on(cls, pool: ConnectionPool[Any]) -> Views:
        return cls(
            users=PostgresUserView(pool, UserProjection.name),
            readings=PostgresReadingView(pool, ReadingProjection.name),
            sessions=PostgresSessionView(pool, SessionProjection.name),
            devices=PostgresDeviceView(pool, DeviceProjection.name),
            commands=PostgresCommandView(pool, CommandProjection.name),
            dispatch=PostgresDispatchView(pool, DispatchProjection.name),
            credentials=PostgresCredentialView(pool, CredentialProjection.name),
        )

    def by_name(self) -> dict[str, PostgresView[Any]]:
        """Each view by its projection's name, in the order of `PROJECTIONS`."""
        return {name: getattr(self, name) for name in PROJECTIONS}
