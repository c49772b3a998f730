"""What both dialects' reading controllers share: the one road in, the way out, device times.

Read-your-writes for readings is kept on the reading side. A write of readings
answers once its readings are committed to the log, without waiting for the
readings read model: devices write far more often than people read. A read first
learns the head of the log (one query for every read waiting at that moment) and
waits until the readings projection has applied it, so it shows every reading
acknowledged before it began, whoever wrote it and through whichever process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec

from iotledger.adapters.ingest import Outcome
from iotledger.adapters.reading_view import PostgresReadingView
from iotledger.bootstrap import LOG_HEAD, Services
from iotledger.domain.errors import InvalidInput
from iotledger.domain.reading_service import RecordReading
from iotledger.projections.readings import ReadingProjection

Instant = Annotated[datetime, msgspec.Meta(tz=True)]
"""A device time in a body: RFC 3339 with its offset (a clock without one cannot be placed)."""


async def record_readings(services: Services, readings: Sequence[RecordReading]) -> list[Outcome]:
    """Through the shared ingest; answers once the readings are committed to the log."""
    return await services.ingest.submit(readings)


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
