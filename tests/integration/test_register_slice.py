"""The first road through every layer: sign-up of the Lambda IoT Core dialect."""

from __future__ import annotations

from uuid import UUID

import pytest
from litestar.testing import TestClient

from iotledger.bootstrap import App
from tests.support.identity import unique
from tests.support.ledger import event_count


def test_registering_answers_201_with_the_new_users_id(client: TestClient[object]) -> None:
    username = unique()
    response = client.post("/register", json={"username": username, "password": "secret123"})
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == username
    assert UUID(body["id"])


def test_a_registered_user_is_in_the_read_model_at_once(
    client: TestClient[object], services: App
) -> None:
    username = unique()
    response = client.post(
        "/register",
        json={"username": username, "password": "secret123", "email": f"{username}@example.com"},
    )
    found = services.views.users.by_username(username.upper())
    assert found is not None
    assert str(found.id) == response.json()["id"]
    assert found.email == f"{username}@example.com"
    assert found.password_hash.startswith("$argon2id$")


def test_a_second_registration_of_the_same_username_answers_409(
    client: TestClient[object], services: App
) -> None:
    username = unique()
    assert (
        client.post("/register", json={"username": username, "password": "secret123"}).status_code
        == 201
    )
    before = event_count(services)
    again = client.post(
        "/register", json={"username": username.upper(), "password": "other-secret"}
    )
    assert again.status_code == 409
    assert again.json() == {"error": "username or email already exists"}
    assert event_count(services) == before


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "password": "secret123"},
        {"username": "x" * 51, "password": "secret123"},
        {"username": "valid-name", "password": "short"},
        {"username": "valid-name"},
        {"password": "secret123"},
        {"username": 12345, "password": "secret123"},
        [],
        "text",
    ],
)
def test_bad_sign_up_input_answers_400_in_the_lambda_body_and_stores_nothing(
    client: TestClient[object], services: App, body: object
) -> None:
    before = event_count(services)
    response = client.post("/register", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert response.json()["error"]
    assert event_count(services) == before


def test_malformed_json_answers_400_and_stores_nothing(
    client: TestClient[object], services: App
) -> None:
    before = event_count(services)
    response = client.post(
        "/register", content=b'{"username": "abc", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert event_count(services) == before


def test_a_body_over_the_limit_answers_413_and_stores_nothing(
    client: TestClient[object], services: App
) -> None:
    before = event_count(services)
    huge = {"username": unique(), "password": "x" * (2 * 1024 * 1024)}
    response = client.post("/register", json=huge)
    assert response.status_code == 413
    assert set(response.json()) == {"error"}
    assert event_count(services) == before


def test_unknown_paths_answer_404_in_each_dialects_body(client: TestClient[object]) -> None:
    lambda_404 = client.get("/no-such-thing")
    assert lambda_404.status_code == 404
    assert lambda_404.json() == {"error": "resource not found"}
    telemetry_404 = client.get("/api/v1/no-such-thing")
    assert telemetry_404.status_code == 404
    assert telemetry_404.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "resource not found"},
    }


def test_health_hello_and_the_openapi_document(client: TestClient[object]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/hello").json() == {"message": "hello from lambdaiot"}
    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.1")
    assert "/register" in schema.json()["paths"]
    assert client.get("/schema").status_code == 200


@pytest.mark.parametrize("path", ["/health", "/hello"])
def test_a_load_balancers_head_request_answers_200_without_a_body(
    client: TestClient[object], path: str
) -> None:
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""
