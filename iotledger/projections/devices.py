"""The devices read model: the list and detail views of both dialects.

One row per live device and one per live sensor or actor. Each row keeps the
log position of the event that created it (`seq`), the stable order that list
cursors walk: rows added during a walk only ever come after it. Deleted
devices and removed components leave the read model; their history stays in
the event store, where the auditors' endpoints read it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from iotledger.domain.devices import DEVICE_EVENTS, ComponentKind, Device, Metadata
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.projections.base import Positioned, Projection, topics_of


class DeviceSummary(msgspec.Struct, frozen=True):
    id: UUID
    owner: UUID | None
    name: str
    device_type: str
    description: str
    location: str
    status: DeviceStatus
    metadata: Metadata
    created_at: datetime
    updated_at: datetime


class ComponentSummary(msgspec.Struct, frozen=True):
    id: UUID
    kind: ComponentKind
    device_id: UUID
    name: str
    component_type: str
    data_type_id: int
    created_at: datetime
    updated_at: datetime


class DeviceRows(ABC):
    """What the devices projection writes, inside one unit of work.

    `position` is the log position of the event being applied; new rows keep it.
    `change_*` set the named columns (names from the projection, never input).
    """

    position: int = 0

    @abstractmethod
    def add_device(self, device: DeviceSummary) -> None: ...

    @abstractmethod
    def change_device(self, device_id: UUID, at: datetime, columns: dict[str, Any]) -> None: ...

    @abstractmethod
    def remove_device(self, device_id: UUID) -> None: ...

    @abstractmethod
    def add_component(self, component: ComponentSummary) -> None: ...

    @abstractmethod
    def change_component(
        self, component_id: UUID, at: datetime, columns: dict[str, Any]
    ) -> None: ...

    @abstractmethod
    def remove_component(self, component_id: UUID) -> None: ...


def component_columns(event: Device.ComponentPut) -> dict[str, Any]:
    return {
        "name": event.name,
        "component_type": event.component_type,
        "data_type_id": event.data_type_id,
    }


class DeviceProjection(Projection[DeviceRows]):
    name = "devices"
    topics = topics_of(*DEVICE_EVENTS)

    def process_batch(self, batch: Sequence[Positioned], work: DeviceRows) -> None:
        for position, event in batch:
            work.position = position
            self.apply(event, work)

    @singledispatchmethod
    def apply(self, event: Any, work: DeviceRows) -> None:
        """Events of other topics are not ours."""

    @apply.register
    def _(self, event: Device.Registered, work: DeviceRows) -> None:
        work.add_device(
            DeviceSummary(
                id=event.originator_id,
                owner=event.owner,
                name=event.name,
                device_type=event.device_type,
                description=event.description,
                location=event.location,
                status=event.status,
                metadata=event.metadata,
                created_at=event.timestamp,
                updated_at=event.timestamp,
            )
        )

    @apply.register
    def _(self, event: Device.Renamed, work: DeviceRows) -> None:
        work.change_device(event.originator_id, event.timestamp, {"name": event.name})

    @apply.register
    def _(self, event: Device.Updated, work: DeviceRows) -> None:
        columns = {
            "device_type": event.device_type,
            "description": event.description,
            "location": event.location,
        }
        work.change_device(event.originator_id, event.timestamp, columns)

    @apply.register
    def _(self, event: Device.MetadataReplaced, work: DeviceRows) -> None:
        work.change_device(event.originator_id, event.timestamp, {"metadata": event.metadata})

    @apply.register
    def _(self, event: Device.StatusChanged, work: DeviceRows) -> None:
        work.change_device(event.originator_id, event.timestamp, {"status": event.status})

    @apply.register
    def _(self, event: Device.Claimed, work: DeviceRows) -> None:
        work.change_device(event.originator_id, event.timestamp, {"owner": event.owner})

    @apply.register
    def _(self, event: Device.Deleted, work: DeviceRows) -> None:
        work.remove_device(event.originator_id)

    @apply.register
    def _(self, event: Device.ComponentAdded, work: DeviceRows) -> None:
        work.add_component(
            ComponentSummary(
                id=event.component_id,
                kind=event.kind,
                device_id=event.originator_id,
                name=event.name,
                component_type=event.component_type,
                data_type_id=event.data_type_id,
                created_at=event.timestamp,
                updated_at=event.timestamp,
            )
        )

    @apply.register
    def _(self, event: Device.ComponentUpdated, work: DeviceRows) -> None:
        work.change_component(event.component_id, event.timestamp, component_columns(event))

    @apply.register
    def _(self, event: Device.ComponentMovedIn, work: DeviceRows) -> None:
        """The row moves with the component and keeps its place in the list."""
        columns = {"device_id": event.originator_id, **component_columns(event)}
        work.change_component(event.component_id, event.timestamp, columns)

    @apply.register
    def _(self, event: Device.ComponentRemoved, work: DeviceRows) -> None:
        work.remove_component(event.component_id)
