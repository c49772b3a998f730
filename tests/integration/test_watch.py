"""How long a request waits for the read models it needs: IOTLEDGER_READ_WAIT_TIMEOUT."""

from __future__ import annotations

import asyncio
import time

from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.bootstrap import App

FAR_AHEAD = 10**15


def test_the_wait_for_a_position_not_reached_lasts_the_configured_timeout(
    services: App,
) -> None:
    for timeout in (0.0, 0.3):
        watch = ProjectionWatch(services.pool, str(services.database_url), timeout)
        started = time.monotonic()
        reached = asyncio.run(watch.wait(FAR_AHEAD, "readings"))
        waited = time.monotonic() - started
        assert reached is False
        assert timeout <= waited < timeout + 0.25


def test_a_position_already_applied_needs_no_wait(services: App) -> None:
    assert asyncio.run(services.watch.wait(0, "readings")) is True
