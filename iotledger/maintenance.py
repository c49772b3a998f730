"""Operator commands on the read models: rebuild them (how far they are:
`adapters.projection_status`)."""

from __future__ import annotations

from collections.abc import Callable

from iotledger.adapters.catalog import PROJECTIONS
from iotledger.adapters.settings import SettingsError
from iotledger.bootstrap import Services

Progress = Callable[[str, int, int], None]


def check_names(names: list[str]) -> list[str]:
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise SettingsError(
            f"projection: unknown {', '.join(unknown)} (known: {', '.join(PROJECTIONS)})"
        )
    return names or list(PROJECTIONS)


def rebuild(services: Services, names: list[str], progress: Progress) -> None:
    """Drop each read model and replay it from the event store."""
    for runner in services.runners(check_names(names)):
        with services.feed() as feed:
            if not feed.hold(runner.name):
                raise SettingsError(
                    f"projection {runner.name}: it is running in another process; "
                    "stop `iotledger serve` (or its projections role) before a rebuild"
                )
            runner.projection.view.wipe()
            runner.position = None
            head = feed.head() or 0
            progress(runner.name, 0, head)
            while runner.catch_up(feed):
                progress(runner.name, runner.position or 0, head)
            progress(runner.name, head, head)
