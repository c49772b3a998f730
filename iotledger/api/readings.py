"""What both dialects' reading controllers share: the way out, and device times.

New readings go in through `services.recording` (`iotledger.application.readings`).

Read-your-writes for readings is kept on the reading side. A write of readings
answers once its readings are committed to the log, without waiting for the
readings read model: devices write far more often than people read. A read first
learns the head of the log (one query for every read waiting at that moment) and
waits until the readings projection has applied it, so it shows every reading
acknowledged before it began, whoever wrote it and through whichever process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated
from uuid import UUID

import msgspec

from iotledger.adapters.postgres.views.readings import Bounds, DeviceReadings, PostgresReadingView
from iotledger.api.deps import off_loop
from iotledger.application.devices import DEVICE_NOT_FOUND
from iotledger.bootstrap import LOG_HEAD, Services
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import InvalidInput, NotFound
from iotledger.domain.readings import readings_visible
from iotledger.projections.readings import ReadingProjection, ReadingRow

Instant = Annotated[datetime, msgspec.Meta(tz=True)]
"""A device time in a body: RFC 3339 with its offset (a clock without one cannot be placed)."""


async def device_readings(
    services: Services,
    access: DeviceAccess,
    device_id: UUID,
    read: Callable[[], DeviceReadings | None],
) -> list[ReadingRow]:
    """The readings of `device_id` as `read` finds them, showing every reading acknowledged
    before this call; NotFound when the caller may not see the device (`readings_visible`,
    on the owner the same statement read).

    One statement reads the readings with the head of the log and the read model's
    position, in one snapshot: when the model had applied that head, nothing more
    is needed. Otherwise it waits until the projection has, and reads again.
    """
    seen = await off_loop(read)
    if seen is not None and seen.applied < seen.head:
        await services.watch.wait(seen.head, ReadingProjection.name)
        seen = await off_loop(read)
    owners = {} if seen is None else {device_id: seen.owner}
    if seen is None or not readings_visible(access, (device_id,), owners):
        raise NotFound(DEVICE_NOT_FOUND)
    return seen.rows


async def visible_device(services: Services, access: DeviceAccess, device_id: UUID) -> None:
    """Returns once the readings read model shows every reading acknowledged before this
    call, if the caller may see the device; else NotFound. (`device_readings` of one row.)"""
    one = partial(services.readings.device_page_as_seen, device_id, 1, Bounds())
    await device_readings(services, access, device_id, one)


async def settled_readings(services: Services) -> PostgresReadingView:
    """The readings read model, once it shows every reading acknowledged before this call."""
    head = await services.log_head.get(LOG_HEAD)
    await services.watch.wait(head or 0, ReadingProjection.name)
    return services.readings


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
