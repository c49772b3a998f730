"""The readings engine against the real PostgreSQL: the COPY appender, history, read model."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast
from uuid import UUID, uuid4

import msgspec
import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import postgres
from psycopg._copy_base import BinaryFormatter
from psycopg.adapt import AdaptersMap, Transformer
from psycopg.pq import Format
from psycopg.types.json import set_json_dumps

from iotledger.adapters.postgres import binary_copy
from iotledger.adapters.postgres.appender import CopyReadingAppender
from iotledger.adapters.postgres.connections import Bounds
from iotledger.adapters.postgres.database import migrate
from iotledger.adapters.postgres.eventstore import eventsourcing_env
from iotledger.adapters.postgres.reading_log import copy_data, stored_state
from iotledger.adapters.postgres.views.readings import copy_rows
from iotledger.application.devices import DeleteDevice, RegisterDevice
from iotledger.application.ledger import Ledger
from iotledger.application.readings import (
    RECORDED_TOPIC,
    AppendReadings,
    CorrectReading,
    DeleteReading,
    Outcome,
    RecordReading,
)
from iotledger.application.saving import SavingReadingAppender
from iotledger.application.service import Written
from iotledger.bootstrap import App
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import NotFound, Unavailable
from iotledger.domain.readings import Reading
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.maintenance import rebuild
from iotledger.projections.readings import ReadingRow
from iotledger.settings import DatabaseUrl, Settings
from tests.support.databases import migrated_services, new_database
from tests.support.readings import moments, payloads, readings, types, values

T0 = datetime(2025, 8, 22, 12, 0, tzinfo=UTC)


def a_reading(device_id: UUID, *, seconds: float = 0, **changes: Any) -> RecordReading:
    fields: dict[str, Any] = {
        "device_id": device_id,
        "telemetry_type": "environment",
        "payload": {"temperature": 20 + seconds},
        "recorded_at": T0 + timedelta(seconds=seconds),
        "by": f"device:{device_id}",
    }
    return RecordReading(**(fields | changes))


def one(reading: RecordReading) -> AppendReadings:
    return AppendReadings([reading])


def submit(services: App, cmds: Sequence[RecordReading]) -> list[Outcome]:
    return services.appender.enqueue(AppendReadings(cmds)).result(timeout=30)


def queryable(services: App, position: int, timeout: float = 10.0) -> None:
    """Wait until the readings read model has applied `position`."""
    deadline = time.monotonic() + timeout
    while (services.views.readings.position() or 0) < position:
        assert time.monotonic() < deadline, f"readings projection never reached {position}"
        time.sleep(0.01)


def submitted(services: App, cmds: Sequence[RecordReading]) -> list[Outcome]:
    outcomes = submit(services, cmds)
    queryable(services, max(o.position for o in outcomes))
    return outcomes


def rows_of(services: App, device_id: UUID, **filters: Any) -> list[ReadingRow]:
    return services.views.readings.device_page(device_id, 1000, **filters)


def stored_events(services: App, reading_id: UUID) -> list[Any]:
    return list(services.ledger.events.get(reading_id))


def test_a_redelivered_reading_is_stored_once(services: App) -> None:
    device = uuid4()
    first, again = submit(services, [a_reading(device)]), submitted(services, [a_reading(device)])
    assert first[0].new
    assert not again[0].new
    assert again[0] == Outcome(first[0].id, first[0].position, new=False)
    assert len(stored_events(services, first[0].id)) == 1
    assert [row.id for row in rows_of(services, device)] == [first[0].id]


def test_a_batch_with_a_duplicate_still_stores_the_others(services: App) -> None:
    device = uuid4()
    (original,) = submit(services, [a_reading(device, key="a")])
    batch = [a_reading(device, key="b"), a_reading(device, key="a"), a_reading(device, key="c")]
    outcomes = submitted(services, [*batch, a_reading(device, key="b")])
    assert [o.new for o in outcomes] == [True, False, True, False]
    assert outcomes[1].position == original.position
    assert outcomes[3].position == outcomes[0].position
    assert len({row.id for row in rows_of(services, device)}) == 3


def test_concurrent_submitters_all_get_outcomes_and_every_reading_is_queryable(
    services: App,
) -> None:
    device = uuid4()
    chunks = [[a_reading(device, key=f"{c}-{i}") for i in range(25)] for c in range(40)]
    from_threads: list[list[Outcome]] = []

    def in_a_thread(chunk: list[RecordReading]) -> None:
        from_threads.append(submit(services, chunk))

    async def in_tasks() -> list[list[Outcome]]:
        return await asyncio.gather(*(services.recording.record(chunk) for chunk in chunks[10:]))

    threads = [threading.Thread(target=in_a_thread, args=(chunk,)) for chunk in chunks[:10]]
    for thread in threads:
        thread.start()
    from_tasks = asyncio.run(in_tasks())
    for thread in threads:
        thread.join()
    outcomes = [o for answer in [*from_threads, *from_tasks] for o in answer]
    assert len(outcomes) == 1000
    assert all(o.new for o in outcomes)
    assert len({o.position for o in outcomes}) == 1000
    logged = services.ledger.recorder.select_notifications(
        start=min(o.position for o in outcomes), stop=max(o.position for o in outcomes), limit=5000
    )
    assert {o.id: o.position for o in outcomes}.items() <= {
        n.originator_id: n.id for n in logged
    }.items()
    queryable(services, max(o.position for o in outcomes))
    assert len(rows_of(services, device)) == 1000


def test_the_fast_paths_events_load_through_the_ledger_repository(services: App) -> None:
    cmd = a_reading(uuid4(), sensor_id=uuid4(), value=21.5, payload={"value": 21.5})
    (outcome,) = submit(services, [cmd])
    reading = services.ledger.repository.get(outcome.id)
    assert isinstance(reading, Reading)
    assert reading.version == 1
    assert (reading.device_id, reading.sensor_id, reading.value) == (
        cmd.device_id,
        cmd.sensor_id,
        21.5,
    )
    assert reading.recorded_at == cmd.recorded_at


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(readings, min_size=1, max_size=5))
def test_stored_readings_decode_to_the_events_the_aggregate_would_record(
    services: App, cmds: list[RecordReading]
) -> None:
    for cmd, outcome in zip(cmds, submit(services, cmds), strict=True):
        stored = services.ledger.recorder.select_events(outcome.id)
        assert len(stored) == 1
        decoded = services.ledger.mapper.to_domain_event(stored[0])
        assert isinstance(decoded, Reading.Recorded)
        expected = cmd.to_reading(decoded.timestamp).collect_events()[0]
        if outcome.new:
            assert stored[0].state == services.ledger.mapper.to_stored_event(expected).state
            assert vars(decoded) == vars(expected)


row_strategy = st.builds(
    ReadingRow,
    lambda_id=st.integers(min_value=1, max_value=2**62),
    id=st.uuids(),
    device_id=st.uuids(),
    sensor_id=st.none() | st.uuids(),
    telemetry_type=types,
    payload=payloads,
    value=values,
    recorded_at=moments,
    received_at=moments,
)


@given(st.lists(row_strategy, max_size=5), st.lists(readings, max_size=5), st.datetimes())
def test_hand_made_copy_streams_are_the_bytes_psycopg_would_send(
    rows: list[ReadingRow], cmds: list[RecordReading], received: datetime
) -> None:
    expected_rows = [msgspec.structs.astuple(row) for row in rows]
    assert b"".join(copy_rows(rows)) == psycopg_copy(_ROW_TYPES, expected_rows)
    pieces = [bytes([n]) * 3 for n in range(len(rows) * 3)]
    assert b"".join(binary_copy.chunks(pieces, size=2)) == binary_copy.stream(pieces)
    received_at = received.replace(tzinfo=UTC)
    log_rows = {cmd.reading_id: stored_state(cmd, received_at) for cmd in cmds}
    expected_log = [(i, 1, RECORDED_TOPIC, state) for i, state in log_rows.items()]
    assert copy_data(log_rows) == psycopg_copy(("uuid", "int8", "text", "bytea"), expected_log)


_ROW_TYPES = (
    "int8",
    "uuid",
    "uuid",
    "uuid",
    "text",
    "jsonb",
    "float8",
    "timestamptz",
    "timestamptz",
)
_ADAPTERS = AdaptersMap(postgres.adapters)
set_json_dumps(lambda obj: msgspec.json.encode(obj).decode(), context=_ADAPTERS)


def psycopg_copy(types: Sequence[str], rows: list[tuple[Any, ...]]) -> bytes:
    """The COPY stream psycopg's own row writer makes of these rows."""
    formatter = BinaryFormatter(Transformer(_ADAPTERS))
    formatter.transformer.set_dumper_types(
        [postgres.types[name].oid for name in types], Format.BINARY
    )
    out = [formatter.write_row(row) for row in rows]
    return b"".join([*map(bytes, out), bytes(formatter.end())])


