"""The dispatch policy's tables in PostgreSQL, and when each device was last heard from.

`dispatch_devices` and `dispatch_queue` are the dispatch projection's view:
rebuilt from the events like any read model. `device_presence` is not: the MQTT
adapter writes when it last heard from each device (any message), the device
checks read it, and a rebuild keeps it. It is created here so that `migrate`
creates it with the tables it sits beside.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import Cursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.projections.dispatch import DispatchRows, QueuedCommand
from iotledger.projections.ports import Due

_DUE = (
    "SELECT q.command_id AS id, q.device_id, q.command_name, q.payload, q.issued_at,"
    " q.expires_at, d.online_seq"
    " FROM dispatch_queue q JOIN dispatch_devices d ON d.device_id = q.device_id"
    " WHERE d.online AND (q.dispatched_seq IS NULL OR q.dispatched_seq < d.online_seq)"
    " AND (q.expires_at IS NULL OR q.expires_at > %(now)s)"
    " ORDER BY q.seq LIMIT %(limit)s"
)
_EXPIRED = (
    "SELECT command_id FROM dispatch_queue"
    " WHERE dispatched_seq IS NULL AND expires_at <= %(now)s"
    " ORDER BY expires_at LIMIT %(limit)s"
)
_HEARD = (
    "INSERT INTO device_presence (device_id, heard_at)"
    " SELECT * FROM unnest(%s::uuid[], %s::timestamptz[])"
    " ON CONFLICT (device_id) DO UPDATE"
    " SET heard_at = GREATEST(device_presence.heard_at, excluded.heard_at)"
)


class PostgresDispatchRows(DispatchRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def device_status(self, device_id: UUID, online: bool) -> None:
        self.cursor.execute(
            "INSERT INTO dispatch_devices (device_id, online, online_seq)"
            " VALUES (%(id)s, %(online)s, %(seq)s)"
            " ON CONFLICT (device_id) DO UPDATE SET online = excluded.online,"
            " online_seq = CASE WHEN excluded.online AND NOT dispatch_devices.online"
            " THEN excluded.online_seq ELSE dispatch_devices.online_seq END",
            {"id": device_id, "online": online, "seq": self.position},
        )

    def forget_device(self, device_id: UUID) -> None:
        self.cursor.execute("DELETE FROM dispatch_devices WHERE device_id = %s", (device_id,))
        self.cursor.execute("DELETE FROM dispatch_queue WHERE device_id = %s", (device_id,))

    def enqueue(self, command: QueuedCommand) -> None:
        self.cursor.execute(
            "INSERT INTO dispatch_queue (command_id, device_id, seq, command_name, payload,"
            " issued_at, expires_at) VALUES (%(id)s, %(device_id)s, %(seq)s, %(command_name)s,"
            " %(payload)s, %(issued_at)s, %(expires_at)s)",
            {
                **msgspec.structs.asdict(command),
                "seq": self.position,
                "payload": Jsonb(command.payload),
            },
        )

    def dispatched(self, command_id: UUID) -> None:
        self.cursor.execute(
            "UPDATE dispatch_queue SET dispatched_seq = %s WHERE command_id = %s",
            (self.position, command_id),
        )

    def dequeue(self, command_id: UUID) -> None:
        self.cursor.execute("DELETE FROM dispatch_queue WHERE command_id = %s", (command_id,))


class PostgresDispatchView(PostgresView[DispatchRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS dispatch_devices ("
        " device_id uuid PRIMARY KEY,"
        " online boolean NOT NULL,"
        " online_seq bigint NOT NULL)",
        "CREATE TABLE IF NOT EXISTS dispatch_queue ("
        " command_id uuid PRIMARY KEY,"
        " device_id uuid NOT NULL,"
        " seq bigint NOT NULL,"
        " command_name text NOT NULL,"
        " payload jsonb NOT NULL,"
        " issued_at timestamptz NOT NULL,"
        " expires_at timestamptz,"
        " dispatched_seq bigint)",
        "CREATE INDEX IF NOT EXISTS dispatch_queue_device ON dispatch_queue (device_id, seq)",
        "CREATE INDEX IF NOT EXISTS dispatch_queue_expiry ON dispatch_queue (expires_at)"
        " WHERE dispatched_seq IS NULL",
        "CREATE TABLE IF NOT EXISTS device_presence ("
        " device_id uuid PRIMARY KEY,"
        " heard_at timestamptz NOT NULL)",
    )
    tables = ("dispatch_devices", "dispatch_queue")

    def rows(self, cursor: Cursor[Any]) -> DispatchRows:
        return PostgresDispatchRows(cursor)

    def due(self, now: datetime, limit: int = 500) -> list[Due]:
        """Commands to send now, oldest first: see `iotledger.projections.dispatch`."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(_DUE, {"now": now, "limit": limit}).fetchall()
        return [Due(msgspec.convert(row, QueuedCommand), int(row["online_seq"])) for row in rows]

    def expired(self, now: datetime, limit: int = 500) -> list[UUID]:
        """Commands never sent whose time to live has passed at `now`."""
        with self.pool.connection() as conn:
            rows = conn.execute(_EXPIRED, {"now": now, "limit": limit}).fetchall()
        return [row[0] for row in rows]

    def record_heard(self, heard: dict[UUID, datetime]) -> None:
        """When each device was last heard from (in id order: concurrent writers never deadlock)."""
        ids = sorted(heard)
        with self.pool.connection() as conn:
            conn.execute(_HEARD, (ids, [heard[i] for i in ids]))

    def last_heard(self, device_ids: Iterable[UUID]) -> dict[UUID, datetime]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT device_id, heard_at FROM device_presence WHERE device_id = ANY(%s)",
                (list(device_ids),),
            ).fetchall()
        return {row[0]: row[1] for row in rows}
