"""Lambda IoT Core in bulk: a sensor's readings as a download, and aggregates of its values.

Both need `sensor_id` (a sensor of the shared fleet, else 404): a reading is found
through its sensor's device, by device time (`value_at`). The export lists each reading
as `GET /sensor-readings` does, oldest device time first (`api.export` says how it
streams); the aggregate is of the readings' `value`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from iotledger.adapters.postgres.views.aggregates import Window
from iotledger.adapters.postgres.views.readings import Bounds
from iotledger.api.aggregates import AggregateBucket, Width, Zone, buckets, zone
from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.export import CHUNK, ExportFormat, export_response
from iotledger.api.lambda_iot.wire import LambdaReading, lambda_reading
from iotledger.api.openapi import raises
from iotledger.api.readings import device_chunks, settled_readings
from iotledger.api.registry import fleet_component
from iotledger.api.wire import instant
from iotledger.bootstrap import Services
from iotledger.domain.devices import ComponentKind
from iotledger.domain.errors import NotFound

_TIME = "RFC 3339 date-time with an offset, compared with value_at"
Since = Annotated[str | None, QueryParameter(name="from", description=f"{_TIME}: from")]
Until = Annotated[str | None, QueryParameter(name="to", description=f"{_TIME}: before")]
VALUE = ("value",)
"""A Lambda reading's payload is `{"value": v}`."""
Format = Annotated[ExportFormat, QueryParameter(description="csv or ndjson (default)")]


class LambdaBulkController(Controller):
    path = "/sensor-readings"
    tags = ["Lambda IoT Core: sensor readings"]

    @get("/export", opt=raises(NotFound))  # an unknown sensor
    async def export_readings(
        self,
        sensor_id: FromQuery[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        since: Since = None,
        until: Until = None,
        format: Format = ExportFormat.NDJSON,
    ) -> Stream:
        """Every reading of the sensor in the range (`from` inclusive, `to` exclusive)."""
        bounds = Bounds(
            since=instant(since, "from"),
            until=instant(until, "to"),
            sensor_id=sensor_id,
            oldest_first=True,
        )
        sensor = await fleet_component(services.devices, ComponentKind.SENSOR, sensor_id)
        readings = await settled_readings(services)
        rows = await off_loop(readings.device_rows, sensor.device_id, CHUNK, bounds)
        all_rows = device_chunks(readings, sensor.device_id, bounds, rows)
        fields = LambdaReading.__struct_fields__
        name = f"sensor-readings-{sensor_id}"
        return export_response(all_rows, lambda_reading, fields, format, name)

    @get("/aggregate", opt=raises(NotFound))  # an unknown sensor
    async def aggregate_readings(
        self,
        sensor_id: FromQuery[UUID],
        bucket: Width,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        since: Since = None,
        until: Until = None,
        tz: Zone = None,
    ) -> list[AggregateBucket]:
        """Per bucket of `value_at`, oldest first: count, min, max, avg, first, last value."""
        since_at, until_at, key = instant(since, "from"), instant(until, "to"), zone(tz).key
        sensor = await fleet_component(services.devices, ComponentKind.SENSOR, sensor_id)
        await settled_readings(services)
        window = Window(sensor.device_id, bucket, key, since_at, until_at, None, sensor_id, VALUE)
        return await buckets(services, window)
