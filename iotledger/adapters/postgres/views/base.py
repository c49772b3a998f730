"""PostgreSQL views: read-model tables that commit their rows with their position.

Every view shares one tracking table, `projection_tracking`, one row per
projection. A unit of work writes the view's rows, moves the row from the position
its batch started after to the new one, and notifies `iotledger_projections`, so
readers in any process learn the new position the moment it commits.

Only from where it started: the advisory lock keeps one runner per projection at
work, but a runner learns that it lost its lock (its feed connection cut) only at
its next statement there, and a standby may take over meanwhile. The old runner's
last batch and the new runner's first may then overlap; whichever commits second
finds the row moved, and its whole batch rolls back (`LostRace`) instead of
applying events twice (not every view is idempotent: a session's `refreshes`
counts). Its runner starts again from the committed position.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from psycopg import Cursor
from psycopg_pool import ConnectionPool

from iotledger.projections.base import LostRace, View
from iotledger.projections.failures import Failure, ProjectionState

W = TypeVar("W")

PROJECTIONS_CHANNEL = "iotledger_projections"

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name text PRIMARY KEY,"
    " position bigint NOT NULL)"
)
# Beside the positions: the event each failing projection cannot apply, and the events
# operators ordered projections to skip (iotledger.adapters.postgres.projection_failures).
FAILURES_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_failures ("
    " name text PRIMARY KEY,"
    " state text NOT NULL,"
    " position bigint NOT NULL,"
    " error text NOT NULL,"
    " attempts integer NOT NULL,"
    " since timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS projection_skips ("
    " name text NOT NULL,"
    " position bigint NOT NULL,"
    " error text NOT NULL,"
    " skipped_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (name, position))",
)
SELECT_FAILURES = "SELECT name, state, position, error, attempts FROM projection_failures"
_RECORD_FAILURE = (
    "INSERT INTO projection_failures (name, state, position, error, attempts)"
    " VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (name) DO UPDATE SET state = excluded.state, position = excluded.position,"
    " error = excluded.error, attempts = excluded.attempts, updated_at = now(),"
    " since = CASE WHEN projection_failures.position = excluded.position"
    " THEN projection_failures.since ELSE now() END"
)

# One round trip: move the position from `after` (NULL: no row yet) to the new one,
# notify, and let the commit go without waiting for its WAL flush (see
# `PostgresView.unit_of_work`). No row: a lost race.
_ADVANCE = (
    "WITH advanced AS ("
    " INSERT INTO projection_tracking (name, position) VALUES (%(name)s, %(position)s)"
    " ON CONFLICT (name) DO UPDATE SET position = excluded.position"
    " WHERE projection_tracking.position = %(after)s"
    " RETURNING position)"
    " SELECT pg_notify(%(channel)s, %(name)s || ':' || position),"
    " set_config('synchronous_commit', 'off', true) FROM advanced"
)


class PostgresView(View[W]):
    """A view whose rows live in PostgreSQL tables named in `tables`."""

    ddl: ClassVar[tuple[str, ...]]
    tables: ClassVar[tuple[str, ...]]

    def __init__(self, pool: ConnectionPool[Any], name: str) -> None:
        self.pool = pool
        self.name = name

    @abstractmethod
    def rows(self, cursor: Cursor[Any]) -> W:
        """The writer of this view's rows inside one transaction."""

    def position(self) -> int | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT position FROM projection_tracking WHERE name = %s", (self.name,)
            ).fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def unit_of_work(self, after: int | None, position: int) -> Iterator[W]:
        """The view's rows and its position, in one transaction.

        The commit does not wait for its WAL to reach the disk (`synchronous_commit`
        off, for this transaction only). A view is made from the log, and its rows
        and position commit or vanish together: should PostgreSQL crash within the
        fraction of a second before the flush, the view is simply back at an earlier
        position, and its runner applies those events again. The log's own appends
        keep the durable commit: they are what was acknowledged.
        """
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield self.rows(cursor)
            advance = {
                "name": self.name,
                "after": after,
                "position": position,
                "channel": PROJECTIONS_CHANNEL,
            }
            if cursor.execute(_ADVANCE, advance).fetchone() is None:
                raise LostRace(f"projection {self.name} is no longer at {after}")

    def wipe(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            for table in self.tables:
                conn.execute(f"TRUNCATE {table}")  # names are ours, never input
            conn.execute("DELETE FROM projection_tracking WHERE name = %s", (self.name,))
            conn.execute("DELETE FROM projection_failures WHERE name = %s", (self.name,))

    def failure(self) -> Failure | None:
        with self.pool.connection() as conn:
            row = conn.execute(f"{SELECT_FAILURES} WHERE name = %s", (self.name,)).fetchone()
        return None if row is None else failure_of_row(row)

    def record_failure(self, failure: Failure) -> None:
        values = (self.name, failure.state.value, failure.position, failure.error, failure.attempts)
        with self.pool.connection() as conn:
            conn.execute(_RECORD_FAILURE, values)

    def clear_failure(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM projection_failures WHERE name = %s", (self.name,))

    def skipped(self) -> frozenset[int]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT position FROM projection_skips WHERE name = %s", (self.name,)
            ).fetchall()
        return frozenset(int(row[0]) for row in rows)


def failure_of_row(row: Sequence[Any]) -> Failure:
    """A failure from a row of `SELECT_FAILURES` (its first column is the name)."""
    return Failure(ProjectionState(row[1]), int(row[2]), str(row[3]), int(row[4]))


def tracking_positions(pool: ConnectionPool[Any]) -> dict[str, int]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT name, position FROM projection_tracking").fetchall()
    return {str(name): int(position) for name, position in rows}
