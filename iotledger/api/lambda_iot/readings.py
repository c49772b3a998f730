"""Lambda IoT Core: sensor readings, with the integer ids the document shows.

A sensor reading is a reading of the sensor's device, with the sensor's type and
the payload `{"value": v}`; its integer id is the log position of the event that
recorded it, so it never changes, not even when the read model is rebuilt. Only
sensors of the shared fleet take readings; an unknown sensor answers 404 and
stores nothing. An update or a deletion is an event of its own: the reading's
history keeps what it said before.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, Parameter, QueryParameter
from msgspec import UNSET, UnsetType

from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.lambda_iot.wire import LambdaReading, Message, lambda_reading
from iotledger.api.openapi import raises
from iotledger.api.pagination import LAMBDA_MAX_LIMIT, PageNumber
from iotledger.api.readings import settled_readings
from iotledger.api.registry import cause, fleet_component, given
from iotledger.api.settle import record
from iotledger.application.clock import now
from iotledger.application.readings import CorrectReading, DeleteReading, RecordReading
from iotledger.bootstrap import Services
from iotledger.domain.devices import ComponentKind
from iotledger.domain.errors import NotFound, ReadingNotFound
from iotledger.domain.instants import Instant
from iotledger.domain.readings import lambda_value
from iotledger.projections.readings import ReadingProjection, ReadingRow

Value = float | bool | str
"""A number, a boolean (true is 1, false 0), or a numeric string ("1", "23.7")."""
MAX_READING_ID = 10**18
"""Within PostgreSQL's bigint, and exact as the float the OpenAPI document writes it as."""
ReadingId = Annotated[int, Parameter(ge=0, le=MAX_READING_ID, description="The reading's id")]
"""A log position; anything else in the path is the client's mistake (400)."""
ReadingLimit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=LAMBDA_MAX_LIMIT,
        description=f"Rows per page (1 to {LAMBDA_MAX_LIMIT}, default 100)",
    ),
]


class NewSensorReading(msgspec.Struct):
    sensor_id: UUID
    value: Value
    value_at: Instant | None = None


class SensorReadingEdit(msgspec.Struct):
    value: Value | UnsetType = UNSET
    value_at: Instant | UnsetType = UNSET


class CreatedReading(msgspec.Struct):
    id: int


class LambdaReadingsController(Controller):
    path = "/sensor-readings"
    tags = ["Lambda IoT Core: sensor readings"]

    @post("/", status_code=201, opt=raises(NotFound))
    async def create_reading(
        self,
        data: JSONBody[NewSensorReading],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> CreatedReading:
        sensor = await fleet_component(services.devices, ComponentKind.SENSOR, data.sensor_id)
        value = lambda_value(data.value)
        reading = RecordReading(
            device_id=sensor.device_id,
            telemetry_type=sensor.component_type,
            payload={"value": value},
            recorded_at=data.value_at or now(),
            by=cause(principal),
            sensor_id=sensor.id,
            value=value,
        )
        (outcome,) = await services.recording.record([reading], source="rest")
        return CreatedReading(id=outcome.position)

    @get("/", opt=raises(NotFound))
    async def list_readings(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        sensor_id: FromQuery[UUID | None] = None,
        limit: ReadingLimit = 100,
        page: PageNumber = 0,
    ) -> list[LambdaReading]:
        """Oldest first (by id); `sensor_id` narrows it to one sensor of the fleet."""
        if sensor_id is not None:
            await fleet_component(services.devices, ComponentKind.SENSOR, sensor_id)
        readings = await settled_readings(services)
        rows = await off_loop(readings.sensor_page, sensor_id, limit, page * limit)
        return [lambda_reading(row) for row in rows]

    @get("/{reading_id:str}")
    async def get_reading(
        self,
        reading_id: ReadingId,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> LambdaReading:
        return lambda_reading(await self._reading(services, reading_id))

    @put("/{reading_id:str}")
    async def update_reading(
        self,
        reading_id: ReadingId,
        data: JSONBody[SensorReadingEdit],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        row = await self._reading(services, reading_id)
        value = None if isinstance(data.value, UnsetType) else lambda_value(data.value)
        command = CorrectReading(
            reading_id=row.id,
            by=cause(principal),
            value=value,
            payload=None if value is None else {"value": value},
            recorded_at=given(data.value_at),
        )
        correct = services.ledger.correct_reading
        await record(services.watch, correct, command, ReadingProjection)
        return Message(message="sensor reading updated")

    @delete("/{reading_id:str}", status_code=200)
    async def delete_reading(
        self,
        reading_id: ReadingId,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        row = await self._reading(services, reading_id)
        command = DeleteReading(reading_id=row.id, by=cause(principal))
        await record(services.watch, services.ledger.delete_reading, command, ReadingProjection)
        return Message(message="sensor reading deleted")

    async def _reading(self, services: Services, reading_id: int) -> ReadingRow:
        """A sensor reading by its integer id, or 404 (telemetry of the other dialect too)."""
        readings = await settled_readings(services)
        row = await off_loop(readings.by_lambda_id, reading_id)
        if row is None or row.sensor_id is None:
            raise ReadingNotFound("sensor reading not found")
        return row
