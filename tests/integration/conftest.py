"""Fixtures of the integration tier: devices played over the real broker, and the MQTT
role in this process, on the broker the tests share or on a guarded one of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from iotledger.adapters.embedded.gate import SERVICE_USERNAME
from iotledger.adapters.embedded.services import EmbeddedBroker
from iotledger.bootstrap import App
from iotledger.settings import MqttUrl
from tests.support.mqtt import Adapter, Device, LoopThread, World, devices
from tests.support.network import free_port


@pytest.fixture
def played(mqtt_loop: LoopThread) -> Iterator[list[Device]]:
    """The devices a test plays, disconnected after it."""
    with devices(mqtt_loop) as made:
        yield made


@pytest.fixture
def world(
    client: TestClient[object],
    module_auth_headers: dict[str, str],
    services: App,
    mqtt_adapter: Adapter,
    mqtt_loop: LoopThread,
    mqtt_url: MqttUrl,
    played: list[Device],
) -> World:
    return World(client, module_auth_headers, services, mqtt_adapter, mqtt_loop, mqtt_url, played)


@pytest.fixture(scope="module")
def guarded(services: App, mqtt_loop: LoopThread) -> Iterator[MqttUrl]:
    """An embedded broker that asks the credentials, and the `mqtt` role linked to it with
    iotledger's service account; the address devices connect to."""
    gate = services.broker_gate
    broker = EmbeddedBroker("127.0.0.1", free_port(), gate)
    mqtt_loop.run(broker.start())
    service = MqttUrl("127.0.0.1", broker.port, SERVICE_USERNAME, gate.service_password)
    adapter = Adapter(mqtt_loop, services, service, embedded=True)
    try:
        yield MqttUrl("127.0.0.1", broker.port, None, None)
    finally:
        adapter.close()
        mqtt_loop.run(broker.stop())
