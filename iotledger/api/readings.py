"""What both dialects' reading controllers share: reads that show every reading written before.

New readings go in through `services.recording` (`iotledger.application.readings`).

Read-your-writes for readings is kept on the reading side. A write of readings
answers once its readings are committed to the log, without waiting for the
readings read model: devices write far more often than people read. A read first
learns the head of the log (one query for every read waiting at that moment) and
waits until the readings projection has applied it, so it shows every reading
acknowledged before it began, whoever wrote it and through whichever process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from uuid import UUID

from iotledger.adapters.postgres.views.readings import Bounds, DeviceReadings, PostgresReadingView
from iotledger.api.deps import off_loop
from iotledger.api.export import CHUNK, chunks
from iotledger.api.settle import settle
from iotledger.bootstrap import LOG_HEAD, Services
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import DeviceNotFound
from iotledger.domain.readings import readings_visible
from iotledger.projections.readings import ReadingProjection, ReadingRow


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
        await settle(services.watch, seen.head, ReadingProjection)
        seen = await off_loop(read)
    owners = {} if seen is None else {device_id: seen.owner}
    if seen is None or not readings_visible(access, (device_id,), owners):
        raise DeviceNotFound()
    return seen.rows


async def visible_device(services: Services, access: DeviceAccess, device_id: UUID) -> None:
    """Returns once the readings read model shows every reading acknowledged before this
    call, if the caller may see the device; else NotFound. (`device_readings` of one row.)"""
    one = partial(services.readings.device_page_as_seen, device_id, 1, Bounds())
    await device_readings(services, access, device_id, one)


async def settled_readings(services: Services) -> PostgresReadingView:
    """The readings read model, once it shows every reading acknowledged before this call."""
    head = await services.log_head.get(LOG_HEAD)
    await settle(services.watch, head or 0, ReadingProjection)
    return services.readings


def device_chunks(
    readings: PostgresReadingView, device_id: UUID, bounds: Bounds, first: Sequence[ReadingRow]
) -> AsyncIterator[Sequence[ReadingRow]]:
    """An export's rows: `first`, then the device's readings in `bounds` after each full
    chunk's last, oldest device time first (`iotledger.api.export`)."""

    async def more(last: ReadingRow) -> list[ReadingRow]:
        after = bounds._replace(after=(last.recorded_at, last.lambda_id))
        return await off_loop(readings.device_rows, device_id, CHUNK, after)

    return chunks(first, more)
