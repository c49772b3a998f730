"""Device Telemetry: a device's readings, newest device time first, and its latest values.

A reading goes through the one recording service every source shares, which also checks
that the caller may see its device, and is answered once committed; reads of readings
wait for the read model (`api.readings`). `recorded_at` is the device's clock (default:
now); a reading is listed and its latest value chosen by that time, not by its
arrival. Our extension: an `id` the client gives makes a retry idempotent (the
same id again stores nothing and answers the reading first stored); a JSON array
of readings is one batch, stored in one append or not at all, answered with the
array (`IOTLEDGER_MAX_BATCH_READINGS` at most). Telemetry follows its device's
tenancy: another user's device answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET

from iotledger.adapters.postgres.views.readings import Bounds
from iotledger.api.auth import Caller, Principal
from iotledger.api.bodies import JsonDocument
from iotledger.api.deps import off_loop
from iotledger.api.errors import REQUIRED, describe_body_error
from iotledger.api.openapi import raises
from iotledger.api.pagination import (
    INVALID_CURSOR,
    PAGE_HEADERS,
    Cursor,
    Limit,
    decode_cursor,
    page_response,
)
from iotledger.api.readings import device_readings, settled_readings
from iotledger.api.registry import access_of, cause
from iotledger.api.telemetry.wire import Since, TelemetryReading, Until, telemetry_reading
from iotledger.api.wire import instant
from iotledger.application.clock import now
from iotledger.application.readings import Outcome, RecordReading
from iotledger.bootstrap import Services
from iotledger.domain.errors import Conflict, InvalidInput
from iotledger.domain.instants import Instant
from iotledger.domain.readings import MAX_KEY_LENGTH, MAX_TYPE_LENGTH
from iotledger.domain.storable import check_storable
from iotledger.projections.readings import ReadingRow

LIST_NAME = "telemetry"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

TelemetryType = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TYPE_LENGTH)]
ReadingKey = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)] | int


DELETED = "a reading with this id was recorded and has been deleted"


class NewTelemetry(msgspec.Struct):
    telemetry_type: TelemetryType
    payload: dict[str, Any]
    recorded_at: Instant | None = None
    id: ReadingKey | None = None
    """Our extension: the client's id for this reading, which makes a retry idempotent."""


TelemetryBody = NewTelemetry | list[NewTelemetry]
"""Our extension: a list is a batch, stored whole or not at all, answered with a list."""
Created = TelemetryReading | list[TelemetryReading]


class TelemetryDocument(JsonDocument):
    documents = TelemetryBody


def page_key(row: ReadingRow) -> list[int]:
    """Where a page ended, as the integers a cursor holds: (device time in µs, Lambda id)."""
    return [(row.recorded_at - _EPOCH) // _MICROSECOND, row.lambda_id]


def page_end(key: tuple[int, ...] | None) -> tuple[datetime, int] | None:
    """Where the page a cursor names ended; a device time no datetime can hold is forged."""
    if key is None:
        return None
    try:
        return _EPOCH + key[0] * _MICROSECOND, key[1]
    except OverflowError:
        raise InvalidInput(INVALID_CURSOR) from None


class TelemetryController(Controller):
    path = "/api/v1/devices/{device_id:str}/telemetry"
    tags = ["Device Telemetry: telemetry"]

    @post("/", status_code=201, dto=TelemetryDocument, return_dto=None, opt=raises(Conflict))
    async def create_telemetry(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        caller: NamedDependency[Caller],
        data: JSONBody[Any] = UNSET,
    ) -> Created:
        """The common request is answered before Litestar sees it (`api.intake`), by
        `post_telemetry` too: what comes here is the rest (chunked bodies and the like).
        A device may post its own readings with its credentials (HTTP Basic)."""
        return await post_telemetry(services, device_id, data, caller)

    @get("/", response_headers=PAGE_HEADERS)
    async def list_telemetry(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        limit: Limit = 10,
        cursor: Cursor = None,
        since: Since = None,
        until: Until = None,
        telemetry_type: Annotated[str | None, QueryParameter(max_length=MAX_TYPE_LENGTH)] = None,
    ) -> Response[list[TelemetryReading]]:
        """Newest device time first; `from` (inclusive) and `to` (exclusive) bound it."""
        check_storable(telemetry_type, "telemetry_type")  # no text column could match it
        bounds = Bounds(
            after=page_end(decode_cursor(LIST_NAME, cursor, width=2)),
            since=instant(since, "from"),
            until=instant(until, "to"),
            telemetry_type=telemetry_type,
        )
        page = partial(services.readings.device_page_as_seen, device_id, limit + 1, bounds)
        rows = await device_readings(services, access_of(principal), device_id, page)
        more = len(rows) > limit
        items = [telemetry_reading(row) for row in rows[:limit]]
        return page_response(items, LIST_NAME, limit, page_key(rows[limit - 1]) if more else None)

    @get("/latest")
    async def latest_telemetry(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> list[TelemetryReading]:
        """Per telemetry type, the reading with the newest device time."""
        latest = partial(services.readings.latest_as_seen, device_id)
        rows = await device_readings(services, access_of(principal), device_id, latest)
        return [telemetry_reading(row) for row in rows]


async def post_telemetry(
    services: Services, device_id: UUID, document: Any, caller: Caller
) -> Created:
    """The telemetry endpoint, written once for both roads to it (Litestar's, and the lane
    in front of it: `api.intake`), from the body's JSON values (`UNSET`: no body) and the
    caller on: a reading, or a batch stored whole or not at all (a list: answered with the
    list), of a device the caller may see (else 404, as if it did not exist)."""
    data = _telemetry_body(document)
    reading = partial(RecordReading.of_message, device_id, cause(caller), now=now)
    if isinstance(data, list):
        readings = services.recording.batch(data, reading)
    else:
        readings = [reading(data)]
    outcomes = await services.recording.record(readings, access_of(caller), source="rest")
    stored = await _stored(services, readings, outcomes, batch=isinstance(data, list))
    return stored if isinstance(data, list) else stored[0]


def _telemetry_body(document: Any) -> TelemetryBody:
    """The fields of a body, as Litestar would read them into its handler's type."""
    if document is UNSET:
        raise InvalidInput(f"data: {REQUIRED}")
    try:
        data: TelemetryBody = msgspec.convert(document, TelemetryBody, strict=False)
    except msgspec.ValidationError as e:
        raise InvalidInput(describe_body_error(e)) from None
    return data


async def _stored(
    services: Services, readings: list[RecordReading], outcomes: list[Outcome], *, batch: bool
) -> list[TelemetryReading]:
    """Each reading as stored: a new one as it will be listed (in UTC), a repeat as it
    was first stored (from the read model, unless this batch itself first stored it)."""
    created = {
        outcome.id: TelemetryReading(
            outcome.id, r.telemetry_type, r.payload, r.recorded_at.astimezone(UTC)
        )
        for r, outcome in zip(readings, outcomes, strict=True)
        if outcome.new
    }
    earlier = [outcome.position for outcome in outcomes if outcome.id not in created]
    if earlier:
        rows = await off_loop((await settled_readings(services)).by_lambda_ids, earlier)
        created |= {row.id: telemetry_reading(row) for row in rows.values()}
    for index, outcome in enumerate(outcomes):
        if outcome.id not in created:
            raise Conflict(f"[{index}]: {DELETED}" if batch else DELETED)
    return [created[outcome.id] for outcome in outcomes]
