"""iotledger's event-sourced application: one log for the whole domain."""

from __future__ import annotations

from iotledger.domain.user_service import UserService


class Ledger(UserService):
    name = "iotledger"
