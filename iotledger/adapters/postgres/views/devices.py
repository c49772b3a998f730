"""The devices read model in PostgreSQL, and the queries both dialects ask of it.

Speed at a million devices comes from the indexes, not from caching: a detail
is a primary-key lookup; a Device Telemetry page is two index range scans, one
on the shared fleet's `(seq) WHERE owner IS NULL` and one on the caller's own
`(owner, seq)`, merged and cut at the limit; a Lambda list walks the first. (A
single `(owner, seq)` index would not do: PostgreSQL does not take `owner IS
NULL` as an equality, so it would sort the whole fleet for every page.) Each
query is one statement, whatever the page size.

The tenancy rule is `DeviceAccess.allows` (owner NULL, or the caller's own);
`_VISIBLE` and `_PAGE` are its two SQL forms and nothing else here decides it
(`PostgresDeviceOwners` only reads the owners that `readings_visible` decides on).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import Cursor, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.domain.devices import ComponentKind, DeviceAccess
from iotledger.projections.devices import ComponentSummary, DeviceRows, DeviceSummary

_DEVICE_COLUMNS = (
    "id, owner, name, device_type, description, location, status, metadata, created_at, updated_at"
)
_COMPONENT_COLUMNS = (
    "c.id, c.kind, c.device_id, c.name, c.component_type, c.data_type_id,"
    " c.created_at, c.updated_at"
)
_DEVICE_CHANGES = frozenset(
    {"owner", "name", "device_type", "description", "location", "status", "metadata"}
)
_COMPONENT_CHANGES = frozenset({"device_id", "name", "component_type", "data_type_id"})

_VISIBLE = "(owner IS NULL OR owner = %(user)s)"
_PAGE = (
    f"SELECT seq, {_DEVICE_COLUMNS} FROM ("
    f" (SELECT seq, {_DEVICE_COLUMNS} FROM devices"
    "   WHERE owner IS NULL AND seq > %(after)s ORDER BY seq LIMIT %(limit)s)"
    " UNION ALL"
    f" (SELECT seq, {_DEVICE_COLUMNS} FROM devices"
    "   WHERE owner = %(user)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s)"
    ") AS visible ORDER BY seq LIMIT %(limit)s"
)
_FLEET_COMPONENTS = (
    f"SELECT {_COMPONENT_COLUMNS} FROM device_components c"
    " JOIN devices d ON d.id = c.device_id"
    " WHERE c.kind = %(kind)s AND d.owner IS NULL"
)


class PostgresDeviceOwners:
    """The batched SQL `DeviceOwners`: the owners of any number of devices in one query,
    on a connection its user holds (the COPY appender's, once per append)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def owners(self, device_ids: Collection[UUID]) -> dict[UUID, UUID | None]:
        rows = self._conn.execute(
            "SELECT id, owner FROM devices WHERE id = ANY(%s)", (list(device_ids),)
        )
        return dict(rows.fetchall())


def _sets(columns: dict[str, Any], allowed: frozenset[str]) -> sql.Composed:
    unknown = set(columns) - allowed
    if unknown:
        raise ValueError(f"not a column the projection may set: {sorted(unknown)}")
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in columns
    )


def _stored(columns: dict[str, Any]) -> dict[str, Any]:
    return {
        name: Jsonb(value) if isinstance(value, dict) else value for name, value in columns.items()
    }


