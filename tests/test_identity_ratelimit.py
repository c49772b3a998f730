"""Failed sign-ins are limited per account and per client address, across processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.bootstrap import Services
from tests.test_identity_support import (
    from_address,
    login_lambda,
    login_telemetry,
    register,
)


def assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_the_11th_wrong_password_within_a_minute_answers_429_while_another_account_signs_in(
    client: TestClient[Any],
) -> None:
    victim, bystander = register(client, "lambda"), register(client, "telemetry")
    for _ in range(9):
        assert login_lambda(client, victim.username, "wrong-password").status_code == 401
    # A success does not count, so this is still the 10th failure, not a 429.
    assert login_telemetry(client, victim.email, victim.password).status_code == 200
    assert login_telemetry(client, victim.email, "wrong-password").status_code == 401

    eleventh = login_lambda(client, victim.username, "wrong-password")
    assert_rate_limited(eleventh)
    assert set(eleventh.json()) == {"error"}
    locked = login_telemetry(client, victim.email, victim.password)
    assert_rate_limited(locked)
    assert locked.json()["error"]["code"] == "RATE_LIMITED"
    assert login_lambda(client, bystander.username, bystander.password).status_code == 200


def test_api_processes_racing_never_allow_more_than_10_failures_per_account(
    client: TestClient[Any], services: Services
) -> None:
    victim = register(client, "lambda")
    with TestClient(create_app(services)) as other_process:
        processes = [client, other_process]

        def attempt(n: int) -> int:
            response = login_lambda(processes[n % 2], victim.username, "wrong-password")
            return int(response.status_code)

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(attempt, range(14)))
    assert statuses == [401] * 10 + [429] * 4


def test_an_address_with_100_failures_within_a_minute_gets_429_for_every_account(
    client: TestClient[Any], services: Services
) -> None:
    """The failures are recorded through the limiter that sign-in uses: 100 wrong
    passwords over HTTP would spend half a minute in argon2 for the same rows."""
    person = register(client, "telemetry")
    for n in range(100):
        services.login_limiter.begin(f"name:probe-{n}@example.com", "198.51.100.7")
    with TestClient(from_address(create_app(services), "198.51.100.7")) as crowded:
        assert_rate_limited(login_telemetry(crowded, person.email, person.password))
        assert_rate_limited(login_lambda(crowded, person.username, person.password))
    assert login_lambda(client, person.username, person.password).status_code == 200
