"""Readings in memory: their ids, their events, the fast path's bytes, who may see them, and
recording them through the reference appender."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from iotledger.adapters.postgres.eventstore import MsgspecMapper, MsgspecTranscoder
from iotledger.adapters.postgres.reading_log import stored_state
from iotledger.application.readings import (
    RECORDED_TOPIC,
    Outcome,
    RecordingService,
    RecordReading,
    batch_readings,
)
from iotledger.application.saving import SavingReadingAppender
from iotledger.domain.devices import FLEET, DeviceAccess
from iotledger.domain.errors import InvalidInput, NotFound, TooManyReadings, UnstorableText
from iotledger.domain.readings import READING_NAMESPACE, Reading, reading_id, readings_visible
from tests.support.readings import moments, payloads, readings, values


def a_reading(**changes: Any) -> RecordReading:
    fields: dict[str, Any] = {
        "device_id": UUID(int=1),
        "telemetry_type": "environment",
        "payload": {"temperature": 22.5, "humidity": 60},
        "recorded_at": datetime(2025, 8, 22, 12, 34, 56, tzinfo=UTC),
        "by": "device:1",
    }
    return RecordReading(**(fields | changes))


@given(readings, st.datetimes(timezones=st.just(UTC)))
def test_the_fast_path_writes_the_bytes_and_events_the_aggregate_would(
    cmd: RecordReading, received_at: datetime
) -> None:
    mapper = MsgspecMapper(transcoder=MsgspecTranscoder())
    expected = cmd.to_reading(received_at).collect_events()[0]
    stored = mapper.to_stored_event(expected)
    fast = StoredEvent(cmd.reading_id, 1, RECORDED_TOPIC, stored_state(cmd, received_at))
    assert fast == stored
    decoded = mapper.to_domain_event(fast)
    assert decoded == expected
    assert vars(decoded) == vars(expected)


@given(st.uuids(), st.text(max_size=60))
def test_a_reading_id_is_the_uuid5_of_its_source_and_key(source: UUID, key: str) -> None:
    assert reading_id(source, key) == uuid5(READING_NAMESPACE, f"{source}:{key}")


@given(readings)
def test_a_redelivered_reading_gets_the_same_id(cmd: RecordReading) -> None:
    again = RecordReading(
        device_id=cmd.device_id,
        telemetry_type=cmd.telemetry_type,
        payload=dict(reversed(cmd.payload.items())),
        recorded_at=cmd.recorded_at.astimezone(timezone(timedelta(hours=9))),
        by="system",
        sensor_id=cmd.sensor_id,
        value=cmd.value,
        key=cmd.key,
    )
    assert again.reading_id == cmd.reading_id


def test_a_reading_without_an_id_is_known_by_time_type_and_payload() -> None:
    first = a_reading()
    assert a_reading().reading_id == first.reading_id
    assert a_reading(payload={"temperature": 22.6, "humidity": 60}).reading_id != first.reading_id
    assert a_reading(telemetry_type="power").reading_id != first.reading_id
    later = first.recorded_at + timedelta(microseconds=1)
    assert a_reading(recorded_at=later).reading_id != first.reading_id
    assert a_reading(device_id=UUID(int=2)).reading_id != first.reading_id


def test_a_lambda_reading_is_known_by_its_sensor_not_its_device() -> None:
    sensor = UUID(int=7)
    one = a_reading(sensor_id=sensor, key="1")
    assert a_reading(sensor_id=sensor, device_id=UUID(int=9), key="1").reading_id == one.reading_id
    assert a_reading(key="1").reading_id != one.reading_id


def test_a_given_id_never_collides_with_a_derived_one() -> None:
    derived = a_reading()
    assert a_reading(key=derived.reading_id.hex).reading_id != derived.reading_id
    assert a_reading(key="1").reading_id == a_reading(key="1", payload={}).reading_id


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True])
def test_a_value_must_be_a_finite_number(value: float) -> None:
    with pytest.raises(InvalidInput):
        a_reading(value=value)


def test_an_integer_value_is_stored_as_a_float() -> None:
    assert isinstance(a_reading(value=3).value, float)


@pytest.mark.parametrize(
    "changes",
    [
        {"recorded_at": datetime(2025, 1, 1)},
        {"recorded_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=2)))},
        {"telemetry_type": " "},
        {"telemetry_type": "x" * 101},
        {"key": ""},
        {"telemetry_type": "env\x00"},
        {"payload": {"note": "a\x00b"}},
        {"payload": {"deep": [{"k\x00": 1}]}},
    ],
)
def test_a_malformed_reading_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        a_reading(**changes)


@given(readings, values, payloads, moments)
def test_a_correction_keeps_the_original_in_the_history(
    cmd: RecordReading, value: float | None, payload: dict[str, Any], at: datetime
) -> None:
    app: Application[UUID] = Application()
    app.save(cmd.to_reading(datetime.now(UTC)))
    reading: Reading = app.repository.get(cmd.reading_id)
    reading.correct(value, payload, at, "user:someone")
    app.save(reading)
    replayed: Reading = app.repository.get(cmd.reading_id)
    assert (replayed.value, replayed.payload, replayed.recorded_at) == (value, payload, at)
    recorded, corrected = app.events.get(cmd.reading_id)
    assert isinstance(recorded, Reading.Recorded)
    assert isinstance(corrected, Reading.Corrected)
    assert recorded.payload == cmd.payload
    assert corrected.by == "user:someone"


def test_a_deleted_reading_can_be_neither_corrected_nor_deleted_again() -> None:
    reading = a_reading().to_reading(datetime.now(UTC))
    reading.delete("user:someone")
    assert reading.deleted
    with pytest.raises(NotFound):
        reading.correct(1.0, {"value": 1.0}, datetime.now(UTC), "user:someone")
    with pytest.raises(NotFound):
        reading.delete("user:someone")


def _reading_of(device: UUID, telemetry_type: str) -> RecordReading:
    return RecordReading(device, telemetry_type, {"v": 1}, datetime(2025, 1, 1, tzinfo=UTC), "t")


@given(size=st.integers(1, 20), data=st.data())
def test_a_batch_is_refused_whole_naming_its_first_bad_reading(size: int, data: Any) -> None:
    bad = data.draw(st.sets(st.integers(0, size - 1), min_size=1))
    types = ["" if n in bad else f"type-{n}" for n in range(size)]
    make = partial(_reading_of, uuid4())
    with pytest.raises(InvalidInput, match=rf"^\[{min(bad)}\]: telemetry_type must be"):
        batch_readings(types, 20, make)
    good = [t or "ok" for t in types]
    assert [r.telemetry_type for r in batch_readings(good, 20, make)] == good


def test_a_batch_holds_one_to_the_limit_of_readings() -> None:
    make = partial(_reading_of, uuid4())
    with pytest.raises(InvalidInput, match="at least one"):
        batch_readings([], 3, make)
    with pytest.raises(TooManyReadings, match="at most 3 readings, not 4"):
        batch_readings(["t"] * 4, 3, make)
    assert len(batch_readings(["t"] * 3, 3, make)) == 3


def test_a_bad_reading_in_a_batch_keeps_its_kind_of_error() -> None:
    make = partial(_reading_of, uuid4())
    with pytest.raises(UnstorableText, match=r"^\[1\]: telemetry_type must not contain"):
        batch_readings(["t", "a\x00b"], 3, make)


# --- who may record or read a device's readings ----------------------------------------

device_ids = st.lists(st.uuids(), min_size=1, max_size=6, unique=True)
owner_of = st.none() | st.sampled_from([UUID(int=1), UUID(int=2)])
"""The shared fleet's, or one of two users'."""
accesses = st.sampled_from(
    [FLEET, DeviceAccess(user_id=UUID(int=1)), DeviceAccess(user_id=UUID(int=3))]
)


@given(device_ids, st.data())
def test_a_caller_sees_the_readings_of_existing_devices_it_may_see_and_no_others(
    devices: list[UUID], data: Any
) -> None:
    absent, *existing = devices
    owners = {d: data.draw(owner_of) for d in existing}
    user = data.draw(accesses)
    for device in existing:
        shared_or_own = owners[device] is None or owners[device] == user.user_id
        assert readings_visible(user, [device], owners) == shared_or_own
        itself = DeviceAccess(device_id=device)
        assert readings_visible(itself, [device], owners)  # whoever owns it
        others = [absent, *(other for other in existing if other != device)]
        assert not any(readings_visible(itself, [other], owners) for other in others)
    assert not readings_visible(user, [absent], owners)  # as if it did not exist, to anyone
    chosen = data.draw(st.lists(st.sampled_from(devices)))
    each = all(readings_visible(user, [d], owners) for d in chosen)
    assert readings_visible(user, chosen, owners) == each  # all of them, or none


class FixedOwners:
    """`DeviceOwners` in memory."""

    def __init__(self, owners: dict[UUID, UUID | None]) -> None:
        self._owners = owners

    def owners(self, device_ids: Collection[UUID]) -> dict[UUID, UUID | None]:
        return {d: self._owners[d] for d in device_ids if d in self._owners}


def recording_in_memory(
    owners: dict[UUID, UUID | None],
) -> tuple[RecordingService, Application[UUID]]:
    app: Application[UUID] = Application()
    return RecordingService(SavingReadingAppender(app, FixedOwners(owners))), app


def test_a_redelivered_reading_is_recorded_once_and_answers_where_the_first_went() -> None:
    recording, app = recording_in_memory({})
    first, second = a_reading(key="1"), a_reading(key="2")
    stored = asyncio.run(recording.record([first, second, first]))
    assert [(o.id, o.new) for o in stored] == [
        (first.reading_id, True),
        (second.reading_id, True),
        (first.reading_id, False),
    ]
    assert stored[2].position == stored[0].position
    again = asyncio.run(recording.record([second]))
    assert again == [Outcome(second.reading_id, stored[1].position, new=False)]
    assert len(app.recorder.select_notifications(1, 10)) == 2


def test_a_caller_records_nothing_unless_it_may_see_every_device_its_readings_name() -> None:
    me, mine, theirs, shared = uuid4(), uuid4(), uuid4(), uuid4()
    recording, app = recording_in_memory({mine: me, theirs: uuid4(), shared: None})
    access = DeviceAccess(user_id=me)
    for devices in ([theirs], [mine, theirs], [shared, uuid4()]):
        with pytest.raises(NotFound):
            asyncio.run(recording.record([a_reading(device_id=d) for d in devices], access))
    assert app.recorder.select_notifications(1, 10) == []
    stored = asyncio.run(recording.record([a_reading(device_id=d) for d in (mine, shared)], access))
    assert [o.new for o in stored] == [True, True]
    assert asyncio.run(recording.record([])) == []