def test_a_correction_keeps_the_original_and_shows_in_the_read_model(
    services: App,
) -> None:
    device = uuid4()
    (outcome,) = submitted(services, [a_reading(device, payload={"temperature": 99})])
    fixed_at = T0 + timedelta(minutes=5)
    written = services.ledger.correct_reading(
        CorrectReading(
            reading_id=outcome.id, by="user:1", payload={"temperature": 21}, recorded_at=fixed_at
        )
    )
    queryable(services, written.position)
    recorded, corrected = stored_events(services, outcome.id)
    assert recorded.payload == {"temperature": 99}
    assert (corrected.payload, corrected.recorded_at, corrected.by) == (
        {"temperature": 21},
        fixed_at,
        "user:1",
    )
    (row,) = rows_of(services, device)
    assert (row.payload, row.recorded_at, row.lambda_id) == (
        {"temperature": 21},
        fixed_at,
        outcome.position,
    )
    assert services.views.readings.latest(device) == [row]


def test_the_latest_value_follows_device_time_not_arrival(services: App) -> None:
    device = uuid4()
    (newer,) = submitted(services, [a_reading(device, seconds=60)])
    submitted(services, [a_reading(device, seconds=10)])  # a late reading of the past
    assert [r.id for r in services.views.readings.latest(device)] == [newer.id]
    (newest,) = submitted(services, [a_reading(device, seconds=120)])
    assert [r.id for r in services.views.readings.latest(device)] == [newest.id]
    power = submitted(services, [a_reading(device, seconds=5, telemetry_type="power")])
    latest = services.views.readings.latest(device)
    assert [(r.telemetry_type, r.id) for r in latest] == [
        ("environment", newest.id),
        ("power", power[0].id),
    ]


