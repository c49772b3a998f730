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

import logging
import threading
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from iotledger.projections.base import View

log = logging.getLogger(__name__)


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


class Failures:
    """One runner's failures: counted, recorded where every process sees them, logged."""

    def __init__(self, name: str, view: View[Any], stop_after: int) -> None:
        self.name = name
        self.view = view
        self.stop_after = stop_after
        self.count = 0
        self.pinned: Failure | None = None
        """The failure on one event, as recorded."""
        self.trouble: str | None = None
        """The last transient error, until a batch goes through."""

    def on_transient(self, error: Exception) -> None:
        self.count += 1
        self.trouble = describe(error)

    def on_event(self, failure: EventFailure, *, stop: bool = False) -> None:
        """`failing`, or `stopped` once it failed `stop_after` times in a row at that
        event (at once with `stop`); recorded and logged either way.

        Recorded first, then shown in this runner's health (read by other threads), so
        that whoever sees the new state in `health` finds it recorded too."""
        last = self.pinned
        again = last is not None and last.position == failure.position
        attempts = last.attempts + 1 if last is not None and again else 1
        stopped = stop or attempts >= self.stop_after
        state = ProjectionState.STOPPED if stopped else ProjectionState.FAILING
        pinned = Failure(state, failure.position, failure.error, attempts)
        try:
            self.view.record_failure(pinned)
        except Exception:
            log.exception("projection %s: its failure could not be recorded", self.name)
        self.pinned = pinned
        self.count += 1
        if stopped:
            log.error(
                "projection %s STOPPED at position %d: %s. It waits for an operator: fix the"
                " cause, then `iotledger projections resume %s`; or leave this one event out"
                " with `iotledger projections skip %s --position %d`",
                *(self.name, failure.position, failure.error),
                *(self.name, self.name, failure.position),
            )
        else:
            log.warning("projection %s failed (attempt %d): %s", self.name, attempts, failure)

    def passed(self, position: int | None) -> None:
        """The runner caught up to `position` without an error: what failed before it
        is over."""
        self.trouble = None
        if self.pinned is not None and position is not None and position >= self.pinned.position:
            self.view.clear_failure()
            log.info("projection %s is past position %d", self.name, self.pinned.position)
            self.pinned = None

    def wait_while_stopped(self, stopping: threading.Event, poll: float) -> bool:
        """Wait while the projection is recorded as stopped (by this or another process);
        False if `stopping` is set meanwhile."""
        while True:
            self.pinned = self.view.failure()
            if self.pinned is None or self.pinned.state != ProjectionState.STOPPED:
                return True
            if stopping.wait(poll):
                return False

    def health(self, name: str, position: int | None, active: bool) -> ProjectionHealth:
        pinned = self.pinned
        if pinned is not None:
            state, error = pinned.state, pinned.error
        elif self.trouble is not None:
            state, error = ProjectionState.FAILING, self.trouble
        else:
            state = ProjectionState.RUNNING if active else ProjectionState.STANDBY
            error = None
        failing_at = None if pinned is None else pinned.position
        return ProjectionHealth(name, state, position, self.count, failing_at, error)
