"""Retention: old readings leave the readings read model; the log keeps every event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from iotledger.adapters.postgres.retention import ReadingRetention
from iotledger.api.app import create_app
from iotledger.bootstrap import App
from iotledger.settings import DatabaseUrl, Settings, load_settings
from tests.support.databases import start_services
from tests.support.identity import register_and_login
from tests.support.ledger import event_count
from tests.support.telemetry import listed, new_telemetry_device, post

Client = TestClient[Any]
NOW = datetime.now(UTC)


@pytest.fixture
def own(settings: Settings, fresh_database_url: DatabaseUrl) -> Iterator[tuple[Client, App]]:
    """A client and its services on a database of their own: pruning touches every device."""
    services = start_services(settings, fresh_database_url)
    try:
        with services.projections.running(), TestClient(create_app(services)) as client:
            yield client, services
    finally:
        services.close()


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def test_readings_past_the_retention_leave_the_read_model_and_the_log_keeps_them(
    own: tuple[Client, App],
) -> None:
    client, services = own
    headers = register_and_login(client)
    device, quiet = (new_telemetry_device(client, headers)["id"] for _ in range(2))
    for age in (10, 6, 1, 0.5):
        post(client, headers, device, recorded_at=days_ago(age), payload={"age": age})
    post(client, headers, quiet, recorded_at=days_ago(8), payload={"age": 8})
    assert len(listed(client, headers, quiet)) == 1  # the read model has every reading
    events = event_count(services)
    daily = f"/api/v1/devices/{device}/telemetry/aggregate?field=age&bucket=1d"
    aggregates = client.get(daily, headers=headers).json()

    pruned = ReadingRetention(services.pool, days=5, batch=1).prune(NOW)

    assert pruned == 3
    assert [r["payload"]["age"] for r in listed(client, headers, device)] == [0.5, 1]
    assert listed(client, headers, quiet) == []
    latest = client.get(f"/api/v1/devices/{quiet}/telemetry/latest", headers=headers)
    assert latest.json() == []
    assert event_count(services) == events
    assert client.get(daily, headers=headers).json() == aggregates  # the rollups stay
    history = client.get(f"/api/v1/devices/{device}/history", headers=headers)
    assert history.status_code == 200
    assert ReadingRetention(services.pool, days=5).prune(NOW) == 0


def test_retention_is_unset_by_default_and_read_from_the_environment() -> None:
    assert load_settings(environ={}).readings_retention_days is None
    given = load_settings(environ={"IOTLEDGER_READINGS_RETENTION_DAYS": "30"})
    assert given.readings_retention_days == 30
