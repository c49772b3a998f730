"""Messages in batches through real brokers: acknowledged only once their handler has returned,
over MQTT 5 and 3.1.1 (Mosquitto) and through the embedded amqtt broker; the readings of a
batch in one submission, every other message handled on its own."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import gmqtt
import msgspec
import pytest
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from iotledger.adapters.embedded.services import EmbeddedBroker
from iotledger.adapters.mqtt.directory import Presence, ledger_directory
from iotledger.adapters.mqtt.inbound import Inbound
from iotledger.adapters.mqtt.link import MqttLink
from iotledger.adapters.mqtt.packets import Message, PacketReader
from iotledger.application.readings import (
    AppendReadings,
    Outcome,
    ReadingAppender,
    RecordingService,
)
from iotledger.bootstrap import App
from iotledger.roles.mqtt import inbound_of
from iotledger.settings import MqttUrl
from tests.support.ledger import registered
from tests.support.mqtt import Adapter, Device, LoopThread, devices
from tests.support.network import free_port
from tests.support.waiting import eventually

Handler = Callable[[Sequence[Message]], Awaitable[None]]


def telemetry(key: str, **extra: Any) -> bytes:
    return msgspec.json.encode(
        {"telemetry_type": "power", "payload": {"watts": 1}, "id": key, **extra}
    )


@pytest.fixture
def mosquitto(mqtt_url: MqttUrl) -> MqttUrl:
    if mqtt_url.port != 1883:
        pytest.skip("needs the Mosquitto on 1883 (the embedded broker is tested below)")
    return mqtt_url


async def subscribed(
    url: MqttUrl, client_id: str, topic: str, version: int, handler: Handler
) -> MqttLink:
    link = MqttLink(
        url, client_id, (topic,), version=version, session_expiry=60, reconnect_delay=0.2
    )
    link.handler = handler
    await link.start()
    assert await link.wait_ready(10), "the link did not subscribe"
    protocol = link._client._connection._protocol
    assert isinstance(protocol._read_packet.__self__, PacketReader), (
        "gmqtt's reader was not replaced"
    )
    return link


async def until(check: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def forget_session(url: MqttUrl, client_id: str, version: int) -> None:
    extra = {"session_expiry_interval": 0} if version >= MQTTv50 else {}
    client = gmqtt.Client(client_id, clean_session=True, **extra)
    await client.connect(url.host, url.port, version=version)
    await client.disconnect()


async def acknowledged_after_return(url: MqttUrl, version: int) -> None:
    topic = f"iotledger-test-{uuid.uuid4().hex[:8]}/acks"
    client_id = f"iotledger-acks-{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()
    held: list[Message] = []
    again: list[Message] = []
    later: list[Message] = []

    async def hold(messages: Sequence[Message]) -> None:
        held.extend(messages)
        await release.wait()

    async def keep(into: list[Message], messages: Sequence[Message]) -> None:
        into.extend(messages)

    publisher = gmqtt.Client(f"iotledger-pub-{uuid.uuid4().hex[:8]}")
    await publisher.connect(url.host, url.port, version=MQTTv311)
    try:
        link = await subscribed(url, client_id, topic, version, hold)
        publisher.publish(topic, b"one", qos=1)
        await until(lambda: held)
        await link.stop(grace=0)  # its handler has not returned: nothing was acknowledged
        release.set()
        await asyncio.sleep(0.1)  # it returns now, with its connection gone
        link = await subscribed(url, client_id, topic, version, lambda m: keep(again, m))
        await until(lambda: again)
        assert again == [(topic, b"one")], "the broker did not send the message again"
        await link.stop()  # handled this time: acknowledged
        link = await subscribed(url, client_id, topic, version, lambda m: keep(later, m))
        publisher.publish(topic, b"two", qos=1)
        await until(lambda: later)
        await asyncio.sleep(0.2)
        assert later == [(topic, b"two")], "an acknowledged message came again"
        await link.stop()
    finally:
        await publisher.disconnect()
        await forget_session(url, client_id, version)


@pytest.mark.parametrize("version", [MQTTv50, MQTTv311], ids=["mqtt5", "mqtt311"])
def test_a_message_is_acknowledged_only_once_its_handler_has_returned(
    mosquitto: MqttUrl, mqtt_loop: LoopThread, version: int
) -> None:
    mqtt_loop.run(acknowledged_after_return(mosquitto, version))


def test_an_mqtt5_message_with_properties_takes_gmqtts_own_road_and_is_stored(
    services: App, mqtt_adapter: Adapter, mqtt_loop: LoopThread, mosquitto: MqttUrl
) -> None:
    device_id = registered(services)
    client = gmqtt.Client(f"device-{uuid.uuid4().hex[:8]}")
    mqtt_loop.run(client.connect(mosquitto.host, mosquitto.port, version=MQTTv50))
    try:
        topic = services.topics.telemetry(device_id)
        properties = {"content_type": "application/json", "user_property": ("site", "north")}
        mqtt_loop.loop.call_soon_threadsafe(
            lambda: client.publish(topic, telemetry("with-properties"), qos=1, **properties)
        )
        (reading,) = eventually(lambda: services.views.readings.device_page(device_id, 10))
        assert reading.payload == {"watts": 1}
    finally:
        mqtt_loop.run(client.disconnect())


def test_qos0_telemetry_is_stored_too(
    services: App, mqtt_adapter: Adapter, mqtt_loop: LoopThread, mqtt_url: MqttUrl
) -> None:
    device_id = registered(services)
    with devices(mqtt_loop) as played:
        played.append(Device(mqtt_loop, mqtt_url))
        client = played[0].client
        topic = services.topics.telemetry(device_id)
        mqtt_loop.loop.call_soon_threadsafe(
            lambda: client.publish(topic, telemetry("at-most-once"), qos=0)
        )
        eventually(lambda: services.views.readings.device_page(device_id, 10), what="stored")


@pytest.fixture
def embedded_broker(mqtt_loop: LoopThread) -> Iterator[MqttUrl]:
    broker = EmbeddedBroker("127.0.0.1", free_port())
    mqtt_loop.run(broker.start())
    try:
        yield MqttUrl(host="127.0.0.1", port=broker.port, username=None, password=None)
    finally:
        mqtt_loop.run(broker.stop())


def test_a_burst_through_the_embedded_broker_is_stored_once_each(
    services: App, mqtt_loop: LoopThread, embedded_broker: MqttUrl
) -> None:
    device_id = registered(services)
    topic = services.topics.telemetry(device_id)
    adapter = Adapter(mqtt_loop, services, embedded_broker, embedded=True)
    try:
        with devices(mqtt_loop) as played:
            played.append(Device(mqtt_loop, embedded_broker))
            for n in range(300):
                played[0].publish(topic, telemetry(f"burst-{n}"))
            played[0].publish(topic, telemetry("burst-0"))  # a repeat: stored once
            eventually(
                lambda: (
                    (adapter.counters.get("handled"), adapter.counters.get("duplicate")) == (300, 1)
                ),
                timeout=20,
            )
        eventually(lambda: len(services.views.readings.device_page(device_id, 1000)) == 300)
        assert adapter.counters["received"] == 301
    finally:
        adapter.close()


class CountingAppender:
    """The real appender, counting the readings of each call it is given."""

    def __init__(self, appender: ReadingAppender) -> None:
        self._appender = appender
        self.calls: list[int] = []

    async def append(self, cmd: AppendReadings) -> list[Outcome]:
        self.calls.append(len(cmd.readings))
        return await self._appender.append(cmd)


def test_the_readings_of_a_batch_go_in_one_submission_and_the_rest_is_handled_alone(
    services: App, mqtt_loop: LoopThread
) -> None:
    first, second, unknown = registered(services), registered(services), uuid.uuid4()
    topics = services.topics
    appender = CountingAppender(services.appender)
    counters: Counter[str] = Counter()
    inbound = Inbound(
        services.ledger,
        RecordingService(appender),
        directory=ledger_directory(services.ledger),
        presence=Presence(services.views.dispatch.record_heard),
        topics=topics,
        counters=counters,
    )
    unknown_sensor = {"type": "sensor_reading", "sensor_id": str(uuid.uuid4()), "value": 1}
    batch = [
        (topics.telemetry(first), telemetry("a-1")),
        (topics.telemetry(second), telemetry("b-1")),
        (topics.telemetry(first), b"not json"),
        (topics.telemetry(first), telemetry("a-2")),
        (topics.telemetry(unknown), telemetry("u-1")),
        (topics.telemetry(second), telemetry("b-2", device_id=str(first))),
        (topics.status(second), b'{"status": "online"}'),
        (topics.base, msgspec.json.encode(unknown_sensor)),
        (topics.base, b'{"type": "ping"}'),
    ]
    mqtt_loop.run(inbound.handle_many(batch))
    assert appender.calls == [3]
    assert counters == {
        "handled": 4,
        "ignored": 1,
        "dropped": 4,
        "dropped.not_json": 1,
        "dropped.unknown_device": 1,
        "dropped.device_mismatch": 1,
        "dropped.unknown_sensor": 1,
    }
    eventually(lambda: len(services.views.readings.device_page(first, 10)) == 2)
    eventually(lambda: len(services.views.readings.device_page(second, 10)) == 1)


def batched(*keys: str) -> bytes:
    """A batched telemetry message: one reading for each key, in order."""
    return msgspec.json.encode(
        [{"telemetry_type": "power", "payload": {"watts": 1}, "id": key} for key in keys]
    )


@pytest.mark.parametrize(
    ("messages", "counted"),
    [
        ([("a", "b"), ("a", "b"), ("a", "b")], {"handled": 1, "duplicate": 2}),
        ([("a", "a"), ("c",)], {"handled": 2}),
    ],
    ids=["one-message-read-three-times", "a-new-message-after-a-repeating-one"],
)
def test_each_message_of_a_batch_is_counted_by_its_own_readings(
    services: App, mqtt_loop: LoopThread, messages: list[tuple[str, ...]], counted: dict[str, int]
) -> None:
    """One socket read can hold a message and its redeliveries: stored is counted for the
    message whose readings were new, duplicate for each one whose readings were all stored
    before it, whatever the other messages of the read hold."""
    device_id = registered(services)
    topic = services.topics.telemetry(device_id)
    counters: Counter[str] = Counter()
    inbound = inbound_of(services, Presence(services.views.dispatch.record_heard), counters)
    mqtt_loop.run(inbound.handle_many([(topic, batched(*keys)) for keys in messages]))
    assert counters == counted
    stored = {key for keys in messages for key in keys}
    eventually(lambda: len(services.views.readings.device_page(device_id, 10)) == len(stored))
