"""The dynamic-security plugin's control API: JSON commands over MQTT, answered in kind.

Commands go to `$CONTROL/dynamic-security/v1`; the plugin answers on
`.../response`, in order, one answer per command. Every admin connected
receives every answer (several iotledger processes may share the admin
account), so each command carries a `correlationData` of its own and an
answer that is not ours is ignored. A command the plugin never answers (not
JSON, not authorised, the connection lost) fails after `timeout` instead of
waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Sequence
from typing import Any

import gmqtt
import msgspec
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError

from iotledger.adapters.mqtt.packets import Client
from iotledger.adapters.mqtt.tls import ssl_option
from iotledger.domain.errors import Unavailable
from iotledger.settings import MqttUrl

log = logging.getLogger(__name__)

COMMANDS = "$CONTROL/dynamic-security/v1"
RESPONSES = f"{COMMANDS}/response"

Command = dict[str, Any]
"""One command: `{"command": name, ...its fields}` as the plugin's README lists them."""


class DynsecUnavailable(Unavailable):
    """The plugin could not be asked, or did not answer in time."""

    code = "DYNSEC_UNAVAILABLE"


class DynsecError(Exception):
    """The plugin answered a command with an error (`Client not found`, ...)."""

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"dynamic security refused {command}: {error}")
        self.command = command
        self.error = error


class Answer(msgspec.Struct, frozen=True, rename={"correlation": "correlationData"}):
    command: str
    correlation: str | None = None
    error: str | None = None
    data: dict[str, Any] = {}

    def result(self) -> dict[str, Any]:
        """The answer's data; raises `DynsecError` when the plugin refused the command."""
        if self.error is not None:
            raise DynsecError(self.command, self.error)
        return self.data


class _Answers(msgspec.Struct, frozen=True):
    responses: list[Answer]


def command(name: str, **fields: Any) -> Command:
    return {"command": name, **fields}


class DynsecControl:
    """A connection as the dynsec admin, sending commands and awaiting their answers."""

    def __init__(
        self,
        url: MqttUrl,
        *,
        timeout: float = 5.0,
        client_id: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.tls = tls
        self._ssl = ssl_option(url, tls)
        self.timeout = timeout
        self._pending: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._ready = asyncio.Event()
        self._closing = False
        client_id = client_id or f"iotledger-dynsec-{uuid.uuid4().hex[:12]}"
        self._client = Client(client_id, clean_session=True, session_expiry_interval=0)
        self._client.set_config({"reconnect_delay": 1.0})
        self._client.set_auth_credentials(url.username, url.password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    async def start(self) -> None:
        """Connect and subscribe to the answers; raises `DynsecUnavailable` if refused."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._client.connect(
                    self.url.host, self.url.port, ssl=self._ssl, version=MQTTv50
                )
                await self._ready.wait()
        except (TimeoutError, OSError, MQTTConnectError) as e:
            await self.stop()
            raise DynsecUnavailable(f"dynsec admin {self.url.redacted()}: {e!r}") from e

    async def stop(self) -> None:
        self._closing = True
        self._fail_pending("the control connection closed")
        if self._client.has_connected:
            await self._client.disconnect()

    async def __aenter__(self) -> DynsecControl:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def call(self, name: str, **fields: Any) -> dict[str, Any]:
        """One command; its answer's data, or `DynsecError`."""
        (answer,) = await self.send([command(name, **fields)])
        return answer.result()

    async def send(self, commands: Sequence[Command]) -> list[Answer]:
        """Several commands in one message, applied in order; their answers, in order.

        An answer may be an error (see `Answer.result`); the others still applied.
        """
        if not commands:
            return []
        if self._closing or not self._ready.is_set():
            raise DynsecUnavailable("dynsec: not connected as the admin")
        futures = [self._expect(str(c["command"])) for c in commands]
        body = [
            {**c, "correlationData": key[1]} for c, (key, _) in zip(commands, futures, strict=True)
        ]
        # QoS 0: the answer is the acknowledgement, and gmqtt would refuse a QoS 1
        # publish past the broker's receive maximum (20) when many requests issue at once.
        self._client.publish(COMMANDS, msgspec.json.encode({"commands": body}), qos=0)
        try:
            async with asyncio.timeout(self.timeout):
                return list(await asyncio.gather(*(future for _, future in futures)))
        except TimeoutError:
            raise DynsecUnavailable(f"dynsec: no answer to {_names(commands)}") from None
        finally:
            for key, _ in futures:
                self._pending.pop(key, None)

    def _expect(self, name: str) -> tuple[tuple[str, str], asyncio.Future[Answer]]:
        """An answer awaited: known by its command's name and a correlation of its own."""
        key = (name, uuid.uuid4().hex)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        return key, future

    def _on_connect(self, client: Any, flags: Any, rc: Any, properties: Any) -> None:
        client.subscriptions = []  # on every connect, once: not also gmqtt's own resubscribe
        client.subscribe(gmqtt.Subscription(RESPONSES, qos=1))

    def _on_subscribe(self, client: Any, mid: Any, granted: Any, properties: Any) -> None:
        if all(code < 0x80 for code in granted):
            self._ready.set()
        else:
            log.error("dynsec: the broker refused %s to %s", RESPONSES, self.url.redacted())

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        self._ready.clear()
        self._fail_pending("the control connection was lost")
        if not self._closing:
            log.warning("dynsec: disconnected from %s; reconnecting", self.url.redacted())

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        try:
            answers = msgspec.json.decode(payload, type=_Answers).responses
        except msgspec.DecodeError:
            log.warning("dynsec: an answer that is not the plugin's: %r", payload[:200])
            return 0
        for answer in answers:
            future = self._pending.get((answer.command, answer.correlation or ""))
            if future is not None and not future.done():
                future.set_result(answer)
        return 0

    def _fail_pending(self, why: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DynsecUnavailable(f"dynsec: {why}"))


def _names(commands: Sequence[Command]) -> str:
    return ", ".join(sorted({str(c["command"]) for c in commands}))


async def accepts(url: MqttUrl, timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> bool:
    """Whether the broker lets `url`'s username and password in (a connect, then gone)."""
    client = gmqtt.Client(f"iotledger-probe-{uuid.uuid4().hex[:12]}", session_expiry_interval=0)
    client.set_auth_credentials(url.username, url.password)
    try:
        async with asyncio.timeout(timeout):
            await client.connect(url.host, url.port, ssl=ssl_option(url, tls), version=MQTTv50)
    except MQTTConnectError:
        return False
    except (TimeoutError, OSError) as e:
        raise DynsecUnavailable(f"broker {url.redacted()}: {e!r}") from e
    await client.disconnect()
    return True
