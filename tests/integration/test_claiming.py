"""Claiming: a device of the shared fleet offers itself over MQTT with a secret, and the
user who shows that secret in time takes it into their own tenancy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from iotledger.bootstrap import App
from iotledger.settings import MqttUrl
from tests.support.identity import register_and_login
from tests.support.mqtt import Device, LoopThread, devices
from tests.support.telemetry import is_telemetry_error
from tests.support.waiting import eventually

Client = TestClient[Any]
FLEET_DEVICE = {"name": "Claimable", "description": "", "location": "shop", "status_id": 1}


@pytest.fixture
def fleet_device(
    client: Client, headers: dict[str, str], guarded: MqttUrl, mqtt_loop: LoopThread
) -> Iterator[tuple[str, Device]]:
    """A device of the shared fleet, connected with its own credentials."""
    device_id = client.post("/devices", json=FLEET_DEVICE, headers=headers).json()["id"]
    issued = client.post(f"/devices/{device_id}/credentials", headers=headers).json()
    with devices(mqtt_loop) as made:
        made.append(
            Device(mqtt_loop, guarded, credentials=(issued["username"], issued["password"]))
        )
        yield device_id, made[0]


def offer(
    client: Client,
    headers: dict[str, str],
    services: App,
    device: tuple[str, Device],
    secret: str,
    duration_ms: int,
) -> None:
    """The device publishes its claim; once its history shows it."""
    device_id, speaker = device
    topic = services.topics.claim(uuid.UUID(device_id))
    speaker.publish(topic, {"secret_key": secret, "duration_ms": duration_ms})
    history = f"/api/v1/devices/{device_id}/history"
    eventually(
        lambda: client.get(history, headers=headers).json()[-1]["type"] == "Device.ClaimOffered",
        what="the claim offer",
    )


def claim(client: Client, device_id: str, secret: str, headers: dict[str, str]) -> Any:
    body = {"secret_key": secret}
    return client.post(f"/api/v1/devices/{device_id}/claim", json=body, headers=headers)


def test_a_user_claims_a_fleet_device_with_its_secret(
    client: Client, headers: dict[str, str], services: App, fleet_device: tuple[str, Device]
) -> None:
    device_id = fleet_device[0]
    offer(client, headers, services, fleet_device, "open sesame", 60_000)
    claimant = register_and_login(client)
    claimed = claim(client, device_id, "open sesame", claimant)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["id"] == device_id
    assert set(claimed.json()) == {"id", "name", "device_type", "status", "metadata"}
    assert client.get(f"/api/v1/devices/{device_id}", headers=claimant).status_code == 200
    assert is_telemetry_error(client.get(f"/api/v1/devices/{device_id}", headers=headers), 404)
    assert client.get(f"/devices/{device_id}", headers=headers).status_code == 404
    assert device_id not in [d["id"] for d in client.get("/devices").json()]
    history = client.get(f"/api/v1/devices/{device_id}/history", headers=claimant).json()
    offered, taken = history[-2], history[-1]
    assert offered["caused_by"] == f"device:{device_id}"
    assert "open sesame" not in str(offered)
    assert taken["type"] == "Device.Claimed"
    assert taken["data"]["previous_owner"] is None
    assert taken["caused_by"] == f"user:{taken['data']['owner']}"


def test_a_wrong_secret_is_refused_and_the_device_stays_in_the_fleet(
    client: Client, headers: dict[str, str], services: App, fleet_device: tuple[str, Device]
) -> None:
    device_id = fleet_device[0]
    offer(client, headers, services, fleet_device, "right", 60_000)
    refused = claim(client, device_id, "wrong", headers)
    assert is_telemetry_error(refused, 400)
    assert refused.json()["error"]["code"] == "CLAIM_REFUSED"
    assert client.get(f"/devices/{device_id}", headers=headers).status_code == 200


def test_an_expired_secret_is_refused(
    client: Client, headers: dict[str, str], services: App, fleet_device: tuple[str, Device]
) -> None:
    device_id = fleet_device[0]
    offer(client, headers, services, fleet_device, "brief", 1)
    time.sleep(0.01)
    refused = claim(client, device_id, "brief", headers)
    assert refused.json()["error"]["code"] == "CLAIM_REFUSED"


def test_a_device_that_offered_nothing_cannot_be_claimed(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = client.post("/devices", json=FLEET_DEVICE, headers=headers).json()["id"]
    refused = claim(client, device_id, "anything", headers)
    assert refused.json()["error"]["code"] == "CLAIM_REFUSED"
    assert is_telemetry_error(claim(client, str(uuid.uuid4()), "anything", headers), 404)
