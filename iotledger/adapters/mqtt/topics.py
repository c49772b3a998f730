"""Every MQTT topic iotledger uses, named once, for a configurable base topic `T`.

- `T`: the Lambda IoT Core protocol (readings, device checks, triggers, actor commands, pings)
- `T/discovery`: Lambda IoT Core discovery
- `T/devices/{device_id}/telemetry`: a device's readings (Device Telemetry dialect)
- `T/devices/{device_id}/commands`: commands to a device
- `T/devices/{device_id}/commands/{command_id}/ack`: a device's answer to a command
- `T/devices/{device_id}/status`: a device's status, usable as its will
- `T/devices/{device_id}/claim`: a device offers itself to be claimed

And who may use which (`Acl`): a device its own topics, a gateway `T` and
`T/discovery`.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID

import msgspec


class Channel(StrEnum):
    LAMBDA = "lambda"
    DISCOVERY = "discovery"
    TELEMETRY = "telemetry"
    COMMANDS = "commands"
    ACK = "ack"
    STATUS = "status"
    CLAIM = "claim"


class Route(msgspec.Struct, frozen=True):
    """Where a message arrived: its channel and the ids its topic names."""

    channel: Channel
    device_id: UUID | None = None
    command_id: UUID | None = None


class Acl(NamedTuple):
    """The topic filters a client may publish to and subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def allows_publish(self, topic: str) -> bool:
        return any(covers(allowed, topic) for allowed in self.publish)

    def allows_subscribe(self, topic_filter: str) -> bool:
        return any(covers(allowed, topic_filter) for allowed in self.subscribe)


def covers(allowed: str, requested: str) -> bool:
    """Whether every topic `requested` names (a topic, or a filter) is one `allowed` names.

    `+` in `allowed` takes any one level (our lists hold no `#`); a wildcard in
    `requested` is covered only by the same wildcard, so `T/devices/+/commands` is not
    one device's `T/devices/x/commands`, and `T/#` is nobody's.
    """
    want, have = allowed.split("/"), requested.split("/")
    return len(want) == len(have) and all(w in ("+", h) for w, h in zip(want, have, strict=True))


class Topics:
    def __init__(self, base: str) -> None:
        self.base = base
        self.discovery = f"{base}/discovery"

    def telemetry(self, device_id: UUID) -> str:
        return f"{self.base}/devices/{device_id}/telemetry"

    def commands(self, device_id: UUID) -> str:
        return f"{self.base}/devices/{device_id}/commands"

    def ack(self, device_id: UUID, command_id: UUID) -> str:
        return f"{self.base}/devices/{device_id}/commands/{command_id}/ack"

    def status(self, device_id: UUID) -> str:
        return f"{self.base}/devices/{device_id}/status"

    def claim(self, device_id: UUID) -> str:
        return f"{self.base}/devices/{device_id}/claim"

    def device_acl(self, device_id: UUID) -> Acl:
        """A device's own client: its readings, status, answers and claim; its commands."""
        own = f"{self.base}/devices/{device_id}"
        publish = (self.telemetry(device_id), self.status(device_id), f"{own}/commands/+/ack")
        return Acl(publish=(*publish, self.claim(device_id)), subscribe=(self.commands(device_id),))

    def gateway_acl(self) -> Acl:
        """A gateway speaks the Lambda IoT Core protocol for many devices."""
        return Acl(publish=(self.base, self.discovery), subscribe=(self.base,))

    def subscriptions(self) -> tuple[str, ...]:
        """The filters the adapter subscribes to: everything devices send us."""
        devices = f"{self.base}/devices/+"
        return (
            self.base,
            self.discovery,
            f"{devices}/telemetry",
            f"{devices}/commands/+/ack",
            f"{devices}/status",
            f"{devices}/claim",
        )

    def route(self, topic: str) -> Route | None:
        """The channel of a topic we subscribe to, or None for anything else."""
        return _route(self.base, topic)


@functools.lru_cache(maxsize=100_000)
def _route(base: str, topic: str) -> Route | None:
    """Remembered: a busy device sends on the same few topics all day."""
    if topic == base:
        return Route(Channel.LAMBDA)
    if topic == f"{base}/discovery":
        return Route(Channel.DISCOVERY)
    prefix = f"{base}/devices/"
    if not topic.startswith(prefix):
        return None
    return _device_route(topic[len(prefix) :].split("/"))


def _device_route(parts: list[str]) -> Route | None:
    """`{id}/telemetry`, `{id}/status`, `{id}/claim` or `{id}/commands/{command_id}/ack`."""
    try:
        device_id = UUID(parts[0])
        if parts[1:] in (["telemetry"], ["status"], ["claim"]):
            return Route(Channel(parts[1]), device_id)
        if len(parts) == 4 and parts[1] == "commands" and parts[3] == "ack":
            return Route(Channel.ACK, device_id, UUID(parts[2]))
    except (ValueError, IndexError):
        return None
    return None
