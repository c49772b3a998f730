"""Everything devices send over MQTT: decoded, checked, and turned into commands.

Topics (base `T`): `T` (the Lambda IoT Core protocol: `sensor_reading`,
`sensor_value`, `device_check_response`), `T/discovery`, and each device's own
`T/devices/{id}/telemetry`, `.../commands/{cid}/ack` and `.../status`.

What `handle` promises the link, which acknowledges the message when it returns:
- handled: what the message caused has committed;
- dropped (not JSON, wrong types, unknown type, unknown device or sensor, a
  message on one device's topic that names another, a report the domain
  refuses): counted by reason, logged once, nothing stored;
- ignored: the server's own messages on `T` (check requests, triggers, pings),
  which every subscriber of `T` receives;
- an infrastructure failure (database down): retried with a bounded backoff
  until it succeeds, so a message is never acknowledged before it is stored.

Any message from a device that was lost brings it back online (and so lets its
waiting commands go), and records that the device was heard from.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.persistence import PersistenceError

from iotledger.adapters.device_directory import (
    DeviceDirectory,
    KnownDevice,
    Presence,
    SingleFlight,
)
from iotledger.adapters.ingest import ReadingIngest
from iotledger.adapters.tick_batch import TickBatch
from iotledger.adapters.topics import Channel, Route, Topics
from iotledger.domain.command_service import COMMAND_NOT_FOUND, ReportCommand
from iotledger.domain.commands import CommandStatus
from iotledger.domain.device_service import DEVICE_NOT_FOUND
from iotledger.domain.devices import FLEET, Component, ComponentKind, DeviceAccess
from iotledger.domain.discovery_service import (
    AnnouncedComponent,
    DiscoverDevice,
    ReportDeviceStatus,
)
from iotledger.domain.errors import Conflict, DomainError, InvalidInput, NotFound, Unavailable
from iotledger.domain.ledger import Ledger
from iotledger.domain.reading_service import RecordReading
from iotledger.domain.readings import lambda_value
from iotledger.domain.vocabulary import (
    DeviceStatus,
    TelemetryStatus,
    from_check_word,
    from_telemetry_status,
)

log = logging.getLogger(__name__)

S = TypeVar("S")
Instant = Annotated[datetime, msgspec.Meta(tz=True)]
"""A date-time with its offset: a device's clock without one cannot be placed."""

SERVER_TO_DEVICE = frozenset({"device_check_request", "sensor_trigger", "actor_command", "ping"})
INFRASTRUCTURE = (Unavailable, psycopg.Error, PersistenceError, OSError, TimeoutError)
CONFLICT_RETRIES = 3
_NOT_FOUND_REASONS = {
    DEVICE_NOT_FOUND: "unknown_device",
    COMMAND_NOT_FOUND: "unknown_command",
    "sensor not found": "unknown_sensor",
}


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
    id: UUID
    name: str
    description: str = ""
    location: str = ""


class DiscoveredComponent(msgspec.Struct):
    id: UUID
    name: str
    type: str
    data_type_id: int


class Discovery(msgspec.Struct):
    device: DiscoveredDevice
    mac_address: str | None = None
    sensors: list[DiscoveredComponent] = []
    actors: list[DiscoveredComponent] = []


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


def device_cause(device_id: UUID) -> str:
    return f"device:{device_id}"


def now() -> datetime:
    return datetime.now(UTC)


