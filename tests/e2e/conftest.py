"""Fixtures of the end-to-end tier: a migrated database for `iotledger` processes, and the
whole application as schemathesis calls it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import schemathesis
from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.settings import DatabaseUrl, MqttUrl, Settings
from tests.support.databases import create_database, drop_database, start_services
from tests.support.identity import register_and_login
from tests.support.mqtt import Adapter, LoopThread
from tests.support.network import free_port
from tests.support.processes import environment, run

SEED = 11
"""Schemathesis draws the same cases every run."""


@pytest.fixture
def migrated(own_database: DatabaseUrl, mqtt_url: MqttUrl) -> tuple[int, dict[str, str]]:
    """A free port, and the environment of `iotledger` processes on their own database,
    migrated (what single roles need before they start)."""
    port = free_port()
    env = environment(own_database, mqtt_url, IOTLEDGER_PORT=str(port))
    assert run("migrate", env=env).returncode == 0
    return port, env


@pytest.fixture(scope="module")
def fuzzed(
    settings: Settings, server_url: DatabaseUrl, mqtt_url: MqttUrl, mqtt_loop: LoopThread
) -> Iterator[tuple[Any, dict[str, str]]]:
    """The application `serve` runs, with its MQTT role, on a database and a base topic of
    its own; and a signed-in user."""
    url = create_database(server_url)
    topic = f"iotledger-fuzz-{uuid.uuid4().hex[:8]}"
    own = msgspec.structs.replace(settings, mqtt_topic=topic, db_pool_size=4)
    services = start_services(own, url)
    runners = services.projections.start()
    adapter = Adapter(mqtt_loop, services, mqtt_url, embedded=mqtt_url.port != 1883)
    app = create_app(services, adapter.role.link)
    try:
        with TestClient(app) as client:
            yield app, register_and_login(client)
    finally:
        adapter.close()
        services.projections.stop(runners)
        services.close()
        drop_database(server_url, url)


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[Any, dict[str, str]]) -> Any:
    app, _ = fuzzed
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    schema.config.seed = SEED
    return schema


@pytest.fixture(scope="module")
def signed_in(fuzzed: tuple[Any, dict[str, str]]) -> dict[str, str]:
    return fuzzed[1]


@pytest.fixture
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 names each operation's subtest through `Node._nodeid`, which
    pytest 9 no longer sets: give it one to read. The schemathesis modules use it."""
    request.node._nodeid = request.node.nodeid