class PostgresDeviceRows(DeviceRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def add_device(self, device: DeviceSummary) -> None:
        values = _stored(msgspec.structs.asdict(device))
        self.cursor.execute(
            f"INSERT INTO devices (seq, {_DEVICE_COLUMNS}) VALUES (%(seq)s, %(id)s, %(owner)s,"
            " %(name)s, %(device_type)s, %(description)s, %(location)s, %(status)s,"
            " %(metadata)s, %(created_at)s, %(updated_at)s)",
            {"seq": self.position, **values},
        )

    def change_device(self, device_id: UUID, at: datetime, columns: dict[str, Any]) -> None:
        self._change("devices", _sets(columns, _DEVICE_CHANGES), device_id, at, columns)

    def remove_device(self, device_id: UUID) -> None:
        self.cursor.execute("DELETE FROM devices WHERE id = %s", (device_id,))

    def add_component(self, component: ComponentSummary) -> None:
        self.cursor.execute(
            "INSERT INTO device_components (seq, id, kind, device_id, name, component_type,"
            " data_type_id, created_at, updated_at) VALUES (%(seq)s, %(id)s, %(kind)s,"
            " %(device_id)s, %(name)s, %(component_type)s, %(data_type_id)s, %(created_at)s,"
            " %(updated_at)s)",
            {"seq": self.position, **msgspec.structs.asdict(component)},
        )

    def change_component(self, component_id: UUID, at: datetime, columns: dict[str, Any]) -> None:
        sets = _sets(columns, _COMPONENT_CHANGES)
        self._change("device_components", sets, component_id, at, columns)

    def remove_component(self, component_id: UUID) -> None:
        self.cursor.execute("DELETE FROM device_components WHERE id = %s", (component_id,))

    def _change(
        self, table: str, sets: sql.Composed, row_id: UUID, at: datetime, columns: dict[str, Any]
    ) -> None:
        statement = sql.SQL("UPDATE {} SET {}, updated_at = %(updated_at)s WHERE id = %(id)s")
        self.cursor.execute(
            statement.format(sql.Identifier(table), sets),
            {**_stored(columns), "updated_at": at, "id": row_id},
        )


class PostgresDeviceView(PostgresView[DeviceRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS devices ("
        " id uuid PRIMARY KEY,"
        " seq bigint NOT NULL,"
        " owner uuid,"
        " name text NOT NULL,"
        " device_type text NOT NULL,"
        " description text NOT NULL,"
        " location text NOT NULL,"
        " status text NOT NULL,"
        " metadata jsonb NOT NULL,"
        " created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS devices_fleet_seq ON devices (seq) WHERE owner IS NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS devices_private_seq ON devices (owner, seq)"
        " WHERE owner IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS device_components ("
        " id uuid PRIMARY KEY,"
        " seq bigint NOT NULL,"
        " kind text NOT NULL,"
        " device_id uuid NOT NULL,"
        " name text NOT NULL,"
        " component_type text NOT NULL,"
        " data_type_id integer NOT NULL,"
        " created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS device_components_kind_seq ON device_components (kind, seq)",
        "CREATE INDEX IF NOT EXISTS device_components_device ON device_components (device_id)",
    )
    tables = ("devices", "device_components")

    def rows(self, cursor: Cursor[Any]) -> DeviceRows:
        return PostgresDeviceRows(cursor)

    def device(self, device_id: UUID, access: DeviceAccess) -> DeviceSummary | None:
        found = self._select(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = %(id)s AND {_VISIBLE}",
            {"id": device_id, "user": access.user_id},
        )
        return msgspec.convert(found[0], DeviceSummary) if found else None

    def page(
        self, access: DeviceAccess, after: int, limit: int
    ) -> tuple[list[DeviceSummary], int | None]:
        """Up to `limit` devices the caller may see after position `after`, and
        the position to continue after when there are more."""
        found = self._select(_PAGE, {"user": access.user_id, "after": after, "limit": limit + 1})
        more = len(found) > limit
        devices = msgspec.convert(found[:limit], list[DeviceSummary])
        return devices, int(found[limit - 1]["seq"]) if more else None

    def fleet(self, limit: int | None, offset: int) -> list[DeviceSummary]:
        """The shared fleet in the order it was registered (the Lambda dialect's list)."""
        found = self._select(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE owner IS NULL"
            " ORDER BY seq LIMIT %(limit)s OFFSET %(offset)s",
            {"limit": limit, "offset": offset},
        )
        return msgspec.convert(found, list[DeviceSummary])

    def fleet_component(self, kind: ComponentKind, component_id: UUID) -> ComponentSummary | None:
        found = self._select(
            f"{_FLEET_COMPONENTS} AND c.id = %(id)s", {"kind": kind, "id": component_id}
        )
        return msgspec.convert(found[0], ComponentSummary) if found else None

    def fleet_components(
        self, kind: ComponentKind, limit: int | None, offset: int
    ) -> list[ComponentSummary]:
        found = self._select(
            f"{_FLEET_COMPONENTS} ORDER BY c.seq LIMIT %(limit)s OFFSET %(offset)s",
            {"kind": kind, "limit": limit, "offset": offset},
        )
        return msgspec.convert(found, list[ComponentSummary])

    def _select(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows: list[dict[str, Any]] = cursor.execute(query, params).fetchall()
            return rows
