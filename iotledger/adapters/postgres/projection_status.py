"""How far each projection is, and whether it runs: for `projections status`, `/ready`
and `/metrics`, in one read-only statement.

The position comes from `projection_tracking` and the head from the log, so any
process sees every projection wherever it runs. A failure a runner recorded on one
event (`projection_failures`: failing, or stopped until an operator acts) comes
first. Otherwise whether it runs comes from the runner's advisory lock
(`feed.lock_key`): a lock granted in `pg_locks` is a runner at work, in this process
or another; a runner of this process that holds no lock is standing by, or failing
(its supervisor waits before the next attempt).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, cast

import msgspec
import psycopg

from iotledger.adapters.postgres.feed import lock_key
from iotledger.adapters.postgres.views.readings import _LOG as LOG_TABLE
from iotledger.projections.failures import ProjectionHealth

State = Literal["running", "standby", "failing", "stopped"]

_STATUS = (
    "SELECT p.name, coalesce(t.position, 0), h.head, EXISTS ("
    "  SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
    "  AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database"
    "   WHERE datname = current_database())"
    "  AND ((l.classid::bigint << 32) | l.objid::bigint) = p.key),"
    " f.state, f.position, f.error"
    " FROM unnest(%(names)s::text[], %(keys)s::bigint[]) AS p(name, key)"
    f" CROSS JOIN (SELECT coalesce(max(notification_id), 0) AS head FROM {LOG_TABLE}) h"
    " LEFT JOIN projection_tracking t ON t.name = p.name"
    " LEFT JOIN projection_failures f ON f.name = p.name"
    " ORDER BY array_position(%(names)s::text[], p.name)"
)


class ProjectionStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    position: int
    lag: int
    state: State
    failing_at: int | None = None
    """The position of the event it cannot apply, while it is failing or stopped there."""
    error: str | None = None


class LocalRunner(Protocol):
    """What this process knows of its own runner of a projection."""

    def health(self) -> ProjectionHealth:
        """Its state now (failing after an error, until it runs again)."""


def state_of(recorded: str | None, held: bool, local: LocalRunner | None) -> State:
    """A projection's state: the failure recorded on an event if there is one; running
    when a runner holds its lock anywhere; else failing or standby after this process's
    runner; stopped when none runs."""
    if recorded in ("failing", "stopped"):
        return cast(State, recorded)
    if held:
        return "running"
    if local is not None:
        return "failing" if local.health().state == "failing" else "standby"
    return "stopped"


Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


def projection_statuses(
    connect: Connect, names: Collection[str], local: Mapping[str, LocalRunner]
) -> list[ProjectionStatus]:
    """Each projection's position, lag and state; changes nothing."""
    params = {"names": list(names), "keys": [lock_key(name) for name in names]}
    with connect() as conn:
        rows = conn.execute(_STATUS, params).fetchall()
    return [
        ProjectionStatus(
            name,
            position,
            max(head - position, 0),
            state_of(recorded, held, local.get(name)),
            failing_at,
            error,
        )
        for name, position, head, held, recorded, failing_at, error in rows
    ]
