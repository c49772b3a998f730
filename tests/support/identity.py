"""What the identity tests share: people who sign up, sign in and count events.

This module holds no tests of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from litestar.testing import TestClient

from iotledger.bootstrap import Services
from tests.conftest import unique

TELEMETRY_AUTH = "/api/v1/auth"
REGISTER = {"lambda": "/register", "telemetry": f"{TELEMETRY_AUTH}/register"}


class Person(msgspec.Struct):
    username: str
    email: str
    password: str
    id: str = ""


def someone() -> Person:
    username = unique()
    return Person(username, f"{username}@example.com", "secret-" + uuid.uuid4().hex[:8])


def event_count(services: Services) -> int:
    return services.ledger.recorder.max_notification_id() or 0


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


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for something another thread (a projection) makes true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