def test_the_latest_of_a_batch_is_its_newest_device_time_and_then_its_last(
    services: App,
) -> None:
    device = uuid4()
    outcomes = submitted(
        services,
        [
            a_reading(device, seconds=3),
            a_reading(device, seconds=9),
            a_reading(device, seconds=1),
            a_reading(device, seconds=9, payload={"temperature": 0}),
            a_reading(device, seconds=2),
        ],
    )
    assert [r.id for r in services.views.readings.latest(device)] == [outcomes[3].id]


def test_deleting_the_latest_reading_falls_back_to_the_next_newest(services: App) -> None:
    device = uuid4()
    older, newer = submitted(services, [a_reading(device, seconds=1), a_reading(device, seconds=2)])
    written = services.ledger.delete_reading(DeleteReading(reading_id=newer.id, by="user:1"))
    queryable(services, written.position)
    assert [r.id for r in rows_of(services, device)] == [older.id]
    assert [r.id for r in services.views.readings.latest(device)] == [older.id]
    assert [type(e) for e in stored_events(services, newer.id)] == [
        Reading.Recorded,
        Reading.Deleted,
    ]
    with pytest.raises(NotFound):
        services.ledger.correct_reading(CorrectReading(reading_id=newer.id, by="user:1", value=1))


def test_a_device_page_is_newest_first_and_filtered_by_time_and_type(services: App) -> None:
    device = uuid4()
    outcomes = submitted(
        services,
        [
            a_reading(device, seconds=s, telemetry_type="power" if s % 2 else "environment")
            for s in range(10)
        ],
    )
    by_time = {o.id: s for s, o in enumerate(outcomes)}
    first = services.views.readings.device_page(device, 4)
    assert [by_time[r.id] for r in first] == [9, 8, 7, 6]
    end = (first[-1].recorded_at, first[-1].lambda_id)
    after = services.views.readings.device_page(device, 4, after=end)
    assert [by_time[r.id] for r in after] == [5, 4, 3, 2]
    window = rows_of(
        services,
        device,
        since=T0 + timedelta(seconds=2),
        until=T0 + timedelta(seconds=7),
        telemetry_type="power",
    )
    assert [by_time[r.id] for r in window] == [5, 3]


