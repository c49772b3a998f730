"""iotledger's event-sourced application: one log for the whole domain."""

from __future__ import annotations

from iotledger.application.commands import CommandService
from iotledger.application.devices import DeviceService
from iotledger.application.identity import IdentityService
from iotledger.application.readings import ReadingService
from iotledger.application.sessions import SessionService
from iotledger.application.users import UserService


class Ledger(
    UserService, SessionService, ReadingService, CommandService, IdentityService, DeviceService
):
    name = "iotledger"
