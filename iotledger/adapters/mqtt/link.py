"""The link to the MQTT broker: one gmqtt client that reconnects and resubscribes by itself.

Inbound, QoS 1 on a persistent session, and never acknowledged early: a
message's PUBACK goes out when the handler it was given to returns, i.e. after
what it caused has committed. The handler takes messages in batches: every
PUBLISH of one chunk read from the socket, read straight off gmqtt's input
(`adapters.mqtt.packets`), handed over together and acknowledged in one write. A PUBLISH
that path leaves to gmqtt is handed over on its own and acknowledged by gmqtt
when the handler returns (`optimistic_acknowledgement=False`). Batches are
handled concurrently, and many of them share one append.

With a real broker the link speaks MQTT 5: it asks for a large receive
maximum (Mosquitto otherwise sends at most 20 unacknowledged messages, which
would cap ingest at 20 per commit), a session that outlives restarts for
`IOTLEDGER_MQTT_SESSION_EXPIRY` seconds, and shared subscriptions
(`$share/<group>/...`, the group named in `mqtt_names`) so that several
`--role mqtt` processes split the messages instead of each handling all of
them. Mosquitto routes a group's messages to every member with a session,
connected or not: a link that stops for good leaves the group first, unless it
is the last member (`stop`, `mqtt_group`). The
embedded amqtt broker only speaks MQTT 3.1.1: plain subscriptions there.

Outbound, `publish` waits for the broker's PUBACK, so "published" means the
broker has the message; it raises `BrokerUnavailable` when it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import gmqtt
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.storage import PersistentStorage

from iotledger.adapters.mqtt.packets import BatchingClient, Message, PacketReader
from iotledger.adapters.mqtt.tls import is_tls_failure, ssl_option
from iotledger.adapters.observability.metrics import MqttCounters
from iotledger.domain.errors import Unavailable
from iotledger.settings import MqttUrl

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Message]], Awaitable[None]]
"""Returns once every message given is handled (committed), dropped or ignored."""

LEAVE_TIMEOUT = 2.0
"""Seconds to wait for the broker to confirm that a stopping link left its share group."""
QUIET = 0.2
"""Seconds without a new message after which a stopping link takes its session's queue as empty."""


class BrokerUnavailable(Unavailable):
    """The broker did not take a message (not connected, or no PUBACK in time)."""

    code = "MQTT_UNAVAILABLE"


class _AckWaiters(PersistentStorage):  # type: ignore[misc]
    """gmqtt's store of unacknowledged outbound messages, telling us when each is acked."""

    def __init__(self) -> None:
        super().__init__()
        self.last_mid: int | None = None
        self._waiters: dict[int, asyncio.Future[None]] = {}

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        self.last_mid = mid

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        waiter = self._waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        """The broker lost our session: what it had not acknowledged will never be."""
        super().clear()
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(BrokerUnavailable("the broker lost the message"))

    def acked(self, mid: int) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[mid] = waiter
        return waiter


