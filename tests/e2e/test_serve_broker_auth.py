"""`serve` and the broker's authentication, as an operator starts it: its embedded broker
admits issued device credentials only; with an external broker, auth is off and says so."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from iotledger.adapters.mqtt.topics import Topics
from iotledger.settings import DatabaseUrl, MqttUrl
from tests.support.identity import unique
from tests.support.mqtt import Device, LoopThread, devices, refused
from tests.support.network import free_port
from tests.support.processes import environment, run, serving, stop, wait_for_http
from tests.support.telemetry import DEVICE as NEW_DEVICE
from tests.support.waiting import eventually

READING = {"telemetry_type": "environment", "payload": {"temperature": 19.5}}


def signed_in(base: str) -> dict[str, str]:
    body = {"username": unique(), "password": "secret123"}
    assert httpx.post(f"{base}/register", json=body, timeout=10).status_code == 201
    token = httpx.post(f"{base}/login", json=body, timeout=10).json()["token"]
    return {"Authorization": f"Bearer {token}"}


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
