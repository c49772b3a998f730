"""Readings: one small aggregate per reading, so no aggregate grows without bound.

A reading's id is deterministic: `uuid5` of its source (the device, or the sensor
of a Lambda reading) and its key. The key is the id the device gave it; a reading
without one gets a key derived from what it says: its device time (as a UTC
instant), its telemetry type and a hash of its payload. So a redelivered message
(MQTT QoS 1, a client retry) lands on the same id and is stored once, while a
different reading, or the same values at another device time, is a new reading.
A source that sends no device time is given the time it was received, so only
an id or a device time makes its redeliveries recognisable.

Both dialects write the same event: a Lambda sensor reading is a reading of the
sensor's device with the sensor's type and the payload `{"value": v}`.

Who may record or read a device's readings is one rule, `readings_visible`, whatever
the channel: it is given the devices' owners, as the caller's channel reads them.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate

from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import InvalidInput, ReadingNotFound
from iotledger.domain.storable import check_storable

READING_NAMESPACE = uuid5(NAMESPACE_URL, "iotledger:reading")
_canonical = msgspec.json.Encoder(order="sorted")

MAX_TYPE_LENGTH = 100
MAX_KEY_LENGTH = 200
MAX_BATCH_READINGS = 1000
"""The default most readings in one batched message or request (a setting)."""


Owners = Mapping[UUID, UUID | None]
"""Of the devices that exist, whose each one is (None: the shared fleet's). A device
absent from it does not exist, or not as far as its reader knows."""


def readings_visible(access: DeviceAccess, device_ids: Iterable[UUID], owners: Owners) -> bool:
    """The tenancy rule of readings: a caller records or reads readings only of devices
    that exist and that its access lets it see (`DeviceAccess.allows`).

    A refused caller is told the device was not found, never that it is someone else's.
    """
    return all(d in owners and access.allows(owners[d], d) for d in device_ids)


def reading_id(source_id: UUID, reading_key: str) -> UUID:
    """The id of a reading: `uuid5(namespace, f"{source_id}:{reading_key}")`.

    Computed as `uuid5` defines it, with the namespace and source part cached:
    the standard function costs more than the rest of a reading's append.
    """
    digest = hashlib.sha1(
        _source_prefix(source_id) + reading_key.encode(), usedforsecurity=False
    ).digest()
    return UUID(bytes=digest[:16], version=5)


@functools.lru_cache(maxsize=65536)
def _source_prefix(source_id: UUID) -> bytes:
    return READING_NAMESPACE.bytes + f"{source_id}:".encode()


def derived_reading_key(telemetry_type: str, payload: dict[str, Any], recorded_at: datetime) -> str:
    """The key of a reading its source gave no id: what it says, not when it arrived."""
    digest = hashlib.sha256(_canonical.encode(payload)).hexdigest()[:32]
    instant = recorded_at.astimezone(UTC).isoformat()
    return f"derived:{instant}:{telemetry_type}:{digest}"


def given_reading_key(key: str) -> str:
    """The key of a reading its source named; apart from every derived key."""
    return f"id:{key}"


def check_value(value: float | None) -> float | None:
    """A reading's numeric value is a finite float, or absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("value must be a finite number")
    return float(value)


_NUMERIC = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def lambda_value(value: float | bool | str) -> float:
    """A Lambda IoT Core reading's value: a number, a boolean (true 1, false 0), or a
    numeric string ("1", "23.7", written as a JSON number would be); nothing else."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        if not _NUMERIC.fullmatch(value.strip()):
            raise InvalidInput("value must be a number, a boolean or a numeric string")
        value = float(value)
    checked = check_value(value)
    if checked is None:
        raise InvalidInput("value is required")
    return checked


def check_recorded_at(recorded_at: datetime) -> datetime:
    """A device time is an instant: it carries an offset, and exists in UTC too."""
    if recorded_at.tzinfo is None or recorded_at.utcoffset() is None:
        raise InvalidInput("recorded_at must carry a time zone offset")
    try:
        recorded_at.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("recorded_at is out of range") from None
    return recorded_at


def check_telemetry_type(telemetry_type: str) -> str:
    if not telemetry_type.strip() or len(telemetry_type) > MAX_TYPE_LENGTH:
        raise InvalidInput(f"telemetry_type must be 1 to {MAX_TYPE_LENGTH} characters")
    check_storable(telemetry_type, "telemetry_type")
    return telemetry_type


def check_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload's text is storable (`iotledger.domain.storable`): checked here, on the
    command, because new readings reach the log by a port of their own (`ReadingAppender`)."""
    check_storable(payload, "payload")
    return payload


class Reading(Aggregate):
    """One reading of a device (and of one of its sensors, in the Lambda dialect)."""

    device_id: UUID
    sensor_id: UUID | None
    telemetry_type: str
    payload: dict[str, Any]
    value: float | None
    recorded_at: datetime
    deleted: bool

    def __init__(self) -> None:
        """The blank that `Recorded` fills in; every state comes from events."""
        self.deleted = False

    class Recorded(Aggregate.Created):
        device_id: UUID
        sensor_id: UUID | None
        telemetry_type: str
        payload: dict[str, Any]
        value: float | None
        recorded_at: datetime
        by: str

        def apply(self, reading: Reading) -> None:
            reading.device_id = self.device_id
            reading.sensor_id = self.sensor_id
            reading.telemetry_type = self.telemetry_type
            reading.payload = self.payload
            reading.value = self.value
            reading.recorded_at = self.recorded_at

    class Corrected(Aggregate.Event):
        value: float | None
        payload: dict[str, Any]
        recorded_at: datetime
        by: str

        def apply(self, reading: Reading) -> None:
            reading.value = self.value
            reading.payload = self.payload
            reading.recorded_at = self.recorded_at

    class Deleted(Aggregate.Event):
        by: str

        def apply(self, reading: Reading) -> None:
            reading.deleted = True

    @classmethod
    def record(
        cls,
        reading_id: UUID,
        received_at: datetime,
        *,
        device_id: UUID,
        sensor_id: UUID | None,
        telemetry_type: str,
        payload: dict[str, Any],
        value: float | None,
        recorded_at: datetime,
        by: str,
    ) -> Reading:
        """A new reading; its id and its server time (the event's timestamp) are given."""
        return cls._create(
            cls.Recorded,
            id=reading_id,
            timestamp=received_at,
            device_id=device_id,
            sensor_id=sensor_id,
            telemetry_type=check_telemetry_type(telemetry_type),
            payload=check_payload(payload),
            value=check_value(value),
            recorded_at=check_recorded_at(recorded_at),
            by=by,
        )

    def correct(
        self, value: float | None, payload: dict[str, Any], recorded_at: datetime, by: str
    ) -> None:
        """Replace what the reading says; the original stays in its history."""
        self._check_present()
        self.trigger_event(
            self.Corrected,
            value=check_value(value),
            payload=check_payload(payload),
            recorded_at=check_recorded_at(recorded_at),
            by=by,
        )

    def delete(self, by: str) -> None:
        self._check_present()
        self.trigger_event(self.Deleted, by=by)

    def _check_present(self) -> None:
        if self.deleted:
            raise ReadingNotFound()
