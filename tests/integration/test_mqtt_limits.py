"""An MQTT payload larger than `IOTLEDGER_MAX_BODY_BYTES` is dropped before it is decoded,
whatever its topic, as REST refuses such a body with 413. Through the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
import pytest

from iotledger.bootstrap import App
from iotledger.domain.errors import NotFound
from iotledger.settings import MqttUrl
from tests.support.lambda_iot import announcement
from tests.support.ledger import registered
from tests.support.mqtt import Adapter, Device, LoopThread, devices
from tests.support.waiting import eventually


def padded(message: dict[str, Any], size: int) -> bytes:
    """`message` as JSON of exactly `size` bytes (an extra field carries the padding)."""
    bare = len(msgspec.json.encode({**message, "padding": ""}))
    return msgspec.json.encode({**message, "padding": "x" * (size - bare)})


def telemetry(services: App, size: int) -> tuple[str, bytes, Callable[[], bool]]:
    device_id = registered(services)
    message = {"telemetry_type": "power", "payload": {"watts": 1}, "id": "big"}
    return (
        services.topics.telemetry(device_id),
        padded(message, size),
        lambda: bool(services.views.readings.device_page(device_id, 10)),
    )


def discovery(services: App, size: int) -> tuple[str, bytes, Callable[[], bool]]:
    device_id: UUID = uuid.uuid4()
    message = announcement(device_id, [uuid.uuid4()], [])

    def exists() -> bool:
        try:
            services.ledger.device_itself(device_id)
        except NotFound:
            return False
        return True

    return services.topics.discovery, padded(message, size), exists


@pytest.mark.parametrize("message", [telemetry, discovery])
def test_a_payload_over_the_body_limit_is_dropped_as_too_large_and_one_at_it_is_stored(
    services: App,
    mqtt_adapter: Adapter,
    mqtt_loop: LoopThread,
    mqtt_url: MqttUrl,
    message: Callable[[App, int], tuple[str, bytes, Callable[[], bool]]],
) -> None:
    limit = services.settings.max_body_bytes
    before = mqtt_adapter.counters.get("dropped.too_large", 0)
    with devices(mqtt_loop) as played:
        played.append(Device(mqtt_loop, mqtt_url))
        topic, payload, stored = message(services, limit + 1)
        played[0].publish(topic, payload)
        eventually(lambda: mqtt_adapter.counters.get("dropped.too_large", 0) == before + 1)
        assert not stored()
        topic, payload, stored = message(services, limit)
        played[0].publish(topic, payload)
        eventually(stored, what="a payload at the limit stored")
    assert mqtt_adapter.counters.get("dropped.too_large", 0) == before + 1