def test_a_failed_append_fails_every_caller_and_stores_nothing(
    services: App, database_url: DatabaseUrl
) -> None:
    recorder = cast(PostgresApplicationRecorder, services.ledger.recorder)
    impatient = CopyReadingAppender.for_recorder(recorder, str(database_url), lock_timeout=0.2)
    device = uuid4()
    try:
        with psycopg.connect(str(database_url)) as blocker:
            blocker.execute("LOCK TABLE iotledger_events IN EXCLUSIVE MODE")
            futures = [impatient.enqueue(one(a_reading(device, key=str(i)))) for i in range(3)]
            for future in futures:
                with pytest.raises(Unavailable):
                    future.result(timeout=10)
        assert all(
            not stored_events(services, a_reading(device, key=str(i)).reading_id) for i in range(3)
        )
        (retried,) = impatient.enqueue(one(a_reading(device, key="0"))).result(timeout=10)
        assert retried.new
    finally:
        impatient.stop()
    with pytest.raises(Unavailable):
        impatient.enqueue(one(a_reading(device)))


def test_a_rebuild_reproduces_the_readings_read_model(
    settings: Settings, fresh_database_url: DatabaseUrl
) -> None:
    with migrated_services(settings, fresh_database_url) as services:
        device = uuid4()
        outcomes = submit(services, [a_reading(device, seconds=s) for s in range(50)])
        services.ledger.correct_reading(CorrectReading(outcomes[7].id, "user:1", value=7.5))
        services.ledger.delete_reading(DeleteReading(outcomes[49].id, "user:1"))
        rebuild(services, ["readings"], lambda *_: None)
        before = (rows_of(services, device), services.views.readings.latest(device))
        rebuild(services, ["readings"], lambda *_: None)
        after = (rows_of(services, device), services.views.readings.latest(device))
    assert before == after
    assert [r.lambda_id for r in before[0]] == [o.position for o in reversed(outcomes[:49])]
    assert [r.id for r in before[1]] == [outcomes[48].id]
    assert {r.id: r.value for r in before[0]}[outcomes[7].id] == 7.5


def shown(services: App, written: Written) -> UUID:
    """The id a write names, once the devices read model shows the write."""
    deadline = time.monotonic() + 10
    while (services.views.devices.position() or 0) < written.position:
        assert time.monotonic() < deadline, "the devices projection never caught up"
        time.sleep(0.01)
    return written.id


def registered(services: App, owner: UUID | None) -> UUID:
    """A device of `owner` (None: the shared fleet), shown by the devices read model."""
    command = RegisterDevice(uuid4(), owner, "gated", DeviceStatus.OK, "test", datetime.now(UTC))
    return shown(services, services.ledger.register_device(command))


def test_recording_admits_only_devices_the_caller_may_see_and_stores_nothing_else(
    services: App,
) -> None:
    me, stranger = uuid4(), uuid4()
    mine, theirs, fleet = (registered(services, owner) for owner in (me, stranger, None))
    access = DeviceAccess(user_id=me)

    async def each(*chunks: list[RecordReading]) -> list[Any]:
        answers = (services.recording.record(chunk, access) for chunk in chunks)
        return await asyncio.gather(*answers, return_exceptions=True)

    # in one batch, the refused callers fail alone and the others are stored
    answers = asyncio.run(
        each(
            [a_reading(mine, key="m")],
            [a_reading(theirs, key="t")],
            [a_reading(fleet, key="f"), a_reading(uuid4(), key="nowhere")],
            [a_reading(fleet, key="f2")],
        )
    )
    assert [type(a).__name__ for a in answers] == [
        "list",
        "DeviceNotFound",
        "DeviceNotFound",
        "list",
    ]
    assert str(answers[1]) == "device not found"
    queryable(services, max(o.position for a in (answers[0], answers[3]) for o in a))
    # the refused third caller's fleet reading is not stored either: a caller's readings
    # go in together or not at all
    assert [len(rows_of(services, d)) for d in (mine, theirs, fleet)] == [1, 0, 1]
    # a device deleted (and shown deleted) takes no more readings
    shown(services, services.ledger.delete_device(DeleteDevice(mine, access, "t", T0)))
    (after,) = asyncio.run(each([a_reading(mine, key="after")]))
    assert isinstance(after, NotFound)
    assert len(rows_of(services, mine)) == 1


