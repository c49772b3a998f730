"""Connections to PostgreSQL, and the one-time creation of every table."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool

from iotledger.adapters.postgres.connections import MAINTENANCE, Bounds, connection_string
from iotledger.adapters.postgres.views.base import FAILURES_DDL, TRACKING_DDL
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.application.ledger import Ledger
from iotledger.settings import DatabaseUrl, SettingsError

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x10716D6E  # one advisory lock: migrations never run concurrently


def check_reachable(url: DatabaseUrl, bounds: Bounds) -> None:
    """Fail start-up with one line when the database cannot be reached."""
    try:
        with psycopg.connect(connection_string(url, "check", bounds)) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SettingsError(
            f"IOTLEDGER_DATABASE_URL: cannot connect to {url.redacted()}: {reason}"
        ) from None


def open_pool(conninfo: str, size: int, timeout: float) -> ConnectionPool[Any]:
    """At most `size` connections, one kept open while idle; a caller waits at most
    `timeout` seconds for one (then PoolTimeout, answered 503)."""
    pool: ConnectionPool[Any] = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True},
        configure=_configure,
        open=True,
        timeout=timeout,
    )
    return pool


def _configure(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(msgspec.json.decode, conn)  # jsonb rows (payloads): several times faster


def migrate(url: DatabaseUrl, ledger: Ledger) -> None:
    """Create or upgrade every table, once, under a cluster-wide advisory lock.

    Its connection has the long bounds of maintenance: it may wait for another process's
    migration, and build an index on a large table. The event store's tables are created
    on the ledger's connections, with the ledger's bounds."""
    with psycopg.connect(connection_string(url, "migrate", MAINTENANCE), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            ledger.recorder.create_table()  # type: ignore[attr-defined]
            for statement in (TRACKING_DDL, *FAILURES_DDL):
                conn.execute(statement)
            for _, view_class in PROJECTIONS.values():
                for statement in view_class.ddl:
                    conn.execute(statement)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    log.info("database schema is up to date")


def schema_exists(url: DatabaseUrl, bounds: Bounds) -> bool:
    with psycopg.connect(connection_string(url, "check", bounds), autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('projection_tracking') IS NOT NULL").fetchone()
    return bool(row and row[0])
