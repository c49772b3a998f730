"""The adapter survives what brokers and databases do: restarts, sharing, failures."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from iotledger.adapters.mqtt.directory import Presence, ledger_directory
from iotledger.adapters.mqtt.inbound import Inbound
from iotledger.adapters.mqtt.packets import PacketReader
from iotledger.application.readings import AppendReadings, Outcome, RecordingService
from iotledger.bootstrap import App
from iotledger.domain.errors import Unavailable
from iotledger.settings import MqttUrl
from tests.support.ledger import registered
from tests.support.mqtt import Adapter, Device, LoopThread, devices
from tests.support.network import answers, free_port
from tests.support.waiting import eventually

MOSQUITTO = Path("/usr/sbin/mosquitto")


class Broker:
    """A Mosquitto of the test's own, to stop and start at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = MqttUrl(host="127.0.0.1", port=self.port, username=None, password=None)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [str(MOSQUITTO), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(lambda: answers("127.0.0.1", self.port), what="mosquitto to listen")

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None


@pytest.fixture
def broker() -> Iterator[Broker]:
    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed")
    own = Broker()
    own.start()
    try:
        yield own
    finally:
        own.kill()


def telemetry(key: str) -> dict[str, Any]:
    return {"telemetry_type": "power", "payload": {"watts": 1}, "id": key}


def test_the_adapter_recovers_by_itself_when_the_broker_restarts(
    broker: Broker, services: App, mqtt_loop: LoopThread
) -> None:
    device_id = registered(services)
    topic = services.topics.telemetry(device_id)
    adapter = Adapter(mqtt_loop, services, broker.url)
    try:
        with devices(mqtt_loop) as played:
            played.append(Device(mqtt_loop, broker.url))
            played[0].publish(topic, telemetry("before"))
            eventually(lambda: services.views.readings.device_page(device_id, 10), what="stored")
            link = adapter.role.link
            broker.kill()
            eventually(lambda: not link.connected, what="the link to notice")
            broker.start()
            assert mqtt_loop.run(link.wait_ready(15)), "the link did not come back by itself"
            reader = link._client._connection._protocol._read_packet
            assert isinstance(reader.__self__, PacketReader), (
                "the new connection reads without batches"
            )
            played.append(Device(mqtt_loop, broker.url, (services.topics.base,)))
            played[1].publish(topic, telemetry("after"))
            eventually(
                lambda: len(services.views.readings.device_page(device_id, 10)) == 2,
                timeout=15,
                what="the adapter back on the restarted broker",
            )
            mqtt_loop.run(adapter.role.link.publish(services.topics.base, b'{"type": "ping"}'))
            eventually(lambda: played[1].messages(services.topics.base, type="ping"))
    finally:
        adapter.close()


def test_several_adapters_share_the_messages_without_doubling_anything(
    services: App, mqtt_adapter: Adapter, mqtt_loop: LoopThread, mqtt_url: MqttUrl
) -> None:
    if mqtt_url.port != 1883:
        pytest.skip("shared subscriptions need Mosquitto (the embedded broker has none)")
    device_id = registered(services)
    topic = services.topics.telemetry(device_id)
    others = [Adapter(mqtt_loop, services, mqtt_url) for _ in range(2)]
    everyone = [mqtt_adapter, *others]
    before = [a.counters.get("handled", 0) for a in everyone]
    try:
        with devices(mqtt_loop) as played:
            played.append(Device(mqtt_loop, mqtt_url))
            for n in range(60):
                played[0].publish(topic, telemetry(f"shared-{n}"))
            eventually(lambda: len(services.views.readings.device_page(device_id, 100)) == 60)

            def handled() -> list[int]:
                return [
                    a.counters.get("handled", 0) - b for a, b in zip(everyone, before, strict=True)
                ]

            eventually(lambda: sum(handled()) == 60, what="every message handled once")
            assert all(n > 0 for n in handled()[1:])
    finally:
        for adapter in others:
            adapter.close()


class FlakyAppender:
    """The real appender behind a database that fails the first attempts."""

    def __init__(self, services: App, failures: int) -> None:
        self._appender = services.appender
        self.failures = failures

    async def append(self, cmd: AppendReadings) -> list[Outcome]:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("the readings could not be stored; nothing was acknowledged")
        return await self._appender.append(cmd)


def test_a_message_is_not_done_until_it_is_stored_whatever_fails_meanwhile(
    services: App, mqtt_loop: LoopThread
) -> None:
    device_id = registered(services)
    counters: Counter[str] = Counter()
    inbound = Inbound(
        services.ledger,
        RecordingService(FlakyAppender(services, failures=2)),
        directory=ledger_directory(services.ledger),
        presence=Presence(services.views.dispatch.record_heard),
        topics=services.topics,
        counters=counters,
        max_backoff=0.05,
    )
    payload = msgspec.json.encode(telemetry("flaky"))
    mqtt_loop.run(inbound.handle(services.topics.telemetry(device_id), payload))
    assert counters["retried"] == 2
    assert counters["handled"] == 1
    eventually(
        lambda: len(services.views.readings.device_page(device_id, 10)) == 1, what="stored once"
    )
