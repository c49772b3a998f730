"""Just enough MQTT 3.1.1 to publish at QoS 1 and see each PUBACK.

A load client must know exactly which messages the broker acknowledged; a few
dozen lines of the protocol say so more plainly than a client library's callbacks.
"""

from __future__ import annotations

import socket

CONNACK, PUBACK = 0x20, 0x40
PUBLISH_QOS1 = 0x32


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _length(len(body)) + body


def connect_packet(client_id: str, keepalive: int = 30) -> bytes:
    clean_session = 0x02
    header = _string("MQTT") + bytes([4, clean_session]) + keepalive.to_bytes(2, "big")
    return packet(0x10, header + _string(client_id))


def publish_packet(topic: str, packet_id: int, payload: bytes) -> bytes:
    return packet(PUBLISH_QOS1, _string(topic) + packet_id.to_bytes(2, "big") + payload)


class Connection:
    """A socket to the broker and the packets read off it."""

    def __init__(self, port: int, client_id: str, timeout: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = b""
        self.sock.sendall(connect_packet(client_id))
        kind, body = self.read()
        if kind != CONNACK or body[1:2] != b"\x00":
            raise ConnectionError(f"refused: {kind:#x} {body!r}")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> tuple[int, bytes]:
        """The next packet: (type, body); OSError when the broker is gone or silent."""
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the broker closed the connection")
            self._buffer += chunk

    def _parse(self) -> tuple[int, bytes] | None:
        size, multiplier, index = 0, 1, 1
        while True:
            if index >= len(self._buffer):
                return None
            digit = self._buffer[index]
            size += (digit & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if not digit & 0x80:
                break
        if len(self._buffer) < index + size:
            return None
        kind, body = self._buffer[0] & 0xF0, self._buffer[index : index + size]
        self._buffer = self._buffer[index + size :]
        return kind, body

    def close(self) -> None:
        self.sock.close()
