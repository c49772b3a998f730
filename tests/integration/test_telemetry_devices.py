"""Device Telemetry devices under /api/v1 over HTTP: shapes, pages and tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.bootstrap import App
from iotledger.settings import DatabaseUrl, Settings
from tests.support.databases import start_services
from tests.support.identity import register_and_login
from tests.support.ledger import event_count
from tests.support.telemetry import DEVICE, is_telemetry_error, new_telemetry_device

Client = TestClient[Any]


@pytest.fixture
def own_client(settings: Settings, fresh_database_url: DatabaseUrl) -> Iterator[Client]:
    """A client on a database of its own, where no other test's devices are listed."""
    services = start_services(settings, fresh_database_url)
    try:
        with (
            services.projections.running(["users", "devices"]),
            TestClient(create_app(services)) as client,
        ):
            yield client
    finally:
        services.close()


def walk(client: Client, headers: dict[str, str], limit: int) -> list[list[str]]:
    """Every page of the device list, following X-Next-Cursor to the end."""
    pages: list[list[str]] = []
    url = f"/api/v1/devices?limit={limit}"
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["X-Limit"] == str(limit)
        pages.append([device["id"] for device in response.json()])
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return pages
        url = f"/api/v1/devices?limit={limit}&cursor={cursor}"


def test_a_created_device_answers_201_in_the_documented_shape(
    client: Client, headers: dict[str, str]
) -> None:
    created = new_telemetry_device(client, headers)
    assert set(created) == {"id", "name", "device_type", "status", "metadata"}
    assert {k: v for k, v in created.items() if k != "id"} == DEVICE
    fetched = client.get(f"/api/v1/devices/{created['id']}", headers=headers)
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_a_device_without_a_status_starts_offline(client: Client, headers: dict[str, str]) -> None:
    body = {"name": "Bare", "device_type": "sensor"}
    response = client.post("/api/v1/devices", json=body, headers=headers)
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["metadata"]) == ("offline", {})


