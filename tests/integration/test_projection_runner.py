"""Projections survive what production throws at them, and lose and duplicate nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from iotledger.bootstrap import App
from iotledger.domain.sessions import Session
from iotledger.maintenance import rebuild
from iotledger.projections.base import LostRace
from iotledger.projections.runner import ProjectionRunner
from iotledger.projections.sessions import SessionProjection
from iotledger.projections.users import UserProjection
from tests.support.ledger import append_users, event_count
from tests.support.processes import wait_until


def users_position(services: App) -> int:
    return services.views.users.position() or 0


def test_a_killed_listen_connection_does_not_stop_the_projection(quiet_services: App) -> None:
    services = quiet_services
    with services.projections.running(["users"]) as (runner,):
        append_users(services, 3)
        wait_until(lambda: users_position(services) == event_count(services))
        with psycopg.connect(str(services.database_url), autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'iotledger-feed-users'"
            ).fetchall()
        assert killed, "the runner had no LISTEN connection to kill"
        append_users(services, 3)
        wait_until(lambda: users_position(services) == event_count(services))
        assert len(services.views.users.all_users()) == 6
        assert runner.restarts >= 1


def test_a_rebuild_reproduces_the_read_model_exactly(quiet_services: App) -> None:
    services = quiet_services
    append_users(services, 40)
    with services.projections.running(["users"]):
        wait_until(lambda: users_position(services) == event_count(services))
    before = services.views.users.all_users()
    progress: list[tuple[str, int, int]] = []
    rebuild(services, ["users"], lambda *step: progress.append(step))
    assert services.views.users.all_users() == before
    assert users_position(services) == event_count(services)
    assert progress[-1] == ("users", event_count(services), event_count(services))


def test_a_rebuild_refuses_while_the_projection_runs_elsewhere(quiet_services: App) -> None:
    with quiet_services.projections.running(["users"]) as (runner,):
        assert runner.active.wait(10)
        with pytest.raises(Exception, match="running in another process"):
            rebuild(quiet_services, ["users"], lambda *_: None)


class Counted(UserProjection):
    """The users projection, paced, counting its batches."""

    pace = 1.0

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self.batches = 0

    def process(self, batch: Any, after: int | None, position: int) -> None:
        self.batches += 1
        super().process(batch, after, position)


def test_a_paced_projection_applies_a_stream_in_few_batches_and_a_lone_event_at_once(
    quiet_services: App,
) -> None:
    services = quiet_services
    projection = Counted(services.views.users)
    runner = ProjectionRunner(projection, services.projections.feed)
    runner.start()
    try:
        append_users(services, 1)
        wait_until(lambda: users_position(services) == event_count(services))
        time.sleep(Counted.pace * 1.5)  # a quiet spell
        started = time.monotonic()
        append_users(services, 1)
        wait_until(lambda: users_position(services) == event_count(services), interval=0.005)
        assert time.monotonic() - started < Counted.pace / 2  # not held back by the pace
        batches, started = projection.batches, time.monotonic()
        while time.monotonic() - started < 2.5 * Counted.pace:  # a steady stream
            append_users(services, 1)
            time.sleep(0.02)
        wait_until(lambda: users_position(services) == event_count(services))
        assert projection.batches - batches <= 4  # about 100 appends over 2.5 paces
        assert len(services.views.users.all_users()) == event_count(services) // 3
    finally:
        runner.stop()


def test_a_runner_that_lost_its_projection_to_another_cannot_apply_a_batch_twice(
    quiet_services: App,
) -> None:
    """The old runner (cut off from its lock, not knowing it yet) and its successor start
    from one position; the batch that commits second is refused, with all its rows."""
    services, now = quiet_services, datetime.now(UTC)
    session = Session(uuid4(), uuid4(), "token-0", now, now + timedelta(days=1), by="test")
    services.ledger.save(session)
    old, new = (
        ProjectionRunner(SessionProjection(services.views.sessions), services.projections.feed)
        for _ in "ab"
    )

    def refresh(n: int) -> None:
        session.rotate(f"token-{n - 1}", f"token-{n}", now, now + timedelta(days=1))
        services.ledger.save(session)

    with services.projections.feed() as feed:
        old.catch_up(feed)
        new.position = old.position  # the successor takes over before the old one's batch
        refresh(1)
        old.catch_up(feed)  # the old runner applies the first refresh
        refresh(2)
        with pytest.raises(LostRace):
            new.catch_up(feed)  # the first refresh again, and the second
    assert [s.refreshes for s in services.views.sessions.of_user(session.user_id)] == [1]
