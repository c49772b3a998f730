"""Devices and their components (sensors and actors), and who may see them.

A device is one aggregate and its sensors and actors live inside it, so the
device's own history shows them come, change, move and go, and a device
rebuilt as of a moment has the components it had then. A `ComponentClaim`
per component keeps component ids unique across the whole log and tells a
write that names only a sensor which device holds it, straight from the event
store.

Every event applies itself (`apply`); a command method guards, then triggers
one event. Sensors and actors are the same shape: one family of component
events serves both, and each kind gets its own event names
(`Device.SensorAdded`, `Device.ActorAdded`, ...) so that auditors read what
happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, NamedTuple, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from iotledger.domain.credentials import (
    ClaimRefused,
    CredentialKind,
    same_hash,
    username_of,
)
from iotledger.domain.errors import (
    ActorNotFound,
    Conflict,
    DeviceNotFound,
    HeldElsewhere,
    InvalidInput,
    NoCredentials,
    NotFound,
    SensorNotFound,
)
from iotledger.domain.vocabulary import DeviceStatus

NAME_MAX = 200
TEXT_MAX = 2000
INT32_MAX = 2**31 - 1
T = TypeVar("T")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
Label = Annotated[str, msgspec.Meta(max_length=NAME_MAX)]
Text = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)]
DataTypeId = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX)]
Metadata = dict[str, Any]


def caused_by_user(user_id: UUID) -> str:
    """The `by` of an event a signed-in user caused."""
    return f"user:{user_id}"


def caused_by_device(device_id: UUID) -> str:
    """The `by` of an event a device caused, over MQTT or signed in as itself."""
    return f"device:{device_id}"


class DeviceAccess(msgspec.Struct, frozen=True):
    """Whose devices a caller may see and change: the one tenancy rule.

    `user_id=None` is the shared fleet's view (the Lambda IoT Core dialect, MQTT):
    shared devices only. A signed-in user of the Device Telemetry dialect sees the
    shared fleet and their own private devices; anyone else's answer 404. A device
    signed in with its own credentials (`device_id`) speaks for itself alone,
    whoever owns it.
    """

    user_id: UUID | None = None
    device_id: UUID | None = None

    def allows(self, owner: UUID | None, device_id: UUID | None = None) -> bool:
        if self.device_id is not None:
            return device_id == self.device_id
        return owner is None or owner == self.user_id


FLEET = DeviceAccess()


def checked_name(name: str, what: str = "name") -> str:
    """Names are what people find things by: never blank, never a novel."""
    if not name.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"{what} must be at most {NAME_MAX} characters")
    return name


def checked_component(component: Component) -> Component:
    checked_name(component.name)
    if not 1 <= component.data_type_id <= INT32_MAX:
        raise InvalidInput(f"data_type_id must be between 1 and {INT32_MAX}")
    return component


class ComponentKind(StrEnum):
    SENSOR = "sensor"
    ACTOR = "actor"

    @property
    def not_found(self) -> type[NotFound]:
        """The error of a sensor, or an actor, that is not there."""
        return SensorNotFound if self is ComponentKind.SENSOR else ActorNotFound


class Component(msgspec.Struct, frozen=True):
    """A sensor or an actor as its device holds it."""

    kind: ComponentKind
    name: str
    component_type: str
    data_type_id: int


class DeviceChanges(msgspec.Struct, frozen=True):
    """What an update asks to change; None leaves a field as it is."""

    name: str | None = None
    device_type: str | None = None
    description: str | None = None
    location: str | None = None
    status: DeviceStatus | None = None
    metadata: Metadata | None = None


class ComponentChanges(msgspec.Struct, frozen=True):
    """What a component update asks to change; a device id moves it there."""

    name: str | None = None
    component_type: str | None = None
    data_type_id: int | None = None
    device_id: UUID | None = None

    def applied_to(self, component: Component) -> Component:
        return msgspec.structs.replace(
            component,
            name=_either(self.name, component.name),
            component_type=_either(self.component_type, component.component_type),
            data_type_id=_either(self.data_type_id, component.data_type_id),
        )


class ClaimOffer(msgspec.Struct, frozen=True):
    """What a device offered to be claimed with: a secret's hash, until when."""

    secret_hash: str
    expires_at: datetime


CLAIM_DURATION_MAX = timedelta(days=7)


