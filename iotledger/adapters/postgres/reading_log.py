"""Appending new readings to the log exactly as eventsourcing would, only faster.

The rows are the ones `Application.save()` would write for new `Reading`
aggregates: version 1 of each, the `Reading.Recorded` topic, and the msgspec
state bytes of `iotledger.adapters.postgres.eventstore` (the same Struct, the same field
order), so the ledger's repository loads them and later corrections append
version 2 the ordinary way. What is faster: the state is encoded straight from
the command, the rows are formatted by hand (`binary_copy`), and a whole batch
is one binary COPY into the events table, under
eventsourcing's own table lock (commit order is notification order). Its NOTIFY
goes to a channel of its own (`readings_channel`), not to eventsourcing's: only
the feeds of projections that read new readings wake for them, instead of every
projection waking to find nothing of its own at a few hundred batches a second.

A COPY cannot skip a row: a batch holding a reading the log already has (a
redelivery) fails its COPY and is appended again by `INSERT ... ON CONFLICT DO
NOTHING`, which skips the repeats. Redeliveries are rare, so the common batch
pays only for the COPY.

The only module that writes eventsourcing's table itself, it relies on what
eventsourcing 9.5.6 keeps there (pinned in pyproject.toml; each is checked by
`tests/integration/test_readings_engine.py`, so an upgrade that moves one fails there first, and
the same file holds this module's rows equal to `Application.save`'s):
- the table `{datastore.schema}.{events_table_name}` with the columns
  `(originator_id, originator_version, topic, state, notification_id bigserial)` and
  the primary key `(originator_id, originator_version)`;
- writers take `LOCK TABLE ... IN EXCLUSIVE MODE` (waiting `datastore.lock_timeout`
  seconds) and NOTIFY `channel_name` in the transaction of their insert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg import sql

from iotledger.adapters.postgres import binary_copy
from iotledger.adapters.postgres.eventstore import state_struct
from iotledger.application.readings import RECORDED_TOPIC, RecordReading
from iotledger.domain.readings import Reading

_READING_TOPIC = get_topic(Reading)
_RecordedState = state_struct(Reading.Recorded)
_encode = msgspec.json.Encoder().encode


def readings_channel(channel: str) -> str:
    """Where appends of new readings are announced, beside the log's own `channel`."""
    return f"{channel}_readings"


Positions = dict[UUID, int]
"""Where readings are in the log: reading id -> notification id of its `Recorded`."""


def stored_state(cmd: RecordReading, received_at: datetime) -> bytes:
    """The state bytes eventsourcing's mapper would store for this reading's event."""
    return _encode(
        _RecordedState(
            timestamp=received_at,
            originator_topic=_READING_TOPIC,
            device_id=cmd.device_id,
            sensor_id=cmd.sensor_id,
            telemetry_type=cmd.telemetry_type,
            payload=cmd.payload,
            value=cmd.value,
            recorded_at=cmd.recorded_at,
            by=cmd.by,
        )
    )


