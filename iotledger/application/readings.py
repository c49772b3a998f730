"""Commands about readings, and the road every new reading takes into the log.

Recording is the volume of the system, so new readings do not go through `save()`
one aggregate at a time: `RecordingService` hands them to a `ReadingAppender`, a
port with one implementation per technique. In production the COPY appender
(`iotledger.adapters.postgres.appender`) batches what arrives from every source into
one append of many `Reading.Recorded` events; `SavingReadingAppender`
(`iotledger.application.saving`) is its reference, through eventsourcing's public
`Application.save`, and a test holds the rows of the two equal. The rare corrections
and deletions take the ordinary road: load, act, append.

Whose device a reading may name is the domain's rule (`readings_visible`), fed by a
`DeviceOwners` port: the appender asks it once for a whole batch, on its own
connection, after the caller submitted, so a request waits for one hand-over, not two.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic
from msgspec.structs import force_setattr

from iotledger.application.service import LedgerService, Written
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import InvalidInput, ReadingNotFound, TooManyReadings
from iotledger.domain.readings import (
    MAX_BATCH_READINGS,
    MAX_KEY_LENGTH,
    Owners,
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

RECORDED_TOPIC = get_topic(Reading.Recorded)
"""The topic every new reading's event is stored under."""


class TelemetryMessage(Protocol):
    """A Device Telemetry reading as a device sends it, over REST or over MQTT."""

    @property
    def telemetry_type(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def recorded_at(self) -> datetime | None: ...
    @property
    def id(self) -> str | int | None: ...


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

    @classmethod
    def of_message(
        cls, device_id: UUID, by: str, message: TelemetryMessage, *, now: Callable[[], datetime]
    ) -> RecordReading:
        """The reading a Device Telemetry message makes, whichever channel brought it: the
        id the device gave it (if any) is its key; without a device time it gets `now()`."""
        return cls(
            device_id=device_id,
            telemetry_type=message.telemetry_type,
            payload=message.payload,
            recorded_at=message.recorded_at or now(),
            by=by,
            key=None if message.id is None else str(message.id),
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


class Outcome(Written, frozen=True):
    """What became of one reading: its id, the log position of its `Recorded` event
    (the original's, for a repeat), and whether this call stored it."""

    new: bool
    """False for a redelivery (or a repeat in the same call): stored once, earlier."""


class DeviceOwners(Protocol):
    """Whose each of these devices is, of those that exist: what `readings_visible` is fed.

    Asked once for many readings, where waiting is allowed: the COPY appender's worker
    asks the devices read model (`PostgresDeviceOwners`), on its own connection, for a
    whole append. The MQTT adapter asks its cache of the event store, which answers for a
    batch what one lookup found, without waiting: `adapters.mqtt.directory.CachedOwners`.
    """

    def owners(self, device_ids: Collection[UUID]) -> Owners: ...


class AppendReadings(msgspec.Struct, frozen=True):
    """New readings for the log, all or none, and whose devices their caller may name."""

    readings: Sequence[RecordReading]
    access: DeviceAccess | None = None
    """The caller's: the readings are refused (NotFound) unless `readings_visible` holds
    for it and the owners a `DeviceOwners` reads after the call. None: no check."""
    source: str = "other"
    """Where they came from (`rest`, `mqtt`): a label of what is counted."""


class ReadingAppender(Protocol):
    """Where new readings go: `Reading.Recorded` events, each stored once by its id.
    Answers once the readings are committed, one `Outcome` each, in order."""

    async def append(self, cmd: AppendReadings) -> list[Outcome]: ...


class RecordingService:
    """Recording readings, from every channel: checked commands in, positions out."""

    def __init__(self, appender: ReadingAppender, *, max_batch: int = MAX_BATCH_READINGS) -> None:
        self.appender = appender
        self.max_batch = max_batch
        """The most readings in one batched message or request (`IOTLEDGER_MAX_BATCH_READINGS`)."""

    def batch(
        self, items: Sequence[Item], reading: Callable[[Item], RecordReading]
    ) -> list[RecordReading]:
        """The readings of one batched message or request (`batch_readings`)."""
        return batch_readings(items, self.max_batch, reading)

    async def record(
        self,
        readings: Sequence[RecordReading],
        access: DeviceAccess | None = None,
        *,
        source: str = "other",
    ) -> list[Outcome]:
        """Store these readings, all or none; answers once they are committed.

        With `access`, the caller's: NotFound (as if the device did not exist) unless
        each reading names a device it may see. Without, the channel has decided that
        already (MQTT, from its cache: `Inbound`), or trusts its caller (Lambda sensors).
        """
        if not readings:
            return []
        return await self.appender.append(AppendReadings(readings, access, source))
