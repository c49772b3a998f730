"""The link to the MQTT broker: one gmqtt client that reconnects by itself.

MQTT 3.1.1 on the wire (the embedded amqtt broker speaks nothing newer), QoS 1,
and a persistent session. Acknowledgements are not optimistic: a message is
acknowledged only when its handler returns, i.e. after what it caused committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv311

from iotledger.adapters.settings import MqttUrl

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], Awaitable[None]]


class MqttLink:
    def __init__(self, url: MqttUrl, client_id: str, subscriptions: tuple[str, ...] = ()) -> None:
        self.url = url
        self.subscriptions = subscriptions
        self.counters: Counter[str] = Counter()
        self.handler: Handler | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None]
        self._client = gmqtt.Client(
            client_id, clean_session=False, optimistic_acknowledgement=False
        )
        if url.username:
            self._client.set_auth_credentials(url.username, url.password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    async def start(self) -> None:
        """Connect in the background: a broker that is not there yet must not stop us."""
        self._task = asyncio.create_task(self._connect_until_connected())

    async def _connect_until_connected(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._client.connect(
                    self.url.host, self.url.port, version=MQTTv311, keepalive=30
                )
            except (TimeoutError, OSError) as e:
                log.warning("MQTT broker %s unreachable (%s); retrying", self.url.redacted(), e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                log.info("MQTT connected to %s", self.url.redacted())
                return

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._task.cancel()
        if self._client.is_connected:
            await self._client.disconnect()

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if not self._client.is_connected:
            raise ConnectionError("not connected to the MQTT broker")
        self._client.publish(topic, payload, qos=qos)

    def _on_connect(self, client: Any, flags: Any, rc: Any, properties: Any) -> None:
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        self._connected.clear()
        log.warning("MQTT disconnected from %s; gmqtt reconnects", self.url.redacted())

    async def _on_message(
        self, client: Any, topic: str, payload: bytes, qos: int, properties: Any
    ) -> int:
        try:
            if self.handler is None:
                self.counters["unhandled"] += 1
            else:
                await self.handler(topic, payload)
                self.counters["handled"] += 1
        except Exception:
            self.counters["dropped"] += 1
            log.exception("MQTT message on %s dropped", topic)
        return 0
