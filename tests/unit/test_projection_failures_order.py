"""A runner's health never runs ahead of what it recorded: `/ready` (the runner's health)
and `iotledger projections status` (the recorded row) tell the same story."""

from __future__ import annotations

from iotledger.projections.base import Nowhere
from iotledger.projections.failures import EventFailure, Failure, Failures, ProjectionState


class Recording(Nowhere):
    """Records failures in memory, and notes what the runner's health said meanwhile."""

    def __init__(self) -> None:
        self.failures: Failures | None = None
        self.seen: list[tuple[ProjectionState, int]] = []

    def record_failure(self, failure: Failure) -> None:
        assert self.failures is not None
        health = self.failures.health("devices", 0, True)
        self.seen.append((health.state, health.failures))


def test_health_shows_a_failure_only_once_it_is_recorded() -> None:
    view = Recording()
    failures = view.failures = Failures("devices", view, stop_after=3)
    for _ in range(3):
        failures.on_event(EventFailure(7, "DataError: NUL"))
    # While each failure was being recorded, health still showed the one before.
    assert view.seen == [
        (ProjectionState.RUNNING, 0),
        (ProjectionState.FAILING, 1),
        (ProjectionState.FAILING, 2),
    ]
    health = failures.health("devices", 6, True)
    assert (health.state, health.failures, health.failing_at) == (ProjectionState.STOPPED, 3, 7)
