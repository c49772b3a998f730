"""What the event-driven policies (`dispatcher`, `device_checks`) need of the world.

The policies decide: which command goes out, which device is lost. What they read
(the dispatch queue, the fleet, when each device was last heard from) and how a
message reaches a device are ports, so that a policy names no table and no broker:
`adapters.postgres.views` implements the readers, `adapters.mqtt.sender` the
`Sender`, and `bootstrap` hands them over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from iotledger.domain.errors import Unavailable
from iotledger.projections.devices import DeviceSummary
from iotledger.projections.dispatch import QueuedCommand


class Unreachable(Unavailable):
    """The message did not reach the way to the device (the broker is away or did not
    acknowledge): the policy stops its round and tries again at the next one."""


class Sender(Protocol):
    async def to_device(self, device_id: UUID, payload: bytes) -> None:
        """To the device's own command channel; `Unreachable` if it could not go."""

    async def to_fleet(self, payload: bytes) -> None:
        """To every device of the shared fleet at once; `Unreachable` if it could not go."""


class Due(msgspec.Struct, frozen=True):
    """A command to send now, and the moment (log position) its device came online."""

    command: QueuedCommand
    online_seq: int


class DispatchQueue(Protocol):
    """The dispatch projection's view, as the dispatcher reads it."""

    def due(self, now: datetime) -> list[Due]:
        """Commands to send now, oldest first: see `iotledger.projections.dispatch`."""

    def expired(self, now: datetime) -> list[UUID]:
        """Commands never sent whose time to live has passed at `now`."""


class Fleet(Protocol):
    def fleet(self, limit: int | None, offset: int) -> list[DeviceSummary]:
        """A page of the shared fleet's devices, in a stable order."""


class LastHeard(Protocol):
    def last_heard(self, device_ids: Iterable[UUID]) -> dict[UUID, datetime]:
        """When each device was last heard from (any message); absent: never."""
