"""The readings read model in PostgreSQL: written by COPY, read through indexes.

`readings` holds one row per live reading, keyed by its Lambda id (the log
position of its `Recorded` event); `latest_readings` points, per device and
telemetry type, at the reading with the greatest device time. A batch of new
readings is one binary COPY plus one upsert of the batch's newest per key, whose
WHERE clause keeps a newer latest in place.

Every index is paid for on every reading, so there are three: the Lambda id, a
device's readings by device time, and a sensor's readings (Lambda readings
only). A reading's uuid has none of its own: the rare look-up by uuid (a
correction, a deletion) goes through the event store's primary key, which maps
it to the position of its `Recorded` event, that is, to its Lambda id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, LiteralString, NamedTuple
from uuid import UUID

import msgspec
from psycopg import Cursor, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from iotledger.adapters.postgres import binary_copy
from iotledger.adapters.postgres.views import rollups
from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.application.ledger import Ledger
from iotledger.projections.readings import ReadingRow, ReadingRows

_COLUMNS = ", ".join(ReadingRow.__struct_fields__)
_SELECT = ", ".join(f"r.{column}" for column in ReadingRow.__struct_fields__)
_COPY = f"COPY readings ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_encode = msgspec.json.Encoder().encode
_LOG = f"{Ledger.name.lower()}_events"
"""The table eventsourcing keeps the ledger's log in (`<application name>_events`)."""
_LAMBDA_ID_OF = (
    f"(SELECT notification_id FROM {_LOG} WHERE originator_id = %s AND originator_version = 1)"
)

# The newest of a run of new readings per device and type (by device time, then by
# log position), moved into the latest where it is newer than the one held.
_MOVE_LATEST = (
    "INSERT INTO latest_readings (device_id, telemetry_type, lambda_id, recorded_at)"
    " SELECT DISTINCT ON (device_id, telemetry_type)"
    " device_id, telemetry_type, lambda_id, recorded_at FROM readings"
    " WHERE lambda_id BETWEEN %s AND %s"
    " ORDER BY device_id, telemetry_type, recorded_at DESC, lambda_id DESC"
    " ON CONFLICT (device_id, telemetry_type) DO UPDATE"
    " SET lambda_id = excluded.lambda_id, recorded_at = excluded.recorded_at"
    " WHERE (excluded.recorded_at, excluded.lambda_id)"
    " > (latest_readings.recorded_at, latest_readings.lambda_id)"
)
_FORGET_LATEST = "DELETE FROM latest_readings WHERE device_id = %s AND telemetry_type = %s"
_RECOMPUTE_LATEST = (
    "INSERT INTO latest_readings (device_id, telemetry_type, lambda_id, recorded_at)"
    " SELECT device_id, telemetry_type, lambda_id, recorded_at FROM readings"
    " WHERE device_id = %s AND telemetry_type = %s"
    " ORDER BY recorded_at DESC, lambda_id DESC LIMIT 1"
)

# A device, the head of the log and the readings projection's position, and the
# device's readings as {readings} finds them, all in one statement's snapshot.
_OF_DEVICE = (
    "SELECT d.owner, h.head, t.position, {columns} FROM devices d"
    f" CROSS JOIN (SELECT coalesce(max(notification_id), 0) AS head FROM {_LOG}) h"
    " LEFT JOIN projection_tracking t ON t.name = %s"
    " LEFT JOIN LATERAL ({readings}) r ON true"
    " WHERE d.id = %s"
)


class Bounds(NamedTuple):
    """Which of a device's readings a page holds, besides how many."""

    after: PageEnd | None = None
    since: datetime | None = None
    until: datetime | None = None
    telemetry_type: str | None = None
    sensor_id: UUID | None = None
    oldest_first: bool = False
    """Exports run oldest device time first; pages, newest first."""


def _page(device: sql.Composable, limit: int, bounds: Bounds) -> tuple[sql.Composed, list[Any]]:
    """A page of the readings of `device` (a placeholder, or a column), and its parameters."""
    where: list[sql.Composable] = [sql.SQL("r.device_id = {}").format(device)]
    params: list[Any] = []
    keyset: LiteralString = ">" if bounds.oldest_first else "<"
    filters: tuple[tuple[LiteralString, tuple[Any, ...] | None], ...] = (
        ("(r.recorded_at, r.lambda_id) " + keyset + " (%s, %s)", bounds.after),
        ("r.recorded_at >= %s", None if bounds.since is None else (bounds.since,)),
        ("r.recorded_at < %s", None if bounds.until is None else (bounds.until,)),
        (
            "r.telemetry_type = %s",
            None if bounds.telemetry_type is None else (bounds.telemetry_type,),
        ),
        ("r.sensor_id = %s", None if bounds.sensor_id is None else (bounds.sensor_id,)),
    )
    for condition, values in filters:
        if values is not None:
            where.append(sql.SQL(condition))
            params.extend(values)
    order: LiteralString = "" if bounds.oldest_first else " DESC"
    query = sql.SQL(
        "SELECT {} FROM readings r WHERE {} ORDER BY r.recorded_at{}, r.lambda_id{} LIMIT %s"
    ).format(sql.SQL(_SELECT), sql.SQL(" AND ").join(where), sql.SQL(order), sql.SQL(order))
    return query, [*params, limit]


