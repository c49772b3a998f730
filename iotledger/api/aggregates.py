"""What both dialects' aggregate endpoints share: the parameters, the answer, the limit.

`bucket_start` is the instant the bucket starts, written with the offset `tz` has at
that instant (`Z` without `tz`): on a daylight-saving day, consecutive day buckets of
Europe/Berlin start at `+01:00` and `+02:00`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar.params import QueryParameter
from psycopg_pool import ConnectionPool

from iotledger.adapters.postgres.views.aggregates import BucketWidth, Window, aggregate
from iotledger.api.deps import off_loop
from iotledger.domain.errors import InvalidInput
from iotledger.domain.storable import check_storable

MAX_BUCKETS = 10_000
"""An answer is one JSON array: a narrower window or a wider bucket past this."""
MAX_FIELD_LENGTH = 200

Zone = Annotated[
    str | None,
    QueryParameter(max_length=64, description="IANA time zone of the buckets (default UTC)"),
]
Width = Annotated[
    BucketWidth, QueryParameter(description="Bucket width: 1m, 5m, 15m, 1h, 6h, 1d or 1w")
]


class AggregateBucket(msgspec.Struct):
    bucket_start: datetime
    count: int
    min: float
    max: float
    avg: float
    first: float
    last: float


def zone(tz: str | None) -> ZoneInfo:
    """The IANA zone named `tz` (UTC when absent); any other name is the client's mistake."""
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"tz: unknown time zone {tz!r}") from None


def field_path(field: str) -> tuple[str, ...]:
    """A payload key, or a dotted path of keys (`env.temperature`)."""
    check_storable(field, "field")
    keys = tuple(field.split("."))
    if len(field) > MAX_FIELD_LENGTH or not all(keys):
        raise InvalidInput("field must be a payload key or a dotted path of keys")
    return keys


async def buckets(pool: ConnectionPool[Any], window: Window) -> list[AggregateBucket]:
    """The aggregate over `window`, oldest bucket first, in the window's zone."""
    tz = zone(window.tz)
    found = await off_loop(aggregate, pool, window, MAX_BUCKETS + 1)
    if len(found) > MAX_BUCKETS:
        raise InvalidInput(f"more than {MAX_BUCKETS} buckets: narrow from/to or widen bucket")
    return [
        AggregateBucket(b.start.astimezone(tz), b.count, b.min, b.max, b.avg, b.first, b.last)
        for b in found
    ]
