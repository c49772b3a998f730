"""Quarter-hour rollups of every number in every reading: what aggregates read at volume.

`reading_rollups` holds, per device, source (the Lambda sensor, or the nil uuid),
telemetry type, payload field (a dotted path of object keys) and quarter hour of device
time (aligned to the Unix epoch), the count, min, max and sum of the numbers found there,
and the first and last of them as `[epoch seconds, lambda id, value]` arrays (exact
numerics: the least and greatest array are the first and last by device time, then log
position). Any bucket of 15 minutes or more, in any zone, is a union of whole quarters:
every zone's offset is a whole number of quarter hours (the local mean times of the 19th
century aside).

The readings projection keeps them in the same transaction as the readings: a batch of
new readings is added up by one INSERT ... SELECT from the rows it just copied, merged
into the rows held (count and sum added, least and greatest kept); a correction or a
deletion recomputes the quarters it touches from the readings table. Retention never
prunes them: aggregates older than the readings kept stay (a correction of a reading in
a quarter whose readings were pruned recomputes that quarter from what is left).
"""

from __future__ import annotations

from typing import LiteralString

NIL_SOURCE = "00000000-0000-0000-0000-000000000000"
_EPOCH: LiteralString = "timestamptz '1970-01-01 00:00:00+00'"
QUARTER: LiteralString = f"date_bin('15 minutes', {{t}}, {_EPOCH})"
MINUTE: LiteralString = f"date_bin('1 minute', {{t}}, {_EPOCH})"

DDL = (
    "CREATE TABLE IF NOT EXISTS reading_rollups ("
    " device_id uuid NOT NULL,"
    " field text NOT NULL,"
    " quarter timestamptz NOT NULL,"
    " telemetry_type text NOT NULL,"
    " source uuid NOT NULL,"
    " n bigint NOT NULL,"
    " lo double precision NOT NULL,"
    " hi double precision NOT NULL,"
    " total double precision NOT NULL,"
    " first numeric[] NOT NULL,"
    " last numeric[] NOT NULL,"
    " PRIMARY KEY (device_id, field, quarter, telemetry_type, source))"
)

LEAVES: LiteralString = (
    "WITH RECURSIVE leaf AS ("
    " SELECT r.lambda_id, r.device_id, r.sensor_id, r.telemetry_type, r.recorded_at,"
    " e.key AS field, e.value AS v FROM readings r, jsonb_each(r.payload) e WHERE {where}"
    " UNION ALL"
    " SELECT l.lambda_id, l.device_id, l.sensor_id, l.telemetry_type, l.recorded_at,"
    " l.field || '.' || e.key, e.value FROM leaf l, jsonb_each(l.v) e"
    " WHERE jsonb_typeof(l.v) = 'object')"
)
"""Every value at every path of the payloads of the readings `r` that `where` selects."""

ADDED_UP: LiteralString = (
    "SELECT device_id, field, {grain} AS quarter, telemetry_type,"
    f" coalesce(sensor_id, '{NIL_SOURCE}') AS source,"
    " count(*) AS n, min(v::float8) AS lo, max(v::float8) AS hi, sum(v::float8) AS total,"
    " min(ARRAY[extract(epoch FROM recorded_at), lambda_id, v::numeric]) AS first,"
    " max(ARRAY[extract(epoch FROM recorded_at), lambda_id, v::numeric]) AS last"
    " FROM leaf WHERE jsonb_typeof(v) = 'number' AND {numbers}"
    " GROUP BY device_id, field, 3, telemetry_type, 5"
)
"""The numbers of the leaves added up per grain (`{grain}` of `recorded_at`)."""

_MERGE = (
    " ON CONFLICT (device_id, field, quarter, telemetry_type, source) DO UPDATE SET"
    " n = reading_rollups.n + excluded.n,"
    " lo = least(reading_rollups.lo, excluded.lo),"
    " hi = greatest(reading_rollups.hi, excluded.hi),"
    " total = reading_rollups.total + excluded.total,"
    " first = least(reading_rollups.first, excluded.first),"
    " last = greatest(reading_rollups.last, excluded.last)"
)


def _roll_up(where: LiteralString) -> LiteralString:
    grain = QUARTER.replace("{t}", "recorded_at")
    added_up = ADDED_UP.replace("{grain}", grain).replace("{numbers}", "true")
    return (
        LEAVES.replace("{where}", where) + " INSERT INTO reading_rollups"
        " (device_id, field, quarter, telemetry_type, source, n, lo, hi, total, first, last) "
        + added_up
        + _MERGE
    )


NO_JIT = "SELECT set_config('jit', 'off', true)"
"""For the rest of the transaction. The recursive walk's row estimate is wild (millions
for a batch of 5,000), so PostgreSQL compiled the statement with LLVM: 620 of its 907 ms
for a batch, measured; without, about a third of the time."""
ROLL_UP_NEW = _roll_up("r.lambda_id BETWEEN %s AND %s")
"""Add a run of new readings (by their first and last lambda id) to the rollups."""
ROLL_UP_QUARTER = _roll_up(
    "r.device_id = %(device)s AND r.recorded_at >= %(quarter)s"
    " AND r.recorded_at < %(quarter)s + interval '15 minutes'"
)
FORGET_QUARTER = (
    "DELETE FROM reading_rollups WHERE device_id = %(device)s AND quarter = %(quarter)s"
)
QUARTER_OF = (
    f"SELECT device_id, {QUARTER.replace('{t}', 'recorded_at')} FROM readings WHERE lambda_id = "
)
"""The device and quarter of a reading (the lambda id follows)."""
