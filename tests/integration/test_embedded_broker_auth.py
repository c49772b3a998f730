"""The embedded broker with `IOTLEDGER_MQTT_AUTH=devices`: only issued credentials
connect, each client only to its own topics, and a rotated or revoked secret stops
working within 5 seconds."""

from __future__ import annotations

import time
import uuid
from typing import Any

from litestar.testing import TestClient

from iotledger.adapters.embedded.gate import SERVICE_USERNAME
from iotledger.bootstrap import App
from iotledger.settings import MqttUrl
from tests.support.lambda_iot import announcement
from tests.support.mqtt import Device, LoopThread, devices, refused
from tests.support.telemetry import new_telemetry_device
from tests.support.waiting import eventually

Client = TestClient[Any]
READING = {"telemetry_type": "environment", "payload": {"temperature": 19.5}}


def credentials_of(client: Client, device_id: str, headers: dict[str, str]) -> tuple[str, str]:
    issued = client.post(f"/api/v1/devices/{device_id}/credentials", headers=headers).json()
    return issued["username"], issued["password"]


def readings_of(client: Client, device_id: str, headers: dict[str, str]) -> list[Any]:
    listed: list[Any] = client.get(f"/api/v1/devices/{device_id}/telemetry", headers=headers).json()
    return listed


def stops_within_5_seconds(loop: LoopThread, url: MqttUrl, credentials: tuple[str, str]) -> None:
    start = time.monotonic()
    while not refused(loop, url, credentials):
        assert time.monotonic() - start < 5, "the secret still connects after 5 s"
        time.sleep(0.2)


def test_a_device_publishes_its_own_telemetry_and_it_is_stored(
    client: Client,
    headers: dict[str, str],
    guarded: MqttUrl,
    mqtt_loop: LoopThread,
    services: App,
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    with devices(mqtt_loop) as made:
        made.append(
            Device(mqtt_loop, guarded, credentials=credentials_of(client, device_id, headers))
        )
        made[0].publish(services.topics.telemetry(uuid.UUID(device_id)), READING)
        eventually(lambda: readings_of(client, device_id, headers), what="the reading")


def test_a_device_may_not_publish_or_subscribe_for_another_device(
    client: Client,
    headers: dict[str, str],
    guarded: MqttUrl,
    mqtt_loop: LoopThread,
    services: App,
) -> None:
    mine, other = (new_telemetry_device(client, headers)["id"] for _ in range(2))
    topics = services.topics
    with devices(mqtt_loop) as made:
        own_commands = (topics.commands(uuid.UUID(mine)),)
        made.append(
            Device(
                mqtt_loop, guarded, own_commands, credentials=credentials_of(client, mine, headers)
            )
        )
        device = made[0]
        assert device.granted == [1]
        device.publish(topics.telemetry(uuid.UUID(other)), READING)
        device.publish(topics.telemetry(uuid.UUID(mine)), READING)
        eventually(lambda: readings_of(client, mine, headers), what="its own reading")
        assert readings_of(client, other, headers) == []
        spy = Device(
            mqtt_loop,
            guarded,
            (topics.commands(uuid.UUID(other)),),
            credentials=credentials_of(client, mine, headers),
        )
        made.append(spy)
        assert spy.granted == [0x80]


def test_anonymous_and_wrong_secrets_are_refused(
    client: Client, headers: dict[str, str], guarded: MqttUrl, mqtt_loop: LoopThread
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    username, _ = credentials_of(client, device_id, headers)
    assert refused(mqtt_loop, guarded, None)
    assert refused(mqtt_loop, guarded, (username, "not-the-secret"))
    assert refused(mqtt_loop, guarded, (SERVICE_USERNAME, "guess"))


def test_a_rotated_and_a_revoked_secret_stop_working_within_5_seconds(
    client: Client, headers: dict[str, str], guarded: MqttUrl, mqtt_loop: LoopThread
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    first = credentials_of(client, device_id, headers)
    assert not refused(mqtt_loop, guarded, first)
    second = credentials_of(client, device_id, headers)
    stops_within_5_seconds(mqtt_loop, guarded, first)
    assert not refused(mqtt_loop, guarded, second)
    client.delete(f"/api/v1/devices/{device_id}/credentials", headers=headers)
    stops_within_5_seconds(mqtt_loop, guarded, second)


def test_a_connected_device_is_disconnected_when_its_secret_is_revoked(
    client: Client, headers: dict[str, str], guarded: MqttUrl, mqtt_loop: LoopThread
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    with devices(mqtt_loop) as made:
        made.append(
            Device(mqtt_loop, guarded, credentials=credentials_of(client, device_id, headers))
        )
        made[0].client.stop_reconnect()
        client.delete(f"/api/v1/devices/{device_id}/credentials", headers=headers)
        eventually(lambda: not made[0].client.is_connected, timeout=5, what="the disconnect")


def test_a_gateway_speaks_the_lambda_protocol_and_a_device_credential_cannot(
    client: Client,
    headers: dict[str, str],
    guarded: MqttUrl,
    mqtt_loop: LoopThread,
    services: App,
) -> None:
    gateway = client.post("/api/v1/gateways", json={"name": "hall"}, headers=headers).json()
    device_id = new_telemetry_device(client, headers)["id"]
    topics = services.topics
    with devices(mqtt_loop) as made:
        as_device = Device(
            mqtt_loop,
            guarded,
            (topics.base,),
            credentials=credentials_of(client, device_id, headers),
        )
        made.append(as_device)
        assert as_device.granted == [0x80]
        refused_id, refused_sensor = uuid.uuid4(), uuid.uuid4()
        as_device.publish(topics.discovery, announcement(refused_id, [refused_sensor], []))
        as_gateway = Device(
            mqtt_loop,
            guarded,
            (topics.base,),
            credentials=(gateway["username"], gateway["password"]),
        )
        made.append(as_gateway)
        assert as_gateway.granted == [1]
        discovered, sensor = uuid.uuid4(), uuid.uuid4()
        as_gateway.publish(topics.discovery, announcement(discovered, [sensor], []))
        eventually(
            lambda: client.get(f"/sensors/{sensor}", headers=headers).status_code == 200,
            what="discovery",
        )
        as_gateway.publish(
            topics.base, {"type": "sensor_reading", "sensor_id": str(sensor), "value": 21.0}
        )
        eventually(
            lambda: services.views.readings.sensor_page(sensor, 10, 0), what="the gateway's reading"
        )
        assert client.get(f"/devices/{refused_id}", headers=headers).status_code == 404


def test_the_gateways_list_shows_no_passwords_and_a_revoked_gateway_is_refused(
    client: Client, headers: dict[str, str], guarded: MqttUrl, mqtt_loop: LoopThread
) -> None:
    gateway = client.post("/api/v1/gateways", json={"name": "barn"}, headers=headers)
    assert gateway.status_code == 201
    body = gateway.json()
    assert set(body) == {"id", "name", "username", "password", "issued_at"}
    listed = client.get("/api/v1/gateways", headers=headers).json()
    assert {
        "id": body["id"],
        "name": "barn",
        "username": body["username"],
        "issued_at": listed[-1]["issued_at"],
    } in listed
    assert all("password" not in item for item in listed)
    assert client.delete(f"/api/v1/gateways/{body['id']}", headers=headers).status_code == 204
    assert body["id"] not in [
        item["id"] for item in client.get("/api/v1/gateways", headers=headers).json()
    ]
    stops_within_5_seconds(mqtt_loop, guarded, (body["username"], body["password"]))
