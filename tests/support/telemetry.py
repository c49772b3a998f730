"""The Device Telemetry dialect (`/api/v1`) as its clients speak it: devices, readings and
commands made in one call each, and the dialect's error envelope recognised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

Client = TestClient[Any]
DEVICE = {
    "name": "Temperature Sensor",
    "device_type": "sensor",
    "status": "offline",
    "metadata": {"location": "greenhouse", "model": "esp32"},
}
READING = {
    "telemetry_type": "environment",
    "payload": {"temperature": 22.5, "humidity": 60},
    "recorded_at": "2025-08-22T12:34:56Z",
}
T0 = datetime(2025, 8, 22, 12, 0, tzinfo=UTC)


def new_telemetry_device(client: Client, headers: dict[str, str], **fields: Any) -> Any:
    response = client.post("/api/v1/devices", json={**DEVICE, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def is_telemetry_error(response: Any, status: int) -> bool:
    body = response.json()
    return (
        response.status_code == status
        and body["success"] is False
        and set(body["error"]) == {"code", "message"}
    )


def post(client: Client, headers: dict[str, str], device: str, **fields: Any) -> Any:
    """A reading of `device` (READING, changed by `fields`), stored: its 201 body."""
    response = client.post(
        f"/api/v1/devices/{device}/telemetry", json={**READING, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def at(seconds: float) -> str:
    """A device time `seconds` after T0, as devices write it."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def listed(client: Client, headers: dict[str, str], device: str, query: str = "") -> list[Any]:
    response = client.get(f"/api/v1/devices/{device}/telemetry?limit=100{query}", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def new_actor(client: Client, headers: dict[str, str]) -> str:
    """A private device of the caller, offline: its commands wait (nothing dispatches them)."""
    response = client.post(
        "/api/v1/devices", json={"name": "Pump", "device_type": "actor"}, headers=headers
    )
    assert response.status_code == 201
    return str(response.json()["id"])


def new_command(client: Client, headers: dict[str, str], device: str, **extra: Any) -> Any:
    body = {"command_name": "restart", "payload": {"delay": 5}, **extra}
    response = client.post(f"/api/v1/devices/{device}/commands", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
