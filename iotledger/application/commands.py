"""Commands and queries about the commands sent to devices.

A command belongs to its device and follows the device's tenancy rule: every
write and read names the `DeviceAccess` it acts with, and a device the caller
may not see makes its commands NotFound too. A device reporting on its own MQTT
topic acts for itself (`access=None`): the topic names the device, and a
command of another device is NotFound.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from iotledger.application.devices import owner_after
from iotledger.application.discovery import DiscoveryService
from iotledger.application.service import Written
from iotledger.domain.commands import Command, CommandStatus, Delivery
from iotledger.domain.devices import Device, DeviceAccess
from iotledger.domain.errors import CommandNotFound, DeviceNotFound, InvalidInput

REPORTABLE = frozenset(
    {
        CommandStatus.ACKNOWLEDGED,
        CommandStatus.EXECUTED,
        CommandStatus.FAILED,
        CommandStatus.CANCELLED,
    }
)
"""What a device (or a user on its behalf) may say became of a command."""


class IssueCommand(msgspec.Struct, frozen=True):
    command_id: UUID
    device_id: UUID
    access: DeviceAccess
    command_name: str
    payload: dict[str, Any]
    delivery: Delivery
    by: str
    at: datetime
    expires_at: datetime | None = None


class DispatchCommand(msgspec.Struct, frozen=True):
    command_id: UUID
    by: str
    at: datetime


class ExpireCommand(msgspec.Struct, frozen=True):
    command_id: UUID
    by: str
    at: datetime


class CancelCommand(msgspec.Struct, frozen=True):
    """Withdraw a command that was never sent (a user's wish, or a broker that said no)."""

    command_id: UUID
    reason: str
    by: str
    at: datetime


class ReportCommand(msgspec.Struct, frozen=True):
    """What became of a command, said by its device (MQTT) or over REST.

    `access` None: the device itself, on its own topic. `executed_at` is the
    device's time; without one, the time the report arrived.
    """

    command_id: UUID
    device_id: UUID
    access: DeviceAccess | None
    status: CommandStatus
    by: str
    at: datetime
    executed_at: datetime | None = None
    result: Any = None


class CommandService(DiscoveryService):
    def issue_command(self, cmd: IssueCommand) -> Written:
        device = self.device(cmd.device_id, cmd.access)
        command = Command.issue(
            command_id=cmd.command_id,
            device_id=device.id,
            command_name=cmd.command_name,
            payload=cmd.payload,
            delivery=cmd.delivery,
            expires_at=cmd.expires_at,
            by=cmd.by,
            at=cmd.at,
        )
        return Written(command.id, self.append(command, conflict="command already exists"))

    def dispatch_command(self, cmd: DispatchCommand) -> Written:
        command = self.load(Command, cmd.command_id, CommandNotFound)
        command.dispatch(cmd.by, cmd.at)
        return self._saved(command)

    def expire_command(self, cmd: ExpireCommand) -> Written:
        command = self.load(Command, cmd.command_id, CommandNotFound)
        command.expire(cmd.by, cmd.at)
        return self._saved(command)

    def cancel_command(self, cmd: CancelCommand) -> Written:
        command = self.load(Command, cmd.command_id, CommandNotFound)
        command.cancel(cmd.reason, cmd.by, cmd.at)
        return self._saved(command)

    def report_command(self, cmd: ReportCommand) -> Written:
        """Record a report; one that repeats what is known records nothing (position 0)."""
        if cmd.status not in REPORTABLE:
            raise InvalidInput(f"status must be one of {', '.join(sorted(REPORTABLE))}")
        command = self._command_of(cmd.device_id, cmd.command_id, cmd.access)
        if cmd.status == CommandStatus.ACKNOWLEDGED:
            command.acknowledge(cmd.by, cmd.at)
        elif cmd.status == CommandStatus.CANCELLED:
            command.cancel("cancelled on request", cmd.by, cmd.at)
        else:
            executed_at = cmd.executed_at or cmd.at
            command.finish(cmd.status, executed_at, cmd.result, cmd.by, cmd.at)
        return self._saved(command)

    def command(self, device_id: UUID, command_id: UUID, access: DeviceAccess) -> Command:
        """A command of a device the caller may see; NotFound otherwise."""
        return self._command_of(device_id, command_id, access)

    def command_history(
        self, device_id: UUID, command_id: UUID, access: DeviceAccess
    ) -> Sequence[Aggregate.Event]:
        """Every event of a command, oldest first; also after its device was deleted."""
        self._ensure_visible(device_id, access)
        events = cast(list[Aggregate.Event], list(self.events.get(command_id)))
        if not events or not isinstance(events[0], Command.Issued):
            raise CommandNotFound()
        if events[0].device_id != device_id:
            raise CommandNotFound()
        return events

    def _command_of(
        self, device_id: UUID, command_id: UUID, access: DeviceAccess | None
    ) -> Command:
        if access is None:
            self.device_itself(device_id)
        else:
            self.device(device_id, access)
        command = self.load(Command, command_id, CommandNotFound)
        if command.device_id != device_id:
            raise CommandNotFound()
        return command

    def _ensure_visible(self, device_id: UUID, access: DeviceAccess) -> None:
        """The device was registered and the caller may see it (also once deleted; a claim
        moves it to its claimant's tenancy)."""
        events = cast(list[Aggregate.Event], list(self.events.get(device_id)))
        if not events or not isinstance(events[0], Device.Registered):
            raise DeviceNotFound()
        if not access.allows(owner_after(events), device_id):
            raise DeviceNotFound()

    def _saved(self, command: Command) -> Written:
        return Written(command.id, self.append(command, conflict="command changed concurrently"))
