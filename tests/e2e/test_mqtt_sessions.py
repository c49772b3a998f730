"""Sessions on a shared broker: deployments never meet, departed replicas strand nothing,
sessions expire. With the machine's Mosquitto."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import Iterator

import pytest

from iotledger.adapters.mqtt.link import MqttLink
from iotledger.adapters.mqtt.names import client_id, share_group
from iotledger.adapters.mqtt.packets import Message
from iotledger.adapters.mqtt.topics import Topics
from iotledger.roles.mqtt import link_for
from iotledger.settings import MqttUrl, Settings
from tests.support.mqtt import Device, LoopThread, devices
from tests.support.processes import COMMAND, Server
from tests.support.waiting import eventually


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
    mosquitto: MqttUrl, mqtt_loop: LoopThread, migrated: tuple[int, dict[str, str]]
) -> None:
    env = replica_environment(migrated[1])
    with (
        devices(mqtt_loop) as played,
        MqttProcess(env, "replica-a") as departing,
        MqttProcess(env, "replica-b") as remaining,
    ):
        played.append(Device(mqtt_loop, mosquitto))
        topic = env["IOTLEDGER_MQTT_TOPIC"]
        shared = publish(played[0], topic, "shared", 20)
        eventually(lambda: departing.got(shared) and remaining.got(shared), what="both a share")
        assert departing.stop() == 0
        after = publish(played[0], topic, "after", 40)
        eventually(lambda: remaining.got(after) == after, what="every message after the stop")


def test_the_last_replica_to_stop_stays_in_the_group_and_gets_what_came_meanwhile(
    mosquitto: MqttUrl, mqtt_loop: LoopThread, migrated: tuple[int, dict[str, str]]
) -> None:
    env = replica_environment(migrated[1])
    with devices(mqtt_loop) as played:
        played.append(Device(mqtt_loop, mosquitto))
        with MqttProcess(env, "replica-a") as last:
            assert last.stop() == 0
        meanwhile = publish(played[0], env["IOTLEDGER_MQTT_TOPIC"], "meanwhile", 10)
        with MqttProcess(env, "replica-a") as again:
            eventually(lambda: again.got(meanwhile) == meanwhile, what="what came meanwhile")


def replica_environment(env: dict[str, str]) -> dict[str, str]:
    return {**env, "IOTLEDGER_MQTT_TOPIC": base_topic(), "IOTLEDGER_MQTT_SESSION_EXPIRY": "60"}


class MqttProcess:
    """`iotledger serve --role mqtt` in the background, subscribed, its output read as it
    comes: it logs each message it drops, and the payloads here are not JSON."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        command = [COMMAND, "serve", "--role", "mqtt"]
        self._process = Server(command, {**env, "IOTLEDGER_MQTT_CLIENT_ID": name}, None)
        self._wait_for(f"in share group {share_group(env['IOTLEDGER_MQTT_TOPIC'])}")

    def got(self, payloads: set[bytes]) -> set[bytes]:
        """Which of these payloads it received (and dropped: they are not JSON)."""
        output = self._process.output()
        return {payload for payload in payloads if f"): {payload!r}" in output}

    def _wait_for(self, text: str) -> None:
        def seen() -> bool:
            return text in self._process.output() or self._process.poll() is not None

        eventually(seen, timeout=30, what=text)
        assert self._process.poll() is None, self._process.output()

    def stop(self) -> int:
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(20)

    def __enter__(self) -> MqttProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self._process.poll() is None:
            self.stop()


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
