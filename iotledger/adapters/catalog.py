"""Every projection iotledger runs, with the PostgreSQL view it writes."""

from __future__ import annotations

from typing import Any

from iotledger.adapters.command_view import PostgresCommandView
from iotledger.adapters.credential_view import PostgresCredentialView
from iotledger.adapters.device_view import PostgresDeviceView
from iotledger.adapters.dispatch_view import PostgresDispatchView
from iotledger.adapters.reading_view import PostgresReadingView
from iotledger.adapters.session_view import PostgresSessionView
from iotledger.adapters.user_view import PostgresUserView
from iotledger.adapters.views import PostgresView
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