@contextmanager
def ledger_on(server: DatabaseUrl, settings: Settings) -> Iterator[tuple[Ledger, DatabaseUrl]]:
    """A ledger on a throw-away database of its own, its tables made."""
    with new_database(server) as url:
        ledger = Ledger(env=eventsourcing_env(url, 2, Bounds.of(settings)))
        try:
            migrate(url, ledger)
            yield ledger, url
        finally:
            ledger.close()


class Log(NamedTuple):
    """A ledger's log, and a way to append readings to it (blocking)."""

    ledger: Ledger
    append: Callable[[list[RecordReading]], list[Outcome]]

    def rows(self) -> list[tuple[UUID, int, str, bytes]]:
        """Every stored event in log order, without its position."""
        notifications = self.ledger.recorder.select_notifications(1, 100_000)
        return [(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]

    def points_at(self, outcomes: list[Outcome]) -> bool:
        """Whether each outcome's position holds the event of its reading."""
        at = {n.id: n.originator_id for n in self.ledger.recorder.select_notifications(1, 100_000)}
        return all(at[o.position] == o.id for o in outcomes)


@pytest.fixture(scope="module")
def saving_log(server_url: DatabaseUrl, settings: Settings) -> Iterator[Log]:
    """The reference appender (`Application.save`), on a database of its own."""
    with ledger_on(server_url, settings) as (ledger, _):
        appender = SavingReadingAppender(ledger, clock=lambda: T0)
        yield Log(ledger, lambda cmds: appender.append_now(AppendReadings(cmds)))


@pytest.fixture(scope="module")
def copying_log(server_url: DatabaseUrl, settings: Settings) -> Iterator[Log]:
    """The COPY appender, on another database, with the reference's clock."""
    with ledger_on(server_url, settings) as (ledger, url):
        recorder = cast(PostgresApplicationRecorder, ledger.recorder)
        copy = CopyReadingAppender.for_recorder(recorder, str(url), clock=lambda: T0)
        try:
            yield Log(ledger, lambda cmds: copy.enqueue(AppendReadings(cmds)).result(timeout=30))
        finally:
            copy.stop()


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(readings, min_size=1, max_size=6),
    st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=8), min_size=1, max_size=3),
)
def test_the_copy_appender_stores_the_rows_that_application_save_stores(
    saving_log: Log, copying_log: Log, pool: list[RecordReading], calls: list[list[int]]
) -> None:
    """Repeats within a call, and of an earlier call, included. A COPY that meets a repeat
    fails and may leave a gap in the positions, so positions are checked for what they
    point at, in each log."""
    for picks in calls:
        cmds = [pool[n % len(pool)] for n in picks]
        saved, copied = saving_log.append(cmds), copying_log.append(cmds)
        assert [(o.id, o.new) for o in copied] == [(o.id, o.new) for o in saved]
        assert saving_log.points_at(saved)
        assert copying_log.points_at(copied)
    assert copying_log.rows() == saving_log.rows()


def test_the_eventsourcing_internals_the_copy_appender_relies_on_are_where_it_expects_them(
    services: App,
) -> None:
    """See the docstring of `iotledger.adapters.postgres.reading_log`; pinned in pyproject.toml."""
    assert importlib.metadata.version("eventsourcing") == "9.5.6"
    recorder = cast(PostgresApplicationRecorder, services.ledger.recorder)
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    created = " ".join(s.as_string() for s in recorder.sql_create_statements)
    assert f"CREATE TABLE IF NOT EXISTS {table} (originator_id" in created
    for column in (
        "originator_version bigint",
        "topic text",
        "state bytea",
        "notification_id bigserial",
    ):
        assert column in created
    assert "PRIMARY KEY (originator_id, originator_version)" in created
    lock = [s.as_string() for s in recorder.lock_table_statements]
    assert lock[-1] == f"LOCK TABLE {table} IN EXCLUSIVE MODE"
    assert recorder.datastore.lock_timeout == int(lock[0].split("'")[1].removesuffix("s"))
    notify = inspect.getsource(PostgresApplicationRecorder._insert_stored_events)
    assert notify.index("self._lock_table(curs)") < notify.index("self._notify_channel(curs)")
    assert recorder.channel_name == recorder.events_table_name.replace(".", "_")
