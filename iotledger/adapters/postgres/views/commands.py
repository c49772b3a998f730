"""The commands read model in PostgreSQL: a device's commands, page by page.

A page is one index range scan on `(device_id, seq)`; a filter on statuses (what
a device polling over REST asks for: its pending commands) narrows it in place.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

import msgspec
from psycopg import Cursor, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from iotledger.adapters.observability.metrics import COMMANDS
from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.domain.commands import CommandStatus
from iotledger.projections.commands import CommandRows, CommandSummary

_COLUMNS = (
    "id, device_id, command_name, payload, delivery, status, issued_at, updated_at,"
    " expires_at, attempts, executed_at, result, reason"
)
_CHANGES = frozenset({"status", "attempts", "executed_at", "result", "reason"})


class PostgresCommandRows(CommandRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def add(self, command: CommandSummary) -> None:
        COMMANDS.labels(command.status).inc()
        values = msgspec.structs.asdict(command)
        self.cursor.execute(
            f"INSERT INTO commands (seq, {_COLUMNS}) VALUES (%(seq)s, %(id)s, %(device_id)s,"
            " %(command_name)s, %(payload)s, %(delivery)s, %(status)s, %(issued_at)s,"
            " %(updated_at)s, %(expires_at)s, %(attempts)s, %(executed_at)s, %(result)s,"
            " %(reason)s)",
            {
                **values,
                "seq": self.position,
                "payload": Jsonb(command.payload),
                "result": _json(command.result),
            },
        )

    def change(self, command_id: UUID, at: Any, columns: dict[str, Any]) -> None:
        unknown = set(columns) - _CHANGES
        if unknown:
            raise ValueError(f"not a column the projection may set: {sorted(unknown)}")
        if "status" in columns:
            COMMANDS.labels(columns["status"]).inc()
        sets = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
            for name in columns
        )
        values = {**columns, "updated_at": at, "id": command_id}
        if "result" in values:
            values["result"] = _json(values["result"])
        self.cursor.execute(
            sql.SQL("UPDATE commands SET {}, updated_at = %(updated_at)s WHERE id = %(id)s").format(
                sets
            ),
            values,
        )


class PostgresCommandView(PostgresView[CommandRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS commands ("
        " id uuid PRIMARY KEY,"
        " seq bigint NOT NULL,"
        " device_id uuid NOT NULL,"
        " command_name text NOT NULL,"
        " payload jsonb NOT NULL,"
        " delivery text NOT NULL,"
        " status text NOT NULL,"
        " issued_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL,"
        " expires_at timestamptz,"
        " attempts integer NOT NULL,"
        " executed_at timestamptz,"
        " result jsonb,"
        " reason text)",
        "ALTER TABLE commands ADD COLUMN IF NOT EXISTS reason text",
        "CREATE UNIQUE INDEX IF NOT EXISTS commands_device_seq ON commands (device_id, seq)",
    )
    tables = ("commands",)

    def rows(self, cursor: Cursor[Any]) -> CommandRows:
        return PostgresCommandRows(cursor)

    def command(self, device_id: UUID, command_id: UUID) -> CommandSummary | None:
        found = self._select(
            f"SELECT {_COLUMNS} FROM commands WHERE id = %(id)s AND device_id = %(device)s",
            {"id": command_id, "device": device_id},
        )
        return _summary(found[0]) if found else None

    def page(
        self,
        device_id: UUID,
        after: int,
        limit: int,
        statuses: Collection[CommandStatus] | None = None,
    ) -> tuple[list[CommandSummary], int | None]:
        """Up to `limit` commands of a device issued after position `after` (with one
        of `statuses`, when given), oldest first, and the position to continue after
        when there are more."""
        found = self._select(
            f"SELECT seq, {_COLUMNS} FROM commands WHERE device_id = %(device)s"
            " AND seq > %(after)s AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))"
            " ORDER BY seq LIMIT %(limit)s",
            {
                "device": device_id,
                "after": after,
                "limit": limit + 1,
                "statuses": None if statuses is None else sorted(s.value for s in statuses),
            },
        )
        more = len(found) > limit
        commands = [_summary(row) for row in found[:limit]]
        return commands, int(found[limit - 1]["seq"]) if more else None

    def _select(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows: list[dict[str, Any]] = cursor.execute(query, params).fetchall()
            return rows


def _summary(row: dict[str, Any]) -> CommandSummary:
    return msgspec.convert(row, CommandSummary)


def _json(value: Any) -> Jsonb | None:
    """JSON for a jsonb column; None stays SQL NULL."""
    return None if value is None else Jsonb(value)
