"""A locked table answers 503 with Retry-After in time, in each dialect, and stores nothing.

Another session holds `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE` (a migration, an
operator's mistake) on the event log or on a read model; requests that need it give
up within the configured bounds instead of waiting for the lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.bootstrap import App
from iotledger.projections.runner import ProjectionRunner
from iotledger.settings import DatabaseUrl, Settings
from tests.support.databases import start_services
from tests.support.identity import unique
from tests.support.processes import wait_until

Client = TestClient[Any]
BOUND = 5.0
"""Seconds any answer may take here: the statement (2 s) and lock (0.5 s) bounds, the
read wait (1 s), and eventsourcing's own table lock (1 s, it takes whole seconds)."""
TABLES = ("iotledger_events", "readings", "users", "devices", "sessions", "login_attempts")
READING = {"telemetry_type": "temperature", "payload": {"celsius": 21}}


@pytest.fixture
def impatient(settings: Settings, fresh_database_url: DatabaseUrl) -> Iterator[App]:
    quick = msgspec.structs.replace(
        settings, statement_timeout=2.0, lock_timeout=0.5, read_wait_timeout=1.0, db_pool_size=4
    )
    services = start_services(quick, fresh_database_url)
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def runners(impatient: App) -> Iterator[list[ProjectionRunner]]:
    with impatient.projections.running() as running:
        yield running


class Fleet(msgspec.Struct):
    """A user of each dialect, signed in, with a device of the Device Telemetry dialect."""

    account: dict[str, str]
    v1: dict[str, str]
    lambda_headers: dict[str, str]
    device: str


def fleet(client: Client) -> Fleet:
    name = unique()
    account = {"username": name, "email": f"{name}@example.com", "password": "secret123"}
    assert client.post("/api/v1/auth/register", json=account).status_code == 201
    token = client.post("/api/v1/auth/login", json=account).json()["access_token"]
    v1 = {"Authorization": f"Bearer {token}"}
    device = client.post(
        "/api/v1/devices", json={"name": "boiler", "device_type": "sensor"}, headers=v1
    )
    assert device.status_code == 201, device.text
    lambda_token = client.post("/login", json=account).json()["token"]
    return Fleet(account, v1, {"Authorization": f"Bearer {lambda_token}"}, device.json()["id"])


@contextmanager
def locked(url: DatabaseUrl, table: str) -> Iterator[None]:
    """`table` locked by another session for as long as the block runs (20 s at most:
    requests that wait for the lock fail the test instead of hanging it)."""
    conn = psycopg.connect(str(url))
    try:
        conn.execute("SET idle_in_transaction_session_timeout = '20s'")
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        with suppress(psycopg.OperationalError):  # ended by the guard
            conn.close()


