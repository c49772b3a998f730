"""Every projection iotledger runs, with the PostgreSQL view it writes."""

from __future__ import annotations

from typing import Any

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
