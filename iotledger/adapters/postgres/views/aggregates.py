"""Time-bucket aggregates of a device's readings, from the quarter-hour rollups.

Buckets of 15 minutes or more add up the rollups of the whole quarters in the window
(`reading_rollups`, one row per quarter and field: 2,880 rows for 30 days), and the
readings of the quarters the window's ends cut, at most two; `1m` and `5m` buckets add
up the readings of the window, a minute at a time. Either way the cost grows with the
quarters (or readings) of the window, not with the readings of the device.

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
(a string, a boolean, an object, an array) is left out of every column, `count`
included. `first` and `last` are the values of the bucket's earliest and latest
readings by device time (ties: by log position).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, LiteralString, NamedTuple
from uuid import UUID

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from iotledger.adapters.postgres.views import rollups
from iotledger.domain.errors import InvalidInput


class BucketWidth(StrEnum):
    MINUTE = "1m"
    FIVE_MINUTES = "5m"
    QUARTER = "15m"
    HOUR = "1h"
    SIX_HOURS = "6h"
    DAY = "1d"
    WEEK = "1w"


_BUCKETS: dict[BucketWidth, LiteralString] = {
    BucketWidth.MINUTE: "date_trunc('minute', x.quarter, %(tz)s)",
    BucketWidth.FIVE_MINUTES: rollups.QUARTER.replace("15 minutes", "5 minutes"),
    BucketWidth.QUARTER: rollups.QUARTER,
    BucketWidth.HOUR: "date_trunc('hour', x.quarter, %(tz)s)",
    BucketWidth.SIX_HOURS: "(date_bin('6 hours', x.quarter AT TIME ZONE %(tz)s,"
    " timestamp '1970-01-01') AT TIME ZONE %(tz)s)",
    BucketWidth.DAY: "date_trunc('day', x.quarter, %(tz)s)",
    BucketWidth.WEEK: "date_trunc('week', x.quarter, %(tz)s)",
}
_FINE = {BucketWidth.MINUTE, BucketWidth.FIVE_MINUTES}
_QUARTER = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR_PAST = datetime(1, 1, 1, 0, 15, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 12, 31, 23, 45, tzinfo=UTC)
_NOTHING = (EPOCH, EPOCH)

_AGGREGATE = (
    "SELECT {bucket} AS bucket, sum(n)::bigint, min(lo), max(hi), sum(total) / sum(n),"
    " (min(first))[3]::float8, (max(last))[3]::float8 FROM ("
    " SELECT quarter, n, lo, hi, total, first, last FROM reading_rollups q"
    " WHERE q.device_id = %(device)s AND q.field = %(field)s AND {rollup_filters}"
    " AND q.quarter >= %(full_since)s AND q.quarter < %(full_until)s"
    " UNION ALL SELECT quarter, n, lo, hi, total, first, last FROM ({edges}) e) x"
    " GROUP BY 1 ORDER BY 1 LIMIT %(most)s"
)
_EDGES = (
    "r.device_id = %(device)s AND {reading_filters} AND"
    " (r.recorded_at >= %(low_since)s AND r.recorded_at < %(low_until)s"
    " OR r.recorded_at >= %(high_since)s AND r.recorded_at < %(high_until)s)"
)
_FILTERS: dict[str, tuple[LiteralString, LiteralString]] = {
    "telemetry_type": (
        "q.telemetry_type = %(telemetry_type)s",
        "r.telemetry_type = %(telemetry_type)s",
    ),
    "sensor_id": ("q.source = %(sensor_id)s", "r.sensor_id = %(sensor_id)s"),
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
    """The payload field, as its keys from the top (a Lambda reading's is `value`)."""


class Bucket(msgspec.Struct, frozen=True):
    start: datetime
    count: int
    min: float
    max: float
    avg: float
    first: float
    last: float


def _floor(moment: datetime) -> datetime:
    return EPOCH + (moment - EPOCH) // _QUARTER * _QUARTER


def spans(window: Window) -> dict[str, datetime]:
    """The whole quarters the rollups answer for, and the two ends the readings do."""
    since = max(window.since or _FAR_PAST, _FAR_PAST)
    until = min(window.until or _FAR_FUTURE, _FAR_FUTURE)
    if window.width in _FINE:
        full, low, high = _NOTHING, (since, until), _NOTHING
    else:
        first = _floor(since) + (_QUARTER if _floor(since) < since else timedelta(0))
        last = _floor(until)
        full, low, high = (first, last), (since, min(first, until)), (max(last, first), until)
    names = ("full_since", "full_until", "low_since", "low_until", "high_since", "high_until")
    return dict(zip(names, (*full, *low, *high), strict=True))


def aggregate_query(window: Window) -> tuple[sql.Composed, dict[str, Any]]:
    """The aggregate of the numbers at the window's field, per bucket, oldest first."""
    params: dict[str, Any] = window._asdict() | spans(window)
    params.update(device=window.device_id, field=".".join(window.path))
    chosen = [_FILTERS[name] for name in _FILTERS if params[name] is not None]
    grain = rollups.MINUTE if window.width in _FINE else rollups.QUARTER
    where = _EDGES.replace("{reading_filters}", " AND ".join(r for _, r in chosen) or "true")
    edges = rollups.LEAVES.replace("{where}", where) + rollups.ADDED_UP.replace(
        "{grain}", grain.replace("{t}", "recorded_at")
    ).replace("{numbers}", "field = %(field)s")
    query = sql.SQL(_AGGREGATE).format(
        bucket=sql.SQL(_BUCKETS[window.width].replace("{t}", "x.quarter")),
        rollup_filters=sql.SQL(" AND ".join(q for q, _ in chosen) or "true"),
        edges=sql.SQL(edges),
    )
    return query, params


def aggregate(pool: ConnectionPool[Any], window: Window, most: int) -> list[Bucket]:
    """At most `most` buckets of `window`, oldest first; a zone PostgreSQL does not know
    is the client's mistake."""
    query, params = aggregate_query(window)
    try:
        with pool.connection() as conn:
            rows = conn.execute(query, {**params, "most": most}).fetchall()
    except psycopg.errors.InvalidParameterValue:
        raise InvalidInput(f"unknown time zone {window.tz!r}") from None
    return [Bucket(*row) for row in rows]
