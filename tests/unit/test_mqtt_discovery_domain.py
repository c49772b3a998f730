"""Discovery and device-reported status, on an in-memory ledger: the rules, fast."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotledger.application.devices import RegisterDevice
from iotledger.application.discovery import (
    AnnouncedComponent,
    DiscoverDevice,
    ReportDeviceStatus,
)
from iotledger.application.ledger import Ledger
from iotledger.domain.devices import Component, ComponentKind, DeviceAccess
from iotledger.domain.discovery import normalise_mac
from iotledger.domain.errors import HeldElsewhere, InvalidInput, NotFound
from iotledger.domain.vocabulary import DeviceStatus
from tests.support.domain import MSGSPEC_STORE

SENSOR, ACTOR = ComponentKind.SENSOR, ComponentKind.ACTOR


def announce(
    device_id: UUID,
    components: dict[UUID, tuple[ComponentKind, str]],
    mac: str | None = "00:11:22:33:44:55",
    name: str = "Room sensor",
) -> DiscoverDevice:
    return DiscoverDevice(
        device_id=device_id,
        name=name,
        description="Living room",
        location="Floor 1",
        components=tuple(
            AnnouncedComponent(cid, Component(kind, label, label, 1))
            for cid, (kind, label) in components.items()
        ),
        listed=frozenset(ComponentKind),
        by=f"device:{device_id}",
        at=datetime.now(UTC),
        mac_address=mac,
    )


def in_memory() -> Ledger:
    """The whole ledger on the in-memory store, with the real msgspec mapping."""
    return Ledger(env=MSGSPEC_STORE)


@pytest.fixture
def ledger() -> Ledger:
    return in_memory()


def test_discovery_creates_a_fleet_device_with_the_ids_it_announces(ledger: Ledger) -> None:
    device_id, sensor, actor = uuid4(), uuid4(), uuid4()
    ledger.discover_device(announce(device_id, {sensor: (SENSOR, "temp"), actor: (ACTOR, "led")}))
    device = ledger.device(device_id, DeviceAccess())
    assert device.owner is None
    assert device.status is DeviceStatus.OK
    assert device.metadata == {"mac_address": "00:11:22:33:44:55"}
    assert {cid: c.kind for cid, c in device.components.items()} == {sensor: SENSOR, actor: ACTOR}


def test_a_repeated_discovery_records_nothing(ledger: Ledger) -> None:
    device_id, sensor = uuid4(), uuid4()
    ledger.discover_device(announce(device_id, {sensor: (SENSOR, "temp")}))
    assert ledger.discover_device(announce(device_id, {sensor: (SENSOR, "temp")})).position == 0


@given(
    first=st.sets(st.integers(0, 5)),
    second=st.sets(st.integers(0, 5)),
    kinds=st.lists(st.sampled_from([SENSOR, ACTOR]), min_size=6, max_size=6),
)
def test_a_rediscovery_leaves_exactly_the_components_announced(
    first: set[int], second: set[int], kinds: list[ComponentKind]
) -> None:
    ledger = in_memory()
    device_id = uuid4()
    ids = [uuid4() for _ in range(6)]
    ledger.discover_device(announce(device_id, {ids[i]: (SENSOR, f"c{i}") for i in first}))
    wanted = {ids[i]: (kinds[i], f"renamed{i}") for i in second}
    ledger.discover_device(announce(device_id, wanted))
    device = ledger.device(device_id, DeviceAccess())
    held = {cid: (c.kind, c.name) for cid, c in device.components.items()}
    assert held == wanted


def test_discovery_sets_status_ok_whatever_the_device_was(ledger: Ledger) -> None:
    device_id = uuid4()
    ledger.discover_device(announce(device_id, {}))
    lost = ReportDeviceStatus(device_id, DeviceStatus.LOST, "system", datetime.now(UTC))
    ledger.report_device_status(lost)
    ledger.discover_device(announce(device_id, {}, name="Renamed"))
    device = ledger.device(device_id, DeviceAccess())
    assert (device.status, device.name) == (DeviceStatus.OK, "Renamed")


def test_a_mac_address_belongs_to_one_device_until_it_moves_on(ledger: Ledger) -> None:
    first, second = uuid4(), uuid4()
    ledger.discover_device(announce(first, {}, mac="00-11-22-AA-BB-CC"))
    with pytest.raises(HeldElsewhere):
        ledger.discover_device(announce(second, {}, mac="00:11:22:aa:bb:cc"))
    ledger.discover_device(announce(first, {}, mac="00:11:22:aa:bb:cd"))
    ledger.discover_device(announce(second, {}, mac="001122aabbcc"))
    assert ledger.device(second, DeviceAccess()).metadata["mac_address"] == "00:11:22:aa:bb:cc"


def test_a_component_held_by_another_device_is_not_taken(ledger: Ledger) -> None:
    sensor = uuid4()
    ledger.discover_device(announce(uuid4(), {sensor: (SENSOR, "temp")}, mac=None))
    with pytest.raises(HeldElsewhere):
        ledger.discover_device(announce(uuid4(), {sensor: (SENSOR, "temp")}, mac=None))


def test_a_discovery_leaves_out_what_it_does_not_mention(ledger: Ledger) -> None:
    device_id, sensor, actor = uuid4(), uuid4(), uuid4()
    ledger.discover_device(announce(device_id, {sensor: (SENSOR, "temp"), actor: (ACTOR, "led")}))
    at = datetime.now(UTC)
    ledger.discover_device(DiscoverDevice(device_id, "device:x", at, name="x"))
    ledger.discover_device(DiscoverDevice(device_id, "device:x", at, listed=frozenset({ACTOR})))
    device = ledger.device(device_id, DeviceAccess())
    assert (device.name, device.description, device.location) == ("x", "Living room", "Floor 1")
    assert device.metadata == {"mac_address": "00:11:22:33:44:55"}
    assert {cid: c.kind for cid, c in device.components.items()} == {sensor: SENSOR}


def test_a_device_announced_for_the_first_time_needs_a_name(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput):
        ledger.discover_device(DiscoverDevice(uuid4(), "device:x", datetime.now(UTC)))


@pytest.mark.parametrize("mac", ["", "00:11:22:33:44", "00:11:22:33:44:5g", "00:11-22:33:44:55"])
def test_a_malformed_mac_address_is_invalid(mac: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_mac(mac)


def test_a_disabled_device_stays_disabled_whatever_it_reports(ledger: Ledger) -> None:
    device_id = uuid4()
    ledger.discover_device(announce(device_id, {}))
    now = datetime.now(UTC)
    ledger.report_device_status(ReportDeviceStatus(device_id, DeviceStatus.DISABLED, "user:x", now))
    written = ledger.report_device_status(
        ReportDeviceStatus(device_id, DeviceStatus.OK, f"device:{device_id}", now)
    )
    assert written.position == 0
    assert ledger.device(device_id, DeviceAccess()).status is DeviceStatus.DISABLED


def test_a_message_brings_back_only_a_lost_device(ledger: Ledger) -> None:
    device_id = uuid4()
    ledger.discover_device(announce(device_id, {}))
    now = datetime.now(UTC)
    ledger.report_device_status(ReportDeviceStatus(device_id, DeviceStatus.PENDING, "x", now))
    back = ReportDeviceStatus(device_id, DeviceStatus.OK, "x", now, only_from=DeviceStatus.LOST)
    assert ledger.report_device_status(back).position == 0
    ledger.report_device_status(ReportDeviceStatus(device_id, DeviceStatus.LOST, "x", now))
    ledger.report_device_status(back)
    assert ledger.device(device_id, DeviceAccess()).status is DeviceStatus.OK


def test_a_private_device_cannot_be_rediscovered_into_the_fleet(ledger: Ledger) -> None:
    device_id = uuid4()
    ledger.register_device(
        RegisterDevice(device_id, uuid4(), "mine", DeviceStatus.OK, "user:x", datetime.now(UTC))
    )
    with pytest.raises(NotFound):
        ledger.discover_device(announce(device_id, {}))
