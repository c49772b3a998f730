"""Inbound PUBLISH packets read straight off gmqtt's input, handled in batches, acked in one write.

gmqtt spends about 40 µs of Python on each inbound PUBLISH: a `Package`
object, a property dict, `struct` formats built per message, debug log calls,
an asyncio task for the handler, and a PUBACK built and written on its own.
At thousands of readings a second that was most of the adapter's CPU. So on
each connection this module replaces the one gmqtt method that cuts the bytes
read from the socket into packets. Of each chunk read, every QoS 0 or 1
PUBLISH without properties becomes a `(topic, payload)` pair; the pairs of the
chunk go to `deliver` together (one task, one handler call), and their PUBACKs
leave in one write when the handler has returned, i.e. after the commit
(`PacketReader.acknowledge`). Every other packet goes to gmqtt exactly as before:
CONNACK, SUBACK, PINGRESP, the PUBACKs of our own publishes, and any PUBLISH
this reader leaves alone (QoS 2, MQTT 5 properties, which is also where a
topic alias would be, an empty topic, a topic that is not UTF-8). Connecting,
subscribing, keepalive, reconnecting and outbound QoS stay gmqtt's.

This is the one module that touches gmqtt's internals: `Client` below also gives the
link and the dynsec control what gmqtt keeps private (whether a connection was ever
made, the receive maximum the broker granted). What it relies on in gmqtt (pinned to
0.8.0 in pyproject.toml; each is checked by tests/unit/test_mqtt_intake.py, so an upgrade
that moves one fails there first):
- `Client._create_connection(...)` returns the new `MQTTConnection` before
  CONNECT is sent, so nothing has been read yet when the reader is replaced;
- `MQTTProtocol._read_loop` calls `self._read_packet(data) -> int` for each
  chunk: the bytes consumed (the rest is kept for the next chunk), -1 when the
  input is malformed (the connection is then reset);
- `MQTTConnection._protocol`, `._handler` (whose `current_connection` tells a
  superseded connection), `._last_data_in` (keepalive), `.put_package(Package)`;
- `MQTTProtocol.proto_ver`, `._transport`, `.write_data(bytes)`;
- `Client._connection`: None until the first connect, then the current connection;
- `Client._package_handler.id_generator._max`: the broker's receive maximum, once its
  CONNACK is applied.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.package import Package

log = logging.getLogger(__name__)

Message = tuple[str, bytes]
"""A PUBLISH as the handler sees it: its topic and its payload."""

PUBLISH = 0x3
PUBACK = 0x4002_0000
"""PUBACK, remaining length 2, then the packet id in the low 16 bits: four bytes that mean
success in MQTT 3.1.1, and in MQTT 5 too (reason code and properties omitted, §3.4.2.1)."""


def pubacks(mids: list[int]) -> bytes:
    return struct.pack(f"!{len(mids)}I", *[PUBACK | mid for mid in mids])


class PacketReader:
    """One connection's packet reader: PUBLISH packets in batches, the rest to gmqtt."""

    def __init__(
        self, connection: Any, deliver: Callable[[list[Message], list[int], PacketReader], None]
    ) -> None:
        self._connection = connection
        self._protocol = connection._protocol
        self._deliver = deliver

    def install(self) -> None:
        self._protocol._read_packet = self.read

    def read(self, data: bytes) -> int:
        """Take every whole packet at the start of `data`; the bytes taken, or -1 if malformed."""
        messages: list[Message] = []
        mids: list[int] = []
        v5 = self._protocol.proto_ver >= MQTTv50
        size = len(data)
        start = 0
        taken = 0
        while start + 2 <= size:
            length, at = _remaining_length(data, start + 1, size)
            if length < 0:
                taken = -1
                break
            end = at + length
            if at == 0 or end > size:
                break  # the rest of this packet comes with the next chunk
            cmd = data[start]
            publish = _publish(cmd, data, at, end, v5) if cmd >> 4 == PUBLISH else None
            if publish is None:
                self._connection.put_package(Package(cmd, data[at:end]))
            else:
                messages.append(publish[0])
                if publish[1]:
                    mids.append(publish[1])
            start = taken = end
        if messages:
            self._hand_over(messages, mids)
        return taken

    def _hand_over(self, messages: list[Message], mids: list[int]) -> None:
        """As gmqtt's `put_package` does: fresh keepalive, nothing from a superseded connection."""
        connection = self._connection
        if connection._handler.current_connection is not connection:
            log.debug("dropping %d messages read on a superseded connection", len(messages))
            return
        connection._last_data_in = time.monotonic()
        self._deliver(messages, mids, self)

    def acknowledge(self, mids: list[int]) -> None:
        """PUBACK these messages in one write, on the connection they came on.

        If that connection is gone, nothing is sent: the broker sends them again
        (to this session once it reconnects, or to another member of the group).
        """
        transport = self._protocol._transport
        if mids and transport is not None and not transport.is_closing():
            self._protocol.write_data(pubacks(mids))


def _remaining_length(data: bytes, at: int, size: int) -> tuple[int, int]:
    """The fixed header's remaining length and where the packet's body starts.

    (0, 0) when the header itself is not whole yet; (-1, 0) when it is malformed.
    """
    length = 0
    shift = 0
    while at < size:
        byte = data[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, at
        shift += 7
        if shift > 21:
            return -1, 0
    return 0, 0


def _publish(cmd: int, data: bytes, at: int, end: int, v5: bool) -> tuple[Message, int] | None:
    """A PUBLISH's topic and payload, and its packet id (0 for QoS 0); None to leave it to gmqtt."""
    qos = (cmd >> 1) & 3
    if qos == 2 or end - at < 2:
        return None
    topic_end = at + 2 + (data[at] << 8 | data[at + 1])
    payload_at = topic_end + (2 if qos else 0) + (1 if v5 else 0)
    if topic_end == at + 2 or payload_at > end or (v5 and data[payload_at - 1] != 0):
        return None  # empty topic (a topic alias), truncated, or MQTT 5 properties
    try:
        topic = data[at + 2 : topic_end].decode()
    except UnicodeDecodeError:
        return None
    mid = data[topic_end] << 8 | data[topic_end + 1] if qos else 0
    return (topic, data[payload_at:end]), mid


class Client(gmqtt.Client):  # type: ignore[misc]
    """gmqtt's client, and what we ask of it that gmqtt keeps private."""

    @property
    def has_connected(self) -> bool:
        """Whether it connected once: from then on it reconnects by itself until
        `disconnect`, which before then would fail."""
        return self._connection is not None

    @property
    def ready(self) -> bool:
        """Connected now (gmqtt's `is_connected` fails before the first connection)."""
        return self.has_connected and bool(self.is_connected)

    @property
    def send_window(self) -> int:
        """How many unacknowledged QoS 1 messages the broker takes from us: its receive
        maximum, as gmqtt applied it from the CONNACK (Mosquitto's default: 20)."""
        generator = getattr(self._package_handler, "id_generator", None)
        return int(getattr(generator, "_max", 20))


class BatchingClient(Client):
    """A gmqtt client whose every connection reads inbound PUBLISH packets with a `PacketReader`."""

    def __init__(
        self,
        client_id: str,
        deliver: Callable[[list[Message], list[int], PacketReader], None],
        **options: Any,
    ) -> None:
        super().__init__(client_id, **options)
        self._deliver = deliver

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        connection = await super()._create_connection(*args, **kwargs)
        PacketReader(connection, self._deliver).install()
        return connection
