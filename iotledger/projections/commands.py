"""The commands read model: every command of a device, as the Device Telemetry dialect lists it.

One row per command, in the order commands were issued (`seq`, the log position
of `Command.Issued`: the stable key list cursors walk). A row carries the
command's current status and, once the device reported it, its time and result
(or why it ended without the device: expired, cancelled);
the full story stays in the event store, where the auditors' endpoint reads it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from iotledger.domain.commands import (
    COMMAND_EVENTS,
    EXPIRED_REASON,
    Command,
    CommandStatus,
    Delivery,
)
from iotledger.projections.base import Nowhere, Positioned, Projection, topics_of


class CommandSummary(msgspec.Struct, frozen=True):
    id: UUID
    device_id: UUID
    command_name: str
    payload: dict[str, Any]
    delivery: Delivery
    status: CommandStatus
    issued_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    attempts: int = 0
    executed_at: datetime | None = None
    result: Any = None
    reason: str | None = None
    """Why a command ended without its device: expired, or cancelled."""


class CommandRows(ABC):
    """What the commands projection writes, inside one unit of work.

    `position` is the log position of the event being applied; a new row keeps it.
    """

    position: int = 0

    @abstractmethod
    def add(self, command: CommandSummary) -> None: ...

    @abstractmethod
    def change(self, command_id: UUID, at: datetime, columns: dict[str, Any]) -> None:
        """Set the named columns (names from the projection, never input)."""


class CommandProjection(Projection[CommandRows]):
    name = "commands"
    topics = topics_of(*COMMAND_EVENTS)

    def process_batch(self, batch: Sequence[Positioned], work: CommandRows) -> None:
        for position, event in batch:
            work.position = position
            self.apply(event, work)

    @singledispatchmethod
    def apply(self, event: Any, work: CommandRows) -> None:
        """Events of other topics are not ours."""

    @apply.register
    def _(self, event: Command.Issued, work: CommandRows) -> None:
        work.add(
            CommandSummary(
                id=event.originator_id,
                device_id=event.device_id,
                command_name=event.command_name,
                payload=event.payload,
                delivery=event.delivery,
                status=CommandStatus.PENDING,
                issued_at=event.timestamp,
                updated_at=event.timestamp,
                expires_at=event.expires_at,
            )
        )

    @apply.register
    def _(self, event: Command.Moved, work: CommandRows) -> None:
        work.change(event.originator_id, event.timestamp, {"status": event.reaches})

    @apply.register
    def _(self, event: Command.Dispatched, work: CommandRows) -> None:
        columns = {"status": event.reaches, "attempts": event.attempt}
        work.change(event.originator_id, event.timestamp, columns)

    @apply.register
    def _(self, event: Command.Finished, work: CommandRows) -> None:
        columns = {
            "status": event.reaches,
            "executed_at": event.executed_at,
            "result": event.result,
        }
        work.change(event.originator_id, event.timestamp, columns)

    @apply.register
    def _(self, event: Command.Expired, work: CommandRows) -> None:
        columns = {"status": event.reaches, "reason": EXPIRED_REASON}
        work.change(event.originator_id, event.timestamp, columns)

    @apply.register
    def _(self, event: Command.Cancelled, work: CommandRows) -> None:
        columns = {"status": event.reaches, "reason": event.reason}
        work.change(event.originator_id, event.timestamp, columns)


class _OneCommand(CommandRows):
    def __init__(self) -> None:
        self.summary: CommandSummary | None = None

    def add(self, command: CommandSummary) -> None:
        self.summary = command

    def change(self, command_id: UUID, at: datetime, columns: dict[str, Any]) -> None:
        if self.summary is not None:
            self.summary = msgspec.structs.replace(self.summary, updated_at=at, **columns)


def command_after(events: Iterable[Any]) -> CommandSummary | None:
    """The row of one command after these events of its life, folded in memory by the
    projection itself: the command as the read model held it right after the last one."""
    row = _OneCommand()
    projection = CommandProjection(Nowhere())
    for event in events:
        projection.apply(event, row)
    return row.summary