class ReadingLog:
    """The events table of one recorder, as a place to append new readings."""

    def __init__(self, schema: str, table: str, channel: str, lock_timeout: float) -> None:
        events = sql.Identifier(schema, table)
        # One round trip: a bounded wait for eventsourcing's lock, its listeners woken
        # at commit, and the head of the log, which our positions will follow.
        self._lock = sql.SQL(
            "SET LOCAL lock_timeout = {timeout}; LOCK TABLE {events} IN EXCLUSIVE MODE;"
            " NOTIFY {channel}; SELECT coalesce(max(notification_id), 0) FROM {events}"
        ).format(
            timeout=sql.Literal(f"{int(lock_timeout * 1000)}ms"),
            events=events,
            channel=sql.Identifier(readings_channel(channel)),
        )
        self._copy = sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(events)
        self._begin = sql.SQL("BEGIN; ") + self._lock
        # max() is answered from the end of the index whatever the statistics say
        # (a range count was planned as a scan of the whole log on a fresh table).
        self._head_and_commit = sql.SQL(
            "SELECT coalesce(max(notification_id), 0) FROM {}; COMMIT"
        ).format(events)
        self._insert_new = sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state)"
            " SELECT id, 1, %s, state FROM unnest(%s::uuid[], %s::bytea[])"
            " WITH ORDINALITY AS batch (id, state, n) ORDER BY n"
            " ON CONFLICT (originator_id, originator_version) DO NOTHING"
            " RETURNING originator_id, notification_id"
        ).format(events)
        self._originals = sql.SQL(
            "SELECT originator_id, notification_id FROM {}"
            " WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(events)

    @classmethod
    def of(cls, recorder: PostgresApplicationRecorder, lock_timeout: float | None) -> ReadingLog:
        """The recorder's own table and channel; its lock timeout unless told otherwise."""
        return cls(
            recorder.datastore.schema,
            recorder.events_table_name,
            recorder.channel_name,
            lock_timeout or float(recorder.datastore.lock_timeout or 10),
        )

    def append(
        self, conn: psycopg.Connection[Any], rows: dict[UUID, bytes]
    ) -> tuple[Positions, Positions]:
        """Append readings (id -> state) not yet in the log: (new ones, repeats' originals)."""
        try:
            return self._copy_all(conn, rows), {}
        except psycopg.errors.UniqueViolation:
            return self._insert_skipping_repeats(conn, rows)

    def _copy_all(self, conn: psycopg.Connection[Any], rows: dict[UUID, bytes]) -> Positions:
        """One transaction, one COPY, three round trips; the position each reading got.

        Nobody else appends while we hold the lock and COPY numbers its rows in
        order from one sequence, so when the head moved by exactly as many rows as
        we appended, they hold the positions after the old head. The new head comes
        back with the commit; should it have moved by more (a gap in the
        sequence), the positions are looked up instead.
        """
        data = copy_data(rows)
        with conn.cursor() as cur:
            try:
                head = self._take_lock(cur, self._begin)
                with cur.copy(self._copy) as copy:
                    copy.write(data)
                cur.execute(self._head_and_commit, prepare=False)
            except BaseException:
                conn.rollback()
                raise
            (new_head,) = _one(cur)
        if new_head - head == len(rows):
            return dict(zip(rows, range(head + 1, new_head + 1), strict=True))
        return dict(conn.execute(self._originals, (list(rows),)).fetchall())

    def _insert_skipping_repeats(
        self, conn: psycopg.Connection[Any], rows: dict[UUID, bytes]
    ) -> tuple[Positions, Positions]:
        with conn.transaction(), conn.cursor(binary=True) as cur:
            self._take_lock(conn.cursor(), self._lock)
            params = (RECORDED_TOPIC, list(rows), list(rows.values()))
            inserted: Positions = dict(cur.execute(self._insert_new, params).fetchall())
            repeats = [reading_id for reading_id in rows if reading_id not in inserted]
            originals: Positions = dict(cur.execute(self._originals, (repeats,)).fetchall())
        if len(inserted) + len(originals) != len(rows):
            raise RuntimeError("a repeated reading's original event is missing")
        return inserted, originals

    def _take_lock(self, cur: psycopg.Cursor[Any], statements: sql.Composed) -> int:
        """Lock the log (several statements, so never prepared); the head of the log."""
        cur.execute(statements, prepare=False)
        while cur.nextset():
            pass
        head: int = _one(cur)[0]
        return head


_FIELDS = binary_copy.fields(4)
_VERSION_AND_TOPIC = binary_copy.int8(1) + binary_copy.data(RECORDED_TOPIC.encode())


def copy_data(rows: dict[UUID, bytes]) -> bytes:
    """The rows (id, version 1, topic, state) as one binary COPY stream."""
    uuid, data = binary_copy.uuid, binary_copy.data
    return binary_copy.stream(
        [b"".join((_FIELDS, uuid(i), _VERSION_AND_TOPIC, data(state))) for i, state in rows.items()]
    )


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row: tuple[Any, ...] | None = cur.fetchone()
    if row is None:
        raise RuntimeError("a query that always answers one row answered none")
    return row
