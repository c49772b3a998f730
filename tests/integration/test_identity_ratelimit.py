"""Failed sign-ins are limited per account and client, per account and per client, across
processes; behind a trusted proxy the client is the one `X-Forwarded-For` names."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.bootstrap import App
from tests.support.identity import from_address, login_lambda, login_telemetry, register


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
    client: TestClient[Any], services: App
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
    client: TestClient[Any], services: App
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


def test_ten_wrong_passwords_from_one_client_do_not_lock_the_owner_out_elsewhere(
    services: App,
) -> None:
    with (
        TestClient(from_address(create_app(services), "203.0.113.5")) as guesser,
        TestClient(from_address(create_app(services), "203.0.113.99")) as owner,
    ):
        victim = register(owner, "lambda")
        for _ in range(10):
            assert login_lambda(guesser, victim.username, "wrong-password").status_code == 401
        assert_rate_limited(login_lambda(guesser, victim.username, victim.password))
        assert login_lambda(owner, victim.username, victim.password).status_code == 200
        assert login_telemetry(owner, victim.email, victim.password).status_code == 200


def test_an_account_with_100_failures_from_anywhere_within_a_minute_answers_429(
    client: TestClient[Any], services: App
) -> None:
    victim = register(client, "telemetry")
    account = f"user:{victim.id}"
    for n in range(100):
        services.login_limiter.begin(account, f"2001:db8::{n:x}")
    with TestClient(from_address(create_app(services), "203.0.113.200")) as elsewhere:
        assert_rate_limited(login_telemetry(elsewhere, victim.email, victim.password))


def behind_proxy(services: App, proxies: str) -> App:
    """Another API process of the same deployment, configured with trusted proxies."""
    settings = msgspec.structs.replace(services.settings, trusted_proxies=(proxies,))
    return dataclasses.replace(services, settings=settings)


def test_behind_a_trusted_proxy_x_forwarded_for_names_the_client(services: App) -> None:
    app = create_app(behind_proxy(services, "10.9.0.0/16"))
    with TestClient(from_address(app, "10.9.0.1")) as balancer:
        victim = register(balancer, "lambda")

        def login(password: str, forwarded: str) -> int:
            body = {"username": victim.username, "password": password}
            headers = {"X-Forwarded-For": forwarded}
            return int(balancer.post("/login", json=body, headers=headers).status_code)

        for _ in range(10):  # the client writes its own left part; the proxy appends the peer
            assert login("wrong-password", "1.2.3.4, 192.0.2.10, 10.9.0.7") == 401
        assert login(victim.password, "5.6.7.8, 192.0.2.10") == 429
        assert login(victim.password, "192.0.2.11") == 200


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(services: App) -> None:
    app = create_app(behind_proxy(services, "10.9.0.0/16"))
    with TestClient(from_address(app, "192.0.2.50")) as direct:
        victim = register(direct, "telemetry")
        body = {"email": victim.email, "password": "wrong-password"}
        for n in range(10):
            headers = {"X-Forwarded-For": f"198.51.100.{n}"}
            response = direct.post("/api/v1/auth/login", json=body, headers=headers)
            assert response.status_code == 401
        assert_rate_limited(login_telemetry(direct, victim.email, victim.password))
