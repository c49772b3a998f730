"""Sign-up and sign-in over HTTP: one set of users behind both dialects."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from argon2 import PasswordHasher as Argon2Hasher
from litestar.testing import TestClient

from iotledger.application.users import RehashPassword
from iotledger.bootstrap import App
from tests.support.identity import (
    REGISTER,
    TELEMETRY_AUTH,
    bearer,
    login_lambda,
    login_telemetry,
    register,
    someone,
)
from tests.support.ledger import event_count
from tests.support.waiting import eventually


def test_telemetry_sign_up_answers_201_with_id_username_and_email(
    client: TestClient[Any],
) -> None:
    person = someone()
    response = client.post(
        f"{TELEMETRY_AUTH}/register",
        json={"username": person.username, "email": person.email, "password": person.password},
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "username": person.username, "email": person.email}
    assert UUID(body["id"])


def test_a_lambda_user_signs_in_through_the_telemetry_dialect(client: TestClient[Any]) -> None:
    person = register(client, "lambda")
    response = login_telemetry(client, person.email.upper(), person.password)
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "expires_in"}
    assert response.json()["expires_in"] == 3600
    me = client.get(f"{TELEMETRY_AUTH}/me", headers=bearer(response.json()["access_token"]))
    assert me.json() == {"id": person.id, "username": person.username, "email": person.email}


def test_a_telemetry_user_signs_in_through_the_lambda_dialect(client: TestClient[Any]) -> None:
    person = register(client, "telemetry")
    response = login_lambda(client, person.username.upper(), person.password)
    assert response.status_code == 200
    claims = client.get("/protected", headers=bearer(response.json()["token"])).json()["claims"]
    assert (claims["sub"], claims["user_id"]) == (person.username, person.id)


@pytest.mark.parametrize(("first", "second"), [("lambda", "telemetry"), ("telemetry", "lambda")])
def test_usernames_and_emails_are_unique_across_dialects_whatever_the_case(
    client: TestClient[Any], services: App, first: str, second: str
) -> None:
    taken = register(client, first)
    before = event_count(services)
    same_name, same_email = someone(), someone()
    same_name.username = taken.username.upper()
    same_email.email = taken.email.upper()
    for person in (same_name, same_email):
        response = client.post(
            REGISTER[second],
            json={"username": person.username, "email": person.email, "password": "secret123"},
        )
        assert response.status_code == 409
    assert event_count(services) == before


def test_a_composed_and_a_decomposed_name_are_one_user(client: TestClient[Any]) -> None:
    person = someone()
    composed = "Jos\u00e9" + person.username  # é as one code point
    decomposed = "JOSE\u0301" + person.username.upper()  # E, then a combining acute
    email = f"ren\u00e9.{person.email}"
    body = {"username": composed, "email": email, "password": person.password}
    assert client.post(REGISTER["lambda"], json=body).status_code == 201
    twin = {
        "username": decomposed,
        "email": f"RENE\u0301.{person.email}",
        "password": person.password,
    }
    assert client.post(REGISTER["telemetry"], json=twin).status_code == 409
    assert login_lambda(client, decomposed, person.password).status_code == 200
    signed_in = login_telemetry(client, f"rene\u0301.{person.email}", person.password)
    assert signed_in.status_code == 200


def test_concurrent_sign_ups_of_one_username_leave_exactly_one_user(
    client: TestClient[Any], services: App
) -> None:
    person = someone()

    def sign_up(n: int) -> int:
        body = {"username": person.username, "email": f"{n}.{person.email}", "password": "secret1"}
        return int(client.post("/register", json=body).status_code)

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(sign_up, range(4)))
    assert statuses == [201, 409, 409, 409]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "email": "a@example.com", "password": "secret123"},
        {"username": "x" * 51, "email": "a@example.com", "password": "secret123"},
        {"username": " padded ", "email": "a@example.com", "password": "secret123"},
        {"username": "valid-name", "email": "a@example.com", "password": "short"},
        {"username": "valid-name", "email": "not-an-email", "password": "secret123"},
        {"username": "valid-name", "email": "a@example.com\n", "password": "secret123"},
        {"username": "valid-name", "password": "secret123"},
        {"username": "valid-name", "email": 7, "password": "secret123"},
        {"username": ["valid-name"], "email": "a@example.com", "password": "secret123"},
        [],
    ],
)
def test_bad_telemetry_sign_up_answers_400_in_its_body_and_stores_nothing(
    client: TestClient[Any], services: App, body: object
) -> None:
    before = event_count(services)
    response = client.post(f"{TELEMETRY_AUTH}/register", json=body)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert event_count(services) == before


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (f"{TELEMETRY_AUTH}/login", b'{"email": "a@example.com", '),
        (f"{TELEMETRY_AUTH}/login", b'{"email": "a@example.com"}'),
        (f"{TELEMETRY_AUTH}/login", b'{"email": 1, "password": "secret123"}'),
        (f"{TELEMETRY_AUTH}/register", b"not json"),
        ("/login", b'{"username": "abc", '),
        ("/login", b'{"username": "abc"}'),
        ("/login", b'{"username": "abc", "password": 123456}'),
        ("/register", b'{"username": "abc", "password": "secret123", "email": "nope"}'),
    ],
)
def test_malformed_sign_in_and_sign_up_answer_400_in_the_dialects_body(
    client: TestClient[Any], services: App, path: str, content: bytes
) -> None:
    before = event_count(services)
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    if path.startswith("/api/v1"):
        assert body["success"] is False
        assert body["error"]["code"] == "VALIDATION_ERROR"
    else:
        assert set(body) == {"error"}
    assert event_count(services) == before


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(
    client: TestClient[Any],
) -> None:
    person = register(client, "telemetry")
    for login, name in ((login_lambda, person.username), (login_telemetry, person.email)):
        wrong_password = login(client, name, "not-the-password")
        unknown_user = login(client, "nobody-" + name, "not-the-password")
        assert wrong_password.status_code == unknown_user.status_code == 401
        assert wrong_password.json() == unknown_user.json()
    assert wrong_password.json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert unknown_user.json()["error"]["message"] == "invalid credentials"


def test_a_hash_with_older_parameters_is_rehashed_at_the_next_sign_in(
    client: TestClient[Any], services: App
) -> None:
    person = register(client, "lambda")
    user_id = UUID(person.id)
    current = services.ledger.user(user_id).password_hash
    weak = Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1).hash(person.password)
    services.ledger.rehash_password(RehashPassword(user_id, current, weak))
    eventually(lambda: getattr(services.views.users.by_id(user_id), "password_hash", "") == weak)
    response = login_lambda(client, person.username, person.password)
    assert response.status_code == 200
    rehashed = services.ledger.user(user_id)
    assert rehashed.password_hash not in (current, weak)
    assert not services.hasher.needs_rehash(rehashed.password_hash)
    assert login_lambda(client, person.username, person.password).status_code == 200