def rows(url: DatabaseUrl) -> dict[str, int]:
    with psycopg.connect(str(url)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def requests(f: Fleet) -> dict[str, tuple[str, str, Any, dict[str, str]]]:
    """What a user does, by name: (method, path, body, headers)."""
    telemetry = f"/api/v1/devices/{f.device}/telemetry"
    return {
        "create device (v1)": ("POST", "/api/v1/devices", {"name": "x", "device_type": "y"}, f.v1),
        "device history (v1)": ("GET", f"/api/v1/devices/{f.device}/history", None, f.v1),
        "sign in (v1)": ("POST", "/api/v1/auth/login", f.account, {}),
        "sign in (Lambda)": ("POST", "/login", f.account, {}),
        "create device (Lambda)": (
            "POST",
            "/devices",
            {"name": "Room", "description": "d", "location": "l", "status_id": 1},
            f.lambda_headers,
        ),
        "post telemetry (v1)": ("POST", telemetry, READING, f.v1),
        "list telemetry (v1)": ("GET", telemetry, None, f.v1),
    }


def send(
    client: Client, request: tuple[str, str, Any, dict[str, str]]
) -> tuple[httpx.Response, float]:
    method, path, body, headers = request
    started = time.monotonic()
    response = client.request(method, path, json=body, headers=headers)
    return response, time.monotonic() - started


def is_unavailable(path: str, response: httpx.Response) -> bool:
    body = response.json()
    if path.startswith("/api/v1"):
        ok = body["success"] is False and body["error"]["code"] == "UNAVAILABLE"
    else:
        ok = set(body) == {"error"}
    return response.status_code == 503 and int(response.headers["Retry-After"]) > 0 and ok


def running_again(runners: list[ProjectionRunner]) -> None:
    """Wait for the projection runners, which failed behind the lock and back off (5 s)."""
    wait_until(lambda: all(runner.active.is_set() for runner in runners), timeout=15)


# Which requests need which table: each must answer 503 while it is locked.
NEEDS = {
    "iotledger_events": (
        "create device (v1)",
        "device history (v1)",
        "sign in (v1)",
        "create device (Lambda)",
        "post telemetry (v1)",
        "list telemetry (v1)",
    ),
    "users": ("sign in (v1)", "sign in (Lambda)"),
    "readings": ("list telemetry (v1)",),
}


@pytest.mark.parametrize("table", sorted(NEEDS))
def test_a_locked_table_answers_503_with_retry_after_in_time_and_stores_nothing(
    impatient: App,
    runners: list[ProjectionRunner],
    fresh_database_url: DatabaseUrl,
    table: str,
) -> None:
    with TestClient(create_app(impatient)) as client:
        f = fleet(client)
        wanted = requests(f)
        before = rows(fresh_database_url)
        with locked(fresh_database_url, table):
            answers = {name: send(client, wanted[name]) for name in NEEDS[table]}
        for name, (response, seconds) in answers.items():
            print(f"{table} locked: {name} answered {response.status_code} in {seconds:.2f} s")
            path = wanted[name][1]
            assert is_unavailable(path, response), (name, response.status_code, response.text)
            assert seconds < BOUND, (name, seconds)
        assert rows(fresh_database_url) == before
        running_again(runners)
        for name, request in wanted.items():
            response, _ = send(client, request)
            assert response.status_code in (200, 201), (name, response.text)


def test_a_pool_with_no_connection_free_answers_503_with_retry_after_in_time(
    impatient: App, runners: list[ProjectionRunner]
) -> None:
    with TestClient(create_app(impatient)) as client:
        f = fleet(client)
        with ExitStack() as held:
            for _ in range(impatient.settings.db_pool_size):  # every connection it may open
                held.enter_context(impatient.pool.connection())
            answers = {
                path: send(client, ("GET", path, None, headers))
                for path, headers in (("/api/v1/devices", f.v1), ("/devices", f.lambda_headers))
            }
        for path, (response, seconds) in answers.items():
            assert is_unavailable(path, response), (path, response.status_code, response.text)
            assert seconds < BOUND, (path, seconds)
        running_again(runners)
        assert client.get("/api/v1/devices", headers=f.v1).status_code == 200


def test_every_connection_of_a_process_is_bounded_and_named(
    impatient: App, runners: list[ProjectionRunner], fresh_database_url: DatabaseUrl
) -> None:
    with TestClient(create_app(impatient)) as client:
        fleet(client)
    with psycopg.connect(str(fresh_database_url)) as conn:
        seen = conn.execute(
            "SELECT application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        names = {name for (name,) in seen}
    assert names >= {"iotledger-pool", "iotledger-eventstore", "iotledger-watch"}
    assert {f"iotledger-feed-{p}" for p in impatient.views.by_name()} <= names
    assert all(name.startswith("iotledger-") for name in names), names
    timeouts = "SELECT current_setting('statement_timeout') s, current_setting('lock_timeout') l"
    with impatient.pool.connection() as conn:
        assert conn.execute(timeouts).fetchone() == ("2s", "500ms")
    with impatient.ledger.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        assert conn.execute(timeouts).fetchone() == {"s": "2s", "l": "500ms"}
