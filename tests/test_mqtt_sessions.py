"""Sessions on a shared broker: deployments never meet, departed replicas strand nothing,
sessions expire. With the machine's Mosquitto."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest

from iotledger.adapters.mqtt import MqttLink
from iotledger.adapters.mqtt_intake import Message
from iotledger.adapters.mqtt_names import client_id, share_group
from iotledger.adapters.settings import MqttUrl, Settings
from iotledger.adapters.topics import Topics
from iotledger.mqtt_role import link_for
from tests.mqtt_support import Device, LoopThread, devices, eventually
from tests.processes import COMMAND


@pytest.fixture
def mosquitto(mqtt_url: MqttUrl) -> MqttUrl:
    if mqtt_url.port != 1883:
        pytest.skip("shared subscriptions and session expiry need Mosquitto")
    return mqtt_url


def base_topic() -> str:
    return f"iotledger-test-{uuid.uuid4().hex[:8]}/site"


class Replica:
    """The `mqtt` role's broker link as `serve` makes it, keeping what it receives."""

    def __init__(self, loop: LoopThread, url: MqttUrl, settings: Settings, roles: str) -> None:
        self.received: list[bytes] = []
        self._loop = loop
        name = client_id(settings.mqtt_topic, settings.mqtt_client_id, tuple(roles.split()))
        subscriptions = Topics(settings.mqtt_topic).subscriptions()
        self.link = link_for(settings, url, name, False, subscriptions, reconnect_delay=0.2)
        self.link.handler = self._keep
        loop.run(self.link.start())
        assert loop.run(self.link.wait_ready(10)), "the link did not subscribe"

    async def _keep(self, messages: list[Message]) -> None:
        self.received.extend(payload for _, payload in messages)

    def stop(self) -> None:
        self._loop.run(self.link.stop())


@pytest.fixture
def replicas(mqtt_loop: LoopThread) -> Iterator[list[Replica]]:
    made: list[Replica] = []
    yield made
    for replica in made:
        replica.stop()


def publish(device: Device, topic: str, prefix: str, count: int) -> set[bytes]:
    sent = {f"{prefix}-{n}".encode() for n in range(count)}
    for payload in sorted(sent):
        device.publish(topic, payload)
    return sent


def test_client_ids_and_the_share_group_derive_from_the_deployment_role_and_host() -> None:
    host = socket.gethostname()
    assert share_group("lambdaiot") == "iotledger.lambdaiot"
    assert share_group("site/a") == "iotledger.site%2Fa"
    assert share_group("site%2Fa") != share_group("site/a")
    everything = ("api", "mqtt", "projections")
    assert client_id("site/a", None, ("mqtt",)) == f"iotledger.site%2Fa.mqtt.{host}"
    assert client_id("site/a", None, everything) == client_id("site/a", None, ("mqtt",))
    assert client_id("site/b", None, ("mqtt",)) != client_id("site/a", None, ("mqtt",))
    assert client_id("site/a", None, ("api",)) == f"iotledger.site%2Fa.api.{host}.{os.getpid()}"
    assert client_id("site/a", "replica-2", ("mqtt",)) == "replica-2"
    assert client_id("site/a", "replica-2", ("api",)) == f"replica-2.api.{host}.{os.getpid()}"


def test_two_deployments_on_one_broker_each_get_all_their_own_messages(
    mosquitto: MqttUrl, mqtt_loop: LoopThread, replicas: list[Replica]
) -> None:
    first, second = (Settings(mqtt_topic=base_topic(), mqtt_session_expiry=60) for _ in "ab")
    replicas.extend(
        Replica(mqtt_loop, mosquitto, s, "api mqtt projections") for s in (first, second)
    )
    with devices(mqtt_loop) as played:
        played.append(Device(mqtt_loop, mosquitto))
        sent = [publish(played[0], s.mqtt_topic, s.mqtt_topic, 50) for s in (first, second)]
        for replica, expected in zip(replicas, sent, strict=True):
            eventually(lambda r=replica, e=expected: set(r.received) >= e, what="every message")
    assert [set(r.received) for r in replicas] == sent


def test_a_replica_stopped_with_sigterm_leaves_the_group_and_strands_nothing(
    mosquitto: MqttUrl,
    mqtt_loop: LoopThread,
    replicas: list[Replica],
    migrated: tuple[int, dict[str, str]],
) -> None:
    settings = Settings(mqtt_topic=base_topic(), mqtt_client_id="replica-b", mqtt_session_expiry=60)
    replicas.append(Replica(mqtt_loop, mosquitto, settings, "mqtt"))
    remaining = replicas[0]
    env = {**migrated[1], "IOTLEDGER_MQTT_TOPIC": settings.mqtt_topic}
    env["IOTLEDGER_MQTT_SESSION_EXPIRY"] = "60"
    with devices(mqtt_loop) as played, Output(env) as departing:
        played.append(Device(mqtt_loop, mosquitto))
        departing.wait_for(f"in share group {share_group(settings.mqtt_topic)}")
        shared = publish(played[0], settings.mqtt_topic, "shared", 20)
        eventually(lambda: departing.has("dropped"), what="the other replica to take its share")
        assert departing.stop() == 0
        assert set(remaining.received) < shared
        after = publish(played[0], settings.mqtt_topic, "after", 40)
        eventually(lambda: set(remaining.received) >= after, what="every message after the stop")


class Output:
    """`iotledger serve --role mqtt` in the background, its output read as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [COMMAND, "serve", "--role", "mqtt"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, text: str) -> None:
        def check() -> bool:
            return self.has(text) or self._process.poll() is not None

        eventually(check, timeout=30, what=text)
        assert self.has(text), "".join(self.lines)

    def stop(self) -> int:
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(20)

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *_: object) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)


async def away(url: MqttUrl, name: str, topic: str, expiry: int) -> list[Message]:
    """A session that subscribes, goes away, is sent a message, and comes back after 2 s."""
    received: list[Message] = []

    async def keep(messages: list[Message]) -> None:
        received.extend(messages)

    link = MqttLink(url, name, (topic,), session_expiry=expiry, reconnect_delay=0.2)
    link.handler = keep
    await link.start()
    assert await link.wait_ready(10)
    await link.stop()
    sender = MqttLink(url, f"{name}-sender")
    await sender.start()
    assert await sender.wait_ready(10)
    await sender.publish(topic, b"while-away")
    await sender.stop()
    await asyncio.sleep(2.5)
    back = MqttLink(url, name, (topic,), session_expiry=0, reconnect_delay=0.2)
    back.handler = keep
    await back.start()
    assert await back.wait_ready(10)
    await asyncio.sleep(0.5)
    await back.stop()
    return received


@pytest.mark.parametrize(("expiry", "kept"), [(1, False), (60, True)])
def test_a_session_is_kept_for_the_configured_seconds_and_no_longer(
    mosquitto: MqttUrl, mqtt_loop: LoopThread, expiry: int, kept: bool
) -> None:
    topic = base_topic()
    name = f"iotledger-test-{uuid.uuid4().hex[:8]}"
    received = mqtt_loop.run(away(mosquitto, name, topic, expiry))
    assert received == ([(topic, b"while-away")] if kept else [])
