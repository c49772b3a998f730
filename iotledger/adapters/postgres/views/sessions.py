"""The sessions read model in PostgreSQL.

Its migration also creates the sign-in limiter's table: `iotledger migrate`
creates the tables that views name in `ddl`, and identity owns both. The
limiter's table is not in `tables`, so a rebuild never wipes live counters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import class_row

from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.adapters.security.ratelimit import LOGIN_ATTEMPTS_DDL
from iotledger.projections.sessions import Ending, SessionRows, SessionSummary

_COLUMNS = (
    "id, user_id, issued_at, expires_at, refreshed_at, refreshes, revoked_at, revoked_because"
)


class PostgresSessionRows(SessionRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def add(self, session: SessionSummary) -> None:
        self.cursor.execute(
            "INSERT INTO sessions (id, user_id, issued_at, expires_at) VALUES (%s, %s, %s, %s)",
            (session.id, session.user_id, session.issued_at, session.expires_at),
        )

    def refreshed(self, session_id: UUID, at: datetime, expires_at: datetime) -> None:
        self.cursor.execute(
            "UPDATE sessions SET refreshed_at = %s, expires_at = %s, refreshes = refreshes + 1"
            " WHERE id = %s",
            (at, expires_at, session_id),
        )

    def revoked(self, session_id: UUID, at: datetime, because: Ending) -> None:
        self.cursor.execute(
            "UPDATE sessions SET revoked_at = %s, revoked_because = %s WHERE id = %s",
            (at, because, session_id),
        )


class PostgresSessionView(PostgresView[SessionRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS sessions ("
        " id uuid PRIMARY KEY,"
        " user_id uuid NOT NULL,"
        " issued_at timestamptz NOT NULL,"
        " expires_at timestamptz NOT NULL,"
        " refreshed_at timestamptz,"
        " refreshes integer NOT NULL DEFAULT 0,"
        " revoked_at timestamptz,"
        " revoked_because text)",
        "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id, issued_at)",
        *LOGIN_ATTEMPTS_DDL,
    )
    tables = ("sessions",)

    def rows(self, cursor: Cursor[Any]) -> SessionRows:
        return PostgresSessionRows(cursor)

    def of_user(self, user_id: UUID) -> list[SessionSummary]:
        """The user's sessions, newest sign-in first."""
        with (
            self.pool.connection() as conn,
            conn.cursor(row_factory=class_row(SessionSummary)) as c,
        ):
            sessions: list[SessionSummary] = c.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE user_id = %s ORDER BY issued_at DESC",
                (user_id,),
            ).fetchall()
            return sessions
