"""Device Telemetry readings over HTTP: shapes, device time, pages, latest and tenancy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from iotledger.bootstrap import App
from tests.support.identity import register_and_login
from tests.support.ledger import event_count
from tests.support.telemetry import (
    READING,
    at,
    is_telemetry_error,
    listed,
    new_telemetry_device,
    post,
)

Client = TestClient[Any]


@pytest.fixture
def device(client: Client, headers: dict[str, str]) -> str:
    return str(new_telemetry_device(client, headers)["id"])


def test_a_reading_answers_201_in_the_documented_shape_and_is_listed_at_once(
    client: Client, headers: dict[str, str], device: str
) -> None:
    created = post(client, headers, device)
    assert set(created) == {"id", "telemetry_type", "payload", "recorded_at"}
    assert created["telemetry_type"] == "environment"
    assert created["payload"] == {"temperature": 22.5, "humidity": 60}
    assert created["recorded_at"] == "2025-08-22T12:34:56Z"
    assert listed(client, headers, device) == [created]


def test_a_reading_without_recorded_at_is_recorded_now(
    client: Client, headers: dict[str, str], device: str
) -> None:
    before = datetime.now(UTC)
    created = post(client, headers, device, recorded_at=None)
    recorded_at = datetime.fromisoformat(created["recorded_at"])
    assert before <= recorded_at <= datetime.now(UTC)


@pytest.mark.parametrize(
    "body",
    [
        {**READING, "payload": [1, 2]},
        {**READING, "payload": "hot"},
        {**READING, "payload": 22.5},
        {**READING, "payload": None},
        {"telemetry_type": "environment"},
        {"payload": {"t": 1}},
        {**READING, "telemetry_type": ""},
        {**READING, "telemetry_type": "x" * 101},
        {**READING, "recorded_at": "2025-08-22T12:34:56"},
        {**READING, "recorded_at": "yesterday"},
        {**READING, "payload": {"note": "a\u0000b"}},
        [],
    ],
)
def test_a_bad_reading_answers_400_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str], device: str, body: Any
) -> None:
    before = event_count(services)
    response = client.post(f"/api/v1/devices/{device}/telemetry", json=body, headers=headers)
    assert is_telemetry_error(response, 400), response.text
    assert event_count(services) == before


def test_another_users_device_answers_404_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str], device: str
) -> None:
    stranger = register_and_login(client)
    before = event_count(services)
    for response in (
        client.post(f"/api/v1/devices/{device}/telemetry", json=READING, headers=stranger),
        client.get(f"/api/v1/devices/{device}/telemetry", headers=stranger),
        client.get(f"/api/v1/devices/{device}/telemetry/latest", headers=stranger),
        client.post(f"/api/v1/devices/{uuid4()}/telemetry", json=READING, headers=headers),
    ):
        assert is_telemetry_error(response, 404), response.text
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert event_count(services) == before
    bad_id = client.post("/api/v1/devices/not-a-uuid/telemetry", json=READING, headers=headers)
    assert is_telemetry_error(bad_id, 400)
    no_token = client.get(f"/api/v1/devices/{device}/telemetry")
    assert is_telemetry_error(no_token, 401)


def test_pages_walk_newest_device_time_first_with_a_cursor(
    client: Client, headers: dict[str, str], device: str
) -> None:
    # Arrival order is not device-time order: a late reading must land in its place.
    for seconds in (3, 0, 4, 1, 6, 2, 5):
        post(client, headers, device, recorded_at=at(seconds), payload={"s": seconds})
    pages: list[list[int]] = []
    url = f"/api/v1/devices/{device}/telemetry?limit=3"
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["X-Limit"] == "3"
        pages.append([reading["payload"]["s"] for reading in response.json()])
        cursor = response.headers.get("X-Next-Cursor")
        url = f"/api/v1/devices/{device}/telemetry?limit=3&cursor={cursor}" if cursor else ""
    assert pages == [[6, 5, 4], [3, 2, 1], [0]]


def test_a_forged_cursor_answers_400(client: Client, headers: dict[str, str], device: str) -> None:
    response = client.get(f"/api/v1/devices/{device}/telemetry?cursor=bm9wZQ", headers=headers)
    assert is_telemetry_error(response, 400)


def test_from_to_and_type_narrow_the_list(
    client: Client, headers: dict[str, str], device: str
) -> None:
    for seconds in range(6):
        kind = "power" if seconds % 2 else "environment"
        post(client, headers, device, recorded_at=at(seconds), telemetry_type=kind)
    window = listed(client, headers, device, f"&from={at(1)}&to={at(5)}")
    assert [r["recorded_at"] for r in window] == [at(4), at(3), at(2), at(1)]
    power = listed(client, headers, device, f"&from={at(1)}&telemetry_type=power")
    assert [r["recorded_at"] for r in power] == [at(5), at(3), at(1)]
    naive = client.get(
        f"/api/v1/devices/{device}/telemetry?from=2025-08-22T12:00:00", headers=headers
    )
    assert is_telemetry_error(naive, 400)


def test_latest_follows_device_time_per_type_not_arrival(
    client: Client, headers: dict[str, str], device: str
) -> None:
    newest = post(client, headers, device, recorded_at=at(60))
    post(client, headers, device, recorded_at=at(10), payload={"late": True})
    power = post(client, headers, device, recorded_at=at(5), telemetry_type="power")
    response = client.get(f"/api/v1/devices/{device}/telemetry/latest", headers=headers)
    assert response.status_code == 200
    assert response.json() == [newest, power]
    newer = post(client, headers, device, recorded_at=at(61))
    latest = client.get(f"/api/v1/devices/{device}/telemetry/latest", headers=headers).json()
    assert latest == [newer, power]


def test_a_reading_posted_again_with_its_id_is_stored_once(
    client: Client, services: App, headers: dict[str, str], device: str
) -> None:
    first = post(client, headers, device, id="reading-1")
    before = event_count(services)
    again = post(client, headers, device, id="reading-1", payload={"changed": True})
    assert again == first
    assert event_count(services) == before
    assert listed(client, headers, device) == [first]


def test_the_same_values_posted_without_an_id_at_another_time_are_a_new_reading(
    client: Client, headers: dict[str, str], device: str
) -> None:
    first = post(client, headers, device, recorded_at=at(1))
    second = post(client, headers, device, recorded_at=at(2))
    assert first["id"] != second["id"]
    assert len(listed(client, headers, device)) == 2
