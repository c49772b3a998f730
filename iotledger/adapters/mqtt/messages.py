"""What devices send over MQTT, as msgspec Structs, and the outcomes other than "handled".

Shared by the inbound handler (`mqtt_inbound`) and the readings it stores in
batches (`mqtt_readings`).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.topics import Route
from iotledger.domain.devices import caused_by_device
from iotledger.domain.instants import Instant

S = TypeVar("S")

READING_TYPES = frozenset({"sensor_reading", "sensor_value"})
CHECK_RESPONSE = "device_check_response"
SERVER_TO_DEVICE = frozenset({"device_check_request", "sensor_trigger", "actor_command", "ping"})


# --- what devices send -----------------------------------------------------------------


class Envelope(msgspec.Struct):
    """The Lambda IoT Core message's kind; its other fields depend on it."""

    type: str


class SensorReading(msgspec.Struct):
    sensor_id: UUID
    value: float | bool | str
    value_at: Instant | None = None


class DeviceCheckResponse(msgspec.Struct):
    device_id: UUID
    status: str


class DiscoveredDevice(msgspec.Struct):
    """A field left out (or null) leaves the device's as it is."""

    id: UUID
    name: str | None = None
    description: str | None = None
    location: str | None = None


class DiscoveredComponent(msgspec.Struct):
    id: UUID
    name: str
    type: str
    data_type_id: int


class Discovery(msgspec.Struct):
    """A list that is present is complete; one left out (or null) leaves that kind alone."""

    device: DiscoveredDevice
    mac_address: str | None = None
    sensors: list[DiscoveredComponent] | None = None
    actors: list[DiscoveredComponent] | None = None


class Telemetry(msgspec.Struct):
    telemetry_type: str
    payload: dict[str, Any]
    recorded_at: Instant | None = None
    id: str | int | None = None
    device_id: UUID | None = None


class CommandAck(msgspec.Struct):
    status: Literal["acknowledged", "executed", "failed"]
    executed_at: Instant | None = None
    result: Any = None
    device_id: UUID | None = None


class ClaimRequest(msgspec.Struct):
    """The device may be claimed with `secret_key` for the next `duration_ms`."""

    secret_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    duration_ms: Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 3600 * 1000)]


class StatusReport(msgspec.Struct):
    status: Literal["online", "offline"]
    device_id: UUID | None = None


# --- outcomes other than "handled" ---------------------------------------------------


class Dropped(Exception):
    """The message cannot be understood or applied: acknowledge it, store nothing."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class Ignored(Exception):
    """A message for devices, not for us (our own, echoed on `T`)."""


def decode(payload: bytes, struct: type[S]) -> S:
    try:
        return msgspec.json.decode(payload, type=struct)
    except msgspec.ValidationError as error:
        raise Dropped("invalid", str(error)) from None
    except msgspec.DecodeError as error:
        raise Dropped("not_json", str(error)) from None


def decode_telemetry(payload: bytes) -> Telemetry | list[Telemetry]:
    """One reading, or a batched message: a JSON array of them (one unit: all or none)."""
    first = payload[:1]
    if first.isspace():  # rare: lstrip copies the payload
        first = payload.lstrip()[:1]
    if first == b"[":
        return decode(payload, list[Telemetry])
    return decode(payload, Telemetry)


@functools.lru_cache(maxsize=65536)
def device_cause(device_id: UUID) -> str:
    return caused_by_device(device_id)


def speaker(route: Route, named: UUID | None) -> UUID:
    """The device of a message on a device's own topic: a message may not speak for another."""
    if route.device_id is None or (named is not None and named != route.device_id):
        raise Dropped("device_mismatch", f"topic of {route.device_id}, message of {named}")
    return route.device_id
