"""Commands and queries about devices, their sensors and actors, and their past.

Every command names the `DeviceAccess` it acts with, so the tenancy rule is
checked here, on the aggregates, whichever edge (HTTP dialect, MQTT) sent it:
a device the caller may not see is NotFound, as if it did not exist.

For MQTT discovery, everything takes given ids: `register_device` with the
device's own id, `add_component` with the component's own id (a released id
is claimed again; one held elsewhere is a Conflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from iotledger.application.service import LedgerService, Written
from iotledger.domain.devices import (
    Component,
    ComponentChanges,
    ComponentClaim,
    ComponentKind,
    Device,
    DeviceAccess,
    DeviceChanges,
    Metadata,
)
from iotledger.domain.errors import Conflict, DeviceNotFound
from iotledger.domain.vocabulary import DeviceStatus

Event = Aggregate.Event


class RegisterDevice(msgspec.Struct, frozen=True):
    device_id: UUID
    owner: UUID | None
    name: str
    status: DeviceStatus
    by: str
    at: datetime
    device_type: str = ""
    description: str = ""
    location: str = ""
    metadata: Metadata = msgspec.field(default_factory=dict)


class UpdateDevice(msgspec.Struct, frozen=True):
    device_id: UUID
    access: DeviceAccess
    changes: DeviceChanges
    by: str
    at: datetime


class DeleteDevice(msgspec.Struct, frozen=True):
    device_id: UUID
    access: DeviceAccess
    by: str
    at: datetime


class AddComponent(msgspec.Struct, frozen=True):
    component_id: UUID
    device_id: UUID
    access: DeviceAccess
    component: Component
    by: str
    at: datetime


class UpdateComponent(msgspec.Struct, frozen=True):
    kind: ComponentKind
    component_id: UUID
    access: DeviceAccess
    changes: ComponentChanges
    by: str
    at: datetime


class RemoveComponent(msgspec.Struct, frozen=True):
    kind: ComponentKind
    component_id: UUID
    access: DeviceAccess
    by: str
    at: datetime


class DeviceService(LedgerService):
    def register_device(self, cmd: RegisterDevice) -> Written:
        device = Device.register(
            device_id=cmd.device_id,
            owner=cmd.owner,
            name=cmd.name,
            device_type=cmd.device_type,
            description=cmd.description,
            location=cmd.location,
            status=cmd.status,
            metadata=cmd.metadata,
            by=cmd.by,
            at=cmd.at,
        )
        return Written(device.id, self.append(device, conflict="device already exists"))

    def update_device(self, cmd: UpdateDevice) -> Written:
        device = self.device(cmd.device_id, cmd.access)
        device.revise(cmd.changes, cmd.by, cmd.at)
        return Written(device.id, self.append(device, conflict="device changed concurrently"))

    def delete_device(self, cmd: DeleteDevice) -> Written:
        """Delete a device; its sensors and actors are removed with it, as events."""
        device = self.device(cmd.device_id, cmd.access)
        claims = [self._claim(c.kind, c_id) for c_id, c in device.components.items()]
        device.delete(cmd.by, cmd.at)
        for claim in claims:
            claim.release(cmd.at)
        position = self.append(device, *claims, conflict="device changed concurrently")
        return Written(device.id, position)

    def add_component(self, cmd: AddComponent) -> Written:
        kind = cmd.component.kind
        device = self.device(cmd.device_id, cmd.access)
        claim = self._new_claim(cmd.component_id, kind, device.id, cmd.at)
        device.add_component(cmd.component_id, cmd.component, cmd.by, cmd.at)
        position = self.append(device, claim, conflict=f"{kind} already exists")
        return Written(cmd.component_id, position)

    def update_component(self, cmd: UpdateComponent) -> Written:
        """Change a component's fields, and move it when the changes name another device."""
        claim = self._claim(cmd.kind, cmd.component_id)
        device = self.device(claim.holder(cmd.kind), cmd.access)
        device.update_component(cmd.kind, cmd.component_id, cmd.changes, cmd.by, cmd.at)
        changed: list[Any] = [device]
        target_id = cmd.changes.device_id
        if target_id is not None and target_id != device.id:
            target = self.device(target_id, cmd.access)
            device.move_component(cmd.kind, cmd.component_id, target, cmd.by, cmd.at)
            claim.move(target.id, cmd.at)
            changed += [target, claim]
        position = self.append(*changed, conflict=f"{cmd.kind} changed concurrently")
        return Written(cmd.component_id, position)

    def remove_component(self, cmd: RemoveComponent) -> Written:
        claim = self._claim(cmd.kind, cmd.component_id)
        device = self.device(claim.holder(cmd.kind), cmd.access)
        device.remove_component(cmd.kind, cmd.component_id, cmd.by, cmd.at)
        claim.release(cmd.at)
        position = self.append(device, claim, conflict=f"{cmd.kind} changed concurrently")
        return Written(cmd.component_id, position)

    def device(self, device_id: UUID, access: DeviceAccess) -> Device:
        """The device as it is now; NotFound if deleted or not the caller's to see."""
        device = self.load(Device, device_id, DeviceNotFound)
        if not access.allows(device.owner, device.id):
            raise DeviceNotFound()
        device.ensure_exists()
        return device

    def component(
        self, kind: ComponentKind, component_id: UUID, access: DeviceAccess
    ) -> tuple[Device, Component]:
        """A sensor or actor and the device that holds it, from the event store."""
        claim = self._claim(kind, component_id)
        device = self.device(claim.holder(kind), access)
        return device, device.component(kind, component_id)

    def device_history(
        self, device_id: UUID, access: DeviceAccess, after: int = 0, limit: int | None = None
    ) -> Sequence[Event]:
        """The events of a device after version `after` (at most `limit`), oldest first;
        also after it was deleted. Its first event says whose it is."""
        events = cast(list[Event], list(self.events.get(device_id, gt=after or None, limit=limit)))
        first = events[:1] if after == 0 else list(self.events.get(device_id, lte=1))
        if not first or not isinstance(first[0], Device.Registered):
            raise DeviceNotFound()
        if not access.allows(owner_after(events), device_id):
            raise DeviceNotFound()
        return events

    def device_as_of(self, device_id: UUID, access: DeviceAccess, moment: datetime) -> Device:
        """The device as it was at `moment`, rebuilt from its events alone."""
        device: Device | None = None
        for event in self.device_history(device_id, access):
            if event.timestamp > moment:
                break
            device = event.mutate(device)
        if device is None or device.deleted:
            raise DeviceNotFound()
        return device

    def _claim(self, kind: ComponentKind, component_id: UUID) -> ComponentClaim:
        return self.load(ComponentClaim, component_id, kind.not_found)

    def _new_claim(
        self, component_id: UUID, kind: ComponentKind, device_id: UUID, at: datetime
    ) -> ComponentClaim:
        """A claim on a fresh id, or on a released one; Conflict if the id is held."""
        try:
            found: Aggregate = self.repository.get(component_id)
        except AggregateNotFoundError:
            return ComponentClaim.claim(component_id, kind, device_id, at)
        if not isinstance(found, ComponentClaim):
            raise Conflict(f"{kind} already exists")
        found.reclaim(kind, device_id, at)
        return found


def owner_after(events: Sequence[Event]) -> UUID | None:
    """Whose the device is after these events: its registrant's, or its last claimant's."""
    owner: UUID | None = None
    for event in events:
        if isinstance(event, Device.Registered | Device.Claimed):
            owner = event.owner
    return owner
