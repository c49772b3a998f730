"""Device Telemetry commands over HTTP: create, list, answer, and the auditors' history."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from iotledger.bootstrap import App
from tests.support.identity import register_and_login
from tests.support.ledger import event_count
from tests.support.telemetry import new_actor, new_command

Headers = dict[str, str]


def commands_of(device: str) -> str:
    return f"/api/v1/devices/{device}/commands"


def test_creating_a_command_answers_201_pending(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    created = new_command(client, module_auth_headers, device)
    assert set(created) == {"id", "command_name", "payload", "status", "state"}
    assert created["command_name"] == "restart"
    assert created["payload"] == {"delay": 5}
    assert (created["status"], created["state"]) == ("pending", "issued")


def test_the_list_shows_commands_in_issued_order_page_by_page(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    ids = [
        new_command(client, module_auth_headers, device, command_name=f"c{i}")["id"]
        for i in range(3)
    ]
    first = client.get(commands_of(device), params={"limit": 2}, headers=module_auth_headers)
    assert first.status_code == 200
    assert first.headers["X-Limit"] == "2"
    cursor = first.headers["X-Next-Cursor"]
    second = client.get(commands_of(device), params={"cursor": cursor}, headers=module_auth_headers)
    assert "X-Next-Cursor" not in second.headers
    listed = first.json() + second.json()
    assert [c["id"] for c in listed] == ids
    assert all(c["status"] == "pending" and "executed_at" not in c for c in listed)


def test_a_device_polling_over_rest_reports_a_command_executed(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    command = new_command(client, module_auth_headers, device)
    pending = client.get(
        commands_of(device), params={"status": "pending"}, headers=module_auth_headers
    )
    assert [c["id"] for c in pending.json()] == [command["id"]]
    answer = {"status": "executed", "executed_at": "2025-08-22T12:40:00Z", "result": {"ok": 1}}
    response = client.patch(
        f"{commands_of(device)}/{command['id']}", json=answer, headers=module_auth_headers
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": command["id"],
        "command_name": "restart",
        "payload": {"delay": 5},
        "status": "executed",
        "state": "executed",
        "executed_at": "2025-08-22T12:40:00Z",
        "result": {"ok": 1},
    }
    listed = client.get(commands_of(device), headers=module_auth_headers).json()
    assert listed[0]["status"] == "executed"
    assert (
        client.get(
            commands_of(device), params={"status": "pending"}, headers=module_auth_headers
        ).json()
        == []
    )


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("executed", "failed"),
        ("failed", "executed"),
        ("cancelled", "executed"),
        ("executed", "cancelled"),
    ],
)
def test_an_impossible_transition_answers_409(
    client: TestClient[object], module_auth_headers: Headers, first: str, then: str
) -> None:
    device = new_actor(client, module_auth_headers)
    path = f"{commands_of(device)}/{new_command(client, module_auth_headers, device)['id']}"
    assert (
        client.patch(path, json={"status": first}, headers=module_auth_headers).status_code == 200
    )
    response = client.patch(path, json={"status": then}, headers=module_auth_headers)
    assert response.status_code == 409
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "CONFLICT"
    assert client.get(path, headers=module_auth_headers).json()["state"] == first


def test_a_commands_status_keeps_to_the_documents_words_and_its_state_tells_the_rest(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    acknowledged, cancelled = (new_command(client, module_auth_headers, device) for _ in "ab")
    for command, answer in ((acknowledged, "acknowledged"), (cancelled, "cancelled")):
        path = f"{commands_of(device)}/{command['id']}"
        response = client.patch(path, json={"state": answer}, headers=module_auth_headers)
        assert response.status_code == 200
        assert response.json()["state"] == answer
    listed = client.get(commands_of(device), headers=module_auth_headers).json()
    assert [(c["status"], c["state"], c.get("reason")) for c in listed] == [
        ("pending", "acknowledged", None),
        ("failed", "cancelled", "cancelled on request"),
    ]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("pending", ["issued", "acknowledged"]),
        ("failed", ["failed", "cancelled"]),
        ("executed", ["executed"]),
        ("issued", ["issued"]),
        ("acknowledged", ["acknowledged"]),
        ("cancelled", ["cancelled"]),
        ("dispatched", []),
    ],
)
def test_the_status_filter_takes_either_vocabulary(
    client: TestClient[object], module_auth_headers: Headers, word: str, expected: list[str]
) -> None:
    device = new_actor(client, module_auth_headers)
    for answer in (None, "acknowledged", "executed", "failed", "cancelled"):
        command = new_command(client, module_auth_headers, device)
        if answer is not None:
            path = f"{commands_of(device)}/{command['id']}"
            client.patch(path, json={"status": answer}, headers=module_auth_headers)
    response = client.get(commands_of(device), params={"status": word}, headers=module_auth_headers)
    assert response.status_code == 200
    assert [c["state"] for c in response.json()] == expected


def test_an_unknown_status_filter_answers_400(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    response = client.get(
        commands_of(device), params={"status": "done"}, headers=module_auth_headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_repeating_an_answer_is_harmless(
    client: TestClient[object], module_auth_headers: Headers, services: App
) -> None:
    device = new_actor(client, module_auth_headers)
    path = f"{commands_of(device)}/{new_command(client, module_auth_headers, device)['id']}"
    assert (
        client.patch(path, json={"status": "executed"}, headers=module_auth_headers).status_code
        == 200
    )
    before = event_count(services)
    assert (
        client.patch(path, json={"status": "executed"}, headers=module_auth_headers).status_code
        == 200
    )
    assert event_count(services) == before


def test_a_time_to_live_shows_when_the_command_expires(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    created = new_command(client, module_auth_headers, device, ttl_seconds=3600)
    assert created["status"] == "pending"
    assert created["expires_at"].endswith("Z")


def test_the_history_shows_every_event_and_who_caused_it(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    command = new_command(client, module_auth_headers, device)
    path = f"{commands_of(device)}/{command['id']}"
    client.patch(path, json={"status": "acknowledged"}, headers=module_auth_headers)
    client.patch(path, json={"status": "failed", "result": "jammed"}, headers=module_auth_headers)
    history = client.get(f"{path}/history", headers=module_auth_headers).json()
    assert [(h["type"], h["version"]) for h in history] == [
        ("Command.Issued", 1),
        ("Command.Acknowledged", 2),
        ("Command.Failed", 3),
    ]
    assert len({h["caused_by"] for h in history}) == 1
    assert history[0]["caused_by"].startswith("user:")
    assert history[0]["data"]["command_name"] == "restart"
    assert history[2]["data"]["result"] == "jammed"


def test_a_foreign_devices_commands_answer_404(
    client: TestClient[object], module_auth_headers: Headers, services: App
) -> None:
    device = new_actor(client, module_auth_headers)
    command = new_command(client, module_auth_headers, device)["id"]
    stranger = register_and_login(client)
    before = event_count(services)
    path = f"{commands_of(device)}/{command}"
    answers = [
        client.get(commands_of(device), headers=stranger),
        client.post(commands_of(device), json={"command_name": "x"}, headers=stranger),
        client.get(path, headers=stranger),
        client.patch(path, json={"status": "executed"}, headers=stranger),
        client.get(f"{path}/history", headers=stranger),
    ]
    assert [a.status_code for a in answers] == [404] * 5
    assert all(a.json()["error"]["code"] == "NOT_FOUND" for a in answers)
    assert event_count(services) == before


def test_a_command_under_another_devices_path_answers_404(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device, other = new_actor(client, module_auth_headers), new_actor(client, module_auth_headers)
    command = new_command(client, module_auth_headers, device)["id"]
    path = f"{commands_of(other)}/{command}"
    assert client.get(path, headers=module_auth_headers).status_code == 404
    assert (
        client.patch(path, json={"status": "executed"}, headers=module_auth_headers).status_code
        == 404
    )
    assert client.get(f"{path}/history", headers=module_auth_headers).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"command_name": ""},
        {"command_name": "x" * 101},
        {"command_name": 5},
        {"command_name": "restart", "payload": [1, 2]},
        {"command_name": "restart", "ttl_seconds": 0},
        [],
    ],
)
def test_a_bad_command_answers_400_and_stores_nothing(
    client: TestClient[object], module_auth_headers: Headers, services: App, body: object
) -> None:
    device = new_actor(client, module_auth_headers)
    before = event_count(services)
    response = client.post(commands_of(device), json=body, headers=module_auth_headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert event_count(services) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "pending"},
        {"status": "done"},
        {"state": "issued"},
        {"status": "executed", "state": "failed"},
        {"status": "executed", "executed_at": "yesterday"},
    ],
)
def test_a_bad_answer_answers_400_and_stores_nothing(
    client: TestClient[object], module_auth_headers: Headers, services: App, body: object
) -> None:
    device = new_actor(client, module_auth_headers)
    path = f"{commands_of(device)}/{new_command(client, module_auth_headers, device)['id']}"
    before = event_count(services)
    assert client.patch(path, json=body, headers=module_auth_headers).status_code == 400
    assert event_count(services) == before


def test_commands_need_a_signed_in_user(
    client: TestClient[object], module_auth_headers: Headers
) -> None:
    device = new_actor(client, module_auth_headers)
    assert client.get(commands_of(device)).status_code == 401
