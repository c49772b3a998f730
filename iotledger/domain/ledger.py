"""iotledger's event-sourced application: one log for the whole domain."""

from __future__ import annotations

from iotledger.domain.command_service import CommandService
from iotledger.domain.device_service import DeviceService
from iotledger.domain.identity_service import IdentityService
from iotledger.domain.reading_service import ReadingService
from iotledger.domain.session_service import SessionService
from iotledger.domain.user_service import UserService


class Ledger(
    UserService, SessionService, ReadingService, CommandService, IdentityService, DeviceService
):
    name = "iotledger"
