"""The Lambda IoT Core MQTT protocol, both directions, with the real Mosquitto.

Devices discover themselves and publish readings on `T`; the API publishes
triggers, actor commands and pings on `T`; device checks ask and devices answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from iotledger.adapters.mqtt.sender import MqttSender
from iotledger.api.app import create_app
from iotledger.bootstrap import App
from iotledger.projections.device_checks import DeviceChecks
from iotledger.settings import MqttUrl
from tests.support.lambda_iot import announcement
from tests.support.mqtt import Adapter, Device, LoopThread, devices
from tests.support.waiting import eventually

Headers = dict[str, str]


@pytest.fixture
def device(
    mqtt_adapter: Adapter, mqtt_loop: LoopThread, mqtt_url: MqttUrl, services: App
) -> Iterator[Device]:
    """A device of the shared fleet, listening on `T` as Lambda devices do."""
    with devices(mqtt_loop) as made:
        made.append(Device(mqtt_loop, mqtt_url, (services.topics.base,)))
        yield made[0]


def lambda_get(client: TestClient[object], headers: Headers, path: str) -> Any:
    response = client.get(path, headers=headers)
    return response.json() if response.status_code == 200 else None


def discovered(
    client: TestClient[object], headers: Headers, device: Device, services: App, **kw: Any
) -> tuple[UUID, UUID, UUID]:
    """A device announced over MQTT with one sensor and one actor, once it is visible."""
    device_id, sensor, actor = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    device.publish(services.topics.discovery, announcement(device_id, [sensor], [actor], **kw))
    eventually(lambda: lambda_get(client, headers, f"/sensors/{sensor}"), what="discovery")
    return device_id, sensor, actor


def test_discovery_creates_the_device_with_its_sensors_and_actors(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    device_id, sensor, actor = discovered(client, module_auth_headers, device, services)
    shown = lambda_get(client, module_auth_headers, f"/devices/{device_id}")
    assert (shown["name"], shown["location"], shown["status_id"]) == (
        "Device Name",
        "Device Location",
        1,
    )
    assert lambda_get(client, module_auth_headers, f"/sensors/{sensor}")["device_id"] == str(
        device_id
    )
    assert lambda_get(client, module_auth_headers, f"/actors/{actor}")["type"] == "led"
    telemetry = lambda_get(client, module_auth_headers, f"/api/v1/devices/{device_id}")
    assert telemetry["metadata"]["mac_address"].startswith("00:11:22:")


def test_a_second_discovery_updates_the_device_and_syncs_its_components(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    device_id, sensor, actor = discovered(client, module_auth_headers, device, services)
    client.put(f"/devices/{device_id}", json={"status_id": 3}, headers=module_auth_headers)
    new_actor = uuid.uuid4()
    again = announcement(device_id, [], [actor, new_actor], name="Renamed")
    device.publish(services.topics.discovery, again)
    eventually(
        lambda: lambda_get(client, module_auth_headers, f"/actors/{new_actor}"), what="synced"
    )
    shown = lambda_get(client, module_auth_headers, f"/devices/{device_id}")
    assert (shown["name"], shown["status_id"]) == ("Renamed", 1)
    assert lambda_get(client, module_auth_headers, f"/sensors/{sensor}") is None
    assert lambda_get(client, module_auth_headers, f"/actors/{actor}") is not None


def test_a_partial_discovery_leaves_what_it_does_not_mention(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    device_id, sensor, actor = discovered(client, module_auth_headers, device, services)
    before = lambda_get(client, module_auth_headers, f"/api/v1/devices/{device_id}")
    device.publish(services.topics.discovery, {"device": {"id": str(device_id), "name": "x"}})
    path = f"/devices/{device_id}"
    shown = eventually(
        lambda: (d := lambda_get(client, module_auth_headers, path))["name"] == "x" and d
    )
    assert (shown["description"], shown["location"]) == ("Device Description", "Device Location")
    assert lambda_get(client, module_auth_headers, f"/sensors/{sensor}") is not None
    assert lambda_get(client, module_auth_headers, f"/actors/{actor}") is not None
    after = lambda_get(client, module_auth_headers, f"/api/v1/devices/{device_id}")
    assert after["metadata"] == before["metadata"]


def test_a_list_that_is_present_is_complete_and_one_left_out_is_kept(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    device_id, sensor, actor = discovered(client, module_auth_headers, device, services)
    message = {"device": {"id": str(device_id)}, "sensors": []}
    device.publish(services.topics.discovery, message)
    eventually(
        lambda: lambda_get(client, module_auth_headers, f"/sensors/{sensor}") is None,
        what="the sensor removed",
    )
    assert lambda_get(client, module_auth_headers, f"/actors/{actor}") is not None
    assert lambda_get(client, module_auth_headers, f"/devices/{device_id}")["name"] == "Device Name"


@pytest.mark.parametrize("clash", ["mac_address", "component"])
def test_a_discovery_that_clashes_with_another_device_is_dropped_and_counted(
    client: TestClient[object],
    module_auth_headers: Headers,
    mqtt_adapter: Adapter,
    device: Device,
    services: App,
    clash: str,
) -> None:
    holder, sensor, _ = discovered(client, module_auth_headers, device, services)
    newcomer = uuid.uuid4()
    message = announcement(newcomer, [sensor] if clash == "component" else [uuid.uuid4()], [])
    if clash == "mac_address":
        message["mac_address"] = announcement(holder, [], [])["mac_address"]
    reason = f"dropped.{clash}_conflict"
    before = mqtt_adapter.counters.get(reason, 0)
    device.publish(services.topics.discovery, message)
    eventually(lambda: mqtt_adapter.counters.get(reason, 0) == before + 1, what=reason)
    assert lambda_get(client, module_auth_headers, f"/devices/{newcomer}") is None
    assert lambda_get(client, module_auth_headers, f"/sensors/{sensor}")["device_id"] == str(holder)


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [("sensor_reading", 23.7, 23.7), ("sensor_value", True, 1.0), ("sensor_reading", "0", 0.0)],
)
def test_sensor_readings_on_the_main_topic_are_stored(
    client: TestClient[object],
    module_auth_headers: Headers,
    device: Device,
    services: App,
    kind: str,
    value: Any,
    stored: float,
) -> None:
    _, sensor, _ = discovered(client, module_auth_headers, device, services)
    message = {"type": kind, "sensor_id": str(sensor), "value": value}
    device.publish(services.topics.base, {**message, "value_at": "2026-01-14T10:00:00Z"})
    device.publish(services.topics.base, message)
    view = services.views.readings
    readings = eventually(
        lambda: len(r := view.sensor_page(sensor, 10, 0)) == 2 and r, what="stored"
    )
    assert [r.value for r in readings] == [stored, stored]
    assert {r.recorded_at.year for r in readings} >= {2026}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "sensor_reading", "sensor_id": str(uuid.uuid4()), "value": 1}, "unknown_sensor"),
        ({"type": "sensor_reading", "sensor_id": "not-a-uuid", "value": 1}, "invalid"),
        ({"type": "telemetry", "value": 1}, "unknown_type"),
        ({"value": 1}, "invalid"),
    ],
)
def test_a_reading_that_cannot_be_stored_is_dropped(
    mqtt_adapter: Adapter, device: Device, services: App, message: Any, reason: str
) -> None:
    before = mqtt_adapter.counters.get(f"dropped.{reason}", 0)
    device.publish(services.topics.base, message)
    eventually(lambda: mqtt_adapter.counters.get(f"dropped.{reason}", 0) == before + 1)


def test_a_reading_with_a_non_numeric_value_is_dropped(
    client: TestClient[object],
    module_auth_headers: Headers,
    mqtt_adapter: Adapter,
    device: Device,
    services: App,
) -> None:
    _, sensor, _ = discovered(client, module_auth_headers, device, services)
    before = mqtt_adapter.counters.get("dropped.invalid", 0)
    device.publish(
        services.topics.base, {"type": "sensor_value", "sensor_id": str(sensor), "value": "hot"}
    )
    eventually(lambda: mqtt_adapter.counters.get("dropped.invalid", 0) == before + 1)
    assert services.views.readings.sensor_page(sensor, 10, 0) == []


def test_triggering_a_sensor_publishes_sensor_trigger(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    device_id, sensor, _ = discovered(client, module_auth_headers, device, services)
    response = client.post(
        f"/sensors/{sensor}/trigger", json={"action": "read"}, headers=module_auth_headers
    )
    assert response.status_code == 202
    assert response.json() == {"status": "published", "topic": services.topics.base}
    (message,) = eventually(lambda: device.messages(services.topics.base, sensor_id=str(sensor)))
    assert set(message) == {"type", "sensor_id", "action", "requested_at"}
    assert (message["type"], message["action"]) == ("sensor_trigger", "read")
    assert message["requested_at"].endswith("Z")
    commands = lambda_get(client, module_auth_headers, f"/api/v1/devices/{device_id}/commands")
    assert [(c["command_name"], c["status"], c["state"]) for c in commands] == [
        ("sensor_trigger", "pending", "dispatched")
    ]


def test_a_trigger_without_a_body_reads(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    _, sensor, _ = discovered(client, module_auth_headers, device, services)
    assert client.post(f"/sensors/{sensor}/trigger", headers=module_auth_headers).status_code == 202
    (message,) = eventually(lambda: device.messages(services.topics.base, sensor_id=str(sensor)))
    assert message["action"] == "read"


def test_writing_to_an_actor_publishes_actor_command(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    _, _, actor = discovered(client, module_auth_headers, device, services)
    body = {"action": "set", "value": {"on": True}}
    response = client.post(f"/actors/{actor}/write", json=body, headers=module_auth_headers)
    assert response.status_code == 202
    assert response.json() == {"status": "published", "topic": services.topics.base}
    (message,) = eventually(lambda: device.messages(services.topics.base, actor_id=str(actor)))
    assert set(message) == {"type", "actor_id", "action", "value", "requested_at"}
    assert (message["type"], message["action"], message["value"]) == (
        "actor_command",
        "set",
        {"on": True},
    )


def test_a_write_needs_an_action_and_a_known_actor(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    _, _, actor = discovered(client, module_auth_headers, device, services)
    missing = client.post(f"/actors/{actor}/write", json={"value": 1}, headers=module_auth_headers)
    assert missing.status_code == 400
    assert set(missing.json()) == {"error"}
    unknown = client.post(
        f"/actors/{uuid.uuid4()}/write", json={"action": "x"}, headers=module_auth_headers
    )
    assert unknown.status_code == 404
    assert (
        client.post(f"/sensors/{uuid.uuid4()}/trigger", headers=module_auth_headers).status_code
        == 404
    )
    invalid = client.post("/sensors/not-a-uuid/trigger", headers=module_auth_headers)
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"error"}


def test_mqttping_publishes_a_ping(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    response = client.get("/mqttping", headers=module_auth_headers)
    assert response.status_code == 200
    assert response.json()["topic"] == services.topics.base
    stamp = response.json()["timestamp"]
    (message,) = eventually(
        lambda: device.messages(services.topics.base, type="ping", timestamp=stamp)
    )
    assert set(message) == {"type", "timestamp"}


def test_a_broker_that_cannot_take_the_message_answers_500_and_cancels_the_command(
    client: TestClient[object], module_auth_headers: Headers, device: Device, services: App
) -> None:
    device_id, sensor, _ = discovered(client, module_auth_headers, device, services)
    with TestClient(create_app(services)) as no_broker:  # a process without a broker link
        response = no_broker.post(f"/sensors/{sensor}/trigger", headers=module_auth_headers)
        ping = no_broker.get("/mqttping", headers=module_auth_headers)
    assert response.status_code == ping.status_code == 500
    assert response.json() == {"error": "failed to publish to MQTT: not connected"}
    commands = lambda_get(client, module_auth_headers, f"/api/v1/devices/{device_id}/commands")
    assert [(c["status"], c["state"]) for c in commands] == [("failed", "cancelled")]
    assert commands[0]["reason"].startswith("the broker could not take it")


def test_device_checks_ask_every_device_and_a_silent_one_becomes_lost(
    client: TestClient[object],
    module_auth_headers: Headers,
    device: Device,
    services: App,
    mqtt_adapter: Adapter,
    mqtt_loop: LoopThread,
) -> None:
    answering, _, _ = discovered(client, module_auth_headers, device, services)
    silent, _, _ = discovered(client, module_auth_headers, device, services)
    link = mqtt_adapter.role.link
    counters = mqtt_adapter.role.counters
    checks = DeviceChecks(
        services.ledger,
        services.views.devices,
        services.views.dispatch,
        sender=MqttSender(link, services.topics),
        counters=counters,
        misses=2,
    )
    base = services.topics.base

    def check_round(answer: str) -> None:
        seen = len(device.messages(base, type="device_check_request", device_id=str(answering)))
        mqtt_loop.run(checks.round())
        eventually(
            lambda: (
                len(device.messages(base, type="device_check_request", device_id=str(answering)))
                > seen
            )
        )
        response = {"type": "device_check_response", "device_id": str(answering), "status": answer}
        device.publish(base, response)

    def status_id(device_id: UUID) -> int:
        return int(lambda_get(client, module_auth_headers, f"/devices/{device_id}")["status_id"])

    check_round("pending")
    eventually(lambda: status_id(answering) == 2, what="pending")
    (request,) = device.messages(base, type="device_check_request", device_id=str(silent))
    assert set(request) == {"type", "device_id", "requested_at"}
    time.sleep(0.2)  # the adapter records when it heard the answer every 50 ms
    check_round("ok")
    eventually(lambda: status_id(answering) == 1, what="ok again")
    assert status_id(silent) == 1
    time.sleep(0.2)
    mqtt_loop.run(checks.round())
    eventually(lambda: status_id(silent) == 3, what="lost")
    assert status_id(answering) == 1
