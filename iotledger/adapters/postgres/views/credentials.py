"""The credentials read model in PostgreSQL: `credentials` and `gateways`.

`credentials` is the table other enforcers read (Mosquitto's dynamic security):
one row per working credential, `username` its key, `kind` `device` or
`gateway`, `subject_id` the device's or gateway's id, `secret_hash` the
secret's SHA-256 (hex) and `issued_at`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import class_row

from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.projections.credentials import Credential, CredentialRows, GatewaySummary

_CREDENTIAL = "username, kind, subject_id, secret_hash, issued_at"
_GATEWAY = "id, owner, name, username, issued_at"


class PostgresCredentialRows(CredentialRows):
    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor

    def put(self, credential: Credential) -> None:
        self.cursor.execute(
            f"INSERT INTO credentials ({_CREDENTIAL}) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE"
            " SET secret_hash = excluded.secret_hash, issued_at = excluded.issued_at",
            (
                credential.username,
                credential.kind,
                credential.subject_id,
                credential.secret_hash,
                credential.issued_at,
            ),
        )

    def remove(self, username: str) -> None:
        self.cursor.execute("DELETE FROM credentials WHERE username = %s", (username,))

    def add_gateway(self, gateway: GatewaySummary) -> None:
        self.cursor.execute(
            f"INSERT INTO gateways ({_GATEWAY}) VALUES (%s, %s, %s, %s, %s)",
            (gateway.id, gateway.owner, gateway.name, gateway.username, gateway.issued_at),
        )

    def remove_gateway(self, gateway_id: UUID) -> None:
        self.cursor.execute("DELETE FROM gateways WHERE id = %s", (gateway_id,))


class PostgresCredentialView(PostgresView[CredentialRows]):
    ddl = (
        "CREATE TABLE IF NOT EXISTS credentials ("
        " username text PRIMARY KEY,"
        " kind text NOT NULL CHECK (kind IN ('device', 'gateway')),"
        " subject_id uuid NOT NULL,"
        " secret_hash text NOT NULL,"
        " issued_at timestamptz NOT NULL)",
        "CREATE TABLE IF NOT EXISTS gateways ("
        " id uuid PRIMARY KEY,"
        " owner uuid NOT NULL,"
        " name text NOT NULL,"
        " username text NOT NULL,"
        " issued_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS gateways_by_owner ON gateways (owner, issued_at)",
    )
    tables = ("credentials", "gateways")

    def rows(self, cursor: Cursor[Any]) -> CredentialRows:
        return PostgresCredentialRows(cursor)

    def find(self, username: str) -> Credential | None:
        with (
            self.pool.connection() as conn,
            conn.cursor(row_factory=class_row(Credential)) as c,
        ):
            query = f"SELECT {_CREDENTIAL} FROM credentials WHERE username = %s"
            found: Credential | None = c.execute(query, (username,)).fetchone()
            return found

    def every(self) -> list[Credential]:
        """Every credential that works now (what dynsec reconciles the broker with)."""
        with (
            self.pool.connection() as conn,
            conn.cursor(row_factory=class_row(Credential)) as c,
        ):
            credentials: list[Credential] = c.execute(
                f"SELECT {_CREDENTIAL} FROM credentials ORDER BY username"
            ).fetchall()
            return credentials

    def fingerprint(self) -> tuple[int, datetime | None]:
        """Changes with every issue, rotation (a newer `issued_at`) and revocation (one
        fewer row): a cheap question asked every second."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*), max(issued_at) FROM credentials").fetchone()
            return (row[0], row[1]) if row else (0, None)

    def gateways_of(self, owner: UUID) -> list[GatewaySummary]:
        """The owner's gateways that are not revoked, oldest first."""
        with (
            self.pool.connection() as conn,
            conn.cursor(row_factory=class_row(GatewaySummary)) as c,
        ):
            query = f"SELECT {_GATEWAY} FROM gateways WHERE owner = %s ORDER BY issued_at, id"
            gateways: list[GatewaySummary] = c.execute(query, (owner,)).fetchall()
            return gateways
