"""Commands about readings.

Recording is the volume of the system, so it does not go through `save()`: the
ingest adapter (`iotledger.adapters.postgres.ingest`) appends many `Reading.Recorded`
events in one transaction, exactly as eventsourcing would store them. The rare
corrections and deletions take the ordinary road: load, act, append.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from msgspec.structs import force_setattr

from iotledger.application.service import LedgerService, Written
from iotledger.domain.errors import InvalidInput, ReadingNotFound, TooManyReadings
from iotledger.domain.readings import (
    MAX_KEY_LENGTH,
    Reading,
    check_payload,
    check_recorded_at,
    check_telemetry_type,
    check_value,
    derived_reading_key,
    given_reading_key,
    reading_id,
)

Item = TypeVar("Item")


class RecordReading(msgspec.Struct, frozen=True):
    """One reading as any source delivers it, in the shape both dialects share.

    `key` is the id the device gave the reading, if any. Constructing the command
    checks it, so a bad reading fails its own caller and never a whole batch.
    """

    device_id: UUID
    telemetry_type: str
    payload: dict[str, Any]
    recorded_at: datetime
    by: str
    sensor_id: UUID | None = None
    value: float | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        check_telemetry_type(self.telemetry_type)
        check_payload(self.payload)
        check_recorded_at(self.recorded_at)
        force_setattr(self, "value", check_value(self.value))
        if self.key is not None and not 0 < len(self.key) <= MAX_KEY_LENGTH:
            raise InvalidInput(f"a reading id must be 1 to {MAX_KEY_LENGTH} characters")

    @property
    def reading_id(self) -> UUID:
        """Stable across redeliveries: the source (sensor, else device) and the key."""
        source = self.sensor_id or self.device_id
        if self.key is not None:
            return reading_id(source, given_reading_key(self.key))
        return reading_id(
            source, derived_reading_key(self.telemetry_type, self.payload, self.recorded_at)
        )

    def to_reading(self, received_at: datetime) -> Reading:
        """The aggregate this command creates, as the ordinary road would save it."""
        return Reading.record(
            self.reading_id,
            received_at,
            device_id=self.device_id,
            sensor_id=self.sensor_id,
            telemetry_type=self.telemetry_type,
            payload=self.payload,
            value=self.value,
            recorded_at=self.recorded_at,
            by=self.by,
        )


def batch_readings(
    items: Sequence[Item], limit: int, reading: Callable[[Item], RecordReading]
) -> list[RecordReading]:
    """The readings of one batched message or request, which is stored whole or not at all:
    1 to `limit` items, each made into its reading by `reading`. The first that cannot be
    made fails the whole batch, its error naming its index (`[3]: ...`)."""
    if not items:
        raise InvalidInput("a batch of readings must hold at least one reading")
    if len(items) > limit:
        raise TooManyReadings(f"a batch holds at most {limit} readings, not {len(items)}")
    readings = []
    for index, item in enumerate(items):
        try:
            readings.append(reading(item))
        except InvalidInput as error:  # UnstorableText stays itself
            raise type(error)(f"[{index}]: {error}") from None
    return readings


class CorrectReading(msgspec.Struct, frozen=True):
    """New values for a reading; a field left None keeps the reading's current one."""

    reading_id: UUID
    by: str
    value: float | None = None
    payload: dict[str, Any] | None = None
    recorded_at: datetime | None = None


class DeleteReading(msgspec.Struct, frozen=True):
    reading_id: UUID
    by: str


class ReadingService(LedgerService):
    def reading(self, reading_id: UUID) -> Reading:
        """A reading that is recorded and not deleted, or NotFound."""
        reading = self.load(Reading, reading_id, ReadingNotFound)
        if reading.deleted:
            raise ReadingNotFound()
        return reading

    def correct_reading(self, cmd: CorrectReading) -> Written:
        reading = self.reading(cmd.reading_id)
        reading.correct(
            value=reading.value if cmd.value is None else cmd.value,
            payload=reading.payload if cmd.payload is None else cmd.payload,
            recorded_at=reading.recorded_at if cmd.recorded_at is None else cmd.recorded_at,
            by=cmd.by,
        )
        return Written(reading.id, self.append(reading))

    def delete_reading(self, cmd: DeleteReading) -> Written:
        reading = self.reading(cmd.reading_id)
        reading.delete(cmd.by)
        return Written(reading.id, self.append(reading))
