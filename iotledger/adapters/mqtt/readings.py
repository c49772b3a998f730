"""The readings among a batch of MQTT messages: decoded first, then looked up and built together.

A batch is what the link read from the socket in one go, often hundreds of
messages from a few dozen devices. Per message there is only what cannot be
shared: decoding, and the `RecordReading` command (whose construction checks
the reading). Per device topic there is one route, one device lookup, one decision
of the tenancy rule (`readings_visible`: a device speaks for itself alone), one
`caused_by`; per batch one call of the recording service (`Inbound._store`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple, TypeVar
from uuid import UUID

from iotledger.adapters.mqtt.directory import CachedOwners, KnownDevice, KnownSensor
from iotledger.adapters.mqtt.messages import (
    Dropped,
    SensorReading,
    Telemetry,
    decode,
    decode_telemetry,
    device_cause,
    speaker,
)
from iotledger.adapters.mqtt.packets import Message
from iotledger.adapters.mqtt.topics import Route
from iotledger.application.clock import now
from iotledger.application.readings import Outcome, RecordingService, RecordReading
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.readings import lambda_value, readings_visible

V = TypeVar("V")
Found = dict[UUID, V | None]
"""What the directory knows of each id looked up (None: no such device, or sensor)."""


class DeviceTelemetry(NamedTuple):
    """The telemetry messages of one device's topic in a batch, decoded: each one reading,
    or a list of them (a batched message, stored whole or not at all)."""

    topic: str
    device_id: UUID
    messages: list[tuple[bytes, Telemetry | list[Telemetry]]]


class SensorDraft(NamedTuple):
    """A Lambda sensor reading, decoded. Stored only for a sensor of the shared fleet."""

    payload: bytes
    message: SensorReading


class Built(NamedTuple):
    """The readings of a batch, the messages they came in (in the same order) with how
    many readings each holds, and the devices that sent them."""

    readings: list[RecordReading]
    messages: list[Message]
    sizes: list[int]
    devices: list[KnownDevice]

    def add(self, message: Message, readings: list[RecordReading]) -> None:
        self.readings.extend(readings)
        self.messages.append(message)
        self.sizes.append(len(readings))

    def repeated(self, outcomes: list[Outcome]) -> int:
        """The messages that were redeliveries: none of their readings was new.

        Each message is judged on its own whole slice of the outcomes: on one iterator
        shared by all, `any` left the rest of a message's outcomes to the next message,
        and a message read three times in one socket read counted three stored.
        """
        ends = itertools.accumulate(self.sizes)
        return sum(
            not any(o.new for o in outcomes[end - n : end])
            for n, end in zip(self.sizes, ends, strict=True)
        )


Refuse = Callable[[str, bytes, Exception], None]
"""Where a message goes whose reading cannot be made: the reason is in the exception."""


class Drafts:
    """The readings of a batch, before their devices and sensors are looked up."""

    def __init__(self, lambda_topic: str, recording: RecordingService) -> None:
        self._lambda_topic = lambda_topic
        self._recording = recording
        self._telemetry: dict[str, DeviceTelemetry] = {}
        self._sensor: list[SensorDraft] = []

    def __bool__(self) -> bool:
        return bool(self._telemetry or self._sensor)

    def __len__(self) -> int:
        return sum(len(t.messages) for t in self._telemetry.values()) + len(self._sensor)

    def telemetry(self, topic: str, route: Route, payload: bytes) -> None:
        """A message on a device's telemetry topic; Dropped if it cannot be understood."""
        message = decode_telemetry(payload)
        for one in message if isinstance(message, list) else (message,):
            speaker(route, one.device_id)
        device_id = speaker(route, None)
        drafts = self._telemetry.get(topic)
        if drafts is None:
            drafts = self._telemetry[topic] = DeviceTelemetry(topic, device_id, [])
        drafts.messages.append((payload, message))

    def sensor_reading(self, payload: bytes) -> None:
        """A Lambda IoT Core `sensor_reading` (or `sensor_value`) on the base topic."""
        self._sensor.append(SensorDraft(payload, decode(payload, SensorReading)))

    def messages(self) -> list[Message]:
        telemetry = [(t.topic, p) for t in self._telemetry.values() for p, _ in t.messages]
        return telemetry + [(self._lambda_topic, draft.payload) for draft in self._sensor]

    def sensor_ids(self) -> set[UUID]:
        return {draft.message.sensor_id for draft in self._sensor}

    def device_ids(self) -> set[UUID]:
        return {drafts.device_id for drafts in self._telemetry.values()}

    def build(
        self,
        devices: Found[KnownDevice],
        sensors: Found[KnownSensor],
        refuse: Refuse,
    ) -> Built:
        """Each message's reading; a message whose reading cannot be made goes to `refuse`."""
        built = Built([], [], [], [])
        owners = CachedOwners(devices)
        for drafts in self._telemetry.values():
            device = devices.get(drafts.device_id)
            speaker, named = DeviceAccess(device_id=drafts.device_id), (drafts.device_id,)
            if device is None or not readings_visible(speaker, named, owners.owners(named)):
                unknown = Dropped("unknown_device", f"no device {drafts.device_id}")
                for payload, _ in drafts.messages:
                    refuse(drafts.topic, payload, unknown)
                continue
            if _telemetry_readings(device, drafts, built, refuse, self._recording):
                built.devices.append(device)
        heard: dict[UUID, KnownDevice] = {}
        for draft in self._sensor:
            try:
                reading = _sensor_reading(draft.message, sensors)
            except Exception as error:
                refuse(self._lambda_topic, draft.payload, error)
                continue
            built.add((self._lambda_topic, draft.payload), [reading])
            device = devices.get(reading.device_id)
            if device is not None:
                heard[device.id] = device
        built.devices.extend(heard.values())
        return built


def _telemetry_readings(
    device: KnownDevice,
    drafts: DeviceTelemetry,
    built: Built,
    refuse: Refuse,
    recording: RecordingService,
) -> bool:
    """The readings of one device's messages into `built`; True if there was one."""
    reading = functools.partial(
        RecordReading.of_message, device.id, device_cause(device.id), now=now
    )
    count = len(built.readings)
    for payload, message in drafts.messages:
        try:
            if isinstance(message, list):
                readings = recording.batch(message, reading)
            else:
                readings = [reading(message)]
        except Exception as error:
            refuse(drafts.topic, payload, error)
            continue
        built.add((drafts.topic, payload), readings)
    return len(built.readings) > count


def _sensor_reading(message: SensorReading, sensors: Found[KnownSensor]) -> RecordReading:
    """A Lambda reading is its sensor's device's reading, of the sensor's type."""
    sensor = sensors.get(message.sensor_id)
    if sensor is None:
        raise Dropped("unknown_sensor", f"no sensor {message.sensor_id}")
    value = lambda_value(message.value)
    return RecordReading(
        device_id=sensor.device_id,
        telemetry_type=sensor.sensor_type,
        payload={"value": value},
        recorded_at=message.value_at or now(),
        by=device_cause(sensor.device_id),
        sensor_id=sensor.id,
        value=value,
    )
