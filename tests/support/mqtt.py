"""Playing devices and running the MQTT adapter from synchronous tests.

Everything asynchronous (the adapter, the gmqtt clients playing devices) runs
on one event loop in a background thread; tests call into it and poll what
they expect with a deadline instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import gmqtt
import msgspec
from gmqtt.mqtt.constants import MQTTv311

from iotledger.bootstrap import Services
from iotledger.roles.mqtt import MqttRole, Timing, mqtt_role
from iotledger.settings import MqttUrl

T = TypeVar("T")

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
        services: Services,
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


def eventually(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """The first truthy result of `check`, polled until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


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
