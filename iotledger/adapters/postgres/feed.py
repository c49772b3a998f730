"""The event log as projections read it: batches by topic, woken by NOTIFY.

Each feed owns one connection that LISTENs on the event table's channel (and on
the channel of new readings, for a projection that reads them) and holds the
projection's advisory lock, so one runner per projection works at a
time across every process; if that connection dies, the lock goes with it and a
standby runner takes over. The runner that lost it notices only at its next
statement here; until then its batch may overlap its successor's, and the view's
tracking row refuses the batch that commits second (see `iotledger.adapters.postgres.views.base`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from iotledger.adapters.postgres.log_reader import LogReader
from iotledger.adapters.postgres.reading_log import readings_channel
from iotledger.application.readings import RECORDED_TOPIC
from iotledger.projections.base import Event


def lock_key(name: str) -> int:
    """A stable advisory-lock key for one projection."""
    return zlib.crc32(f"iotledger-projection:{name}".encode())


class PostgresEventFeed:
    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        conn: psycopg.Connection[Any],
        reader: LogReader,
        topics: Sequence[str] = (),
    ) -> None:
        self._recorder = recorder
        self._conn = conn
        self._reader = reader
        self._head = sql.SQL("SELECT max(notification_id) FROM {}").format(
            sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        )
        channels = [recorder.channel_name]
        if RECORDED_TOPIC in topics:
            channels.append(readings_channel(recorder.channel_name))
        for channel in channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def head(self) -> int | None:
        row = self._conn.execute(self._head).fetchone()
        return None if row is None else row[0]

    def read(
        self, after: int | None, upto: int, topics: Sequence[str], limit: int
    ) -> list[tuple[int, Event]]:
        return self._reader.read(after, upto, topics, limit)

    def wait(self, timeout: float) -> None:
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            pass

    def hold(self, name: str) -> bool:
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self._reader.close()


@contextmanager
def open_feed(
    recorder: PostgresApplicationRecorder,
    mapper: Mapper[UUID],
    conninfo: str,
    topics: Sequence[str] = (),
) -> Iterator[PostgresEventFeed]:
    """A feed woken by appends of events of these `topics` (and by any ordinary save)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        reader = LogReader(recorder, mapper, conn, conninfo)
        feed = PostgresEventFeed(recorder, conn, reader, topics)
        try:
            yield feed
        finally:
            feed.close()
