"""Everything devices send over MQTT: decoded, checked, and turned into commands.

Topics (base `T`): `T` (the Lambda IoT Core protocol: `sensor_reading`,
`sensor_value`, `device_check_response`), `T/discovery`, and each device's own
`T/devices/{id}/telemetry`, `.../commands/{cid}/ack`, `.../status` and `.../claim`.

The link hands over messages in batches (what it read from the socket in one
go). The readings of a batch, telemetry and Lambda sensor readings alike, are
decoded and checked one by one, but looked up once per device and recorded
together, by one call of the recording service (`adapters.mqtt.readings`); every
other message (discovery,
command answers, statuses, check responses) is handled on its own,
concurrently with them.

What `handle_many` promises the link, which acknowledges the messages when it
returns:
- handled: what the message caused has committed (a redelivered reading, stored
  before, is counted a `duplicate` instead);
- dropped (larger than `max_payload`, checked before anything else; not JSON,
  wrong types, a batched message (a JSON array of telemetry) that is empty, holds
  more than `IOTLEDGER_MAX_BATCH_READINGS` or one reading that cannot be made (the whole
  message), unknown type, unknown device or sensor, a message on one
  device's topic that names another, a report the domain refuses): counted by
  reason, logged once, nothing stored;
- ignored: the server's own messages on `T` (check requests, triggers, pings),
  which every subscriber of `T` receives;
- an infrastructure failure (database down): retried with a bounded backoff
  until it succeeds, so a message is never acknowledged before it is stored.

Any message from a device that was lost brings it back online (and so lets its
waiting commands go), and records that the device was heard from.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import PersistenceError

from iotledger.adapters.mqtt.directory import (
    DeviceDirectory,
    KnownDevice,
    KnownSensor,
    Presence,
    SingleFlight,
)
from iotledger.adapters.mqtt.messages import (
    CHECK_RESPONSE,
    READING_TYPES,
    SERVER_TO_DEVICE,
    ClaimRequest,
    CommandAck,
    DeviceCheckResponse,
    DiscoveredComponent,
    Discovery,
    Dropped,
    Envelope,
    Ignored,
    StatusReport,
    decode,
    device_cause,
    speaker,
)
from iotledger.adapters.mqtt.order import ArrivalOrder
from iotledger.adapters.mqtt.packets import Message
from iotledger.adapters.mqtt.readings import Drafts, Found
from iotledger.adapters.mqtt.topics import Channel, Route, Topics
from iotledger.application.clock import now
from iotledger.application.commands import ReportCommand
from iotledger.application.discovery import (
    AnnouncedComponent,
    DiscoverDevice,
    ReportDeviceStatus,
)
from iotledger.application.identity import OfferClaim
from iotledger.application.ledger import Ledger
from iotledger.application.readings import RecordingService
from iotledger.domain.commands import CommandStatus
from iotledger.domain.credentials import secret_hash
from iotledger.domain.devices import FLEET, Component, ComponentKind, DeviceAccess
from iotledger.domain.errors import (
    CommandNotFound,
    Conflict,
    DeviceNotFound,
    DomainError,
    HeldElsewhere,
    InvalidInput,
    NotFound,
    SensorNotFound,
    TooManyReadings,
    Unavailable,
    UnstorableText,
)
from iotledger.domain.vocabulary import (
    DeviceStatus,
    TelemetryStatus,
    from_check_word,
    from_telemetry_status,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
V = TypeVar("V")

INFRASTRUCTURE = (Unavailable, psycopg.Error, PersistenceError, OSError, TimeoutError)
CONFLICT_RETRIES = 3
LOOKUP_LANES = 4
_MISSING: dict[type[NotFound], str] = {
    DeviceNotFound: "unknown_device",
    CommandNotFound: "unknown_command",
    SensorNotFound: "unknown_sensor",
}
"""How a drop for something not there is counted, by what was not there."""

Work = Callable[[], Awaitable[None]]
"""Handling one message that is not a reading: repeated if it fails for a passing reason."""


class Inbound:
    """The handler of every message the adapter receives."""

    def __init__(
        self,
        ledger: Ledger,
        recording: RecordingService,
        *,
        directory: DeviceDirectory,
        presence: Presence,
        topics: Topics,
        counters: Counter[str],
        max_backoff: float = 5.0,
        max_payload: int | None = None,
    ) -> None:
        self.ledger = ledger
        self.recording = recording
        self.directory = directory
        self.presence = presence
        self.topics = topics
        self.counters = counters
        self.max_backoff = max_backoff
        self.max_payload = max_payload
        self._waking: SingleFlight[UUID, None] = SingleFlight()
        self._order = ArrivalOrder()
        self._channels: dict[Channel, Callable[[Route, bytes], Awaitable[None]]] = {
            Channel.DISCOVERY: self._discovery,
            Channel.ACK: self._ack,
            Channel.STATUS: self._status,
            Channel.CLAIM: self._claim,
        }

    async def handle(self, topic: str, payload: bytes) -> None:
        """One message: see `handle_many`."""
        await self.handle_many([(topic, payload)])

    async def handle_many(self, messages: Sequence[Message]) -> None:
        """Return once every message is handled, dropped or ignored; retry what failed.

        A discovery splits the batch: what arrived before it is done first, then
        the discovery, then the rest, looked up again (`mqtt_order`).
        """
        stages: list[asyncio.Task[None]] = []
        drafts = self._drafts()
        singles: list[Awaitable[None]] = []
        for topic, payload in messages:
            try:
                work = self._sort(topic, payload, drafts)
            except Exception as error:
                self._settle(topic, payload, error)
                continue
            if work is None:
                continue
            if topic != self.topics.discovery:
                singles.append(self._one(topic, payload, work))
                continue
            stages.append(self._order.alongside(self._segment(drafts, singles)))
            stages.append(self._order.alone(self._one(topic, payload, work)))
            drafts, singles = self._drafts(), []
        stages.append(self._order.alongside(self._segment(drafts, singles)))
        await asyncio.gather(*stages)

    def _drafts(self) -> Drafts:
        return Drafts(self.topics.base, self.recording)

    async def _segment(self, drafts: Drafts, singles: list[Awaitable[None]]) -> None:
        """The readings of a run of messages in one submission; the rest alongside them."""
        if singles:
            await asyncio.gather(self._store(drafts), *singles)
        elif drafts:
            await self._store(drafts)

    def _sort(self, topic: str, payload: bytes, drafts: Drafts) -> Work | None:
        """A reading joins the drafts (None); any other message is work of its own."""
        self._check_size(payload)
        route = self.topics.route(topic)
        if route is None:
            raise Dropped("unknown_topic", topic)
        if route.channel is Channel.TELEMETRY:
            drafts.telemetry(topic, route, payload)
            return None
        if route.channel is Channel.LAMBDA:
            return self._lambda(payload, drafts)
        handler = self._channels.get(route.channel)
        if handler is None:
            raise Dropped("unknown_topic", topic)
        return functools.partial(handler, route, payload)

    def _check_size(self, payload: bytes) -> None:
        """What REST refuses with 413 is not taken over MQTT either, whatever the topic."""
        if self.max_payload is not None and len(payload) > self.max_payload:
            raise Dropped("too_large", f"{len(payload)} bytes, more than {self.max_payload}")

    async def _one(self, topic: str, payload: bytes, work: Work) -> None:
        try:
            await self._persistently(work, f"MQTT message on {topic}")
        except Exception as error:
            self._settle(topic, payload, error)
        else:
            self.counters["handled"] += 1

    async def _store(self, drafts: Drafts) -> None:
        """The readings of a batch in one submission; then their devices were heard from."""
        if not drafts:
            return
        what = f"{len(drafts)} MQTT readings"
        try:
            devices, sensors = await self._persistently(lambda: self._lookup(drafts), what)
        except Exception as error:
            self._settle_all(drafts.messages(), error)
            return
        built = drafts.build(devices, sensors, self._settle)
        if not built.readings:
            return
        try:
            outcomes = await self._persistently(
                lambda: self.recording.record(built.readings, source="mqtt"),
                what,
                len(built.readings),
            )
        except Exception as error:
            self._settle_all(built.messages, error)
            return
        duplicates = built.repeated(outcomes)
        self.counters["handled"] += len(built.messages) - duplicates
        if duplicates:
            self.counters["duplicate"] += duplicates
        await self._heard(built.devices)

    async def _lookup(self, drafts: Drafts) -> tuple[Found[KnownDevice], Found[KnownSensor]]:
        """The devices and sensors these readings name, as the directory knows them."""
        sensors = await _found(self.directory.sensor, drafts.sensor_ids())
        device_ids = drafts.device_ids()
        device_ids.update(sensor.device_id for sensor in sensors.values() if sensor is not None)
        return await _found(self.directory.device, device_ids), sensors

    async def _heard(self, devices: list[KnownDevice]) -> None:
        """Each device was heard from (now that its readings are stored); a lost one is back."""
        at = now()
        for device in devices:
            try:
                await self._persistently(functools.partial(self._seen, device, at), "a device")
            except Exception as error:
                log.warning("device %s was heard from but is still lost: %s", device.id, error)

    async def _persistently(self, work: Callable[[], Awaitable[T]], what: str, count: int = 1) -> T:
        """`work`, again after a growing pause for as long as the infrastructure fails it,
        and again at once (a few times) when it meets a concurrent change to its aggregate.
        """
        delay = 0.1
        conflicts = 0
        while True:
            try:
                return await work()
            except HeldElsewhere:
                raise  # another device's: no retry changes that
            except Conflict:
                conflicts += 1
                if conflicts > CONFLICT_RETRIES:
                    raise
            except INFRASTRUCTURE as error:
                self.counters["retried"] += count
                log.warning("%s not stored yet (%s); retrying", what, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)

    def _settle(self, topic: str, payload: bytes, error: Exception) -> None:
        """A message that will not be handled: ignored, or dropped for its reason."""
        if isinstance(error, Ignored):
            self.counters["ignored"] += 1
        elif isinstance(error, Dropped):
            self._drop(topic, payload, error.reason, str(error))
        elif isinstance(error, DomainError):
            self._drop(topic, payload, _reason(error), str(error))
        else:
            log.error("MQTT message on %s failed unexpectedly; dropped", topic, exc_info=error)
            self._drop(topic, payload, "error", "unexpected error")

    def _settle_all(self, messages: list[Message], error: Exception) -> None:
        for topic, payload in messages:
            self._settle(topic, payload, error)

    def _drop(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        self.counters["dropped"] += 1
        self.counters[f"dropped.{reason}"] += 1
        log.warning("MQTT message on %s dropped (%s: %s): %r", topic, reason, detail, payload[:200])

    # --- the Lambda IoT Core protocol ----------------------------------------------------

    def _lambda(self, payload: bytes, drafts: Drafts) -> Work | None:
        kind = decode(payload, Envelope).type
        if kind in READING_TYPES:
            drafts.sensor_reading(payload)
            return None
        if kind == CHECK_RESPONSE:
            return functools.partial(self._check_response, decode(payload, DeviceCheckResponse))
        if kind in SERVER_TO_DEVICE:
            raise Ignored
        raise Dropped("unknown_type", f"unknown message type {kind!r}")

    async def _check_response(self, message: DeviceCheckResponse) -> None:
        device = await self._known(message.device_id, FLEET)
        status = from_check_word(message.status)
        at = now()
        self.presence.heard(device.id, at)
        report = ReportDeviceStatus(device.id, status, device_cause(device.id), at, FLEET)
        await self._report(report)

    async def _discovery(self, route: Route, payload: bytes) -> None:
        message = decode(payload, Discovery)
        announced = {
            ComponentKind.SENSOR: message.sensors,
            ComponentKind.ACTOR: message.actors,
        }
        device_id = message.device.id
        at = now()
        command = DiscoverDevice(
            device_id=device_id,
            name=message.device.name,
            description=message.device.description,
            location=message.device.location,
            components=_components(announced),
            listed=frozenset(kind for kind, items in announced.items() if items is not None),
            by=device_cause(device_id),
            at=at,
            mac_address=message.mac_address,
        )
        await asyncio.to_thread(self.ledger.discover_device, command)
        self.directory.forget(device_id, *(item.component_id for item in command.components))
        self.presence.heard(device_id, at)

    # --- each device's own topics -----------------------------------------------------------

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

    async def _claim(self, route: Route, payload: bytes) -> None:
        """The device may be claimed by whoever shows this secret in time."""
        message = decode(payload, ClaimRequest)
        device = await self._sender(route, None)
        offer = OfferClaim(
            device_id=device.id,
            secret_hash=secret_hash(message.secret_key),
            duration=timedelta(milliseconds=message.duration_ms),
            by=device_cause(device.id),
            at=now(),
        )
        await asyncio.to_thread(self.ledger.offer_claim, offer)

    # --- shared steps ---------------------------------------------------------------------------

    async def _sender(self, route: Route, named: UUID | None) -> KnownDevice:
        """The device whose topic the message came on; it may not speak for another."""
        return await self._known(speaker(route, named), None)

    async def _known(self, device_id: UUID, access: DeviceAccess | None) -> KnownDevice:
        device = await self.directory.device(device_id)
        if device is None or (access is not None and not access.allows(device.owner, device.id)):
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


async def _found(find: Callable[[UUID], Awaitable[V | None]], ids: set[UUID]) -> Found[V]:
    """What `find` knows of each id, looked up in a few concurrent lanes.

    A lookup the directory remembers returns at once, so a task for each would
    cost more than the lookup (a batch names dozens of devices); one it must make
    waits for the database, and the lanes let a few of those wait at once.
    """
    keys = list(ids)
    if len(keys) <= 1:
        return {key: await find(key) for key in keys}

    async def lane(part: list[UUID]) -> list[tuple[UUID, V | None]]:
        return [(key, await find(key)) for key in part]

    lanes = await asyncio.gather(*(lane(keys[n::LOOKUP_LANES]) for n in range(LOOKUP_LANES)))
    return dict(itertools.chain.from_iterable(lanes))


def _components(
    announced: dict[ComponentKind, list[DiscoveredComponent] | None],
) -> tuple[AnnouncedComponent, ...]:
    return tuple(
        AnnouncedComponent(item.id, Component(kind, item.name, item.type, item.data_type_id))
        for kind, items in announced.items()
        for item in items or ()
    )


def _reason(error: DomainError) -> str:
    if isinstance(error, HeldElsewhere):
        return f"{error.what}_conflict"
    if isinstance(error, NotFound):
        return _MISSING.get(type(error), "unknown_target")
    if isinstance(error, TooManyReadings):
        return "too_many_readings"
    if isinstance(error, UnstorableText):
        return "unstorable_text"
    if isinstance(error, InvalidInput):
        return "invalid"
    return "rejected"
