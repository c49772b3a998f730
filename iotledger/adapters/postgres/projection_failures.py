"""The operator's side of failing projections: what is failing, resume, skip.

A runner records the event its projection cannot apply in `projection_failures`
(see `iotledger.projections.failures`); any process reads it there. `resume`
deletes the record, so the stopped runner tries again; `skip` moves the projection
past exactly that one event, in one transaction with a row in `projection_skips`,
the lasting record of the decision (a rebuild leaves the same events out).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from iotledger.adapters.postgres.views.base import (
    PROJECTIONS_CHANNEL,
    SELECT_FAILURES,
    failure_of_row,
)
from iotledger.projections.base import LostRace
from iotledger.projections.failures import Failure

log = logging.getLogger(__name__)

_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
    OSError,
    TimeoutError,
    LostRace,
)

# Past the event, in one transaction with the record of the skip; never backwards.
_SKIP = (
    "WITH skipped AS ("
    " DELETE FROM projection_failures WHERE name = %(name)s AND position = %(position)s"
    " RETURNING name, position, error),"
    " recorded AS ("
    " INSERT INTO projection_skips (name, position, error) SELECT * FROM skipped"
    " ON CONFLICT DO NOTHING),"
    " advanced AS ("
    " INSERT INTO projection_tracking (name, position) SELECT name, position FROM skipped"
    " ON CONFLICT (name) DO UPDATE SET position = excluded.position"
    " WHERE projection_tracking.position < excluded.position)"
    " SELECT error, pg_notify(%(channel)s, name || ':' || position) FROM skipped"
)


def transient(error: BaseException) -> bool:
    """A failure that passes by itself (connection lost, database restarting, a race
    with another runner): the supervisor retries it forever. Anything else that fails
    on one event (DataError, IntegrityError, a decoding error) fails there every time."""
    return isinstance(error, _TRANSIENT)


def recorded_failures(pool: ConnectionPool[Any]) -> dict[str, Failure]:
    with pool.connection() as conn:
        rows = conn.execute(SELECT_FAILURES).fetchall()
    return {str(row[0]): failure_of_row(row) for row in rows}


def resume(pool: ConnectionPool[Any], name: str) -> Failure | None:
    """Forget the failure, so that the runner tries the event again; what it was."""
    with pool.connection() as conn:
        row = conn.execute(
            "DELETE FROM projection_failures WHERE name = %s"
            " RETURNING name, state, position, error, attempts",
            (name,),
        ).fetchone()
    if row is None:
        return None
    log.warning("projection %s resumed by the operator at position %s", name, row[2])
    return failure_of_row(row)


def skip(pool: ConnectionPool[Any], name: str, position: int) -> str | None:
    """Move the projection past the one event it failed on, if it failed at `position`;
    the error it had, or None (nothing skipped) when it is not failing there."""
    params = {"name": name, "position": position, "channel": PROJECTIONS_CHANNEL}
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(_SKIP, params).fetchone()
    if row is None:
        return None
    log.warning("projection %s skips the event at position %d by order: %s", name, position, row[0])
    return str(row[0])