def _latest(device: sql.Composable) -> sql.Composed:
    return sql.SQL(
        "SELECT {} FROM latest_readings l JOIN readings r ON r.lambda_id = l.lambda_id"
        " WHERE l.device_id = {} ORDER BY l.telemetry_type"
    ).format(sql.SQL(_SELECT), device)


class DeviceReadings(NamedTuple):
    """A device's readings, and what is needed to know whether they are complete."""

    owner: UUID | None
    head: int
    """The newest position of the log in the snapshot the readings were read in."""
    applied: int
    """How far the readings read model had got in that snapshot: when this is at
    least the position of a write, the readings show that write."""
    rows: list[ReadingRow]


PageEnd = tuple[datetime, int]
"""Where a page of a device's readings ended: the last row's (recorded_at, lambda_id)."""


_FIELDS = binary_copy.fields(len(ReadingRow.__struct_fields__))
_JSONB_VERSION = b"\x01"


def copy_rows(rows: Iterable[ReadingRow]) -> Iterator[bytes]:
    """The rows as a binary COPY stream of `_COLUMNS`, in pieces (jsonb: a version byte,
    then the text)."""
    uuid, data, stamp = binary_copy.uuid, binary_copy.data, binary_copy.timestamptz
    return binary_copy.chunks(
        b"".join(
            (
                _FIELDS,
                binary_copy.int8(r.lambda_id),
                uuid(r.id),
                uuid(r.device_id),
                uuid(r.sensor_id),
                data(r.telemetry_type.encode()),
                data(_JSONB_VERSION + _encode(r.payload)),
                binary_copy.float8(r.value),
                stamp(r.recorded_at),
                stamp(r.received_at),
            )
        )
        for r in rows
    )


