"""What both dialects' reading controllers share: the one road in, and device times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec

from iotledger.adapters.ingest import Outcome
from iotledger.bootstrap import Services
from iotledger.domain.errors import InvalidInput
from iotledger.domain.reading_service import RecordReading
from iotledger.projections.readings import ReadingProjection

Instant = Annotated[datetime, msgspec.Meta(tz=True)]
"""A device time in a body: RFC 3339 with its offset (a clock without one cannot be placed)."""


async def record_readings(services: Services, readings: Sequence[RecordReading]) -> list[Outcome]:
    """Through the shared ingest; answers once the readings read model shows them."""
    outcomes = await services.ingest.submit(readings)
    await services.watch.wait(max(o.position for o in outcomes), ReadingProjection.name)
    return outcomes


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
