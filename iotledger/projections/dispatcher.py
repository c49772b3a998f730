"""The dispatch policy at work: commands go out to online devices, stale ones expire.

Each round (in one process at a time, see `leadership`) it first expires the
commands never sent whose time to live has passed (`Command.Expired`), then
sends what the dispatch view says is due to `T/devices/{id}/commands` and
records `Command.Dispatched`. It publishes first and records after the
broker's PUBACK, so a crash between the two sends the command again (the
device recognises it by its id) and never records a dispatch that did not
happen. A command cancelled or expired in that instant may still reach the
device; its history says what it is, and a later report of it is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.link import BrokerUnavailable
from iotledger.adapters.mqtt.topics import Topics
from iotledger.adapters.postgres.views.dispatch import Due, PostgresDispatchView
from iotledger.application.clock import now
from iotledger.application.commands import DispatchCommand, ExpireCommand
from iotledger.application.ledger import Ledger
from iotledger.domain.errors import Conflict

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]
SYSTEM = "system"


class CommandMessage(msgspec.Struct):
    """What a device receives on `T/devices/{id}/commands`."""

    id: UUID
    command_name: str
    payload: dict[str, Any]
    issued_at: datetime


_encode = msgspec.json.Encoder().encode


class Dispatcher:
    def __init__(
        self,
        ledger: Ledger,
        view: PostgresDispatchView,
        publish: Publish,
        topics: Topics,
        counters: Counter[str],
    ) -> None:
        self._ledger = ledger
        self._view = view
        self._publish = publish
        self._topics = topics
        self.counters = counters
        self._sent: dict[UUID, int] = {}
        """Sent and recorded, for this coming-online of its device, but not yet in the view."""

    async def round(self) -> None:
        at = now()
        await self._expire(at)
        due = await asyncio.to_thread(self._view.due, at)
        self._sent = {
            d.command.id: d.online_seq for d in due if self._sent.get(d.command.id) == d.online_seq
        }
        for item in due:
            if item.command.id not in self._sent and not await self._send(item, at):
                return

    async def _send(self, due: Due, at: datetime) -> bool:
        """Publish one command and record it; False when the broker cannot take it now."""
        command = due.command
        message = CommandMessage(
            command.id, command.command_name, command.payload, command.issued_at.astimezone(UTC)
        )
        try:
            await self._publish(self._topics.commands(command.device_id), _encode(message))
        except BrokerUnavailable as error:
            log.info("commands wait for the broker: %s", error)
            return False
        await self._record(self._ledger.dispatch_command, DispatchCommand(command.id, SYSTEM, at))
        self._sent[command.id] = due.online_seq
        self.counters["commands.dispatched"] += 1
        return True

    async def _expire(self, at: datetime) -> None:
        for command_id in await asyncio.to_thread(self._view.expired, at):
            if await self._record(
                self._ledger.expire_command, ExpireCommand(command_id, SYSTEM, at)
            ):
                self.counters["commands.expired"] += 1

    @staticmethod
    async def _record(write: Callable[[Any], object], command: Any) -> bool:
        """Record; False when the command moved on meanwhile (cancelled, answered, expired)."""
        try:
            await asyncio.to_thread(write, command)
        except Conflict as error:
            log.info("command %s moved on meanwhile: %s", command.command_id, error)
            return False
        return True
