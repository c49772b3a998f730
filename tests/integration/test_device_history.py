"""The auditors' endpoints: a device's history and the device as it was at a moment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from tests.support.lambda_iot import new_component, new_device
from tests.support.telemetry import is_telemetry_error, new_telemetry_device

Client = TestClient[Any]


def history(client: Client, headers: dict[str, str], device_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/devices/{device_id}/history", headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def user_id(client: Client, headers: dict[str, str]) -> str:
    return str(client.get("/protected", headers=headers).json()["claims"]["user_id"])


def as_of(client: Client, headers: dict[str, str], device_id: str, moment: str) -> Any:
    return client.get(f"/api/v1/devices/{device_id}", params={"as_of": moment}, headers=headers)


def test_history_shows_a_rename_and_a_delete_oldest_first(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    client.patch(f"/api/v1/devices/{device_id}", json={"name": "Renamed"}, headers=headers)
    assert client.delete(f"/api/v1/devices/{device_id}", headers=headers).status_code == 204

    entries = history(client, headers, device_id)
    assert [e["type"] for e in entries] == ["Device.Registered", "Device.Renamed", "Device.Deleted"]
    assert [e["version"] for e in entries] == [1, 2, 3]
    assert {e["caused_by"] for e in entries} == {f"user:{user_id(client, headers)}"}
    assert all(set(e) == {"type", "version", "timestamp", "caused_by", "data"} for e in entries)
    moments = [datetime.fromisoformat(e["timestamp"]) for e in entries]
    assert moments == sorted(moments)
    assert all(e["timestamp"].endswith("Z") for e in entries)
    registered, renamed, deleted = (e["data"] for e in entries)
    assert registered["name"] == "Temperature Sensor"
    assert registered["metadata"] == {"location": "greenhouse", "model": "esp32"}
    assert registered["status"] == "lost"  # the domain's word for `offline`
    assert renamed == {"name": "Renamed"}
    assert deleted == {}


def test_history_shows_sensors_and_actors_come_change_move_and_go(
    client: Client, headers: dict[str, str]
) -> None:
    device_id, other_id = new_device(client, headers), new_device(client, headers)
    sensor_id = new_component(client, headers, "sensors", device_id)
    actor_id = new_component(client, headers, "actors", device_id)
    client.put(f"/sensors/{sensor_id}", json={"name": "Outside"}, headers=headers)
    client.put(f"/actors/{actor_id}", json={"device_id": other_id}, headers=headers)
    client.delete(f"/devices/{device_id}", headers=headers)

    entries = history(client, headers, device_id)
    assert [e["type"] for e in entries] == [
        "Device.Registered",
        "Device.SensorAdded",
        "Device.ActorAdded",
        "Device.SensorUpdated",
        "Device.ActorMovedOut",
        "Device.SensorRemoved",
        "Device.Deleted",
    ]
    assert entries[3]["data"]["name"] == "Outside"
    assert entries[4]["data"] == {"component_id": actor_id, "to_device_id": other_id}
    moved_in = history(client, headers, other_id)[-1]
    assert (moved_in["type"], moved_in["data"]["from_device_id"]) == (
        "Device.ActorMovedIn",
        device_id,
    )


def test_as_of_shows_the_device_before_and_after_a_rename(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, headers)
    device_id = device["id"]
    renamed = client.patch(
        f"/api/v1/devices/{device_id}",
        json={"name": "Humidity Sensor", "metadata": {"firmware": "1.2.0"}},
        headers=headers,
    ).json()
    moments = [e["timestamp"] for e in history(client, headers, device_id)]
    registered_at, renamed_at = moments[0], moments[-1]  # Renamed, then MetadataReplaced

    before = as_of(client, headers, device_id, registered_at)
    assert before.status_code == 200
    assert before.json() == device
    assert as_of(client, headers, device_id, renamed_at).json() == renamed
    assert as_of(client, headers, device_id, "2999-01-01T00:00:00+02:00").json() == renamed
    earlier = datetime.fromisoformat(registered_at) - timedelta(microseconds=1)
    assert is_telemetry_error(as_of(client, headers, device_id, earlier.isoformat()), 404)


def test_as_of_after_a_deletion_is_404_but_before_it_the_owner_sees_the_device(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, headers)
    client.delete(f"/api/v1/devices/{device['id']}", headers=headers)
    registered_at, deleted_at = (e["timestamp"] for e in history(client, headers, device["id"]))
    assert as_of(client, headers, device["id"], registered_at).json() == device
    assert is_telemetry_error(as_of(client, headers, device["id"], deleted_at), 404)


@pytest.mark.parametrize(
    "moment", ["yesterday", "2026-01-14", "2026-01-14T10:00:00", "2026-13-01T00:00:00Z", ""]
)
def test_a_malformed_as_of_answers_400(
    client: Client, headers: dict[str, str], moment: str
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    assert is_telemetry_error(as_of(client, headers, device_id, moment), 400)


def test_the_shared_fleets_history_is_open_to_every_signed_in_user(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers)
    entries = history(client, headers, device_id)
    assert entries[0]["data"]["owner"] is None
    assert entries[0]["data"]["description"] == "Living room"


def test_history_of_an_unknown_or_non_device_id_answers_404(
    client: Client, headers: dict[str, str]
) -> None:
    sensor_id = new_component(client, headers, "sensors", new_device(client, headers))
    for unknown in (str(uuid4()), sensor_id, user_id(client, headers)):
        response = client.get(f"/api/v1/devices/{unknown}/history", headers=headers)
        assert is_telemetry_error(response, 404)
