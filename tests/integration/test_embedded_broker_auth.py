"""The embedded broker with `IOTLEDGER_MQTT_AUTH=devices`: only issued credentials
connect, each client only to its own topics, and a rotated or revoked secret stops
working within 5 seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gmqtt
import httpx
import pytest
from gmqtt.mqtt.constants import MQTTv311
from litestar.testing import TestClient

from iotledger.adapters.embedded.gate import SERVICE_USERNAME
from iotledger.adapters.embedded.services import EmbeddedBroker
from iotledger.adapters.mqtt.topics import Topics
from iotledger.bootstrap import Services
from iotledger.settings import DatabaseUrl, MqttUrl
from tests.conftest import free_port, unique
from tests.integration.test_device_credentials import headers
from tests.integration.test_mqtt_lambda import announcement
from tests.integration.test_telemetry_devices import DEVICE as NEW_DEVICE
from tests.integration.test_telemetry_devices import new_telemetry_device
from tests.support.mqtt import Adapter, Device, LoopThread, devices, eventually
from tests.support.processes import environment, run, serving, stop, wait_for_http

__all__ = ["headers"]  # the module's signed-in user (a fixture)

Client = TestClient[Any]
READING = {"telemetry_type": "environment", "payload": {"temperature": 19.5}}


@pytest.fixture(scope="module")
def guarded(services: Services, mqtt_loop: LoopThread) -> Iterator[MqttUrl]:
    """An embedded broker that asks the credentials, and the `mqtt` role linked to it with
    iotledger's service account; the address devices connect to."""
    gate = services.broker_gate()
    broker = EmbeddedBroker("127.0.0.1", free_port(), gate)
    mqtt_loop.run(broker.start())
    service = MqttUrl("127.0.0.1", broker.port, SERVICE_USERNAME, gate.service_password)
    adapter = Adapter(mqtt_loop, services, service, embedded=True)
    try:
        yield MqttUrl("127.0.0.1", broker.port, None, None)
    finally:
        adapter.close()
        mqtt_loop.run(broker.stop())


def credentials_of(client: Client, device_id: str, headers: dict[str, str]) -> tuple[str, str]:
    issued = client.post(f"/api/v1/devices/{device_id}/credentials", headers=headers).json()
    return issued["username"], issued["password"]


def readings_of(client: Client, device_id: str, headers: dict[str, str]) -> list[Any]:
    listed: list[Any] = client.get(f"/api/v1/devices/{device_id}/telemetry", headers=headers).json()
    return listed


def refused(loop: LoopThread, url: MqttUrl, credentials: tuple[str, str] | None) -> bool:
    """Whether the broker refuses a CONNECT with these credentials (None: anonymous)."""
    client = gmqtt.Client(f"probe-{uuid.uuid4().hex[:8]}")
    client.set_config({"reconnect_retries": 0})
    if credentials is not None:
        client.set_auth_credentials(*credentials)
    try:
        loop.run(client.connect(url.host, url.port, version=MQTTv311, keepalive=5), timeout=10)
    except Exception:
        return True
    connected = client.is_connected
    loop.run(client.disconnect())
    return not connected


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
    services: Services,
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
    services: Services,
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
    services: Services,
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
            lambda: services.readings.sensor_page(sensor, 10, 0), what="the gateway's reading"
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


def test_serve_with_its_embedded_broker_admits_issued_devices_only(
    own_database: DatabaseUrl, mqtt_loop: LoopThread, tmp_path: Path
) -> None:
    port, broker_port = free_port(), free_port()
    env = environment(
        own_database, IOTLEDGER_PORT=str(port), IOTLEDGER_EMBEDDED_MQTT_PORT=str(broker_port)
    )
    base, broker = f"http://127.0.0.1:{port}", MqttUrl("127.0.0.1", broker_port, None, None)
    with serving(env=env, cwd=tmp_path) as process:
        wait_for_http(base, process)
        user = signed_in(base)
        device = httpx.post(f"{base}/api/v1/devices", json=NEW_DEVICE, headers=user).json()
        path = f"{base}/api/v1/devices/{device['id']}"
        issued = httpx.post(f"{path}/credentials", headers=user).json()
        assert refused(mqtt_loop, broker, None)
        with devices(mqtt_loop) as made:
            made.append(
                Device(mqtt_loop, broker, credentials=(issued["username"], issued["password"]))
            )
            made[0].publish(Topics("lambdaiot").telemetry(uuid.UUID(device["id"])), READING)
            eventually(lambda: httpx.get(f"{path}/telemetry", headers=user).json(), what="stored")
        code, _, output = stop(process)
    assert code == 0, output
    assert "admitting issued credentials only" in output


def test_with_an_external_broker_auth_is_off_with_a_warning_and_devices_is_refused(
    own_database: DatabaseUrl, mqtt_url: MqttUrl
) -> None:
    port = free_port()
    env = environment(own_database, mqtt_url, IOTLEDGER_PORT=str(port))
    with serving(env=env) as process:
        wait_for_http(f"http://127.0.0.1:{port}", process)
        code, _, output = stop(process)
    assert code == 0, output
    assert "IOTLEDGER_MQTT_AUTH=off" in output
    refusal = run("serve", env={**env, "IOTLEDGER_MQTT_AUTH": "devices"})
    assert refusal.returncode != 0
    assert refusal.stderr.strip().splitlines()[-1].startswith("iotledger: IOTLEDGER_MQTT_AUTH")


def signed_in(base: str) -> dict[str, str]:
    body = {"username": unique(), "password": "secret123"}
    assert httpx.post(f"{base}/register", json=body, timeout=10).status_code == 201
    token = httpx.post(f"{base}/login", json=body, timeout=10).json()["token"]
    return {"Authorization": f"Bearer {token}"}
