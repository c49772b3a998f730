"""A view never wedges silently on one event: it stops there, visibly, until an operator
resumes it or skips that one event; every other projection goes on.

The poison events here are written straight into the event store, past the domain's
check at the edge (`LedgerService.append`), as a bug or an older version could have.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from iotledger.adapters.postgres.projection_failures import transient
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.bootstrap import App
from iotledger.domain.devices import FLEET, Device
from iotledger.maintenance import rebuild, resume_projection, skip_event
from iotledger.projections.failures import ProjectionState
from iotledger.projections.runner import ProjectionRunner
from iotledger.projections.users import UserProjection
from iotledger.settings import SettingsError
from tests.support.ledger import append_users, event_count, save_device
from tests.support.processes import wait_until


@pytest.fixture
def running(quiet_services: App) -> Iterator[dict[str, ProjectionRunner]]:
    """The users and devices projections, running, polling fast for an operator's answer."""
    runners = {
        name: ProjectionRunner(
            PROJECTIONS[name][0](quiet_services.views.by_name()[name]),
            quiet_services.projections.feed,
            transient=transient,
            poll=0.1,
        )
        for name in ("users", "devices")
    }
    for runner in runners.values():
        runner.start()
    yield runners
    for runner in runners.values():
        runner.stop()


def shown(services: App, device_id: UUID) -> bool:
    return services.views.devices.device(device_id, FLEET) is not None


def state_of(services: App, name: str) -> Any:
    return next(row for row in services.projections.statuses() if row.name == name)


def stopped_at(runner: ProjectionRunner, position: int) -> bool:
    health = runner.health()
    return health.state == ProjectionState.STOPPED and health.failing_at == position


def test_a_poison_event_stops_its_projection_visibly_and_the_others_go_on(
    quiet_services: App, running: dict[str, ProjectionRunner]
) -> None:
    services = quiet_services
    before, _ = save_device(services, "good")
    poison, at = save_device(services, "bad", metadata={"note": "a\x00b"})
    after, _ = save_device(services, "later")
    append_users(services, 2)
    wait_until(lambda: stopped_at(running["devices"], at), timeout=20)
    wait_until(lambda: (services.views.users.position() or 0) == event_count(services))
    assert len(services.views.users.all_users()) == 2  # another projection went on
    assert shown(services, before)
    assert not shown(services, poison)
    assert not shown(services, after)
    row = state_of(services, "devices")
    assert (row.state, row.failing_at, row.position) == ("stopped", at, at - 1)
    assert "\\u0000" in (row.error or "") or "NUL" in (row.error or "")
    assert state_of(services, "users").state == "running"
    health = running["devices"].health()
    assert health.failures >= 3
    assert health.error == row.error


def test_resume_with_nothing_changed_stops_again_and_skip_goes_past_that_one_event(
    quiet_services: App, running: dict[str, ProjectionRunner]
) -> None:
    services = quiet_services
    runner = running["devices"]
    _, at = save_device(services, "bad\x00")
    after, _ = save_device(services, "later")
    wait_until(lambda: stopped_at(runner, at), timeout=20)
    failures = runner.health().failures
    assert resume_projection(services, "devices").position == at
    wait_until(lambda: runner.health().failures >= failures + 3 and stopped_at(runner, at))
    assert state_of(services, "devices").state == "stopped"
    with pytest.raises(SettingsError, match=f"fails at {at}, not at {at + 1}"):
        skip_event(services, "devices", at + 1)
    assert skip_event(services, "devices", at)
    wait_until(lambda: shown(services, after))
    assert runner.health().state == ProjectionState.RUNNING
    assert state_of(services, "devices").state == "running"
    newest, _ = save_device(services, "newest")
    wait_until(lambda: shown(services, newest))


def test_a_rebuild_leaves_out_the_events_operators_skipped(
    quiet_services: App, running: dict[str, ProjectionRunner]
) -> None:
    services = quiet_services
    _, at = save_device(services, "bad", device_type="x\x00")
    after, _ = save_device(services, "later")
    wait_until(lambda: stopped_at(running["devices"], at), timeout=20)
    skip_event(services, "devices", at)
    wait_until(lambda: shown(services, after))
    running["devices"].stop()
    rebuild(services, ["devices"], lambda *_: None)
    assert shown(services, after)
    row = state_of(services, "devices")  # no failure recorded (and no runner: "stopped")
    assert (row.failing_at, row.error) == (None, None)


def test_a_rebuild_that_meets_a_poison_event_stops_there_and_says_how_to_skip_it(
    quiet_services: App,
) -> None:
    services = quiet_services
    good, _ = save_device(services, "good")
    _, at = save_device(services, "bad\x00")
    with pytest.raises(SettingsError, match=f"skip devices --position {at}"):
        rebuild(services, ["devices"], lambda *_: None)
    assert shown(services, good)
    row = state_of(services, "devices")
    assert (row.state, row.failing_at, row.position) == ("stopped", at, at - 1)


def test_an_event_that_cannot_be_decoded_stops_its_projection_at_its_position(
    quiet_services: App, running: dict[str, ProjectionRunner]
) -> None:
    services = quiet_services
    good, _ = save_device(services, "good")
    topic = f"{Device.Registered.__module__}:{Device.Registered.__qualname__}"
    with psycopg.connect(str(services.database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO iotledger_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, 1, %s, %s)",
            (uuid4(), topic, b'{"name": 1}'),
        )
    at = event_count(services)
    later, _ = save_device(services, "later")
    wait_until(lambda: stopped_at(running["devices"], at), timeout=20)
    assert shown(services, good)
    assert not shown(services, later)
    assert "cannot be decoded" in (state_of(services, "devices").error or "")
    skip_event(services, "devices", at)
    wait_until(lambda: shown(services, later))


class Flaky(UserProjection):
    """The users projection, whose first attempts lose their connection."""

    def __init__(self, view: Any, losses: int) -> None:
        super().__init__(view)
        self.losses = losses

    def process(self, batch: Any, after: int | None, position: int) -> None:
        if self.losses > 0:
            self.losses -= 1
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        super().process(batch, after, position)


def test_a_transient_error_is_retried_for_ever_and_never_stops_the_projection(
    quiet_services: App,
) -> None:
    services = quiet_services
    append_users(services, 3)
    projection = Flaky(services.views.users, losses=5)
    runner = ProjectionRunner(projection, services.projections.feed, transient=transient)
    states: list[ProjectionState] = []
    runner.start()
    try:
        wait_until(
            lambda: (
                states.append(runner.health().state) or len(services.views.users.all_users()) == 3
            )
        )
        wait_until(lambda: runner.health().state == ProjectionState.RUNNING)
        assert runner.health().failures >= 5
        assert state_of(services, "users").state == "running"
    finally:
        runner.stop()
    assert ProjectionState.FAILING in states
    assert ProjectionState.STOPPED not in states
