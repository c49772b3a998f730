"""Devices, their components and the vocabulary map, in memory (no database)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from iotledger.application.devices import (
    AddComponent,
    DeleteDevice,
    DeviceService,
    RegisterDevice,
    RemoveComponent,
    UpdateComponent,
    UpdateDevice,
)
from iotledger.domain.devices import (
    FLEET,
    Component,
    ComponentChanges,
    ComponentKind,
    Device,
    DeviceAccess,
    DeviceChanges,
)
from iotledger.domain.errors import Conflict, InvalidInput, NotFound
from iotledger.domain.vocabulary import (
    DeviceStatus,
    TelemetryStatus,
    from_check_word,
    from_status_id,
    from_telemetry_status,
    status_id,
    telemetry_status,
)
from tests.support.domain import MSGSPEC_STORE, START


class Registry(DeviceService):
    """The device service alone, on the in-memory store with the real msgspec mapping."""

    name = "registry-test"


def registry() -> Registry:
    return Registry(env=MSGSPEC_STORE)


text = st.text(st.characters(codec="utf-8"), max_size=20)
names = text.filter(lambda s: s.strip() != "")
statuses = st.sampled_from(DeviceStatus)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
metadata = st.dictionaries(text, json_values, max_size=4)
kinds = st.sampled_from(ComponentKind)
components = st.builds(Component, kinds, names, text, st.integers(1, 2**31 - 1))
device_changes = st.builds(
    DeviceChanges,
    name=st.none() | names,
    device_type=st.none() | text,
    description=st.none() | text,
    location=st.none() | text,
    status=st.none() | statuses,
    metadata=st.none() | metadata,
)
component_changes = st.builds(
    ComponentChanges,
    name=st.none() | names,
    component_type=st.none() | text,
    data_type_id=st.none() | st.integers(1, 1000),
)


def new_device(device_id: UUID, at: datetime = START, owner: UUID | None = None) -> Device:
    return Device.register(
        device_id=device_id,
        owner=owner,
        name="Room Sensor",
        device_type="sensor",
        description="Living room",
        location="Floor 1",
        status=DeviceStatus.PENDING,
        metadata={"model": "esp32"},
        by="user:test",
        at=at,
    )


class DeviceMachine(RuleBasedStateMachine):
    """Random commands on a device (and a neighbour to move components to).

    After every step the stored events, replayed through the real msgspec mapping,
    give back exactly the live aggregates, and the device matches a plain model.
    """

    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        self.app = registry()
        self.clock = START
        self.device = new_device(uuid4())
        self.neighbour = new_device(uuid4())
        self.model: dict[str, Any] = {
            "name": "Room Sensor",
            "device_type": "sensor",
            "description": "Living room",
            "location": "Floor 1",
            "status": DeviceStatus.PENDING,
            "metadata": {"model": "esp32"},
        }
        self.components: dict[UUID, Component] = {}

    def at(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    @precondition(lambda self: not self.device.deleted)
    @rule(changes=device_changes)
    def revise(self, changes: DeviceChanges) -> None:
        self.device.revise(changes, "user:test", self.at())
        for field in self.model:
            if getattr(changes, field) is not None:
                self.model[field] = getattr(changes, field)

    @precondition(lambda self: not self.device.deleted)
    @rule(target=held, component=components)
    def add(self, component: Component) -> UUID:
        component_id = uuid4()
        self.device.add_component(component_id, component, "user:test", self.at())
        self.components[component_id] = component
        return component_id

    @precondition(lambda self: not self.device.deleted)
    @rule(component_id=held, changes=component_changes)
    def update(self, component_id: UUID, changes: ComponentChanges) -> None:
        kind = self.components[component_id].kind
        self.device.update_component(kind, component_id, changes, "user:test", self.at())
        self.components[component_id] = changes.applied_to(self.components[component_id])

    @precondition(lambda self: not self.device.deleted)
    @rule(component_id=consumes(held))
    def move_away(self, component_id: UUID) -> None:
        kind = self.components.pop(component_id).kind
        self.device.move_component(kind, component_id, self.neighbour, "user:test", self.at())

    @precondition(lambda self: not self.device.deleted)
    @rule(component_id=consumes(held))
    def remove(self, component_id: UUID) -> None:
        kind = self.components.pop(component_id).kind
        self.device.remove_component(kind, component_id, "user:test", self.at())

    @precondition(lambda self: not self.device.deleted)
    @rule(target=held)
    def delete(self) -> Any:
        self.device.delete("user:test", self.at())
        self.components.clear()
        return multiple()

    @precondition(lambda self: self.device.deleted)
    @rule(changes=device_changes, component=components)
    def a_deleted_device_takes_no_more_commands(
        self, changes: DeviceChanges, component: Component
    ) -> None:
        with pytest.raises(NotFound):
            self.device.revise(changes, "user:test", self.at())
        with pytest.raises(NotFound):
            self.device.add_component(uuid4(), component, "user:test", self.at())

    @invariant()
    def replaying_the_events_gives_the_same_devices(self) -> None:
        self.app.save(self.device, self.neighbour)
        assert self.app.repository.get(self.device.id) == self.device
        assert self.app.repository.get(self.neighbour.id) == self.neighbour

    @invariant()
    def the_device_is_what_the_commands_made_it(self) -> None:
        assert {field: getattr(self.device, field) for field in self.model} == self.model
        assert self.device.components == self.components


DeviceMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_a_device_replays_to_the_same_state = DeviceMachine.TestCase


@given(st.sampled_from(DeviceStatus))
def test_every_status_maps_to_each_dialect_and_back(status: DeviceStatus) -> None:
    assert from_telemetry_status(telemetry_status(status)) is status
    assert from_status_id(status_id(status)) is status


def test_the_vocabulary_map_is_the_documented_one() -> None:
    assert {s.value: (telemetry_status(s).value, status_id(s)) for s in DeviceStatus} == {
        "ok": ("online", 1),
        "pending": ("pending", 2),
        "lost": ("offline", 3),
        "disabled": ("disabled", 4),
    }
    assert [from_check_word(w) for w in ("ok", "pending", "lost")] == [
        DeviceStatus.OK,
        DeviceStatus.PENDING,
        DeviceStatus.LOST,
    ]
    assert set(TelemetryStatus) == {telemetry_status(s) for s in DeviceStatus}


@pytest.mark.parametrize("number", [0, 5, -1])
def test_a_status_id_out_of_range_is_invalid(number: int) -> None:
    with pytest.raises(InvalidInput):
        from_status_id(number)


def test_an_unknown_check_word_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        from_check_word("online")


@given(st.none() | st.uuids(), st.none() | st.uuids())
def test_a_caller_sees_the_shared_fleet_and_only_their_own_devices(
    owner: UUID | None, user_id: UUID | None
) -> None:
    assert DeviceAccess(user_id).allows(owner) == (owner is None or owner == user_id)
    assert FLEET.allows(owner) == (owner is None)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_blank_or_overlong_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        new_device(uuid4()).revise(DeviceChanges(name=name), "user:test", START)


def test_a_no_op_update_records_nothing() -> None:
    device = new_device(uuid4())
    device.collect_events()
    device.revise(DeviceChanges(name="Room Sensor", metadata={"model": "esp32"}), "x", START)
    assert device.collect_events() == []


def test_event_times_never_run_backwards_within_a_device() -> None:
    device = new_device(uuid4(), at=START)
    device.revise(DeviceChanges(name="Earlier"), "user:test", START - timedelta(hours=1))
    assert device.modified_on == START


# The service: claims, moves, deletion, history and time travel.


def register(app: Registry, owner: UUID | None = None, at: datetime = START) -> UUID:
    command = RegisterDevice(
        device_id=uuid4(), owner=owner, name="Pump", status=DeviceStatus.OK, by="user:a", at=at
    )
    return app.register_device(command).id


def add(app: Registry, device_id: UUID, component_id: UUID | None = None) -> UUID:
    component = Component(ComponentKind.SENSOR, "Temperature", "temp", 1)
    command = AddComponent(
        component_id or uuid4(), device_id, FLEET, component, by="user:a", at=START
    )
    return app.add_component(command).id


def test_a_component_id_held_elsewhere_is_a_conflict() -> None:
    app = registry()
    first, second = register(app), register(app)
    sensor_id = add(app, first)
    with pytest.raises(Conflict):
        add(app, second, sensor_id)
    with pytest.raises(Conflict):
        add(app, second, first)  # a device's id is not free either
    assert sensor_id not in app.device(second, FLEET).components


def test_moving_a_sensor_records_it_on_both_devices_and_follows_it() -> None:
    app = registry()
    source, target = register(app), register(app)
    sensor_id = add(app, source)
    changes = ComponentChanges(name="Moved", device_id=target)
    app.update_component(
        UpdateComponent(ComponentKind.SENSOR, sensor_id, FLEET, changes, "user:a", START)
    )
    holder, sensor = app.component(ComponentKind.SENSOR, sensor_id, FLEET)
    assert (holder.id, sensor.name) == (target, "Moved")
    assert sensor_id not in app.device(source, FLEET).components
    source_types = [type(e).__name__ for e in app.device_history(source, FLEET)]
    target_types = [type(e).__name__ for e in app.device_history(target, FLEET)]
    assert source_types == ["Registered", "SensorAdded", "SensorUpdated", "SensorMovedOut"]
    assert target_types == ["Registered", "SensorMovedIn"]


def test_a_sensor_is_not_an_actor() -> None:
    app = registry()
    sensor_id = add(app, register(app))
    with pytest.raises(NotFound, match="actor not found"):
        app.component(ComponentKind.ACTOR, sensor_id, FLEET)
    with pytest.raises(NotFound):
        app.remove_component(
            RemoveComponent(ComponentKind.ACTOR, sensor_id, FLEET, "user:a", START)
        )


def test_deleting_a_device_removes_its_components_and_frees_their_ids() -> None:
    app = registry()
    device_id, other = register(app), register(app)
    sensor_id = add(app, device_id)
    app.delete_device(DeleteDevice(device_id, FLEET, "user:a", START))
    types = [type(e).__name__ for e in app.device_history(device_id, FLEET)]
    assert types[-2:] == ["SensorRemoved", "Deleted"]
    with pytest.raises(NotFound):
        app.device(device_id, FLEET)
    with pytest.raises(NotFound):
        app.component(ComponentKind.SENSOR, sensor_id, FLEET)
    assert add(app, other, sensor_id) == sensor_id  # rediscovered on another device


def test_a_private_device_is_absent_for_everyone_but_its_owner() -> None:
    app = registry()
    owner, stranger = uuid4(), uuid4()
    device_id = register(app, owner=owner)
    assert app.device(device_id, DeviceAccess(owner)).owner == owner
    for access in (FLEET, DeviceAccess(stranger)):
        with pytest.raises(NotFound):
            app.device(device_id, access)
        with pytest.raises(NotFound):
            app.device_history(device_id, access)
        with pytest.raises(NotFound):
            app.update_device(UpdateDevice(device_id, access, DeviceChanges(), "x", START))


def test_as_of_rebuilds_the_device_as_it_was_then() -> None:
    app = registry()
    device_id = register(app, at=START)
    later = START + timedelta(minutes=5)
    app.update_device(
        UpdateDevice(device_id, FLEET, DeviceChanges(name="Renamed"), "user:a", later)
    )
    assert app.device_as_of(device_id, FLEET, START).name == "Pump"
    assert app.device_as_of(device_id, FLEET, later).name == "Renamed"
    with pytest.raises(NotFound):
        app.device_as_of(device_id, FLEET, START - timedelta(seconds=1))
    app.delete_device(DeleteDevice(device_id, FLEET, "user:a", later + timedelta(minutes=1)))
    assert app.device_as_of(device_id, FLEET, later).name == "Renamed"
    with pytest.raises(NotFound):
        app.device_as_of(device_id, FLEET, later + timedelta(minutes=2))


def test_a_given_device_id_can_be_registered_once() -> None:
    app = registry()
    device_id = register(app)
    command = RegisterDevice(
        device_id=device_id, owner=None, name="Again", status=DeviceStatus.OK, by="x", at=START
    )
    with pytest.raises(Conflict):
        app.register_device(command)
