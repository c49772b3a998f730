"""What devices change about themselves: discovery, their status, their MAC address.

Discovery (Lambda IoT Core, over MQTT) creates a device of the shared fleet
with the ids it announces, or brings an existing one up to date: status ok
whatever it says, and what the message mentions. A field or a list the message
leaves out stays as it is (a device that repeats only its id and name keeps its
sensors); a list that is present is the complete list of that kind (new ones
added with their ids, changed ones updated, the rest of that kind removed). All
of it is one append: the device, its component claims and its MAC claim change
together or not at all. A MAC address or a component id another device holds
refuses the whole message (`HeldElsewhere`), and nothing changes.

Status reports come from the device itself (its status topic, its will, a
device-check answer) or from the device checks. A device an administrator
disabled stays disabled whatever it says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from iotledger.application.devices import DeviceService
from iotledger.application.service import Written
from iotledger.domain.devices import (
    Component,
    ComponentChanges,
    ComponentClaim,
    ComponentKind,
    Device,
    DeviceAccess,
    DeviceChanges,
)
from iotledger.domain.discovery import MacAddressClaim, normalise_mac
from iotledger.domain.errors import DeviceNotFound, HeldElsewhere, InvalidInput, NotFound
from iotledger.domain.vocabulary import DeviceStatus

MAC_KEY = "mac_address"
"""Where a device's MAC address shows: its metadata, in both dialects."""


class AnnouncedComponent(msgspec.Struct, frozen=True):
    component_id: UUID
    component: Component


class DiscoverDevice(msgspec.Struct, frozen=True):
    """What a discovery message says; None (and a kind not in `listed`) leaves it as it is.

    `listed`: the kinds whose complete list the message gives; `components`
    holds the components of those kinds.
    """

    device_id: UUID
    by: str
    at: datetime
    name: str | None = None
    description: str | None = None
    location: str | None = None
    components: tuple[AnnouncedComponent, ...] = ()
    listed: frozenset[ComponentKind] = frozenset()
    mac_address: str | None = None


class ReportDeviceStatus(msgspec.Struct, frozen=True):
    """A device's status as it (or the device checks) reports it.

    `access` None: the device itself, on its own topic. `only_from`: change it
    only from that status (a message from a lost device brings it back).
    """

    device_id: UUID
    status: DeviceStatus
    by: str
    at: datetime
    access: DeviceAccess | None = None
    only_from: DeviceStatus | None = None


