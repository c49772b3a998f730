"""The PUBLISH fast path: what it takes off gmqtt's input, what it leaves to gmqtt, and the
gmqtt internals that it and the link rely on (pinned here, so that an upgrade of gmqtt fails
these first)."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import itertools
import struct
from pathlib import Path
from types import SimpleNamespace

import gmqtt
from gmqtt.mqtt.connection import MQTTConnection
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.mqtt.handler import MqttPackageHandler
from gmqtt.mqtt.package import Package
from gmqtt.mqtt.protocol import BaseMQTTProtocol, MQTTProtocol
from gmqtt.mqtt.utils import IdGenerator
from hypothesis import given
from hypothesis import strategies as st

import iotledger
from iotledger.adapters.mqtt.packets import Client, Message, PacketReader, pubacks

PINGRESP = b"\xd0\x00"
CONTENT_TYPE = 0x03


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: str,
    payload: bytes,
    *,
    mid: int = 1,
    qos: int = 1,
    version: int = MQTTv50,
    properties: bytes = b"",
) -> bytes:
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name
    if qos:
        body += struct.pack("!H", mid)
    if version >= MQTTv50:
        body += remaining_length(len(properties)) + properties
    body += payload
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


class Transport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


class Protocol:
    def __init__(self, version: int) -> None:
        self.proto_ver = version
        self._transport = Transport()
        self.written: list[bytes] = []

    def write_data(self, data: bytes) -> None:
        self.written.append(data)


class Connection:
    """What the packet reader uses of gmqtt's `MQTTConnection`."""

    def __init__(self, version: int = MQTTv50) -> None:
        self._protocol = Protocol(version)
        self._handler = SimpleNamespace(current_connection=self)
        self._last_data_in = 0.0
        self.packages: list[Package] = []

    def put_package(self, package: Package) -> None:
        self.packages.append(package)


class Batches:
    def __init__(self) -> None:
        self.messages: list[list[Message]] = []
        self.mids: list[list[int]] = []

    def __call__(self, messages: list[Message], mids: list[int], reader: PacketReader) -> None:
        self.messages.append(messages)
        self.mids.append(mids)


def reader_of(connection: Connection) -> tuple[PacketReader, Batches]:
    batches = Batches()
    reader = PacketReader(connection, batches)
    reader.install()
    return reader, batches


def test_the_publishes_of_a_chunk_are_handed_over_together_and_the_rest_goes_to_gmqtt() -> None:
    connection = Connection()
    reader, batches = reader_of(connection)
    with_properties = publish("t/p", b"{}", mid=3, properties=bytes([CONTENT_TYPE, 0, 1]) + b"j")
    chunk = b"".join(
        [
            publish("t/a", b'{"a": 1}', mid=1),
            PINGRESP,
            publish("t/b", b"zero", qos=0),
            with_properties,
            publish("t/q2", b"two", mid=4, qos=2),
            publish("t/c", b"x" * 300, mid=65535),
        ]
    )
    assert connection._protocol._read_packet(chunk) == len(chunk)  # type: ignore[attr-defined]
    assert batches.messages == [[("t/a", b'{"a": 1}'), ("t/b", b"zero"), ("t/c", b"x" * 300)]]
    assert batches.mids == [[1, 65535]]
    assert [p.cmd for p in connection.packages] == [0xD0, 0x32, 0x34]
    assert connection.packages[1].data == with_properties[2:]
    assert connection._last_data_in > 0
    assert reader.read(b"") == 0


def test_mqtt_311_publishes_have_no_properties() -> None:
    connection = Connection(MQTTv311)
    reader, batches = reader_of(connection)
    chunk = publish("t/a", b"1", mid=7, version=MQTTv311) + publish(
        "t/b", b"2", mid=8, version=MQTTv311
    )
    assert reader.read(chunk) == len(chunk)
    assert batches.messages == [[("t/a", b"1"), ("t/b", b"2")]]
    assert batches.mids == [[7, 8]]


