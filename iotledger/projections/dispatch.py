"""The dispatch policy's memory: which commands still await their device, and who is online.

Commands to a device's own topic are sent by the dispatcher (an adapter of the
`mqtt` role) when their device is online. What it must send is derived from
the events alone, by this projection, with its own tracking position: a
command joins the queue when issued, is marked when dispatched, and leaves it
when the device acknowledges or ends it, or when it expires or is cancelled. A
device is online while its status is ok; `online_seq` is the log position at
which it last came online.

A queued command is due when its device is online and it was never sent, or
was last sent before the device last came online (it may not have got it). So
a restart of any process neither loses nor forgets a command, and a device may
see a command twice: it recognises it by its id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from iotledger.domain.commands import COMMAND_EVENTS, Command, Delivery
from iotledger.domain.devices import Device
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.projections.base import Positioned, Projection, topics_of


class QueuedCommand(msgspec.Struct, frozen=True):
    """A command as the dispatcher sends it (the device topic's message fields)."""

    id: UUID
    device_id: UUID
    command_name: str
    payload: dict[str, Any]
    issued_at: datetime
    expires_at: datetime | None = None


class DispatchRows(ABC):
    """What the dispatch projection writes, inside one unit of work.

    `position` is the log position of the event being applied.
    """

    position: int = 0

    @abstractmethod
    def device_status(self, device_id: UUID, online: bool) -> None:
        """Record whether a device is online; coming online records `position`."""

    @abstractmethod
    def forget_device(self, device_id: UUID) -> None:
        """A deleted device: nothing will ever be sent to it."""

    @abstractmethod
    def enqueue(self, command: QueuedCommand) -> None: ...

    @abstractmethod
    def dispatched(self, command_id: UUID) -> None:
        """The command was sent at `position`."""

    @abstractmethod
    def dequeue(self, command_id: UUID) -> None: ...


def online(status: DeviceStatus) -> bool:
    return status == DeviceStatus.OK


class DispatchProjection(Projection[DispatchRows]):
    name = "dispatch"
    topics = topics_of(Device.Registered, Device.StatusChanged, Device.Deleted, *COMMAND_EVENTS)

    def process_batch(self, batch: Sequence[Positioned], work: DispatchRows) -> None:
        for position, event in batch:
            work.position = position
            self.apply(event, work)

    @singledispatchmethod
    def apply(self, event: Any, work: DispatchRows) -> None:
        """Events of other topics are not ours."""

    @apply.register
    def _(self, event: Device.Registered | Device.StatusChanged, work: DispatchRows) -> None:
        work.device_status(event.originator_id, online(event.status))

    @apply.register
    def _(self, event: Device.Deleted, work: DispatchRows) -> None:
        work.forget_device(event.originator_id)

    @apply.register
    def _(self, event: Command.Issued, work: DispatchRows) -> None:
        if event.delivery == Delivery.DEVICE:
            work.enqueue(
                QueuedCommand(
                    id=event.originator_id,
                    device_id=event.device_id,
                    command_name=event.command_name,
                    payload=event.payload,
                    issued_at=event.timestamp,
                    expires_at=event.expires_at,
                )
            )

    @apply.register
    def _(self, event: Command.Dispatched, work: DispatchRows) -> None:
        work.dispatched(event.originator_id)

    @apply.register
    def _(self, event: Command.Moved, work: DispatchRows) -> None:
        """Acknowledged, ended, expired or cancelled: nothing more to send."""
        work.dequeue(event.originator_id)
