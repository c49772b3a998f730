"""Device Telemetry in bulk: a device's readings and history as downloads, and aggregates.

An export has no page cap: every reading in the range, oldest device time first, each
as `GET .../telemetry` lists it (`api.export` says how it streams). Tenancy and
read-your-writes are the list's: another user's device answers 404, and the first
chunk shows every reading acknowledged before the request.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from iotledger.adapters.postgres.views.aggregates import Window
from iotledger.adapters.postgres.views.readings import Bounds
from iotledger.api.aggregates import AggregateBucket, Width, Zone, buckets, field_path, zone
from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.export import CHUNK, ExportFormat, chunks, export_response
from iotledger.api.readings import device_chunks, device_readings, visible_device
from iotledger.api.registry import access_of
from iotledger.api.telemetry.wire import (
    HistoryEntry,
    Since,
    TelemetryReading,
    Until,
    history_entries,
    telemetry_reading,
)
from iotledger.api.wire import instant
from iotledger.bootstrap import Services
from iotledger.domain.readings import MAX_TYPE_LENGTH
from iotledger.domain.storable import check_storable

TelemetryType = Annotated[str | None, QueryParameter(max_length=MAX_TYPE_LENGTH)]
Format = Annotated[ExportFormat, QueryParameter(description="ndjson (default) or csv")]


def export_bounds(since: str | None, until: str | None, telemetry_type: str | None) -> Bounds:
    check_storable(telemetry_type, "telemetry_type")  # no text column could match it
    return Bounds(
        since=instant(since, "from"),
        until=instant(until, "to"),
        telemetry_type=telemetry_type,
        oldest_first=True,
    )


class TelemetryBulkController(Controller):
    path = "/api/v1/devices/{device_id:str}"
    tags = ["Device Telemetry: telemetry"]

    @get("/telemetry/export")
    async def export_telemetry(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        since: Since = None,
        until: Until = None,
        telemetry_type: TelemetryType = None,
        format: Format = ExportFormat.NDJSON,
    ) -> Stream:
        """Every reading in the range (`from` inclusive, `to` exclusive), oldest first."""
        bounds = export_bounds(since, until, telemetry_type)
        first = partial(services.readings.device_page_as_seen, device_id, CHUNK, bounds)
        rows = await device_readings(services, access_of(principal), device_id, first)
        all_rows = device_chunks(services.readings, device_id, bounds, rows)
        fields = TelemetryReading.__struct_fields__
        name = f"telemetry-{device_id}"
        return export_response(all_rows, telemetry_reading, fields, format, name)

    @get("/history/export")
    async def export_history(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        format: Format = ExportFormat.NDJSON,
    ) -> Stream:
        """Every event of the device, oldest first, each as `GET .../history` lists it."""
        history, access = services.ledger.device_history, access_of(principal)

        async def more(last: HistoryEntry) -> list[HistoryEntry]:
            return history_entries(await off_loop(history, device_id, access, last.version, CHUNK))

        entries = history_entries(await off_loop(history, device_id, access, 0, CHUNK))
        fields = HistoryEntry.__struct_fields__
        name = f"history-{device_id}"
        return export_response(chunks(entries, more), _same, fields, format, name)

    @get("/telemetry/aggregate")
    async def aggregate_telemetry(
        self,
        device_id: FromPath[UUID],
        field: FromQuery[str],
        bucket: Width,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        since: Since = None,
        until: Until = None,
        tz: Zone = None,
        telemetry_type: TelemetryType = None,
    ) -> list[AggregateBucket]:
        """Per bucket of device time, oldest first: the numbers at `field` of the payload."""
        bounds = export_bounds(since, until, telemetry_type)
        window = Window(
            device_id,
            bucket,
            zone(tz).key,
            bounds.since,
            bounds.until,
            telemetry_type,
            path=field_path(field),
        )
        await visible_device(services, access_of(principal), device_id)
        return await buckets(services, window)


def _same(entry: HistoryEntry) -> HistoryEntry:
    return entry
