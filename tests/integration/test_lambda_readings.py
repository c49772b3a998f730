"""Lambda IoT Core sensor readings over HTTP: integer ids, values, history and tenancy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import TestClient

from iotledger.bootstrap import App
from iotledger.domain.readings import Reading
from tests.support.lambda_iot import new_component, new_device
from tests.support.ledger import event_count
from tests.support.telemetry import new_telemetry_device

Client = TestClient[Any]


@pytest.fixture
def sensor(client: Client, headers: dict[str, str]) -> str:
    return new_component(client, headers, "sensors", new_device(client, headers))


def new_reading(client: Client, headers: dict[str, str], sensor: str, **fields: Any) -> int:
    body = {"sensor_id": sensor, "value": 23.7, **fields}
    response = client.post("/sensor-readings", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id"}
    reading_id = response.json()["id"]
    assert isinstance(reading_id, int)
    return reading_id


def read(client: Client, headers: dict[str, str], reading_id: int) -> Any:
    response = client.get(f"/sensor-readings/{reading_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_reading_answers_201_with_an_integer_id_and_reads_back(
    client: Client, headers: dict[str, str], sensor: str
) -> None:
    reading_id = new_reading(client, headers, sensor, value_at="2026-01-14T10:00:00Z")
    assert read(client, headers, reading_id) == {
        "id": reading_id,
        "sensor_id": sensor,
        "value": 23.7,
        "value_at": "2026-01-14T10:00:00Z",
    }


def test_a_reading_without_value_at_is_taken_now(
    client: Client, headers: dict[str, str], sensor: str
) -> None:
    before = datetime.now(UTC)
    value_at = read(client, headers, new_reading(client, headers, sensor))["value_at"]
    assert before <= datetime.fromisoformat(value_at) <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("value", "stored"),
    [(21, 21.0), (-0.5, -0.5), (True, 1.0), (False, 0.0), ("1", 1.0), ("23.7", 23.7)],
)
def test_a_value_may_be_a_number_a_boolean_or_a_numeric_string(
    client: Client, headers: dict[str, str], sensor: str, value: Any, stored: float
) -> None:
    assert (
        read(client, headers, new_reading(client, headers, sensor, value=value))["value"] == stored
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"value": "warm"},
        {"value": "nan"},
        {"value": "1e400"},
        {"value": None},
        {"value": [1]},
        {"value": {"v": 1}},
        {"value": 1, "value_at": "2026-01-14T10:00:00"},
        {"value": 1, "value_at": "soon"},
        {"value": 1, "sensor_id": "not-a-uuid"},
        {"sensor_id": None},
    ],
)
def test_a_bad_reading_answers_400_in_the_lambda_body_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str], sensor: str, fields: Any
) -> None:
    before = event_count(services)
    body = {"sensor_id": sensor, **fields} if "value" in fields else {"value": 1, **fields}
    response = client.post("/sensor-readings", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    assert event_count(services) == before


def test_an_unknown_sensor_an_actor_or_a_private_device_answers_404_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str]
) -> None:
    device = new_device(client, headers)
    actor = new_component(client, headers, "actors", device)
    private = new_telemetry_device(client, headers)["id"]
    before = event_count(services)
    for sensor_id in (str(uuid4()), actor, private):
        response = client.post(
            "/sensor-readings", json={"sensor_id": sensor_id, "value": 1}, headers=headers
        )
        assert response.status_code == 404
        assert response.json() == {"error": "sensor not found"}
        listed = client.get(f"/sensor-readings?sensor_id={sensor_id}", headers=headers)
        assert listed.status_code == 404
    assert event_count(services) == before


def test_the_list_filters_by_sensor_and_pages_in_id_order(
    client: Client, headers: dict[str, str], sensor: str
) -> None:
    other = new_component(client, headers, "sensors", new_device(client, headers))
    ids = [new_reading(client, headers, sensor, value=v) for v in range(5)]
    new_reading(client, headers, other)
    response = client.get(f"/sensor-readings?sensor_id={sensor}", headers=headers)
    assert [r["id"] for r in response.json()] == ids
    assert {r["sensor_id"] for r in response.json()} == {sensor}
    pages = [
        [r["id"] for r in client.get(url, headers=headers).json()]
        for url in (
            f"/sensor-readings?sensor_id={sensor}&limit=2",
            f"/sensor-readings?sensor_id={sensor}&limit=2&page=1",
            f"/sensor-readings?sensor_id={sensor}&limit=2&page=2",
        )
    ]
    assert pages == [ids[:2], ids[2:4], ids[4:]]
    everything = client.get("/sensor-readings?limit=1000", headers=headers).json()
    assert [r["id"] for r in everything] == sorted(r["id"] for r in everything)


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "page=-1", "sensor_id=nope"])
def test_a_bad_list_query_answers_400(client: Client, headers: dict[str, str], query: str) -> None:
    response = client.get(f"/sensor-readings?{query}", headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_an_update_changes_the_reading_and_its_history_keeps_the_original(
    client: Client, services: App, headers: dict[str, str], sensor: str
) -> None:
    reading_id = new_reading(client, headers, sensor, value=1, value_at="2026-01-14T10:00:00Z")
    response = client.put(f"/sensor-readings/{reading_id}", json={"value": "2.5"}, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"message": "sensor reading updated"}
    assert read(client, headers, reading_id)["value"] == 2.5
    moved = {"value_at": "2026-01-14T11:00:00Z"}
    assert (
        client.put(f"/sensor-readings/{reading_id}", json=moved, headers=headers).status_code == 200
    )
    assert read(client, headers, reading_id) == {
        "id": reading_id,
        "sensor_id": sensor,
        "value": 2.5,
        "value_at": "2026-01-14T11:00:00Z",
    }
    events = history(services, reading_id)
    assert [type(e) for e in events] == [Reading.Recorded, Reading.Corrected, Reading.Corrected]
    assert (events[0].value, events[0].payload) == (1.0, {"value": 1.0})
    assert events[1].by.startswith("user:")


def test_a_deleted_reading_answers_404_and_leaves_the_list_but_not_the_history(
    client: Client, services: App, headers: dict[str, str], sensor: str
) -> None:
    reading_id = new_reading(client, headers, sensor)
    response = client.delete(f"/sensor-readings/{reading_id}", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"message": "sensor reading deleted"}
    assert client.get(f"/sensor-readings/{reading_id}", headers=headers).status_code == 404
    listed = client.get(f"/sensor-readings?sensor_id={sensor}", headers=headers).json()
    assert reading_id not in [r["id"] for r in listed]
    assert [type(e) for e in history(services, reading_id)] == [Reading.Recorded, Reading.Deleted]
    for again in (
        client.delete(f"/sensor-readings/{reading_id}", headers=headers),
        client.put(f"/sensor-readings/{reading_id}", json={"value": 1}, headers=headers),
    ):
        assert again.status_code == 404


def test_a_reading_id_that_is_not_an_integer_answers_400_and_an_unknown_one_404(
    client: Client, headers: dict[str, str]
) -> None:
    for path in ("/sensor-readings/abc", "/sensor-readings/-1", "/sensor-readings/1.5"):
        response = client.get(path, headers=headers)
        assert response.status_code == 400
        assert set(response.json()) == {"error"}
    unknown = client.get("/sensor-readings/999999999999", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "sensor reading not found"}


def test_device_telemetry_is_not_a_sensor_reading(client: Client, headers: dict[str, str]) -> None:
    device = new_telemetry_device(client, headers)["id"]
    posted = client.post(
        f"/api/v1/devices/{device}/telemetry",
        json={"telemetry_type": "env", "payload": {"t": 1}},
        headers=headers,
    )
    assert posted.status_code == 201
    everything = client.get("/sensor-readings?limit=1000", headers=headers).json()
    assert all(r["sensor_id"] is not None for r in everything)


def test_a_sensor_reading_is_telemetry_of_its_fleet_device_in_the_other_dialect(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_device(client, headers)
    sensor = new_component(client, headers, "sensors", device)
    new_reading(client, headers, sensor, value=True, value_at="2026-01-14T10:00:00Z")
    response = client.get(f"/api/v1/devices/{device}/telemetry", headers=headers)
    assert response.status_code == 200
    (reading,) = response.json()
    assert (reading["telemetry_type"], reading["payload"]) == ("temp", {"value": 1.0})
    assert reading["recorded_at"] == "2026-01-14T10:00:00Z"


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/sensor-readings"), ("get", "/sensor-readings"), ("get", "/sensor-readings/1")],
)
def test_sensor_readings_need_a_token(client: Client, method: str, path: str) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}


def history(services: App, reading_id: int) -> list[Any]:
    """A reading's events, found from its Lambda id (the position of its first event)."""
    (notification,) = services.ledger.recorder.select_notifications(start=reading_id, limit=1)
    return list(services.ledger.events.get(UUID(str(notification.originator_id))))