class _Window:
    """At most `limit` outbound QoS 1 messages unacknowledged at once.

    The broker says how many it takes (its receive maximum: 20 for a default
    Mosquitto); gmqtt fails a publish beyond that instead of waiting, so we wait.
    """

    def __init__(self) -> None:
        self.limit = 1
        self._used = 0
        self._freed = asyncio.Event()

    async def __aenter__(self) -> None:
        while self._used >= self.limit:
            self._freed.clear()
            await self._freed.wait()
        self._used += 1

    async def __aexit__(self, *_: object) -> None:
        self._used -= 1
        self._freed.set()

    def resize(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._freed.set()


class MqttLink:
    def __init__(
        self,
        url: MqttUrl,
        client_id: str,
        subscriptions: tuple[str, ...] = (),
        *,
        version: int = MQTTv50,
        share_group: str | None = None,
        session_expiry: int = 0,
        receive_maximum: int = 1000,
        reconnect_delay: float = 1.0,
        counters: Counter[str] | None = None,
        tls: ssl.SSLContext | None = None,
        persistent: bool | None = None,
    ) -> None:
        self.url = url
        self._ssl = ssl_option(url, tls)
        self.client_id = client_id
        self.subscriptions = subscriptions
        self.version = version
        self.share_group = share_group if version >= MQTTv50 else None
        self.counters: Counter[str] = MqttCounters() if counters is None else counters
        self.handler: Handler | None = None
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._closing = False
        self._busy = 0
        self._left = asyncio.Event()
        self._last_arrival = 0.0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks = _AckWaiters()
        self._window: _Window | None = None
        # A subscriber keeps its session (and what the broker queued for it) across
        # reconnects; a publish-only link has nothing to keep and leaves nothing behind.
        # A simulated device (`persistent=False`) subscribes and still leaves nothing.
        if persistent is None:
            persistent = bool(subscriptions)
        properties: dict[str, Any] = {}
        if version >= MQTTv50:
            properties = {"receive_maximum": receive_maximum}
            if persistent:
                properties["session_expiry_interval"] = session_expiry
        self._batches: set[asyncio.Task[None]] = set()
        self._client = BatchingClient(
            client_id,
            self._deliver,
            clean_session=not persistent,
            optimistic_acknowledgement=False,
            persistent_storage=self._acks,
            **properties,
        )
        self._client.set_config({"reconnect_delay": reconnect_delay})
        if url.username:
            self._client.set_auth_credentials(url.username, url.password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = lambda *_: self._left.set()
        self._client.on_message = self._on_message

    async def start(self) -> None:
        """Connect in the background: a broker that is not there yet must not stop us."""
        self._loop = asyncio.get_running_loop()
        self._window = _Window()
        self._task = asyncio.create_task(self._connect_until_connected())

    async def _connect_until_connected(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._client.connect(
                    self.url.host, self.url.port, ssl=self._ssl, version=self.version, keepalive=30
                )
            except (TimeoutError, OSError, MQTTConnectError) as e:
                self._log_failed_connect(e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                log.info("MQTT connected to %s", self.url.redacted())
                return

    def _log_failed_connect(self, error: Exception) -> None:
        where = self.url.redacted()
        if is_tls_failure(error):
            log.error(
                "MQTT broker %s: TLS failed (%s); check IOTLEDGER_MQTT_CA_FILE; retrying",
                where,
                error,
            )
        else:
            log.warning("MQTT broker %s unreachable (%s); retrying", where, error)

    async def wait_ready(self, timeout: float) -> bool:
        """True once connected and (if it subscribes) subscribed."""
        wanted = self._subscribed if self.subscriptions else self._connected
        try:
            await asyncio.wait_for(wanted.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace: float = 5.0, *, leave: bool = True) -> None:
        """Leave the share group (if `leave`), finish (and acknowledge) what is in hand
        and what the session still had queued, for up to `grace` seconds, then disconnect.

        Leaving first: Mosquitto would go on routing the group's messages to this
        session after it disconnects, where nobody reads them. The session itself
        stays for `session_expiry` seconds with what is unacknowledged (and, when
        it did not leave, with what the group sends it meanwhile), which a replica
        restarting with the same client id picks up.
        """
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        deadline = asyncio.get_running_loop().time() + grace
        if leave:
            await self._leave_group()
        await self._drain(deadline)
        if self._client.has_connected:  # stop gmqtt's reconnecting too
            with contextlib.suppress(Exception):
                await self._client.disconnect()

    async def _leave_group(self) -> None:
        if self.share_group is None or not self._subscribed.is_set():
            return
        self._left.clear()
        self._client.unsubscribe([f.topic for f in self._filters()])
        try:
            await asyncio.wait_for(self._left.wait(), LEAVE_TIMEOUT)
        except TimeoutError:
            log.warning("MQTT broker did not confirm that %s left its group", self.client_id)

    async def _drain(self, deadline: float) -> None:
        """Until nothing is in hand and nothing has arrived for a moment, or the deadline."""
        loop = asyncio.get_running_loop()
        quiet = QUIET if self.share_group is not None else 0.0
        while loop.time() < deadline:
            if not self._busy and loop.time() - self._last_arrival >= quiet:
                return
            await asyncio.sleep(0.02)

    @property
    def connected(self) -> bool:
        return self._connection_ready()

    def _connection_ready(self) -> bool:
        return bool(self._client.ready)

    async def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK; from any event loop."""
        loop = self._loop
        if loop is None:
            raise BrokerUnavailable("failed to publish to MQTT: not connected")
        if asyncio.get_running_loop() is loop:
            await self._publish(topic, payload, timeout)
        else:
            future = asyncio.run_coroutine_threadsafe(self._publish(topic, payload, timeout), loop)
            await asyncio.wrap_future(future)

    async def _publish(self, topic: str, payload: bytes, timeout: float) -> None:
        if self._window is None:
            raise BrokerUnavailable("failed to publish to MQTT: not connected")
        try:
            async with asyncio.timeout(timeout), self._window:
                await self._publish_in_window(topic, payload)
        except TimeoutError:
            raise BrokerUnavailable("failed to publish to MQTT: no acknowledgement") from None
        self.counters["published"] += 1

    async def _publish_in_window(self, topic: str, payload: bytes) -> None:
        if self._closing or not self._connection_ready():
            raise BrokerUnavailable("failed to publish to MQTT: not connected")
        self._client.publish(topic, payload, qos=1)
        mid = self._acks.last_mid
        if mid is None:
            raise BrokerUnavailable("failed to publish to MQTT")
        await self._acks.acked(mid)

    def _broker_receive_maximum(self) -> int:
        """How many unacknowledged messages the broker takes from us (gmqtt applied it)."""
        return min(self._client.send_window, 1000)

    def _filters(self) -> list[gmqtt.Subscription]:
        if self.share_group is not None:
            return [
                gmqtt.Subscription(f"$share/{self.share_group}/{topic}", qos=1)
                for topic in self.subscriptions
            ]
        no_local = self.version >= MQTTv50  # our own publishes on T are not news to us
        return [gmqtt.Subscription(topic, qos=1, no_local=no_local) for topic in self.subscriptions]

    def _on_connect(self, client: Any, flags: Any, rc: Any, properties: Any) -> None:
        """Subscribe again on every connect: a restarted broker may have lost our session."""
        self._connected.set()
        if self._window is not None:
            self._window.resize(self._broker_receive_maximum() - 2)
        if self.subscriptions:
            client.subscriptions = []
            client.subscribe(self._filters())

    def _on_subscribe(self, client: Any, mid: Any, granted: Any, properties: Any) -> None:
        refused = [code for code in granted if code >= 0x80]
        if refused:
            log.error("MQTT broker refused subscriptions %s: codes %s", self.subscriptions, granted)
            return
        group = "" if self.share_group is None else f" in share group {self.share_group}"
        log.info("MQTT subscribed as %s%s", self.client_id, group)
        self._subscribed.set()

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if not self._closing:
            log.warning("MQTT disconnected from %s; reconnecting", self.url.redacted())

    def _deliver(self, messages: list[Message], mids: list[int], reader: PacketReader) -> None:
        """A batch read off the connection: handled in a task of its own, acked at its end."""
        task = asyncio.get_running_loop().create_task(self._handle(messages, mids, reader))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _handle(self, messages: list[Message], mids: list[int], reader: PacketReader) -> None:
        try:
            await self._handed_over(messages)
        except Exception:
            log.exception("MQTT: %d messages failed; not acknowledged", len(messages))
            return
        reader.acknowledge(mids)

    async def _on_message(
        self, client: Any, topic: str, payload: bytes, qos: int, properties: Any
    ) -> int:
        """A message gmqtt handled itself; returning sends its PUBACK (reason code 0)."""
        await self._handed_over([(topic, payload)])
        return 0

    async def _handed_over(self, messages: list[Message]) -> None:
        self.counters["received"] += len(messages)
        self._last_arrival = asyncio.get_running_loop().time()
        if self.handler is None:
            raise RuntimeError("an MQTT link that subscribes needs a handler")
        self._busy += 1
        try:
            await self.handler(messages)
        finally:
            self._busy -= 1


class Publisher(Protocol):
    """What the API publishes through: the link of its process, once serve has made one."""

    async def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None: ...


class NoBroker:
    """The publisher of a process without a broker link: nothing can be published."""

    async def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        raise BrokerUnavailable("failed to publish to MQTT: not connected")
