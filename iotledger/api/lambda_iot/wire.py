"""The Lambda IoT Core dialect's representations that more than one controller uses.

The document answers a creation with its id and most other writes with a message,
pages its lists by number, and shows a sensor reading the same in a list and in a
download: each is made here once, and no controller imports another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar.params import QueryParameter

from iotledger.api.pagination import LAMBDA_MAX_LIMIT
from iotledger.projections.readings import ReadingRow

ListLimit = Annotated[
    int | None,
    QueryParameter(ge=1, le=LAMBDA_MAX_LIMIT, description="Rows per page (default: all)"),
]


def offset_of(limit: int | None, page: int) -> int:
    return page * limit if limit else 0


class Created(msgspec.Struct):
    id: UUID


class Message(msgspec.Struct):
    message: str


class LambdaReading(msgspec.Struct):
    id: int
    sensor_id: UUID | None
    value: float | None
    value_at: datetime


def lambda_reading(row: ReadingRow) -> LambdaReading:
    return LambdaReading(row.lambda_id, row.sensor_id, row.value, row.recorded_at)
