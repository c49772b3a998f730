"""Device credentials over HTTP: issued, rotated and revoked in both dialects, in the
device's history, and accepted (HTTP Basic) only for the device's own telemetry and
command answers."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from iotledger.api.app import create_app, create_litestar
from iotledger.bootstrap import App
from tests.support.identity import register_and_login
from tests.support.telemetry import is_telemetry_error, new_telemetry_device

Client = TestClient[Any]
READING = {"telemetry_type": "environment", "payload": {"temperature": 21.5}}
FLEET_DEVICE = {"name": "Fleet thing", "description": "", "location": "hall", "status_id": 1}


def basic(credentials: dict[str, Any]) -> dict[str, str]:
    token = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode())
    return {"Authorization": f"Basic {token.decode()}"}


def issue(client: Client, device_id: str, headers: dict[str, str]) -> Any:
    response = client.post(f"/api/v1/devices/{device_id}/credentials", headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def post_reading(client: Client, device_id: str, headers: dict[str, str]) -> Any:
    return client.post(f"/api/v1/devices/{device_id}/telemetry", json=READING, headers=headers)


def until_refused(client: Client, device_id: str, headers: dict[str, str]) -> float:
    """Seconds until a post with `headers` answers 401 (at most 5)."""
    start = time.monotonic()
    while (answer := post_reading(client, device_id, headers)).status_code != 401:
        assert answer.status_code == 201, answer.text
        assert time.monotonic() - start < 5, "the secret still works after 5 s"
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture(params=["lane", "litestar"])
def either(request: pytest.FixtureRequest, services: App) -> Iterator[Client]:
    """The application `serve` runs (the intake lane first) and Litestar alone."""
    app = create_app(services) if request.param == "lane" else create_litestar(services)
    with TestClient(app) as client:
        yield client


def test_issued_credentials_have_the_documented_shape_and_a_strong_secret(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, headers)
    issued = issue(client, device["id"], headers)
    assert set(issued) == {"device_id", "username", "password", "issued_at"}
    assert issued["device_id"] == device["id"]
    assert issued["username"] == f"device-{device['id']}"
    assert ":" not in issued["username"]
    assert len(base64.urlsafe_b64decode(issued["password"] + "==")) >= 32


def test_a_device_posts_its_own_telemetry_with_its_credentials(
    either: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(either, headers)
    answer = post_reading(either, device["id"], basic(issue(either, device["id"], headers)))
    assert answer.status_code == 201, answer.text
    listed = either.get(f"/api/v1/devices/{device['id']}/telemetry", headers=headers).json()
    assert [reading["id"] for reading in listed] == [answer.json()["id"]]


def test_device_credentials_open_nothing_but_their_own_device(
    either: Client, headers: dict[str, str]
) -> None:
    mine, other = new_telemetry_device(either, headers), new_telemetry_device(either, headers)
    device = basic(issue(either, mine["id"], headers))
    assert is_telemetry_error(post_reading(either, other["id"], device), 401)
    assert is_telemetry_error(either.get(f"/api/v1/devices/{mine['id']}", headers=device), 401)
    listing = either.get(f"/api/v1/devices/{mine['id']}/telemetry", headers=device)
    assert is_telemetry_error(listing, 401)
    command = {"command_name": "reboot"}
    issued = either.post(f"/api/v1/devices/{mine['id']}/commands", json=command, headers=device)
    assert is_telemetry_error(issued, 401)
    lambda_list = either.get("/sensors", headers=device)
    assert lambda_list.status_code == 401
    assert set(lambda_list.json()) == {"error"}


def test_a_device_answers_its_own_command_with_its_credentials(
    client: Client, headers: dict[str, str]
) -> None:
    mine, other = new_telemetry_device(client, headers), new_telemetry_device(client, headers)
    device = basic(issue(client, mine["id"], headers))
    path = f"/api/v1/devices/{mine['id']}/commands"
    command = client.post(path, json={"command_name": "reboot"}, headers=headers).json()
    answer = client.patch(f"{path}/{command['id']}", json={"status": "executed"}, headers=device)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "executed"
    foreign = f"/api/v1/devices/{other['id']}/commands/{command['id']}"
    assert is_telemetry_error(client.patch(foreign, json={"status": "failed"}, headers=device), 401)


def test_a_rotated_secret_stops_working_within_5_seconds(
    either: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(either, headers)
    first = issue(either, device["id"], headers)
    assert post_reading(either, device["id"], basic(first)).status_code == 201
    second = issue(either, device["id"], headers)
    assert second["username"] == first["username"]
    assert second["password"] != first["password"]
    until_refused(either, device["id"], basic(first))
    assert post_reading(either, device["id"], basic(second)).status_code == 201


def test_a_revoked_secret_stops_working_within_5_seconds(
    either: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(either, headers)
    issued = issue(either, device["id"], headers)
    assert post_reading(either, device["id"], basic(issued)).status_code == 201
    revoked = either.delete(f"/api/v1/devices/{device['id']}/credentials", headers=headers)
    assert revoked.status_code == 204
    until_refused(either, device["id"], basic(issued))
    again = either.delete(f"/api/v1/devices/{device['id']}/credentials", headers=headers)
    assert is_telemetry_error(again, 404)


def test_the_history_shows_which_secret_was_valid_when_but_never_a_secret(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, headers)
    secrets = [issue(client, device["id"], headers)["password"] for _ in range(2)]
    client.delete(f"/api/v1/devices/{device['id']}/credentials", headers=headers)
    history = client.get(f"/api/v1/devices/{device['id']}/history", headers=headers).json()
    kinds = [entry["type"] for entry in history]
    assert kinds[-3:] == [
        "Device.CredentialsIssued",
        "Device.CredentialsRotated",
        "Device.CredentialsRevoked",
    ]
    assert {entry["caused_by"] for entry in history[-3:]} == {history[0]["caused_by"]}
    assert history[-3]["data"]["secret_hash"] != history[-2]["data"]["secret_hash"]
    assert not any(secret in str(history) for secret in secrets)


def test_credentials_follow_the_device_tenancy_in_both_dialects(
    client: Client, headers: dict[str, str]
) -> None:
    private = new_telemetry_device(client, headers)
    stranger = register_and_login(client)
    path = f"/api/v1/devices/{private['id']}/credentials"
    assert is_telemetry_error(client.post(path, headers=stranger), 404)
    assert is_telemetry_error(client.delete(path, headers=stranger), 404)
    lambda_path = f"/devices/{private['id']}/credentials"
    refused = client.post(lambda_path, headers=headers)
    assert refused.status_code == 404
    assert set(refused.json()) == {"error"}
    assert client.post(f"/devices/{uuid4()}/credentials", headers=headers).status_code == 404


def test_the_lambda_dialect_issues_and_revokes_credentials_of_fleet_devices(
    client: Client, headers: dict[str, str]
) -> None:
    created = client.post("/devices", json=FLEET_DEVICE, headers=headers).json()
    issued = client.post(f"/devices/{created['id']}/credentials", headers=headers)
    assert issued.status_code == 201
    assert set(issued.json()) == {"device_id", "username", "password", "issued_at"}
    assert post_reading(client, created["id"], basic(issued.json())).status_code == 201
    revoked = client.delete(f"/devices/{created['id']}/credentials", headers=headers)
    assert (revoked.status_code, revoked.json()) == (200, {"message": "credentials revoked"})
    until_refused(client, created["id"], basic(issued.json()))
    anonymous = client.post(f"/devices/{created['id']}/credentials")
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"error"}


def test_malformed_basic_credentials_answer_401(client: Client, headers: dict[str, str]) -> None:
    device = new_telemetry_device(client, headers)
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic "):
        refused = post_reading(client, device["id"], {"Authorization": value})
        assert is_telemetry_error(refused, 401)