class Inbound:
    """The handler of every message the adapter receives."""

    def __init__(
        self,
        ledger: Ledger,
        ingest: ReadingIngest,
        *,
        directory: DeviceDirectory,
        presence: Presence,
        topics: Topics,
        counters: Counter[str],
        max_backoff: float = 5.0,
    ) -> None:
        self.ledger = ledger
        self.directory = directory
        self.presence = presence
        self.topics = topics
        self.counters = counters
        self.max_backoff = max_backoff
        self._waking: SingleFlight[UUID, None] = SingleFlight()
        self._readings: TickBatch[RecordReading] = TickBatch(ingest.submit)
        self._channels: dict[Channel, Callable[[Route, bytes], Awaitable[None]]] = {
            Channel.LAMBDA: self._lambda,
            Channel.DISCOVERY: self._discovery,
            Channel.TELEMETRY: self._telemetry,
            Channel.ACK: self._ack,
            Channel.STATUS: self._status,
        }

    async def handle(self, topic: str, payload: bytes) -> None:
        """Return once the message is handled, dropped or ignored; retry what failed."""
        delay = 0.1
        conflicts = 0
        while True:
            try:
                await self._route(topic, payload)
            except Ignored:
                self.counters["ignored"] += 1
            except Dropped as dropped:
                self._drop(topic, payload, dropped.reason, str(dropped))
            except Conflict as error:
                conflicts += 1
                if conflicts <= CONFLICT_RETRIES:
                    continue  # most likely a concurrent change to the same aggregate
                self._drop(topic, payload, "rejected", str(error))
            except INFRASTRUCTURE as error:
                self.counters["retried"] += 1
                log.warning("MQTT message on %s not stored yet (%s); retrying", topic, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            except DomainError as error:
                self._drop(topic, payload, _reason(error), str(error))
            except Exception:
                log.exception("MQTT message on %s failed unexpectedly; dropped", topic)
                self._drop(topic, payload, "error", "unexpected error")
            else:
                self.counters["handled"] += 1
            return

    async def _route(self, topic: str, payload: bytes) -> None:
        route = self.topics.route(topic)
        handler = None if route is None else self._channels.get(route.channel)
        if route is None or handler is None:
            raise Dropped("unknown_topic", topic)
        await handler(route, payload)

    def _drop(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        self.counters["dropped"] += 1
        self.counters[f"dropped.{reason}"] += 1
        log.warning("MQTT message on %s dropped (%s: %s): %r", topic, reason, detail, payload[:200])

    # --- the Lambda IoT Core protocol ----------------------------------------------------

    async def _lambda(self, route: Route, payload: bytes) -> None:
        kind = decode(payload, Envelope).type
        if kind in ("sensor_reading", "sensor_value"):
            await self._sensor_reading(decode(payload, SensorReading))
        elif kind == "device_check_response":
            await self._check_response(decode(payload, DeviceCheckResponse))
        elif kind in SERVER_TO_DEVICE:
            raise Ignored
        else:
            raise Dropped("unknown_type", f"unknown message type {kind!r}")

    async def _sensor_reading(self, message: SensorReading) -> None:
        """Stored only for a sensor of the shared fleet, as its device's reading."""
        sensor = await self.directory.sensor(message.sensor_id)
        if sensor is None:
            raise Dropped("unknown_sensor", f"no sensor {message.sensor_id}")
        value = lambda_value(message.value)
        at = now()
        reading = RecordReading(
            device_id=sensor.device_id,
            telemetry_type=sensor.sensor_type,
            payload={"value": value},
            recorded_at=message.value_at or at,
            by=device_cause(sensor.device_id),
            sensor_id=sensor.id,
            value=value,
        )
        await self._readings.submit(reading)
        device = await self.directory.device(sensor.device_id)
        if device is not None:
            await self._seen(device, at)

    async def _check_response(self, message: DeviceCheckResponse) -> None:
        device = await self._known(message.device_id, FLEET)
        status = from_check_word(message.status)
        at = now()
        self.presence.heard(device.id, at)
        report = ReportDeviceStatus(device.id, status, device_cause(device.id), at, FLEET)
        await self._report(report)

    async def _discovery(self, route: Route, payload: bytes) -> None:
        message = decode(payload, Discovery)
        announced = (
            *_components(ComponentKind.SENSOR, message.sensors),
            *_components(ComponentKind.ACTOR, message.actors),
        )
        device_id = message.device.id
        at = now()
        command = DiscoverDevice(
            device_id=device_id,
            name=message.device.name,
            description=message.device.description,
            location=message.device.location,
            components=announced,
            by=device_cause(device_id),
            at=at,
            mac_address=message.mac_address,
        )
        await asyncio.to_thread(self.ledger.discover_device, command)
        self.directory.forget(device_id, *(item.component_id for item in announced))
        self.presence.heard(device_id, at)

    # --- each device's own topics -----------------------------------------------------------

    async def _telemetry(self, route: Route, payload: bytes) -> None:
        message = decode(payload, Telemetry)
        device = await self._sender(route, message.device_id)
        at = now()
        reading = RecordReading(
            device_id=device.id,
            telemetry_type=message.telemetry_type,
            payload=message.payload,
            recorded_at=message.recorded_at or at,
            by=device_cause(device.id),
            key=None if message.id is None else str(message.id),
        )
        await self._readings.submit(reading)
        await self._seen(device, at)

    async def _ack(self, route: Route, payload: bytes) -> None:
        message = decode(payload, CommandAck)
        device = await self._sender(route, message.device_id)
        if route.command_id is None:
            raise Dropped("unknown_topic")
        at = now()
        report = ReportCommand(
            command_id=route.command_id,
            device_id=device.id,
            access=None,
            status=CommandStatus(message.status),
            by=device_cause(device.id),
            at=at,
            executed_at=message.executed_at,
            result=message.result,
        )
        await asyncio.to_thread(self.ledger.report_command, report)
        await self._seen(device, at)

    async def _status(self, route: Route, payload: bytes) -> None:
        """A device's own word on its status; `offline` is typically its will."""
        message = decode(payload, StatusReport)
        device = await self._sender(route, message.device_id)
        status = from_telemetry_status(TelemetryStatus(message.status))
        at = now()
        if status == DeviceStatus.OK:
            self.presence.heard(device.id, at)
        await self._report(ReportDeviceStatus(device.id, status, device_cause(device.id), at))

    # --- shared steps ---------------------------------------------------------------------------

    async def _sender(self, route: Route, named: UUID | None) -> KnownDevice:
        """The device whose topic the message came on; it may not speak for another."""
        if route.device_id is None or (named is not None and named != route.device_id):
            raise Dropped("device_mismatch", f"topic of {route.device_id}, message of {named}")
        return await self._known(route.device_id, None)

    async def _known(self, device_id: UUID, access: DeviceAccess | None) -> KnownDevice:
        device = await self.directory.device(device_id)
        if device is None or (access is not None and not access.allows(device.owner)):
            raise Dropped("unknown_device", f"no device {device_id}")
        return device

    async def _report(self, command: ReportDeviceStatus) -> None:
        await asyncio.to_thread(self.ledger.report_device_status, command)
        self.directory.forget(command.device_id)

    async def _seen(self, device: KnownDevice, at: datetime) -> None:
        """Heard from: a lost device is back online (once, however many messages say so)."""
        self.presence.heard(device.id, at)
        if device.status == DeviceStatus.LOST:
            back = ReportDeviceStatus(
                device.id, DeviceStatus.OK, device_cause(device.id), at, only_from=device.status
            )
            await self._waking.run(device.id, lambda: self._report(back))


def _components(
    kind: ComponentKind, announced: list[DiscoveredComponent]
) -> tuple[AnnouncedComponent, ...]:
    return tuple(
        AnnouncedComponent(item.id, Component(kind, item.name, item.type, item.data_type_id))
        for item in announced
    )


def _reason(error: DomainError) -> str:
    if isinstance(error, NotFound):
        return _NOT_FOUND_REASONS.get(str(error), "unknown_target")
    if isinstance(error, InvalidInput):
        return "invalid"
    return "rejected"