class Device(Aggregate):
    """A device of the shared fleet (owner None) or of one user alone."""

    owner: UUID | None
    name: str
    device_type: str
    description: str
    location: str
    status: DeviceStatus
    metadata: Metadata
    components: dict[UUID, Component]
    deleted: bool
    secret_hash: str | None
    claim_offer: ClaimOffer | None

    def __init__(self) -> None:
        """The blank that `Registered` fills in; every state comes from events."""
        self.components = {}
        self.deleted = False
        self.secret_hash = None
        self.claim_offer = None

    class Registered(Aggregate.Created):
        owner: UUID | None
        name: str
        device_type: str
        description: str
        location: str
        status: DeviceStatus
        metadata: Metadata
        by: str

        def apply(self, device: Device) -> None:
            device.owner = self.owner
            device.name = self.name
            device.device_type = self.device_type
            device.description = self.description
            device.location = self.location
            device.status = self.status
            device.metadata = self.metadata

    class Renamed(Aggregate.Event):
        name: str
        by: str

        def apply(self, device: Device) -> None:
            device.name = self.name

    class Updated(Aggregate.Event):
        """The descriptive fields other than the name changed."""

        device_type: str
        description: str
        location: str
        by: str

        def apply(self, device: Device) -> None:
            device.device_type = self.device_type
            device.description = self.description
            device.location = self.location

    class MetadataReplaced(Aggregate.Event):
        metadata: Metadata
        by: str

        def apply(self, device: Device) -> None:
            device.metadata = self.metadata

    class StatusChanged(Aggregate.Event):
        status: DeviceStatus
        by: str

        def apply(self, device: Device) -> None:
            device.status = self.status

    class Deleted(Aggregate.Event):
        by: str

        def apply(self, device: Device) -> None:
            device.deleted = True

    class CredentialsIssued(Aggregate.Event):
        """The device got a username and secret (only the secret's hash is here)."""

        username: str
        secret_hash: str
        by: str

        def apply(self, device: Device) -> None:
            device.secret_hash = self.secret_hash

    class CredentialsRotated(CredentialsIssued):
        """A new secret replaced the old one, which no longer works."""

    class CredentialsRevoked(Aggregate.Event):
        username: str
        by: str

        def apply(self, device: Device) -> None:
            device.secret_hash = None

    class ClaimOffered(Aggregate.Event):
        """The device may be claimed by whoever shows this secret before it expires."""

        secret_hash: str
        expires_at: datetime
        by: str

        def apply(self, device: Device) -> None:
            device.claim_offer = ClaimOffer(self.secret_hash, self.expires_at)

    class Claimed(Aggregate.Event):
        """The device left the shared fleet (or its owner) for `owner`'s tenancy."""

        owner: UUID
        previous_owner: UUID | None
        by: str

        def apply(self, device: Device) -> None:
            device.owner = self.owner
            device.claim_offer = None

    class ComponentEvent(Aggregate.Event):
        """Base of the component events; `kind` is fixed by each concrete class."""

        kind: ClassVar[ComponentKind]
        component_id: UUID
        by: str

    class ComponentPut(ComponentEvent):
        """Base of the events after which the device holds the component as given."""

        name: str
        component_type: str
        data_type_id: int

        def apply(self, device: Device) -> None:
            device.components[self.component_id] = Component(
                self.kind, self.name, self.component_type, self.data_type_id
            )

    class ComponentDropped(ComponentEvent):
        """Base of the events after which the device no longer holds the component."""

        def apply(self, device: Device) -> None:
            del device.components[self.component_id]

    class ComponentAdded(ComponentPut):
        pass

    class ComponentUpdated(ComponentPut):
        pass

    class ComponentMovedIn(ComponentPut):
        from_device_id: UUID

    class ComponentMovedOut(ComponentDropped):
        to_device_id: UUID

    class ComponentRemoved(ComponentDropped):
        pass

    class SensorAdded(ComponentAdded):
        kind = ComponentKind.SENSOR

    class SensorUpdated(ComponentUpdated):
        kind = ComponentKind.SENSOR

    class SensorMovedIn(ComponentMovedIn):
        kind = ComponentKind.SENSOR

    class SensorMovedOut(ComponentMovedOut):
        kind = ComponentKind.SENSOR

    class SensorRemoved(ComponentRemoved):
        kind = ComponentKind.SENSOR

    class ActorAdded(ComponentAdded):
        kind = ComponentKind.ACTOR

    class ActorUpdated(ComponentUpdated):
        kind = ComponentKind.ACTOR

    class ActorMovedIn(ComponentMovedIn):
        kind = ComponentKind.ACTOR

    class ActorMovedOut(ComponentMovedOut):
        kind = ComponentKind.ACTOR

    class ActorRemoved(ComponentRemoved):
        kind = ComponentKind.ACTOR

    @classmethod
    def register(
        cls,
        *,
        device_id: UUID,
        owner: UUID | None,
        name: str,
        device_type: str,
        description: str,
        location: str,
        status: DeviceStatus,
        metadata: Metadata,
        by: str,
        at: datetime,
    ) -> Device:
        return cls._create(
            cls.Registered,
            id=device_id,
            owner=owner,
            name=checked_name(name),
            device_type=device_type,
            description=description,
            location=location,
            status=status,
            metadata=metadata,
            by=by,
            timestamp=at,
        )

    def revise(self, changes: DeviceChanges, by: str, at: datetime) -> None:
        """One event per kind of fact that really changes; none for a no-op."""
        self.ensure_exists()
        if changes.name is not None and checked_name(changes.name) != self.name:
            self._trigger(self.Renamed, at, name=changes.name, by=by)
        details = {
            "device_type": _either(changes.device_type, self.device_type),
            "description": _either(changes.description, self.description),
            "location": _either(changes.location, self.location),
        }
        if details != {key: getattr(self, key) for key in details}:
            self._trigger(self.Updated, at, by=by, **details)
        if changes.metadata is not None and changes.metadata != self.metadata:
            self._trigger(self.MetadataReplaced, at, metadata=changes.metadata, by=by)
        if changes.status is not None and changes.status != self.status:
            self._trigger(self.StatusChanged, at, status=changes.status, by=by)

    def delete(self, by: str, at: datetime) -> list[UUID]:
        """Delete the device, removing its components and credentials first; their ids."""
        self.ensure_exists()
        removed = list(self.components.items())
        for component_id, component in removed:
            self.remove_component(component.kind, component_id, by, at)
        if self.secret_hash is not None:
            self.revoke_credentials(by, at)
        self._trigger(self.Deleted, at, by=by)
        return [component_id for component_id, _ in removed]

    @property
    def username(self) -> str:
        return username_of(CredentialKind.DEVICE, self.id)

    def issue_credentials(self, secret_hash: str, by: str, at: datetime) -> None:
        """Issue the device's secret; a second issue rotates it (the old one stops working)."""
        self.ensure_exists()
        issued = self.CredentialsIssued if self.secret_hash is None else self.CredentialsRotated
        self._trigger(issued, at, username=self.username, secret_hash=secret_hash, by=by)

    def revoke_credentials(self, by: str, at: datetime) -> None:
        self.ensure_exists()
        if self.secret_hash is None:
            raise NoCredentials()
        self._trigger(self.CredentialsRevoked, at, username=self.username, by=by)

    def offer_claim(self, secret_hash: str, duration: timedelta, by: str, at: datetime) -> None:
        self.ensure_exists()
        if not timedelta(0) < duration <= CLAIM_DURATION_MAX:
            raise InvalidInput(f"a claim lasts more than 0 and at most {CLAIM_DURATION_MAX}")
        expires_at = at + duration
        self._trigger(self.ClaimOffered, at, secret_hash=secret_hash, expires_at=expires_at, by=by)

    def claim(self, owner: UUID, secret_hash: str, by: str, at: datetime) -> None:
        """`owner` takes the device, if the secret is the offered one and still valid."""
        self.ensure_exists()
        offer = self.claim_offer
        if offer is None or at >= offer.expires_at or not same_hash(offer.secret_hash, secret_hash):
            raise ClaimRefused("wrong or expired claim secret")
        self._trigger(self.Claimed, at, owner=owner, previous_owner=self.owner, by=by)

    def component(self, kind: ComponentKind, component_id: UUID) -> Component:
        found = self.components.get(component_id)
        if found is None or found.kind is not kind:
            raise kind.not_found()
        return found

    def add_component(
        self, component_id: UUID, component: Component, by: str, at: datetime
    ) -> None:
        self.ensure_exists()
        if component_id in self.components:
            raise Conflict(f"{component.kind} already exists")
        self._put(_EVENTS[component.kind].added, component_id, checked_component(component), by, at)

    def update_component(
        self,
        kind: ComponentKind,
        component_id: UUID,
        changes: ComponentChanges,
        by: str,
        at: datetime,
    ) -> None:
        current = self.component(kind, component_id)
        revised = checked_component(changes.applied_to(current))
        if revised != current:
            self._put(_EVENTS[kind].updated, component_id, revised, by, at)

    def move_component(
        self, kind: ComponentKind, component_id: UUID, target: Device, by: str, at: datetime
    ) -> None:
        """Hand a component to another device: both devices record the move."""
        component = self.component(kind, component_id)
        target.ensure_exists()
        if target.id == self.id:
            return
        events = _EVENTS[kind]
        self._trigger(
            events.moved_out, at, component_id=component_id, to_device_id=target.id, by=by
        )
        target._put(events.moved_in, component_id, component, by, at, from_device_id=self.id)

    def remove_component(
        self, kind: ComponentKind, component_id: UUID, by: str, at: datetime
    ) -> None:
        self.component(kind, component_id)
        self._trigger(_EVENTS[kind].removed, at, component_id=component_id, by=by)

    def ensure_exists(self) -> None:
        """A deleted device keeps its history but takes no more commands."""
        if self.deleted:
            raise DeviceNotFound()

    def _put(
        self,
        event_class: type[Device.ComponentPut],
        component_id: UUID,
        component: Component,
        by: str,
        at: datetime,
        **extra: Any,
    ) -> None:
        self._trigger(
            event_class,
            at,
            component_id=component_id,
            name=component.name,
            component_type=component.component_type,
            data_type_id=component.data_type_id,
            by=by,
            **extra,
        )

    def _trigger(self, event_class: type[Aggregate.Event], at: datetime, **fields: Any) -> None:
        """Trigger an event; its time never runs backwards within one device."""
        self.trigger_event(event_class, timestamp=max(at, self.modified_on), **fields)