class PostgresReadingRows(ReadingRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def add(self, rows: Sequence[ReadingRow]) -> None:
        with self.cursor.copy(_COPY) as copy:
            for piece in copy_rows(rows):
                copy.write(piece)
        self.cursor.execute(_MOVE_LATEST, (rows[0].lambda_id, rows[-1].lambda_id))
        self.cursor.execute(rollups.NO_JIT)
        self.cursor.execute(rollups.ROLL_UP_NEW, (rows[0].lambda_id, rows[-1].lambda_id))

    def correct(
        self, reading_id: UUID, value: float | None, payload: dict[str, Any], recorded_at: datetime
    ) -> None:
        before = self._quarter_of(reading_id)
        self._recompute_latest(
            "UPDATE readings SET value = %s, payload = %s, recorded_at = %s"
            f" WHERE lambda_id = {_LAMBDA_ID_OF} RETURNING device_id, telemetry_type",
            (value, Jsonb(payload), recorded_at, reading_id),
        )
        self._recompute_rollups(before, self._quarter_of(reading_id))

    def delete(self, reading_id: UUID) -> None:
        before = self._quarter_of(reading_id)
        self._recompute_latest(
            f"DELETE FROM readings WHERE lambda_id = {_LAMBDA_ID_OF}"
            " RETURNING device_id, telemetry_type",
            (reading_id,),
        )
        self._recompute_rollups(before)

    def _quarter_of(self, reading_id: UUID) -> tuple[UUID, datetime] | None:
        """The device and the rollup quarter of a reading the read model holds."""
        row = self.cursor.execute(rollups.QUARTER_OF + _LAMBDA_ID_OF, (reading_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _recompute_rollups(self, *quarters: tuple[UUID, datetime] | None) -> None:
        """Add the quarters of a device up again from the readings they hold."""
        for device, quarter in {q for q in quarters if q is not None}:
            params = {"device": device, "quarter": quarter}
            self.cursor.execute(rollups.FORGET_QUARTER, params)
            self.cursor.execute(rollups.ROLL_UP_QUARTER, params)

    def _recompute_latest(self, change: LiteralString, params: tuple[Any, ...]) -> None:
        """Apply a change to one reading, then point its key's latest afresh."""
        row = self.cursor.execute(change, params).fetchone()
        if row is None:
            return
        self.cursor.execute(_FORGET_LATEST, row)
        self.cursor.execute(_RECOMPUTE_LATEST, row)


class PostgresReadingView(PostgresView[ReadingRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS readings ("
        " lambda_id bigint PRIMARY KEY,"
        " id uuid NOT NULL,"
        " device_id uuid NOT NULL,"
        " sensor_id uuid,"
        " telemetry_type text NOT NULL,"
        " payload jsonb NOT NULL,"
        " value double precision,"
        " recorded_at timestamptz NOT NULL,"
        " received_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS readings_by_device_time"
        " ON readings (device_id, recorded_at DESC, lambda_id DESC)",
        "CREATE INDEX IF NOT EXISTS readings_by_sensor"
        " ON readings (sensor_id, lambda_id) WHERE sensor_id IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS latest_readings ("
        " device_id uuid NOT NULL,"
        " telemetry_type text NOT NULL,"
        " lambda_id bigint NOT NULL,"
        " recorded_at timestamptz NOT NULL,"
        " PRIMARY KEY (device_id, telemetry_type))",
        rollups.DDL,
    )
    tables = ("readings", "latest_readings", "reading_rollups")

    def rows(self, cursor: Cursor[Any]) -> ReadingRows:
        return PostgresReadingRows(cursor)

    def _select(self, query: sql.Composable, params: Sequence[Any]) -> list[ReadingRow]:
        with self.pool.connection() as conn, conn.cursor(row_factory=class_row(ReadingRow)) as c:
            found: list[ReadingRow] = c.execute(query, params).fetchall()
            return found

    def device_page(
        self,
        device_id: UUID,
        limit: int,
        *,
        after: PageEnd | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        telemetry_type: str | None = None,
    ) -> list[ReadingRow]:
        """A device's readings, newest device time first, after a cursor, within a range."""
        return self.device_rows(device_id, limit, Bounds(after, since, until, telemetry_type))

    def device_rows(self, device_id: UUID, limit: int, bounds: Bounds) -> list[ReadingRow]:
        """A device's readings within `bounds`, in their order, at most `limit`."""
        query, params = _page(sql.Placeholder(), limit, bounds)
        return self._select(query, [device_id, *params])

    def device_page_as_seen(
        self, device_id: UUID, limit: int, bounds: Bounds
    ) -> DeviceReadings | None:
        """`device_page`, with the device's owner and the positions of its snapshot."""
        query, params = _page(sql.SQL("d.id"), limit, bounds)
        return self._of_device(device_id, query, params)

    def latest(self, device_id: UUID) -> list[ReadingRow]:
        """The newest reading (by device time) of each telemetry type of a device."""
        return self._select(_latest(sql.Placeholder()), [device_id])

    def latest_as_seen(self, device_id: UUID) -> DeviceReadings | None:
        """`latest`, with the device's owner and the positions of its snapshot."""
        return self._of_device(device_id, _latest(sql.SQL("d.id")), [])

    def _of_device(
        self, device_id: UUID, readings: sql.Composable, params: list[Any]
    ) -> DeviceReadings | None:
        """`readings` (a query of device `d`), the device's owner and the positions, as
        one statement sees them; None when there is no such device."""
        query = sql.SQL(_OF_DEVICE).format(readings=readings, columns=sql.SQL(_SELECT))
        with self.pool.connection() as conn:
            found = conn.execute(query, [self.name, *params, device_id]).fetchall()
        if not found:
            return None
        owner, head, applied = found[0][:3]
        rows = [ReadingRow(*row[3:]) for row in found if row[3] is not None]
        return DeviceReadings(owner, head, applied or 0, rows)

    def sensor_page(self, sensor_id: UUID | None, limit: int, offset: int) -> list[ReadingRow]:
        """Sensor readings (of one sensor, or of every sensor), by Lambda id."""
        condition: LiteralString = "r.sensor_id IS NOT NULL"
        params: list[Any] = []
        if sensor_id is not None:
            condition, params = "r.sensor_id = %s", [sensor_id]
        query = sql.SQL(
            "SELECT {} FROM readings r WHERE {} ORDER BY r.lambda_id LIMIT %s OFFSET %s"
        ).format(sql.SQL(_SELECT), sql.SQL(condition))
        return self._select(query, [*params, limit, offset])

    def by_lambda_id(self, lambda_id: int) -> ReadingRow | None:
        found = self._select(
            sql.SQL("SELECT {} FROM readings r WHERE r.lambda_id = %s").format(sql.SQL(_SELECT)),
            [lambda_id],
        )
        return found[0] if found else None

    def by_lambda_ids(self, lambda_ids: Sequence[int]) -> dict[int, ReadingRow]:
        """The readings still listed among these positions, by position."""
        rows = self._select(
            sql.SQL("SELECT {} FROM readings r WHERE r.lambda_id = ANY(%s)").format(
                sql.SQL(_SELECT)
            ),
            [list(lambda_ids)],
        )
        return {row.lambda_id: row for row in rows}

    def count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(row[0]) if row else 0