def test_patch_replaces_the_metadata_as_a_whole_and_keeps_the_status(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_telemetry_device(client, headers, status="online")["id"]
    patch = {
        "name": "Humidity Sensor",
        "device_type": "sensor",
        "metadata": {"location": "lab", "firmware": "1.2.0"},
    }
    response = client.patch(f"/api/v1/devices/{device_id}", json=patch, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"id": device_id, "status": "online", **patch}
    assert client.get(f"/api/v1/devices/{device_id}", headers=headers).json() == (response.json())


@pytest.mark.parametrize("status", ["online", "pending", "offline", "disabled"])
def test_each_documented_status_is_kept(
    client: Client, headers: dict[str, str], status: str
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    response = client.patch(
        f"/api/v1/devices/{device_id}", json={"status": status}, headers=headers
    )
    assert response.json()["status"] == status


def test_a_cursor_walk_over_25_devices_gives_3_pages_without_gaps_or_duplicates(
    own_client: Client,
) -> None:
    headers = register_and_login(own_client)
    created = [new_telemetry_device(own_client, headers, name=f"d{i}")["id"] for i in range(25)]
    pages = walk(own_client, headers, limit=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [device_id for page in pages for device_id in page] == created


def test_the_cursor_is_stable_while_devices_are_added(own_client: Client) -> None:
    headers = register_and_login(own_client)
    created = [new_telemetry_device(own_client, headers)["id"] for _ in range(12)]
    first = own_client.get("/api/v1/devices?limit=5", headers=headers)
    added = [new_telemetry_device(own_client, headers)["id"] for _ in range(3)]
    cursor = first.headers["X-Next-Cursor"]
    rest = walk_from(own_client, headers, cursor)
    seen = [d["id"] for d in first.json()] + rest
    assert seen == created + added


def walk_from(client: Client, headers: dict[str, str], cursor: str) -> list[str]:
    seen: list[str] = []
    next_cursor: str | None = cursor
    while next_cursor is not None:
        response = client.get(f"/api/v1/devices?limit=5&cursor={next_cursor}", headers=headers)
        seen += [device["id"] for device in response.json()]
        next_cursor = response.headers.get("X-Next-Cursor")
    return seen


def test_the_last_page_has_no_next_cursor_and_the_default_limit_is_10(
    own_client: Client,
) -> None:
    headers = register_and_login(own_client)
    response = own_client.get("/api/v1/devices", headers=headers)
    assert response.json() == []
    assert response.headers["X-Limit"] == "10"
    assert "X-Next-Cursor" not in response.headers


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=ten", "cursor=not-a-cursor", "cursor=WyJyZWFkaW5ncyIsMV0"],
)
def test_a_bad_limit_or_cursor_answers_400(
    client: Client, headers: dict[str, str], query: str
) -> None:
    response = client.get(f"/api/v1/devices?{query}", headers=headers)
    assert is_telemetry_error(response, 400)


def test_a_user_lists_their_own_devices_and_the_shared_fleet_only(
    client: Client, headers: dict[str, str]
) -> None:
    stranger = register_and_login(client)
    theirs = new_telemetry_device(client, stranger)["id"]
    mine = new_telemetry_device(client, headers)["id"]
    shared = client.post(
        "/devices",
        json={"name": "Shared", "description": "", "location": "", "status_id": 1},
        headers=stranger,
    ).json()["id"]
    listed = {d for page in walk(client, headers, limit=100) for d in page}
    assert {mine, shared} <= listed
    assert theirs not in listed


def test_another_users_device_answers_404_on_every_path_and_stays_unchanged(
    client: Client, headers: dict[str, str], services: App
) -> None:
    device = new_telemetry_device(client, headers)
    path = f"/api/v1/devices/{device['id']}"
    stranger = register_and_login(client)
    before = event_count(services)
    attempts = [
        client.get(path, headers=stranger),
        client.get(f"{path}?as_of=2100-01-01T00:00:00Z", headers=stranger),
        client.get(f"{path}/history", headers=stranger),
        client.patch(path, json={"name": "Mine now"}, headers=stranger),
        client.delete(path, headers=stranger),
    ]
    for response in attempts:
        assert is_telemetry_error(response, 404), response.request.url
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert event_count(services) == before
    assert client.get(path, headers=headers).json() == device


def test_the_owner_can_delete_a_device_and_then_it_is_gone(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    response = client.delete(f"/api/v1/devices/{device_id}", headers=headers)
    assert response.status_code == 204
    gone = client.get(f"/api/v1/devices/{device_id}", headers=headers)
    assert is_telemetry_error(gone, 404)
    again = client.patch(f"/api/v1/devices/{device_id}", json={}, headers=headers)
    assert is_telemetry_error(again, 404)


@pytest.mark.parametrize(
    "body",
    [
        {**DEVICE, "status": "broken"},
        {**DEVICE, "status": 1},
        {**DEVICE, "metadata": None},
        {**DEVICE, "name": ""},
        {**DEVICE, "name": "  "},
        {**DEVICE, "name": 7},
        {**DEVICE, "metadata": ["not", "an", "object"]},
        {**DEVICE, "device_type": None},
        {"device_type": "sensor"},
        [DEVICE],
    ],
)
def test_bad_input_answers_400_in_the_telemetry_body_and_stores_nothing(
    client: Client, headers: dict[str, str], services: App, body: object
) -> None:
    device_id = new_telemetry_device(client, headers)["id"]
    before = event_count(services)
    created = client.post("/api/v1/devices", json=body, headers=headers)
    assert is_telemetry_error(created, 400)
    assert created.json()["error"]["code"] == "VALIDATION_ERROR"
    if isinstance(body, dict) and "name" in body:
        patched = client.patch(f"/api/v1/devices/{device_id}", json=body, headers=headers)
        assert is_telemetry_error(patched, 400)
    assert event_count(services) == before


def test_ids_that_are_not_uuids_answer_400_and_unknown_ones_404(
    client: Client, headers: dict[str, str]
) -> None:
    assert is_telemetry_error(client.get("/api/v1/devices/xyz", headers=headers), 400)
    unknown = client.get(f"/api/v1/devices/{uuid4()}", headers=headers)
    assert is_telemetry_error(unknown, 404)


@pytest.mark.parametrize("path", ["", "/{id}", "/{id}/history"])
def test_every_device_endpoint_needs_a_token(client: Client, path: str) -> None:
    response = client.get("/api/v1/devices" + path.format(id=uuid4()))
    assert is_telemetry_error(response, 401)