def _either(value: T | None, current: T) -> T:
    return current if value is None else value


class ComponentEvents(NamedTuple):
    """The concrete events of one kind of component."""

    added: type[Device.ComponentAdded]
    updated: type[Device.ComponentUpdated]
    moved_in: type[Device.ComponentMovedIn]
    moved_out: type[Device.ComponentMovedOut]
    removed: type[Device.ComponentRemoved]


_EVENTS = {
    ComponentKind.SENSOR: ComponentEvents(
        Device.SensorAdded,
        Device.SensorUpdated,
        Device.SensorMovedIn,
        Device.SensorMovedOut,
        Device.SensorRemoved,
    ),
    ComponentKind.ACTOR: ComponentEvents(
        Device.ActorAdded,
        Device.ActorUpdated,
        Device.ActorMovedIn,
        Device.ActorMovedOut,
        Device.ActorRemoved,
    ),
}

DEVICE_EVENTS: tuple[type[Aggregate.Event], ...] = (
    Device.Registered,
    Device.Renamed,
    Device.Updated,
    Device.MetadataReplaced,
    Device.StatusChanged,
    Device.Deleted,
    Device.Claimed,
    *(event for events in _EVENTS.values() for event in events),
)
"""Every concrete event a device records, for the projections that read them."""


class ComponentClaim(Aggregate):
    """Holds one sensor or actor id for the device that has it.

    Its id is the component's id, so no two components (nor a component and any
    other aggregate) ever share an id: the second claim's first event collides
    with the first in the event store and the whole append fails. A released
    claim can be claimed again (a sensor removed, then rediscovered over MQTT).
    """

    kind: ComponentKind
    device_id: UUID | None

    def __init__(self) -> None:
        """The blank that `Claimed` fills in."""
        self.device_id = None

    class Claimed(Aggregate.Created):
        kind: ComponentKind
        device_id: UUID

        def apply(self, claim: ComponentClaim) -> None:
            claim.kind = self.kind
            claim.device_id = self.device_id

    class Reclaimed(Aggregate.Event):
        kind: ComponentKind
        device_id: UUID

        def apply(self, claim: ComponentClaim) -> None:
            claim.kind = self.kind
            claim.device_id = self.device_id

    class Moved(Aggregate.Event):
        device_id: UUID

        def apply(self, claim: ComponentClaim) -> None:
            claim.device_id = self.device_id

    class Released(Aggregate.Event):
        def apply(self, claim: ComponentClaim) -> None:
            claim.device_id = None

    @classmethod
    def claim(
        cls, component_id: UUID, kind: ComponentKind, device_id: UUID, at: datetime
    ) -> ComponentClaim:
        return cls._create(
            cls.Claimed, id=component_id, kind=kind, device_id=device_id, timestamp=at
        )

    def reclaim(self, kind: ComponentKind, device_id: UUID, at: datetime) -> None:
        if self.device_id is not None:
            raise HeldElsewhere(f"{kind} already exists", "component")
        self.trigger_event(self.Reclaimed, kind=kind, device_id=device_id, timestamp=at)

    def holder(self, kind: ComponentKind) -> UUID:
        """The device that holds this component; NotFound if released or of another kind."""
        if self.device_id is None or self.kind is not kind:
            raise kind.not_found()
        return self.device_id

    def move(self, device_id: UUID, at: datetime) -> None:
        if device_id != self.device_id:
            self.trigger_event(self.Moved, device_id=device_id, timestamp=at)

    def release(self, at: datetime) -> None:
        self.trigger_event(self.Released, timestamp=at)
