"""Time-bucket aggregates of a device's readings, computed by PostgreSQL from the read model.

No rollup table: the query walks the device's slice of `readings_by_device_time`
(device, then device time) for the window asked, and PostgreSQL buckets and aggregates
what it finds. Its cost grows with the readings of that device in the window, not with
the table (docs/performance.md measures it, and shows the plan).

Buckets follow the device's clock (`recorded_at`) in the time zone given:

- `1m`, `1h`: `date_trunc` in the zone, which keeps the offset of each instant, so the
  hour that a fall-back change repeats is two buckets, not one of two hours;
- `5m`, `15m`: `date_bin` from the Unix epoch; every zone's offset is a whole number of
  quarter hours, so these are the zone's own quarter hours too;
- `6h`: local wall-clock hours 0, 6, 12 and 18 (a bucket holding a change is 5 or 7
  hours long);
- `1d`, `1w`: `date_trunc` in the zone: local midnight, weeks from Monday; a day of a
  daylight-saving change is 23 or 25 hours long.

Only numbers are aggregated: a reading whose field is missing or is not a JSON number
(a string, a boolean, an object) is left out of every column, `count` included. `first`
and `last` are the values of the bucket's earliest and latest readings by device time
(ties: by log position).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, LiteralString, NamedTuple
from uuid import UUID

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from iotledger.domain.errors import InvalidInput


class BucketWidth(StrEnum):
    MINUTE = "1m"
    FIVE_MINUTES = "5m"
    QUARTER = "15m"
    HOUR = "1h"
    SIX_HOURS = "6h"
    DAY = "1d"
    WEEK = "1w"


_EPOCH: LiteralString = "timestamptz '1970-01-01 00:00:00+00'"
_BUCKETS: dict[BucketWidth, LiteralString] = {
    BucketWidth.MINUTE: "date_trunc('minute', r.recorded_at, %(tz)s)",
    BucketWidth.FIVE_MINUTES: f"date_bin('5 minutes', r.recorded_at, {_EPOCH})",
    BucketWidth.QUARTER: f"date_bin('15 minutes', r.recorded_at, {_EPOCH})",
    BucketWidth.HOUR: "date_trunc('hour', r.recorded_at, %(tz)s)",
    BucketWidth.SIX_HOURS: "(date_bin('6 hours', r.recorded_at AT TIME ZONE %(tz)s,"
    " timestamp '1970-01-01') AT TIME ZONE %(tz)s)",
    BucketWidth.DAY: "date_trunc('day', r.recorded_at, %(tz)s)",
    BucketWidth.WEEK: "date_trunc('week', r.recorded_at, %(tz)s)",
}

PAYLOAD_NUMBER: LiteralString = (
    "CASE WHEN jsonb_typeof(r.payload #> %(path)s) = 'number'"
    " THEN (r.payload #> %(path)s)::float8 END"
)
"""The number at a path of the payload, or NULL (absent, or not a number)."""
LAMBDA_VALUE: LiteralString = "r.value"

_AGGREGATE = (
    "SELECT bucket, count(*), min(n), max(n), avg(n),"
    " (array_agg(n ORDER BY recorded_at, lambda_id))[1],"
    " (array_agg(n ORDER BY recorded_at DESC, lambda_id DESC))[1]"
    " FROM (SELECT {bucket} AS bucket, r.recorded_at, r.lambda_id, {number} AS n"
    " FROM readings r WHERE r.device_id = %(device)s AND {where}) x"
    " WHERE n IS NOT NULL GROUP BY bucket ORDER BY bucket LIMIT %(most)s"
)
_FILTERS: dict[str, LiteralString] = {
    "since": "r.recorded_at >= %(since)s",
    "until": "r.recorded_at < %(until)s",
    "telemetry_type": "r.telemetry_type = %(telemetry_type)s",
    "sensor_id": "r.sensor_id = %(sensor_id)s",
}


class Window(NamedTuple):
    """Which readings of a device are aggregated, and how."""

    device_id: UUID
    width: BucketWidth
    tz: str = "UTC"
    since: datetime | None = None
    until: datetime | None = None
    telemetry_type: str | None = None
    sensor_id: UUID | None = None
    path: Sequence[str] = ()
    """The payload field (PAYLOAD_NUMBER), as its keys from the top."""


class Bucket(msgspec.Struct, frozen=True):
    start: datetime
    count: int
    min: float
    max: float
    avg: float
    first: float
    last: float


def aggregate_query(number: LiteralString, window: Window) -> tuple[sql.Composed, dict[str, Any]]:
    """The aggregate of `number` (a SQL expression of reading `r`) over `window`."""
    params: dict[str, Any] = window._asdict()
    params.update(device=window.device_id, path=list(window.path))
    conditions = [_FILTERS[name] for name in _FILTERS if params[name] is not None]
    query = sql.SQL(_AGGREGATE).format(
        bucket=sql.SQL(_BUCKETS[window.width]),
        number=sql.SQL(number),
        where=sql.SQL(" AND ".join(conditions) or "true"),
    )
    return query, params


def aggregate(
    pool: ConnectionPool[Any], number: LiteralString, window: Window, most: int
) -> list[Bucket]:
    """At most `most` buckets of `window`, oldest first; a zone PostgreSQL does not know
    is the client's mistake."""
    query, params = aggregate_query(number, window)
    try:
        with pool.connection() as conn:
            rows = conn.execute(query, {**params, "most": most}).fetchall()
    except psycopg.errors.InvalidParameterValue:
        raise InvalidInput(f"unknown time zone {window.tz!r}") from None
    return [Bucket(*row) for row in rows]
