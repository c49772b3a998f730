"""The Lambda IoT Core dialect as its clients speak it: devices and their sensors and
actors over HTTP, and the announcement a device publishes to discover itself over MQTT."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.testing import TestClient

Client = TestClient[Any]
DEVICE = {
    "name": "Room Sensor",
    "description": "Living room",
    "location": "Floor 1",
    "status_id": 1,
}


def new_device(client: Client, headers: dict[str, str], **fields: Any) -> str:
    response = client.post("/devices", json={**DEVICE, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id"}
    return str(response.json()["id"])


def new_component(client: Client, headers: dict[str, str], path: str, device_id: str) -> str:
    """A sensor or an actor (`path` "sensors" or "actors") of the device: its id."""
    body = {"device_id": device_id, "name": "Temperature", "type": "temp", "data_type_id": 1}
    response = client.post(f"/{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def announcement(device_id: UUID, sensors: list[UUID], actors: list[UUID], **device: Any) -> Any:
    """The discovery message of a device with these sensors and actors."""
    return {
        "mac_address": f"00:11:22:{device_id.hex[:2]}:{device_id.hex[2:4]}:{device_id.hex[4:6]}",
        "device": {
            "id": str(device_id),
            "name": "Device Name",
            "description": "Device Description",
            "location": "Device Location",
            "status_id": 3,
            **device,
        },
        "sensors": [
            {"id": str(s), "name": f"Sensor {i}", "type": "temperature", "data_type_id": 1}
            for i, s in enumerate(sensors)
        ],
        "actors": [
            {"id": str(a), "name": f"Actor {i}", "type": "led", "data_type_id": 2}
            for i, a in enumerate(actors)
        ],
    }
