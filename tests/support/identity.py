"""People who sign up and sign in, in either dialect: the first step of most tests."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar.testing import TestClient

TELEMETRY_AUTH = "/api/v1/auth"
REGISTER = {"lambda": "/register", "telemetry": f"{TELEMETRY_AUTH}/register"}


class Person(msgspec.Struct):
    username: str
    email: str
    password: str
    id: str = ""


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def register_and_login(client: TestClient[Any]) -> dict[str, str]:
    """A new user signed in through the Lambda dialect: its Authorization header."""
    username = unique()
    password = "secret-" + uuid.uuid4().hex[:8]
    assert (
        client.post("/register", json={"username": username, "password": password}).status_code
        == 201
    )
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['token']}"}


def someone() -> Person:
    username = unique()
    return Person(username, f"{username}@example.com", "secret-" + uuid.uuid4().hex[:8])


def register(client: TestClient[Any], dialect: str, person: Person | None = None) -> Person:
    """Sign someone up through `dialect` ("lambda" or "telemetry"), email included."""
    person = person or someone()
    body = {"username": person.username, "email": person.email, "password": person.password}
    response = client.post(REGISTER[dialect], json=body)
    assert response.status_code == 201, response.text
    person.id = response.json()["id"]
    return person


def login_lambda(client: TestClient[Any], username: str, password: str) -> Any:
    return client.post("/login", json={"username": username, "password": password})


def login_telemetry(client: TestClient[Any], email: str, password: str) -> Any:
    return client.post(f"{TELEMETRY_AUTH}/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def from_address(app: Any, host: str) -> Any:
    """The app as a client at `host` reaches it (the test client always says 'testclient')."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (host, 40000)}
        await app(scope, receive, send)

    return asgi
