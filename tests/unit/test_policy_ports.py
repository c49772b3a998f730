"""The dispatch policy and the device checks behind their ports, in memory.

The policies read what is due (or who is in the fleet) through a port and send
through a `Sender`; an unreachable broker is the port's `Unreachable`, which the
MQTT adapter makes of the link's `BrokerUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
import pytest

from iotledger.adapters.mqtt.link import NoBroker
from iotledger.adapters.mqtt.sender import MqttSender
from iotledger.adapters.mqtt.topics import Topics
from iotledger.application.commands import IssueCommand
from iotledger.application.devices import RegisterDevice
from iotledger.application.ledger import Ledger
from iotledger.domain.commands import Command, CommandStatus, Delivery
from iotledger.domain.devices import FLEET
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.projections.device_checks import DeviceChecks
from iotledger.projections.devices import DeviceSummary
from iotledger.projections.dispatch import QueuedCommand
from iotledger.projections.dispatcher import Dispatcher
from iotledger.projections.ports import Due, Unreachable
from tests.support.domain import MSGSPEC_STORE

NOW = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)


class Sent:
    """A `Sender` that keeps what it is given, or is unreachable."""

    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self.to_devices: list[tuple[UUID, dict[str, object]]] = []
        self.to_fleets: list[dict[str, object]] = []

    async def to_device(self, device_id: UUID, payload: bytes) -> None:
        self._check()
        self.to_devices.append((device_id, msgspec.json.decode(payload)))

    async def to_fleet(self, payload: bytes) -> None:
        self._check()
        self.to_fleets.append(msgspec.json.decode(payload))

    def _check(self) -> None:
        if not self.reachable:
            raise Unreachable("failed to publish to MQTT: not connected")


class Queue:
    """A `DispatchQueue` holding one due command."""

    def __init__(self, due: list[Due]) -> None:
        self._due = due

    def due(self, now: datetime) -> list[Due]:
        return self._due

    def expired(self, now: datetime) -> list[UUID]:
        return []


def issued(ledger: Ledger) -> QueuedCommand:
    device_id, command_id = uuid4(), uuid4()
    ledger.register_device(RegisterDevice(device_id, None, "d", DeviceStatus.OK, "test", NOW))
    ledger.issue_command(
        IssueCommand(command_id, device_id, FLEET, "reboot", {}, Delivery.DEVICE, "test", NOW)
    )
    return QueuedCommand(command_id, device_id, "reboot", {}, NOW)


def status_of(ledger: Ledger, command_id: UUID) -> CommandStatus:
    command: Command = ledger.repository.get(command_id)
    return command.status


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(env=MSGSPEC_STORE)


def test_the_dispatcher_sends_a_due_command_to_its_device_and_records_it_dispatched(
    ledger: Ledger,
) -> None:
    command, sender = issued(ledger), Sent()
    dispatcher = Dispatcher(ledger, Queue([Due(command, 1)]), sender, Counter())
    asyncio.run(dispatcher.round())
    assert [(device, message["id"]) for device, message in sender.to_devices] == [
        (command.device_id, str(command.id))
    ]
    assert status_of(ledger, command.id) == CommandStatus.DISPATCHED


def test_a_command_the_sender_cannot_deliver_is_not_recorded_and_waits(ledger: Ledger) -> None:
    command, counters = issued(ledger), Counter[str]()
    dispatcher = Dispatcher(ledger, Queue([Due(command, 1)]), Sent(reachable=False), counters)
    asyncio.run(dispatcher.round())
    assert status_of(ledger, command.id) == CommandStatus.PENDING
    assert counters["commands.dispatched"] == 0


class Fleet:
    def __init__(self, devices: list[DeviceSummary]) -> None:
        self.devices = devices

    def fleet(self, limit: int | None, offset: int) -> list[DeviceSummary]:
        return self.devices[offset : None if limit is None else offset + limit]

    def last_heard(self, device_ids: Iterable[UUID]) -> dict[UUID, datetime]:
        return {}


def test_device_checks_ask_the_fleet_through_the_sender(ledger: Ledger) -> None:
    device = DeviceSummary(uuid4(), None, "d", "", "", "", DeviceStatus.OK, {}, NOW, NOW)
    fleet, sender = Fleet([device]), Sent()
    checks = DeviceChecks(ledger, fleet, fleet, sender=sender, counters=Counter(), misses=2)
    asyncio.run(checks.round())
    assert [(m["type"], m["device_id"]) for m in sender.to_fleets] == [
        ("device_check_request", str(device.id))
    ]


class Published:
    def __init__(self) -> None:
        self.topics: list[str] = []

    async def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        self.topics.append(topic)


def test_the_mqtt_sender_names_the_topics_and_makes_an_absent_broker_unreachable() -> None:
    topics, device_id, published = Topics("base"), uuid4(), Published()
    sender = MqttSender(published, topics)
    asyncio.run(sender.to_device(device_id, b"{}"))
    asyncio.run(sender.to_fleet(b"{}"))
    assert published.topics == [topics.commands(device_id), topics.base]
    with pytest.raises(Unreachable, match="not connected"):
        asyncio.run(MqttSender(NoBroker(), topics).to_fleet(b"{}"))
