"""Fixtures the outer tiers share: the real PostgreSQL and the real broker of this machine.

Tests use PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883 when they
answer (a fresh database per test session), and the embedded ones when they don't,
so the suite runs on a machine that has nothing but Python.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from iotledger.adapters.embedded.services import EmbeddedBroker, EmbeddedPostgres
from iotledger.api.app import create_app
from iotledger.bootstrap import App
from iotledger.settings import DatabaseUrl, MqttUrl, Settings, parse_database_url
from tests.support.databases import (
    LOCAL_POSTGRES,
    migrated_services,
    new_database,
    start_services,
)
from tests.support.identity import register_and_login
from tests.support.mqtt import Adapter, LoopThread
from tests.support.network import answers, free_port


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseUrl]:
    """A PostgreSQL server to create test databases in."""
    url = parse_database_url(LOCAL_POSTGRES)
    if answers(url.host, url.port):
        yield url
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield parse_database_url(embedded.start())
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def database_url(server_url: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """One database for the session, migrated once."""
    with new_database(server_url) as url:
        yield url


@pytest.fixture
def fresh_database_url(server_url: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """A database of its own, for tests that count everything in it."""
    with new_database(server_url) as url:
        yield url


class BrokerThread:
    """An embedded broker on its own loop, for machines without Mosquitto."""

    def __init__(self, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.broker = EmbeddedBroker("127.0.0.1", port)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.broker.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.broker.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[MqttUrl]:
    if answers("127.0.0.1", 1883):
        yield MqttUrl(host="127.0.0.1", port=1883, username=None, password=None)
        return
    broker = BrokerThread(free_port())
    broker.start()
    try:
        yield MqttUrl(host="127.0.0.1", port=broker.broker.port, username=None, password=None)
    finally:
        broker.stop()


TEST_POOL_SIZE = 5
"""Connections of each pool of the tests' services and processes: the suite runs many at
once against one PostgreSQL, whose default limit is 100 connections."""


@pytest.fixture(scope="session")
def settings(
    database_url: DatabaseUrl, mqtt_url: MqttUrl, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_topic=f"iotledger-test-{uuid.uuid4().hex[:8]}",
        data_dir=Path(tmp_path_factory.mktemp("var")),
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        cookie_secure=False,
        db_pool_size=TEST_POOL_SIZE,
    )


@pytest.fixture(scope="session")
def services(settings: Settings, database_url: DatabaseUrl) -> Iterator[App]:
    """Every part of iotledger against the session database, projections running."""
    services = start_services(settings, database_url)
    try:
        with services.projections.running():
            yield services
    finally:
        services.close()


@pytest.fixture
def quiet_services(settings: Settings, fresh_database_url: DatabaseUrl) -> Iterator[App]:
    """Every part on a database of its own, with no projection running yet."""
    with migrated_services(settings, fresh_database_url) as services:
        yield services


@pytest.fixture
def client(services: App, request: pytest.FixtureRequest) -> Iterator[TestClient[object]]:
    """The HTTP API; in a test that runs the `mqtt` role too, it publishes through its link."""
    publisher = None
    if "mqtt_adapter" in request.fixturenames:
        publisher = request.getfixturevalue("mqtt_adapter").role.link
    with TestClient(create_app(services, publisher)) as client:
        yield client


@pytest.fixture
def auth_headers(client: TestClient[object]) -> dict[str, str]:
    return register_and_login(client)


@pytest.fixture(scope="session")
def mqtt_loop() -> Iterator[LoopThread]:
    """The event loop the MQTT adapter and the devices of the tests run on."""
    loop = LoopThread()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture(scope="session")
def mqtt_adapter(services: App, mqtt_url: MqttUrl, mqtt_loop: LoopThread) -> Iterator[Adapter]:
    """The `mqtt` role running in-process against the session's broker; the `client` of a
    test that uses it publishes through its link."""
    embedded = mqtt_url.port != 1883  # no Mosquitto here: conftest started the embedded broker
    adapter = Adapter(mqtt_loop, services, mqtt_url, embedded=embedded)
    try:
        yield adapter
    finally:
        adapter.close()


@pytest.fixture(scope="module")
def headers(services: App) -> dict[str, str]:
    """One user signed in for a whole test module: signing in (argon2) is the slow part."""
    with TestClient(create_app(services)) as client:
        return register_and_login(client)


@pytest.fixture(scope="module")
def module_auth_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers`, by the name the command and MQTT tests give it."""
    return headers


@pytest.fixture
def own_database(server_url: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """A database of its own, dropped after the test."""
    with new_database(server_url) as url:
        yield url


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A temporary directory for an embedded PostgreSQL's data, outside pytest's own.

    Run as root, that server runs as another account and reaches its data through
    o+x on every parent. Every pytest session that starts meanwhile (a parallel run)
    makes /tmp/pytest-of-<user> private again, and the server's pg_ctl fails.
    """
    with tempfile.TemporaryDirectory(prefix="iotledger-test-") as directory:
        yield Path(directory)
