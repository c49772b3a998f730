"""The users read model in PostgreSQL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import class_row

from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.domain.users import normalise
from iotledger.projections.users import UserRows, UserSummary

_COLUMNS = "id, username, email, password_hash, registered_at"


class PostgresUserRows(UserRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def add(self, user: UserSummary) -> None:
        self.cursor.execute(
            "INSERT INTO users (id, username, username_key, email, email_key,"
            " password_hash, registered_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                user.id,
                user.username,
                normalise(user.username),
                user.email,
                None if user.email is None else normalise(user.email),
                user.password_hash,
                user.registered_at,
            ),
        )

    def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        self.cursor.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id)
        )


class PostgresUserView(PostgresView[UserRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS users ("
        " id uuid PRIMARY KEY,"
        " username text NOT NULL,"
        " username_key text NOT NULL UNIQUE,"
        " email text,"
        " email_key text UNIQUE,"
        " password_hash text NOT NULL,"
        " registered_at timestamptz NOT NULL)",
    )
    tables = ("users",)

    def rows(self, cursor: Cursor[Any]) -> UserRows:
        return PostgresUserRows(cursor)

    def _find(self, column: str, value: object) -> UserSummary | None:
        with self.pool.connection() as conn, conn.cursor(row_factory=class_row(UserSummary)) as c:
            c.execute(f"SELECT {_COLUMNS} FROM users WHERE {column} = %s", (value,))
            found: UserSummary | None = c.fetchone()
            return found

    def by_id(self, user_id: UUID) -> UserSummary | None:
        return self._find("id", user_id)

    def by_username(self, username: str) -> UserSummary | None:
        return self._find("username_key", normalise(username))

    def by_email(self, email: str) -> UserSummary | None:
        return self._find("email_key", normalise(email))

    def all_users(self) -> list[UserSummary]:
        with self.pool.connection() as conn, conn.cursor(row_factory=class_row(UserSummary)) as c:
            users: list[UserSummary] = c.execute(
                f"SELECT {_COLUMNS} FROM users ORDER BY id"
            ).fetchall()
            return users
