"""Lambda IoT Core devices, sensors and actors over HTTP, against the real PostgreSQL."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import TestClient

from iotledger.bootstrap import App
from tests.support.lambda_iot import DEVICE, new_component, new_device
from tests.support.ledger import event_count
from tests.support.telemetry import is_telemetry_error, new_telemetry_device

Client = TestClient[Any]
RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
COMPONENTS = ["sensors", "actors"]


def test_a_created_device_reads_back_in_the_documented_shape(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers)
    body = client.get(f"/devices/{device_id}", headers=headers).json()
    assert set(body) == {
        "id",
        "name",
        "description",
        "location",
        "status_id",
        "created_at",
        "updated_at",
    }
    assert {k: body[k] for k in ("id", *DEVICE)} == {"id": device_id, **DEVICE}
    assert RFC3339_SECONDS.match(body["created_at"])
    assert RFC3339_SECONDS.match(body["updated_at"])


def test_the_device_list_is_public_and_shows_new_devices_at_once(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers, name="Listed")
    response = client.get("/devices")
    assert response.status_code == 200
    listed = {device["id"]: device for device in response.json()}
    assert listed[device_id]["name"] == "Listed"
    assert listed[device_id] == client.get(f"/devices/{device_id}", headers=headers).json()


def test_the_device_list_pages_with_limit_and_page(client: Client, headers: dict[str, str]) -> None:
    for _ in range(3):
        new_device(client, headers)
    everything = [d["id"] for d in client.get("/devices").json()]
    first = [d["id"] for d in client.get("/devices?limit=2&page=0").json()]
    second = [d["id"] for d in client.get("/devices?limit=2&page=1").json()]
    assert first + second == everything[:4]


def test_an_update_changes_only_the_given_fields(client: Client, headers: dict[str, str]) -> None:
    device_id = new_device(client, headers)
    response = client.put(
        f"/devices/{device_id}", json={"name": "Kitchen", "status_id": 4}, headers=headers
    )
    assert response.status_code == 200
    assert response.json() == {"message": "device updated"}
    body = client.get(f"/devices/{device_id}", headers=headers).json()
    assert (body["name"], body["status_id"]) == ("Kitchen", 4)
    assert (body["description"], body["location"]) == (DEVICE["description"], DEVICE["location"])


def test_a_deleted_device_answers_404_and_leaves_the_list(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers)
    response = client.delete(f"/devices/{device_id}", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"message": "device deleted"}
    assert client.get(f"/devices/{device_id}", headers=headers).status_code == 404
    assert device_id not in {d["id"] for d in client.get("/devices").json()}
    assert client.delete(f"/devices/{device_id}", headers=headers).status_code == 404


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_an_id_that_is_not_a_uuid_answers_400_and_an_unknown_one_404(
    client: Client, headers: dict[str, str], method: str
) -> None:
    for path in ("devices", *COMPONENTS):
        send = getattr(client, method)
        extra: dict[str, Any] = {"json": {}} if method == "put" else {}
        bad = send(f"/{path}/not-a-uuid", headers=headers, **extra)
        assert bad.status_code == 400
        assert set(bad.json()) == {"error"}
        unknown = send(f"/{path}/{uuid4()}", headers=headers, **extra)
        assert unknown.status_code == 404
        assert set(unknown.json()) == {"error"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/devices"),
        ("get", "/devices/{id}"),
        ("put", "/devices/{id}"),
        ("delete", "/devices/{id}"),
        ("get", "/sensors"),
        ("post", "/actors"),
    ],
)
def test_everything_but_the_list_needs_a_token(client: Client, method: str, path: str) -> None:
    response = client.request(method, path.format(id=uuid4()), json=DEVICE)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "body",
    [
        {**DEVICE, "status_id": 0},
        {**DEVICE, "status_id": 5},
        {**DEVICE, "status_id": "one"},
        {**DEVICE, "status_id": None},
        {**DEVICE, "name": ""},
        {**DEVICE, "name": "   "},
        {**DEVICE, "name": 42},
        {k: v for k, v in DEVICE.items() if k != "location"},
        [DEVICE],
        "device",
    ],
)
def test_a_bad_device_answers_400_and_stores_nothing(
    client: Client, headers: dict[str, str], services: App, body: object
) -> None:
    before = event_count(services)
    response = client.post("/devices", json=body, headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert event_count(services) == before


@pytest.mark.parametrize(
    "body", [{"status_id": 9}, {"name": ""}, {"location": 3}, {"name": None}, []]
)
def test_a_bad_update_answers_400_and_changes_nothing(
    client: Client, headers: dict[str, str], services: App, body: object
) -> None:
    device_id = new_device(client, headers)
    before = event_count(services)
    response = client.put(f"/devices/{device_id}", json=body, headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert event_count(services) == before


def test_malformed_json_answers_400_in_each_dialect_and_stores_nothing(
    client: Client, headers: dict[str, str], services: App
) -> None:
    before = event_count(services)
    headers = {**headers, "content-type": "application/json"}
    for path in ("/devices", "/sensors", "/actors"):
        response = client.post(path, content=b'{"name": "x",', headers=headers)
        assert response.status_code == 400
        assert set(response.json()) == {"error"}
    telemetry = client.post("/api/v1/devices", content=b'{"name": ', headers=headers)
    assert is_telemetry_error(telemetry, 400)
    assert event_count(services) == before


@pytest.mark.parametrize("path", COMPONENTS)
def test_a_component_goes_through_its_whole_life(
    client: Client, headers: dict[str, str], path: str
) -> None:
    kind = path.removesuffix("s")
    device_id = new_device(client, headers)
    component_id = new_component(client, headers, path, device_id)
    body = client.get(f"/{path}/{component_id}", headers=headers).json()
    assert set(body) == {
        "id",
        "device_id",
        "name",
        "type",
        "data_type_id",
        "created_at",
        "updated_at",
    }
    assert (body["device_id"], body["name"], body["type"], body["data_type_id"]) == (
        device_id,
        "Temperature",
        "temp",
        1,
    )
    assert RFC3339_SECONDS.match(body["created_at"])
    listed = {c["id"]: c for c in client.get(f"/{path}", headers=headers).json()}
    assert listed[component_id] == body

    update = client.put(
        f"/{path}/{component_id}", json={"name": "Renamed", "data_type_id": 2}, headers=headers
    )
    assert update.json() == {"message": f"{kind} updated"}
    body = client.get(f"/{path}/{component_id}", headers=headers).json()
    assert (body["name"], body["type"], body["data_type_id"]) == ("Renamed", "temp", 2)

    removal = client.delete(f"/{path}/{component_id}", headers=headers)
    assert removal.json() == {"message": f"{kind} deleted"}
    assert client.get(f"/{path}/{component_id}", headers=headers).status_code == 404
    assert component_id not in {c["id"] for c in client.get(f"/{path}", headers=headers).json()}


@pytest.mark.parametrize("path", COMPONENTS)
def test_a_component_moves_to_another_device(
    client: Client, headers: dict[str, str], path: str
) -> None:
    source, target = new_device(client, headers), new_device(client, headers)
    component_id = new_component(client, headers, path, source)
    response = client.put(f"/{path}/{component_id}", json={"device_id": target}, headers=headers)
    assert response.status_code == 200
    assert client.get(f"/{path}/{component_id}", headers=headers).json()["device_id"] == target


def test_a_sensor_is_not_found_among_the_actors(client: Client, headers: dict[str, str]) -> None:
    sensor_id = new_component(client, headers, "sensors", new_device(client, headers))
    assert client.get(f"/actors/{sensor_id}", headers=headers).status_code == 404
    assert client.delete(f"/actors/{sensor_id}", headers=headers).status_code == 404
    assert client.get(f"/sensors/{sensor_id}", headers=headers).status_code == 200


@pytest.mark.parametrize("path", COMPONENTS)
def test_a_component_of_an_unknown_device_answers_404_and_stores_nothing(
    client: Client, headers: dict[str, str], services: App, path: str
) -> None:
    before = event_count(services)
    body = {"device_id": str(uuid4()), "name": "T", "type": "temp", "data_type_id": 1}
    response = client.post(f"/{path}", json=body, headers=headers)
    assert response.status_code == 404
    assert response.json() == {"error": "device not found"}
    assert event_count(services) == before


@pytest.mark.parametrize(
    "change",
    [
        {"data_type_id": 0},
        {"data_type_id": "one"},
        {"name": ""},
        {"device_id": "not-a-uuid"},
        {"type": None, "name": 1},
    ],
)
def test_a_bad_component_answers_400_and_stores_nothing(
    client: Client, headers: dict[str, str], services: App, change: dict[str, Any]
) -> None:
    device_id = new_device(client, headers)
    before = event_count(services)
    body = {"device_id": device_id, "name": "T", "type": "temp", "data_type_id": 1, **change}
    response = client.post("/sensors", json=body, headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert event_count(services) == before


def test_moving_a_component_to_an_unknown_device_answers_404(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers)
    sensor_id = new_component(client, headers, "sensors", device_id)
    response = client.put(
        f"/sensors/{sensor_id}", json={"device_id": str(uuid4())}, headers=headers
    )
    assert response.status_code == 404
    assert client.get(f"/sensors/{sensor_id}", headers=headers).json()["device_id"] == device_id


def test_deleting_a_device_removes_its_sensors_and_actors(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers)
    sensor_id = new_component(client, headers, "sensors", device_id)
    actor_id = new_component(client, headers, "actors", device_id)
    assert client.delete(f"/devices/{device_id}", headers=headers).status_code == 200
    assert client.get(f"/sensors/{sensor_id}", headers=headers).status_code == 404
    assert client.get(f"/actors/{actor_id}", headers=headers).status_code == 404


def test_the_lambda_dialect_never_shows_or_touches_a_private_device(
    client: Client, headers: dict[str, str], services: App
) -> None:
    private_id = new_telemetry_device(client, headers)["id"]
    before = event_count(services)
    assert private_id not in {d["id"] for d in client.get("/devices").json()}
    assert client.get(f"/devices/{private_id}", headers=headers).status_code == 404
    put = client.put(f"/devices/{private_id}", json={"name": "x"}, headers=headers)
    assert put.status_code == 404
    assert client.delete(f"/devices/{private_id}", headers=headers).status_code == 404
    body = {"device_id": private_id, "name": "T", "type": "temp", "data_type_id": 1}
    assert client.post("/sensors", json=body, headers=headers).status_code == 404
    assert event_count(services) == before


def test_a_lambda_device_keeps_its_telemetry_fields_and_vice_versa(
    client: Client, headers: dict[str, str]
) -> None:
    device_id = new_device(client, headers, status_id=3)
    seen = client.get(f"/api/v1/devices/{device_id}", headers=headers).json()
    assert seen == {
        "id": device_id,
        "name": DEVICE["name"],
        "device_type": "",
        "status": "offline",
        "metadata": {},
    }
    patch = {"device_type": "hub", "metadata": {"firmware": "1.2.0"}, "status": "online"}
    client.patch(f"/api/v1/devices/{device_id}", json=patch, headers=headers)
    body = client.get(f"/devices/{device_id}", headers=headers).json()
    assert (body["description"], body["location"], body["status_id"]) == (
        "Living room",
        "Floor 1",
        1,
    )
    client.put(f"/devices/{device_id}", json={"location": "Cellar"}, headers=headers)
    seen = client.get(f"/api/v1/devices/{device_id}", headers=headers).json()
    assert (seen["device_type"], seen["metadata"]) == ("hub", {"firmware": "1.2.0"})
    assert UUID(seen["id"]) == UUID(device_id)