class DiscoveryService(DeviceService):
    def discover_device(self, cmd: DiscoverDevice) -> Written:
        announced = _announced(cmd.components)
        mac = None if cmd.mac_address is None else normalise_mac(cmd.mac_address)
        known = self._fleet_device(cmd.device_id)
        previous_mac = None if known is None else known.metadata.get(MAC_KEY)
        device = self._registered(cmd, mac) if known is None else self._revised(known, cmd, mac)
        claims = _Claims(self, device.id, cmd.at)
        self._sync_components(device, announced, cmd.listed, claims, by=cmd.by, at=cmd.at)
        macs = self._claim_mac(device.id, mac, previous_mac, cmd.at)
        changed = (device, *claims.changed(), *macs)
        position = self.append(*changed, conflict="device changed meanwhile")
        return Written(device.id, position)

    def report_device_status(self, cmd: ReportDeviceStatus) -> Written:
        """Record a status change; nothing when it changes nothing (position 0)."""
        if cmd.access is None:
            device = self.device_itself(cmd.device_id)
        else:
            device = self.device(cmd.device_id, cmd.access)
        unchanged = cmd.only_from is not None and device.status != cmd.only_from
        if device.status == DeviceStatus.DISABLED or unchanged:
            return Written(device.id, 0)
        device.revise(DeviceChanges(status=cmd.status), cmd.by, cmd.at)
        return Written(device.id, self.append(device, conflict="device changed meanwhile"))

    def device_itself(self, device_id: UUID) -> Device:
        """A live device of any owner: the one whose own topic a message came on."""
        device = self.load(Device, device_id, DeviceNotFound)
        device.ensure_exists()
        return device

    def _fleet_device(self, device_id: UUID) -> Device | None:
        """The shared-fleet device of that id; None if new; NotFound if private or deleted."""
        try:
            return self.device(device_id, DeviceAccess())
        except NotFound:
            if self._exists(device_id):
                raise  # a private device, or a deleted one: not the fleet's to rediscover
            return None

    @staticmethod
    def _registered(cmd: DiscoverDevice, mac: str | None) -> Device:
        if cmd.name is None:
            raise InvalidInput("a device announced for the first time needs a name")
        return Device.register(
            device_id=cmd.device_id,
            owner=None,
            name=cmd.name,
            device_type="",
            description=cmd.description or "",
            location=cmd.location or "",
            status=DeviceStatus.OK,
            metadata={} if mac is None else {MAC_KEY: mac},
            by=cmd.by,
            at=cmd.at,
        )

    @staticmethod
    def _revised(device: Device, cmd: DiscoverDevice, mac: str | None) -> Device:
        changes = DeviceChanges(
            name=cmd.name,
            description=cmd.description,
            location=cmd.location,
            status=DeviceStatus.OK,
            metadata=device.metadata if mac is None else {**device.metadata, MAC_KEY: mac},
        )
        device.revise(changes, cmd.by, cmd.at)
        return device

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(list(self.events.get(aggregate_id, lte=1)))

    @staticmethod
    def _sync_components(
        device: Device,
        announced: dict[UUID, Component],
        listed: frozenset[ComponentKind],
        claims: _Claims,
        *,
        by: str,
        at: datetime,
    ) -> None:
        """Remove what a listed kind no longer has (or what changed kind), then add or
        update the rest; a kind the message does not list is left alone."""
        for component_id, current in list(device.components.items()):
            wanted = announced.get(component_id)
            gone = wanted is None and current.kind in listed
            if gone or (wanted is not None and wanted.kind != current.kind):
                device.remove_component(current.kind, component_id, by, at)
                claims.release(component_id, current.kind)
        for component_id, component in announced.items():
            held = device.components.get(component_id)
            if held is None:
                claims.take(component_id, component.kind)
                device.add_component(component_id, component, by, at)
            elif held != component:
                changes = ComponentChanges(
                    name=component.name,
                    component_type=component.component_type,
                    data_type_id=component.data_type_id,
                )
                device.update_component(component.kind, component_id, changes, by, at)

    def _claim_mac(
        self, device_id: UUID, mac: str | None, previous: Any, at: datetime
    ) -> list[MacAddressClaim]:
        """The MAC claims this discovery changes: the new address taken, an old one freed."""
        if mac is None:
            return []
        try:
            claim = self.load(MacAddressClaim, MacAddressClaim.id_for(mac))
        except NotFound:
            claim = MacAddressClaim.claim(mac, device_id, at)
        else:
            claim.take(device_id, self._gone(claim.device_id), at)
        if not isinstance(previous, str) or previous == mac:
            return [claim]
        try:
            old = self.load(MacAddressClaim, MacAddressClaim.id_for(previous))
        except (NotFound, InvalidInput):
            return [claim]
        old.release(at)
        return [claim, old]

    def _gone(self, device_id: UUID | None) -> bool:
        """True when no live device holds what `device_id` held."""
        if device_id is None:
            return True
        try:
            self.device_itself(device_id)
        except NotFound:
            return True
        return False


def _announced(components: tuple[AnnouncedComponent, ...]) -> dict[UUID, Component]:
    announced: dict[UUID, Component] = {}
    for item in components:
        if item.component_id in announced:
            raise InvalidInput(f"component {item.component_id} is announced twice")
        announced[item.component_id] = item.component
    return announced


class _Claims:
    """The component claims one discovery touches, each loaded once."""

    def __init__(self, service: DiscoveryService, device_id: UUID, at: datetime) -> None:
        self._service = service
        self._device_id = device_id
        self._at = at
        self._claims: dict[UUID, ComponentClaim] = {}

    def release(self, component_id: UUID, kind: ComponentKind) -> None:
        claim = self._get(component_id, kind)
        if claim is not None:
            claim.release(self._at)

    def take(self, component_id: UUID, kind: ComponentKind) -> None:
        """A claim on a fresh or released id; HeldElsewhere if another device holds it."""
        claim = self._get(component_id, kind)
        if claim is None:
            claim = ComponentClaim.claim(component_id, kind, self._device_id, self._at)
            self._claims[component_id] = claim
        else:
            claim.reclaim(kind, self._device_id, self._at)

    def changed(self) -> list[ComponentClaim]:
        return list(self._claims.values())

    def _get(self, component_id: UUID, kind: ComponentKind) -> ComponentClaim | None:
        if component_id not in self._claims:
            try:
                found: Aggregate = self._service.repository.get(component_id)
            except AggregateNotFoundError:
                return None
            if not isinstance(found, ComponentClaim):
                raise HeldElsewhere(
                    f"{kind} id {component_id} is already another thing's id", "component"
                )
            self._claims[component_id] = found
        return self._claims[component_id]
