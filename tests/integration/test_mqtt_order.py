"""What one device publishes is applied in the order the broker delivered it.

A device boots by announcing itself on `T/discovery` and at once publishing
readings of the sensors it announced on `T`: every one of them is stored,
whether discovery and readings come in one batch, in batches handled side by
side, or through the real broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.directory import Presence, ledger_directory
from iotledger.adapters.mqtt.inbound import Inbound
from iotledger.adapters.mqtt.packets import Message
from iotledger.bootstrap import App
from iotledger.settings import MqttUrl
from tests.support.lambda_iot import announcement
from tests.support.mqtt import Adapter, Device, LoopThread, devices
from tests.support.waiting import eventually

READINGS = 5


def boot(services: App) -> tuple[UUID, list[Message]]:
    """A device's boot sequence: its discovery, then readings of its sensor."""
    device_id, sensor = uuid.uuid4(), uuid.uuid4()
    topics = services.topics
    discovery = msgspec.json.encode(announcement(device_id, [sensor], []))
    readings = [
        msgspec.json.encode({"type": "sensor_reading", "sensor_id": str(sensor), "value": n})
        for n in range(READINGS)
    ]
    return sensor, [(topics.discovery, discovery), *((topics.base, r) for r in readings)]


def stored(services: App, sensors: list[UUID]) -> list[int]:
    return [len(services.views.readings.sensor_page(sensor, 100, 0)) for sensor in sensors]


def inbound(services: App, counters: Counter[str]) -> Inbound:
    return Inbound(
        services.ledger,
        services.recording,
        directory=ledger_directory(services.ledger),
        presence=Presence(services.views.dispatch.record_heard),
        topics=services.topics,
        counters=counters,
    )


async def handled_side_by_side(handler: Inbound, batches: list[list[Message]]) -> None:
    """Each batch in a task of its own, as the link hands them over."""
    await asyncio.gather(*(handler.handle_many(batch) for batch in batches))


def test_readings_right_after_discovery_in_one_batch_are_all_stored(
    services: App, mqtt_loop: LoopThread
) -> None:
    counters: Counter[str] = Counter()
    handler = inbound(services, counters)
    boots = [boot(services) for _ in range(10)]
    batch = [message for _, messages in boots for message in messages]
    mqtt_loop.run(handler.handle_many(batch))
    assert counters == {"handled": len(batch)}
    sensors = [sensor for sensor, _ in boots]
    eventually(lambda: stored(services, sensors) == [READINGS] * len(sensors), what="stored")


def test_readings_in_the_batch_after_their_discovery_are_all_stored(
    services: App, mqtt_loop: LoopThread
) -> None:
    counters: Counter[str] = Counter()
    handler = inbound(services, counters)
    boots = [boot(services) for _ in range(10)]
    batches = [part for _, messages in boots for part in (messages[:1], messages[1:])]
    mqtt_loop.run(handled_side_by_side(handler, batches))
    assert counters == {"handled": len(boots) * (READINGS + 1)}
    sensors = [sensor for sensor, _ in boots]
    eventually(lambda: stored(services, sensors) == [READINGS] * len(sensors), what="stored")


def test_a_reading_before_its_sensors_discovery_is_unknown_and_after_it_is_stored(
    services: App, mqtt_loop: LoopThread
) -> None:
    counters: Counter[str] = Counter()
    handler = inbound(services, counters)
    sensor, messages = boot(services)
    discovery, first, *rest = messages
    mqtt_loop.run(handler.handle_many([first, discovery, *rest]))
    assert counters == {"handled": READINGS, "dropped": 1, "dropped.unknown_sensor": 1}
    eventually(lambda: stored(services, [sensor]) == [READINGS - 1], what="stored")


def test_devices_booting_through_the_broker_lose_no_reading(
    services: App, mqtt_adapter: Adapter, mqtt_loop: LoopThread, mqtt_url: MqttUrl
) -> None:
    before = mqtt_adapter.counters.get("dropped", 0)
    boots = [boot(services) for _ in range(30)]
    with devices(mqtt_loop) as played:
        played.append(Device(mqtt_loop, mqtt_url))
        for _, messages in boots:
            for topic, payload in messages:
                played[0].publish(topic, payload)
        sensors = [sensor for sensor, _ in boots]
        eventually(
            lambda: stored(services, sensors) == [READINGS] * len(sensors),
            timeout=20,
            what="every reading stored",
        )
    assert mqtt_adapter.counters.get("dropped", 0) == before
