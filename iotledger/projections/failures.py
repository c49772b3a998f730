"""What a projection does with an event it cannot apply: it stops there, loudly.

A projection never skips an event on its own. When applying one fails for a reason
that is not passing (its runner's `transient` says which are: a lost connection, a
restarting database), the runner applies the events before it, records the failure
at that event's position, and tries again a few times; if it still fails, the
projection is `stopped` at that position until an operator says what to do:
`iotledger projections resume NAME` (try again, after a fix) or
`iotledger projections skip NAME --position N` (leave that one event out, on
purpose; the skip is recorded, so a rebuild leaves it out too). Every other
projection goes on. See docs/operations.md.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ProjectionState(StrEnum):
    RUNNING = "running"
    STANDBY = "standby"
    """Another process runs this projection; this runner waits to take over."""
    FAILING = "failing"
    """Its last attempt failed; it tries again by itself."""
    STOPPED = "stopped"
    """It cannot apply the event at `position`; it waits for an operator."""


class Failure(msgspec.Struct, frozen=True):
    """A projection's recorded failure on one event, as any process can read it."""

    state: ProjectionState
    position: int
    """The log position of the event it cannot apply."""
    error: str
    attempts: int


class ProjectionHealth(msgspec.Struct, frozen=True):
    """How one projection's runner is doing (for `/ready` and the metrics)."""

    name: str
    state: ProjectionState
    position: int | None
    failures: int
    """Failed attempts since the runner started (`iotledger_projection_failures_total`)."""
    failing_at: int | None = None
    error: str | None = None


class EventFailure(Exception):
    """The event at `position` cannot be applied (or read); `error` says why."""

    def __init__(self, position: int, error: str) -> None:
        super().__init__(f"the event at position {position} cannot be applied: {error}")
        self.position = position
        self.error = error


def describe(error: BaseException, limit: int = 1000) -> str:
    """One line about an error, as text PostgreSQL can store (it goes in a table)."""
    text = f"{type(error).__name__}: {error}".strip().replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]
