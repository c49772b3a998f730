"""Operator commands on the read models: rebuild them, and answer a projection stopped
at an event it cannot apply (resume it, or skip that event). How far each one is:
`adapters.postgres.projection_status`."""

from __future__ import annotations

from collections.abc import Callable

from iotledger.adapters.postgres.projection_failures import recorded_failures, resume, skip
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.bootstrap import App
from iotledger.projections.failures import EventFailure, Failure
from iotledger.projections.runner import EventFeed, ProjectionRunner
from iotledger.settings import SettingsError

Progress = Callable[[str, int, int], None]


def check_names(names: list[str]) -> list[str]:
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise SettingsError(
            f"projection: unknown {', '.join(unknown)} (known: {', '.join(PROJECTIONS)})"
        )
    return names or list(PROJECTIONS)


def rebuild(app: App, names: list[str], progress: Progress) -> None:
    """Drop each read model and replay it from the event store (leaving out the events
    operators skipped); a projection that meets an event it cannot apply stops there."""
    for runner in app.projections.runners(check_names(names)):
        with app.projections.feed() as feed:
            if not feed.hold(runner.name):
                raise SettingsError(
                    f"projection {runner.name}: it is running in another process; "
                    "stop `iotledger serve` (or its projections role) before a rebuild"
                )
            runner.projection.view.wipe()
            runner.position = None
            head = feed.head() or 0
            progress(runner.name, 0, head)
            _replay(runner, feed, head, progress)
            progress(runner.name, head, head)


def _replay(runner: ProjectionRunner, feed: EventFeed, head: int, progress: Progress) -> None:
    runner.prepare()
    try:
        while runner.catch_up(feed):
            progress(runner.name, runner.position or 0, head)
    except EventFailure as failure:
        runner.failures.on_event(failure, stop=True)
        raise SettingsError(
            f"projection {runner.name} stopped at position {failure.position}: {failure.error}"
            f" (after a fix, rebuild again; or `iotledger projections skip {runner.name}"
            f" --position {failure.position}` leaves that one event out)"
        ) from None


def resume_projection(app: App, name: str) -> Failure:
    """Let a failing or stopped projection try its event again; the failure it had."""
    failure = resume(app.pool, check_names([name])[0])
    if failure is None:
        raise SettingsError(f"projection {name}: it has no recorded failure to resume from")
    return failure


def skip_event(app: App, name: str, position: int) -> str:
    """Move a failing projection past the one event it cannot apply; the error it had."""
    error = skip(app.pool, check_names([name])[0], position)
    if error is None:
        failure = recorded_failures(app.pool).get(name)
        where = "has no recorded failure" if failure is None else f"fails at {failure.position}"
        raise SettingsError(f"projection {name}: nothing skipped, it {where}, not at {position}")
    return error