@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(["T", "T/devices/1/telemetry", "ü/ñ"]),
            st.binary(max_size=400),
            st.integers(1, 65535),
            st.sampled_from([0, 1]),
        ),
        min_size=1,
        max_size=12,
    ),
    version=st.sampled_from([MQTTv311, MQTTv50]),
    cuts=st.lists(st.integers(0, 5000), max_size=8),
)
def test_whatever_the_chunks_every_publish_is_handed_over_once_in_order(
    messages: list[tuple[str, bytes, int, int]], version: int, cuts: list[int]
) -> None:
    stream = b"".join(
        publish(topic, payload, mid=mid, qos=qos, version=version)
        for topic, payload, mid, qos in messages
    )
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    connection = Connection(version)
    reader, batches = reader_of(connection)
    buffer = b""
    for start, end in itertools.pairwise(points):  # as gmqtt's read loop does
        buffer += stream[start:end]
        taken = reader.read(buffer)
        assert taken >= 0
        buffer = buffer[taken:]
    assert buffer == b""
    assert connection.packages == []
    assert [m for batch in batches.messages for m in batch] == [(t, p) for t, p, _, _ in messages]
    assert [m for batch in batches.mids for m in batch] == [m for _, _, m, q in messages if q]


def test_a_malformed_length_resets_the_connection() -> None:
    reader, batches = reader_of(Connection())
    assert reader.read(b"\x32\xff\xff\xff\xff\x01") == -1
    assert batches.messages == []


def test_nothing_is_handed_over_from_a_superseded_connection() -> None:
    connection = Connection()
    reader, batches = reader_of(connection)
    connection._handler.current_connection = object()
    chunk = publish("t/a", b"1")
    assert reader.read(chunk) == len(chunk)
    assert batches.messages == []


def test_acknowledgements_leave_in_one_write_on_their_own_connection_only() -> None:
    connection = Connection()
    reader, _ = reader_of(connection)
    reader.acknowledge([1, 258, 65535])
    assert connection._protocol.written == [bytes.fromhex("40020001 40020102 4002ffff")]
    assert pubacks([]) == b""
    connection._protocol._transport.closing = True
    reader.acknowledge([2])
    assert len(connection._protocol.written) == 1


def test_the_gmqtt_internals_the_packet_reader_relies_on_are_where_it_expects_them() -> None:
    """See the docstring of `iotledger.adapters.mqtt.packets`; pinned in pyproject.toml."""
    assert importlib.metadata.version("gmqtt") == "0.8.0"
    # The reader is replaced before anything is read: the connection exists before CONNECT.
    assert inspect.iscoroutinefunction(gmqtt.Client._create_connection)
    for method in (gmqtt.Client.connect, gmqtt.Client.reconnect):
        source = inspect.getsource(method)
        assert source.index("self._create_connection(") < source.index(".auth(")
    # gmqtt's read loop calls the reader through the instance, for every chunk.
    read_loop = inspect.getsource(MQTTProtocol._read_loop)
    assert "parsed_size = self._read_packet(buf)" in read_loop
    assert "parsed_size == -1" in read_loop
    assert "buf = buf[parsed_size:]" in read_loop
    connection = inspect.getsource(MQTTConnection.__init__)
    assert "self._protocol = protocol" in connection
    assert "self._handler = package_handler" in connection
    assert "self._last_data_in = time.monotonic()" in inspect.getsource(MQTTConnection.put_package)
    assert isinstance(MqttPackageHandler.current_connection, property)
    assert isinstance(MQTTProtocol.proto_ver, property)
    assert "self._transport = transport" in inspect.getsource(BaseMQTTProtocol.connection_made)
    assert callable(BaseMQTTProtocol.write_data)
    assert Package(0x30, b"").cmd == 0x30


def test_what_the_link_asks_of_gmqtts_client_is_where_it_expects_it() -> None:
    """`packets.Client`: the connection gmqtt keeps, and the receive maximum it applied."""
    client = Client("pinned")
    assert client._connection is None
    assert not client.has_connected
    assert not client.ready  # where gmqtt's own `is_connected` would fail
    assert client.send_window == 65535  # no CONNACK yet: MQTT's default
    assert "self._connection = await self._create_connection(" in inspect.getsource(
        gmqtt.Client.connect
    )
    applied = inspect.getsource(MqttPackageHandler._apply_receive_maximum)
    assert "self.id_generator._max = receive_maximum" in applied
    assert IdGenerator(max=20)._max == 20
    # The link's `_AckWaiters` learns of acknowledgements through gmqtt's storage hooks.
    source = inspect.getsource(gmqtt.Client)
    for hook in ("push_message(mid, ", "remove_message_by_mid(mid)", "clear()"):
        assert f"self._persistent_storage.{hook}" in source


GMQTT_PRIVATES = {"_connection", "_package_handler", "_protocol", "_read_packet", "_transport"}


def test_no_module_but_the_packet_readers_touches_gmqtts_privates() -> None:
    package = Path(iotledger.__file__).parent
    touching = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in GMQTT_PRIVATES
    }
    assert touching == {"adapters/mqtt/packets.py"}
