"""Playing devices and running the MQTT adapter from synchronous tests.

Everything asynchronous (the adapter, the gmqtt clients playing devices) runs
on one event loop in a background thread; tests call into it and poll what
they expect with a deadline instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from uuid import UUID

import gmqtt
import msgspec
from gmqtt.mqtt.constants import MQTTv311
from litestar.testing import TestClient

from iotledger.bootstrap import App
from iotledger.roles.mqtt import MqttRole, Timing, mqtt_role
from iotledger.settings import MqttUrl

T = TypeVar("T")
Headers = dict[str, str]

FAST = Timing(
    dispatch_every=0.05,
    presence_every=0.05,
    counters_every=3600.0,
    reconnect_delay=0.2,
    check_interval=3600.0,
)


class LoopThread:
    """An event loop of its own, in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what still runs on the loop (device clients' readers), then stop it."""
        self.run(_cancel_others())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def _cancel_others() -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class Adapter:
    """The `mqtt` role of iotledger, running in-process as `serve` runs it."""

    def __init__(
        self,
        loop: LoopThread,
        services: App,
        url: MqttUrl,
        *,
        embedded: bool = False,
        timing: Timing = FAST,
    ) -> None:
        self._loop = loop
        client_id = f"iotledger-test-{uuid.uuid4().hex[:8]}"
        self._context = mqtt_role(
            services, url, client_id=client_id, embedded=embedded, timing=timing
        )
        self.role: MqttRole = loop.run(self._context.__aenter__())
        if not loop.run(self.role.link.wait_ready(10)):
            raise RuntimeError("the adapter did not subscribe in time")

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.role.counters)

    def close(self) -> None:
        self._loop.run(self._context.__aexit__(None, None, None))


class Device:
    """A real MQTT client playing a device: publishes, and keeps what it receives."""

    def __init__(
        self,
        loop: LoopThread,
        url: MqttUrl,
        subscriptions: tuple[str, ...] = (),
        will: tuple[str, bytes] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._loop = loop
        self.received: list[tuple[str, Any]] = []
        will_message = None if will is None else gmqtt.Message(will[0], will[1], qos=1)
        self.client = gmqtt.Client(f"device-{uuid.uuid4().hex[:8]}", will_message=will_message)
        self.client.set_config({"reconnect_delay": 0.2})
        self.client.on_message = self._on_message
        if credentials is not None:
            self.client.set_auth_credentials(*credentials)
        subscribed = threading.Event()
        self.granted: list[int] = []
        self.client.on_subscribe = lambda _c, _m, qos, _p: (
            self.granted.extend(qos),
            subscribed.set(),
        )
        loop.run(self.client.connect(url.host, url.port, version=MQTTv311, keepalive=5))
        if subscriptions:
            filters = [gmqtt.Subscription(topic, qos=1) for topic in subscriptions]
            loop.loop.call_soon_threadsafe(self.client.subscribe, filters)
            if not subscribed.wait(5):
                raise RuntimeError("the device did not subscribe in time")

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        try:
            body: Any = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            body = payload
        self.received.append((topic, body))
        return 0

    def publish(self, topic: str, message: Any) -> None:
        payload = message if isinstance(message, bytes) else msgspec.json.encode(message)
        self._loop.loop.call_soon_threadsafe(self.client.publish, topic, payload, 1)

    def messages(self, topic: str, **fields: Any) -> list[Any]:
        """What arrived on `topic` (JSON objects whose fields match `fields`)."""
        return [
            body
            for got, body in list(self.received)
            if got == topic
            and isinstance(body, dict)
            and all(body.get(k) == v for k, v in fields.items())
        ]

    def disconnect(self) -> None:
        self._loop.run(self.client.disconnect())

    def vanish(self) -> None:
        """Drop the connection without a goodbye, as a dead device does: its will fires."""
        self.client.stop_reconnect()
        self._loop.run(_abort(self.client))


async def _abort(client: gmqtt.Client) -> None:
    client._is_active = False
    client._connection._transport.abort()


@contextlib.contextmanager
def devices(loop: LoopThread) -> Iterator[list[Device]]:
    """Devices made in the block are disconnected at its end."""
    made: list[Device] = []
    try:
        yield made
    finally:
        for device in made:
            with contextlib.suppress(Exception):
                device.disconnect()


class World:
    """A test's view: the HTTP client, the adapter, and devices to play."""

    def __init__(
        self,
        client: TestClient[object],
        headers: Headers,
        services: App,
        adapter: Adapter,
        loop: LoopThread,
        url: MqttUrl,
        played: list[Device],
    ) -> None:
        self.client = client
        self.headers = headers
        self.services = services
        self.topics = services.topics
        self.adapter = adapter
        self.loop = loop
        self.url = url
        self.played = played

    def new_device(self, status: str = "offline") -> UUID:
        body = {"name": "Pump", "device_type": "actor", "status": status}
        response = self.client.post("/api/v1/devices", json=body, headers=self.headers)
        assert response.status_code == 201
        return UUID(response.json()["id"])

    def device(self, device_id: UUID, will: bool = False) -> Device:
        """A client playing the device, listening to its command topic."""
        last_words = (self.topics.status(device_id), b'{"status": "offline"}') if will else None
        played = Device(self.loop, self.url, (self.topics.commands(device_id),), last_words)
        self.played.append(played)
        return played

    def status_of(self, device_id: UUID) -> str:
        path = f"/api/v1/devices/{device_id}"
        return str(self.client.get(path, headers=self.headers).json()["status"])

    def command(self, device_id: UUID, **extra: Any) -> str:
        body = {"command_name": "restart", "payload": {"delay": 5}, **extra}
        path = f"/api/v1/devices/{device_id}/commands"
        response = self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == 201
        return str(response.json()["id"])

    def command_status(self, device_id: UUID, command_id: str) -> Any:
        path = f"/api/v1/devices/{device_id}/commands/{command_id}"
        return self.client.get(path, headers=self.headers).json()

    def readings(self, device_id: UUID) -> list[Any]:
        return self.services.views.readings.device_page(device_id, 100)

    def handled(self) -> int:
        return self.adapter.counters.get("handled", 0)

    def duplicates(self) -> int:
        return self.adapter.counters.get("duplicate", 0)

    def dropped(self, reason: str) -> int:
        return self.adapter.counters.get(f"dropped.{reason}", 0)


def refused(loop: LoopThread, url: MqttUrl, credentials: tuple[str, str] | None) -> bool:
    """Whether the broker refuses a CONNECT with these credentials (None: anonymous)."""
    client = gmqtt.Client(f"probe-{uuid.uuid4().hex[:8]}")
    client.set_config({"reconnect_retries": 0})
    if credentials is not None:
        client.set_auth_credentials(*credentials)
    try:
        loop.run(client.connect(url.host, url.port, version=MQTTv311, keepalive=5), timeout=10)
    except Exception:
        return True
    connected = client.is_connected
    loop.run(client.disconnect())
    return not connected
