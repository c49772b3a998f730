"""What both dialects' reading controllers share: the one road in, the way out, device times.

Read-your-writes for readings is kept on the reading side. A write of readings
answers once its readings are committed to the log, without waiting for the
readings read model: devices write far more often than people read. A read first
learns the head of the log (one query for every read waiting at that moment) and
waits until the readings projection has applied it, so it shows every reading
acknowledged before it began, whoever wrote it and through whichever process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Annotated
from uuid import UUID

import msgspec

from iotledger.adapters.postgres.ingest import Outcome, ReadingIngest
from iotledger.adapters.postgres.log_head import LogHead
from iotledger.adapters.postgres.views.readings import Bounds, DeviceReadings, PostgresReadingView
from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.api.deps import off_loop
from iotledger.application.devices import DEVICE_NOT_FOUND
from iotledger.application.readings import RecordReading
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import InvalidInput, NotFound
from iotledger.projections.readings import ReadingProjection, ReadingRow

Instant = Annotated[datetime, msgspec.Meta(tz=True)]
"""A device time in a body: RFC 3339 with its offset (a clock without one cannot be placed)."""


async def record_readings(
    ingest: ReadingIngest, readings: Sequence[RecordReading], access: DeviceAccess | None = None
) -> list[Outcome]:
    """Through the shared ingest; answers once the readings are committed to the log.
    With `access`: NotFound, nothing stored, unless each reading's device is one it allows
    (checked by the ingest, on a query that starts after this call)."""
    return await ingest.submit(readings, access, source="rest")


async def device_readings(
    watch: ProjectionWatch, access: DeviceAccess, read: Callable[[], DeviceReadings | None]
) -> list[ReadingRow]:
    """A device's readings as `read` finds them, showing every reading acknowledged
    before this call; NotFound when the caller may not see the device.

    One statement reads the readings with the head of the log and the read model's
    position, in one snapshot: when the model had applied that head, nothing more
    is needed. Otherwise it waits until the projection has, and reads again.
    """
    seen = await off_loop(read)
    if seen is not None and seen.applied < seen.head:
        await watch.wait(seen.head, ReadingProjection.name)
        seen = await off_loop(read)
    if seen is None or not access.allows(seen.owner):
        raise NotFound(DEVICE_NOT_FOUND)
    return seen.rows


async def visible_device(
    watch: ProjectionWatch, readings: PostgresReadingView, access: DeviceAccess, device_id: UUID
) -> None:
    """Returns once the readings read model shows every reading acknowledged before this
    call, if the caller may see the device; else NotFound. (`device_readings` of one row.)"""
    one = partial(readings.device_page_as_seen, device_id, 1, Bounds())
    await device_readings(watch, access, one)


async def settled_readings(
    log_head: LogHead, watch: ProjectionWatch, readings: PostgresReadingView
) -> PostgresReadingView:
    """The readings read model, once it shows every reading acknowledged before this call."""
    await watch.wait(await log_head.get(), ReadingProjection.name)
    return readings


def instant(text: str | None, name: str) -> datetime | None:
    """A device time given in a query: RFC 3339 with its offset, or absent."""
    if text is None:
        return None
    try:
        value = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(f"{name} must be an RFC 3339 date-time with an offset")
    return value
