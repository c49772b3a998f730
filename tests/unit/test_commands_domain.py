"""The life of a command, in memory: every path through it, driven by hypothesis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotledger.domain.commands import FINAL, Command, CommandStatus, Delivery
from iotledger.domain.errors import Conflict, InvalidInput

T0 = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
BY = "user:test"


def issued(ttl: float | None = None) -> Command:
    return Command.issue(
        command_id=uuid4(),
        device_id=uuid4(),
        command_name="restart",
        payload={"delay": 5},
        delivery=Delivery.DEVICE,
        expires_at=None if ttl is None else T0 + timedelta(seconds=ttl),
        by=BY,
        at=T0,
    )


Step = tuple[str, Callable[[Command, datetime], None]]

STEPS: list[Step] = [
    ("dispatch", lambda c, at: c.dispatch("system", at)),
    ("acknowledge", lambda c, at: c.acknowledge("device:x", at)),
    ("execute", lambda c, at: c.finish(CommandStatus.EXECUTED, at, {"ok": 1}, "device:x", at)),
    ("fail", lambda c, at: c.finish(CommandStatus.FAILED, at, "boom", "device:x", at)),
    ("expire", lambda c, at: c.expire("system", at)),
    ("cancel", lambda c, at: c.cancel("no longer wanted", BY, at)),
]


@given(
    steps=st.lists(st.sampled_from(STEPS), max_size=8),
    ttl=st.none() | st.floats(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=60), min_size=8, max_size=8),
)
def test_a_command_never_leaves_an_ending_and_every_change_is_an_event(
    steps: list[Step], ttl: float | None, gaps: list[float]
) -> None:
    command = issued(ttl)
    at = T0
    for (_, step), gap in zip(steps, gaps, strict=False):
        at += timedelta(seconds=gap)
        before = (command.status, command.version)
        try:
            step(command, at)
        except Conflict:
            assert (command.status, command.version) == before
            continue
        if before[0] in FINAL:
            assert command.status == before[0]
        assert command.version in (before[1], before[1] + 1)
    events = command.collect_events()
    assert len(events) == command.version
    assert isinstance(events[0], Command.Issued)


@given(ttl=st.floats(min_value=1, max_value=100), late=st.floats(min_value=0, max_value=100))
def test_a_command_past_its_time_to_live_expires_and_is_never_dispatched(
    ttl: float, late: float
) -> None:
    command = issued(ttl)
    at = T0 + timedelta(seconds=ttl + late)
    with pytest.raises(Conflict):
        command.dispatch("system", at)
    command.expire("system", at)
    assert command.status is CommandStatus.EXPIRED
    with pytest.raises(Conflict):
        command.acknowledge("device:x", at)


def test_a_command_cannot_expire_before_its_time_or_once_dispatched() -> None:
    command = issued(ttl=10)
    with pytest.raises(Conflict):
        command.expire("system", T0 + timedelta(seconds=5))
    command.dispatch("system", T0 + timedelta(seconds=5))
    with pytest.raises(Conflict):
        command.expire("system", T0 + timedelta(seconds=20))


def test_reports_that_repeat_or_arrive_late_record_nothing() -> None:
    command = issued()
    command.dispatch("system", T0)
    command.finish(CommandStatus.EXECUTED, T0, {"ok": 1}, "device:x", T0)
    version = command.version
    command.finish(CommandStatus.EXECUTED, T0, {"ok": 1}, "device:x", T0)
    command.acknowledge("device:x", T0)
    assert command.version == version
    with pytest.raises(Conflict):
        command.finish(CommandStatus.FAILED, T0, None, "device:x", T0)


def test_each_dispatch_counts_an_attempt_until_the_device_answers() -> None:
    command = issued()
    command.dispatch("system", T0)
    command.dispatch("system", T0 + timedelta(seconds=1))
    assert command.attempts == 2
    command.acknowledge("device:x", T0)
    with pytest.raises(Conflict):
        command.dispatch("system", T0)


def test_only_a_command_never_sent_can_be_cancelled() -> None:
    waiting = issued()
    waiting.cancel("changed my mind", BY, T0)
    assert waiting.status is CommandStatus.CANCELLED
    sent = issued()
    sent.dispatch("system", T0)
    with pytest.raises(Conflict):
        sent.cancel("too late", BY, T0)


@pytest.mark.parametrize(
    ("name", "ttl"), [("", None), ("   ", None), ("x" * 101, None), ("restart", 0)]
)
def test_a_command_needs_a_name_and_a_positive_time_to_live(name: str, ttl: Any) -> None:
    with pytest.raises(InvalidInput):
        Command.issue(
            command_id=uuid4(),
            device_id=uuid4(),
            command_name=name,
            payload={},
            delivery=Delivery.DEVICE,
            expires_at=None if ttl is None else T0 + timedelta(seconds=ttl),
            by=BY,
            at=T0,
        )


def test_the_time_of_a_commands_events_never_runs_backwards() -> None:
    command = issued()
    command.dispatch("system", T0 - timedelta(hours=1))
    events = command.collect_events()
    assert events[1].timestamp >= events[0].timestamp
